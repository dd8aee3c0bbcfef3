//! Child processes that never outlive the tool, and the signals that stop it.
//!
//! A forgotten lab server keeps its port, a forgotten `cargo test` keeps the
//! build directory locked. So every child is [`Supervised`]: it runs in a
//! process group of its own (on Unix), which is stopped when it is dropped
//! (SIGTERM, then SIGKILL after [`GRACE`]); on Linux it also gets a SIGTERM
//! when the tool dies, even by `kill -9`. `main` calls [`exit_on_signal`]:
//! Ctrl-C or SIGTERM stops every supervised child, then the tool.

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The process groups (= leader pids) of the children still running.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Set by a verb that stops itself when asked ([`stop_requested`]).
static STOPS_ITSELF: AtomicBool = AtomicBool::new(false);
static STOP_REQUESTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How long a child gets to stop after SIGTERM before it is killed.
pub const GRACE: Duration = Duration::from_secs(3);

/// A child process (and everything it starts) that is stopped when dropped.
///
/// Spawn it from a thread that lives as long as the child: Linux's
/// parent-death signal fires when the *thread* that spawned it ends.
#[derive(Debug)]
pub struct Supervised {
    child: Child,
    finished: Option<ExitStatus>,
}

impl Supervised {
    /// Spawns `command` in a process group of its own.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
            #[cfg(target_os = "linux")]
            {
                use rustix::process::{Signal, getppid, set_parent_process_death_signal};
                let parent = std::process::id();
                // SAFETY: between fork and exec only async-signal-safe calls
                // are allowed; prctl and getppid (system calls) are. An error
                // returned here ends the child before exec.
                unsafe {
                    command.pre_exec(move || {
                        set_parent_process_death_signal(Some(Signal::TERM))?;
                        // The parent may have died before prctl took effect.
                        match getppid() {
                            Some(pid) if pid.as_raw_nonzero().get() as u32 == parent => Ok(()),
                            _ => Err(io::Error::other("the xtask exited before its child started")),
                        }
                    });
                }
            }
        }
        let child = command.spawn()?;
        RUNNING.lock().unwrap().push(child.id());
        Ok(Supervised { child, finished: None })
    }

    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit. If a signal is stopping the tool
    /// meanwhile, this never returns: the caller must not report a child the
    /// signal killed as a failure.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        self.finished = Some(status);
        while STOPPING.load(Ordering::SeqCst) {
            thread::park(); // the signal handler exits the process
        }
        Ok(status)
    }

    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.finished.is_none() {
            self.finished = self.child.try_wait()?;
        }
        Ok(self.finished)
    }

    /// Asks the child's process group to stop (SIGTERM; on Windows it is
    /// killed), waits up to `grace`, then kills it.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.try_wait() {
            return Some(status);
        }
        #[cfg(unix)]
        terminate(&[self.child.id()], grace, || matches!(self.try_wait(), Ok(Some(_))));
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(GRACE);
        // The leader is gone; make sure nothing it started lingers.
        #[cfg(unix)]
        signal_group(self.child.id(), rustix::process::Signal::KILL);
        RUNNING.lock().unwrap().retain(|&id| id != self.child.id());
    }
}

pub fn on_path(program: &str) -> bool {
    let name = format!("{program}{}", std::env::consts::EXE_SUFFIX);
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(&name).is_file()))
}

/// What a finished child printed.
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

/// Runs `command` supervised, its stdout and stderr captured; `on_stderr`
/// sees each line of stderr as it comes (to show progress).
pub fn run_captured(command: &mut Command, mut on_stderr: impl FnMut(&str)) -> io::Result<Output> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Supervised::spawn(command)?;
    let mut stdout = child.child().stdout.take().expect("stdout is piped");
    let stderr = child.child().stderr.take().expect("stderr is piped");
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).ok();
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let mut stderr_text = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        on_stderr(&line);
        stderr_text.push_str(&line);
        stderr_text.push('\n');
    }
    let status = child.wait()?;
    Ok(Output {
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr_text,
        success: status.success(),
    })
}

/// Sends each line of `pipe` to `lines` as it comes, on a thread of its own.
pub fn forward_lines(
    pipe: impl Read + Send + 'static,
    lines: std::sync::mpsc::Sender<String>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut read = BufReader::new(pipe).lines().map_while(Result::ok);
        while read.next().is_some_and(|line| lines.send(line).is_ok()) {}
    })
}

/// On Ctrl-C or SIGTERM: stop every supervised child, then exit with 130.
/// Idempotent.
pub fn exit_on_signal() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let first = AtomicBool::new(true);
        let installed = ctrlc::set_handler(move || {
            if STOPS_ITSELF.load(Ordering::SeqCst) && first.swap(false, Ordering::SeqCst) {
                STOP_REQUESTED.notify_one(); // the verb stops itself; a second signal insists
                return;
            }
            STOPPING.store(true, Ordering::SeqCst);
            eprintln!("\nstopping...");
            stop_all(GRACE);
            std::process::exit(130);
        });
        if let Err(error) = installed {
            eprintln!("warning: Ctrl-C will not stop this tool's children: {error}");
        }
    });
}

/// From now on the first Ctrl-C or SIGTERM only completes
/// [`stop_requested`]: the verb stops itself, tidily (a second one still
/// stops everything and exits).
pub fn handle_stop_myself() {
    exit_on_signal();
    STOPS_ITSELF.store(true, Ordering::SeqCst);
}

/// Completes once a signal asked a verb that [handles stopping
/// itself](handle_stop_myself) to stop.
pub async fn stop_requested() {
    STOP_REQUESTED.notified().await;
}

/// Stops every supervised child. (On Windows, Ctrl-C reaches every process
/// of the console by itself.)
fn stop_all(grace: Duration) {
    let groups = RUNNING.lock().map(|g| g.clone()).unwrap_or_default();
    // The threads waiting for the leaders reap them as they exit.
    #[cfg(unix)]
    terminate(&groups, grace, || !groups.iter().any(|&leader| exists(leader)));
    #[cfg(not(unix))]
    thread::sleep(grace.min(Duration::from_millis(500)));
}

/// SIGTERM to each process group, up to `grace` for them to be `gone`,
/// then SIGKILL.
#[cfg(unix)]
fn terminate(groups: &[u32], grace: Duration, mut gone: impl FnMut() -> bool) {
    use rustix::process::Signal;
    groups.iter().for_each(|&group| signal_group(group, Signal::TERM));
    let started = Instant::now();
    while started.elapsed() < grace && !gone() {
        thread::sleep(Duration::from_millis(20));
    }
    groups.iter().for_each(|&group| signal_group(group, Signal::KILL));
}

/// Sends `signal` to the process group led by `leader`, if it still exists.
#[cfg(unix)]
fn signal_group(leader: u32, signal: rustix::process::Signal) {
    if let Some(group) = pid(leader) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// Whether the process `id` still exists (running, or not yet reaped).
#[cfg(unix)]
fn exists(id: u32) -> bool {
    pid(id).is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

#[cfg(unix)]
fn pid(id: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(id).ok()?)
}
