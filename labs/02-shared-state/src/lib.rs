//! Lab 02 · shared state: a counter that loses updates.
//!
//! Every request to `/api` gets the next number from a counter shared by all
//! requests, and `{"request_num": …, "method": …, "path": …}` back. Between
//! reading the counter and storing the new value, the handler awaits a
//! (simulated) write to an audit log, and while it waits, other requests
//! read the same old value.
//!
//! Rust already refuses the data race of the Go version (plain `counter++`
//! from many threads does not compile); what it cannot refuse is a logic race:
//! a read-modify-write split by an `.await`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::any;
use axum::{Json, Router};
use serde::Serialize;

/// How long recording a request in the audit log takes.
pub const AUDIT_LOG_DELAY: Duration = Duration::from_millis(50);

/// The lab's app: the tests start it on a free port, `cargo run -p shared-state` on port 8080.
pub fn app() -> Router {
    Router::new()
        .route("/api", any(handle_request))
        .with_state(Arc::new(AppState::default()))
}

// ANCHOR: state
/// State shared by every request.
#[derive(Debug, Default)]
struct AppState {
    /// How many requests have been served so far.
    requests_served: Mutex<u64>,
}
// ANCHOR_END: state

/// What `/api` answers.
#[derive(Debug, Serialize)]
struct Served {
    request_num: u64,
    method: String,
    path: String,
}

// ANCHOR: handler
async fn handle_request(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
) -> Json<Served> {
    let served_before = *state.requests_served.lock().unwrap();
    record_in_audit_log(&method, &uri).await;
    let request_num = served_before + 1;
    *state.requests_served.lock().unwrap() = request_num;

    Json(Served {
        request_num,
        method: method.to_string(),
        path: uri.path().to_owned(),
    })
}
// ANCHOR_END: handler

/// Stands in for an async write to an audit log (a database, a remote service).
async fn record_in_audit_log(method: &Method, uri: &Uri) {
    tracing::debug!(%method, %uri, "audit");
    tokio::time::sleep(AUDIT_LOG_DELAY).await;
}
