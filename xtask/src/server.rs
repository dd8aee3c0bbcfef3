//! A lab's server and its traffic, built and run outside cargo with
//! tokio-console on: what `console`, `dev capture-console` and
//! `dev console-check` share.
//!
//! The server is started on 127.0.0.1 with `TOKIO_CONSOLE=1`, and is ready
//! once it prints `listening on http://<address>`. The traffic is the lab's
//! `examples/traffic.rs`, run with the server's URL; it prints one report
//! line per observation. Both are supervised children, so they never
//! outlive the tool.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cargo;
use crate::process::{self, Supervised};
use crate::ui::{self, paint};
use crate::workbook::{Lab, Workbook};

/// Why [`RunningServer::exited`] completed.
pub const SERVER_EXITED: &str = "the server exited";

/// How long a server has to say where it listens.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// Which code of a lab to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The code in `labs/NN-slug` (the starter, until the learner changes it).
    #[value(name = "starter")]
    Lab,
    /// The crate `solutions/NN-slug`.
    Solution,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Lab => "starter",
            Variant::Solution => "solution",
        }
    }

    /// The crate's folder.
    pub fn dir(self, lab: &Lab) -> PathBuf {
        match self {
            Variant::Lab => lab.dir.clone(),
            Variant::Solution => lab.solution_dir(),
        }
    }
}

/// Whether a child's output lines are shown as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Shown,
    Hidden,
}

/// The two ports a console session listens on (both on 127.0.0.1).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The lab's HTTP server; 0 lets the server pick.
    pub server: u16,
    /// console-subscriber's gRPC server, which tokio-console connects to.
    pub console: u16,
}

impl Ports {
    /// The ports asked for, else the usual ones (8080, 6669) when free,
    /// else free ones.
    pub fn choose(server: Option<u16>, console: Option<u16>) -> Result<Ports> {
        let server = server.unwrap_or(if port_is_free(8080) { 8080 } else { 0 });
        let console = match console {
            Some(port) => port,
            None if port_is_free(6669) => 6669,
            None => free_port()?,
        };
        Ok(Ports { server, console })
    }

    /// Free ports for both (for scripts, which must not collide with a
    /// learner's session).
    pub fn any_free() -> Result<Ports> {
        Ok(Ports { server: 0, console: free_port()? })
    }
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port that was free a moment ago (the OS picks it).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A lab's server and traffic executables, and the library path they need
/// (see [`cargo::library_path`]).
pub struct LabExecutables {
    server: PathBuf,
    /// The lab's `examples/traffic.rs`, if it has one.
    traffic: Option<PathBuf>,
    library_path: (&'static str, std::ffi::OsString),
}

impl LabExecutables {
    /// Builds the lab's server (`cargo build -p <package> --bin <package>`)
    /// and, if the lab has one, its traffic (`--example traffic --features
    /// traffic`: the feature keeps `cargo test -p <lab>` from building it).
    pub fn build(workbook: &Workbook, lab: &Lab, variant: Variant) -> Result<LabExecutables> {
        let package = match variant {
            Variant::Lab => lab.slug.clone(),
            Variant::Solution => lab.solution_package(),
        };
        anstream::println!(
            "{} {} ({})",
            paint(ui::STRONG, "Building"),
            lab.label(),
            variant.name()
        );
        if std::env::var_os("RUSTFLAGS").is_some() {
            let note = "(ignoring RUSTFLAGS from your environment: it would replace the \
                        `--cfg tokio_unstable` of .cargo/config.toml that tokio-console needs)";
            ui::note(note);
        }
        let has_traffic = lab.dir.join("examples").join("traffic.rs").is_file();
        let mut args = vec!["--package", &package, "--bin", &package];
        if has_traffic {
            args.extend(["--example", "traffic", "--features", "traffic"]);
        }
        let built = cargo::build(workbook, &args)?;
        // Private copies: every lab's example is `target/debug/examples/traffic`,
        // and the next build of another lab would replace it under us.
        let private = workbook.target_dir.join("workbook").join("console").join(&package);
        std::fs::create_dir_all(&private)?;
        let find = |name: &str| -> Option<PathBuf> {
            let built = built.iter().find(|e| e.name == name)?;
            let copy = private.join(built.path.file_name()?);
            // Copied beside, then renamed: the old copy may still be running
            // (another session of this lab), and a running file cannot be
            // written over, but it can be replaced.
            let fresh = private.join(format!(".{}.{}", built.name, std::process::id()));
            std::fs::copy(&built.path, &fresh).ok()?;
            std::fs::rename(&fresh, &copy).ok()?;
            Some(copy)
        };
        let traffic = match has_traffic {
            true => Some(find("traffic").context("cargo built no traffic example")?),
            false => None,
        };
        Ok(LabExecutables {
            library_path: cargo::library_path(workbook),
            server: find(&package).context("cargo built no executable for the lab's server")?,
            traffic,
        })
    }

    /// Whether the lab has traffic of its own.
    pub fn has_traffic(&self) -> bool {
        self.traffic.is_some()
    }

    /// A command that runs `executable`, one of these, outside cargo.
    fn command(&self, executable: &Path) -> Command {
        let mut command = Command::new(executable);
        command.env(self.library_path.0, &self.library_path.1);
        command
    }

    /// Starts the server on `ports` with the console enabled, and waits
    /// until it listens.
    pub fn start_server(&self, lab: &Lab, ports: Ports, echo: Echo) -> Result<RunningServer> {
        RunningServer::start(self.command(&self.server), lab, ports, echo)
    }

    /// Starts the lab's traffic against `server`, if the lab has traffic.
    pub fn start_traffic(&self, server: SocketAddr, echo: Echo) -> Result<Option<Traffic>> {
        let Some(traffic) = &self.traffic else { return Ok(None) };
        Traffic::start(self.command(traffic), server, echo).map(Some)
    }
}

/// The lab's traffic, running against a server; its report lines are kept
/// (and shown as `traffic | ...` with [`Echo::Shown`]). Stopped when dropped.
pub struct Traffic {
    _child: Supervised,
    reported: Arc<Mutex<Vec<String>>>,
}

impl Traffic {
    fn start(mut command: Command, server: SocketAddr, echo: Echo) -> Result<Traffic> {
        command.arg(format!("http://{server}")).stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = Supervised::spawn(&mut command).context("could not start the traffic")?;
        let (lines_tx, lines) = mpsc::channel();
        process::forward_lines(child.child().stdout.take().expect("stdout is piped"), lines_tx);
        let reported = Arc::new(Mutex::new(Vec::new()));
        let keep = reported.clone();
        thread::spawn(move || {
            for line in lines {
                if echo == Echo::Shown {
                    anstream::println!("{} {line}", paint(ui::COMMAND, "traffic |"));
                }
                keep.lock().expect("no panic while holding it").push(line);
            }
        });
        Ok(Traffic { _child: child, reported })
    }

    /// The last `count` lines reported so far.
    pub fn last_reported(&self, count: usize) -> Vec<String> {
        let reported = self.reported.lock().expect("no panic while holding it");
        reported[reported.len().saturating_sub(count)..].to_vec()
    }
}

/// A lab's server running with the console enabled.
pub struct RunningServer {
    child: Supervised,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Where tokio-console connects.
    pub console: SocketAddr,
    /// Tells when the server exits on its own (its stdout closes).
    closed: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl RunningServer {
    fn start(mut command: Command, lab: &Lab, ports: Ports, echo: Echo) -> Result<RunningServer> {
        let console = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.console));
        command
            .args(["--port", &ports.server.to_string()])
            .env("TOKIO_CONSOLE", "1")
            .env("TOKIO_CONSOLE_BIND", console.to_string())
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Supervised::spawn(&mut command)
            .with_context(|| format!("could not start {:?}", command.get_program()))?;

        // Both outputs go through one channel: lines until "listening on",
        // then shown as they come.
        let (lines_tx, lines) = mpsc::channel::<String>();
        let stderr = child.child().stderr.take().expect("stderr is piped");
        process::forward_lines(stderr, lines_tx.clone());
        let stdout = child.child().stdout.take().expect("stdout is piped");
        let stdout_done = process::forward_lines(stdout, lines_tx);
        let show = move |line: &str| {
            if echo == Echo::Shown {
                anstream::println!("{} {line}", paint(ui::DIM, "  server |"));
            }
        };
        let started = Instant::now();
        let addr = loop {
            let Ok(line) = lines.recv_timeout(STARTUP_LIMIT.saturating_sub(started.elapsed()))
            else {
                let exited = child.try_wait().ok().flatten().map(|s| format!(" (it exited: {s})"));
                bail!(
                    "{} did not start listening within {} s{}",
                    lab.label(),
                    STARTUP_LIMIT.as_secs(),
                    exited.unwrap_or_default()
                );
            };
            show(&line);
            if line.contains("tokio-console: NOT enabled") {
                bail!(
                    "the server was built without `--cfg tokio_unstable` (see its message above), \
                     so tokio-console cannot connect"
                );
            }
            if let Some(addr) = listening_address(&line) {
                break addr;
            }
        };
        thread::spawn(move || lines.into_iter().for_each(|line| show(&line)));
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        thread::spawn(move || {
            let _ = stdout_done.join();
            let _ = closed_tx.send(());
        });
        Ok(RunningServer { child, addr, console, closed: Some(closed) })
    }

    /// Completes when the server exits by itself, saying so.
    pub async fn exited(&mut self) -> &'static str {
        match self.closed.take() {
            Some(closed) => {
                let _ = closed.await;
                SERVER_EXITED
            }
            None => std::future::pending().await,
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after a grace period) and
    /// says how it ended.
    pub fn stop(mut self) -> String {
        let port = self.addr.port();
        match self.child.stop(process::GRACE) {
            Some(status) if status.success() => {
                format!("the server stopped cleanly and port {port} is free again")
            }
            Some(status) => format!("the server stopped ({status})"),
            None => "the server could not be stopped".to_owned(),
        }
    }
}

/// `hello listening on http://127.0.0.1:8080 (Ctrl-C to stop)` -> the address:
/// how every lab server says where it listens.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    rest.split_whitespace().next()?.trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_ports_are_replaced_by_free_ones() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(!port_is_free(port));
        let ports = Ports::choose(Some(1234), Some(port)).unwrap();
        assert_eq!((ports.server, ports.console), (1234, port), "asked-for ports are kept");
        let free = Ports::any_free().unwrap();
        assert!(port_is_free(free.console));
        assert_eq!(free.server, 0);
    }

    #[test]
    fn the_address_is_read_from_a_servers_line() {
        let line = "cancellation listening on http://127.0.0.1:41234 (Ctrl-C to stop)";
        assert_eq!(listening_address(line), Some("127.0.0.1:41234".parse().unwrap()));
        assert_eq!(listening_address("upstream (/ok) on http://127.0.0.1:1"), None);
    }
}
