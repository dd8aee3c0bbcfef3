//! The console traffic of lab 06: viewers who open a progress stream and
//! close the tab after a second, and what the server keeps producing for them.
//!
//! One viewer a second opens `GET /events?count=20&every_ms=250` (a 5 s job)
//! and hangs up after 1 s. Every 2 s, `GET /stats` says how many producers
//! are live and how many events they produced since the last look. On a
//! server whose jobs stop with their streams, about one producer is live at a
//! time and four events a second are produced. On the starter each abandoned
//! job runs its full 5 s: about five producers live and twenty events a
//! second, for nobody.
//!
//! `cargo xtask console streaming` runs it for you. By hand, next to
//! `cargo run -p streaming`:
//!
//! ```text
//! cargo run -p streaming --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::Duration;

use lab_support::client::{base_url_from_args, leave_early, report, traffic_client};
use serde::Deserialize;

/// How long a viewer watches before closing the tab.
const PATIENCE: Duration = Duration::from_secs(1);
/// How often a viewer comes.
const VIEWER_EVERY: Duration = Duration::from_secs(1);
/// How often `/stats` is read.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// What `/stats` answers.
#[derive(Deserialize)]
struct Stats {
    live_producers: u64,
    events_produced: u64,
}

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let stream = format!("{base}/events?count=20&every_ms=250");
    let viewers = async {
        let mut arrivals = tokio::time::interval(VIEWER_EVERY);
        loop {
            arrivals.tick().await;
            let stream = stream.clone();
            tokio::spawn(async move { leave_early(&stream, PATIENCE).await });
        }
    };

    let stats = async {
        let client = traffic_client();
        let url = format!("{base}/stats");
        let mut produced_before: Option<u64> = None;
        // Out of step with the viewers, who come on the second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        loop {
            tokio::time::sleep(REPORT_EVERY).await;
            let stats = match client.get(&url).send().await {
                Ok(reply) => reply.json::<Stats>().await.ok(),
                Err(_) => None,
            };
            let Some(stats) = stats else {
                report("GET /stats: no answer");
                continue;
            };
            // The first reading only sets the baseline for the rate.
            if let Some(before) = produced_before {
                let per_second =
                    stats.events_produced.saturating_sub(before) / REPORT_EVERY.as_secs();
                report(format!(
                    "one viewer a second, each staying {PATIENCE:?}: producers live now: {} \
                     (about 1 expected); events produced per second: {per_second} (about 4 \
                     expected)",
                    stats.live_producers
                ));
            }
            produced_before = Some(stats.events_produced);
        }
    };

    tokio::join!(viewers, stats);
}
