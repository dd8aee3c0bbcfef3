//! Child processes that never outlive the tool, and the signals that stop it.
//!
//! The tool starts cargo (to test a lab) and lab servers (for tokio-console).
//! Whatever happens to the xtask, a Ctrl-C, a SIGTERM from a script, a panic,
//! an error, those must stop with it: a forgotten server keeps its port, a
//! forgotten `cargo test` keeps the build directory locked.
//!
//! - A [`Supervised`] child runs in its own process group (on Unix), so that
//!   stopping it stops everything it started too (cargo's rustc and test
//!   binaries). Dropping it stops the group: SIGTERM, then SIGKILL after a
//!   grace period.
//! - On Linux the child also asks the kernel for a SIGTERM when its parent
//!   dies, which covers even a `kill -9` of the xtask.
//! - [`exit_on_signal`] makes Ctrl-C and SIGTERM stop every supervised child
//!   and then exit, for the verbs with nothing to tidy up themselves.
//!   (`console` handles the signals itself, to stop its traffic and report.)

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The process groups (= leader pids) of the children still running.
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());
/// Set once a signal asked the xtask to stop.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// Set by a verb that stops itself when asked ([`handle_stop_myself`]).
static STOPS_ITSELF: AtomicBool = AtomicBool::new(false);
/// How the signal thread tells such a verb.
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

    /// The child, e.g. to take its stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit. If a signal is stopping the xtask
    /// meanwhile, this never returns: the signal handler exits the process,
    /// and the caller must not report a child it killed as a failure.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait()?;
        self.finished = Some(status);
        // If a signal is stopping the tool, the signal thread exits.
        while STOPPING.load(Ordering::SeqCst) {
            thread::park();
        }
        Ok(status)
    }

    /// The exit status, if the child has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.finished.is_none() {
            self.finished = self.child.try_wait()?;
        }
        Ok(self.finished)
    }

    /// Asks the child's process group to stop (SIGTERM; on Windows there is
    /// no such thing, so it is killed), waits up to `grace`, then kills it.
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

/// Whether `program` is on the `PATH`.
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
    let stdout = child.child().stdout.take().expect("stdout is piped");
    let stderr = child.child().stderr.take().expect("stderr is piped");
    let stdout = thread::spawn(move || {
        let mut bytes = Vec::new();
        BufReader::new(stdout).read_to_end(&mut bytes).ok();
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
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    })
}

/// Sends `signal` to the process group led by `leader`; a group that no
/// longer exists is an error we ignore.
#[cfg(unix)]
fn signal_group(leader: u32, signal: rustix::process::Signal) {
    if let Some(group) = pid(leader) {
        let _ = rustix::process::kill_process_group(group, signal);
    }
}

/// Whether the process `pid` still exists (running, or exited but not yet
/// reaped by the thread waiting for it).
#[cfg(unix)]
fn exists(id: u32) -> bool {
    pid(id).is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

#[cfg(unix)]
fn pid(id: u32) -> Option<rustix::process::Pid> {
    rustix::process::Pid::from_raw(i32::try_from(id).ok()?)
}

/// From now on, the first Ctrl-C or SIGTERM only wakes [`stop_requested`]:
/// the verb stops itself (a second one still stops everything and exits).
/// Call [`exit_on_signal`] first.
pub fn handle_stop_myself() {
    STOPS_ITSELF.store(true, Ordering::SeqCst);
}

/// Completes once a signal asked a verb that [handles stopping
/// itself](handle_stop_myself) to stop.
pub async fn stop_requested() {
    STOP_REQUESTED.notified().await;
}

/// On Ctrl-C or SIGTERM: stop every supervised child, then exit with 130.
/// Idempotent.
pub fn exit_on_signal() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime to wait for signals");
                runtime.block_on(async {
                    let mut signal = Box::pin(stop_signal());
                    let _ = ready_tx.send(());
                    signal.as_mut().await;
                    if STOPS_ITSELF.load(Ordering::SeqCst) {
                        // The verb stops itself; a second signal insists.
                        STOP_REQUESTED.notify_one();
                        stop_signal().await;
                    }
                });
                STOPPING.store(true, Ordering::SeqCst);
                eprintln!("\nstopping...");
                stop_all(GRACE);
                std::process::exit(130);
            })
            .expect("spawn the signal thread");
        // Listen before going on, so that an early signal is not missed.
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    });
}

/// A future that completes on Ctrl-C, or SIGTERM on Unix. Create it before
/// you need it: the handlers are installed when it is created.
pub fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async move {
            match terminate {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate => {}
        }
    }
}

/// Stops every supervised child (see [`terminate`]). (On Windows, Ctrl-C
/// reaches every process of the console by itself.)
fn stop_all(grace: Duration) {
    let groups = RUNNING.lock().map(|g| g.clone()).unwrap_or_default();
    // The threads waiting for the leaders reap them as they exit.
    #[cfg(unix)]
    terminate(&groups, grace, || !groups.iter().any(|&leader| exists(leader)));
    #[cfg(not(unix))]
    {
        let _ = groups;
        thread::sleep(grace.min(Duration::from_millis(500)));
    }
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
