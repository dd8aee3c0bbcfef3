//! The console traffic of lab 10: keeps the server busy, so that there is
//! something in flight when you stop it.
//!
//! In rounds: one `GET /events` stream and three `GET /work?ms=5000`
//! requests at once, then how each ended. Stop the server while a round is
//! running (the lines say how: `kill -TERM <pid>`, or Ctrl-C in its terminal)
//! and read what the clients got. The starter cuts all of them; the fix
//! answers the three requests with 200, ends the stream cleanly, refuses the
//! next round, and exits. In tokio-console, watch the connection tasks of a
//! round while the server stops: on the fix they finish one by one, the
//! stream's first.
//!
//! `cargo xtask console graceful-shutdown` runs it for you. By hand, next to
//! `cargo run -p graceful-shutdown`:
//!
//! ```text
//! cargo run -p graceful-shutdown --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::{Duration, Instant};

use lab_support::client::{base_url_from_args, brief, human, report, traffic_client};
use reqwest::Client;
use tokio::task::JoinSet;

/// How long each slow request of a round takes.
const WORK_MS: u64 = 5000;
/// How many slow requests a round sends at once.
const REQUESTS: usize = 3;
/// How long the round's client listens to the event stream.
const STREAM_LISTEN: Duration = Duration::from_millis(WORK_MS + 1000);
/// The pause between two rounds, and between two tries at a stopped server.
const PAUSE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() {
    let base = base_url_from_args();
    let client = traffic_client();
    let mut said_gone = false;
    loop {
        let pid = match client.get(format!("{base}/health")).send().await {
            Ok(reply) => reply
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|health| health["pid"].as_u64()),
            Err(error) => {
                if !said_gone {
                    report(format!(
                        "the server does not answer ({}): stopped?",
                        brief(&error)
                    ));
                    said_gone = true;
                }
                tokio::time::sleep(PAUSE).await;
                continue;
            }
        };
        said_gone = false;
        let pid = pid.map_or_else(|| "<pid>".to_owned(), |pid| pid.to_string());
        report(format!(
            "{REQUESTS} requests of {} s and 1 event stream in flight: stop the server now \
             (`kill -TERM {pid}`, or Ctrl-C in its terminal) and see how they end",
            WORK_MS / 1000
        ));
        round(&client, &base).await;
        tokio::time::sleep(PAUSE).await;
    }
}

/// One round: the stream and the requests at once; a line for each as it ends.
async fn round(client: &Client, base: &str) {
    let mut round = JoinSet::new();
    for n in 1..=REQUESTS {
        let request = client.get(format!("{base}/work?ms={WORK_MS}"));
        round.spawn(async move {
            let started = Instant::now();
            let outcome = match request.send().await {
                Ok(reply) => match (reply.status(), reply.text().await) {
                    (status, Ok(_)) => format!("answered {status}"),
                    (_, Err(error)) => format!("cut off mid-answer ({})", brief(&error)),
                },
                Err(error) => format!("cut off ({})", brief(&error)),
            };
            format!("request {n}: {outcome} after {}", human(started.elapsed()))
        });
    }
    let events = client.get(format!("{base}/events"));
    round.spawn(async move {
        let started = Instant::now();
        let mut stream = match events.send().await {
            Ok(stream) => stream,
            Err(error) => return format!("stream: not opened ({})", brief(&error)),
        };
        let mut chunks = 0;
        // The stream never ends on its own: listen a little longer than the
        // round's requests take, then hang up.
        let listen_until = tokio::time::Instant::now() + STREAM_LISTEN;
        let outcome = loop {
            match tokio::time::timeout_at(listen_until, stream.chunk()).await {
                Ok(Ok(Some(_))) => chunks += 1,
                Ok(Ok(None)) => break "ended cleanly".to_owned(),
                Ok(Err(error)) => break format!("cut off ({})", brief(&error)),
                Err(_) => break "still open; the client hung up".to_owned(),
            }
        };
        format!(
            "stream: {outcome} after {} ({chunks} events)",
            human(started.elapsed())
        )
    });
    while let Some(line) = round.join_next().await {
        report(line.unwrap_or_else(|e| format!("a client task failed: {e}")));
    }
}
