//! The checks of lab 10, run with `cargo test -p graceful-shutdown`.
//!
//! Shutdown is seen from outside the process, so most tests start the lab's
//! real binary (`--port 0`), read the address it prints, load it with
//! requests, streams or a half-sent request, send it a real signal and
//! watch what the clients get and how the process ends. Dropping the
//! `LabProcess` kills it, pass or fail: no server outlives a test.
//!
//! A few run the lab's `serve` in the test's own process, as `main` runs it
//! (on a runtime of its own, dropped as soon as `serve` returns), with a
//! shutdown future the test completes when it chooses: whether `serve`
//! stops when, and only when, that future says so, is seen there without
//! any signal.
//!
//! Signals are Unix: on Windows this file has no tests (Ctrl-C there reaches
//! every process of the console, the test runner included).
#![cfg(unix)]

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use graceful_shutdown::serve;
use lab_support::client::{Reply, try_send};
use lab_support::process::LabProcess;
use lab_support::{TestServer, eventually, lab_binary, within};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where the chapter explains what each test looks for.
const BOOK: lab_support::Chapter = lab_support::Chapter::page("10-graceful-shutdown.html");

/// Generous time for a test's steps, on a busy 2-core machine.
const STEP: Duration = Duration::from_secs(5);
/// A shutdown timeout longer than any test waits: in a test that uses it,
/// whatever finishes did so because the server let it, not because the
/// deadline cut it.
const LONG_DEADLINE: Duration = Duration::from_secs(10);
/// A short shutdown timeout, for the tests about the deadline itself.
const SHORT_DEADLINE: Duration = Duration::from_millis(300);
/// How long the slow requests of most tests take: well within
/// `LONG_DEADLINE`, so a correct server always answers them, and long past
/// the moment the signal arrives, so they are surely in flight then.
const WORK_MS: u64 = 300;

/// Starts the lab's server on a free port with the given shutdown timeout.
async fn start_server(shutdown_timeout: Duration) -> LabProcess {
    let mut command = Command::new(lab_binary!("graceful-shutdown"));
    let seconds = shutdown_timeout.as_secs_f64().to_string();
    command
        .args(["--port", "0", "--shutdown-timeout", &seconds])
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

/// Sends `GET /work?ms=…` to the server at `base` (`http://127.0.0.1:PORT`)
/// in a task of its own, so the test can stop the server while the request
/// is in flight.
fn start_request(base: &str, client: &Client, ms: u64) -> JoinHandle<Result<Reply, String>> {
    let request = client.get(format!("{base}/work?ms={ms}"));
    tokio::spawn(async move { try_send(request).await.map_err(|e| describe_error(&e)) })
}

/// Waits until the server at `base` says `in_flight` slow requests are
/// running, so a stop asked next finds them in flight.
async fn wait_for_in_flight(base: &str, client: &Client, in_flight: u64) {
    let health = format!("{base}/health");
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

/// Whether a new connection to the server at `base` is accepted and
/// answered (`GET /health` on a client of its own, within 500 ms).
async fn answers_new_connections(base: &str) -> bool {
    let fresh = Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_millis(500))
        .build()
        .expect("build a client");
    fresh
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|reply| reply.status().is_success())
}

/// The suspect when a server is still running after a signal: if it still
/// accepts and answers new connections, it never began to shut down, and
/// whatever else a test saw follows from that.
async fn never_began_to_stop(server: &mut LabProcess, signal: &str) -> Option<String> {
    let running = server.is_running();
    (running && answers_new_connections(&server.url("")).await).then(|| {
        format!(
            "The server never began to shut down: after {signal} it still accepts new \
             connections and answers them. Does anything in it act on the signal?"
        )
    })
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
/// 10 s deadline and the requests need 300 ms, so each must get its 200.
///
/// Then, with nothing left in flight, the process must exit. A server that
/// catches the signal and does nothing with it answers every request too,
/// because it never stops: the test tells that apart, by whether it still
/// takes new connections.
#[tokio::test]
async fn requests_in_flight_when_sigterm_arrives_complete_with_200() {
    let mut server = start_server(LONG_DEADLINE).await;
    let client = Client::new();
    let base = server.url("");
    let requests: Vec<_> = (0..4)
        .map(|_| start_request(&base, &client, WORK_MS))
        .collect();
    wait_for_in_flight(&base, &client, 4).await;

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
    // Nothing is left in flight: a stopping server exits at once.
    let after_work = Duration::from_secs(3);
    let status = server.exit_within(after_work).await;
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
    if status.is_none() {
        let suspect = match never_began_to_stop(&mut server, "SIGTERM").await {
            Some(suspect) => suspect,
            None => "It refuses new connections, yet waits: for what, with nothing in flight?"
                .to_owned(),
        };
        panic!(
            "the 4 requests in flight when SIGTERM arrived were answered 200, but the server is \
             still running {after_work:?} after the last of them, with nothing left in flight; \
             expected it to exit once they were answered.\n\
             {suspect}\n\
             Read: {BOOK}#what-a-graceful-shutdown-does{}",
            log_of(&server)
        );
    }
}

/// Once a shutdown begins, the server must stop taking new connections:
/// the load balancer is sending new clients elsewhere, and a request
/// accepted now may be cut by the deadline. A connection to the closed port
/// is refused at once, so the client retries elsewhere instead of waiting.
#[tokio::test]
async fn new_connections_are_refused_once_shutdown_begins() {
    let mut server = start_server(LONG_DEADLINE).await;
    let client = Client::new();
    let base = server.url("");
    // Keeps the server busy shutting down for the whole test.
    let _in_flight = start_request(&base, &client, 4000);
    wait_for_in_flight(&base, &client, 1).await;

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
         began. Something still listens on the port: a listener kept open while the server \
         stops, or a server that never began to stop at all (then \
         requests_in_flight_when_sigterm_arrives_complete_with_200 says so too).\n\
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
            "the event stream was still open {patience:?} after SIGTERM (the deadline is \
             {LONG_DEADLINE:?}): nothing told it to end"
        ),
    };
    let status = server.exit_within(Duration::from_millis(200)).await;
    let suspect = match never_began_to_stop(&mut server, "SIGTERM").await {
        Some(suspect) => suspect,
        None => "Expected the server to end its open streams itself, cleanly, as soon as it \
                 begins to stop."
            .to_owned(),
    };
    panic!(
        "{outcome}; the server {}.\n{suspect}\n\
         Read: {BOOK}#streams-and-half-sent-requests{}",
        how_it_ended(status),
        log_of(&server)
    );
}

/// A client that sent half its request headers and went quiet holds its
/// connection open: the server is still waiting for the rest, and a request
/// that never arrives never finishes. It must not hold the shutdown past the
/// deadline (300 ms here).
#[tokio::test]
async fn a_half_sent_request_does_not_hold_shutdown_past_the_deadline() {
    let mut server = start_server(SHORT_DEADLINE).await;
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
        let suspect = never_began_to_stop(&mut server, "SIGTERM")
            .await
            .unwrap_or_else(|| {
                if closed {
                    "It closed the half-sent request's connection, yet did not exit: what else \
                     does it wait for?"
                        .to_owned()
                } else {
                    "It is waiting for a client that sent half its request headers.".to_owned()
                }
            });
        panic!(
            "the server {} {limit:?} after SIGTERM, with a {SHORT_DEADLINE:?} shutdown timeout; \
             expected it to exit by the deadline whatever its clients do.\n{suspect}\n\
             Read: {BOOK}#the-deadline{}",
            how_it_ended(status),
            log_of(&server)
        );
    }
}

/// What Kubernetes and systemd read: after SIGTERM, the process exits with
/// status 0 (a clean stop, not a crash) by its deadline, even when a request
/// would run past it (60 s here, against a 300 ms deadline).
#[tokio::test]
async fn the_process_exits_0_within_the_deadline() {
    let mut server = start_server(SHORT_DEADLINE).await;
    let client = Client::new();
    let base = server.url("");
    let _too_long = start_request(&base, &client, 60_000);
    wait_for_in_flight(&base, &client, 1).await;

    server.terminate();
    let signalled = Instant::now();
    let limit = SHORT_DEADLINE + Duration::from_secs(4);
    let status = server.exit_within(limit).await;
    let took = signalled.elapsed();
    if status.is_some_and(|s| s.success()) {
        return;
    }
    let suspect = never_began_to_stop(&mut server, "SIGTERM")
        .await
        .map(|suspect| suspect + "\n")
        .unwrap_or_default();
    panic!(
        "after SIGTERM, with a request in flight that needs 60 s and a {SHORT_DEADLINE:?} \
         shutdown timeout, the server {} (after {took:.1?}); expected exit status 0 by the \
         deadline.\n{suspect}\
         Read: {BOOK}#the-deadline{}",
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
    let base = server.url("");
    let requests: Vec<_> = (0..2)
        .map(|_| start_request(&base, &client, WORK_MS))
        .collect();
    wait_for_in_flight(&base, &client, 2).await;

    server.interrupt();
    let mut outcomes = Vec::new();
    for request in requests {
        match within(STEP, "the requests in flight to end", request).await {
            Ok(Ok(reply)) => outcomes.push(format!("{}", reply.status)),
            Ok(Err(error)) => outcomes.push(format!("cut off ({error})")),
            Err(panicked) => panic!("a request task failed: {panicked}"),
        }
    }
    let status = server.exit_within(Duration::from_secs(3)).await;
    let graceful =
        outcomes.iter().all(|o| o.starts_with("200")) && status.is_some_and(|s| s.success());
    if graceful {
        return;
    }
    let suspect = never_began_to_stop(&mut server, "SIGINT")
        .await
        .map(|suspect| suspect + "\n")
        .unwrap_or_default();
    panic!(
        "after Ctrl-C (SIGINT) the 2 requests in flight got [{}] and the server {}; expected \
         both to answer 200 and the server to exit with status 0, as after SIGTERM.\n{suspect}\
         Read: {BOOK}#signals{}",
        outcomes.join(", "),
        how_it_ended(status),
        log_of(&server)
    );
}

// In process: the lab's `serve`, with a shutdown future the test controls.

/// How long the in-process servers' deadline is: short, so that a test can
/// serve for longer than the deadline before it asks the server to stop.
const IN_PROCESS_DEADLINE: Duration = Duration::from_millis(400);
/// How long the in-process tests' slow requests take: well within the deadline.
const QUICK_WORK_MS: u64 = 150;
/// How long the second in-process server serves before it is asked to stop:
/// well past its deadline.
const SERVE_PAST_DEADLINE: Duration = Duration::from_millis(600);

/// The lab's `serve`, run as `main` runs it: on a runtime of its own, which
/// is dropped (closing every connection still open) as soon as `serve`
/// returns. It stops when the test says so, and only then: no signal.
struct InProcess {
    server: TestServer,
    started: Instant,
    stop: Option<oneshot::Sender<()>>,
    /// When `serve` returned, once it has.
    returned: Arc<OnceLock<Instant>>,
}

impl InProcess {
    fn start(deadline: Duration) -> InProcess {
        let (stop, asked) = oneshot::channel::<()>();
        let returned = Arc::new(OnceLock::new());
        let noted = returned.clone();
        let server = TestServer::start_serving(move |listener| async move {
            let shutdown = async {
                let _ = asked.await;
            };
            let served = serve(listener, shutdown, deadline).await;
            let _ = noted.set(Instant::now());
            served
        });
        InProcess {
            server,
            started: Instant::now(),
            stop: Some(stop),
            returned,
        }
    }

    /// `http://127.0.0.1:PORT`.
    fn base(&self) -> String {
        self.server.url("")
    }

    /// Completes the shutdown future `serve` was given.
    fn ask_to_stop(&mut self) -> Instant {
        let asked = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        asked
    }

    /// When `serve` returned, if it has.
    fn returned(&self) -> Option<Instant> {
        self.returned.get().copied()
    }
}

/// What became of a server that was asked to stop with a request in flight.
struct Stopped {
    /// How long it had served when asked.
    up_for: Duration,
    /// `serve` returned, or stopped answering, this long after it started,
    /// with nobody asking it to stop.
    ended_unasked: Option<Duration>,
    /// The request's status, or how it was cut off.
    request: Result<StatusCode, String>,
    /// How long after the stop `serve` returned, if it did in time.
    returned_after: Option<Duration>,
    /// Whether it still answered a new connection after the stop.
    still_answers: bool,
}

/// Serves with a 400 ms deadline for `serve_first` (watching, every 50 ms,
/// that it still answers), then starts a 150 ms request and asks `serve` to
/// stop while the request runs.
async fn stop_with_a_request_in_flight(serve_first: Duration) -> Stopped {
    let mut server = InProcess::start(IN_PROCESS_DEADLINE);
    let client = Client::new();
    let base = server.base();
    let mut ended_unasked = None;
    while server.started.elapsed() < serve_first {
        let answered = try_send(client.get(format!("{base}/health"))).await.is_ok();
        if server.returned().is_some() || !answered {
            ended_unasked = Some(server.started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let up_for = server.started.elapsed();
    if ended_unasked.is_some() {
        return Stopped {
            up_for,
            ended_unasked,
            request: Err("not sent".to_owned()),
            returned_after: None,
            still_answers: false,
        };
    }
    let request = start_request(&base, &client, QUICK_WORK_MS);
    wait_for_in_flight(&base, &client, 1).await;
    let asked = server.ask_to_stop();
    let request = match within(STEP, "the request in flight to end", request).await {
        Ok(Ok(reply)) => Ok(reply.status),
        Ok(Err(error)) => Err(error),
        Err(panicked) => panic!("the request task failed: {panicked}"),
    };
    let limit = IN_PROCESS_DEADLINE + Duration::from_millis(1500);
    eventually(limit, || server.returned().is_some()).await;
    let returned_after = server.returned().map(|at| at.duration_since(asked));
    let still_answers = returned_after.is_none() && answers_new_connections(&base).await;
    Stopped {
        up_for,
        ended_unasked,
        request,
        returned_after,
        still_answers,
    }
}

/// A server is asked to stop while a 150 ms request runs: it must answer
/// it (the deadline is 400 ms), then return. Two such servers, at once: one
/// asked right away, and one that has first served for longer than its
/// deadline. The deadline is the longest a *shutdown* may take, so it counts
/// from the moment the server is asked to stop, however long it has run:
/// the second must neither end by itself before it is asked, nor cut the
/// request when it is.
///
/// Both are asked through the shutdown future `serve` is given, not a
/// signal: a `serve` that ignores it never stops here.
#[tokio::test]
async fn a_server_up_longer_than_its_deadline_still_finishes_requests_in_flight() {
    within(STEP * 2, "two servers to stop", async {
        let (at_once, later) = tokio::join!(
            stop_with_a_request_in_flight(Duration::ZERO),
            stop_with_a_request_in_flight(SERVE_PAST_DEADLINE)
        );
        if let Some(ended) = later.ended_unasked {
            panic!(
                "`serve` stopped serving {ended:.1?} after it started, with a deadline of \
                 {IN_PROCESS_DEADLINE:?}, though nobody asked it to stop: its shutdown future \
                 had not completed, and no signal came. Expected it to serve until asked, \
                 however long that is.\n\
                 Something in `serve` ends on its own: is the deadline counted from the start \
                 of serving rather than from the request to stop?\n\
                 Read: {BOOK}#the-deadline"
            );
        }
        for stopped in [&at_once, &later] {
            if stopped.still_answers {
                panic!(
                    "`serve` was asked to stop (its shutdown future completed), and {:?} later \
                     it had not returned, and still accepted and answered a new connection: \
                     it never began to shut down.\n\
                     Does `serve` wait for the future it is given, or for something else?\n\
                     Read: {BOOK}#what-a-graceful-shutdown-does",
                    IN_PROCESS_DEADLINE + Duration::from_millis(1500)
                );
            }
        }
        let returned = |stopped: &Stopped| match stopped.returned_after {
            Some(after) => format!("`serve` returned {after:.1?} after it was asked to stop"),
            None => "`serve` had not returned 2 s after it was asked to stop".to_owned(),
        };
        match (&at_once.request, &later.request) {
            (Ok(StatusCode::OK), Ok(StatusCode::OK)) => {}
            (Ok(StatusCode::OK), Err(cut)) => panic!(
                "a server asked to stop at once answered its request in flight, but one that \
                 had first served for {:.1?}, longer than its {IN_PROCESS_DEADLINE:?} deadline, \
                 cut its {QUICK_WORK_MS} ms request off ({cut}): {}. Expected both to answer \
                 200: the deadline counts from the request to stop.\n\
                 Is the deadline's clock started when serving starts, rather than when the \
                 stop is asked for?\n\
                 Read: {BOOK}#the-deadline",
                later.up_for,
                returned(&later)
            ),
            (first, second) => {
                let cut = [first, second]
                    .into_iter()
                    .find_map(|outcome| match outcome {
                        Ok(status) => (*status != StatusCode::OK).then(|| format!("{status}")),
                        Err(error) => Some(error.clone()),
                    })
                    .unwrap_or_default();
                panic!(
                    "a {QUICK_WORK_MS} ms request in flight when `serve` was asked to stop was \
                     cut off ({cut}): {}. Expected its 200: the deadline is \
                     {IN_PROCESS_DEADLINE:?}, and returning from `serve` drops every \
                     connection still open.\n\
                     Does `serve` wait for the requests in flight before it returns?\n\
                     Read: {BOOK}#what-a-graceful-shutdown-does",
                    returned(&at_once)
                );
            }
        }
        for stopped in [&at_once, &later] {
            assert!(
                stopped.returned_after.is_some(),
                "{}, with nothing left in flight and a deadline of {IN_PROCESS_DEADLINE:?}; \
                 it refuses new connections, so it began to stop. Expected it to return once \
                 its request was answered, and by the deadline at the latest.\n\
                 What does it still wait for?\n\
                 Read: {BOOK}#the-deadline",
                returned(stopped)
            );
        }
    })
    .await;
}

/// `/health` is what an operator reads while a server stops: how many slow
/// requests and streams are open. Each must be counted while it is open,
/// and counted out when it ends, however it ends (a stream whose client
/// leaves, a request answered): a count that never falls back to zero shows
/// a server busy with nothing.
#[tokio::test]
async fn health_counts_what_is_open_and_forgets_what_has_ended() {
    let server = InProcess::start(LONG_DEADLINE);
    let base = server.base();
    within(STEP, "streams and a request, then /health", async {
        let mut streams = Vec::new();
        for _ in 0..2 {
            let mut stream = Client::new()
                .get(format!("{base}/events"))
                .send()
                .await
                .expect("GET /events");
            stream.chunk().await.expect("the first event");
            streams.push(stream);
        }
        let client = Client::new();
        let request = start_request(&base, &client, 300);
        wait_for_in_flight(&base, &client, 1).await;
        let health = || async {
            try_send(client.get(format!("{base}/health")))
                .await
                .map(|reply| reply.json())
                .unwrap_or(Value::Null)
        };
        let open = health().await;
        assert!(
            open["streams"] == 2 && open["in_flight"] == 1,
            "GET /health said {open} with 2 event streams open and 1 slow request running; \
             expected \"streams\": 2 and \"in_flight\": 1.\n\
             Is each stream and each request counted once, for as long as it is open?\n\
             Read: {BOOK}#in-go-in-rust"
        );
        drop(streams);
        let _ = request.await;
        let patience = Duration::from_secs(2);
        let mut last = Value::Null;
        let watch = async {
            loop {
                last = health().await;
                if last["streams"] == 0 && last["in_flight"] == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let cleared = tokio::time::timeout(patience, watch).await.is_ok();
        assert!(
            cleared,
            "GET /health still said {last} {patience:?} after both event streams were closed \
             by their clients and the slow request was answered; expected \"streams\": 0 and \
             \"in_flight\": 0.\n\
             Is each count given back when its stream or request ends, however it ends?\n\
             Read: {BOOK}#in-go-in-rust"
        );
    })
    .await;
}
