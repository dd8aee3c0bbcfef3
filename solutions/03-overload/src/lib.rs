//! Lab 03 · overload: refuse what you cannot serve.
//!
//! Every request a server takes on costs something: memory, a database
//! connection, a share of the CPU. Take on all of them in a rush and every
//! request gets slow, then the server falls over. A server that runs at most
//! N requests at once, and answers the rest *right away* with
//! `503 Service Unavailable` and `Retry-After: 1`, stays fast for the N it
//! serves and tells the others when to come back. It sheds load instead of
//! queueing it.
//!
//! This server already has a limit. Run the tests to see what it does.
//!
//! `main.rs` hands the app to axum as `axum::serve(listener, app)`, the way
//! most servers do; the tests serve it the same way.
//!
//! Routes:
//! - `GET /work?ms=1000`: a slow job (a report, a resize; here a sleep of `ms` ms).
//! - `GET /crash`: a job with a bug: it panics.
//! - `GET /jobs`: `{"running":…,"peak":…,"started":…}`, what the jobs saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder};

/// How many requests `cargo run -p overload` runs at once. Few, so that a
/// handful of curls is enough to see what happens to the next one.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 3;

// ANCHOR: app
/// The lab's app: the routes, running at most `max_in_flight` requests at
/// once. A request beyond that should get `503 Service Unavailable` with
/// `Retry-After: 1` at once, without waiting for a turn.
pub fn app(max_in_flight: usize, jobs: Jobs) -> Router {
    // One semaphore for the whole server: the layer holds an `Arc` to it, so
    // every copy of the layer (axum makes one per connection) shares it.
    let permits = Arc::new(Semaphore::new(max_in_flight));
    routes(jobs).layer(middleware::from_fn_with_state(permits, shed_load))
}
// ANCHOR_END: app

// ANCHOR: shed_load
/// Lets a request through if a permit is free, and refuses it at once if not.
///
/// The permit is a guard: it goes back to the semaphore when it is dropped,
/// at the end of this function, and that happens however the request ends:
/// with a response, with a panic (unwinding drops it), or with the client
/// hanging up (hyper drops this future, and the permit with it).
async fn shed_load(
    State(permits): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = permits.try_acquire_owned() else {
        return busy().into_response();
    };
    next.run(request).await
}

/// The answer to a request beyond the limit: come back in a second.
fn busy() -> impl IntoResponse {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "too many requests in flight; retry in 1 s\n",
    )
}
// ANCHOR_END: shed_load

// ANCHOR: tower_way
/// The other correct fix, built from tower's layers: have `app` return
/// `app_the_tower_way(max_in_flight, jobs)` and every test passes the same.
///
/// Read the layers from the bottom (innermost) up:
/// - `GlobalConcurrencyLimitLayer` keeps one semaphore that every copy of the
///   layer shares (`ConcurrencyLimitLayer` makes a new one for each copy);
/// - `LoadShedLayer` fails a request at once when no permit is free, where
///   the limit alone would make it wait for one;
/// - `HandleErrorLayer` turns that failure into the 503: axum wants a response
///   for every error. (`LoadShedLayer`'s `Overloaded` is the only error here.)
pub fn app_the_tower_way(max_in_flight: usize, jobs: Jobs) -> Router {
    routes(jobs).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|_: BoxError| async { busy() }))
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::new(max_in_flight)),
    )
}
// ANCHOR_END: tower_way

// ANCHOR: routes
/// What the server does, with no limit. `jobs` counts the jobs as they run;
/// the tests keep a clone of it to see how many ran at once.
pub fn routes(jobs: Jobs) -> Router {
    Router::new()
        .route("/work", get(work))
        .route("/crash", get(crash))
        .route("/jobs", get(job_counts))
        .layer(Extension(jobs))
}
// ANCHOR_END: routes

/// The query string of `/work`, e.g. `?ms=500`.
#[derive(Debug, Deserialize)]
struct Work {
    ms: Option<u64>,
}

/// How long a job takes when `/work` does not say.
const DEFAULT_JOB: Duration = Duration::from_secs(1);

/// How long `/crash` works before it panics.
const CRASH_AFTER: Duration = Duration::from_millis(10);

/// A slow job: holds its slot for `ms` milliseconds, then answers.
async fn work(Extension(jobs): Extension<Jobs>, Query(work): Query<Work>) -> String {
    let _job = jobs.start();
    let duration = work.ms.map_or(DEFAULT_JOB, Duration::from_millis);
    tokio::time::sleep(duration).await;
    format!("done after {} ms\n", duration.as_millis())
}

/// A job with a bug. Nothing turns its panic into a response here, so the
/// panic ends the connection's task and the client sees the connection close.
async fn crash(Extension(jobs): Extension<Jobs>) -> &'static str {
    let _job = jobs.start();
    tokio::time::sleep(CRASH_AFTER).await;
    panic!("GET /crash: the job crashed (on purpose: its slot must come back anyway)")
}

async fn job_counts(Extension(jobs): Extension<Jobs>) -> Json<Value> {
    Json(json!({ "running": jobs.running(), "peak": jobs.peak(), "started": jobs.started() }))
}

/// What the jobs saw: how many run now, the most that ever ran at once, and
/// how many started. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Jobs(Arc<JobCounts>);

#[derive(Debug, Default)]
struct JobCounts {
    running: AtomicUsize,
    peak: AtomicUsize,
    started: AtomicUsize,
}

impl Jobs {
    /// Jobs running right now.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::SeqCst)
    }

    /// The most jobs that ever ran at the same time.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::SeqCst)
    }

    /// Jobs started so far, finished or not.
    pub fn started(&self) -> usize {
        self.0.started.load(Ordering::SeqCst)
    }

    /// Counts a job in. It counts as running until the guard is dropped: when
    /// the handler returns, when it panics, or when hyper drops it because the
    /// client left. No way out of a handler skips a `Drop`.
    fn start(&self) -> RunningJob {
        self.0.started.fetch_add(1, Ordering::SeqCst);
        let running = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak.fetch_max(running, Ordering::SeqCst);
        tracing::info!(running, "job started");
        RunningJob(self.clone())
    }
}

/// A job in progress (see [`Jobs::start`]).
struct RunningJob(Jobs);

impl Drop for RunningJob {
    fn drop(&mut self) {
        let running = self.0.0.running.fetch_sub(1, Ordering::SeqCst) - 1;
        tracing::info!(running, "job ended");
    }
}
