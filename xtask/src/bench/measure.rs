//! Making the measurements: building in release mode, starting a server,
//! loading it with our load generator (or wrk, or oha) and reading what each
//! reports.
//!
//! Fairness: each server runs with one runtime worker (`TOKIO_WORKER_THREADS=1`,
//! `GOMAXPROCS=1`) and each load generator with one too, pinned with
//! `taskset` to different cores where Linux and the core count allow it, so
//! the two do not fight over one core. Every child is [`Supervised`]: it is
//! stopped when the run ends, whichever way it ends.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::plan::{Bench, Server, Tool};
use crate::process::{self, Supervised};
use crate::workbook::Workbook;
use crate::{cargo, ui};

/// What one run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    pub requests: u64,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Errors by kind, as the tool names them.
    pub error_kinds: String,
}

/// Which cores the servers and the load run on.
#[derive(Debug, Clone)]
pub struct Placement {
    /// `taskset -c <core>` for the server and for the load, if pinning works here.
    cores: Option<(usize, usize)>,
    /// Said once, in the output and the book.
    pub description: String,
}

impl Placement {
    pub fn choose(pin: bool) -> Placement {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let on_linux = cfg!(target_os = "linux");
        match (pin, on_linux && process::on_path("taskset"), cores) {
            (false, _, _) => Placement {
                cores: None,
                description: "not pinned (--no-pin); one runtime thread each".into(),
            },
            (true, true, 2..) => Placement {
                cores: Some((0, 1)),
                description: "server pinned to core 0, load to core 1 (taskset); \
                              one runtime thread each"
                    .into(),
            },
            (true, true, _) => Placement {
                cores: None,
                description: "one core only: server and load share it; one runtime thread each"
                    .into(),
            },
            (true, false, _) => Placement {
                cores: None,
                description: "not pinned (this OS has no `taskset`; the scheduler decides); \
                              one runtime thread each"
                    .into(),
            },
        }
    }

    /// `program` as a command on the given side's core.
    fn command(&self, program: &Path, server_side: bool) -> Command {
        match self.cores {
            Some((server, load)) => {
                let mut command = Command::new("taskset");
                let core = if server_side { server } else { load };
                command.args(["-c", &core.to_string()]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

/// The executables of a benchmark, built in release mode.
pub struct Built {
    pub generator: PathBuf,
    servers: Vec<(String, PathBuf)>,
    library_path: (&'static str, OsString),
}

/// Builds the generator and every server of `bench` (`cargo build --release`),
/// and the Go servers with `go build` if Go is installed.
pub fn build(workbook: &Workbook, bench: &Bench, servers: &[&str]) -> Result<Built> {
    let toml = &bench.toml;
    let mut args: Vec<String> =
        vec!["--release".into(), "--package".into(), toml.generator.clone()];
    args.extend(["--bin".into(), toml.generator.clone()]);
    for name in servers {
        let server = &toml.servers[*name];
        let Some(package) = &server.package else { continue };
        args.extend(["--package".into(), package.clone()]);
        match &server.example {
            Some(example) => args.extend(["--example".into(), example.clone()]),
            None => args.extend(["--bin".into(), package.clone()]),
        }
        for feature in &server.features {
            args.extend(["--features".into(), format!("{package}/{feature}")]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let executables = cargo::build(workbook, &args)?;
    let find = |name: &str| {
        executables
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.path.clone())
            .with_context(|| format!("cargo built no executable named {name}"))
    };
    let generator = find(&toml.generator)?;
    let mut built = Vec::new();
    for name in servers {
        let server = &toml.servers[*name];
        if let Some(package) = &server.package {
            built.push((name.to_string(), find(server.example.as_deref().unwrap_or(package))?));
        } else if let Some(go) = &server.go
            && let Some(executable) = go_build(workbook, &bench.lab_dir.join(go), name)?
        {
            built.push((name.to_string(), executable));
        }
    }
    // Like `cargo run`: the labs link their dependencies as one shared
    // library, here the release build's.
    let (variable, debug_path) = cargo::library_path(workbook);
    let mut dirs = vec![workbook.target_dir.join("release").join("deps")];
    dirs.extend(std::env::split_paths(&debug_path));
    let library_path = (variable, std::env::join_paths(dirs)?);
    Ok(Built { generator, servers: built, library_path })
}

/// `go build` of one Go file into the target directory; `None` (with a line
/// saying how to get Go) when Go is not installed.
fn go_build(workbook: &Workbook, source: &Path, name: &str) -> Result<Option<PathBuf>> {
    if !process::on_path("go") {
        anstream::println!(
            "{} Go is not installed: skipping the server {name:?} (install it from \
             https://go.dev/dl/ or `apt-get install golang-go`)",
            ui::paint(ui::WARN, "skip")
        );
        return Ok(None);
    }
    let out = workbook.target_dir.join("release").join(format!("bench-{name}"));
    let mut go = Command::new("go");
    go.arg("build").arg("-o").arg(&out).arg(source).stdin(Stdio::null());
    let output = process::run_captured(&mut go, |_| {})?;
    if !output.success {
        bail!("`go build {}` failed:\n{}", source.display(), output.stderr.trim());
    }
    Ok(Some(out))
}

impl Built {
    /// Whether the server `name` could be built (a Go server needs Go).
    pub fn has_server(&self, name: &str) -> bool {
        self.servers.iter().any(|(n, _)| n == name)
    }

    fn server(&self, name: &str) -> &Path {
        &self.servers.iter().find(|(n, _)| n == name).expect("built").1
    }
}

/// A server of the benchmark, running on 127.0.0.1 until dropped.
pub struct RunningServer {
    _child: Supervised,
    pub addr: SocketAddr,
}

/// How long a server has to say where it listens.
const STARTUP_LIMIT: Duration = Duration::from_secs(20);

impl RunningServer {
    pub fn start(
        built: &Built,
        placement: &Placement,
        name: &str,
        server: &Server,
    ) -> Result<RunningServer> {
        let mut command = placement.command(built.server(name), true);
        command
            .args(&server.args)
            .args(["-port", "0"].iter().filter(|_| server.go.is_some()))
            .args(["--port", "0"].iter().filter(|_| server.go.is_none()))
            .env(built.library_path.0, &built.library_path.1)
            .env("TOKIO_WORKER_THREADS", "1")
            .env("GOMAXPROCS", "1")
            .envs(&server.env)
            .env_remove("PORT")
            .env_remove("TOKIO_CONSOLE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = Supervised::spawn(&mut command)
            .with_context(|| format!("could not start the server {name:?}"))?;
        let (lines_tx, lines) = mpsc::channel();
        process::forward_lines(child.child().stdout.take().expect("stdout is piped"), lines_tx);
        let started = Instant::now();
        loop {
            let Ok(line) = lines.recv_timeout(STARTUP_LIMIT.saturating_sub(started.elapsed()))
            else {
                bail!("the server {name:?} did not say where it listens within {STARTUP_LIMIT:?}");
            };
            if let Some(addr) = process::listening_address(&line) {
                ensure_loopback(addr)?;
                // The rest of its output is not needed; reading it keeps the
                // pipe from filling up.
                std::thread::spawn(move || lines.into_iter().for_each(drop));
                return Ok(RunningServer { _child: child, addr });
            }
        }
    }
}

fn ensure_loopback(addr: SocketAddr) -> Result<()> {
    if !addr.ip().is_loopback() {
        bail!(
            "a benchmark server listens on {addr}, not on a loopback address; refusing to load it"
        );
    }
    Ok(())
}

/// Loads `url` with `tool` at `concurrency` for `seconds`, and reads its report.
pub fn load(
    built: &Built,
    placement: &Placement,
    tool: Tool,
    url: &str,
    concurrency: usize,
    seconds: u64,
    extra: &[String],
) -> Result<Measured> {
    let mut command = match tool {
        Tool::LoadGenerator => placement.command(&built.generator, false),
        Tool::Wrk | Tool::Oha => {
            placement.command(Path::new(tool.program().expect("external")), false)
        }
    };
    let duration = format!("{seconds}s");
    let concurrency_arg = concurrency.to_string();
    match tool {
        Tool::LoadGenerator => {
            command
                .arg(url)
                .args(["--concurrency", &concurrency_arg, "--duration", &duration, "--json"])
                .args(extra)
                .env(built.library_path.0, &built.library_path.1)
                .env("TOKIO_WORKER_THREADS", "1");
        }
        Tool::Wrk => {
            command.args(["-t1", "-c", &concurrency_arg, "-d", &duration, "--latency", url]);
        }
        Tool::Oha => {
            command.args(["--no-tui", "--output-format", "json", "-c", &concurrency_arg]);
            command.args(["-z", &duration, url]);
        }
    }
    command.stdin(Stdio::null());
    let output = process::run_captured(&mut command, |_| {})?;
    if !output.success {
        bail!("{} failed: {}", tool.name(), output.stderr.trim());
    }
    let parsed = match tool {
        Tool::LoadGenerator => parse_ours(&output.stdout),
        Tool::Wrk => parse_wrk(&output.stdout),
        Tool::Oha => parse_oha(&output.stdout),
    };
    parsed.with_context(|| format!("reading the report of {}:\n{}", tool.name(), output.stdout))
}

/// The load generator's `--json` report.
fn parse_ours(stdout: &str) -> Result<Measured> {
    let report: serde_json::Value = serde_json::from_str(stdout.trim())?;
    let number = |value: &serde_json::Value| value.as_f64().context("a number");
    let errors = report["errors"].as_object().context("errors")?;
    Ok(Measured {
        requests: report["requests"].as_u64().context("requests")?,
        requests_per_s: number(&report["requests_per_s"])?,
        p50_ms: number(&report["latency_ms"]["p50"])?,
        p99_ms: number(&report["latency_ms"]["p99"])?,
        errors: errors.values().filter_map(serde_json::Value::as_u64).sum(),
        error_kinds: errors
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// wrk's text: `Requests/sec:`, the `--latency` distribution, error lines.
fn parse_wrk(stdout: &str) -> Result<Measured> {
    let mut measured = Measured::default();
    let mut kinds = Vec::new();
    for line in stdout.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(rate)) => measured.requests_per_s = rate.parse()?,
            (Some("50%"), Some(time)) => measured.p50_ms = wrk_ms(time)?,
            (Some("99%"), Some(time)) => measured.p99_ms = wrk_ms(time)?,
            (Some(n), Some("requests")) => measured.requests = n.parse().unwrap_or(0),
            _ => {}
        }
        if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            let n: u64 = rest.trim().parse()?;
            measured.errors += n;
            kinds.push(format!("{n} non-2xx"));
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 12"
            for part in rest.split(',') {
                let mut pair = part.split_whitespace();
                if let (Some(kind), Some(n)) = (pair.next(), pair.next()) {
                    let n: u64 = n.parse().unwrap_or(0);
                    if n > 0 {
                        measured.errors += n;
                        kinds.push(format!("{n} {kind}"));
                    }
                }
            }
        }
    }
    if measured.requests_per_s == 0.0 {
        bail!("no `Requests/sec:` line");
    }
    measured.error_kinds = kinds.join(", ");
    Ok(measured)
}

/// `812.00us`, `1.23ms`, `2.00s` -> milliseconds.
fn wrk_ms(time: &str) -> Result<f64> {
    let split = time.find(|c: char| c.is_ascii_alphabetic()).context("a unit")?;
    let (number, unit) = time.split_at(split);
    let number: f64 = number.parse()?;
    Ok(match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => bail!("unknown unit in {time:?}"),
    })
}

/// oha's JSON (`--output-format json`).
fn parse_oha(stdout: &str) -> Result<Measured> {
    let report: serde_json::Value = serde_json::from_str(stdout.trim())?;
    let summary = &report["summary"];
    let rate = summary["requestsPerSec"].as_f64().context("summary.requestsPerSec")?;
    let seconds = summary["total"].as_f64().unwrap_or(0.0);
    let percentile = |p: &str| report["latencyPercentiles"][p].as_f64().unwrap_or(0.0) * 1000.0;
    let statuses = report["statusCodeDistribution"].as_object();
    let bad: u64 = statuses
        .into_iter()
        .flatten()
        .filter(|(status, _)| !status.starts_with('2') && !status.starts_with('3'))
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    let failed: u64 = report["errorDistribution"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    Ok(Measured {
        requests: (rate * seconds).round() as u64,
        requests_per_s: rate,
        p50_ms: percentile("p50"),
        p99_ms: percentile("p99"),
        errors: bad + failed,
        error_kinds: if bad + failed > 0 {
            format!("{bad} non-2xx, {failed} failed")
        } else {
            String::new()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 1s test @ http://127.0.0.1:1/api
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  300.00us   5.00ms   90.00%
  Latency Distribution
     50%    1.10ms
     75%    1.30ms
     90%    1.60ms
     99%    2.50ms
  81234 requests in 1.00s, 11.00MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  81234.50
Transfer/sec:     11.00MB
";
        let measured = parse_wrk(text).unwrap();
        assert_eq!(measured.requests, 81234);
        assert_eq!(measured.requests_per_s, 81234.5);
        assert_eq!((measured.p50_ms, measured.p99_ms), (1.1, 2.5));
        assert_eq!(measured.errors, 10);
        assert_eq!(measured.error_kinds, "3 timeout, 7 non-2xx");
    }
}
