//! The console traffic of lab 08: rounds of proxied requests, and how many
//! new connections to the upstream each round cost.
//!
//! Every 2 s, 10 `GET /proxy/ok` one after another; then
//! `GET /upstream-stats` says how many TCP connections the upstream (started
//! by `cargo run -p client-pool` in the same process) has accepted so far. A
//! server with one pooled client reuses its connection: 0 new ones a round.
//! The starter builds a client, and so a connection, for every request.
//!
//! `cargo xtask console client-pool` runs it for you. By hand, next to
//! `cargo run -p client-pool`:
//!
//! ```text
//! cargo run -p client-pool --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::Duration;

use lab_support::client::{base_url_from_args, report, traffic_client, try_send};

/// Proxied requests per round, sent one after another.
const PER_ROUND: usize = 10;
/// The pause between two rounds.
const PAUSE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();
    let proxied = format!("{base}/proxy/ok");
    let stats = format!("{base}/upstream-stats");
    let mut connections_before: Option<u64> = None;
    loop {
        for _ in 0..PER_ROUND {
            let _ = try_send(client.get(&proxied)).await;
        }
        let connections = match client.get(&stats).send().await {
            Ok(reply) => reply.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        }
        .and_then(|seen| seen["connections"].as_u64());
        match (connections, connections_before) {
            (Some(now), Some(before)) => report(format!(
                "{PER_ROUND} proxied requests opened {} new upstream connections ({now} in all)",
                now - before
            )),
            (Some(now), None) => report(format!("upstream connections so far: {now}")),
            (None, _) => report("GET /upstream-stats: no answer"),
        }
        connections_before = connections.or(connections_before);
        tokio::time::sleep(PAUSE).await;
    }
}
