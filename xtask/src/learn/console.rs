//! `cargo xtask console <lab>`: watch a lab's bug happen in tokio-console.
//!
//! tokio-console shows a running program's tasks: how many there are, how
//! long each has been busy or idle, where it was spawned. That makes the bugs
//! of this course visible. But a server at rest shows nothing, so this verb
//! does three things at once:
//!
//! 1. builds and starts the lab's server with the console enabled (your code
//!    or, with `--solution`, the solution crate), on 127.0.0.1 only, with the
//!    console's port moved if 6669 is taken;
//! 2. runs the lab's own traffic, `labs/NN-slug/examples/traffic.rs`, and
//!    shows what it reports;
//! 3. says what to look for (the `[console]` table of the lab's `lab.toml`)
//!    and the exact `tokio-console` command to run.
//!
//! Ctrl-C (or SIGTERM) stops the traffic and the server: both are supervised
//! children, so they never outlive the tool.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{self, Supervised};
use crate::progress::{self, Progress};
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook};
use crate::{cargo, git};

/// Why the run ended when the server process exited by itself (e.g. a
/// learner's `kill -TERM`).
const SERVER_EXITED: &str = "the server exited";

/// How long the traffic may go on reporting after the server has exited.
const TRAFFIC_LAST_WORDS: Duration = Duration::from_secs(2);

/// Run a lab's server under tokio-console, with traffic that shows its bug.
///
/// Builds the lab (your code, or --solution), starts its server with
/// console-subscriber on, drives the lab's traffic (its
/// examples/traffic.rs), and tells you what to look for and how to open
/// tokio-console. Ctrl-C stops everything.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`blocking`) or number (`1`).
    pub lab: String,
    /// Run the solution crate instead of your code.
    #[arg(long, conflicts_with = "starter")]
    pub solution: bool,
    /// Run the starter: your lab, which must still be as committed.
    #[arg(long)]
    pub starter: bool,
    /// The server's port (default: 8080, or a free one if 8080 is taken).
    #[arg(long)]
    pub port: Option<u16>,
    /// The console's port (default: 6669, or a free one if 6669 is taken).
    #[arg(long)]
    pub console_port: Option<u16>,
    /// Stop after this many seconds instead of waiting for Ctrl-C.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Start the server, but send it no traffic.
    #[arg(long)]
    pub no_traffic: bool,
}

/// Which code of a lab to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The code in `labs/NN-slug` (the starter, until the learner changes it).
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
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let lab = workbook.lab(&args.lab)?;
    let variant = if args.solution { Variant::Solution } else { Variant::Lab };
    if args.starter && git::changes(&workbook.root, &lab.dir).is_some_and(|c| !c.is_empty()) {
        bail!(
            "{} differs from the committed starter, so --starter cannot run it as committed. \
             Leave out --starter to run your code, or `cargo xtask reset {}` first.",
            workbook.relative(&lab.dir),
            lab.slug
        );
    }
    let ports = Ports::choose(args.port, args.console_port)?;
    let built = build(workbook, &lab, variant)?;
    // From here on, the first Ctrl-C stops traffic and server tidily.
    process::handle_stop_myself();
    let mut server = LabProcess::start(built.command(&built.server), &lab, ports)?;
    print_banner(workbook, &lab, variant, &server, args.no_traffic);
    let traffic = match (&built.traffic, args.no_traffic) {
        (Some(traffic), false) => Some(Traffic::start(built.command(traffic), server.addr)?),
        _ => None,
    };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reason = runtime.block_on(async {
        let limit = async {
            match args.duration {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            _ = process::stop_requested() => "stopped",
            _ = limit => "time is up",
            exited = server.exited() => exited,
        };
        if traffic.is_some() && reason == SERVER_EXITED {
            // How the clients in flight ended (answered, cut off) is the
            // point of a lab about stopping: let the traffic say it.
            tokio::time::sleep(TRAFFIC_LAST_WORDS).await;
        }
        reason
    });
    drop(traffic);
    let stopped = server.stop();
    anstream::println!("\n{} ({reason}); {stopped}.", paint(ui::STRONG, "Done"));
    Ok(ExitCode::SUCCESS)
}

fn print_banner(
    workbook: &Workbook,
    lab: &Lab,
    variant: Variant,
    server: &LabProcess,
    no_traffic: bool,
) {
    let what = match variant {
        Variant::Lab => format!("your code in {}", workbook.relative(&lab.dir)),
        Variant::Solution => format!("the solution in {}", workbook.relative(&lab.solution_dir())),
    };
    anstream::println!(
        "\n{} lab {} ({what}) runs with tokio-console enabled.\n",
        paint(ui::STRONG, "Console:"),
        lab.label()
    );
    anstream::println!("  server    http://{}", server.addr);
    anstream::println!(
        "  console   {}   {}",
        command(format!("tokio-console http://{}", server.console)),
        paint(ui::DIM, "<- run this in another terminal")
    );
    if !process::on_path("tokio-console") {
        anstream::println!(
            "            {} tokio-console is not installed: {} (takes a few minutes)",
            paint(ui::WARN, "!"),
            command("cargo install --locked tokio-console")
        );
    }
    let console = &lab.console;
    let traffic = match (&console.traffic, no_traffic) {
        (_, true) => "none (--no-traffic); try curl against the server.",
        (Some(traffic), false) => traffic.as_str(),
        (None, false) => "none for this lab; use the curl commands of its chapter.",
    };
    anstream::println!("\n{}", ui::wrap(&format!("Traffic: {traffic}"), "", 78).trim_end());
    let look_for = match variant {
        Variant::Lab => &console.starter,
        Variant::Solution => &console.solution,
    };
    let look_for = look_for
        .as_deref()
        .unwrap_or("Send a few requests with curl and watch the tasks they create.");
    anstream::println!("\n{}", paint(ui::STRONG, "What to look for:"));
    anstream::println!("{}", ui::wrap(look_for, "  ", 78).trim_end());
    if variant == Variant::Lab && console.solution.is_some() {
        // The solution's picture gives the fix away: offer it once the lab
        // passes, and before that only as what it is.
        let progress = Progress::load(&workbook.root);
        let compare = if progress::state(workbook, lab, &progress).passing() {
            format!(
                "Your lab passes: compare with the reference fix, \
                 `cargo xtask console {} --solution`.",
                lab.slug
            )
        } else {
            format!(
                "Once your lab passes, `cargo xtask console {} --solution` shows the \
                 reference fix the same way (a spoiler until then).",
                lab.slug
            )
        };
        anstream::println!("{}", ui::wrap(&compare, "  ", 78).trim_end());
    }
    anstream::println!("\n{}\n", paint(ui::DIM, "Ctrl-C stops the traffic and the server."));
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

/// The executables of a console session.
pub struct Built {
    pub server: PathBuf,
    /// The lab's `examples/traffic.rs`, if it has one.
    pub traffic: Option<PathBuf>,
    /// The library path they need (see [`cargo::library_path`]).
    pub library_path: (&'static str, std::ffi::OsString),
}

impl Built {
    /// A command that runs `executable`, one of these, outside cargo.
    pub fn command(&self, executable: &Path) -> Command {
        let mut command = Command::new(executable);
        command.env(self.library_path.0, &self.library_path.1);
        command
    }
}

/// Builds the lab's server (`cargo build -p <package> --bin <package>`) and,
/// if the lab has one, its traffic (`--example traffic --features traffic`:
/// the feature keeps `cargo test -p <lab>` from building it).
pub fn build(workbook: &Workbook, lab: &Lab, variant: Variant) -> Result<Built> {
    let package = match variant {
        Variant::Lab => lab.slug.clone(),
        Variant::Solution => lab.solution_package(),
    };
    anstream::println!("{} {} ({})", paint(ui::STRONG, "Building"), lab.label(), variant.name());
    if std::env::var_os("RUSTFLAGS").is_some() {
        anstream::println!(
            "{}",
            paint(
                ui::DIM,
                "(ignoring RUSTFLAGS from your environment: it would replace the \
                 `--cfg tokio_unstable` of .cargo/config.toml that tokio-console needs)"
            )
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
    Ok(Built {
        library_path: cargo::library_path(workbook),
        server: find(&package).context("cargo built no executable for the lab's server")?,
        traffic: if has_traffic {
            Some(find("traffic").context("cargo built no traffic example")?)
        } else {
            None
        },
    })
}

/// The lab's traffic, running against a server; its report lines are shown
/// as `traffic | ...` and kept. Stopped when dropped.
pub struct Traffic {
    _child: Supervised,
    reported: Arc<Mutex<Vec<String>>>,
}

impl Traffic {
    pub fn start(command: Command, server: SocketAddr) -> Result<Traffic> {
        Traffic::start_with(command, server, Echo::Shown)
    }

    /// [`Traffic::start`], keeping the report lines without showing them.
    pub fn start_quietly(command: Command, server: SocketAddr) -> Result<Traffic> {
        Traffic::start_with(command, server, Echo::Hidden)
    }

    fn start_with(mut command: Command, server: SocketAddr, echo: Echo) -> Result<Traffic> {
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

    /// The lines reported so far.
    pub fn reported(&self) -> Vec<String> {
        self.reported.lock().expect("no panic while holding it").clone()
    }
}

/// A lab's server running with the console enabled.
pub struct LabProcess {
    child: Supervised,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Where tokio-console connects.
    pub console: SocketAddr,
    /// Tells when the server exits on its own (its stdout closes).
    closed: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// How long a server has to say where it listens.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

impl LabProcess {
    /// Starts the server `command` runs on the given ports with the
    /// console enabled, and waits until it listens. Its output is shown,
    /// each line marked.
    pub fn start(command: Command, lab: &Lab, ports: Ports) -> Result<LabProcess> {
        LabProcess::start_with(command, lab, ports, Echo::Shown)
    }

    /// [`LabProcess::start`], without showing the server's output.
    pub fn start_quietly(command: Command, lab: &Lab, ports: Ports) -> Result<LabProcess> {
        LabProcess::start_with(command, lab, ports, Echo::Hidden)
    }

    fn start_with(mut command: Command, lab: &Lab, ports: Ports, echo: Echo) -> Result<LabProcess> {
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
        process::forward_lines(
            child.child().stderr.take().expect("stderr is piped"),
            lines_tx.clone(),
        );
        let stdout_done =
            process::forward_lines(child.child().stdout.take().expect("stdout is piped"), lines_tx);
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
            if echo == Echo::Shown {
                show_server_line(&line);
            }
            if line.contains("tokio-console: NOT enabled") {
                bail!(
                    "the server was built without `--cfg tokio_unstable` (see its message above), \
                     so tokio-console cannot connect"
                );
            }
            if let Some(addr) = process::listening_address(&line) {
                break addr;
            }
        };
        thread::spawn(move || {
            lines
                .into_iter()
                .filter(|_| echo == Echo::Shown)
                .for_each(|line| show_server_line(&line))
        });
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        thread::spawn(move || {
            let _ = stdout_done.join();
            let _ = closed_tx.send(());
        });
        Ok(LabProcess { child, addr, console, closed: Some(closed) })
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

/// Whether a child's output lines are shown as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    Shown,
    Hidden,
}

fn show_server_line(line: &str) {
    anstream::println!("{} {line}", paint(ui::DIM, "  server |"));
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
}
