//! The checks of lab 01, run with `cargo test -p blocking`.
//!
//! Each test starts the lab's app on a single-thread runtime of its own (as
//! `cargo run -p blocking` does) and measures it from the outside, from the
//! test's own runtime: a server that blocks cannot stall the measuring.

use std::time::{Duration, Instant};

use lab_support::client::{burst, get};
use lab_support::{TestServer, within};
use reqwest::Client;

/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(15);

/// How long `/slow` waits in these tests.
const SLOW_MS: u128 = 100;

#[tokio::test]
async fn ten_slow_requests_finish_together() {
    let server = TestServer::start_current_thread(blocking::app());
    let client = Client::new();
    let url = server.url(&format!("/slow?ms={SLOW_MS}"));

    let ten = within(
        LIMIT,
        "10 concurrent GET /slow",
        burst(10, |_| client.get(&url)),
    )
    .await;

    assert_eq!(
        ten.statuses(),
        vec![200; 10],
        "every /slow request should answer 200"
    );
    // Waiting is not working: ten 100 ms waits overlap and take ~100 ms in
    // all. Done one after another they cannot take less than 1 s.
    let limit_ms = 5 * SLOW_MS;
    assert!(
        ten.elapsed.as_millis() < limit_ms,
        "10 concurrent requests to a {SLOW_MS} ms handler took {} ms; expected about \
         {SLOW_MS} ms (limit {limit_ms} ms). They ran one after another: is something \
         blocking the runtime instead of awaiting? (chapter 01, 'Blocking the runtime')",
        ten.elapsed.as_millis()
    );
}

#[tokio::test]
async fn health_answers_while_slow_requests_wait() {
    let server = TestServer::start_current_thread(blocking::app());
    let client = Client::new();
    let slow_url = server.url("/slow?ms=500");
    let health_url = server.url("/health");

    within(LIMIT, "/health while five /slow requests run", async {
        let five_slow = tokio::spawn(burst(5, move |_| client.get(&slow_url)));
        // Ask until /health sees the five slow requests (plus itself) in flight.
        let started = Instant::now();
        loop {
            let health = get(&health_url).await;
            assert!(
                health.elapsed < Duration::from_millis(300),
                "/health took {} ms to answer while slow requests were waiting; expected a \
                 few ms. A waiting request must not stop the server from answering others: \
                 is a handler blocking the runtime? (chapter 01, 'Blocking the runtime')",
                health.elapsed.as_millis()
            );
            let report = health.json();
            if report["in_flight"] == 6 {
                let tasks = report["tasks"]
                    .as_u64()
                    .expect("/health should report `tasks`");
                assert!(
                    tasks >= 6,
                    "/health reported {tasks} live tasks with 6 requests in flight; expected at \
                     least one task per open connection (Handle::metrics().num_alive_tasks())"
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_millis(900),
                "/health never reported the 5 slow requests in flight at once (last report: \
                 {report}); expected \"in_flight\": 6 while they wait. Are they handled one \
                 after another, because a handler is blocking the runtime? (chapter 01)"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        five_slow.await.expect("the slow requests")
    })
    .await;
}

#[tokio::test]
async fn health_answers_while_cpu_work_runs() {
    let server = TestServer::start_current_thread(blocking::app());
    let crunch_url = server.url("/crunch?ms=1000");
    let health_url = server.url("/health");

    within(LIMIT, "/health while /crunch runs", async {
        let crunch = tokio::spawn(async move { get(&crunch_url).await });
        // Ask until /health sees the crunch request (plus itself) in flight.
        while !crunch.is_finished() {
            let health = get(&health_url).await;
            assert!(
                health.elapsed < Duration::from_millis(300),
                "/health took {} ms to answer while /crunch was computing; expected a few ms. \
                 CPU-heavy work keeps its thread busy until it is done: is it blocking the \
                 runtime's own thread? (chapter 01, 'CPU-bound work')",
                health.elapsed.as_millis()
            );
            if health.json()["in_flight"] == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "/crunch finished before /health could answer while it ran; expected /health to \
             answer at once. Is the CPU work blocking the runtime? (chapter 01, 'CPU-bound work')"
        );
    })
    .await;
}

#[tokio::test]
async fn crunch_answers_with_a_checksum() {
    let server = TestServer::start_current_thread(blocking::app());
    let reply = within(LIMIT, "GET /crunch", get(&server.url("/crunch?ms=50"))).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.starts_with("checksum "),
        "unexpected /crunch body {:?}",
        reply.body
    );
}

#[tokio::test]
async fn idle_health_reports_only_itself() {
    let server = TestServer::start_current_thread(blocking::app());
    let reply = within(LIMIT, "GET /health", get(&server.url("/health"))).await;
    assert_eq!(reply.status, 200);
    let report = reply.json();
    assert_eq!(report["status"], "ok");
    assert_eq!(
        report["in_flight"], 1,
        "only the /health request itself is in flight: {report}"
    );
}
