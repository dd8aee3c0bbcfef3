//! The console traffic of lab 07: a crowd bigger than the pool, and clients
//! who give up while their jobs wait.
//!
//! It reads the pool's size from `GET /stats`, then, every 3 s, in turn:
//!
//! - a crowd: workers + queue + 4 jobs of 500 ms at once. A bounded queue
//!   accepts workers + queue of them and refuses 4 with 503 in a millisecond;
//!   the starter accepts them all, and the last ones wait for seconds.
//! - impatient clients: one job per worker from clients who stay, then as
//!   many from clients who hang up after 100 ms, while their jobs wait in the
//!   queue. The pool should skip those; the starter works on them anyway.
//!
//! Each line reports the answers and what `/stats` counted meanwhile.
//!
//! `cargo xtask console worker-pool` runs it for you. By hand, next to
//! `cargo run -p worker-pool`:
//!
//! ```text
//! cargo run -p worker-pool --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::{Duration, Instant};

use lab_support::client::{base_url_from_args, human, leave_early, report, traffic_client};
use reqwest::Client;
use serde::Deserialize;
use tokio::task::JoinSet;

/// How long each job of the traffic takes a worker.
const JOB_MS: u64 = 500;
/// How many more jobs than the pool holds the crowd sends.
const EXTRA: usize = 4;
/// How long an impatient client waits before it hangs up.
const PATIENCE: Duration = Duration::from_millis(100);
/// The pause between two rounds.
const PAUSE: Duration = Duration::from_secs(3);

/// The part of `/stats` this traffic reads.
#[derive(Debug, Default, Deserialize)]
struct Stats {
    workers: usize,
    queue: usize,
    done: usize,
    skipped: usize,
}

async fn stats(client: &Client, base: &str) -> Option<Stats> {
    let reply = client.get(format!("{base}/stats")).send().await.ok()?;
    reply.json().await.ok()
}

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();
    let Some(size) = stats(&client, &base).await else {
        report(format!(
            "no answer from {base}/stats: is the server running?"
        ));
        return;
    };
    let (workers, queue) = (size.workers, size.queue);
    let job = |n: usize| format!("{base}/job?n={n}&ms={JOB_MS}");
    loop {
        // A crowd: more jobs at once than the pool holds.
        let crowd = workers + queue + EXTRA;
        let before = stats(&client, &base).await.unwrap_or_default();
        let mut requests = JoinSet::new();
        for n in 0..crowd {
            let request = client.get(job(n));
            requests.spawn(async move {
                let sent = Instant::now();
                let status = request.send().await.ok().map(|r| r.status().as_u16());
                (status, sent.elapsed())
            });
        }
        let answers = requests.join_all().await;
        let slowest = |status| {
            let times = answers.iter().filter(|(s, _)| *s == Some(status));
            times.map(|(_, t)| *t).max().map_or("-".into(), human)
        };
        let count = |status| answers.iter().filter(|(s, _)| *s == Some(status)).count();
        let after = stats(&client, &base).await.unwrap_or_default();
        report(format!(
            "{crowd} jobs at once ({workers} workers, queue {queue}): {} × 200 (the last after \
             {}), {} × 503 (the last after {}); done +{}",
            count(200),
            slowest(200),
            count(503),
            slowest(503),
            after.done.saturating_sub(before.done)
        ));
        tokio::time::sleep(PAUSE).await;

        // Impatient clients: their jobs wait behind a busy pool, and they leave.
        let before = stats(&client, &base).await.unwrap_or_default();
        let mut requests = JoinSet::new();
        for n in 0..workers {
            let request = client.get(job(n));
            requests.spawn(async move {
                let _ = request.send().await;
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for n in 0..workers {
            let url = job(100 + n);
            requests.spawn(async move { leave_early(&url, PATIENCE).await });
        }
        requests.join_all().await;
        // Long enough for the workers to reach the abandoned jobs, and finish them.
        tokio::time::sleep(Duration::from_millis(2 * JOB_MS)).await;
        let after = stats(&client, &base).await.unwrap_or_default();
        report(format!(
            "{workers} jobs from clients who stay, {workers} from clients who leave after {}: \
             done +{}, skipped +{}",
            human(PATIENCE),
            after.done.saturating_sub(before.done),
            after.skipped.saturating_sub(before.skipped)
        ));
        tokio::time::sleep(PAUSE).await;
    }
}
