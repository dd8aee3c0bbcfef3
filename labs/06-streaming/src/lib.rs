//! Lab 06 · streaming: send each event when it happens, and stop producing
//! when nobody is listening.
//!
//! A long job (an import, a build, a report) tells its user how far it got.
//! With server-sent events (SSE) the browser opens one request and the server
//! keeps the response open, writing one event per step as the step is done:
//! the user sees the progress bar move. Two things make or break it: each
//! event must leave the server when it is made, not with all the others at
//! the end, and the job must stop when the user closes the tab.
//!
//! Routes:
//! - `GET /`: a page that shows the stream in a browser (an `EventSource`).
//! - `GET /events?count=10&every_ms=1000`: the progress of a job of `count`
//!   steps, one step every `every_ms` ms, as a stream of events, one per
//!   step: `id: 3` and `data: {"step":3,"of":10}`. Defaults from [`Config`].
//! - `GET /stats`: `{"live_producers":…,"events_produced":…}`, what the jobs
//!   are doing right now.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// How the server streams. `cargo run -p streaming` uses the defaults; the
/// tests use shorter times.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Steps in a job when `?count=` does not say.
    pub count: u32,
    /// How long one step takes when `?every_ms=` does not say.
    pub every: Duration,
    /// How long a stream may stay silent before the server sends a comment
    /// line, so that proxies and browsers do not take it for a dead
    /// connection. Real servers use 15 s or so, under the 30 to 60 s after
    /// which proxies drop idle connections; the lab's is short so that you
    /// can see it with curl.
    pub keep_alive: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            count: 10,
            every: Duration::from_secs(1),
            keep_alive: Duration::from_secs(3),
        }
    }
}

/// The most steps a job may have.
const MAX_COUNT: u32 = 1_000;
/// The longest step a job may take.
const MAX_EVERY: Duration = Duration::from_secs(10);

/// The lab's app: `observed` is where the jobs report what they are doing.
pub fn app(config: Config, observed: Arc<Observations>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/stats", get(stats))
        .with_state(Server { config, observed })
}

/// What every handler may use.
#[derive(Debug, Clone)]
struct Server {
    config: Config,
    observed: Arc<Observations>,
}

/// The size of a job: `?count=N&every_ms=M`.
#[derive(Debug, Deserialize)]
struct JobSize {
    count: Option<u32>,
    every_ms: Option<u64>,
}

impl JobSize {
    /// The steps and the time per step asked for, the config's unless given.
    fn or(&self, config: Config) -> (u32, Duration) {
        let count = self.count.unwrap_or(config.count).min(MAX_COUNT);
        let every = self
            .every_ms
            .map_or(config.every, Duration::from_millis)
            .min(MAX_EVERY);
        (count, every)
    }
}

/// How far a job got: step `step` of `of` is done.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Progress {
    pub step: u32,
    pub of: u32,
}

// ANCHOR: events
/// `GET /events`: the progress of a job, one event per step.
async fn events(State(server): State<Server>, Query(size): Query<JobSize>) -> String {
    let (count, every) = size.or(server.config);
    let (reports, mut progress) = mpsc::unbounded_channel();
    tokio::spawn(run_job(server.observed, count, every, reports));

    let mut body = String::new();
    while let Some(done) = progress.recv().await {
        let data = serde_json::to_string(&done).expect("a Progress is always valid JSON");
        body.push_str(&format!("id: {}\ndata: {data}\n\n", done.step));
    }
    body
}
// ANCHOR_END: events

// ANCHOR: job
/// The job behind a stream: `steps` steps, each `every` long, and a progress
/// report after each one.
async fn run_job(
    observed: Arc<Observations>,
    steps: u32,
    every: Duration,
    reports: mpsc::UnboundedSender<Progress>,
) {
    let producer = observed.producer_started();
    for step in 1..=steps {
        tokio::time::sleep(every).await; // one step of work
        let _ = reports.send(producer.produced(Progress { step, of: steps }));
    }
}
// ANCHOR_END: job

/// `GET /`: a page that opens the stream and shows each event as it comes.
/// Its query string goes to `/events`: `/?every_ms=200` is a quick look.
async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// `GET /stats`: the counters, as JSON.
async fn stats(State(server): State<Server>) -> Json<Stats> {
    Json(server.observed.snapshot())
}

/// What the jobs are doing. `/stats` shows it; the tests watch it to see
/// whether a job stops when its client leaves, rather than reading your code.
#[derive(Debug, Default)]
pub struct Observations {
    live_producers: AtomicU64,
    events_produced: AtomicU64,
}

/// The counters of [`Observations`] at one moment, as `/stats` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Jobs producing events right now.
    pub live_producers: u64,
    /// Events produced so far, by every job.
    pub events_produced: u64,
}

impl Observations {
    /// Reads every counter.
    pub fn snapshot(&self) -> Stats {
        Stats {
            live_producers: self.live_producers.load(Ordering::SeqCst),
            events_produced: self.events_produced.load(Ordering::SeqCst),
        }
    }

    /// Counts a producer in. It counts as live until the guard is dropped,
    /// however its job ends: at the last step, or dropped half-way.
    fn producer_started(self: &Arc<Self>) -> LiveProducer {
        let live = self.live_producers.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(live, "producer started");
        LiveProducer(self.clone())
    }
}

/// A producer at work (see [`Observations::producer_started`]).
struct LiveProducer(Arc<Observations>);

impl LiveProducer {
    /// Counts one event produced, and hands it back.
    fn produced(&self, progress: Progress) -> Progress {
        self.0.events_produced.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(step = progress.step, of = progress.of, "event produced");
        progress
    }
}

impl Drop for LiveProducer {
    fn drop(&mut self) {
        let live = self.0.live_producers.fetch_sub(1, Ordering::SeqCst) - 1;
        tracing::info!(live, "producer stopped");
    }
}
