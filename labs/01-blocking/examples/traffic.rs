//! The console traffic of lab 01: slow requests, CPU-heavy requests, and a
//! health check timed all along.
//!
//! Over and over, two `GET /slow?ms=1000` and one `GET /crunch?ms=1000` at
//! once; meanwhile `GET /health` every 250 ms. Every 2 s it reports the
//! slowest health check of that window. A healthy server answers it in about
//! a millisecond whatever else it is doing; on the starter, whose handlers
//! block the runtime's only thread, a health check waits for them: seconds.
//!
//! `cargo xtask console blocking` runs it for you. By hand, next to
//! `cargo run -p blocking`:
//!
//! ```text
//! cargo run -p blocking --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::{Duration, Instant};

use lab_support::client::{base_url_from_args, brief, human, report, traffic_client, try_send};

/// How often the health checks are summed up.
const REPORT_EVERY: Duration = Duration::from_secs(2);
/// How often the health check is sent.
const CHECK_EVERY: Duration = Duration::from_millis(250);

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();

    // The load: three one-second requests at once, again as soon as all are done.
    let load = async {
        let slow = format!("{base}/slow?ms=1000");
        let crunch = format!("{base}/crunch?ms=1000");
        loop {
            let _ = tokio::join!(
                try_send(client.get(&slow)),
                try_send(client.get(&slow)),
                try_send(client.get(&crunch)),
            );
        }
    };

    // The observer: how long does the server take to say it is alive?
    let health = async {
        let url = format!("{base}/health");
        let mut slowest = Duration::ZERO;
        let mut window = Instant::now();
        loop {
            let started = Instant::now();
            let answer = try_send(client.get(&url)).await;
            let took = started.elapsed();
            slowest = slowest.max(took);
            if let Err(error) = answer {
                report(format!("GET /health: {}", brief(&error)));
            }
            if window.elapsed() >= REPORT_EVERY {
                report(format!(
                    "GET /health: slowest reply of the last {} s took {} (healthy: ~1 ms)",
                    REPORT_EVERY.as_secs(),
                    human(slowest)
                ));
                slowest = Duration::ZERO;
                window = Instant::now();
            }
            tokio::time::sleep(CHECK_EVERY.saturating_sub(took)).await;
        }
    };

    tokio::join!(load, health);
}
