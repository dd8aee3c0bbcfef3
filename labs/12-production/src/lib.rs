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

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
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
    /// ...and how many a minute after that. An address that has not asked
    /// for as long as its whole burst takes to come back is as good as new.
    pub per_ip_per_minute: u32,
    /// Proxies (a load balancer, say) whose `X-Forwarded-For` is believed:
    /// behind one, the client is the address the proxy saw (see [`client_ip`]).
    pub trusted_proxies: Vec<IpAddr>,
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
            trusted_proxies: Vec::new(),
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}
// ANCHOR_END: config

// ANCHOR: app
/// The lab's app: the routes, logged, each request with an id.
///
/// `Router::layer` wraps everything added before it, so the layer added
/// *last* is the outermost: a request meets them from the bottom up.
pub fn app(_config: &Config, stats: Stats) -> Router {
    routes(stats)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
// ANCHOR_END: app

// ANCHOR: serve
/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    _config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // With the peer's address in each request's extensions (`ConnectInfo`).
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
// ANCHOR_END: serve

// ANCHOR: signal
/// Completes on Ctrl-C.
pub async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
// ANCHOR_END: signal

// ANCHOR: client_ip
/// The IP address of the client behind a request (lab 04's).
///
/// That is the peer of the connection, unless the peer is a proxy we trust:
/// then it is the address that proxy saw, the last entry of
/// `X-Forwarded-For` (each proxy *appends* the address it saw). Walking
/// from the right, each entry is believed only while the hop that wrote it
/// is trusted, because anything further left came from the client, who can
/// write whatever it likes.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    let mut client = peer;
    for hop in forwarded.into_iter().rev() {
        if !trusted_proxies.contains(&client) {
            break;
        }
        client = hop;
    }
    client
}
// ANCHOR_END: client_ip

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
/// The steps keep to a schedule (an interval, not a sleep after each step),
/// so a report takes the time it was asked for, however late a step wakes.
async fn report(State(stats): State<Stats>, Json(asked): Json<ReportRequest>) -> Json<Value> {
    let steps = asked.ms / REPORT_STEP.as_millis() as u64;
    let mut schedule = tokio::time::interval(REPORT_STEP);
    // The first tick is at once: the first step ends one step from now.
    schedule.tick().await;
    for _ in 0..steps {
        schedule.tick().await;
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
        "clients_tracked": stats.clients_tracked(),
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
    clients_tracked: ClientCount,
}

/// Where `/stats` asks how many clients a rate limiter tracks.
#[derive(Default)]
struct ClientCount(OnceLock<Box<dyn Fn() -> usize + Send + Sync>>);

impl fmt::Debug for ClientCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientCount")
            .field(&self.0.get().map(|count| count()))
            .finish()
    }
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

    /// How many clients (keys) the per-address rate limiter remembers right
    /// now, if one was registered with [`Stats::count_clients_with`].
    pub fn clients_tracked(&self) -> Option<usize> {
        self.0.clients_tracked.0.get().map(|count| count())
    }

    /// Registers how to count the clients a rate limiter remembers (its
    /// `len()`, say); `/stats` reports it as `clients_tracked`. The first
    /// one registered is the one asked.
    pub fn count_clients_with(&self, count: impl Fn() -> usize + Send + Sync + 'static) {
        let _ = self.0.clients_tracked.0.set(Box::new(count));
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
