//! The load: this lab's generator (in a child process of the bench, so it
//! can be pinned to its own core), its faster "going further" twin, wrk and
//! oha; and what each reports, read into one [`Measured`].

use std::path::Path;
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::Value;

/// What loads a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// This lab's solution: one shared reqwest `Client`, N workers.
    Lab,
    /// The same, a new connection for every request.
    LabNoKeepAlive,
    /// One hyper HTTP/1 connection per worker (`bench/fast.rs`).
    Fast,
    Wrk,
    Oha,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Lab => "lab 11",
            Tool::LabNoKeepAlive => "lab 11, no keep-alive",
            Tool::Fast => "lab 11, hyper conn",
            Tool::Wrk => "wrk",
            Tool::Oha => "oha",
        }
    }

    /// Whether it can run here (wrk and oha must be installed).
    pub fn present(self) -> bool {
        match self {
            Tool::Wrk => on_path("wrk"),
            Tool::Oha => on_path("oha"),
            _ => true,
        }
    }

    pub fn how_to_install(self) -> &'static str {
        match self {
            Tool::Wrk => "wrk is not installed (`apt-get install wrk` or `brew install wrk`)",
            Tool::Oha => "oha is not installed (`cargo install oha` or `brew install oha`)",
            _ => "",
        }
    }

    /// The fastest load tool present: wrk (C, event loop per thread), else
    /// oha, else the hyper generator. Server comparisons use it, so that the
    /// server, not the load, is the limit.
    pub fn fastest() -> Tool {
        [Tool::Wrk, Tool::Oha]
            .into_iter()
            .find(|t| t.present())
            .unwrap_or(Tool::Fast)
    }

    /// The command that loads `url`, on `core` if given; `me` is the
    /// bench's own executable, which runs the lab's generators.
    pub fn command(
        self,
        core: Option<usize>,
        me: &Path,
        url: &str,
        c: usize,
        secs: u64,
    ) -> Command {
        let (c, duration) = (c.to_string(), format!("{secs}s"));
        let mut load;
        match self {
            Tool::Lab | Tool::LabNoKeepAlive | Tool::Fast => {
                let how = match self {
                    Tool::Lab => "lab",
                    Tool::LabNoKeepAlive => "lab-no-keep-alive",
                    _ => "fast",
                };
                load = pinned(core, me);
                load.args(["load", how, url, &c, &secs.to_string()]);
            }
            Tool::Wrk => {
                load = pinned(core, Path::new("wrk"));
                load.args(["-t1", "-c", &c, "-d", &duration, "--latency", url]);
            }
            Tool::Oha => {
                load = pinned(core, Path::new("oha"));
                // Requests still in flight at the deadline are waited for,
                // not counted as failed.
                load.args(["--no-tui", "--output-format", "json"]);
                load.args([
                    "--wait-ongoing-requests-after-deadline",
                    "-c",
                    &c,
                    "-z",
                    &duration,
                    url,
                ]);
            }
        }
        load.stdin(Stdio::null()).stderr(Stdio::inherit());
        load
    }

    /// Reads the tool's report.
    pub fn parse(self, stdout: &str) -> Result<Measured, String> {
        let parsed = match self {
            Tool::Wrk => parse_wrk(stdout),
            Tool::Oha => parse_oha(stdout),
            _ => parse_lab(stdout),
        };
        parsed.ok_or_else(|| format!("could not read the report of {}:\n{stdout}", self.name()))
    }
}

/// One run's figures, whichever tool measured them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Measured {
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// Errors by kind, as the tool names them.
    pub error_kinds: String,
    /// Connections the kernel dropped during the run because a listen
    /// queue was full (Linux's TcpExtListenOverflows, for the whole machine).
    pub listen_overflows: Option<u64>,
    /// Times the server's tokio run queue overflowed into the global queue
    /// (the axum twin's `GET /runtime`).
    pub queue_overflows: Option<u64>,
}

/// Linux's count of connections dropped on a full accept queue.
pub fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// `taskset -c CORE program`, or `program` alone.
pub fn pinned(core: Option<usize>, program: &Path) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", &core.to_string()]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn parse_lab(stdout: &str) -> Option<Measured> {
    let report: load_generator::Report = serde_json::from_str(stdout.trim()).ok()?;
    let kinds = report
        .errors
        .iter()
        .map(|(kind, n)| format!("{n} {kind:?}"));
    Some(Measured {
        listen_overflows: None,
        queue_overflows: None,
        requests_per_s: report.requests_per_s,
        p50_ms: report.latency_ms.p50,
        p99_ms: report.latency_ms.p99,
        errors: report.error_count(),
        error_kinds: kinds.collect::<Vec<_>>().join(", "),
    })
}

/// wrk's text: `Requests/sec:`, the `--latency` distribution, error lines.
fn parse_wrk(stdout: &str) -> Option<Measured> {
    let mut measured = Measured::default();
    let mut kinds = Vec::new();
    for line in stdout.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", rate] => measured.requests_per_s = rate.parse().ok()?,
            ["50%", time] => measured.p50_ms = wrk_ms(time)?,
            ["99%", time] => measured.p99_ms = wrk_ms(time)?,
            ["Non-2xx", "or", "3xx", "responses:", n] => kinds.push((n.parse().ok()?, "non-2xx")),
            // Socket errors: connect 0, read 0, write 0, timeout 12
            ["Socket", "errors:", rest @ ..] => {
                for pair in rest.chunks(2) {
                    let n: u64 = pair.get(1)?.trim_end_matches(',').parse().ok()?;
                    kinds.push((n, pair[0]));
                }
            }
            _ => {}
        }
    }
    kinds.retain(|(n, _)| *n > 0);
    measured.errors = kinds.iter().map(|(n, _)| n).sum();
    measured.error_kinds = kinds
        .iter()
        .map(|(n, k)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    (measured.requests_per_s > 0.0).then_some(measured)
}

/// `812.00us`, `1.23ms`, `2.00s` -> milliseconds.
fn wrk_ms(time: &str) -> Option<f64> {
    let split = time.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = time.split_at(split);
    let scale = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    Some(number.parse::<f64>().ok()? * scale)
}

/// oha's `--output-format json`.
fn parse_oha(stdout: &str) -> Option<Measured> {
    let report: Value = serde_json::from_str(stdout.trim()).ok()?;
    let count = |table: &Value, keep: fn(&str) -> bool| -> u64 {
        let entries = table.as_object().into_iter().flatten();
        entries
            .filter(|(k, _)| keep(k))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    };
    let bad = count(&report["statusCodeDistribution"], |s| {
        !s.starts_with(['2', '3'])
    });
    let failed = count(&report["errorDistribution"], |_| true);
    let seconds = |p: &str| report["latencyPercentiles"][p].as_f64().map(|s| s * 1000.0);
    Some(Measured {
        listen_overflows: None,
        queue_overflows: None,
        requests_per_s: report["summary"]["requestsPerSec"].as_f64()?,
        p50_ms: seconds("p50")?,
        p99_ms: seconds("p99")?,
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
    #[test]
    fn wrk_output_is_read() {
        let text = "  Latency Distribution\n     50%    1.10ms\n     99%    2.50ms\n\
                    81234 requests in 1.00s, 11.00MB read\n\
                    Socket errors: connect 0, read 0, write 0, timeout 3\n\
                    Non-2xx or 3xx responses: 7\nRequests/sec:  81234.50\n";
        let measured = super::parse_wrk(text).unwrap();
        assert_eq!(
            (measured.requests_per_s, measured.p50_ms, measured.p99_ms),
            (81234.5, 1.1, 2.5)
        );
        assert_eq!(
            (measured.errors, measured.error_kinds.as_str()),
            (10, "3 timeout, 7 non-2xx")
        );
    }
}
