//! The console traffic of lab 00: `GET /hello?name=Ferris` once a second,
//! and what the server answered.
//!
//! This lab has no concurrency bug: the traffic is there so that tokio-console
//! has something to show while you learn its screen. On the starter the answer
//! ignores the name ("Hello, world!"); once fixed, it greets Ferris.
//!
//! `cargo xtask console hello` runs it for you. By hand, next to
//! `cargo run -p hello`:
//!
//! ```text
//! cargo run -p hello --features traffic --example traffic -- http://127.0.0.1:8080
//! ```

use std::time::Duration;

use lab_support::client::{base_url_from_args, brief, report, traffic_client, try_send};

#[tokio::main]
async fn main() {
    let url = format!("{}/hello?name=Ferris", base_url_from_args());
    let client = traffic_client();
    loop {
        match try_send(client.get(&url)).await {
            Ok(reply) => report(format!("GET /hello?name=Ferris answered {:?}", reply.body)),
            Err(error) => report(format!("GET /hello?name=Ferris: {}", brief(&error))),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
