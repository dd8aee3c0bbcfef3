//! `cargo xtask console <lab>`: watch a lab's bug happen in tokio-console.
//!
//! tokio-console shows a running program's tasks: how many there are, how
//! long each has been busy or idle, where it was spawned. That makes the bugs
//! of this course visible: a handler that holds its thread for a second, tasks
//! that pile up after their clients left. But a server at rest shows nothing,
//! so this verb does three things at once:
//!
//! 1. builds and starts the lab's server with the console enabled (your code,
//!    the committed `--starter` or the `--solution`), on 127.0.0.1 only, with
//!    the console's port moved if 6669 is taken;
//! 2. drives traffic that shows the lab's bug (see [`scenarios`]), printing
//!    what the traffic sees;
//! 3. says what to look for and the exact `tokio-console` command to run.
//!
//! Ctrl-C (or SIGTERM) stops the traffic and the server; the server is a
//! supervised child, so it never outlives the xtask.
//!
//! `--starter` and `--solution` build a scratch copy of the committed
//! workspace (as `verify` does) in `target/console/`, with the same target
//! directory, so only the path crates compile (see [`crate::scratch`] for
//! why they must not share units with your own labs).

pub mod capture;
mod scenarios;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::cargo_test::cargo;
use crate::labs::{self, Lab};
use crate::runner::process::{self, Supervised};
use crate::runner::tokio_console_installed;
use crate::runner::ui::{self, command, paint};
use crate::scratch;
use scenarios::Scenario;

/// Run a lab's server under tokio-console, with traffic that shows its bug.
///
/// Builds the lab (your code, or --starter / --solution), starts its server
/// with console-subscriber on, drives traffic that makes the bug visible,
/// and tells you what to look for and how to open tokio-console. Ctrl-C
/// stops everything.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`blocking`) or number (`1`).
    pub lab: String,
    /// Run the reference solution instead of your code.
    #[arg(long, conflicts_with = "starter")]
    pub solution: bool,
    /// Run the committed starter instead of your code (the same thing
    /// until you change the lab).
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
    /// The learner's code in `labs/NN-slug`.
    Yours,
    /// The lab as committed.
    Starter,
    /// The lab as committed, with `solutions/NN-slug` laid over it.
    Solution,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Yours => "yours",
            Variant::Starter => "starter",
            Variant::Solution => "solution",
        }
    }

    /// The tag of this variant's scratch tree (see [`scratch::isolate`]).
    fn tag(self) -> &'static str {
        match self {
            Variant::Yours => "yours",
            Variant::Starter => "console-starter",
            Variant::Solution => "console-solution",
        }
    }
}

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let lab = crate::runner::find_lab(workspace, &args.lab)?;
    let variant = if args.solution {
        Variant::Solution
    } else if args.starter {
        Variant::Starter
    } else {
        Variant::Yours
    };
    let scenario = scenarios::for_lab(&lab.slug);
    let ports = Ports::choose(args.port, args.console_port)?;

    let binary = build(workspace, &lab, variant)?;
    // From here on, the first Ctrl-C stops traffic and server tidily.
    process::handle_stop_myself();
    let mut server = LabProcess::start(&binary, &lab, ports)?;
    print_banner(
        workspace,
        &lab,
        variant,
        &server,
        &scenario,
        args.no_traffic,
    );

    let runtime = tokio::runtime::Runtime::new().context("starting a tokio runtime")?;
    let addr = server.addr;
    let reason = runtime.block_on(async {
        let traffic = async {
            if args.no_traffic {
                std::future::pending::<()>().await;
            }
            scenario.drive(addr).await;
        };
        let limit = async {
            match args.duration {
                Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = process::stop_requested() => "stopped",
            _ = limit => "time is up",
            _ = traffic => "the traffic ended",
            exited = server.exited() => exited,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    let stopped = server.stop();
    anstream::println!("\n{} ({reason}); {}.", paint(ui::STRONG, "Done"), stopped);
    Ok(ExitCode::SUCCESS)
}

fn print_banner(
    workspace: &Workspace,
    lab: &Lab,
    variant: Variant,
    server: &LabProcess,
    scenario: &Scenario,
    no_traffic: bool,
) {
    let what = match variant {
        Variant::Yours => format!("your code in {}", workspace.relative(&lab.dir)),
        Variant::Starter => "the committed starter".to_owned(),
        Variant::Solution => "the solution".to_owned(),
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
    if !tokio_console_installed() {
        anstream::println!(
            "            {} tokio-console is not installed: {} (takes a few minutes)",
            paint(ui::WARN, "!"),
            command("cargo install --locked tokio-console")
        );
    }
    anstream::println!();
    if no_traffic {
        anstream::println!("Traffic:   none (--no-traffic); try curl against the server.");
    } else {
        anstream::println!(
            "{}",
            ui::wrap(&format!("Traffic: {}", scenario.traffic), "", 78).trim_end()
        );
    }
    let look_for = match variant {
        Variant::Solution => scenario.solution,
        Variant::Yours | Variant::Starter => scenario.starter,
    };
    anstream::println!("\n{}", paint(ui::STRONG, "What to look for:"));
    anstream::println!("{}", ui::wrap(look_for, "  ", 78).trim_end());
    if variant != Variant::Solution && scenario.has_bug {
        anstream::println!(
            "{}",
            ui::wrap(
                &format!(
                    "Then compare with the fix: cargo xtask console {} --solution",
                    lab.slug
                ),
                "  ",
                78
            )
            .trim_end()
        );
    }
    anstream::println!(
        "\n{}\n",
        paint(ui::DIM, "Ctrl-C stops the traffic and the server.")
    );
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
        Ok(Ports {
            server: 0,
            console: free_port()?,
        })
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

/// Builds the lab's server and returns a private copy of its executable
/// (so that another build of the same package cannot replace it under us).
pub fn build(workspace: &Workspace, lab: &Lab, variant: Variant) -> Result<PathBuf> {
    let package = lab.package.clone();
    let (root, env) = match variant {
        Variant::Yours => (
            workspace.root.clone(),
            vec![("CARGO_TARGET_DIR", workspace.target_dir.clone())],
        ),
        Variant::Starter | Variant::Solution => {
            let tree = scratch_tree(workspace, variant)?;
            let own_target = console_dir(workspace, variant).join("target");
            let env = scratch::cargo_env(&workspace.target_dir, &own_target);
            (tree, env.to_vec())
        }
    };
    anstream::println!(
        "{} {} ({})",
        paint(ui::STRONG, "Building"),
        lab.label(),
        variant.name()
    );
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
    let mut cargo = Command::new(cargo());
    cargo
        .args(["build", "--package", &package, "--bin", &package])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(&root)
        .envs(env)
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Supervised::spawn(&mut cargo).context("could not start cargo")?;
    let stdout = child.child().stdout.take().expect("stdout is piped");
    let messages = read_all(stdout);
    let status = child.wait()?;
    if !status.success() {
        bail!("the lab's server did not build (see the errors above)");
    }
    let executable = messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == package.as_str())
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .context("cargo built no executable for the lab")?;

    let private =
        console_dir(workspace, variant).join(format!("{package}{}", std::env::consts::EXE_SUFFIX));
    std::fs::create_dir_all(private.parent().expect("has a parent"))?;
    // Copy next to the final name, then rename: a running copy is never
    // overwritten in place.
    let partial = private.with_extension("partial");
    std::fs::copy(&executable, &partial)
        .with_context(|| format!("copying {}", executable.display()))?;
    std::fs::rename(&partial, &private)?;
    Ok(private)
}

/// The committed workspace (with every solution laid over its lab for
/// [`Variant::Solution`]) in `target/console/<variant>`, made with the same
/// machinery as `verify`: unchanged files keep their timestamps, so cargo
/// recompiles only what changed since the last time.
fn scratch_tree(workspace: &Workspace, variant: Variant) -> Result<PathBuf> {
    let snapshot = crate::verify::snapshot(workspace, false)?;
    let mut files = snapshot.files;
    if variant == Variant::Solution {
        let overlay: BTreeMap<PathBuf, _> = files
            .iter()
            .filter_map(|(path, contents)| {
                let relative = path.strip_prefix("solutions").ok()?;
                Some((Path::new("labs").join(relative), contents.clone()))
            })
            .collect();
        files.extend(overlay);
    }
    // Separate units from the real workspace's, or cargo would mix them up.
    let tree = console_dir(workspace, variant).join("tree");
    scratch::isolate(&mut files, variant.tag(), &tree);
    crate::verify::sync_tree(&files, &tree)
        .with_context(|| format!("writing the scratch tree {}", tree.display()))?;
    // The lab's own files must load in the tree, as in the real workspace.
    labs::discover(&tree)?;
    Ok(tree)
}

/// `target/console/<variant>`: the variant's scratch tree and target directory.
fn console_dir(workspace: &Workspace, variant: Variant) -> PathBuf {
    workspace.target_dir.join("console").join(variant.name())
}

fn read_all(mut pipe: impl Read) -> String {
    let mut text = String::new();
    pipe.read_to_string(&mut text).ok();
    text
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
    /// Starts `binary` on the given ports with the console enabled, and
    /// waits until it listens. Its output is shown, each line marked.
    pub fn start(binary: &Path, lab: &Lab, ports: Ports) -> Result<LabProcess> {
        let console = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.console));
        let mut command = Command::new(binary);
        command
            .args(["--port", &ports.server.to_string()])
            .env("TOKIO_CONSOLE", "1")
            .env("TOKIO_CONSOLE_BIND", console.to_string())
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = Supervised::spawn(&mut command)
            .with_context(|| format!("could not start {}", binary.display()))?;

        // Both outputs go through one channel: lines until "listening on",
        // then shown as they come.
        let (lines_tx, lines) = mpsc::channel::<String>();
        let (closed_tx, closed) = tokio::sync::oneshot::channel();
        let stdout = child.child().stdout.take().expect("stdout is piped");
        let stderr = child.child().stderr.take().expect("stderr is piped");
        let forward = |pipe: Box<dyn Read + Send>, lines_tx: mpsc::Sender<String>| {
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            })
        };
        forward(Box::new(stderr), lines_tx.clone());
        let stdout_done = forward(Box::new(stdout), lines_tx);

        let started = Instant::now();
        let mut seen = Vec::new();
        let addr = loop {
            let left = STARTUP_LIMIT.saturating_sub(started.elapsed());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    show_server_line(&line);
                    if line.contains("tokio-console: NOT enabled") {
                        bail!(
                            "the server was built without `--cfg tokio_unstable` (see its \
                             message above), so tokio-console cannot connect"
                        );
                    }
                    if let Some(addr) = listening_address(&line) {
                        break addr;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    bail!(
                        "{} did not start listening within {} s{}",
                        lab.label(),
                        STARTUP_LIMIT.as_secs(),
                        status
                            .map(|s| format!(" (it exited: {s})"))
                            .unwrap_or_default()
                    );
                }
            }
        };
        thread::spawn(move || {
            for line in lines {
                show_server_line(&line);
            }
        });
        thread::spawn(move || {
            let _ = stdout_done.join();
            let _ = closed_tx.send(());
        });
        wait_until_accepting(console, Duration::from_secs(5));
        Ok(LabProcess {
            child,
            addr,
            console,
            closed: Some(closed),
        })
    }

    /// Completes when the server exits by itself, saying so.
    pub async fn exited(&mut self) -> &'static str {
        match self.closed.take() {
            Some(closed) => {
                let _ = closed.await;
                "the server exited"
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

fn show_server_line(line: &str) {
    anstream::println!("{} {line}", paint(ui::DIM, "  server |"));
}

/// `hello listening on http://127.0.0.1:8080 (Ctrl-C to stop)` -> the address.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let (_, rest) = line.split_once("listening on http://")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Waits (a bounded time) until something accepts connections on `addr`.
fn wait_until_accepting(addr: SocketAddr, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_servers_first_line() {
        let line = "cancellation listening on http://127.0.0.1:41234 (Ctrl-C to stop)";
        assert_eq!(
            listening_address(line),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(
            listening_address("upstream (/ok) on http://127.0.0.1:1"),
            None
        );
    }

    #[test]
    fn busy_ports_are_replaced_by_free_ones() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(!port_is_free(port));
        let ports = Ports::choose(Some(1234), Some(port)).unwrap();
        assert_eq!(
            (ports.server, ports.console),
            (1234, port),
            "asked-for ports are kept"
        );
        let free = Ports::any_free().unwrap();
        assert!(port_is_free(free.console));
        assert_eq!(free.server, 0);
    }
}
