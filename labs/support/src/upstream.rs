//! A stand-in for the services a lab's server calls: it counts what it sees
//! and can be slow, hang or fail on demand.
//!
//! Labs about HTTP clients (pooling, fan-out, timeouts) need to observe the
//! far side of a connection: how many TCP connections were opened, how many
//! requests are in flight at once, and whether a request was abandoned before
//! its answer. [`Upstream`] records exactly that.
//!
//! Routes:
//! - `GET /ok`: answers `ok` at once.
//! - `GET /slow/{ms}`: answers after `ms` milliseconds.
//! - `GET /hang`: never answers.
//! - `GET /fail`: answers 500.
//! - `GET /stream/{chunks}/{ms}`: a body of `chunks` lines, one every `ms`.
//!   The upstream records whether each such body was sent to the end or
//!   abandoned half-way because the caller closed the connection (a caller
//!   that drops a response without reading its body does exactly that).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use futures::stream;

use crate::TestServer;

/// One getter per counter, `name => field`: each reads the field now.
macro_rules! counter_getters {
    ($($(#[doc = $doc:literal])* $name:ident => $field:ident;)*) => {$(
        $(#[doc = $doc])*
        pub fn $name(&self) -> usize {
            self.counters.$field.load(Ordering::SeqCst)
        }
    )*};
}

/// What the upstream has seen so far.
#[derive(Debug, Default)]
struct Counters {
    started: AtomicUsize,
    completed: AtomicUsize,
    cancelled: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    streams_completed: AtomicUsize,
    streams_abandoned: AtomicUsize,
}

/// A counting upstream server on `127.0.0.1:<ephemeral port>`, running on its
/// own runtime until dropped.
pub struct Upstream {
    server: TestServer,
    counters: Arc<Counters>,
}

impl Upstream {
    /// Starts the upstream.
    pub fn start() -> Self {
        let counters = Arc::new(Counters::default());
        let server = TestServer::start(app(counters.clone()));
        Upstream { server, counters }
    }

    /// The full URL of `path` on the upstream, e.g. `url("/slow/200")`.
    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The address the upstream listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    counter_getters! {
        /// Requests whose handler has started.
        requests_started => started;
        /// Requests answered (the handler produced a response).
        requests_completed => completed;
        /// Requests abandoned by the caller before their answer was ready.
        requests_cancelled => cancelled;
        /// Requests being handled right now.
        in_flight => in_flight;
        /// The most requests ever handled at the same time.
        max_in_flight => max_in_flight;
        /// `/stream/..` bodies sent to the last chunk.
        streams_completed => streams_completed;
        /// `/stream/..` bodies given up before the last chunk because the
        /// connection went away (the caller closed it, or dropped it half-read).
        streams_abandoned => streams_abandoned;
    }
}

fn app(counters: Arc<Counters>) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/slow/{ms}", get(slow))
        .route("/hang", get(std::future::pending::<&'static str>))
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "upstream failure") }),
        )
        .route("/stream/{chunks}/{ms}", get(chunked))
        .with_state(counters.clone())
        .layer(middleware::from_fn_with_state(counters, count_request))
}

async fn slow(Path(ms): Path<u64>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow ok"
}

async fn chunked(
    State(counters): State<Arc<Counters>>,
    Path((chunks, ms)): Path<(usize, u64)>,
) -> Body {
    // The outcome travels with the stream: hyper drops the stream when the
    // connection goes away, and the outcome's `Drop` records how far it got.
    let outcome = StreamOutcome {
        counters,
        completed: false,
    };
    let lines = stream::unfold((0, outcome), move |(sent, outcome)| async move {
        if sent == chunks {
            outcome.complete();
            return None;
        }
        if sent > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let line = Bytes::from(format!("chunk {sent}\n"));
        Some((Ok::<_, Infallible>(line), (sent + 1, outcome)))
    });
    Body::from_stream(lines)
}

/// Records, when dropped, whether a streamed body got to its end.
struct StreamOutcome {
    counters: Arc<Counters>,
    completed: bool,
}

impl StreamOutcome {
    fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for StreamOutcome {
    fn drop(&mut self) {
        let outcome = if self.completed {
            &self.counters.streams_completed
        } else {
            &self.counters.streams_abandoned
        };
        outcome.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts a request in and out. If the caller goes away first, hyper drops
/// this future before `next.run` finishes, the guard sees no answer, and the
/// request counts as cancelled.
async fn count_request(
    State(counters): State<Arc<Counters>>,
    request: Request,
    next: Next,
) -> Response {
    let mut guard = InFlight::enter(counters);
    let response = next.run(request).await;
    guard.answered = true;
    response
}

struct InFlight {
    counters: Arc<Counters>,
    answered: bool,
}

impl InFlight {
    fn enter(counters: Arc<Counters>) -> Self {
        counters.started.fetch_add(1, Ordering::SeqCst);
        let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight {
            counters,
            answered: false,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        let outcome = if self.answered {
            &self.counters.completed
        } else {
            &self.counters.cancelled
        };
        outcome.fetch_add(1, Ordering::SeqCst);
    }
}
