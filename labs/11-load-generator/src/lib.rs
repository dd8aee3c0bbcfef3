//! Lab 11 · load generator: measure a server with N clients at once.
//!
//! [`run`] sends GET requests to one URL from `concurrency` workers until a
//! budget runs out (a number of requests, or a duration), times every request
//! from sending it to the last byte of its body, and reports requests per
//! second, errors by kind and latency percentiles from an HDR histogram.
//!
//! A load generator is a concurrent *client*, and it has the same duties as
//! the servers of the earlier labs: the concurrency it claims must be real
//! (N requests in flight, not one after another), it must open connections
//! like a real client would (a pool it reuses, not one per request), and what
//! it reports must be what happened to each request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use reqwest::Client;
use serde::{Deserialize, Serialize};

/// What to measure, and for how long.
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL every request GETs.
    pub url: String,
    /// How many requests are in flight at once: one per worker.
    pub concurrency: usize,
    /// When to stop sending.
    pub stop: Stop,
    /// How long one request may take (connecting included) before it counts
    /// as a timeout.
    pub timeout: Duration,
    /// Reuse connections between requests (HTTP keep-alive). Without it,
    /// every request opens a connection of its own.
    pub keep_alive: bool,
}

/// When a run stops sending requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After exactly this many requests.
    Requests(u64),
    /// Once this much time has passed; requests already sent still finish.
    After(Duration),
}

/// What went wrong with a request that got no answer or a bad one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection: nothing listens there (or it refused us).
    Refused,
    /// No complete answer within the timeout.
    Timeout,
    /// The server answered 4xx.
    Status4xx,
    /// The server answered 5xx (a 503 from a server shedding load, say).
    Status5xx,
    /// Anything else: a connection reset half-way, a body cut short.
    Other,
}

/// Latency percentiles, in milliseconds, of the requests that got an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What a run measured. `--json` prints exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub url: String,
    pub concurrency: usize,
    /// Requests sent (answered or not).
    pub requests: u64,
    /// Requests answered with a 2xx or 3xx status.
    pub succeeded: u64,
    /// Requests that failed, by kind (kinds that did not happen are left out).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// From the first request sent to the last one finished.
    pub elapsed_s: f64,
    /// `requests / elapsed_s`.
    pub requests_per_s: f64,
    /// Of every request that got an answer, whatever its status.
    pub latency_ms: Latency,
}

impl Report {
    /// Failed requests of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

// ANCHOR: run
/// Sends requests to `config.url` from `config.concurrency` workers until
/// `config.stop`, and reports what happened.
pub async fn run(config: &Config) -> Report {
    let budget = Arc::new(Budget::new(config.stop));
    let started = Instant::now();
    let mut tally = Tally::new();
    for _ in 0..config.concurrency.max(1) {
        let worker = tokio::spawn(worker(config.clone(), budget.clone()));
        tally.merge(
            worker
                .await
                .expect("a worker counts errors, it never panics"),
        );
    }
    tally.report(config, started.elapsed())
}

/// One simulated user: sends a request, waits for the whole answer, records
/// it, and goes again while the budget lasts.
async fn worker(config: Config, budget: Arc<Budget>) -> Tally {
    let mut tally = Tally::new();
    while budget.take_one() {
        let client = client(&config);
        tally.record(timed_get(&client, &config.url).await);
    }
    tally
}
// ANCHOR_END: run

/// A client with the run's timeout and keep-alive setting.
fn client(config: &Config) -> Client {
    let mut builder = Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout);
    if !config.keep_alive {
        // No idle connection is kept, so none is ever reused.
        builder = builder.pool_max_idle_per_host(0);
    }
    builder.build().expect("a plain HTTP client builds")
}

/// The outcome of one request: its latency if it was answered, and what
/// went wrong if it failed.
pub struct Outcome {
    pub latency: Option<Duration>,
    pub error: Option<ErrorKind>,
}

// ANCHOR: timed_get
/// GETs `url` and reads the whole body (tip 5: a body left unread keeps its
/// connection from being reused), timing from sending to the last byte.
async fn timed_get(client: &Client, url: &str) -> Outcome {
    let sent = Instant::now();
    let answer = match client.get(url).send().await {
        Ok(response) => {
            let status = response.status();
            response.bytes().await.map(|_| status)
        }
        Err(error) => Err(error),
    };
    match answer {
        Ok(status) => Outcome {
            latency: Some(sent.elapsed()),
            error: match status.as_u16() {
                400..=499 => Some(ErrorKind::Status4xx),
                500..=599 => Some(ErrorKind::Status5xx),
                _ => None,
            },
        },
        Err(error) => Outcome {
            latency: None,
            error: Some(classify(&error)),
        },
    }
}
// ANCHOR_END: timed_get

fn classify(error: &reqwest::Error) -> ErrorKind {
    if error.is_timeout() {
        ErrorKind::Timeout
    } else if error.is_connect() {
        ErrorKind::Refused
    } else {
        ErrorKind::Other
    }
}

/// How many more requests may start: a count, or a deadline.
struct Budget {
    remaining: AtomicU64,
    deadline: Option<Instant>,
}

impl Budget {
    fn new(stop: Stop) -> Self {
        match stop {
            Stop::Requests(n) => Budget {
                remaining: AtomicU64::new(n),
                deadline: None,
            },
            Stop::After(duration) => Budget {
                remaining: AtomicU64::new(u64::MAX),
                deadline: Some(Instant::now() + duration),
            },
        }
    }

    /// Takes one request from the budget; `false` once it is spent. Taking
    /// and checking are one atomic step, so N workers never overspend it.
    fn take_one(&self) -> bool {
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return false;
        }
        self.remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// One worker's counts and latencies; merged into one at the end, so the
/// workers share nothing while they run. (Public for the benchmark's
/// going-further generator, which counts the same way.)
pub struct Tally {
    requests: u64,
    errors: BTreeMap<ErrorKind, u64>,
    /// Microseconds, from 1 µs to 10 minutes, with 3 significant digits
    /// (a recorded value is within 0.1 % of the true one).
    latencies: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    pub fn new() -> Self {
        Tally {
            requests: 0,
            errors: BTreeMap::new(),
            latencies: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }

    pub fn record(&mut self, outcome: Outcome) {
        self.requests += 1;
        if let Some(kind) = outcome.error {
            *self.errors.entry(kind).or_default() += 1;
        }
        if let Some(latency) = outcome.latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latencies.saturating_record(micros.max(1));
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.latencies
            .add(&other.latencies)
            .expect("histograms of the same bounds add up");
    }

    pub fn report(self, config: &Config, elapsed: Duration) -> Report {
        let failed: u64 = self.errors.values().sum();
        let ms = |quantile: f64| self.latencies.value_at_quantile(quantile) as f64 / 1000.0;
        Report {
            url: config.url.clone(),
            concurrency: config.concurrency,
            requests: self.requests,
            succeeded: self.requests - failed,
            errors: self.errors,
            elapsed_s: elapsed.as_secs_f64(),
            requests_per_s: self.requests as f64 / elapsed.as_secs_f64().max(1e-9),
            latency_ms: Latency {
                p50: ms(0.50),
                p90: ms(0.90),
                p99: ms(0.99),
                max: self.latencies.max() as f64 / 1000.0,
            },
        }
    }
}
