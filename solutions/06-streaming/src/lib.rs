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
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

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
/// `GET /events`: the progress of a job, one event per step, each sent as
/// soon as it is produced.
async fn events(
    State(server): State<Server>,
    Query(size): Query<JobSize>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    let (count, every) = size.or(server.config);
    let events = job(server.observed, count, every)
        .map(|done| Event::default().id(done.step.to_string()).json_data(done));
    // A comment line whenever the stream has been silent for `keep_alive`.
    Sse::new(events).keep_alive(KeepAlive::new().interval(server.config.keep_alive))
}
// ANCHOR_END: events

// ANCHOR: job
/// The job behind a stream: `steps` steps, each `every` long, and a progress
/// report after each one.
///
/// The job *is* the stream: it runs only while hyper polls it for the next
/// event, and when the client leaves hyper drops it, in the middle of its
/// `sleep`, with its `LiveProducer`. Nothing runs on for nobody.
fn job(observed: Arc<Observations>, steps: u32, every: Duration) -> impl Stream<Item = Progress> {
    async_stream::stream! {
        let producer = observed.producer_started();
        for step in 1..=steps {
            tokio::time::sleep(every).await; // one step of work
            yield producer.produced(Progress { step, of: steps });
        }
    }
}
// ANCHOR_END: job

// ANCHOR: task_way
/// The other correct fix keeps the job in a task of its own, as the starter
/// had it: route `/events` to `events_from_a_task` and every test passes the
/// same. The stream is the receiving end of a channel; the job stops as soon
/// as that end is dropped with the stream.
#[expect(
    dead_code,
    reason = "the other fix, shown in the book: route /events to it to try it"
)]
async fn events_from_a_task(
    State(server): State<Server>,
    Query(size): Query<JobSize>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    let (count, every) = size.or(server.config);
    // Bounded: a job may not run ahead of its client by more than one event.
    let (reports, progress) = mpsc::channel(1);
    tokio::spawn(run_job(server.observed, count, every, reports));
    let events = ReceiverStream::new(progress)
        .map(|done| Event::default().id(done.step.to_string()).json_data(done));
    Sse::new(events).keep_alive(KeepAlive::new().interval(server.config.keep_alive))
}

/// The job as a task: it waits for its step *or* for the stream to go away,
/// whichever comes first, so a client who leaves mid-step is noticed at
/// once, not a step later; and it stops if a report cannot be delivered.
async fn run_job(
    observed: Arc<Observations>,
    steps: u32,
    every: Duration,
    reports: mpsc::Sender<Progress>,
) {
    let producer = observed.producer_started();
    for step in 1..=steps {
        tokio::select! {
            () = reports.closed() => return,
            () = tokio::time::sleep(every) => {} // one step of work
        }
        let done = producer.produced(Progress { step, of: steps });
        if reports.send(done).await.is_err() {
            return;
        }
    }
}
// ANCHOR_END: task_way

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
