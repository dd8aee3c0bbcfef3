//! `cargo run -p fan-out`: the aggregator on http://127.0.0.1:8080 (`--port`
//! to change), in front of a counting upstream started in the same process.
//!
//! `GET /upstream-stats` shows what the upstream has seen so far, so curl can
//! watch calls being cancelled (or not):
//!
//! ```text
//! curl -s 'localhost:8080/aggregate?sources=slow/3000,fail,slow/3000'
//! curl -s localhost:8080/upstream-stats
//! ```

use std::sync::Arc;

use axum::Json;
use axum::routing::get;
use fan_out::{Config, DEADLINE, MAX_CALLS_AT_ONCE, app};
use lab_support::upstream::Upstream;
use serde_json::json;

fn main() -> std::io::Result<()> {
    let upstream = Upstream::start();
    let upstream_url = upstream.url("");
    println!("upstream (/ok, /slow/{{ms}}, /hang, /fail) on {upstream_url}");
    // Shared with the stats handler.
    let upstream = Arc::new(upstream);

    lab_support::LabServer::new("fan-out").run(move || {
        let config = Config {
            upstream: upstream_url,
            deadline: DEADLINE,
            max_calls_at_once: MAX_CALLS_AT_ONCE,
        };
        let stats = move || {
            let seen = json!({
                "started": upstream.requests_started(),
                "completed": upstream.requests_completed(),
                "cancelled": upstream.requests_cancelled(),
                "in_flight": upstream.in_flight(),
                "max_in_flight": upstream.max_in_flight(),
            });
            async move { Json(seen) }
        };
        app(config).route("/upstream-stats", get(stats))
    })
}
