//! Lab 12 · production: a server that survives hostile clients.
//!
//! A small JSON API that works on a good day: store a document, list them,
//! build a slow report. Every earlier lab fixed one way a server falls over;
//! this one puts the guards together and points hostile clients at them: a
//! body far too large, a client that sends half its headers and stalls
//! (slowloris), a body sent a trickle at a time, a thousand requests at once,
//! one address flooding the server, a report that outruns its time budget,
//! and a SIGTERM with requests in flight.
//!
//! Serving is part of the lesson (the header-read timeout and the shutdown
//! deadline live there, below the router), so this crate owns [`serve`]; the
//! binary and the tests both call it.
//!
//! Routes:
//! - `POST /documents`, JSON `{"title": "...", "text": "..."}`: stores a document.
//! - `GET /documents`: the titles stored so far.
//! - `POST /report`, JSON `{"ms": 2000}`: a slow report, built step by step.
//! - `GET /stats`: what the server saw (see [`Stats`]).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use futures::TryStreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{ServiceBuilder, ServiceExt};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;

// ANCHOR: config
/// The limits the server is meant to hold. `cargo run -p production` uses the
/// defaults; each test picks numbers small enough to see them hold in seconds.
#[derive(Debug, Clone)]
pub struct Config {
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// How long a client may take to send its request line and headers.
    pub header_timeout: Duration,
    /// How long a request body may go without sending a byte.
    pub body_timeout: Duration,
    /// The time budget of one request, from its headers to its response.
    pub request_timeout: Duration,
    /// How many requests may be handled at once.
    pub max_in_flight: usize,
    /// How many requests one client address may make in a burst...
    pub per_ip_burst: u32,
    /// ...and how many a minute after that.
    pub per_ip_per_minute: u32,
    /// How long a SIGTERM waits for requests in flight before giving up on them.
    pub shutdown_deadline: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body: 64 * 1024,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_in_flight: 100,
            per_ip_burst: 100,
            per_ip_per_minute: 100,
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}
// ANCHOR_END: config

// ANCHOR: app
/// The lab's app: the routes, behind the guards that keep hostile clients
/// from taking the server down.
///
/// `Router::layer` wraps everything added before it, so the layer added
/// *last* is the outermost: a request meets them from the bottom up.
pub fn app(config: &Config, stats: Stats) -> Router {
    routes(stats)
        .layer(
            // A `ServiceBuilder` reads top-down: the first layer is the outermost.
            ServiceBuilder::new()
                // 413 from Content-Length before a byte of the body is read,
                // and a cap on what is read when there is no Content-Length.
                .layer(RequestBodyLimitLayer::new(config.max_body))
                // 503 + Retry-After when `max_in_flight` requests already run.
                .layer(HandleErrorLayer::new(|_: BoxError| async { overloaded() }))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::new(config.max_in_flight))
                // 503 when a request outruns its budget; dropping the handler
                // stops its work. Inside the limit: only running time counts.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    config.request_timeout,
                ))
                // A body that stops arriving fails the handler's read.
                .layer(RequestBodyTimeoutLayer::new(config.body_timeout)),
        )
        // 429 for an address over its quota: the cheapest refusal, first.
        .layer(middleware::from_fn_with_state(
            PerIpLimit::new(config),
            limit_per_ip,
        ))
        // Outermost: every answer, refusals included, is logged with an id.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The answer to a request beyond the concurrency limit.
fn overloaded() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "too many requests in flight; retry in 1 s\n",
    )
        .into_response()
}
// ANCHOR_END: app

// ANCHOR: per_ip
/// One rate limiter for the whole server, keyed by the client's address
/// (the socket's peer, never a header a client can write).
#[derive(Clone)]
struct PerIpLimit(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl PerIpLimit {
    fn new(config: &Config) -> Self {
        let per_minute = NonZeroU32::new(config.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.per_ip_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        PerIpLimit(Arc::new(RateLimiter::keyed(quota)))
    }
}

/// 429 with `Retry-After` for an address that has used up its quota.
async fn limit_per_ip(
    State(limit): State<PerIpLimit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match limit.0.check_key(&peer.ip()) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs().max(1).to_string();
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after)],
                "too many requests from your address\n",
            )
                .into_response()
        }
    }
}
// ANCHOR_END: per_ip

// ANCHOR: serve
/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish, for at most `config.shutdown_deadline`.
///
/// hyper's own HTTP/1 connection builder rather than `axum::serve`, which
/// gives hyper no timer: hyper's timeouts count time with a timer they are
/// given, and without one the default header-read timeout (30 s) is silently
/// off, and a configured one panics. (hyper-util's `auto::Builder` works too,
/// but it first reads a few bytes to tell HTTP/1 from HTTP/2, with no
/// timeout: a client that connects and sends nothing is held for ever.)
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // ANCHOR: builder
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    // ANCHOR_END: builder

    let connections = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, say: wait a little, keep serving.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // What `into_make_service_with_connect_info` does for `axum::serve`:
        // hand each request its peer's address.
        let service = app.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }

    // Stop accepting, ask every connection to finish its request and close,
    // and give them the deadline, not a second more.
    drop(listener);
    tracing::info!(
        in_flight = connections.count(),
        "shutting down: finishing the requests in flight"
    );
    // ANCHOR: deadline
    tokio::select! {
        () = connections.shutdown() => tracing::info!("every connection closed"),
        () = tokio::time::sleep(config.shutdown_deadline) => tracing::warn!(
            deadline = ?config.shutdown_deadline,
            "requests still running at the deadline; abandoning them"
        ),
    }
    // ANCHOR_END: deadline
    // Returning lets `main` return, which drops the runtime and with it
    // every connection still open.
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: signal
/// Completes on Ctrl-C, or on SIGTERM (what `kill`, systemd, Docker and
/// Kubernetes send to stop a server) where there is such a thing.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
// ANCHOR_END: signal

// ANCHOR: routes
/// What the server does, with no guards. `stats` counts what happens; the
/// tests keep a clone of it.
pub fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/documents", post(store_document).get(list_documents))
        .route("/report", post(report))
        .route("/stats", get(show_stats))
        .layer(middleware::from_fn_with_state(stats.clone(), count))
        .with_state(stats)
}
// ANCHOR_END: routes

/// A document to store.
#[derive(Debug, Deserialize)]
struct Document {
    title: String,
    text: String,
}

async fn store_document(
    State(stats): State<Stats>,
    Json(document): Json<Document>,
) -> (StatusCode, Json<Value>) {
    let bytes = document.text.len();
    let mut titles = stats.0.titles.lock().unwrap_or_else(|e| e.into_inner());
    titles.push(document.title);
    let id = titles.len();
    (
        StatusCode::CREATED,
        Json(json!({ "id": id, "bytes": bytes })),
    )
}

async fn list_documents(State(stats): State<Stats>) -> Json<Value> {
    let titles = stats.0.titles.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({ "titles": *titles }))
}

/// What a report is asked to cover: here, only how long it takes.
#[derive(Debug, Deserialize)]
struct ReportRequest {
    ms: u64,
}

/// One step of a report: a query, say.
const REPORT_STEP: Duration = Duration::from_millis(10);

/// A slow report: `ms` milliseconds of 10 ms steps, each counted as it ends.
async fn report(State(stats): State<Stats>, Json(asked): Json<ReportRequest>) -> Json<Value> {
    let steps = asked.ms / REPORT_STEP.as_millis() as u64;
    for _ in 0..steps {
        tokio::time::sleep(REPORT_STEP).await;
        stats.0.report_steps.fetch_add(1, Ordering::SeqCst);
    }
    Json(json!({ "steps": steps }))
}

async fn show_stats(State(stats): State<Stats>) -> Json<Value> {
    Json(json!({
        "in_flight": stats.in_flight(),
        "peak_in_flight": stats.peak_in_flight(),
        "body_bytes_read": stats.body_bytes_read(),
        "report_steps": stats.report_steps(),
    }))
}

/// Counts every request that reaches a handler while it runs, and every
/// byte of request body the handlers read.
async fn count(State(stats): State<Stats>, request: Request, next: Next) -> Response {
    let _running = stats.start();
    let counting = stats.clone();
    let request = request.map(|body| {
        Body::from_stream(body.into_data_stream().inspect_ok(move |chunk| {
            counting
                .0
                .body_bytes_read
                .fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }))
    });
    next.run(request).await
}

/// What the server saw. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    body_bytes_read: AtomicU64,
    report_steps: AtomicU64,
    titles: Mutex<Vec<String>>,
}

impl Stats {
    /// Requests inside a handler right now.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests that were ever inside a handler at once.
    pub fn peak_in_flight(&self) -> usize {
        self.0.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Bytes of request bodies the handlers have read, all requests together.
    pub fn body_bytes_read(&self) -> u64 {
        self.0.body_bytes_read.load(Ordering::SeqCst)
    }

    /// Report steps done so far, all reports together.
    pub fn report_steps(&self) -> u64 {
        self.0.report_steps.load(Ordering::SeqCst)
    }

    /// Counts a request in until the guard is dropped, however it ends.
    fn start(&self) -> Running {
        let now = self.0.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        Running(self.clone())
    }
}

/// A request inside a handler (see [`Stats::start`]).
struct Running(Stats);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
