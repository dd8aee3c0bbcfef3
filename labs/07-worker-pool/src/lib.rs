//! Lab 07 · worker-pool: a few workers, a queue, and a door that closes.
//!
//! Some work cannot run once per request, however cheap tasks are: it needs
//! one of a few scarce things (a GPU, a licence, a core of the CPU, a
//! connection to a legacy system that takes four). A worker pool owns those
//! things: `workers` workers, each taking one job at a time off a queue.
//! A request puts its job in the queue and waits for the answer.
//!
//! Two things make a pool safe under load. The queue has a limit: while every
//! worker is busy and `queue` jobs wait, the next request is refused at once
//! with `503 Service Unavailable` and `Retry-After`, instead of joining a line
//! that only grows. And a job whose client has left is dropped unworked: a
//! worker is the scarce thing, and nobody is waiting for that answer.
//!
//! This server has a pool. Run the tests to see what it does with a crowd,
//! and with a client who leaves.
//!
//! Routes:
//! - `GET /job?n=7&ms=1000`: a job for the pool. A worker spends `ms`
//!   milliseconds on it (a stand-in for real work) and answers
//!   `{"n":7,"square":49}`.
//! - `GET /stats`: what the pool is doing, as JSON: its size (`workers`,
//!   `queue`), `busy` workers, the most ever busy at once (`peak`), jobs
//!   `queued`, jobs `done`, and jobs `skipped` because their client had left.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};

/// How many workers run jobs, and how many jobs may wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Jobs that run at once: one per worker.
    pub workers: usize,
    /// Jobs that may wait for a worker while every worker is busy.
    pub queue: usize,
}

/// The pool of `cargo run -p worker-pool`: four workers (a small machine's
/// cores), and a queue twice as long, so that a short burst waits a little
/// instead of being refused.
pub const DEFAULT_SIZE: PoolSize = PoolSize {
    workers: 4,
    queue: 8,
};

impl PoolSize {
    /// [`DEFAULT_SIZE`], with the variables `WORKERS` and `QUEUE` in the
    /// environment taking precedence: `WORKERS=2 QUEUE=3 cargo run -p worker-pool`.
    pub fn from_env() -> Result<Self, String> {
        let read = |name: &str, default: usize| match std::env::var(name) {
            Err(_) => Ok(default),
            Ok(text) => match text.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!(
                    "{name}={text:?}: expected a whole number, 1 or more"
                )),
            },
        };
        Ok(PoolSize {
            workers: read("WORKERS", DEFAULT_SIZE.workers)?,
            queue: read("QUEUE", DEFAULT_SIZE.queue)?,
        })
    }
}

// ANCHOR: app
/// The lab's app: starts `size.workers` workers on the current tokio runtime
/// and routes `/job` to them through a queue of `size.queue` jobs. `stats`
/// counts what the pool does; the tests keep a clone of it.
pub fn app(size: PoolSize, stats: Stats) -> Router {
    let (queue, jobs) = mpsc::unbounded_channel();
    // Every worker takes its jobs from the same receiver, one at a time.
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..size.workers {
        tokio::spawn(worker(jobs.clone(), stats.clone()));
    }
    let pool = Pool { queue, size, stats };
    Router::new()
        .route("/job", get(submit))
        .route("/stats", get(report))
        .with_state(pool)
}
// ANCHOR_END: app

/// What every request handler shares: the way into the queue, and the counts.
#[derive(Clone)]
struct Pool {
    queue: mpsc::UnboundedSender<Job>,
    size: PoolSize,
    stats: Stats,
}

/// A job as it waits in the queue: what to compute, and where the answer
/// goes. Each request makes its own `reply` channel, so an answer can only
/// reach the request that asked.
struct Job {
    input: Input,
    reply: oneshot::Sender<Answer>,
    /// Counts the job as queued for as long as it lives.
    in_queue: InQueue,
}

/// The query string of `/job`, e.g. `?n=7&ms=1000`.
#[derive(Debug, Deserialize)]
struct Input {
    n: u32,
    ms: Option<u64>,
}

/// How long a job takes when `/job` does not say.
const DEFAULT_JOB: Duration = Duration::from_secs(1);

/// A job's result, as `/job` answers it.
#[derive(Debug, Serialize)]
struct Answer {
    n: u32,
    square: u64,
}

// ANCHOR: submit
/// `GET /job`: puts the job in the queue, then waits for a worker's answer.
async fn submit(State(pool): State<Pool>, Query(input): Query<Input>) -> Response {
    let (reply, answer) = oneshot::channel();
    let in_queue = pool.stats.in_queue();
    let job = Job {
        input,
        reply,
        in_queue,
    };
    if pool.queue.send(job).is_err() {
        return failed("the workers have stopped");
    }
    // If the client leaves now, hyper drops this future, and `answer` with it.
    match answer.await {
        Ok(answer) => Json(answer).into_response(),
        Err(_) => failed("a worker dropped the job without answering"),
    }
}
// ANCHOR_END: submit

/// A pool that cannot work: a `500`, for a bug, not for a busy server.
fn failed(why: &str) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n")).into_response()
}

// ANCHOR: worker
/// One worker: takes the next job off the queue, runs it, and goes back for
/// another, until the queue closes (when the app is dropped).
async fn worker(jobs: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>, stats: Stats) {
    loop {
        // The lock is held only while waiting for a job; idle workers wait
        // for it in turn. It is released at the end of this statement, before
        // the job runs, so the workers run their jobs side by side.
        let next = jobs.lock().await.recv().await;
        let Some(job) = next else { return };
        run(job, &stats).await;
    }
}
// ANCHOR_END: worker

// ANCHOR: run
/// What a worker does with the job it took off the queue.
async fn run(job: Job, stats: &Stats) {
    let Job {
        input,
        reply,
        in_queue,
    } = job;
    drop(in_queue); // a worker has it: it waits no more
    let answer = work(input, stats).await;
    // If its request has gone, `send` hands the answer back, and it is dropped.
    let _ = reply.send(answer);
}
// ANCHOR_END: run

/// The job itself: the square of `n`, after `ms` milliseconds of a scarce
/// resource (a sleep here). The worker counts as busy while it runs, and the
/// job as done once it finishes.
async fn work(input: Input, stats: &Stats) -> Answer {
    let _at_work = stats.at_work();
    let duration = input.ms.map_or(DEFAULT_JOB, Duration::from_millis);
    tokio::time::sleep(duration).await;
    stats.count_done();
    Answer {
        n: input.n,
        square: u64::from(input.n).pow(2),
    }
}

/// `GET /stats`: the pool's size and counts.
async fn report(State(pool): State<Pool>) -> Json<Value> {
    let stats = &pool.stats;
    Json(json!({
        "workers": pool.size.workers,
        "queue": pool.size.queue,
        "busy": stats.busy(),
        "peak": stats.peak(),
        "queued": stats.queued(),
        "done": stats.done(),
        "skipped": stats.skipped(),
    }))
}

/// What the pool did, counted where it happens. Clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    busy: AtomicUsize,
    peak: AtomicUsize,
    queued: AtomicUsize,
    done: AtomicUsize,
    skipped: AtomicUsize,
}

impl Stats {
    /// Workers running a job right now.
    pub fn busy(&self) -> usize {
        self.0.busy.load(Ordering::SeqCst)
    }

    /// The most workers ever busy at the same time.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::SeqCst)
    }

    /// Jobs waiting for a worker right now.
    pub fn queued(&self) -> usize {
        self.0.queued.load(Ordering::SeqCst)
    }

    /// Jobs a worker finished.
    pub fn done(&self) -> usize {
        self.0.done.load(Ordering::SeqCst)
    }

    /// Jobs a worker took off the queue and dropped without working on them.
    pub fn skipped(&self) -> usize {
        self.0.skipped.load(Ordering::SeqCst)
    }

    /// Counts one job as skipped: a worker took it off the queue and dropped
    /// it without working on it, because nobody waits for its answer any more.
    pub fn count_skipped(&self) {
        let skipped = self.0.skipped.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(skipped, "job skipped: its client has left");
    }

    /// Counts one job as done: a worker ran it to its end.
    fn count_done(&self) {
        self.0.done.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a job as queued until the returned guard is dropped.
    fn in_queue(&self) -> InQueue {
        self.0.queued.fetch_add(1, Ordering::SeqCst);
        InQueue(self.clone())
    }

    /// Counts a worker as busy until the returned guard is dropped: when the
    /// job ends, or when whatever runs it is dropped halfway.
    fn at_work(&self) -> AtWork {
        let busy = self.0.busy.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak.fetch_max(busy, Ordering::SeqCst);
        tracing::info!(busy, "job started");
        AtWork(self.clone())
    }
}

/// A job in the queue (see [`Stats::in_queue`]).
struct InQueue(Stats);

impl Drop for InQueue {
    fn drop(&mut self) {
        self.0.0.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A busy worker (see [`Stats::at_work`]).
struct AtWork(Stats);

impl Drop for AtWork {
    fn drop(&mut self) {
        let busy = self.0.0.busy.fetch_sub(1, Ordering::SeqCst) - 1;
        tracing::info!(busy, "job ended");
    }
}
