//! Lab 04 · middleware: logging, auth and a per-client rate limit, as layers.
//!
//! A small orders API. Some of it is public, some needs a bearer token, and
//! all of it is rate limited per client: `cargo run -p middleware` allows 100
//! requests a minute from each IP address. None of that lives in the
//! handlers: each concern is a layer around them, and a request passes the
//! layers from the outside in, the response from the inside out.
//!
//! ```text
//! SetRequestId → Trace → PropagateRequestId → limit_rate → require_token → handler
//! ```
//!
//! Run the tests to see which layers do what they say.
//!
//! Routes:
//! - `GET /`, `GET /health`: public.
//! - `GET /api/orders` (JSON), `GET /api/export` (CSV): need
//!   `Authorization: Bearer <token>`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnRequest, DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

/// The header that carries a request's id, in the request and in its answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the server is told at start: who may in, and how often.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bearer token that opens `/api/*`.
    pub token: String,
    /// How many requests each client may send.
    pub rate: Rate,
    /// Proxies (a load balancer, say) whose `X-Forwarded-For` header is
    /// believed. Empty: every client is the peer of its connection.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Config {
    /// The configuration of `cargo run -p middleware`: 100 requests a minute
    /// per client, the token from `API_TOKEN` (or `let-me-in`), and the
    /// trusted proxies from `TRUSTED_PROXIES` (IPs separated by commas).
    pub fn from_env() -> Config {
        let token = std::env::var("API_TOKEN").unwrap_or_else(|_| "let-me-in".to_owned());
        let trusted_proxies = std::env::var("TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .filter_map(|ip| ip.trim().parse().ok())
            .collect();
        Config {
            token,
            rate: Rate::per_minute(100),
            trusted_proxies,
        }
    }
}

/// A rate limit: `requests` per `per`, for each client. A client that has
/// been quiet may send all `requests` at once; after that it gets one more
/// every `per / requests` (a token bucket of `requests` tokens).
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub requests: u32,
    pub per: Duration,
}

impl Rate {
    /// `requests` a minute, e.g. `Rate::per_minute(100)`.
    pub const fn per_minute(requests: u32) -> Rate {
        Rate {
            requests,
            per: Duration::from_secs(60),
        }
    }

    /// The same limit as governor writes it. Panics if `requests` is 0 or
    /// `per` is shorter than `requests` nanoseconds.
    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.requests).expect("a rate of at least 1 request");
        Quota::with_period(self.per / self.requests)
            .expect("a period longer than a nanosecond per request")
            .allow_burst(burst)
    }
}

/// What every layer and handler can reach: the configuration and the rate
/// limiter's counts. Cloned for every request (axum does that with state),
/// so everything in it that must be shared sits behind an `Arc`.
#[derive(Clone)]
struct AppState {
    config: Arc<Config>,
    // ANCHOR: limiter_state
    /// One limiter for the whole server, with a bucket per client IP.
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    // ANCHOR_END: limiter_state
}

// ANCHOR: app
/// The lab's app: public and protected routes, each request logged with an
/// id, rate limited per client, and `/api/*` behind a bearer token.
pub fn app(config: Config) -> Router {
    let limiter = Arc::new(RateLimiter::keyed(config.rate.quota()));
    let state = AppState {
        config: Arc::new(config),
        limiter,
    };
    let routes = Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .merge(api(state.clone()))
        // `Router::layer`: the layer added last is the outermost. So the
        // rate limit sees every request before auth does (a client guessing
        // tokens is limited too), and the logging, added last, sees every
        // request and every answer, refusals included.
        .layer(middleware::from_fn_with_state(state.clone(), limit_rate));
    with_request_ids_and_logging(routes, state.config.clone()).with_state(state)
}
// ANCHOR_END: app

// ANCHOR: api
/// The protected part of the API. A `route_layer` wraps the routes added
/// *before* it, and only those.
fn api(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/api/orders", get(list_orders))
        .route("/api/export", get(export_orders))
        .route_layer(middleware::from_fn_with_state(state, require_token))
}
// ANCHOR_END: api

// ANCHOR: logging
/// Gives each request an id and logs it in a span that carries that id.
///
/// With `ServiceBuilder` the layer added first is the outermost:
/// - `SetRequestIdLayer` keeps the request's own `x-request-id`, or sets a
///   new UUID, before anything else runs;
/// - `TraceLayer` opens a span per request; every line logged while the
///   request runs, by any layer or handler inside it, carries the span's
///   fields, the id among them. It logs the request and its answer, whatever
///   the answer is: nothing outside it can refuse a request unseen.
/// - `PropagateRequestIdLayer` copies the id into the response, refusals
///   included, so a client can quote it in a bug report.
fn with_request_ids_and_logging<S>(routes: Router<S>, config: Arc<Config>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(move |request: &Request| request_span(request, &config))
                    .on_request(DefaultOnRequest::new().level(Level::INFO))
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
    )
}

/// The span of one request: its id, its client and what it asked for.
fn request_span(request: &Request, config: &Config) -> Span {
    let id = header_text(request.headers(), &REQUEST_ID).unwrap_or("-");
    let client = match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => {
            client_ip(peer.ip(), request.headers(), &config.trusted_proxies).to_string()
        }
        None => "-".to_owned(),
    };
    tracing::info_span!(
        "request",
        %id,
        %client,
        method = %request.method(),
        path = %request.uri().path(),
    )
}
// ANCHOR_END: logging

// ANCHOR: limit_rate
/// Lets a request through if its client has a request left in its quota,
/// and answers `429 Too Many Requests` with `Retry-After` if not.
async fn limit_rate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let client = client_ip(peer.ip(), request.headers(), &state.config.trusted_proxies);
    match state.limiter.check_key(&client) {
        Ok(()) => next.run(request).await,
        Err(not_until) => too_many_requests(not_until.wait_time_from(state.limiter.clock().now())),
    }
}
// ANCHOR_END: limit_rate

// ANCHOR: too_many_requests
/// The answer to a client over its quota: when to come back, in whole
/// seconds, rounded *up*: rounded down, a client told `Retry-After: 0` (or
/// 11 for 11.4 s) comes back too early and is refused again.
fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_nanos().div_ceil(1_000_000_000).max(1);
    tracing::info!(retry_after = %seconds, "refused: over the rate limit");
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
        format!("too many requests; retry in {seconds} s\n"),
    )
        .into_response()
}
// ANCHOR_END: too_many_requests

// ANCHOR: client_ip
/// The IP address of the client behind a request.
///
/// That is the peer of the connection, unless the peer is a proxy we trust:
/// then it is the address that proxy saw, the last entry of
/// `X-Forwarded-For` (each proxy *appends* the address it saw). Walking
/// from the right, each entry is believed only while the hop that wrote it
/// is trusted, because anything further left came from the client, who can
/// write whatever it likes.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let mut client = peer;
    for hop in forwarded_for(headers).rev() {
        if !trusted_proxies.contains(&client) {
            break;
        }
        client = hop;
    }
    client
}
// ANCHOR_END: client_ip

/// The addresses in every `X-Forwarded-For` header, in order, skipping any
/// that do not parse.
fn forwarded_for(headers: &HeaderMap) -> impl DoubleEndedIterator<Item = IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect::<Vec<_>>()
        .into_iter()
}

// ANCHOR: require_token
/// Lets a request through if it carries the right bearer token, and answers
/// `401 Unauthorized` with a `WWW-Authenticate` challenge if not.
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = header_text(request.headers(), &header::AUTHORIZATION)
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(token) if tokens_match(token, &state.config.token) => next.run(request).await,
        _ => {
            tracing::info!("refused: no valid token");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, r#"Bearer realm="orders""#)],
                "a valid bearer token is required\n",
            )
                .into_response()
        }
    }
}

/// Compares in constant time. `==` returns at the first byte that differs,
/// so how long a wrong guess takes tells an attacker how much of it was
/// right; `ct_eq` looks at every byte whatever it finds. (It does return at
/// once for a guess of the wrong length: the length is not the secret.)
fn tokens_match(presented: &str, expected: &str) -> bool {
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}
// ANCHOR_END: require_token

/// A header's value, if present and text.
fn header_text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn index() -> &'static str {
    "orders API: GET /api/orders (JSON) and GET /api/export (CSV) need \
     `Authorization: Bearer <token>`\n"
}

async fn health() -> &'static str {
    "ok\n"
}

/// The orders of this little shop: always the same three.
const ORDERS: [(u32, &str, u32); 3] =
    [(1, "coffee beans", 2), (2, "grinder", 1), (3, "filters", 5)];

async fn list_orders() -> Json<Value> {
    tracing::info!("listing {} orders", ORDERS.len());
    let orders: Vec<Value> = ORDERS
        .iter()
        .map(|(id, item, quantity)| json!({ "id": id, "item": item, "quantity": quantity }))
        .collect();
    Json(json!({ "orders": orders }))
}

async fn export_orders() -> Response {
    tracing::info!("exporting {} orders", ORDERS.len());
    let mut csv = String::from("id,item,quantity\n");
    for (id, item, quantity) in ORDERS {
        csv.push_str(&format!("{id},{item},{quantity}\n"));
    }
    ([(header::CONTENT_TYPE, "text/csv")], Body::from(csv)).into_response()
}
