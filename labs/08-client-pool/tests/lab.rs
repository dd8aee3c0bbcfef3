//! The checks of lab 08, run with `cargo test -p client-pool`.
//!
//! Each test starts a counting upstream (`lab_support::upstream::Upstream`)
//! and the lab's proxy in front of it, sends requests to the proxy like a user
//! would, and then asks the upstream what it saw: how many TCP connections it
//! accepted, how many calls ran at once, which answers were abandoned half-sent.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use client_pool::{Config, app};
use lab_support::client::{burst, send};
use lab_support::upstream::Upstream;
use lab_support::{TestServer, within};
use reqwest::Client;

/// The proxy's deadline for one upstream call, short so that tests are fast.
const DEADLINE: Duration = Duration::from_millis(200);
/// How many calls the proxy may make to the upstream at once.
const MAX_UPSTREAM_CALLS: usize = 4;
/// No test may take longer than this, whatever the starter does.
const LIMIT: Duration = Duration::from_secs(10);

/// The lab's proxy, in front of `upstream` (any base URL).
fn proxy_to(upstream: String) -> TestServer {
    TestServer::start(app(Config {
        upstream,
        deadline: DEADLINE,
        max_upstream_calls: MAX_UPSTREAM_CALLS,
    }))
}

#[tokio::test]
async fn the_proxy_relays_the_upstream_answer() {
    let upstream = Upstream::start();
    let proxy = proxy_to(upstream.url(""));
    let client = Client::new();
    within(LIMIT, "three proxied requests", async {
        for (path, status, body) in [
            ("/proxy/ok", 200, "ok"),
            ("/proxy/slow/50", 200, "slow ok"),
            ("/proxy/fail", 500, "upstream failure"),
        ] {
            let reply = send(client.get(proxy.url(path))).await;
            assert_eq!(
                (reply.status.as_u16(), reply.body.as_str()),
                (status, body),
                "GET {path} should relay the upstream's status and body (the deadline is {DEADLINE:?})"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn twenty_proxied_requests_reuse_a_few_upstream_connections() {
    let upstream = Upstream::start();
    let proxy = proxy_to(upstream.url(""));
    let client = Client::new();
    within(LIMIT, "20 proxied requests, one after another", async {
        for _ in 0..20 {
            let reply = send(client.get(proxy.url("/proxy/ok"))).await;
            assert_eq!(
                reply.status, 200,
                "GET /proxy/ok answered {}: {}",
                reply.status, reply.body
            );
        }
    })
    .await;
    let opened = upstream.connections();
    assert!(
        opened <= 3,
        "20 proxied requests, one after another, opened {opened} TCP connections to the upstream; \
         expected a few at most (≤ 3): a client keeps finished connections in its pool and reuses \
         them. Is a new `reqwest::Client` built for every request? Each one has its own, empty \
         pool. (chapter 08, 'One client for the whole server')"
    );
}

#[tokio::test]
async fn a_hung_upstream_answers_504_within_the_deadline() {
    let upstream = Upstream::start();
    let proxy = proxy_to(upstream.url(""));
    let client = Client::new();
    // Long enough for any reasonable overhead, short enough to fail fast.
    let patience = DEADLINE * 3;
    let reply = within(LIMIT, "GET /proxy/hang", async {
        tokio::time::timeout(patience, send(client.get(proxy.url("/proxy/hang")))).await
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "GET /proxy/hang got no answer in {patience:?}, though the proxy's deadline \
             (`Config::deadline`) is {DEADLINE:?}: it is still waiting for an upstream that accepted \
             the connection and will never answer. Does the call to the upstream have a timeout? \
             (`connect_timeout` alone is not enough: connecting went fine.) (chapter 08, 'Timeouts')"
        )
    });
    assert_eq!(
        reply.status, 504,
        "GET /proxy/hang answered {} after {:.2?} ({:?}); expected 504 Gateway Timeout: the \
         upstream, not this server, failed to answer in time (500 says 'this server broke', 502 \
         'the upstream answered badly'). Answer 504 when the deadline passes: with reqwest's own \
         timeout, for the errors whose `is_timeout()` is true; with `tokio::time::timeout`, for \
         its `Elapsed` error. (chapter 08, 'Timeouts')",
        reply.status, reply.elapsed, reply.body,
    );
}

#[tokio::test]
async fn an_unreachable_upstream_answers_502() {
    // A port that was free a moment ago: connecting to it is refused at once.
    let closed_port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = proxy_to(format!("http://127.0.0.1:{closed_port}"));
    let reply = within(
        LIMIT,
        "GET /proxy/ok with no upstream",
        send(Client::new().get(proxy.url("/proxy/ok"))),
    )
    .await;
    assert_eq!(
        reply.status, 502,
        "GET /proxy/ok with no upstream listening answered {} ({:?}); expected 502 Bad Gateway: \
         the call failed, and not by timing out",
        reply.status, reply.body,
    );
}

#[tokio::test]
async fn status_checks_read_the_body_so_the_connection_is_reused() {
    const CHECKS: usize = 5;
    let upstream = Upstream::start();
    let proxy = proxy_to(upstream.url(""));
    let client = Client::new();
    // Two lines, 60 ms apart: the body is still arriving when the status is known.
    let path = "/check/stream/2/60";
    within(LIMIT, "5 status checks, one after another", async {
        for _ in 0..CHECKS {
            let reply = send(client.get(proxy.url(path))).await;
            assert_eq!(
                reply.status, 200,
                "GET {path} answered {}: {}",
                reply.status, reply.body
            );
            assert_eq!(
                reply.json()["status"],
                200,
                "GET {path} should report the upstream's status 200"
            );
        }
    })
    .await;
    let opened = upstream.connections();
    if opened > 3 {
        let diagnosis = how_the_bodies_ended(&upstream, CHECKS).await;
        panic!(
            "{CHECKS} status checks, one after another, opened {opened} TCP connections to the \
             upstream; expected a few at most (≤ 3). A connection goes back to the pool only once \
             its response body has been read to the end. {diagnosis} (chapter 08, 'Read the body')"
        );
    }
}

/// Why `calls` calls to `/stream/..` did not reuse connections, as the
/// upstream saw it: were the bodies sent to the end, or abandoned half-sent?
async fn how_the_bodies_ended(upstream: &Upstream, calls: usize) -> String {
    within(
        LIMIT,
        "the upstream to finish or abandon its answers",
        async {
            while upstream.streams_completed() + upstream.streams_abandoned() < calls {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        },
    )
    .await;
    match upstream.streams_abandoned() {
        0 => "The upstream sent every body to the end, so the bodies are read: is a new \
              `reqwest::Client` built for every request?"
            .to_string(),
        abandoned => format!(
            "The upstream saw {abandoned} of its {calls} answers abandoned half-sent: `/check` \
             drops the response before reading its body to the end, and dropping a response \
             whose body has not fully arrived closes its connection. Read (or drain) the body, \
             even unused."
        ),
    }
}

#[tokio::test]
async fn at_most_the_configured_calls_reach_the_upstream_at_once() {
    let upstream = Upstream::start();
    let proxy = proxy_to(upstream.url(""));
    let client = Client::new();
    let requests = 2 * MAX_UPSTREAM_CALLS;
    let started = Instant::now();
    let replies = within(
        LIMIT,
        "8 concurrent proxied requests",
        burst(requests, |_| client.get(proxy.url("/proxy/slow/100"))),
    )
    .await;
    assert_eq!(
        replies.count(reqwest::StatusCode::OK),
        requests,
        "every proxied request should succeed: {:?}",
        replies.statuses()
    );
    let most = upstream.max_in_flight();
    assert!(
        most <= MAX_UPSTREAM_CALLS,
        "{requests} concurrent proxied requests made {most} calls to the upstream at once (in {:.2?}); \
         expected at most {MAX_UPSTREAM_CALLS} (`Config::max_upstream_calls`). reqwest has no \
         per-host connection limit: is every call made while holding a turn of the semaphore? \
         (chapter 08, 'No limit per host')",
        started.elapsed()
    );
}
