//! The checks of lab 01, run with `cargo test -p blocking`.
//!
//! Each test starts the lab's app on a single-thread runtime of its own (as
//! `cargo run -p blocking` does) and measures it from the outside, from the
//! test's own runtime: a server that blocks cannot stall the measuring.
//!
//! Every failure message says what was measured, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::time::{Duration, Instant};

use lab_support::client::{burst, get};
use lab_support::{TestServer, within};
use reqwest::Client;

/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(15);

/// How long `/slow` waits in these tests.
const SLOW_MS: u128 = 100;

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("01-blocking.html");

/// Waiting is not working: ten requests that each wait 100 ms overlap, and
/// take about 100 ms in all. Done one after another they cannot take less than
/// 1 s. On the lab's single-thread runtime they only overlap if each handler
/// hands the thread back while it waits; a handler that puts the thread
/// itself to sleep keeps every other request out until it is done.
///
/// Two other ways to miss "about 100 ms" get messages of their own. Far less
/// means the handler did not wait at all. One after another while `/health`
/// (asked all along) answers at once means the server is not blocked: the
/// ten are waiting for each other, as behind a lock each holds while it waits.
#[tokio::test]
async fn ten_slow_requests_finish_together() {
    let server = TestServer::start_current_thread(blocking::app());
    let client = Client::new();
    let url = server.url(&format!("/slow?ms={SLOW_MS}"));
    let health_url = server.url("/health");

    let (ten, slowest_health) = within(LIMIT, "10 concurrent GET /slow", async {
        let ten = tokio::spawn(burst(10, move |_| client.get(&url)));
        // Meanwhile, how long does the server take to answer anything else?
        let mut slowest_health = Duration::ZERO;
        while !ten.is_finished() {
            slowest_health = slowest_health.max(get(&health_url).await.elapsed);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (ten.await.expect("the slow requests"), slowest_health)
    })
    .await;

    assert!(
        ten.statuses() == vec![200; 10],
        "10 concurrent GET /slow answered {:?}; expected 200 for every one.\n\
         Read: {CHAPTER}#the-exercise",
        ten.statuses()
    );
    let took = ten.elapsed.as_millis();
    assert!(
        took >= SLOW_MS / 2,
        "10 concurrent requests to a {SLOW_MS} ms handler were all answered in {took} ms; \
         expected about {SLOW_MS} ms.\n\
         They did not wait at all: is the wait created but never awaited?\n\
         Read: {CHAPTER}#the-idea"
    );
    let limit_ms = 5 * SLOW_MS;
    if took >= limit_ms && slowest_health < Duration::from_millis(SLOW_MS as u64 / 2) {
        panic!(
            "10 concurrent requests to a {SLOW_MS} ms handler took {took} ms; expected about \
             {SLOW_MS} ms (limit {limit_ms} ms). Yet /health answered within {} ms all along.\n\
             The runtime is free, and the requests are waiting for each other: do they share a \
             lock that each holds while it waits?\n\
             Read: http://127.0.0.1:3000/02-shared-state.html#holding-a-lock-across-await",
            slowest_health.as_millis()
        );
    }
    assert!(
        took < limit_ms,
        "10 concurrent requests to a {SLOW_MS} ms handler took {took} ms; expected about \
         {SLOW_MS} ms (limit {limit_ms} ms), and /health took up to {} ms meanwhile.\n\
         They ran one after another: is something blocking the runtime instead of awaiting?\n\
         Read: {CHAPTER}#see-the-bug",
        slowest_health.as_millis()
    );
}

/// A load balancer asks `/health` while the server is busy, and gives up on a
/// server that does not answer. Five requests waiting 500 ms each are no
/// reason for `/health` to wait: if it does, one of them is keeping the
/// runtime's only thread. Once `/health` answers, it must also report the
/// five (plus itself) in flight, and at least one live task per open
/// connection: axum runs every connection as a task of its own.
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
                "/health took {} ms to answer while 5 slow requests were waiting; expected a \
                 few ms (limit 300 ms).\n\
                 Waiting requests stopped the server from answering others: is a handler \
                 blocking the runtime?\n\
                 Read: {CHAPTER}#in-go-in-rust",
                health.elapsed.as_millis()
            );
            let report = health.json();
            if report["in_flight"] == 6 {
                let tasks = report["tasks"].as_u64().unwrap_or_else(|| {
                    panic!(
                        "/health reported {report}; expected a number of live `tasks`.\n\
                         Read: {CHAPTER}#the-health-endpoint"
                    )
                });
                assert!(
                    tasks >= 6,
                    "/health reported {tasks} live tasks with 6 requests in flight; expected at \
                     least 6, one per open connection.\n\
                     Is `tasks` still the runtime's count of live tasks?\n\
                     Read: {CHAPTER}#the-health-endpoint"
                );
                break;
            }
            if five_slow.is_finished() {
                let five = five_slow.await.expect("the slow requests");
                panic!(
                    "5 concurrent GET /slow?ms=500 were answered in {} ms, before /health saw \
                     them in flight (last report: {report}); expected them to wait about 500 ms.\n\
                     They did not wait at all: is the wait created but never awaited?\n\
                     Read: {CHAPTER}#the-idea",
                    five.elapsed.as_millis()
                );
            }
            assert!(
                started.elapsed() < Duration::from_millis(900),
                "/health never reported the 5 slow requests in flight at once (last report: \
                 {report}); expected \"in_flight\": 6 while they wait.\n\
                 Are they handled one after another, because a handler is blocking the runtime?\n\
                 Read: {CHAPTER}#in-go-in-rust"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        five_slow.await.expect("the slow requests")
    })
    .await;
}

/// The same question while `/crunch` computes for 600 ms. CPU-bound work
/// never reaches an `.await`, so it never hands its thread back by itself:
/// done on the runtime's thread, it keeps `/health` waiting until the
/// computation is over. (600 ms is twice the 300 ms `/health` may take, so a
/// crunch on the runtime's thread shows even when `/health` is asked late;
/// no longer, because the test cannot end before the crunch does.)
#[tokio::test]
async fn health_answers_while_cpu_work_runs() {
    let server = TestServer::start_current_thread(blocking::app());
    let crunch_url = server.url("/crunch?ms=600");
    let health_url = server.url("/health");

    within(LIMIT, "/health while /crunch runs", async {
        let crunch = tokio::spawn(async move { get(&crunch_url).await });
        // Ask until /health sees the crunch request (plus itself) in flight.
        while !crunch.is_finished() {
            let health = get(&health_url).await;
            assert!(
                health.elapsed < Duration::from_millis(300),
                "/health took {} ms to answer while /crunch was computing; expected a few ms \
                 (limit 300 ms).\n\
                 CPU-heavy work keeps its thread until it is done: is it blocking the runtime's \
                 own thread?\n\
                 Read: {CHAPTER}#cpu-bound-work",
                health.elapsed.as_millis()
            );
            if health.json()["in_flight"] == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "/crunch finished before /health could answer while it ran; expected /health to \
             answer at once.\n\
             Is the CPU work blocking the runtime?\n\
             Read: {CHAPTER}#cpu-bound-work"
        );
    })
    .await;
}

/// `/crunch` still does its work, wherever it runs: a short one answers its
/// checksum.
#[tokio::test]
async fn crunch_answers_with_a_checksum() {
    let server = TestServer::start_current_thread(blocking::app());
    let reply = within(LIMIT, "GET /crunch", get(&server.url("/crunch?ms=50"))).await;
    assert!(
        reply.status == 200 && reply.body.starts_with("checksum "),
        "GET /crunch?ms=50 answered {} {:?}; expected 200 \"checksum ...\".\n\
         Read: {CHAPTER}#cpu-bound-work",
        reply.status,
        reply.body
    );
}

/// On an idle server the only request in flight is the `/health` request
/// itself: every request is counted in once and out once.
#[tokio::test]
async fn idle_health_reports_only_itself() {
    let server = TestServer::start_current_thread(blocking::app());
    let reply = within(LIMIT, "GET /health", get(&server.url("/health"))).await;
    assert!(
        reply.status == 200,
        "GET /health answered {} {:?}; expected 200 OK.\n\
         Read: {CHAPTER}#the-health-endpoint",
        reply.status,
        reply.body
    );
    let report = reply.json();
    assert!(
        report["status"] == "ok" && report["in_flight"] == 1,
        "/health on an idle server reported {report}; expected \"status\": \"ok\" and \
         \"in_flight\": 1 (the /health request itself).\n\
         Is every request counted in once and out once?\n\
         Read: {CHAPTER}#the-health-endpoint"
    );
}

/// Stretch (opt in with `cargo test -p blocking -- --ignored stretch_`): CPU
/// work moved off the runtime still competes for the machine's cores, and the
/// pool that runs it grows to hundreds of threads. A burst of computations
/// then slows every one of them down, and the host with them. Run at most 2 at
/// once (the others wait their turn), and let `/health` report how many are
/// `computing` right now, so that an operator can see the queue. The
/// reference solution does neither; it is yours to add.
#[tokio::test]
#[ignore = "stretch: at most 2 /crunch computations at once, and /health reports `computing`"]
async fn stretch_cpu_work_is_capped_and_reported() {
    let server = TestServer::start_current_thread(blocking::app());
    let client = Client::new();
    let crunch_url = server.url("/crunch?ms=300");
    let health_url = server.url("/health");

    within(
        LIMIT,
        "6 concurrent /crunch, and /health meanwhile",
        async {
            let six = tokio::spawn(burst(6, move |_| client.get(&crunch_url)));
            let mut most_computing = 0;
            while !six.is_finished() {
                let report = get(&health_url).await.json();
                let computing = report["computing"].as_u64().unwrap_or_else(|| {
                    panic!(
                        "/health reported {report} while 6 /crunch requests ran; expected a \
                     `computing` field: how many computations run right now."
                    )
                });
                most_computing = most_computing.max(computing);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let six = six.await.expect("the /crunch requests");
            assert!(
                six.statuses() == vec![200; 6],
                "6 concurrent GET /crunch?ms=300 answered {:?}; expected 200 for every one: \
             the ones beyond the cap wait their turn, they are not refused.",
                six.statuses()
            );
            assert!(
                most_computing == 2,
                "with 6 concurrent GET /crunch?ms=300, /health reported at most {most_computing} \
             computing at once; expected exactly 2 (the cap, reached)."
            );
        },
    )
    .await;
}
