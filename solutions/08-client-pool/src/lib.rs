//! Lab 08 · client-pool: calling another service from a handler.
//!
//! This server sits in front of an upstream service and calls it on every
//! request:
//!
//! - `GET /proxy/{*path}` forwards to the upstream's `/{path}` and relays its
//!   status and body (`/proxy/slow/100` → the upstream's `/slow/100`).
//! - `GET /check/{*path}` is a status page: it only reports the upstream's
//!   status, as JSON (`{"path":"/ok","status":200}`).
//!
//! An outbound call has costs an inbound one does not: a TCP connection to
//! open or reuse, an upstream that may never answer, a response body that has
//! to go somewhere. How the handlers call decides whether a busy server pays
//! those costs once or on every request.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::{Semaphore, SemaphorePermit};

// ANCHOR: config
/// Where the upstream is and how to treat it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The upstream's base URL, e.g. `http://127.0.0.1:4000`.
    pub upstream: String,
    /// How long one call to the upstream may take, from connecting to the
    /// last byte of the body. Past it, the caller gets 504 Gateway Timeout.
    pub deadline: Duration,
    /// At most this many calls to the upstream at once; more wait their turn.
    pub max_upstream_calls: usize,
}
// ANCHOR_END: config

// ANCHOR: state
/// What every handler shares.
#[derive(Clone)]
struct AppState {
    /// The one client of the whole server. It owns the connection pool;
    /// cloning it (with the state, for every request) shares that pool.
    client: reqwest::Client,
    upstream: Arc<str>,
    /// Turns at calling the upstream. reqwest opens as many connections to a
    /// host as there are requests in flight; this bounds them.
    turns: Arc<Semaphore>,
}

/// The lab's app. The tests point it at a counting upstream with a short
/// deadline; `cargo run -p client-pool` at one started in the same process.
pub fn app(config: Config) -> Router {
    let state = AppState {
        client: upstream_client(&config),
        upstream: config.upstream.trim_end_matches('/').into(),
        turns: Arc::new(Semaphore::new(config.max_upstream_calls)),
    };
    Router::new()
        .route("/proxy/{*path}", get(proxy))
        .route("/check/{*path}", get(check))
        .with_state(state)
}
// ANCHOR_END: state

// ANCHOR: client
/// A healthy upstream accepts a connection within milliseconds.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an unused connection stays in the pool. It must be shorter than
/// the upstream's own keep-alive timeout, so that the pool never hands out a
/// connection the upstream is closing at that very moment.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The client every handler uses, built once.
fn upstream_client(config: &Config) -> reqwest::Client {
    reqwest::Client::builder()
        // Connecting only; fail fast when nobody accepts.
        .connect_timeout(CONNECT_TIMEOUT.min(config.deadline))
        // The whole call: connect, send, wait for the answer, read the body.
        .timeout(config.deadline)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        // Keep as many idle connections as can be busy at once, no more.
        .pool_max_idle_per_host(config.max_upstream_calls)
        .build()
        .expect("a plain-HTTP client with these settings always builds")
}
// ANCHOR_END: client

impl AppState {
    /// The upstream's URL for `path` (given without its leading `/`).
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.upstream)
    }

    // ANCHOR: turn
    /// Waits for a turn to call the upstream. The turn ends when the permit
    /// is dropped, at the end of the handler.
    async fn turn(&self) -> SemaphorePermit<'_> {
        self.turns
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }
    // ANCHOR_END: turn
}

// ANCHOR: proxy
/// `GET /proxy/{*path}`: the upstream's answer to `GET /{path}`.
async fn proxy(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let _turn = state.turn().await;
    match fetch(&state.client, &state.url(&path)).await {
        Ok((status, body)) => (status, body).into_response(),
        Err(error) => upstream_failed(error),
    }
}
// ANCHOR_END: proxy

/// The status and the whole body of `GET url`.
async fn fetch(client: &reqwest::Client, url: &str) -> reqwest::Result<(StatusCode, Bytes)> {
    let response = client.get(url).send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    Ok((status, body))
}

// ANCHOR: check
/// `GET /check/{*path}`: how does the upstream answer `GET /{path}`?
async fn check(State(state): State<AppState>, Path(path): Path<String>) -> Response {
    let _turn = state.turn().await;
    match state.client.get(state.url(&path)).send().await {
        // A status page needs the status line only, but the body must still
        // be read to the end: only then can the connection serve the next
        // request. Dropped half-read, it is closed.
        Ok(mut response) => {
            let status = response.status();
            while let Ok(Some(_)) = response.chunk().await {}
            Json(json!({ "path": format!("/{path}"), "status": status.as_u16() })).into_response()
        }
        Err(error) => upstream_failed(error),
    }
}
// ANCHOR_END: check

// ANCHOR: upstream_failed
/// The answer when the call to the upstream failed without a response.
fn upstream_failed(error: reqwest::Error) -> Response {
    let message = format!("upstream call failed: {error}\n");
    // The upstream's silence is a 504: neither this server's fault (500) nor
    // a bad answer from the upstream (502).
    let status = if error.is_timeout() {
        StatusCode::GATEWAY_TIMEOUT
    } else {
        StatusCode::BAD_GATEWAY
    };
    (status, message).into_response()
}
// ANCHOR_END: upstream_failed
