//! The tutorial's exercise 5, measured: the course's servers at 1, 10, 100
//! and 1000 concurrent clients, axum against Go on the same handler, this
//! lab's generator against wrk and oha, and the tail latency of axum at
//! c = 1000 under several runtime settings, side by side in one run.
//!
//! `cargo xtask bench [--quick]` builds and runs this (release mode, feature
//! `bench`) and writes the book's "Benchmark results" (results.json,
//! results.md, plot.svg). By hand:
//!
//! ```console
//! $ cargo run --release -p load-generator-solution --features bench --example bench -- --quick --out /tmp/bench
//! ```
//!
//! Every server and every load runs as its own process with one runtime
//! thread: servers pinned to core 0, load to core 1 (`taskset`, where there
//! is one and two cores). The bench starts itself for both: `bench serve
//! VARIANT` runs the axum twin ([`twin`]), `bench load GENERATOR URL C SECS`
//! runs this lab's generator (or the faster one, [`fast`]) and prints its
//! report as JSON. Servers listen on 127.0.0.1 only and are killed after
//! each run. wrk, oha and Go are used where installed; a line says how to
//! install what is missing.

mod fast;
mod tools;
mod twin;
mod write;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use clap::{Parser, Subcommand};
use load_generator::{Config, Stop};
use tools::{Measured, Tool};

#[derive(Parser)]
#[command(about = "Lab 11's benchmark: servers, generators and the tail at c = 1000")]
struct Args {
    #[command(subcommand)]
    inner: Option<Inner>,
    /// One second per run and no repeats (rougher numbers, under two minutes).
    #[arg(long)]
    quick: bool,
    /// Seconds per run (overrides --quick).
    #[arg(long)]
    seconds: Option<u64>,
    /// How many times to run each tail variant (interleaved).
    #[arg(long)]
    repeat: Option<usize>,
    /// Only the series whose name starts with one of these.
    #[arg(long)]
    only: Vec<String>,
    /// Print the runs and run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not pin servers and load to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// Where to write results.json, results.md and plot.svg (nothing is written without it).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// What the bench runs in its own child processes.
#[derive(Subcommand)]
enum Inner {
    /// Serve one variant of the axum twin.
    Serve { variant: String },
    /// Load a URL with `lab`, `lab-no-keep-alive` or `fast`; print the report as JSON.
    Load {
        generator: String,
        url: String,
        concurrency: usize,
        seconds: u64,
    },
}

/// Which server a series loads.
#[derive(Debug, Clone, Copy)]
enum Server {
    /// A solution's binary (`--port 0`).
    Lab(&'static str),
    /// A variant of the axum twin, by name.
    Twin(&'static str),
    /// `labs/11-load-generator/bench/api.go`.
    Go,
}

/// One path of one server, loaded by one tool at several concurrency levels.
pub struct Series {
    pub name: String,
    pub title: String,
    server: Server,
    pub path: &'static str,
    pub tool: Tool,
    levels: &'static [usize],
    /// Drawn in the plot.
    pub plot: bool,
    /// One of the tail variants at c = 1000 (one table, repeated runs).
    pub tail: bool,
}

const ALL: &[usize] = &[1, 10, 100, 1000];
const HIGH: &[usize] = &[10, 100, 1000];

/// The benchmark, as code, one line per series: name, what it is, server,
/// path, load, concurrency levels, whether the plot shows it. The server
/// comparisons are loaded by the fastest tool present.
#[rustfmt::skip]
fn plan() -> Vec<Series> {
    let (fast, axum) = (Tool::fastest(), Server::Twin("axum"));
    let table = [
        ("api", "lab 02's /api (a 50 ms audit-log write per request)", Server::Lab("shared-state-solution"), "/api", Tool::Lab, ALL, true),
        ("overload", "lab 03's /work?ms=20, at most 3 jobs at once, the rest shed with 503", Server::Lab("overload-solution"), "/work?ms=20", Tool::Lab, ALL, false),
        ("axum", "the tutorial's /api in axum, no delay", axum, "/api", fast, ALL, true),
        ("axum-nodelay", "the same, TCP_NODELAY on (as Go does)", Server::Twin("axum-nodelay"), "/api", fast, ALL, true),
        ("go", "the same /api in Go (bench/api.go)", Server::Go, "/api", fast, ALL, true),
        ("gen-lab", "axum's /api, loaded by this lab's generator (one reqwest Client)", axum, "/api", Tool::Lab, HIGH, false),
        ("gen-fast", "the same, one hyper HTTP/1 connection per worker (going further)", axum, "/api", Tool::Fast, HIGH, false),
        ("gen-oha", "the same, loaded by oha", axum, "/api", Tool::Oha, HIGH, false),
        ("gen-wrk", "the same, loaded by wrk", axum, "/api", Tool::Wrk, HIGH, false),
        ("no-keep-alive", "axum's /api, a new connection per request (lab 11's generator)", axum, "/api", Tool::LabNoKeepAlive, &[100], false),
        ("lines-unbuffered", "64 KiB in 1024 small body chunks", axum, "/lines/unbuffered", Tool::Lab, &[100], false),
        ("lines-buffered", "the same 64 KiB in one buffer", axum, "/lines/buffered", Tool::Lab, &[100], false),
    ];
    let mut plan: Vec<Series> = table.into_iter().map(|(name, title, server, path, tool, levels, plot)| {
        Series { name: name.into(), title: title.into(), server, path, tool, levels, plot, tail: false }
    }).collect();
    // The tail: every variant of the axum twin, and Go, at c = 1000.
    let variants = twin::VARIANTS.iter().map(|v| (v.name.trim_start_matches("axum-"), v.what, Server::Twin(v.name)));
    for (name, what, server) in variants.chain([("go", "Go's net/http, GOMAXPROCS=1", Server::Go)]) {
        plan.push(Series { name: format!("tail-{name}"), title: what.into(), server, path: "/api", tool: fast, levels: &[1000], plot: false, tail: true });
    }
    plan
}

/// Ratios of requests/s printed and written at the end: (title, of, to).
pub const RATIOS: &[(&str, &str, &str)] = &[
    (
        "lab 11's generator / oha (goal: at least 0.9)",
        "gen-lab",
        "gen-oha",
    ),
    (
        "hyper-connection generator / oha (goal: at least 0.9)",
        "gen-fast",
        "gen-oha",
    ),
    ("hyper-connection generator / wrk", "gen-fast", "gen-wrk"),
    ("axum / Go, same handler, one core each", "axum", "go"),
    ("axum with TCP_NODELAY / Go", "axum-nodelay", "go"),
    ("keep-alive off / on", "no-keep-alive", "gen-lab"),
    (
        "one buffer / small chunks (tip 1)",
        "lines-buffered",
        "lines-unbuffered",
    ),
];

/// One measurement, as written down.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub series: String,
    pub tool: &'static str,
    pub concurrency: usize,
    #[serde(flatten)]
    pub measured: Measured,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    match args.inner {
        Some(Inner::Serve { variant }) => {
            let variant = twin::variant(&variant).ok_or(format!("no variant {variant:?}"))?;
            twin::serve(variant).map_err(|e| e.to_string())
        }
        Some(Inner::Load {
            generator,
            url,
            concurrency,
            seconds,
        }) => {
            let config = Config {
                url,
                concurrency,
                stop: Stop::After(Duration::from_secs(seconds)),
                timeout: Duration::from_secs(5),
                keep_alive: generator != "lab-no-keep-alive",
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let runtime = runtime.map_err(|e| e.to_string())?;
            let report = match generator.as_str() {
                "fast" => runtime.block_on(fast::run(&config)),
                _ => runtime.block_on(load_generator::run(&config)),
            };
            println!(
                "{}",
                serde_json::to_string(&report).expect("a report serializes")
            );
            Ok(())
        }
        None => bench(&args),
    }
}

fn bench(args: &Args) -> Result<(), String> {
    let seconds = args.seconds.unwrap_or(if args.quick { 1 } else { 5 });
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 });
    let plan: Vec<Series> = plan()
        .into_iter()
        .filter(|s| {
            args.only.is_empty() || args.only.iter().any(|o| s.name.starts_with(o.as_str()))
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pin = !args.no_pin && cores >= 2 && tools::on_path("taskset");
    let placement = if pin {
        "server pinned to core 0, load to core 1 (taskset); one runtime thread each"
    } else {
        "not pinned; one runtime thread each"
    };
    let mut skipped: Vec<String> = Vec::new();
    for tool in [Tool::Wrk, Tool::Oha].into_iter().filter(|t| !t.present()) {
        skipped.push(format!("{}: its series are skipped", tool.how_to_install()));
    }
    if !tools::on_path("go") {
        skipped.push("Go is not installed (`apt-get install golang-go`, or go.dev/dl): the Go series are skipped".into());
    }
    let runnable =
        |s: &&Series| s.tool.present() && (!matches!(s.server, Server::Go) || tools::on_path("go"));
    let runs: Vec<(&Series, usize, usize)> = {
        let (tail, rest): (Vec<&Series>, Vec<&Series>) =
            plan.iter().filter(runnable).partition(|s| s.tail);
        let rest = rest
            .into_iter()
            .flat_map(|s| s.levels.iter().map(move |&c| (s, c, 0)));
        // The tail variants interleaved, round after round, so that a noisy
        // moment of the machine hits them all alike.
        let tail =
            (0..repeat).flat_map(|round| tail.clone().into_iter().map(move |s| (s, 1000, round)));
        rest.chain(tail).collect()
    };
    println!(
        "{} runs of {seconds} s; {placement}; comparisons loaded by {}",
        runs.len(),
        Tool::fastest().name()
    );
    for line in &skipped {
        println!("skip: {line}");
    }
    if args.dry_run {
        for (s, c, round) in &runs {
            println!(
                "  {:<20} c={c:<5} {:<18} {} {:?}{}",
                s.name,
                s.tool.name(),
                s.path,
                s.server,
                if *round > 0 {
                    format!(" (repeat {round})")
                } else {
                    String::new()
                }
            );
        }
        return Ok(());
    }

    let built = Built::build(&plan)?;
    let (server_core, load_core) = if pin {
        (Some(0), Some(1))
    } else {
        (None, None)
    };
    println!(
        "  {:<20} {:<18} {:>5} {:>11} {:>9} {:>9}  errors",
        "series", "tool", "c", "requests/s", "p50 ms", "p99 ms"
    );
    let mut rows = Vec::new();
    for (series, concurrency, _) in runs {
        let server = built.start(series.server, server_core)?;
        let url = format!("http://{}{}", server.addr, series.path);
        let mut load = series
            .tool
            .command(load_core, &built.me, &url, concurrency, seconds);
        let overflows = tools::listen_overflows();
        let output = load
            .output()
            .map_err(|e| format!("{}: {e}", series.tool.name()))?;
        let queue_overflows = matches!(series.server, Server::Twin(_))
            .then(|| runtime_overflows(server.addr))
            .flatten();
        drop(server);
        let mut measured = series
            .tool
            .parse(&String::from_utf8_lossy(&output.stdout))?;
        measured.queue_overflows = queue_overflows;
        measured.listen_overflows = tools::listen_overflows().zip(overflows).map(|(b, a)| b - a);
        println!(
            "  {:<20} {:<18} {concurrency:>5} {:>11.0} {:>9.2} {:>9.2}  {} {}{}",
            series.name,
            series.tool.name(),
            measured.requests_per_s,
            measured.p50_ms,
            measured.p99_ms,
            measured.errors,
            measured.error_kinds,
            [
                (measured.listen_overflows, "listen overflows"),
                (measured.queue_overflows, "run-queue overflows"),
            ]
            .iter()
            .filter_map(|(n, what)| n.filter(|n| *n > 0).map(|n| format!(", {n} {what}")))
            .collect::<String>()
        );
        rows.push(Row {
            series: series.name.clone(),
            tool: series.tool.name(),
            concurrency,
            measured,
        });
    }
    let ratios = write::ratios(&rows);
    for (title, values) in &ratios {
        println!("{title:<56} {values}");
    }
    if let Some(out) = &args.out {
        let machine = write::machine(placement, seconds, repeat);
        for path in write::all(out, &machine, &plan, &rows, &ratios, &skipped)? {
            println!("written: {}", path.display());
        }
    }
    Ok(())
}

/// The executables: this bench itself, the labs' servers, the Go twin.
struct Built {
    me: PathBuf,
    release: PathBuf,
    go: Option<PathBuf>,
}

impl Built {
    /// Builds the labs' servers the plan needs (`cargo build --release`) and
    /// the Go twin (`go build`), next to this executable.
    fn build(plan: &[Series]) -> Result<Built, String> {
        let me = std::env::current_exe().map_err(|e| e.to_string())?;
        // target/release/examples/bench -> target/release
        let release = me
            .parent()
            .and_then(Path::parent)
            .ok_or("no target dir")?
            .to_path_buf();
        let mut packages: Vec<&str> = plan
            .iter()
            .filter_map(|s| match s.server {
                Server::Lab(p) => Some(p),
                _ => None,
            })
            .collect();
        packages.dedup();
        if !packages.is_empty() {
            let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
            cargo.args(["build", "--release", "--quiet"]);
            packages
                .iter()
                .for_each(|p| _ = cargo.args(["-p", p, "--bin", p]));
            run_ok(cargo)?;
        }
        let mut go = None;
        if tools::on_path("go") && plan.iter().any(|s| matches!(s.server, Server::Go)) {
            let out = release.join("bench-go-api");
            let source = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../labs/11-load-generator/bench/api.go");
            let mut build = Command::new("go");
            build.arg("build").arg("-o").arg(&out).arg(source);
            run_ok(build)?;
            go = Some(out);
        }
        Ok(Built { me, release, go })
    }

    /// Starts `server`, one runtime thread, and waits for its address.
    fn start(&self, server: Server, core: Option<usize>) -> Result<Running, String> {
        let mut command = match server {
            Server::Lab(package) => tools::pinned(core, &self.release.join(package)),
            Server::Twin(_) => tools::pinned(core, &self.me),
            Server::Go => tools::pinned(core, self.go.as_ref().ok_or("Go was not built")?),
        };
        match server {
            Server::Lab(_) => command.args(["--port", "0"]),
            Server::Twin(variant) => command.args(["serve", variant]),
            Server::Go => command.args(["-port", "0", "-delay", "0"]),
        };
        command
            .env("TOKIO_WORKER_THREADS", "1")
            .env("GOMAXPROCS", "1")
            .env_remove("TOKIO_CONSOLE");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = Running {
            child: command.spawn().map_err(|e| format!("{server:?}: {e}"))?,
            addr: ([0, 0, 0, 0], 0).into(),
        };
        let mut lines = BufReader::new(child.child.stdout.take().expect("piped")).lines();
        // A server that dies or never says where it listens ends the lines.
        let line = lines.find_map(|l| l.ok().filter(|l| l.contains("listening on http://")));
        let addr = line.and_then(|l| {
            l.split("http://")
                .nth(1)?
                .split_whitespace()
                .next()?
                .trim_end_matches('/')
                .parse::<SocketAddr>()
                .ok()
        });
        child.addr = addr
            .filter(|a| a.ip().is_loopback())
            .ok_or(format!("{server:?} did not say it listens on 127.0.0.1"))?;
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(child)
    }
}

/// A server of the bench, killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The axum twin's count of run-queue overflows (`GET /runtime`).
fn runtime_overflows(addr: SocketAddr) -> Option<u64> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /runtime HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()?;
    body["overflows"].as_u64()
}

fn run_ok(mut command: Command) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("{command:?}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or(format!("{command:?} failed"))
}
