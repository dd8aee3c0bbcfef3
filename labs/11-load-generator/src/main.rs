//! `cargo run -p load-generator --release -- <url> --concurrency N --requests M`
//! (or `--duration 10s`): loads a server and prints requests/s, errors by
//! kind and latency percentiles; `--json` prints the report as JSON.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use load_generator::{Config, Report, Stop};

/// Loads one URL with N concurrent requests and reports throughput, errors
/// and latency percentiles.
#[derive(Debug, Parser)]
#[command(name = "load-generator", version, about)]
struct Args {
    /// The URL to GET, e.g. http://127.0.0.1:8080/api
    url: String,
    /// How many requests are in flight at once.
    #[arg(short, long, default_value_t = 10)]
    concurrency: usize,
    /// Send exactly this many requests [default: 1000, unless --duration].
    #[arg(short = 'n', long, conflicts_with = "duration")]
    requests: Option<u64>,
    /// Send for this long instead: `10s`, `500ms`, or seconds (`2.5`).
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Give up on a request after this long: `5s`, `250ms`, or seconds.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Open a new connection for every request (no keep-alive).
    #[arg(long)]
    no_keep_alive: bool,
    /// Print the report as one line of JSON.
    #[arg(long)]
    json: bool,
    /// Enable tokio-console, to watch the workers' tasks.
    #[arg(
        long,
        env = "TOKIO_CONSOLE",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    console: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Only tokio-console's layer: the report is this binary's output.
    lab_support::init_tracing_with(args.console, "off");
    let stop = match (args.requests, args.duration) {
        (_, Some(duration)) => Stop::After(duration),
        (requests, None) => Stop::Requests(requests.unwrap_or(1000)),
    };
    let config = Config {
        url: args.url,
        concurrency: args.concurrency,
        stop,
        timeout: args.timeout,
        keep_alive: !args.no_keep_alive,
    };
    let report = load_generator::run(&config).await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serializes")
        );
    } else {
        print_report(&report);
    }
    ExitCode::SUCCESS
}

fn print_report(report: &Report) {
    println!(
        "{} requests to {} from {} workers in {:.2} s",
        report.requests, report.url, report.concurrency, report.elapsed_s
    );
    println!("  throughput  {:.1} requests/s", report.requests_per_s);
    let latency = &report.latency_ms;
    println!(
        "  latency     p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        latency.p50, latency.p90, latency.p99, latency.max
    );
    println!("  succeeded   {}", report.succeeded);
    if report.errors.is_empty() {
        println!("  errors      none");
    }
    for (kind, count) in &report.errors {
        let kind = serde_json::to_value(kind).unwrap_or_default();
        println!("  errors      {count} {}", kind.as_str().unwrap_or("?"));
    }
}

/// `10s`, `500ms`, `2m` or plain seconds (`2.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}
