//! Lab 01 · blocking: code that stalls the runtime.
//!
//! tokio runs many requests on a few threads by switching between them at
//! every `.await`. A handler that blocks its thread (a `std::thread::sleep`,
//! a long computation) never reaches an `.await`, so nothing else runs on that
//! thread until it is done: every other request waits, even `/health`.
//!
//! This server runs on a single-thread runtime (see `main.rs`), where one
//! blocked handler stalls everything; on a multi-thread runtime the same bug
//! needs one blocked handler per worker thread, which real traffic supplies.
//!
//! Routes:
//! - `GET /slow?ms=100`: waits for a (simulated) slow service, then answers.
//! - `GET /crunch?ms=500`: CPU-heavy work (think password hashing), then its checksum.
//! - `GET /health`: `{"status":"ok","tasks":…,"in_flight":…}`, for load balancers and you.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The lab's app: the tests start it on a free port, `cargo run -p blocking` on port 8080.
pub fn app() -> Router {
    let stats = Arc::new(Stats::default());
    Router::new()
        .route("/slow", get(slow))
        .route("/crunch", get(crunch))
        .route("/health", get(health))
        .layer(middleware::from_fn_with_state(
            stats.clone(),
            count_in_flight,
        ))
        .with_state(stats)
}

/// How long a request should take, e.g. `?ms=100`.
#[derive(Debug, Deserialize)]
struct Millis {
    ms: u64,
}

// ANCHOR: slow
/// Stands in for a call to a slow service (a database, another API).
async fn slow(Query(wait): Query<Millis>) -> String {
    std::thread::sleep(Duration::from_millis(wait.ms));
    format!("waited {} ms\n", wait.ms)
}
// ANCHOR_END: slow

// ANCHOR: crunch
/// CPU-heavy work, e.g. hashing a password or resizing an image.
async fn crunch(Query(work): Query<Millis>) -> String {
    let checksum = checksum_for(Duration::from_millis(work.ms));
    format!("checksum {checksum:016x}\n")
}
// ANCHOR_END: crunch

/// Burns CPU for `how_long` and returns a checksum of the work done. It
/// never awaits: like all CPU-bound code, it keeps its thread until done.
pub fn checksum_for(how_long: Duration) -> u64 {
    let started = Instant::now();
    let mut checksum: u64 = 0xcbf2_9ce4_8422_2325;
    while started.elapsed() < how_long {
        for byte in 0..=255u8 {
            checksum = (checksum ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
    checksum
}

// ANCHOR: health
/// Requests being handled right now.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicUsize,
}

/// What `/health` reports.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    /// Tasks alive on the runtime (one per open connection, plus any spawned work).
    tasks: usize,
    /// Requests being handled, this one included.
    in_flight: usize,
}

async fn health(State(stats): State<Arc<Stats>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
        in_flight: stats.in_flight.load(Ordering::SeqCst),
    })
}

/// Middleware: counts every request in while it is being handled.
async fn count_in_flight(
    State(stats): State<Arc<Stats>>,
    request: Request,
    next: Next,
) -> Response {
    let _in_flight = InFlight::enter(&stats);
    next.run(request).await
}

/// One request in flight; leaving (however the request ends) counts it out.
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn enter(stats: &'a Stats) -> Self {
        stats.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
// ANCHOR_END: health
