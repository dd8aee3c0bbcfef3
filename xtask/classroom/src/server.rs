//! The room's HTTP server, built with the course's own lessons:
//!
//! - a body limit (413) and a timeout on every request but the dashboard's
//!   event stream (408);
//! - a token per learner, issued at join: only that token writes that
//!   learner's row (403 otherwise), compared in constant time;
//! - a rate limit per learner and one on joins (429);
//! - a bound on learners: past it, a join is answered 503;
//! - SQLite writes on the blocking pool, never on the runtime's workers;
//! - a graceful shutdown that ends the dashboards' streams first.
//!
//! The API (see [`crate::wire`] for the bodies):
//!
//! | request | answer |
//! |---|---|
//! | `POST /api/join` `{code, name}` | 201 `{learner, token}` |
//! | `PUT /api/learners/<id>` + `Authorization: Bearer <token>`, `{labs}` | 204 |
//! | `DELETE /api/learners/<id>` + the same header | 204 |
//! | `GET /?key=<key>` | the dashboard |
//! | `GET /api/room?key=<key>` | the dashboard's data, JSON ([`crate::room::View`]) |
//! | `GET /api/events?key=<key>` | the same, as server-sent events, on every change |
//!
//! Every refusal is a 4xx with `{"error": "..."}` saying why, and stores
//! nothing.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::timeout::TimeoutLayer;

use crate::room::{self, Learner};
use crate::store::{Keys, Store};
use crate::wire::{self, JoinRequest, Joined, Update};

/// How the room is run. [`Config::new`] gives the defaults of
/// `cargo xtask classroom`; tests change what they need.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// The SQLite file.
    pub db: PathBuf,
    /// Start an empty room with a new code, even if `db` holds one.
    pub fresh: bool,
    /// Past this many learners, a join is answered 503.
    pub max_learners: usize,
    /// On one failing test for longer than this: highlighted.
    pub stuck_after: Duration,
    /// Each learner's sustained rate of updates, and its burst.
    pub updates_per_second: NonZeroU32,
    pub update_burst: NonZeroU32,
    /// Joins, for the whole room (a wrong code costs one).
    pub joins_per_second: NonZeroU32,
    /// The largest request body, in bytes.
    pub body_limit: usize,
    /// How long a request may take.
    pub request_timeout: Duration,
}

impl Config {
    pub fn new(bind: SocketAddr, db: PathBuf) -> Config {
        Config {
            bind,
            db,
            fresh: false,
            max_learners: 200,
            stuck_after: Duration::from_secs(10 * 60),
            // A learner's tool sends when a state changes: a check takes
            // seconds, so even `watch` sends far less than this.
            updates_per_second: NonZeroU32::new(2).unwrap(),
            update_burst: NonZeroU32::new(10).unwrap(),
            joins_per_second: NonZeroU32::new(20).unwrap(),
            body_limit: 16 * 1024,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// How often, at most, a dashboard gets a new view (changes in between are
/// sent together): well within the second the page promises.
const EVENT_GAP: Duration = Duration::from_millis(200);
/// A dashboard gets a view this often anyway: "stuck for 11 minutes" grows
/// with the clock, not with updates.
const REFRESH: Duration = Duration::from_secs(10);

/// A running room.
pub struct Classroom {
    addr: SocketAddr,
    keys: Keys,
    learners: usize,
    stop: watch::Sender<bool>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Classroom {
    /// Opens the room file, listens on `config.bind` and serves until
    /// [`Classroom::stop`].
    pub async fn open(config: Config) -> Result<Classroom> {
        let db = config.db.clone();
        let fresh = config.fresh;
        let (store, keys, learners) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut store = Store::open(&db)?;
            let keys = store.keys(fresh, || Keys { code: join_code(), key: random_hex(16) })?;
            let learners = store.learners()?;
            Ok((store, keys, learners))
        })
        .await??;
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("listening on {}", config.bind))?;
        let addr = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let count = learners.len();
        let shared = Arc::new(Shared {
            keys: keys.clone(),
            room: Mutex::new(Inner {
                learners: learners.into_iter().map(|l| (l.id, l)).collect(),
                store,
            }),
            changed: watch::Sender::new(0),
            stopping: stopping.clone(),
            update_limit: RateLimiter::keyed(
                Quota::per_second(config.updates_per_second).allow_burst(config.update_burst),
            ),
            join_limit: RateLimiter::direct(Quota::per_second(config.joins_per_second)),
            config,
        });
        let app = router(shared);
        let mut stopping = stopping;
        let served = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Classroom { addr, keys, learners: count, stop, served })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The code learners type.
    pub fn code(&self) -> &str {
        &self.keys.code
    }

    /// How many learners the room held when it opened.
    pub fn learners_at_start(&self) -> usize {
        self.learners
    }

    /// The URL learners join (`cargo xtask join <this>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The dashboard's URL, with the instructor's key.
    pub fn dashboard_url(&self) -> String {
        format!("http://{}/?key={}", self.addr, self.keys.key)
    }

    /// Stops: the dashboards' streams end, requests in flight finish (for
    /// at most `grace`), and the room file is closed.
    pub async fn stop(self, grace: Duration) -> Result<()> {
        self.stop.send_replace(true);
        match tokio::time::timeout(grace, self.served).await {
            Ok(served) => served?.context("serving the room"),
            Err(_) => Ok(()),
        }
    }
}

/// What every handler shares.
struct Shared {
    keys: Keys,
    config: Config,
    room: Mutex<Inner>,
    /// Bumped on every change; each dashboard stream follows it.
    changed: watch::Sender<u64>,
    stopping: watch::Receiver<bool>,
    update_limit: DefaultKeyedRateLimiter<i64>,
    join_limit: DefaultDirectRateLimiter,
}

/// The room in memory and on disk, changed together under one lock.
struct Inner {
    learners: BTreeMap<i64, Learner>,
    store: Store,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.room.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_instructor(&self, query: &KeyQuery) -> bool {
        query.key.as_deref().is_some_and(|key| same(key, &self.keys.key))
    }

    fn view_json(&self) -> String {
        let inner = self.lock();
        let view = room::view(inner.learners.values(), now_ms(), self.config.stuck_after);
        serde_json::to_string(&view).expect("the view is plain data")
    }

    fn announce(&self) {
        self.changed.send_modify(|version| *version += 1);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let timeout = shared.config.request_timeout;
    let limit = shared.config.body_limit;
    let requests = Router::new()
        .route("/", get(dashboard))
        .route("/dashboard.js", get(|| static_file("text/javascript", DASHBOARD_JS)))
        .route("/dashboard.css", get(|| static_file("text/css", DASHBOARD_CSS)))
        .route("/api/join", post(join))
        .route("/api/learners/{id}", put(update).delete(leave))
        .route("/api/room", get(room_json))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(DefaultBodyLimit::max(limit));
    // The event stream stays open as long as the page: no timeout.
    Router::new().route("/api/events", get(events)).merge(requests).with_state(shared)
}

const DASHBOARD_HTML: &str = include_str!("dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("dashboard/dashboard.css");
/// The page runs only its own script: even a name that slipped markup past
/// [`wire::check_name`] could not run anything.
const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'";

async fn static_file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A refusal: the status and why, as `{"error": "..."}`.
fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    Refusal(status, why.into()).into_response()
}

/// A refusal not yet turned into a response.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// A body that is not what the endpoint takes, said plainly.
fn refuse_body(rejection: &JsonRejection, limit: usize) -> Response {
    let status = rejection.status();
    let why = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("the body is larger than {limit} bytes"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send JSON, with Content-Type: application/json".into()
        }
        _ => format!("the body is not what this endpoint takes: {}", rejection.body_text()),
    };
    refuse(status, why)
}

#[derive(Debug, Deserialize)]
struct KeyQuery {
    key: Option<String>,
}

fn no_key() -> Response {
    refuse(
        StatusCode::UNAUTHORIZED,
        "this is the instructor's dashboard: open the link `cargo xtask classroom` printed, \
         with its key",
    )
}

/// `GET /?key=…`: the dashboard page.
async fn dashboard(State(shared): State<Arc<Shared>>, Query(query): Query<KeyQuery>) -> Response {
    if !shared.is_instructor(&query) {
        return no_key();
    }
    ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(DASHBOARD_HTML)).into_response()
}

/// `GET /api/room?key=…`: what the dashboard shows, once.
async fn room_json(State(shared): State<Arc<Shared>>, Query(query): Query<KeyQuery>) -> Response {
    if !shared.is_instructor(&query) {
        return no_key();
    }
    ([(header::CONTENT_TYPE, "application/json")], shared.view_json()).into_response()
}

/// `GET /api/events?key=…`: the view now, then after every change (at most
/// one every [`EVENT_GAP`]), until the page goes or the server stops.
async fn events(State(shared): State<Arc<Shared>>, Query(query): Query<KeyQuery>) -> Response {
    if !shared.is_instructor(&query) {
        return no_key();
    }
    let mut changed = shared.changed.subscribe();
    let mut stopping = shared.stopping.clone();
    let stream = async_stream::stream! {
        let mut first = true;
        loop {
            changed.borrow_and_update();
            let mut event = Event::default().event("room").data(shared.view_json());
            if std::mem::take(&mut first) {
                event = event.retry(Duration::from_secs(1));
            }
            yield Ok::<_, Infallible>(event);
            tokio::select! {
                () = tokio::time::sleep(EVENT_GAP) => {}
                _ = stopping.wait_for(|stop| *stop) => break,
            }
            tokio::select! {
                changed = changed.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(REFRESH) => {}
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// `POST /api/join`: a new learner, with their token.
async fn join(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Response {
    if shared.join_limit.check().is_err() {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "too many joins at once; try again");
    }
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => return refuse_body(&rejection, shared.config.body_limit),
    };
    if !same(&normalise_code(&request.code), &normalise_code(&shared.keys.code)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "wrong join code: type the code shown on the instructor's screen",
        );
    }
    let name = match wire::check_name(&request.name) {
        Ok(name) => name.to_owned(),
        Err(why) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    let token = random_hex(16);
    let seat = token.clone();
    let joined = change(&shared, move |shared, inner| {
        if inner.learners.len() >= shared.config.max_learners {
            return Ok(None);
        }
        let now = now_ms();
        let id = inner.store.add_learner(&name, &seat, now)?;
        let labs = BTreeMap::new();
        let learner =
            Learner { id, name, token: seat, joined: now, updated: now, updates: 0, labs };
        inner.learners.insert(id, learner);
        Ok(Some(id))
    });
    match joined.await {
        Ok(Some(learner)) => (StatusCode::CREATED, Json(Joined { learner, token })).into_response(),
        Ok(None) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the room is full ({} learners)", shared.config.max_learners),
        ),
        Err(refusal) => refusal,
    }
}

/// `PUT /api/learners/<id>`: the learner's labs, now.
async fn update(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Json<Update>, JsonRejection>,
) -> Response {
    if let Err(refusal) = authorise(&shared, id, &headers) {
        return refusal.into_response();
    }
    if shared.update_limit.check_key(&id).is_err() {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "too many updates; slow down");
    }
    let Json(update) = match body {
        Ok(body) => body,
        Err(rejection) => return refuse_body(&rejection, shared.config.body_limit),
    };
    if let Err(why) = update.check() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    let stored = change(&shared, move |_, inner| {
        let now = now_ms();
        let Some(learner) = inner.learners.get(&id) else {
            return Ok(None); // left meanwhile
        };
        let labs = learner.apply(&update, now);
        inner.store.save_labs(id, &labs, now)?;
        let learner = inner.learners.get_mut(&id).expect("looked up above");
        learner.labs = labs;
        learner.updated = now;
        learner.updates += 1;
        Ok(Some(()))
    });
    match stored.await {
        Ok(Some(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => not_in_room(id).into_response(),
        Err(refusal) => refusal,
    }
}

/// `DELETE /api/learners/<id>`: the learner leaves the room.
async fn leave(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = authorise(&shared, id, &headers) {
        return refusal.into_response();
    }
    let removed = change(&shared, move |_, inner| {
        inner.store.remove_learner(id)?;
        inner.learners.remove(&id);
        Ok(Some(()))
    });
    match removed.await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => refusal,
    }
}

/// Runs `change` on the room under its lock, on the blocking pool (SQLite
/// writes never hold a runtime's worker). What it returns as `Some` is a
/// change the dashboards hear of; an error stored nothing, and says so.
async fn change<T: Send + 'static>(
    shared: &Arc<Shared>,
    change: impl FnOnce(&Shared, &mut Inner) -> Result<Option<T>> + Send + 'static,
) -> Result<Option<T>, Response> {
    let room = shared.clone();
    match tokio::task::spawn_blocking(move || change(&room, &mut room.lock())).await {
        Ok(Ok(done)) => {
            if done.is_some() {
                shared.announce();
            }
            Ok(done)
        }
        Ok(Err(error)) => Err(stored_nothing(&error)),
        Err(error) => Err(stored_nothing(&error)),
    }
}

/// Whether the request carries learner `id`'s own token.
fn authorise(shared: &Shared, id: i64, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| {
            Refusal(
                StatusCode::UNAUTHORIZED,
                "no token: send `Authorization: Bearer <the token your join returned>`".into(),
            )
        })?;
    let inner = shared.lock();
    let learner = inner.learners.get(&id).ok_or_else(|| not_in_room(id))?;
    if same(token, &learner.token) {
        Ok(())
    } else {
        Err(Refusal(StatusCode::FORBIDDEN, format!("that token is not learner {id}'s")))
    }
}

fn not_in_room(id: i64) -> Refusal {
    Refusal(
        StatusCode::NOT_FOUND,
        format!("learner {id} is not in this room (was it started afresh?): join again"),
    )
}

fn stored_nothing(error: &dyn std::fmt::Display) -> Response {
    eprintln!("classroom: {error}");
    refuse(StatusCode::INTERNAL_SERVER_ERROR, "the room could not store that; nothing was stored")
}

/// Compares two secrets in constant time.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// `k7q 42p`, `K7Q-42P` and `k7q42p` are the same code.
fn normalise_code(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system's random numbers");
    bytes
}

fn random_hex(bytes: usize) -> String {
    random_bytes::<32>()[..bytes].iter().map(|b| format!("{b:02x}")).collect()
}

/// Six characters without look-alikes (no 0/O, no 1/I), as `K7Q-42P`: 32
/// symbols, so `byte % 32` is unbiased.
fn join_code() -> String {
    const SYMBOLS: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let symbols: String =
        random_bytes::<6>().iter().map(|b| SYMBOLS[usize::from(b % 32)] as char).collect();
    format!("{}-{}", &symbols[..3], &symbols[3..])
}
