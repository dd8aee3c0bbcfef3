//! Lab 05 · cancellation: when the client leaves, or the time is up, the work
//! must stop.
//!
//! A server with two slow routes, a per-request timeout and a gauge:
//!
//! - `GET /report?steps=N` builds a report of three sections in parallel, each
//!   `N` slow queries long (one step: 10 ms).
//! - `GET /render?steps=N` renders an image of `N` tiles: CPU-bound work, so
//!   it runs in a loop on a blocking thread (one tile: 10 ms).
//! - Every request has a time budget; past it the server answers 503.
//! - `GET /stats` shows what the server is doing: the steps done so far and
//!   the requests in flight.
//!
//! `N` is 100 unless given (1 s of work), at most 1000.
//!
//! A handler is a future. When its client hangs up, hyper drops that future,
//! and when the timeout fires, the timeout layer drops it: in Rust, dropping a
//! future *is* cancelling it. That stops everything the future owns, at its
//! next `.await`. It does not stop work that lives elsewhere (a spawned task,
//! a blocking thread), and it skips every line after that `.await`. The lab:
//! no work may go on once nobody waits for it, and no count may stay up.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::timeout::TimeoutLayer;

/// The time budget of a request in `cargo run -p cancellation`.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// How long one step of work takes: a report query or a rendered tile.
pub const STEP: Duration = Duration::from_millis(10);

/// The lab's app: `observed` is where it reports what it is doing, `timeout`
/// the time budget of every request.
pub fn app(observed: Arc<Observations>, timeout: Duration) -> Router {
    Router::new()
        .route("/report", get(report))
        .route("/render", get(render))
        // ANCHOR: timeout
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        // ANCHOR_END: timeout
        .layer(middleware::from_fn_with_state(
            observed.clone(),
            track_in_flight,
        ))
        // Added after the layers: `/stats` is neither counted nor timed out.
        .route("/stats", get(stats))
        .with_state(observed)
}

/// What the server is doing. `/stats` shows it; the tests watch it to see
/// whether work stops, rather than reading your code.
#[derive(Debug, Default)]
pub struct Observations {
    /// Report steps done so far, by every report.
    pub report_steps: AtomicU64,
    /// Tiles rendered so far, by every render.
    pub render_steps: AtomicU64,
    /// Requests to `/report` and `/render` being handled right now. Signed, so
    /// that one decrement too many shows as -1 instead of a huge number.
    pub in_flight: AtomicI64,
}

/// The counters of [`Observations`] at one moment, as `/stats` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub report_steps: u64,
    pub render_steps: u64,
    pub in_flight: i64,
}

impl Observations {
    /// Reads every counter.
    pub fn snapshot(&self) -> Stats {
        Stats {
            report_steps: self.report_steps.load(Ordering::SeqCst),
            render_steps: self.render_steps.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
        }
    }
}

/// How much work a request asks for: `?steps=N`.
#[derive(Debug, Deserialize)]
pub struct Size {
    steps: Option<u32>,
}

impl Size {
    const DEFAULT_STEPS: u32 = 100;
    const MAX_STEPS: u32 = 1_000;

    /// The steps asked for (100 unless given), at most 1000 (10 s of work).
    fn steps(&self) -> u32 {
        self.steps
            .unwrap_or(Self::DEFAULT_STEPS)
            .min(Self::MAX_STEPS)
    }
}

// ANCHOR: in_flight
/// Counts the requests being handled, for `/stats`.
async fn track_in_flight(
    State(observed): State<Arc<Observations>>,
    request: Request,
    next: Next,
) -> Response {
    observed.in_flight.fetch_add(1, Ordering::SeqCst);
    let response = next.run(request).await;
    observed.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}
// ANCHOR_END: in_flight

/// The sections of a report. They do not depend on each other, so they are
/// built in parallel.
const SECTIONS: [&str; 3] = ["sales", "stock", "returns"];

// ANCHOR: report
async fn report(
    State(observed): State<Arc<Observations>>,
    Query(size): Query<Size>,
) -> Result<String, StatusCode> {
    // One task per section, so that they run in parallel.
    let sections: Vec<_> = SECTIONS
        .into_iter()
        .map(|name| tokio::spawn(build_section(observed.clone(), name, size.steps())))
        .collect();
    let mut report = String::new();
    for section in sections {
        let text = section
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        report.push_str(&text);
    }
    Ok(report)
}
// ANCHOR_END: report

// ANCHOR: section
/// One section of a report: `steps` slow queries, one after the other.
async fn build_section(observed: Arc<Observations>, name: &'static str, steps: u32) -> String {
    for _ in 0..steps {
        tokio::time::sleep(STEP).await; // a query to a slow database
        observed.report_steps.fetch_add(1, Ordering::SeqCst);
    }
    tracing::info!(section = name, steps, "report section done");
    format!("{name}: {steps} rows\n")
}
// ANCHOR_END: section

// ANCHOR: render
async fn render(
    State(observed): State<Arc<Observations>>,
    Query(size): Query<Size>,
) -> Result<String, StatusCode> {
    let steps = size.steps();
    // CPU-bound work runs on a blocking thread, not on the runtime (chapter 01).
    let checksum = tokio::task::spawn_blocking(move || render_image(&observed, steps))
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(format!(
        "rendered {steps} tiles, checksum {checksum:016x}\n"
    ))
}

/// The CPU-bound part: `tiles` tiles, one after the other.
fn render_image(observed: &Observations, tiles: u32) -> u64 {
    let mut checksum = 0;
    for tile in 0..tiles {
        checksum = render_tile(checksum, tile);
        observed.render_steps.fetch_add(1, Ordering::SeqCst);
    }
    tracing::info!(tiles, "render done");
    checksum
}
// ANCHOR_END: render

/// One tile of CPU-heavy work: it holds its thread for [`STEP`]. (It sleeps
/// rather than spins so that the tests stay gentle on your machine; to the
/// rest of the program the thread is just as unavailable.)
fn render_tile(checksum: u64, tile: u32) -> u64 {
    std::thread::sleep(STEP);
    checksum.rotate_left(7) ^ u64::from(tile).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `GET /stats`: the counters, as JSON.
async fn stats(State(observed): State<Arc<Observations>>) -> Json<Stats> {
    Json(observed.snapshot())
}
