//! A lab's binary run as a real process, for tests about signals and shutdown.
//!
//! Shutdown can only be tested from outside: a signal goes to a process, and
//! "exits 0 within the deadline" is something only a parent sees. A
//! [`LabProcess`] starts the binary Cargo built for the lab (find it with
//! [`lab_binary!`](crate::lab_binary)), waits for the line every lab server
//! prints when it is ready (`<lab> listening on http://127.0.0.1:PORT`), and
//! then lets the test send it signals and wait, boundedly, for it to exit.
//!
//! No process outlives its test: dropping a `LabProcess` (at the end of the
//! test, or while a failed assertion unwinds) kills the child and reaps it.
//! Only a test binary that is itself killed with SIGKILL could leave one
//! behind, and lab servers exit on their own once their test's client is gone.
//!
//! ```ignore
//! let mut server = LabProcess::start(
//!     Command::new(lab_binary!("graceful-shutdown")).args(["--port", "0"]),
//! )
//! .await;
//! let reply = client::get(&server.url("/health")).await;
//! server.terminate(); // SIGTERM (Unix only)
//! let status = server.exit_within(Duration::from_secs(5)).await;
//! assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", server.output());
//! ```
//!
//! Signals are sent with rustix's safe `kill_process`: the labs forbid
//! `unsafe`, and the standard library can only send SIGKILL
//! ([`Child::kill`]). The signalling methods exist on Unix only; a test that
//! needs them is `#[cfg(unix)]` and says so.
//!
//! A binary links the labs' shared library (see `dylib/src/lib.rs`): `cargo
//! test` puts it on the library path of the test, and the child inherits it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::time::Instant;

/// The signals a test can send (`Signal::TERM`, `Signal::INT`, `Signal::HUP`...).
#[cfg(unix)]
pub use rustix::process::Signal;

/// The path of the lab's binary, for a test in `labs/NN-slug/tests/`, which
/// also runs for the solution: `lab_binary!("graceful-shutdown")` is the
/// starter's `graceful-shutdown` binary, or the solution's
/// `graceful-shutdown-solution`, whichever Cargo built for this test.
///
/// Cargo tells an integration test where its package's binaries are through
/// `CARGO_BIN_EXE_<name>` at compile time, so this is a macro: it must expand
/// inside the test crate.
#[macro_export]
macro_rules! lab_binary {
    ($lab:literal) => {
        match ::std::option_env!(::std::concat!("CARGO_BIN_EXE_", $lab)) {
            Some(path) => path,
            None => match ::std::option_env!(::std::concat!("CARGO_BIN_EXE_", $lab, "-solution")) {
                Some(path) => path,
                None => ::std::panic!(::std::concat!(
                    "this test's package has no binary named `",
                    $lab,
                    "` or `",
                    $lab,
                    "-solution` (see [[bin]] in its Cargo.toml)"
                )),
            },
        }
    };
}

/// How long [`LabProcess::start`] waits for the server to say where it listens.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How often the process's output and status are checked while waiting.
const POLL_EVERY: Duration = Duration::from_millis(5);
/// How long an exited process's last output may take to be read.
const READERS_LIMIT: Duration = Duration::from_millis(200);
/// What a lab server prints, followed by its address, once it accepts connections.
const READY_MARK: &str = " listening on http://";

/// A lab's binary running as a child process; killed when dropped.
pub struct LabProcess {
    child: Child,
    addr: SocketAddr,
    /// Everything the process has written so far, stdout and stderr
    /// interleaved line by line, for failure messages.
    output: Arc<Mutex<String>>,
    /// The threads reading its stdout and stderr.
    readers: Vec<thread::JoinHandle<()>>,
    /// Filled in once the process has exited and been reaped.
    status: Option<ExitStatus>,
}

impl LabProcess {
    /// Starts `command` and waits until it prints `... listening on
    /// http://ADDR`. Give it `--port 0` (every lab server takes `--port`), so
    /// that it picks a free port.
    ///
    /// Its stdin is closed and its output captured (see [`output`](Self::output));
    /// its environment is the test's, plus what `command` adds.
    ///
    /// Panics, with what the process printed, if it exits first or has not
    /// said where it listens within 20 s.
    pub async fn start(command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        // Read both pipes to the end on threads of their own, so that a chatty
        // server never blocks on a full pipe while the test is busy elsewhere.
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(collect(stdout, output.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(collect(stderr, output.clone()));
        }
        let mut process = LabProcess {
            child,
            // Replaced below, once the process has said where it listens.
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
            readers,
            status: None,
        };
        process.addr = process.announced_addr(command).await;
        process
    }

    /// Waits for the `listening on http://ADDR` line and parses ADDR.
    async fn announced_addr(&mut self, command: &Command) -> SocketAddr {
        let give_up = Instant::now() + READY_LIMIT;
        loop {
            if let Some(addr) = find_addr(&self.output()) {
                return addr;
            }
            if let Some(status) = self.poll_exit() {
                panic!(
                    "{command:?} exited ({status}) before saying where it listens. It printed:\n{}",
                    self.output()
                );
            }
            if Instant::now() >= give_up {
                panic!(
                    "{command:?} did not say where it listens (\"...{READY_MARK}ADDR\") \
                     within {READY_LIMIT:?}. It printed:\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The address the server announced.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full URL of `path` on this server, e.g. `url("/health")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The process id (for messages, or a learner's `kill`).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has printed so far (stdout and stderr, line by
    /// line as they came): put it in failure messages.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sends SIGTERM, what `kill PID`, systemd and Kubernetes send to ask a
    /// process to stop. Does nothing if the process has already exited.
    #[cfg(unix)]
    pub fn terminate(&mut self) {
        self.signal(Signal::TERM);
    }

    /// Sends SIGINT, what Ctrl-C in a terminal sends. Does nothing if the
    /// process has already exited.
    #[cfg(unix)]
    pub fn interrupt(&mut self) {
        self.signal(Signal::INT);
    }

    /// Sends `signal` to the process (the `kill` system call, through
    /// rustix's safe wrapper). Panics if it cannot be sent.
    #[cfg(unix)]
    pub fn signal(&mut self, signal: Signal) {
        // A process that has exited but not yet been reaped keeps its id, so
        // the id cannot belong to another process here; once reaped, stop.
        if self.poll_exit().is_some() {
            return;
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal)
            .unwrap_or_else(|e| panic!("cannot send {signal:?} to process {pid:?}: {e}"));
    }

    /// Waits up to `limit` for the process to exit; its exit status, or `None`
    /// if it is still running (it stays running: the test decides what next,
    /// and dropping the `LabProcess` kills it).
    ///
    /// Measure the time yourself around the call if the test is about how
    /// long the exit took.
    pub async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let give_up = Instant::now() + limit;
        loop {
            if let Some(status) = self.poll_exit() {
                return Some(status);
            }
            if Instant::now() >= give_up {
                return None;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.poll_exit().is_none()
    }

    /// The exit status, if the process has exited (reaping it if needed).
    /// Once it has, its last lines are in [`output`](Self::output) too.
    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
            if self.status.is_some() {
                self.finish_reading();
            }
        }
        self.status
    }

    /// Waits, briefly, for the reader threads to reach the end of the pipes,
    /// which close when the process exits.
    fn finish_reading(&mut self) {
        let give_up = std::time::Instant::now() + READERS_LIMIT;
        while self.readers.iter().any(|r| !r.is_finished()) && std::time::Instant::now() < give_up {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if self.poll_exit().is_none() {
            // SIGKILL (TerminateProcess on Windows): cannot be caught or ignored,
            // so the wait below is short.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Appends every line read from `pipe` to `output`, on a thread of its own,
/// until the pipe closes (the process exited).
fn collect(pipe: impl Read + Send + 'static, output: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            let mut output = output.lock().unwrap_or_else(|e| e.into_inner());
            output.push_str(&text);
            if !text.ends_with('\n') {
                output.push('\n');
            }
            line.clear();
        }
    })
}

/// The address in a `... listening on http://ADDR ...` line, if there is one.
fn find_addr(output: &str) -> Option<SocketAddr> {
    output.lines().find_map(|line| {
        let (_, rest) = line.split_once(READY_MARK)?;
        let addr = rest.split(|c: char| c.is_whitespace() || c == '/').next()?;
        addr.parse().ok()
    })
}
