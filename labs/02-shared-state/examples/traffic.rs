//! The console traffic of lab 02: 20 `POST /api` at once, every 2 s, and how
//! many different request numbers they got back.
//!
//! Every request should get a number of its own: 20 requests, 20 distinct
//! numbers. The starter loses updates (it reads the counter, awaits the audit
//! log, then writes the counter back), so requests that overlap get the same
//! number. tokio-console cannot see that: a lost update is a logic race, not
//! a scheduling problem. These lines can.
//!
//! `cargo xtask console shared-state` runs it for you. By hand, next to
//! `cargo run -p shared-state`:
//!
//! ```text
//! cargo run -p shared-state --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use lab_support::client::{base_url_from_args, report, traffic_client};
use serde::Deserialize;
use tokio::task::JoinSet;

/// How many requests are sent at once.
const AT_ONCE: usize = 20;
/// The pause between two bursts.
const PAUSE: Duration = Duration::from_secs(2);

/// The part of `/api`'s answer this traffic looks at.
#[derive(Deserialize)]
struct Served {
    request_num: u64,
}

#[tokio::main]
async fn main() {
    let url = format!("{}/api", base_url_from_args());
    let client = traffic_client();
    loop {
        let mut requests = JoinSet::new();
        for _ in 0..AT_ONCE {
            let request = client.post(&url);
            requests.spawn(async move {
                let reply = request.send().await.ok()?;
                reply.json::<Served>().await.ok()
            });
        }
        // The numbers of the requests that were answered.
        let numbers: Vec<u64> = requests
            .join_all()
            .await
            .into_iter()
            .flatten()
            .map(|served| served.request_num)
            .collect();
        let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
        report(format!(
            "{} requests got {} distinct numbers ({}..={})",
            numbers.len(),
            distinct.len(),
            distinct.first().unwrap_or(&0),
            distinct.last().unwrap_or(&0)
        ));
        tokio::time::sleep(PAUSE).await;
    }
}
