//! The checks of lab 10, run with `cargo test -p graceful-shutdown`.
//!
//! Shutdown is seen from outside the process, so every test starts the lab's
//! real binary (`--port 0`), reads the address it prints, loads it with
//! requests, streams or a half-sent request, sends it a real signal and
//! watches what the clients get and how the process ends. Dropping the
//! `LabProcess` kills it, pass or fail: no server outlives a test.
//!
//! Signals are Unix: on Windows this file has no tests (Ctrl-C there reaches
//! every process of the console, the test runner included).
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use lab_support::client::{Reply, try_send};
use lab_support::lab_binary;
use lab_support::process::LabProcess;
use lab_support::within;
use reqwest::{Client, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Where the chapter explains what each test looks for.
const BOOK: &str = "http://127.0.0.1:3000/10-graceful-shutdown.html";

/// Generous time for a test's steps, on a busy 2-core machine.
const STEP: Duration = Duration::from_secs(5);
/// A shutdown timeout longer than any test waits: in a test that uses it,
/// whatever finishes did so because the server let it, not because the
/// deadline cut it.
const LONG_DEADLINE: &str = "10";
/// A short shutdown timeout, for the tests about the deadline itself.
const SHORT_DEADLINE: Duration = Duration::from_secs(1);

/// Starts the lab's server on a free port with the given shutdown timeout
/// (in seconds).
async fn start_server(shutdown_timeout: &str) -> LabProcess {
    let mut command = Command::new(lab_binary!("graceful-shutdown"));
    command
        .args(["--port", "0", "--shutdown-timeout", shutdown_timeout])
        .env("RUST_LOG", "info")
        .env_remove("PORT")
        .env_remove("SHUTDOWN_TIMEOUT")
        .env_remove("TOKIO_CONSOLE");
    within(
        STEP,
        "the lab's server to start",
        LabProcess::start(&mut command),
    )
    .await
}

/// Sends `GET /work?ms=…` in a task of its own, so the test can signal the
/// server while the request is in flight.
fn start_request(
    server: &LabProcess,
    client: &Client,
    ms: u64,
) -> JoinHandle<Result<Reply, String>> {
    let request = client.get(server.url(&format!("/work?ms={ms}")));
    tokio::spawn(async move { try_send(request).await.map_err(|e| describe_error(&e)) })
}

/// Waits until the server says `in_flight` slow requests are running, so a
/// signal sent next finds them in flight.
async fn wait_for_in_flight(server: &LabProcess, client: &Client, in_flight: u64) {
    let health = server.url("/health");
    within(STEP, "the requests to reach the server", async {
        loop {
            if let Ok(reply) = try_send(client.get(&health)).await
                && reply.json()["in_flight"].as_u64() == Some(in_flight)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// How a transport error looks to a client, in a few words: the innermost
/// cause (`connection closed before message completed`, say).
fn describe_error(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// How the process ended, or that it has not, in words for a failure message.
fn how_it_ended(status: Option<ExitStatus>) -> String {
    match status {
        None => "is still running".to_owned(),
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(15)) => {
                "was killed by SIGTERM at once: nothing in it caught the signal".to_owned()
            }
            (None, Some(2)) => {
                "was killed by SIGINT at once: nothing in it caught the signal".to_owned()
            }
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            (None, None) => format!("ended ({status})"),
        },
    }
}

/// The server's own log, indented, for the end of a failure message.
fn log_of(server: &LabProcess) -> String {
    let log: String = server
        .output()
        .lines()
        .map(|l| format!("\n    {l}"))
        .collect();
    format!("\nThe server's log:{log}")
}

/// Requests already running when SIGTERM arrives are the ones a shutdown
/// must not lose: their clients are waiting for an answer. The server has a
/// 10 s deadline and the requests need 1 s, so each must get its 200.
#[tokio::test]
async fn requests_in_flight_when_sigterm_arrives_complete_with_200() {
    let mut server = start_server(LONG_DEADLINE).await;
    let client = Client::new();
    let requests: Vec<_> = (0..4)
        .map(|_| start_request(&server, &client, 1000))
        .collect();
    wait_for_in_flight(&server, &client, 4).await;

    server.terminate();
    let mut cut = Vec::new();
    for request in requests {
        match within(STEP, "the requests in flight to end", request).await {
            Ok(Ok(reply)) if reply.status == StatusCode::OK => {}
            Ok(Ok(reply)) => cut.push(format!("answered {}", reply.status)),
            Ok(Err(error)) => cut.push(error),
            Err(panicked) => panic!("a request task failed: {panicked}"),
        }
    }
    let status = server.exit_within(STEP).await;
    assert!(
        cut.is_empty(),
        "{} of 4 requests in flight when SIGTERM arrived were cut off instead of answering 200 \
         (first: {}); the server {}. Expected every request already running to finish.\n\
         Read: {BOOK}#see-the-bug{}",
        cut.len(),
        cut[0],
        how_it_ended(status),
        log_of(&server)
    );
}

/// Once a shutdown begins, the server must stop taking new connections:
/// the load balancer is sending new clients elsewhere, and a request
/// accepted now may be cut by the deadline. A connection to the closed port
/// is refused at once, so the client retries elsewhere instead of waiting.
#[tokio::test]
async fn new_connections_are_refused_once_shutdown_begins() {
    let mut server = start_server(LONG_DEADLINE).await;
    let client = Client::new();
    // Keeps the server busy shutting down for the whole test.
    let _in_flight = start_request(&server, &client, 4000);
    wait_for_in_flight(&server, &client, 1).await;

    server.terminate();
    let signalled = Instant::now();
    let mut last = String::new();
    while signalled.elapsed() < Duration::from_secs(2) {
        let fresh = Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        match fresh.get(server.url("/health")).send().await {
            Err(error) if error.is_connect() => return, // refused: what a stopping server does
            Ok(reply) => {
                last = format!(
                    "a new connection was accepted and answered {}",
                    reply.status()
                )
            }
            Err(error) if error.is_timeout() => {
                last = "a new connection was accepted but never answered".to_owned();
            }
            Err(error) => last = describe_error(&error),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "2 s after SIGTERM, {last}; expected new connections to be refused once the shutdown \
         began. Something still listens on the port while the server stops.\n\
         Read: {BOOK}#what-a-graceful-shutdown-does{}",
        log_of(&server)
    );
}

/// An event stream never ends on its own, so a shutdown that only waits for
/// responses to finish waits for it until the deadline, and then cuts it.
/// The server must end the stream itself, cleanly, at once: the client sees
/// the end of the response and reconnects elsewhere.
#[tokio::test]
async fn an_open_event_stream_ends_soon_after_sigterm() {
    let mut server = start_server(LONG_DEADLINE).await;
    let mut stream = within(
        STEP,
        "GET /events to start",
        Client::new().get(server.url("/events")).send(),
    )
    .await
    .expect("GET /events");
    within(STEP, "the first event", stream.chunk())
        .await
        .expect("the first event");

    server.terminate();
    let patience = Duration::from_secs(3);
    let ended = tokio::time::timeout(patience, async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(error) => return Err(describe_error(&error)),
            }
        }
    })
    .await;
    let outcome = match ended {
        Ok(Ok(())) => return,
        Ok(Err(error)) => format!("the event stream was cut off ({error}) instead of ending"),
        Err(_) => format!(
            "the event stream was still open {} s after SIGTERM (the deadline is {LONG_DEADLINE} s): \
             nothing told it to end",
            patience.as_secs()
        ),
    };
    let status = server.exit_within(Duration::from_millis(200)).await;
    panic!(
        "{outcome}; the server {}. Expected the server to end its open streams itself, cleanly, \
         as soon as it begins to stop.\nRead: {BOOK}#streams-and-half-sent-requests{}",
        how_it_ended(status),
        log_of(&server)
    );
}

/// A client that sent half its request headers and went quiet holds its
/// connection open: the server is still waiting for the rest, and a request
/// that never arrives never finishes. It must not hold the shutdown past the
/// deadline (1 s here).
#[tokio::test]
async fn a_half_sent_request_does_not_hold_shutdown_past_the_deadline() {
    let mut server = start_server(&SHORT_DEADLINE.as_secs().to_string()).await;
    let mut stalled = within(STEP, "a connection", TcpStream::connect(server.addr()))
        .await
        .expect("connect");
    stalled
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("send half a request");
    // Let the server read those bytes, so it is waiting for the rest.
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.terminate();
    let limit = SHORT_DEADLINE + Duration::from_secs(4);
    let status = server.exit_within(limit).await;
    if status.is_none() {
        // Tell a hung server from one that closed the connection but lives on.
        let mut byte = [0_u8; 1];
        let closed = matches!(
            tokio::time::timeout(Duration::from_millis(100), stalled.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        );
        panic!(
            "the server {} {} s after SIGTERM, with a {} s shutdown timeout{}; expected it to \
             exit by the deadline whatever its clients do.\nRead: {BOOK}#the-deadline{}",
            how_it_ended(status),
            limit.as_secs(),
            SHORT_DEADLINE.as_secs(),
            if closed {
                " (it closed the half-sent request's connection, yet did not exit)"
            } else {
                ", waiting for a client that sent half its request headers"
            },
            log_of(&server)
        );
    }
}

/// What Kubernetes and systemd read: after SIGTERM, the process exits with
/// status 0 (a clean stop, not a crash) by its deadline, even when a request
/// would run past it (60 s here, against a 1 s deadline).
#[tokio::test]
async fn the_process_exits_0_within_the_deadline() {
    let mut server = start_server(&SHORT_DEADLINE.as_secs().to_string()).await;
    let client = Client::new();
    let _too_long = start_request(&server, &client, 60_000);
    wait_for_in_flight(&server, &client, 1).await;

    server.terminate();
    let signalled = Instant::now();
    let limit = SHORT_DEADLINE + Duration::from_secs(4);
    let status = server.exit_within(limit).await;
    let took = signalled.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "after SIGTERM, with a request in flight that needs 60 s and a {} s shutdown timeout, \
         the server {} (after {took:.1?}); expected exit status 0 by the deadline.\n\
         Read: {BOOK}#the-deadline{}",
        SHORT_DEADLINE.as_secs(),
        how_it_ended(status),
        log_of(&server)
    );
}

/// Ctrl-C in a terminal (SIGINT) is how a learner stops the server: it must
/// be as graceful as SIGTERM, requests in flight answered, exit status 0.
#[tokio::test]
async fn ctrl_c_stops_the_server_as_gracefully_as_sigterm() {
    let mut server = start_server(LONG_DEADLINE).await;
    let client = Client::new();
    let requests: Vec<_> = (0..2)
        .map(|_| start_request(&server, &client, 1000))
        .collect();
    wait_for_in_flight(&server, &client, 2).await;

    server.interrupt();
    let mut outcomes = Vec::new();
    for request in requests {
        match within(STEP, "the requests in flight to end", request).await {
            Ok(Ok(reply)) => outcomes.push(format!("{}", reply.status)),
            Ok(Err(error)) => outcomes.push(format!("cut off ({error})")),
            Err(panicked) => panic!("a request task failed: {panicked}"),
        }
    }
    let status = server.exit_within(STEP).await;
    let graceful =
        outcomes.iter().all(|o| o.starts_with("200")) && status.is_some_and(|s| s.success());
    assert!(
        graceful,
        "after Ctrl-C (SIGINT) the 2 requests in flight got [{}] and the server {}; expected \
         both to answer 200 and the server to exit with status 0, as after SIGTERM.\n\
         Read: {BOOK}#signals{}",
        outcomes.join(", "),
        how_it_ended(status),
        log_of(&server)
    );
}
