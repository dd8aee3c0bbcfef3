//! Lab 09 · fan-out: call five upstreams at once, under one deadline, and
//! cancel the rest on failure.
//!
//! An aggregator answers one request with the answers of several others: a
//! dashboard that shows the weather, the news and your orders calls three
//! services to draw one page. Its own latency is that of its calls, so they
//! must run *at the same time* (fan-out), and their answers come back
//! together into one response (fan-in). Three promises make it a good
//! citizen:
//!
//! - **Fast:** the calls run at once, so five calls of 200 ms take about
//!   200 ms, not a second.
//! - **Bounded:** the whole answer comes within one deadline (2 s here),
//!   whatever the upstreams do; a source that is still silent then is
//!   reported as timed out, next to the answers that did arrive.
//! - **Frugal:** a failed source fails the whole aggregate at once, and the
//!   calls still running are cancelled, not left to finish for nobody. And
//!   a long list never has more than a few calls in flight at once.
//!
//! The route:
//!
//! - `GET /aggregate?sources=slow/200,hang,ok` calls the upstream's `/slow/200`,
//!   `/hang` and `/ok` (the sources, a comma-separated list of paths; five
//!   times `slow/200` when not given) and answers:
//!   - `200 OK` when every source answered in time:
//!     `{"sources":[{"source":"slow/200","status":"ok","body":"slow ok"},…]}`,
//!     in the order the sources were asked for;
//!   - `504 Gateway Timeout` when some did not answer by the deadline: the
//!     same list, those sources with `"status":"timeout"` and no body (the
//!     partial results are the others);
//!   - `502 Bad Gateway` as soon as one source fails (an error status or a
//!     broken connection): `{"failed":"fail","error":"…"}`.
//!
//! A real aggregator has its sources in its configuration; this one takes
//! them from the query, so that curl and the tests can make them slow, hang
//! or fail (see `lab_support::upstream::Upstream`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

// ANCHOR: config
/// Where the upstream is, and the aggregator's promises.
#[derive(Debug, Clone)]
pub struct Config {
    /// The upstream's base URL, e.g. `http://127.0.0.1:4000`.
    pub upstream: String,
    /// The whole aggregate is answered within this long after it is asked for,
    /// whatever the upstreams do.
    pub deadline: Duration,
    /// At most this many calls of one aggregate are in flight at once.
    pub max_calls_at_once: usize,
}
// ANCHOR_END: config

/// The deadline of `cargo run -p fan-out`.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// How many calls of one aggregate `cargo run -p fan-out` makes at once.
pub const MAX_CALLS_AT_ONCE: usize = 5;
/// The sources of `GET /aggregate` without a query: five calls of 200 ms.
pub const DEFAULT_SOURCES: &str = "slow/200,slow/200,slow/200,slow/200,slow/200";

/// What every request shares.
#[derive(Clone)]
struct AppState {
    /// The one client of the server: clones share its connection pool
    /// (chapter 08). It has no timeout of its own: the aggregate's deadline
    /// is the one that counts.
    client: reqwest::Client,
    config: Arc<Config>,
}

/// The lab's app. The tests point it at a counting upstream with a short
/// deadline; `cargo run -p fan-out` at one started in the same process.
pub fn app(mut config: Config) -> Router {
    config.upstream = config.upstream.trim_end_matches('/').to_owned();
    let state = AppState {
        client: reqwest::Client::new(),
        config: Arc::new(config),
    };
    Router::new()
        .route("/aggregate", get(aggregate))
        .with_state(state)
}

/// The query of `/aggregate`.
#[derive(Debug, Deserialize)]
struct Sources {
    sources: Option<String>,
}

impl Sources {
    /// The upstream paths to call, in order.
    fn list(&self) -> Vec<String> {
        let sources = self.sources.as_deref().unwrap_or(DEFAULT_SOURCES);
        sources
            .split(',')
            .map(|source| source.trim().trim_start_matches('/'))
            .filter(|source| !source.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

// ANCHOR: part
/// What one source gave the aggregate, as the answer shows it:
/// `{"source":"slow/200","status":"ok","body":"slow ok"}` or
/// `{"source":"hang","status":"timeout"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// The upstream path called.
    pub source: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// How a source's call ended, if it did not fail.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// It answered in time, with this body.
    Ok { body: String },
    /// It had not answered by the deadline.
    Timeout,
}

/// The body of a 200 or a 504: every source's part, in the order asked.
#[derive(Debug, Serialize)]
struct Aggregate {
    sources: Vec<Part>,
}

/// A source that failed, which fails the whole aggregate.
#[derive(Debug)]
pub struct Failure {
    pub source: String,
    pub error: reqwest::Error,
}
// ANCHOR_END: part

// ANCHOR: aggregate
/// `GET /aggregate?sources=…`: every source's answer, in one response.
async fn aggregate(
    State(state): State<AppState>,
    Query(sources): Query<Sources>,
) -> Result<Response, Failure> {
    let mut parts = Vec::new();
    for source in sources.list() {
        let body = state.fetch(&source).await?;
        parts.push(Part {
            source,
            outcome: Outcome::Ok { body },
        });
    }
    Ok(answer(parts))
}
// ANCHOR_END: aggregate

impl AppState {
    // ANCHOR: fetch
    /// The body of the upstream's answer to `GET /{source}`. An error status
    /// is a failure too: reqwest returns a 500 as an answer like any other.
    async fn fetch(&self, source: &str) -> Result<String, Failure> {
        let url = format!("{}/{source}", self.config.upstream);
        let call = async {
            let response = self.client.get(url).send().await?.error_for_status()?;
            response.text().await
        };
        call.await.map_err(|error| Failure {
            source: source.to_owned(),
            error,
        })
    }
    // ANCHOR_END: fetch
}

// ANCHOR: answer
/// The aggregate's answer: 200 when every source answered, 504 when one or
/// more did not answer in time (the others' answers included).
fn answer(parts: Vec<Part>) -> Response {
    let late = parts
        .iter()
        .filter(|part| matches!(part.outcome, Outcome::Timeout))
        .count();
    let status = if late == 0 {
        StatusCode::OK
    } else {
        StatusCode::GATEWAY_TIMEOUT
    };
    tracing::info!(sources = parts.len(), late, %status, "aggregate answered");
    (status, Json(Aggregate { sources: parts })).into_response()
}

/// The body of a 502: `{"failed":"fail","error":"…"}`.
#[derive(Debug, Serialize)]
struct Failed {
    failed: String,
    error: String,
}

impl IntoResponse for Failure {
    /// 502 Bad Gateway, naming the source that failed.
    fn into_response(self) -> Response {
        tracing::info!(source = self.source, error = %self.error, "a source failed");
        let body = Failed {
            failed: self.source,
            error: self.error.to_string(),
        };
        (StatusCode::BAD_GATEWAY, Json(body)).into_response()
    }
}
// ANCHOR_END: answer
