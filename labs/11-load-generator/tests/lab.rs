//! The checks of lab 11, run with `cargo test -p load-generator`.
//!
//! The load generator is pointed at servers that watch it from the far side
//! of the connection: `lab_support::Upstream` counts the requests it sees,
//! how many are in flight at once and the connections opened; a small server
//! of this file answers after delays known in advance, so the true latency
//! distribution is known and the reported percentiles can be checked against
//! it. What the generator *claims* (its report) is compared with what the
//! servers *saw*.
//!
//! Every failure message says what was observed, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use lab_support::upstream::Upstream;
use lab_support::{TestServer, within};
use load_generator::{Config, ErrorKind, Report, Stop};
use tokio::process::Command;

/// No test may take longer than this, even with a broken generator.
const LIMIT: Duration = Duration::from_secs(20);
/// How long the upstream holds each request: long enough that requests sent
/// at once are seen at once.
const HOLD_MS: u64 = 50;

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("11-load-generator.html");

fn config(url: String, concurrency: usize, stop: Stop) -> Config {
    Config {
        url,
        concurrency,
        stop,
        timeout: Duration::from_secs(5),
        keep_alive: true,
    }
}

/// Runs the generator, bounded.
async fn measure(config: &Config) -> Report {
    let what = format!(
        "the load generator ({:?} at concurrency {} against {})",
        config.stop, config.concurrency, config.url
    );
    within(LIMIT, &what, load_generator::run(config)).await
}

/// Runs the generator for at most `patience`: `None` if it had not finished
/// by then (and then it is stopped).
async fn measure_for(config: &Config, patience: Duration) -> Option<Report> {
    tokio::time::timeout(patience, measure(config)).await.ok()
}

/// What to suspect when the server never saw two requests at once, though
/// several workers were asked for.
const ONE_AT_A_TIME: &str = "The requests are sent one after another: does each wait for \
     another to finish? The generator may wait for one worker to finish before it starts the \
     next, or the workers may queue for something that one of them holds while its request is \
     in flight.";

/// `--concurrency 8` means 8 requests in flight at once: the upstream, which
/// holds each request for 50 ms, must see exactly 8 at its peak. Fewer means
/// the workers take turns; more means nothing bounds them.
#[tokio::test]
async fn at_concurrency_n_the_server_sees_n_requests_in_flight() {
    let upstream = Upstream::start();
    let (concurrency, requests) = (8, 40);
    let url = upstream.url(&format!("/slow/{HOLD_MS}"));
    // Five rounds of 50 ms take 0.25 s; one request after another, 2 s.
    // Whether the peak was reached is known well before that.
    let patience = Duration::from_secs(1);
    let report = measure_for(
        &config(url, concurrency, Stop::Requests(requests)),
        patience,
    )
    .await;
    let took = match &report {
        Some(report) => format!("took {:.2} s", report.elapsed_s),
        None => format!("had not finished after {patience:?}"),
    };

    let peak = upstream.max_in_flight();
    assert!(
        peak >= concurrency,
        "at --concurrency {concurrency}, {requests} requests to a 50 ms endpoint {took} and the \
         server never saw more than {peak} of them in flight at once; expected {concurrency}.\n\
         {}\n\
         Read: {CHAPTER}#concurrency-that-is-not",
        if peak <= 1 {
            ONE_AT_A_TIME
        } else {
            "Some requests overlap, but not all the workers' at once: does a worker start only \
             once another has finished?"
        }
    );
    assert!(
        peak <= concurrency,
        "at --concurrency {concurrency}, the server saw {peak} requests in flight at once; \
         expected at most {concurrency}.\n\
         Nothing bounds the requests in flight: is a task started for every request at once?\n\
         Read: {CHAPTER}#n-workers"
    );
}

/// `--requests 37` sends 37 requests: not 36 or 40 because 37 does not
/// divide among 8 workers, and not 37 per worker.
#[tokio::test]
async fn exactly_the_requested_number_is_sent() {
    let upstream = Upstream::start();
    let (concurrency, requests) = (8, 37);
    let report = measure(&config(
        upstream.url("/ok"),
        concurrency,
        Stop::Requests(requests),
    ))
    .await;

    let seen = upstream.requests_started();
    assert!(
        seen == requests as usize && report.requests == requests,
        "--requests {requests} at --concurrency {concurrency}: the server saw {seen} requests and \
         the report says {}; expected exactly {requests} for both.\n\
         How do the workers share the budget? Splitting it evenly loses the remainder; giving \
         each worker the whole budget multiplies it.\n\
         Read: {CHAPTER}#n-workers",
        report.requests
    );
}

/// N workers that each wait for their answer before sending again never
/// need more than N connections, if the client keeps them and reuses them.
/// A client made for each request opens a connection for each request.
#[tokio::test]
async fn connections_opened_are_at_most_the_concurrency() {
    let upstream = Upstream::start();
    let (concurrency, requests) = (4, 40);
    let url = upstream.url("/slow/5");
    measure(&config(url, concurrency, Stop::Requests(requests))).await;

    let opened = upstream.connections();
    let peak = upstream.max_in_flight();
    let suspect = if peak > concurrency {
        format!(
            "The server saw {peak} requests in flight at once, and each needs a connection of \
             its own: nothing bounds the requests in flight. Is a task started for every request \
             at once?"
        )
    } else {
        "Every new connection costs a handshake, and a server counts them as new clients: is \
         something that owns connections made anew for each request?"
            .to_owned()
    };
    assert!(
        opened <= concurrency,
        "{requests} requests at --concurrency {concurrency} opened {opened} connections to the \
         server; expected at most {concurrency}, one per worker, each reused.\n\
         {suspect}\n\
         Read: {CHAPTER}#one-client"
    );
}

/// `keep_alive: false` (`--no-keep-alive`) is there to measure what a
/// connection costs: every request opens a connection of its own, and the
/// server counts one per request. A run that keeps its connections anyway
/// measures something else than it says.
#[tokio::test]
async fn without_keep_alive_every_request_opens_its_own_connection() {
    let upstream = Upstream::start();
    let (concurrency, requests) = (4, 40);
    let mut config = config(upstream.url("/ok"), concurrency, Stop::Requests(requests));
    config.keep_alive = false;
    measure(&config).await;

    let opened = upstream.connections();
    let sent = upstream.requests_started();
    let suspect = if sent != requests as usize {
        "The run sent another number of requests than it was asked for: how do the workers \
         share the budget?"
    } else {
        "Connections were reused all the same: does the keep-alive setting reach what keeps \
         them?"
    };
    assert!(
        opened >= sent && sent == requests as usize,
        "--requests {requests} at --concurrency {concurrency} with keep-alive off \
         (`Config::keep_alive` false, `--no-keep-alive`): the server saw {sent} requests on \
         {opened} connections; expected {requests} requests, each on a connection of its own: \
         that run is there to measure what a new connection costs.\n\
         {suspect}\n\
         Read: {CHAPTER}#one-client"
    );
}

/// A server whose delays are known in advance: request 10, 20, 30, ... (one
/// in ten, whichever client sends it) waits `SLOW_MS`, every other one
/// `fast_ms`. It notes when each request arrived and when it left, so that
/// the test can tell how many were in its hands at once, at the peak and on
/// average.
struct KnownDelays {
    server: TestServer,
    log: Arc<DelayLog>,
}

/// What the server of known delays has seen.
#[derive(Default)]
struct DelayLog {
    arrived: AtomicUsize,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// When each request arrived and left (answered or abandoned).
    served: Mutex<Vec<(Instant, Instant)>>,
}

/// One request in the server's hands; it notes its stay when dropped.
struct InHand {
    log: Arc<DelayLog>,
    arrived: Instant,
}

impl InHand {
    fn enter(log: &Arc<DelayLog>) -> Self {
        let now = log.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        log.peak.fetch_max(now, Ordering::SeqCst);
        InHand {
            log: log.clone(),
            arrived: Instant::now(),
        }
    }
}

impl Drop for InHand {
    fn drop(&mut self) {
        self.log.in_flight.fetch_sub(1, Ordering::SeqCst);
        let stay = (self.arrived, Instant::now());
        self.log.served.lock().unwrap().push(stay);
    }
}

impl KnownDelays {
    fn start(fast_ms: u64) -> Self {
        let log = Arc::new(DelayLog::default());
        let app = Router::new()
            .route(
                "/known",
                get(move |State(log): State<Arc<DelayLog>>| async move {
                    let _in_hand = InHand::enter(&log);
                    let n = log.arrived.fetch_add(1, Ordering::SeqCst) + 1;
                    let ms = if n % 10 == 0 { SLOW_MS } else { fast_ms };
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "done"
                }),
            )
            .with_state(log.clone());
        KnownDelays {
            server: TestServer::start(app),
            log,
        }
    }

    fn url(&self) -> String {
        self.server.url("/known")
    }

    /// The requests that have reached the server.
    fn arrived(&self) -> usize {
        self.log.arrived.load(Ordering::SeqCst)
    }

    /// The most requests the server held at once.
    fn peak(&self) -> usize {
        self.log.peak.load(Ordering::SeqCst)
    }

    /// Little's law, from the server's side: the time every request spent
    /// in its hands, added up, over the time from the first arrival to the
    /// last departure, is how many it held on average.
    fn average_in_flight(&self) -> f64 {
        let served = self.log.served.lock().unwrap();
        let held: Duration = served.iter().map(|(arrived, left)| *left - *arrived).sum();
        let first = served.iter().map(|(arrived, _)| *arrived).min();
        let last = served.iter().map(|(_, left)| *left).max();
        match (first, last) {
            (Some(first), Some(last)) if last > first => {
                held.as_secs_f64() / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}
const FAST_MS: u64 = 20;
const SLOW_MS: u64 = 200;

/// With 90 % of requests taking 20 ms and 10 % taking 200 ms, the median is
/// about 20 ms and the 99th percentile about 200 ms (50 requests: 5 slow
/// ones are more than the slowest 1 %). A latency is the time
/// of one request, from sending it to its last byte: time spent waiting for
/// a turn before sending is not the server's latency, and a clock shared by
/// all requests measures the run, not a request.
#[tokio::test]
async fn reported_percentiles_match_the_servers_delays() {
    let server = KnownDelays::start(FAST_MS);
    let (concurrency, requests) = (10, 50);
    let url = server.url();
    let report = measure(&config(url, concurrency, Stop::Requests(requests))).await;
    let latency = report.latency_ms;

    // Generous: on a busy machine a request can take a few ms more than the
    // server's delay, never less.
    let (fast, slow) = (FAST_MS as f64, SLOW_MS as f64);
    let median_ok = latency.p50 >= fast * 0.95 && latency.p50 <= fast * 2.5;
    let tail_ok = latency.p99 >= slow * 0.95 && latency.p99 <= slow * 1.5;
    assert!(
        median_ok && tail_ok && report.requests == requests,
        "against a server that answers 90 % of requests in {FAST_MS} ms and 10 % in {SLOW_MS} ms, \
         the report says p50 = {:.1} ms and p99 = {:.1} ms over {} requests; expected p50 about \
         {FAST_MS} ms and p99 about {SLOW_MS} ms over {requests}.\n\
         {}\n\
         Read: {CHAPTER}#what-a-latency-is",
        latency.p50,
        latency.p99,
        report.requests,
        if report.requests == requests && server.peak() > concurrency {
            "The server held more requests at once than there are workers: nothing bounds the \
             requests in flight, and each latency pays for the crowd. Is a task started for \
             every request at once?"
        } else if report.requests == requests {
            "Is each request's clock started when that request is sent and stopped when its \
             answer has arrived? Waiting for a turn is not latency."
        } else {
            "The run sent another number of requests than it was asked for: how do the workers \
             share the budget?"
        }
    );
}

/// N workers keep N requests in flight from the start of a run to its end,
/// not just at its peak: a worker that has its answer sends its next request
/// at once, whatever the others are waiting for. Against the server of known
/// delays (90 % of requests in 10 ms, one in ten in 200 ms), 100 requests
/// hold the server for 2.9 s in all; ten at a time that is 0.29 s, plus at
/// most one slow request at the end, since no worker idles while requests
/// are left: about 0.5 s, with nearly ten in flight on average (Little's law:
/// the time requests spent in the server, added up, over the run's span).
/// Requests sent in batches of ten, each batch waiting for its slowest, or a
/// window that waits for its oldest request, reach ten at the peak too, but
/// wait for a slow request again and again: about 2 s, two in flight on
/// average. The delays are uneven on purpose: with even ones, batches take
/// as long as workers.
#[tokio::test]
async fn a_run_keeps_n_requests_in_flight_from_start_to_end() {
    const QUICK_MS: u64 = 10;
    let server = KnownDelays::start(QUICK_MS);
    let (concurrency, requests) = (10, 100);
    let config = config(server.url(), concurrency, Stop::Requests(requests));
    // Every request's delay, added up, shared by the workers, plus one slow
    // request: the longest a run can take if no worker ever waits for
    // another (list scheduling). Twice that, for a busy machine.
    let slow = requests / 10;
    let held = Duration::from_millis((requests - slow) * QUICK_MS + slow * SLOW_MS);
    let expected = held / concurrency as u32 + Duration::from_millis(SLOW_MS);
    let patience = 2 * expected;
    let report = measure_for(&config, patience).await;

    let (peak, average, seen) = (server.peak(), server.average_in_flight(), server.arrived());
    let took = match &report {
        Some(report) => format!("took {:.2} s", report.elapsed_s),
        None => format!("had not finished after {patience:?}"),
    };
    let suspect = if seen > requests as usize {
        "The server saw more requests than were asked for: how do the workers share the budget?"
    } else if peak <= 1 {
        ONE_AT_A_TIME
    } else if peak < concurrency {
        "Some requests overlap, but never all the workers' at once: does a worker start only \
         once another has finished?"
    } else {
        "A slow request holds up others: does a worker wait for other requests (the rest of a \
         batch, or the oldest in flight) before it sends its next one?"
    };
    assert!(
        report.is_some(),
        "{requests} requests at --concurrency {concurrency}, against a server that answers 90 % \
         of them in {QUICK_MS} ms and 10 % in {SLOW_MS} ms ({held:.1?} in all), {took}; the \
         server saw {seen} of them, held at most {peak} at once, and {average:.1} on average; \
         expected about \
         {expected:?} with {concurrency} workers that never wait for each other, and close to \
         {concurrency} in flight on average.\n\
         {suspect}\n\
         Read: {CHAPTER}#concurrency-that-is-not"
    );
}

/// A refused connection, a timeout and a 500 are what a load test is for:
/// each is counted by kind in the report, and the run goes on.
#[tokio::test]
async fn errors_are_counted_by_kind_never_panicked_on() {
    let upstream = Upstream::start();
    let closed = {
        // A port that was free a moment ago: nothing listens there now.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    let cases = [
        (closed, ErrorKind::Refused),
        (upstream.url("/hang"), ErrorKind::Timeout),
        (upstream.url("/fail"), ErrorKind::Status5xx),
    ];
    let timeout = Duration::from_millis(200);
    // 4 requests, 2 at a time, each over within the timeout: two rounds of
    // at most 200 ms. Much longer means something waits without a bound.
    let patience = Duration::from_secs(1);
    for (url, kind) in cases {
        let mut config = config(url.clone(), 2, Stop::Requests(4));
        config.timeout = timeout;
        let Some(report) = measure_for(&config, patience).await else {
            panic!(
                "4 requests to {url} at --concurrency 2, each expected to fail as {kind:?} \
                 within the {timeout:?} timeout (`Config::timeout`), had not finished after \
                 {patience:?}.\n\
                 Does anything give up on a request whose answer never comes?\n\
                 Read: {CHAPTER}#errors-are-data"
            )
        };
        let suspect = if report.requests == 4 {
            "Is every failure classified and counted?"
        } else {
            "The run sent another number of requests than it was asked for: how do the workers \
             share the budget?"
        };
        assert!(
            report.errors.get(&kind) == Some(&4) && report.requests == 4,
            "4 requests to {url} should each fail as {kind:?}; the report says {} requests, \
             errors {:?}.\n\
             {suspect}\n\
             Read: {CHAPTER}#errors-are-data",
            report.requests,
            report.errors
        );
    }
}

/// `--duration 400ms` at concurrency 4 against a 50 ms endpoint: about 4 ×
/// 8 = 32 requests, in about 0.4 s. One worker at a time sends a quarter of
/// that; a run that ignores the clock does not stop on time.
#[tokio::test]
async fn a_timed_run_keeps_every_worker_busy_and_stops_on_time() {
    let upstream = Upstream::start();
    let concurrency = 4;
    let duration = Duration::from_millis(400);
    let url = upstream.url(&format!("/slow/{HOLD_MS}"));
    let patience = 2 * duration + Duration::from_millis(500);
    let report = measure_for(&config(url, concurrency, Stop::After(duration)), patience).await;
    let Some(report) = report else {
        let seen = upstream.requests_started();
        // No request at all, or more at once than workers: the run started
        // requests as fast as it could, and never waited for one.
        let suspect = if seen == 0 || upstream.max_in_flight() > concurrency {
            "Nothing bounds the requests in flight: is a task started for every request the \
             clock allows, as fast as they can be started?"
        } else {
            "Does every worker check the clock before each request?"
        };
        panic!(
            "--duration {duration:?} at --concurrency {concurrency} had not stopped after \
             {patience:?} (the server had seen {seen} requests, at most {} at once); expected it \
             to stop about on time.\n\
             {suspect}\n\
             Read: {CHAPTER}#n-workers",
            upstream.max_in_flight()
        )
    };

    let expected = concurrency as u64 * (duration.as_millis() as u64 / HOLD_MS);
    let peak = upstream.max_in_flight();
    assert!(
        report.requests >= expected / 2,
        "--duration {duration:?} at --concurrency {concurrency} against a 50 ms endpoint sent {} \
         requests (the server saw at most {peak} at once); expected about {expected}, \
         {concurrency} at a time.\n\
         The workers take turns instead of running together. {}\n\
         Read: {CHAPTER}#concurrency-that-is-not",
        report.requests,
        if peak <= 1 {
            ONE_AT_A_TIME
        } else {
            "Does a worker start only once another has finished?"
        }
    );
}

/// The binary, as `cargo run -p load-generator -- <url> ... --json` runs it,
/// prints one line of JSON that scripts (and `cargo xtask bench`) read.
#[tokio::test]
async fn the_binary_prints_its_report_as_json() {
    let upstream = Upstream::start();
    let binary = option_env!("CARGO_BIN_EXE_load-generator")
        .or(option_env!("CARGO_BIN_EXE_load-generator-solution"))
        .expect("cargo builds the package's binary for its tests");
    let url = upstream.url("/ok");
    let run = Command::new(binary)
        .args([&url, "--concurrency", "2", "--requests", "10", "--json"])
        .kill_on_drop(true)
        .output();
    let output = within(LIMIT, "the load generator's binary", run).await;
    let output = output.expect("the binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Result<Report, _> = serde_json::from_str(stdout.trim());
    let report = report.unwrap_or_else(|e| {
        panic!(
            "`load-generator {url} --concurrency 2 --requests 10 --json` printed {stdout:?} \
             (stderr: {:?}); expected one line of JSON with the report ({e}).\n\
             Read: {CHAPTER}#the-exercise",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let suspect = if report.requests == 10 && upstream.requests_started() == 10 {
        "Is every answered request counted as it ended?"
    } else {
        "How do the workers share the budget of `--requests`?"
    };
    assert!(
        report.requests == 10 && report.succeeded == 10 && upstream.requests_started() == 10,
        "the binary's JSON report says {} requests, {} succeeded (the server saw {}); \
         expected 10, 10 and 10.\n\
         {suspect}\n\
         Read: {CHAPTER}#the-exercise",
        report.requests,
        report.succeeded,
        upstream.requests_started()
    );
}
