//! The console traffic of lab 05: impatient clients, who ask for long work
//! and hang up after 100 ms, and what the server keeps doing for them.
//!
//! One client a second asks for a 10 s report (`GET /report?steps=1000`) and
//! one a second for a 3 s render (`GET /render?steps=300`); each hangs up
//! after 100 ms. (Gently: on the starter each abandoned report leaves three
//! tasks waking every 10 ms for 10 s.) Every 2 s, `GET /stats` says how many
//! requests the server thinks are in flight and how much work it did since
//! the last look. Once the clients are gone, their work should stop and the
//! gauge come back down. On the starter the work goes on for nobody and the
//! gauge only climbs.
//!
//! `cargo xtask console cancellation` runs it for you. By hand, next to
//! `cargo run -p cancellation`:
//!
//! ```text
//! cargo run -p cancellation --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lab_support::client::{base_url_from_args, leave_early, report, traffic_client};
use serde::Deserialize;

/// How long a client waits before it hangs up.
const PATIENCE: Duration = Duration::from_millis(100);
/// How often `/stats` is read.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// What `/stats` answers.
#[derive(Deserialize)]
struct Stats {
    report_steps: u64,
    render_steps: u64,
    in_flight: i64,
}

/// How many clients came (and left) so far.
static CLIENTS: AtomicU64 = AtomicU64::new(0);

/// Every `every`, one client asks for `url` and hangs up after [`PATIENCE`].
async fn impatient_clients(url: String, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        CLIENTS.fetch_add(1, Ordering::Relaxed);
        let url = url.clone();
        tokio::spawn(async move { leave_early(&url, PATIENCE).await });
    }
}

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let reports = impatient_clients(format!("{base}/report?steps=1000"), Duration::from_secs(1));
    let renders = impatient_clients(format!("{base}/render?steps=300"), Duration::from_secs(1));

    let stats = async {
        let client = traffic_client();
        let url = format!("{base}/stats");
        let mut last: Option<Stats> = None;
        // Out of step with the clients (which come on the quarter second), so
        // that the gauge is not read just as two of them arrive.
        tokio::time::sleep(Duration::from_millis(150)).await;
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
            let per_second =
                |now: u64, before: u64| now.saturating_sub(before) / REPORT_EVERY.as_secs();
            // The first reading only sets the baseline for the rates.
            if let Some(before) = &last {
                report(format!(
                    "{} clients came and left so far; in flight: {}; report steps/s: {}; \
                     render tiles/s: {}",
                    CLIENTS.load(Ordering::Relaxed),
                    stats.in_flight,
                    per_second(stats.report_steps, before.report_steps),
                    per_second(stats.render_steps, before.render_steps)
                ));
            }
            last = Some(stats);
        }
    };

    tokio::join!(reports, renders, stats);
}
