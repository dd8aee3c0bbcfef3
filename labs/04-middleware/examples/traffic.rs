//! The console traffic of lab 04: one greedy client, one quiet client, and
//! a visitor without a token, and how the server answered each.
//!
//! Every 2 s: 40 `GET /` at once from 127.0.0.1 (the greedy client: over a
//! minute that is far beyond its 100 requests), one `GET /` from 127.0.0.2
//! (the quiet client), and from 127.0.0.2 too `GET /api/orders` and
//! `GET /api/export` without a token (3 requests every 2 s: 90 a minute, within
//! the quota). A server whose limit holds, per client, answers the greedy client
//! with 429 once its 100 are spent, the quiet one with 200 throughout, and
//! the visitor with 401 twice. The starter answers 200 to everything, the
//! export included. tokio-console shows connection tasks either way: a limit
//! is not something a task list can show, these lines are.
//!
//! `cargo xtask console middleware` runs it for you. By hand, next to
//! `cargo run -p middleware`:
//!
//! ```text
//! cargo run -p middleware --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lab_support::client::{base_url_from_args, brief, report, traffic_client};
use reqwest::Client;
use tokio::task::JoinSet;

/// The greedy client's burst: 40 every 2 s is 1200 a minute, against a quota of 100.
const BURST: usize = 40;
/// The pause between two rounds.
const PAUSE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let greedy = traffic_client();
    let quiet = quiet_client();
    let home = format!("{base}/");
    loop {
        let mut burst = JoinSet::new();
        for _ in 0..BURST {
            let request = greedy.get(&home);
            burst.spawn(async move {
                let reply = request.send().await.ok()?;
                let retry_after = reply
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Some((reply.status().as_u16(), retry_after))
            });
        }
        let replies: Vec<_> = burst.join_all().await.into_iter().flatten().collect();
        let count = |status| replies.iter().filter(|(s, _)| *s == status).count();
        let retry_after = replies
            .iter()
            .find_map(|(_, retry_after)| retry_after.clone())
            .map_or_else(String::new, |s| format!(" (Retry-After: {s})"));
        report(format!(
            "127.0.0.1, {BURST} requests at once: {} × 200, {} × 429{retry_after}",
            count(200),
            count(429)
        ));

        let quiet_answer = match quiet.get(&home).send().await {
            Ok(reply) => reply.status().as_u16().to_string(),
            Err(error) if error.is_connect() => "could not connect from 127.0.0.2 (on macOS: \
                 `sudo ifconfig lo0 alias 127.0.0.2 up`)"
                .to_owned(),
            Err(error) => brief(&error),
        };
        report(format!("127.0.0.2, one request: {quiet_answer}"));

        let mut visitor = Vec::new();
        for path in ["/api/orders", "/api/export"] {
            let answer = match quiet.get(format!("{base}{path}")).send().await {
                Ok(reply) => reply.status().as_u16().to_string(),
                Err(error) => brief(&error),
            };
            visitor.push(format!("{path} {answer}"));
        }
        report(format!("127.0.0.2 without a token: {}", visitor.join(", ")));
        tokio::time::sleep(PAUSE).await;
    }
}

/// A client whose requests come from 127.0.0.2, a second loopback address.
fn quiet_client() -> Client {
    Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain-HTTP client always builds")
}
