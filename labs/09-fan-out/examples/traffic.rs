//! The console traffic of lab 09: three kinds of aggregate, over and over,
//! and what the upstream saw of them.
//!
//! Every 3 s, one after another: five sources of 200 ms (`GET /aggregate`);
//! four of 200 ms and one that never answers; four of 1 s and one that fails
//! at once. Then `GET /upstream-stats`: the most calls the upstream saw at
//! once, and how many of its requests were abandoned by their caller. The
//! starter takes 1 s for the first, never answers the second (the traffic
//! gives up after 5 s), and answers the third only after the slow calls
//! before the failure; the upstream never sees two calls at once.
//!
//! `cargo xtask console fan-out` runs it for you. By hand, next to
//! `cargo run -p fan-out`:
//!
//! ```text
//! cargo run -p fan-out --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::{Duration, Instant};

use lab_support::client::{base_url_from_args, brief, human, report, traffic_client};
use serde::Deserialize;

/// The pause between two rounds.
const PAUSE: Duration = Duration::from_secs(3);
/// How long the traffic waits for one aggregate: longer than the server's
/// 2 s deadline, shorter than forever.
const PATIENCE: Duration = Duration::from_secs(5);

/// The aggregates of one round: what they are, and their query.
const AGGREGATES: [(&str, &str); 3] = [
    ("five sources of 200 ms", ""),
    (
        "one hung source among four of 200 ms",
        "?sources=slow/200,slow/200,hang,slow/200,slow/200",
    ),
    (
        "one failing source among four of 1 s",
        "?sources=slow/1000,slow/1000,fail,slow/1000,slow/1000",
    ),
];

/// The part of `/upstream-stats` this traffic looks at.
#[derive(Deserialize)]
struct UpstreamStats {
    max_in_flight: u64,
    cancelled: u64,
}

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();
    loop {
        for (what, query) in AGGREGATES {
            let started = Instant::now();
            let answer = client
                .get(format!("{base}/aggregate{query}"))
                .timeout(PATIENCE)
                .send()
                .await;
            let outcome = match answer {
                Ok(reply) => format!("answered {}", reply.status().as_u16()),
                Err(error) => format!("no answer ({})", brief(&error)),
            };
            report(format!(
                "{what}: {outcome} after {}",
                human(started.elapsed())
            ));
        }
        let stats = match client.get(format!("{base}/upstream-stats")).send().await {
            Ok(reply) => reply.json::<UpstreamStats>().await.ok(),
            Err(_) => None,
        };
        match stats {
            Some(stats) => report(format!(
                "the upstream so far: at most {} call(s) at once, {} abandoned by their caller",
                stats.max_in_flight, stats.cancelled
            )),
            None => report("the upstream's stats: no answer"),
        }
        tokio::time::sleep(PAUSE).await;
    }
}
