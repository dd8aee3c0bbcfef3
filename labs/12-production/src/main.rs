//! `cargo run -p production`: serves lab 12 on http://127.0.0.1:8080 until
//! Ctrl-C (or SIGTERM, once the lab handles it).
//!
//! Serving is this lab's lesson, so the binary calls the lab's own
//! `production::serve` instead of `lab_support::LabServer`. Every limit of
//! `production::Config` can be changed on the command line (`--help`); the
//! tests start this binary with small ones.

use std::time::Duration;

use clap::Parser;
use production::{Config, Stats};

/// Lab 12: a JSON API that should survive hostile clients.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    server: lab_support::ServerArgs,
    /// How many requests may be handled at once.
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// How many requests one address may make in a burst (and per minute).
    #[arg(long)]
    per_ip_burst: Option<u32>,
    /// The time budget of one request, in milliseconds.
    #[arg(long)]
    request_timeout_ms: Option<u64>,
    /// How long a shutdown waits for requests in flight, in milliseconds.
    #[arg(long)]
    shutdown_deadline_ms: Option<u64>,
    /// A proxy whose `X-Forwarded-For` is believed (repeat for several).
    #[arg(long = "trusted-proxy", value_name = "IP")]
    trusted_proxies: Vec<std::net::IpAddr>,
}

impl Args {
    /// The defaults, with what the command line changed.
    fn config(&self) -> Config {
        let mut config = Config::default();
        if let Some(max) = self.max_in_flight {
            config.max_in_flight = max;
        }
        if let Some(burst) = self.per_ip_burst {
            config.per_ip_burst = burst;
            config.per_ip_per_minute = burst;
        }
        if let Some(ms) = self.request_timeout_ms {
            config.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.shutdown_deadline_ms {
            config.shutdown_deadline = Duration::from_millis(ms);
        }
        config.trusted_proxies.clone_from(&self.trusted_proxies);
        config
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    lab_support::init_tracing_with(args.server.console, "info,tower_http=debug");

    let config = args.config();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.server.port)).await?;
    println!(
        "production listening on http://{} (Ctrl-C to stop)",
        listener.local_addr()?
    );
    let app = production::app(&config, Stats::default());
    production::serve(listener, app, &config, production::shutdown_signal()).await?;
    println!("production stopped");
    Ok(())
}
