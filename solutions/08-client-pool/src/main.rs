//! `cargo run -p client-pool`: the proxy on http://127.0.0.1:8080 (`--port` to
//! change), in front of a counting upstream started in the same process.
//!
//! `GET /upstream-stats` shows what the upstream has seen so far, so curl can
//! watch the connections pile up (or not):
//!
//! ```text
//! for i in $(seq 20); do curl -s localhost:8080/proxy/ok; echo; done
//! curl localhost:8080/upstream-stats
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::routing::get;
use client_pool::{Config, app};
use lab_support::upstream::Upstream;
use serde_json::json;

fn main() -> std::io::Result<()> {
    let upstream = Upstream::start();
    let upstream_url = upstream.url("");
    println!(
        "upstream (/ok, /slow/{{ms}}, /hang, /fail, /stream/{{chunks}}/{{ms}}) on {upstream_url}"
    );
    // Shared with the stats handler.
    let upstream = Arc::new(upstream);

    lab_support::LabServer::new("client-pool").run(move || {
        let config = Config {
            upstream: upstream_url,
            deadline: Duration::from_secs(2),
            max_upstream_calls: 8,
        };
        let stats = move || {
            let seen = json!({
                "connections": upstream.connections(),
                "requests": upstream.requests_started(),
                "in_flight": upstream.in_flight(),
                "streams_completed": upstream.streams_completed(),
                "streams_abandoned": upstream.streams_abandoned(),
            });
            async move { Json(seen) }
        };
        app(config).route("/upstream-stats", get(stats))
    })
}
