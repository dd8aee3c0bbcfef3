//! The console traffic of lab 03: bursts of twice as many slow jobs as the
//! server may run at once, and how the server answered them.
//!
//! Every 3 s, 6 `GET /work?ms=1500` at once to a server limited to 3 jobs at
//! a time; then `GET /jobs` for the most jobs that ever ran at once. A server
//! whose limit holds answers 3 × 200 and 3 × 503, and its peak stays at 3. The
//! starter's limit does not hold: 6 × 200, a peak of 6. tokio-console shows
//! the same six connection tasks either way; these lines tell them apart.
//!
//! `cargo xtask console overload` runs it for you. By hand, next to
//! `cargo run -p overload`:
//!
//! ```text
//! cargo run -p overload --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::Duration;

use lab_support::client::{base_url_from_args, report, traffic_client};
use overload::DEFAULT_MAX_IN_FLIGHT as LIMIT;
use serde::Deserialize;
use tokio::task::JoinSet;

/// Twice the limit of `cargo run -p overload`.
const AT_ONCE: usize = 2 * LIMIT;
/// The pause between two bursts.
const PAUSE: Duration = Duration::from_secs(3);

/// The part of `/jobs`'s answer this traffic looks at.
#[derive(Deserialize)]
struct JobCounts {
    /// The most jobs ever running at the same time.
    peak: u64,
}

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();
    let work = format!("{base}/work?ms=1500");
    let jobs = format!("{base}/jobs");
    loop {
        let mut burst = JoinSet::new();
        for _ in 0..AT_ONCE {
            let request = client.get(&work);
            burst.spawn(async move { request.send().await.ok().map(|r| r.status().as_u16()) });
        }
        let statuses: Vec<u16> = burst.join_all().await.into_iter().flatten().collect();
        let count = |status| statuses.iter().filter(|s| **s == status).count();

        let peak = match client.get(&jobs).send().await {
            Ok(reply) => reply.json::<JobCounts>().await.ok(),
            Err(_) => None,
        }
        .map_or_else(|| "?".to_owned(), |counts| counts.peak.to_string());

        report(format!(
            "{AT_ONCE} requests at once (limit {LIMIT}): {} answered 200, {} answered 503; the most \
             jobs ever running at once: {peak}",
            count(200),
            count(503)
        ));
        tokio::time::sleep(PAUSE).await;
    }
}
