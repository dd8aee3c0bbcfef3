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

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
const CHAPTER: &str = "http://127.0.0.1:3000/11-load-generator.html";

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

/// `--concurrency 8` means 8 requests in flight at once: the upstream, which
/// holds each request for 50 ms, must see exactly 8 at its peak. Fewer means
/// the workers take turns; more means nothing bounds them.
#[tokio::test]
async fn at_concurrency_n_the_server_sees_n_requests_in_flight() {
    let upstream = Upstream::start();
    let (concurrency, requests) = (8, 40);
    let url = upstream.url(&format!("/slow/{HOLD_MS}"));
    let report = measure(&config(url, concurrency, Stop::Requests(requests))).await;

    let peak = upstream.max_in_flight();
    assert!(
        peak >= concurrency,
        "at --concurrency {concurrency}, {requests} requests to a 50 ms endpoint took {:.2} s and \
         the server never saw more than {peak} of them in flight at once; expected {concurrency}.\n\
         The workers take turns instead of running together: does the generator wait for one \
         worker to finish before it starts the next?\n\
         Read: {CHAPTER}#concurrency-that-is-not",
        report.elapsed_s
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
    assert!(
        opened <= concurrency,
        "{requests} requests at --concurrency {concurrency} opened {opened} connections to the \
         server; expected at most {concurrency}, one per worker, each reused.\n\
         Every new connection costs a handshake, and a server counts them as new clients: is \
         something that owns connections made anew for each request?\n\
         Read: {CHAPTER}#one-client"
    );
}

/// A server whose delays are known in advance: request 10, 20, 30, ... (one
/// in ten, whichever client sends it) waits `SLOW_MS`, every other one
/// `FAST_MS`.
fn known_delays() -> TestServer {
    let counter = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/known",
            get(|State(counter): State<Arc<AtomicUsize>>| async move {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let ms = if n % 10 == 0 { SLOW_MS } else { FAST_MS };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                "done"
            }),
        )
        .with_state(counter);
    TestServer::start(app)
}
const FAST_MS: u64 = 20;
const SLOW_MS: u64 = 200;

/// With 90 % of requests taking 20 ms and 10 % taking 200 ms, the median is
/// about 20 ms and the 99th percentile about 200 ms. A latency is the time
/// of one request, from sending it to its last byte: time spent waiting for
/// a turn before sending is not the server's latency, and a clock shared by
/// all requests measures the run, not a request.
#[tokio::test]
async fn reported_percentiles_match_the_servers_delays() {
    let server = known_delays();
    let (concurrency, requests) = (10, 100);
    let url = server.url("/known");
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
         Is each request's clock started when that request is sent and stopped when its answer \
         has arrived? Waiting for a turn is not latency.\n\
         Read: {CHAPTER}#what-a-latency-is",
        latency.p50,
        latency.p99,
        report.requests
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
    for (url, kind) in cases {
        let mut config = config(url.clone(), 2, Stop::Requests(4));
        config.timeout = Duration::from_millis(200);
        let report = measure(&config).await;
        assert!(
            report.errors.get(&kind) == Some(&4) && report.requests == 4,
            "4 requests to {url} should each fail as {kind:?}; the report says {} requests, \
             errors {:?}.\n\
             Is every failure classified and counted?\n\
             Read: {CHAPTER}#errors-are-data",
            report.requests,
            report.errors
        );
    }
}

/// `--duration 600ms` at concurrency 4 against a 50 ms endpoint: about 4 ×
/// 12 = 48 requests, in about 0.6 s. One worker at a time sends a quarter of
/// that; a run that ignores the clock does not stop on time.
#[tokio::test]
async fn a_timed_run_keeps_every_worker_busy_and_stops_on_time() {
    let upstream = Upstream::start();
    let concurrency = 4;
    let duration = Duration::from_millis(600);
    let url = upstream.url(&format!("/slow/{HOLD_MS}"));
    let report = measure(&config(url, concurrency, Stop::After(duration))).await;

    let expected = concurrency as u64 * (duration.as_millis() as u64 / HOLD_MS);
    assert!(
        report.elapsed_s < duration.as_secs_f64() * 2.0 + 0.5,
        "--duration 600ms took {:.2} s; expected it to stop about on time.\n\
         Does every worker check the clock before each request?\n\
         Read: {CHAPTER}#n-workers",
        report.elapsed_s
    );
    assert!(
        report.requests >= expected / 2,
        "--duration 600ms at --concurrency {concurrency} against a 50 ms endpoint sent {} \
         requests (the server saw at most {} at once); expected about {expected}, \
         {concurrency} at a time.\n\
         The workers take turns instead of running together: does the generator wait for one \
         worker to finish before it starts the next?\n\
         Read: {CHAPTER}#concurrency-that-is-not",
        report.requests,
        upstream.max_in_flight()
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
    assert!(
        report.requests == 10 && report.succeeded == 10 && upstream.requests_started() == 10,
        "the binary's JSON report says {} requests, {} succeeded (the server saw {}); \
         expected 10, 10 and 10.\n\
         Read: {CHAPTER}#the-exercise",
        report.requests,
        report.succeeded,
        upstream.requests_started()
    );
}
