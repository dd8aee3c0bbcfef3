//! A lab's server and its traffic, built and run outside cargo with
//! tokio-console on: what `console`, `dev capture-console` and
//! `dev console-check` share. The server is ready once it prints
//! `listening on http://<address>`; the traffic (the lab's
//! `examples/traffic.rs`) prints a report line per observation. Both are
//! supervised children, so they never outlive the tool.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

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
        if self == Variant::Lab { "starter" } else { "solution" }
    }
}

/// Whether a child's output lines are shown as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Shown,
    Hidden,
}

/// The lab's HTTP port (0: the server picks) and console-subscriber's port,
/// both on 127.0.0.1.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub server: u16,
    pub console: u16,
}

impl Ports {
    /// The ports asked for, else 8080 and 6669 when free, else free ones.
    pub fn choose(server: Option<u16>, console: Option<u16>) -> Result<Ports> {
        let if_free = |port| Some(port).filter(|&port| port_is_free(port));
        let server = server.or_else(|| if_free(8080)).unwrap_or(0);
        let console = console.or_else(|| if_free(6669)).map_or_else(free_port, Ok)?;
        Ok(Ports { server, console })
    }

    /// Free ports, for scripts (never a learner's 8080 and 6669).
    pub fn any_free() -> Result<Ports> {
        Ok(Ports { server: 0, console: free_port()? })
    }
}

pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A lab's server and traffic executables, and the library path they need.
pub struct LabExecutables {
    server: PathBuf,
    traffic: Option<PathBuf>,
    library_path: (&'static str, std::ffi::OsString),
}

impl LabExecutables {
    /// Builds the lab's server and, if it has one, its traffic (`--example
    /// traffic --features traffic`: the feature keeps `cargo test` from
    /// building it).
    pub fn build(workbook: &Workbook, lab: &Lab, variant: Variant) -> Result<LabExecutables> {
        let package =
            if variant == Variant::Lab { lab.slug.clone() } else { lab.solution_package() };
        let (building, label, name) = (paint(ui::STRONG, "Building"), lab.label(), variant.name());
        anstream::println!("{building} {label} ({name})");
        if std::env::var_os("RUSTFLAGS").is_some() {
            ui::note(
                "(ignoring RUSTFLAGS from your environment: it would replace the \
                 `--cfg tokio_unstable` of .cargo/config.toml that tokio-console needs)",
            );
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
        let copy = |name: &str| -> Option<PathBuf> {
            let built = built.iter().find(|e| e.name == name)?;
            let copy = private.join(built.path.file_name()?);
            // A running copy cannot be written over, but it can be replaced.
            let fresh = private.join(format!(".{name}.{}", std::process::id()));
            std::fs::copy(&built.path, &fresh).ok()?;
            std::fs::rename(&fresh, &copy).is_ok().then_some(copy)
        };
        let traffic =
            has_traffic.then(|| copy("traffic").context("cargo built no traffic example"));
        let traffic = traffic.transpose()?;
        let server = copy(&package).context("cargo built no executable for the lab's server")?;
        Ok(LabExecutables { server, traffic, library_path: cargo::library_path(workbook) })
    }

    fn command(&self, executable: &Path) -> Command {
        let mut command = Command::new(executable);
        command.env(self.library_path.0, &self.library_path.1).stdin(Stdio::null());
        command
    }

    /// Starts the server with the console on, and waits until it listens.
    pub fn start_server(&self, lab: &Lab, ports: Ports, echo: Echo) -> Result<RunningServer> {
        let mut command = self.command(&self.server);
        let console = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.console));
        command.args(["--port", &ports.server.to_string()]).env_remove("PORT");
        command.envs([("TOKIO_CONSOLE", "1"), ("TOKIO_CONSOLE_BIND", &console.to_string())]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Supervised::spawn(&mut command)
            .with_context(|| format!("could not start {:?}", command.get_program()))?;
        // Both outputs through one channel: read until "listening on", then shown.
        let (lines_tx, lines) = mpsc::channel::<String>();
        process::forward_lines(child.child().stderr.take().expect("piped"), lines_tx.clone());
        process::forward_lines(child.child().stdout.take().expect("piped"), lines_tx);
        let show = move |line: &str| {
            if echo == Echo::Shown {
                anstream::println!("{} {line}", paint(ui::DIM, "  server |"));
            }
        };
        let started = Instant::now();
        let addr = loop {
            let left = STARTUP_LIMIT.saturating_sub(started.elapsed());
            let Ok(line) = lines.recv_timeout(left) else {
                let exited = child.try_wait().ok().flatten();
                let exited = exited.map(|s| format!(" (it exited: {s})")).unwrap_or_default();
                let (label, limit) = (lab.label(), STARTUP_LIMIT.as_secs());
                bail!("{label} did not start listening within {limit} s{exited}");
            };
            show(&line);
            ensure!(
                !line.contains("tokio-console: NOT enabled"),
                "the server was built without `--cfg tokio_unstable` (see its message above), \
                 so tokio-console cannot connect"
            );
            if let Some(addr) = listening_address(&line) {
                break addr;
            }
        };
        thread::spawn(move || lines.into_iter().for_each(|line| show(&line)));
        Ok(RunningServer { child, addr, console })
    }

    /// Starts the lab's traffic against `server`, if the lab has traffic.
    pub fn start_traffic(&self, server: SocketAddr, echo: Echo) -> Result<Option<Traffic>> {
        let Some(traffic) = &self.traffic else { return Ok(None) };
        let mut command = self.command(traffic);
        command.arg(format!("http://{server}")).stdout(Stdio::piped());
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
        Ok(Some(Traffic { _child: child, reported }))
    }
}

/// The lab's traffic, running; its report lines are kept. Stopped when dropped.
pub struct Traffic {
    _child: Supervised,
    reported: Arc<Mutex<Vec<String>>>,
}

impl Traffic {
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
}

impl RunningServer {
    /// Completes when the server exits by itself, saying so.
    pub async fn exited(&mut self) -> &'static str {
        while matches!(self.child.try_wait(), Ok(None)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        SERVER_EXITED
    }

    /// Stops the server (SIGTERM, then SIGKILL) and says how it ended.
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

/// `hello listening on http://127.0.0.1:8080 (Ctrl-C to stop)` -> the address.
pub fn listening_address(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    rest.split_whitespace().next()?.trim_end_matches('/').parse().ok()
}
