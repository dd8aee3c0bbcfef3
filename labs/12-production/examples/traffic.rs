//! The console traffic of lab 12: a few hostile clients, every few seconds,
//! and what the server did with them.
//!
//! Each round: two clients that send half their headers and go quiet
//! (slowloris), a 10 MB body to `POST /documents`, and 150 reports of 1 s at
//! once (more than the default limit of 100 in flight, and more than one
//! address's quota). On the starter the slowloris connections pile up (their
//! tasks stay in tokio-console, idle for ever), the 10 MB is read, and all
//! 150 reports run; with the guards, the connections close after 5 s, the
//! body is refused unread, and the excess is answered 503 or 429 at once.
//!
//! `cargo xtask console production` runs it for you. By hand, next to
//! `cargo run -p production`:
//!
//! ```text
//! cargo run -p production --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::Duration;

use lab_support::client::{base_url_from_args, brief, report, traffic_client};
use reqwest::Url;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Reports sent at once each round.
const AT_ONCE: usize = 150;
/// The pause between two rounds.
const PAUSE: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();
    let url = Url::parse(&base).expect("a URL checked by base_url_from_args");
    let addr = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port_or_known_default().unwrap_or(80)
    );
    // The slowloris connections of every round, kept open by the traffic
    // until the server closes them.
    let mut stalled = Vec::new();
    let huge = vec![b' '; 10 * 1024 * 1024];
    loop {
        for _ in 0..2 {
            if let Ok(mut stream) = TcpStream::connect(&addr).await {
                let half = format!("POST /documents HTTP/1.1\r\nHost: {addr}\r\n");
                if stream.write_all(half.as_bytes()).await.is_ok() {
                    stalled.push(stream);
                }
            }
        }
        let mut open = 0;
        for stream in &stalled {
            // A closed connection reads as ready with 0 bytes.
            let mut probe = [0u8; 1];
            if matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            {
                open += 1;
            }
        }

        let upload = client
            .post(format!("{base}/documents"))
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await;
        let upload = match upload {
            Ok(reply) => reply.status().as_u16().to_string(),
            Err(error) => brief(&error),
        };

        let mut burst = JoinSet::new();
        for _ in 0..AT_ONCE {
            let request = client
                .post(format!("{base}/report"))
                .json(&json!({ "ms": 1000 }));
            burst.spawn(async move { request.send().await.ok().map(|r| r.status().as_u16()) });
        }
        let statuses: Vec<u16> = burst.join_all().await.into_iter().flatten().collect();
        let count = |status| statuses.iter().filter(|s| **s == status).count();

        let read = match client.get(format!("{base}/stats")).send().await {
            Ok(reply) => reply
                .json::<serde_json::Value>()
                .await
                .ok()
                .map(|stats| stats["body_bytes_read"].to_string()),
            Err(_) => None,
        }
        .unwrap_or_else(|| "?".into());

        report(format!(
            "slowloris connections still open: {open} of {}; 10 MB upload: {upload} \
             (body bytes read so far: {read}); {AT_ONCE} reports at once: {} × 200, {} × 503, \
             {} × 429",
            stalled.len(),
            count(200),
            count(503),
            count(429)
        ));
        tokio::time::sleep(PAUSE).await;
    }
}
