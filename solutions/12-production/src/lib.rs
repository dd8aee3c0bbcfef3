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
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
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
/// The lab's app: the routes, behind the guards that keep hostile clients
/// from taking the server down.
///
/// `Router::layer` wraps everything added before it, so the layer added
/// *last* is the outermost: a request meets them from the bottom up.
pub fn app(config: &Config, stats: Stats) -> Router {
    let per_ip = PerIpLimit::new(config, &stats);
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
        .layer(middleware::from_fn_with_state(per_ip, limit_per_ip))
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
/// One rate limiter for the whole server, keyed by the client's network
/// (see [`limit_key`]): the socket's peer, or the address a trusted proxy
/// saw, never a header anyone else can write.
#[derive(Clone)]
struct PerIpLimit {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    trusted_proxies: Arc<[IpAddr]>,
    /// How often to forget the clients that went quiet: the time a whole
    /// burst takes to refill.
    forget_every: Duration,
    /// When they were last forgotten.
    forgot_at: Arc<Mutex<Instant>>,
}

impl PerIpLimit {
    /// The limiter, with its count of clients reported on `/stats`.
    fn new(config: &Config, stats: &Stats) -> Self {
        let per_minute = NonZeroU32::new(config.per_ip_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.per_ip_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let limiter = Arc::new(RateLimiter::keyed(quota));
        let counted = Arc::downgrade(&limiter);
        stats.count_clients_with(move || counted.upgrade().map_or(0, |limiter| limiter.len()));
        PerIpLimit {
            limiter,
            trusted_proxies: config.trusted_proxies.clone().into(),
            forget_every: quota.burst_size_replenished_in(),
            forgot_at: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// A keyed limiter keeps a bucket for every key it has ever seen: a
    /// client that changes address grows its map for ever. A bucket that is
    /// full again is the same as one never made, so once per `forget_every`
    /// the request that notices drops those. (A task spawned with the
    /// limiter, on an interval, does the same.)
    fn forget_quiet_clients(&self) {
        let mut forgot_at = match self.forgot_at.try_lock() {
            Ok(forgot_at) => forgot_at,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another request is already at it: nothing to wait for.
            Err(TryLockError::WouldBlock) => return,
        };
        if forgot_at.elapsed() >= self.forget_every {
            *forgot_at = Instant::now();
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// What a client is limited by: its IPv4 address, or the /64 network of its
/// IPv6 address. One subscriber is usually given a whole /64 and may use
/// any of its 2^64 addresses: keyed by the full address, it would get a
/// fresh quota with each.
fn limit_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & (u128::MAX << 64))),
        },
    }
}

/// 429 with `Retry-After` for a client that has used up its quota.
async fn limit_per_ip(
    State(limit): State<PerIpLimit>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    limit.forget_quiet_clients();
    let client = client_ip(peer.ip(), request.headers(), &limit.trusted_proxies);
    match limit.limiter.check_key(&limit_key(client)) {
        Ok(()) => next.run(request).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Whole seconds, rounded up: rounded down, a client that waits
            // as long as it is told comes back too early, and is refused again.
            let retry_after = wait.as_nanos().div_ceil(1_000_000_000).max(1).to_string();
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
