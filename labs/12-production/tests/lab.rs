//! The checks of lab 12, run with `cargo test -p production`.
//!
//! Each test is an attack a hostile (or just broken) client really makes,
//! over a real socket on 127.0.0.1: a body far too large, headers that never
//! end (or never start), a body that stops arriving, a thousand requests at
//! once, a flood from one address, a client that changes address, a report
//! that outruns its budget, and a shutdown with requests in flight. The server runs with limits small enough to see them
//! hold in seconds (`production::Config`), and counts what it does
//! (`production::Stats`): how much body it read, how many requests ran at
//! once, how far a report got.
//!
//! Every failure message says what was observed, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures::future::join_all;
use lab_support::client::{client_from, send, try_send};
use lab_support::{TestServer, eventually, within};
use production::{Config, Stats};
use reqwest::{Client, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("12-production.html");
/// Lab 04's chapter, where the per-address limit is taught.
const CHAPTER_04: lab_support::Chapter = lab_support::Chapter::page("04-middleware.html");

/// The largest body the tests' server accepts.
const MAX_BODY: usize = 64 * 1024;
/// The size of the oversized body: 10 MB.
const HUGE_BODY: usize = 10 * 1024 * 1024;
/// How long the tests' server lets a client take over its headers, or go
/// without sending a byte of its body.
const SHORT_WAIT: Duration = Duration::from_millis(200);
/// How long an attacker may hold a connection before the test calls it held
/// for good: more than seven times the timeout that should have cut it off.
const HELD_FOR_GOOD: Duration = Duration::from_millis(1500);

/// The tests' limits: small where a test needs to see one hold, generous
/// elsewhere (so that, say, the per-address limit stays out of the way of a
/// test about the concurrency limit).
fn config() -> Config {
    Config {
        max_body: MAX_BODY,
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        max_in_flight: 1000,
        per_ip_burst: 100_000,
        per_ip_per_minute: 100_000,
        trusted_proxies: Vec::new(),
        shutdown_deadline: Duration::from_secs(1),
    }
}

/// The lab's app, served by the lab's own `serve` (on a runtime and a thread
/// of its own, so that a server in trouble cannot freeze the test's client;
/// stopped, with every connection, when dropped), and what it counts.
fn start(config: Config) -> (TestServer, Stats) {
    let stats = Stats::default();
    let app = production::app(&config, stats.clone());
    let server = TestServer::start_serving(move |listener| async move {
        production::serve(listener, app, &config, std::future::pending()).await
    });
    (server, stats)
}

/// A server started with [`start_stoppable`]: the test decides when its
/// shutdown begins, and sees when `serve` returns.
struct Stoppable {
    server: TestServer,
    stats: Stats,
    /// Sending on it (or dropping it) completes the shutdown future given to `serve`.
    stop: Option<oneshot::Sender<()>>,
    /// Receives the moment `serve` returned.
    returned: oneshot::Receiver<Instant>,
}

impl Stoppable {
    /// Completes the shutdown future `serve` was given; returns when.
    fn ask_to_stop(&mut self) -> Instant {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        Instant::now()
    }
}

/// The lab's app, served by the lab's own `serve` with a shutdown future the
/// test completes ([`Stoppable::ask_to_stop`]), as a signal would.
fn start_stoppable(config: Config) -> Stoppable {
    let stats = Stats::default();
    let app = production::app(&config, stats.clone());
    let (stop, stop_asked) = oneshot::channel::<()>();
    let (done, returned) = oneshot::channel();
    let server = TestServer::start_serving(move |listener| async move {
        let shutdown = async move {
            let _ = stop_asked.await;
        };
        let result = production::serve(listener, app, &config, shutdown).await;
        let _ = done.send(Instant::now());
        result
    });
    Stoppable {
        server,
        stats,
        stop: Some(stop),
        returned,
    }
}

/// What came back to a raw client that sent something and then waited.
struct Outcome {
    /// The status of the answer, if one came.
    status: Option<u16>,
    /// When the server answered or closed the connection, if it did.
    cut_after: Option<Duration>,
}

/// Connects, sends `bytes`, and waits up to `patience` for the server to
/// answer or to close the connection, sending nothing more.
async fn send_and_stall(addr: SocketAddr, bytes: &[u8], patience: Duration) -> Outcome {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e} (is the server running?)"));
    stream.write_all(bytes).await.expect("send the first bytes");
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let cut = tokio::time::timeout(patience, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    received.extend_from_slice(&buffer[..n]);
                    if received.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    Outcome {
        status: status_of(&received),
        cut_after: cut.is_ok().then(|| started.elapsed()),
    }
}

/// The status code in the first line of a raw HTTP/1.1 response.
fn status_of(received: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(received);
    text.lines().next()?.split_whitespace().nth(1)?.parse().ok()
}

/// What happened to a raw client pushing a body of `total` bytes.
struct Pushed {
    status: Option<u16>,
    /// Bytes the client managed to hand to its socket before the answer (the
    /// kernel's buffers take a few MB of them without the server reading).
    written: usize,
}

/// `POST path` with `Content-Length: total`, then the body as fast as the
/// server takes it, until the server answers or closes the connection.
async fn push_body(addr: SocketAddr, path: &str, total: usize) -> Pushed {
    let stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e} (is the server running?)"));
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {total}\r\n\r\n"
    );
    writer
        .write_all(head.as_bytes())
        .await
        .expect("send the headers");
    let mut written = 0;
    let answer = async {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !received.contains(&b'\n') {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
        status_of(&received)
    };
    let push = async {
        let chunk = vec![b' '; 64 * 1024];
        while written < total {
            let size = chunk.len().min(total - written);
            match writer.write(&chunk[..size]).await {
                Ok(n) if n > 0 => written += n,
                _ => break,
            }
        }
        // All sent (or the server closed): now only the answer matters.
        std::future::pending::<()>().await;
    };
    let status = tokio::select! {
        status = answer => status,
        () = push => unreachable!("pushing never ends by itself"),
    };
    Pushed { status, written }
}

/// An answer's status, or that none came.
fn describe(status: Option<u16>) -> String {
    match status {
        Some(status) => status.to_string(),
        None => "no answer (the connection closed)".to_owned(),
    }
}

/// One answer of the overload test: its status, its `Retry-After` header,
/// and how long it took.
struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    elapsed: Duration,
}

impl From<lab_support::client::Reply> for Reply {
    fn from(reply: lab_support::client::Reply) -> Self {
        Reply {
            status: reply.status,
            retry_after: reply.header("retry-after").map(str::to_owned),
            elapsed: reply.elapsed,
        }
    }
}

/// A size in a unit read at a glance.
fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// The JSON of a report that takes `ms` milliseconds.
fn report_of(ms: u64) -> serde_json::Value {
    json!({ "ms": ms })
}

/// The happy path: a document is stored and listed, a short report is
/// built. Passes on the starter; must keep passing with every guard on.
#[tokio::test]
async fn documents_and_reports_work_on_a_good_day() {
    let (server, _) = start(config());
    let client = Client::new();
    within(Duration::from_secs(10), "the happy path", async {
        let stored = send(
            client
                .post(server.url("/documents"))
                .json(&json!({ "title": "hello", "text": "a small document" })),
        )
        .await;
        assert_eq!(
            stored.status,
            StatusCode::CREATED,
            "POST /documents with a small document answered {} {:?}; expected 201.\n\
             Read: {CHAPTER}#the-exercise",
            stored.status,
            stored.body
        );
        let listed = send(client.get(server.url("/documents"))).await;
        assert_eq!(
            listed.json()["titles"],
            json!(["hello"]),
            "GET /documents answered {:?}; expected the one title stored.",
            listed.body
        );
        let report = send(client.post(server.url("/report")).json(&report_of(100))).await;
        assert_eq!(
            report.status,
            StatusCode::OK,
            "a 100 ms report answered {} {:?}; expected 200.\n\
             Read: {CHAPTER}#the-exercise",
            report.status,
            report.body
        );
        assert!(
            report.header("x-request-id").is_some(),
            "a response came without an x-request-id header; every response carries one."
        );
    })
    .await;
}

/// A 10 MB body to each JSON route of a server whose limit is 64 KiB must be
/// refused with 413, and refused *before* it is read: the server counts the
/// body bytes its handlers read, and may read at most about the limit.
///
/// A limit that a handler's extractor enforces only after reading (axum's
/// own default is 2 MB, per extractor) reads far more than the limit; a
/// limit on one route leaves the others open.
#[tokio::test]
async fn an_oversized_body_is_refused_unread() {
    let (server, stats) = start(config());
    for path in ["/documents", "/report"] {
        let before = stats.body_bytes_read();
        let pushed = within(
            Duration::from_secs(10),
            &format!("the answer to a 10 MB POST {path}"),
            push_body(server.addr(), path, HUGE_BODY),
        )
        .await;
        let read = stats.body_bytes_read() - before;
        let slack = 64 * 1024;
        assert!(
            read <= (MAX_BODY + slack) as u64,
            "POST {path} with a 10 MB body: the server read {} of it before answering \
             (status: {}; the client had handed {} to its socket); expected 413 after reading at most about \
             the limit, {}.\n\
             Is the limit the one in `Config`, and does every route have it?\n\
             Read: {CHAPTER}#a-body-too-large",
            size(read),
            describe(pushed.status),
            size(pushed.written as u64),
            size(MAX_BODY as u64),
        );
        assert_eq!(
            pushed.status,
            Some(413),
            "POST {path} with a 10 MB body got status {} (the server read {} of it); expected \
             413 Payload Too Large.\n\
             Read: {CHAPTER}#a-body-too-large",
            describe(pushed.status),
            size(read),
        );
    }
}

/// Slowloris: a client sends half its request headers and then nothing. It
/// costs the client one socket and the server one connection, held open
/// until the server gives up on it; a few thousand such clients use up a
/// server's connections. The server must close it within about its
/// header-read timeout (here 200 ms).
#[tokio::test]
async fn a_client_that_stalls_in_its_headers_is_cut_off() {
    let (server, _) = start(Config {
        header_timeout: SHORT_WAIT,
        ..config()
    });
    let half = format!(
        "POST /documents HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
        server.addr()
    );
    let (half_sent, silent) = within(
        Duration::from_secs(10),
        "a client with half its headers sent, and one that sent nothing",
        async {
            tokio::join!(
                send_and_stall(server.addr(), half.as_bytes(), HELD_FOR_GOOD),
                send_and_stall(server.addr(), b"", HELD_FOR_GOOD),
            )
        },
    )
    .await;
    assert!(
        half_sent.cut_after.is_some(),
        "a client sent half its request headers and stalled: the server still held the \
         connection open after {HELD_FOR_GOOD:?}; expected it closed within about the \
         header-read timeout, {SHORT_WAIT:?}.\n\
         Nothing bounds how long the server waits for the rest of a request's headers: \
         what serves the connections?\n\
         Read: {CHAPTER}#slowloris"
    );
    assert!(
        silent.cut_after.is_some(),
        "a client connected and sent nothing at all: the server still held the connection \
         open after {HELD_FOR_GOOD:?}, while a client that sent half its headers was cut off \
         after {:?}; expected both closed within about the header-read timeout, \
         {SHORT_WAIT:?}.\n\
         The header timer seems to start only once the first bytes have come: does something \
         read a connection's first bytes (to tell one protocol from another, say) with no \
         bound of its own, before the header timeout applies?\n\
         Read: {CHAPTER}#slowloris",
        half_sent.cut_after.unwrap_or_default()
    );
}

/// A client sends its headers and part of its body, then nothing more. The
/// handler waits in its body extractor, holding a connection, a task and
/// (with a concurrency limit) a slot. The server must give up within about
/// its body timeout (here 200 ms, well inside the request budget of 10 s),
/// answering or closing.
#[tokio::test]
async fn a_body_that_stops_arriving_is_cut_off() {
    let (server, _) = start(Config {
        body_timeout: SHORT_WAIT,
        ..config()
    });
    let partial = format!(
        "POST /documents HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"title\": \"slow\", \"text\": \"",
        server.addr()
    );
    let outcome = within(
        Duration::from_secs(10),
        "a client whose body stalled",
        send_and_stall(server.addr(), partial.as_bytes(), HELD_FOR_GOOD),
    )
    .await;
    assert!(
        outcome.cut_after.is_some(),
        "a client sent 30 of the 1000 body bytes it announced and stalled: after \
         {HELD_FOR_GOOD:?} the server was still waiting for the rest; expected it to give up \
         within about the body timeout, {SHORT_WAIT:?} (the request budget, 10 s, is for the \
         work, not for a client that stopped sending).\n\
         Nothing bounds how long a handler waits for the next piece of a body.\n\
         Read: {CHAPTER}#a-body-that-stops"
    );
    if let Some(status) = outcome.status {
        assert!(
            status >= 400,
            "a stalled body was answered {status}; expected an error status (or a closed \
             connection)."
        );
    }
}

/// How many clients the overload test may open: 1000, unless the limit on
/// open files says that client and server (one process, two sockets per
/// connection) cannot have that many.
fn clients_allowed() -> usize {
    let wanted = 1000;
    let Some(limit) = open_files_limit() else {
        return wanted;
    };
    let allowed = (limit.saturating_sub(200) / 2).min(wanted as u64) as usize;
    if allowed < wanted {
        eprintln!(
            "note: the open-files limit is {limit} (`ulimit -n`), too low for {wanted} clients \
             and their server in one process; using {allowed}. Raise it with `ulimit -n 4096` \
             to run the full test."
        );
    }
    allowed
}

/// The soft limit on open files of this process, where it can be found.
fn open_files_limit() -> Option<u64> {
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        return line.split_whitespace().nth(3)?.parse().ok();
    }
    // Elsewhere on Unix a child shell has the same limit.
    let output = std::process::Command::new("sh")
        .args(["-c", "ulimit -n"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// The concurrency limit of the overload test.
const MAX_IN_FLIGHT: usize = 50;

/// A thousand clients at once, each on its own connection, at a server that
/// may run 50 requests at once. Each asks for an 8 s report. A server that
/// protects itself runs 50 and refuses the rest *at once* with 503 (and
/// `Retry-After`): no request waits in a queue, and what the server holds
/// (handlers, their memory) stays bounded by the limit, not by the number of
/// clients.
///
/// So, once the clients are in, every request has either had its answer or
/// is running in a handler (the server counts those): one that has neither
/// waits in line. The test waits for that moment for half a report's time,
/// well before a slot could free up, and not for the 50 reports themselves:
/// a request that runs is served, and the happy path sees a report through
/// to its 200.
#[tokio::test]
async fn a_thousand_requests_at_once_get_200_or_a_fast_503() {
    let (server, stats) = start(Config {
        max_in_flight: MAX_IN_FLIGHT,
        ..config()
    });
    let clients = clients_allowed();
    let report = Duration::from_secs(8);
    let client = Client::new();
    let url = server.url("/report");
    // Each request notes its outcome as it comes; a transport error as text.
    let outcomes: RefCell<Vec<Result<Reply, String>>> = RefCell::new(Vec::new());
    let requests = join_all((0..clients).map(|_| {
        let request = client
            .post(&url)
            .json(&report_of(report.as_millis() as u64));
        let outcomes = &outcomes;
        async move {
            let outcome = try_send(request).await;
            outcomes
                .borrow_mut()
                .push(outcome.map(Reply::from).map_err(|e| e.to_string()));
        }
    }));
    let each_answered_or_running = async {
        while outcomes.borrow().len() + stats.in_flight() < clients {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let patience = report / 2;
    within(
        Duration::from_secs(30),
        &format!("{clients} concurrent reports"),
        async {
            tokio::select! {
                _ = requests => {}
                _ = tokio::time::timeout(patience, each_answered_or_running) => {}
            }
        },
    )
    .await;
    // The requests still out were dropped with the `select!`: what they did
    // until then is all there is to see.
    let running = stats.in_flight();
    let peak = stats.peak_in_flight();
    let outcomes = outcomes.into_inner();
    let waiting = clients.saturating_sub(outcomes.len() + running);
    let answered: Vec<&Reply> = outcomes.iter().flatten().collect();
    let failed = outcomes.len() - answered.len();
    let ok = answered
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let shed: Vec<&Reply> = answered
        .iter()
        .copied()
        .filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    let other = answered.len() - ok - shed.len();
    assert!(
        peak <= MAX_IN_FLIGHT,
        "{clients} reports came at once, each on its own connection, and {peak} of them ran at \
         the same time ({ok} answered 200, {} 503); expected at most {MAX_IN_FLIGHT}: the \
         server takes on everything that comes.\n\
         Nothing bounds how many requests run at once.\n\
         Read: {CHAPTER}#a-thousand-at-once",
        shed.len()
    );
    let refused = match shed.iter().map(|r| r.elapsed).max() {
        Some(slowest) => format!("{} 503 (the slowest after {slowest:.1?})", shed.len()),
        None => "0 503".to_owned(),
    };
    assert!(
        waiting == 0,
        "{clients} reports of {report:?} at once: after {patience:?}, {ok} had answered 200 and \
         {refused}, {running} were running, and {waiting} had neither an answer nor a handler; \
         expected each one either running (at most {MAX_IN_FLIGHT}) or refused with 503 at \
         once: requests waited in line for a turn.\n\
         Does anything refuse a request when every slot is taken, instead of making it wait?\n\
         Read: {CHAPTER}#a-thousand-at-once"
    );
    assert!(
        failed == 0 && other == 0,
        "{clients} reports at once: {ok} answered 200, {} 503, {other} something else, and \
         {failed} got no answer at all (connection refused or reset); expected only 503s, and \
         the rest running.\n\
         Did the server stop serving, or close connections, while they were in flight?\n\
         Read: {CHAPTER}#a-thousand-at-once",
        shed.len()
    );
    assert!(
        shed.iter().all(|r| r.retry_after.is_some()),
        "the 503s to an overloaded server came without `Retry-After`; expected it on each, so \
         that clients know when to come back.\n\
         Read: {CHAPTER}#a-thousand-at-once"
    );
    let served = ok + running;
    assert!(
        served >= MAX_IN_FLIGHT / 2,
        "{clients} reports at once: only {served} were served (answered 200, or running); \
         expected about {MAX_IN_FLIGHT} (the limit).\n\
         Read: {CHAPTER}#a-thousand-at-once"
    );
}

/// One address floods the server: beyond its quota (here 20 requests) it
/// gets 429 with `Retry-After`, and another client address is still
/// served. Without a limit per address, one client can use up every slot of
/// the concurrency limit, and everyone else gets 503.
///
/// At 20 a minute one request comes free every 3 s, so right after the
/// burst the limiter's own wait is a little under 3 s: `Retry-After`, in
/// whole seconds, must say 3. Rounded down it says 2, and a client that
/// waits as long as it is told comes back too early, to be refused again.
///
/// A limit keyed on the peer's address *and port* never refuses this flood:
/// its requests come on many connections, each with a port of its own.
///
/// Then another client, [`OTHER`], behind the trusted proxy, must be served:
/// the quota is per client address.
#[tokio::test]
async fn one_address_cannot_use_up_the_server() {
    let quota = 20;
    let (server, _) = start(quota_of(quota));
    let flooder = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let url = server.url("/documents");
    let started = Instant::now();
    let flood = within(
        Duration::from_secs(10),
        "a flood of GET /documents",
        join_all((0..2 * quota).map(|_| send(flooder.get(&url)))),
    )
    .await;
    let flood_took = started.elapsed();
    let limited: Vec<_> = flood
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    if limited.is_empty() {
        let suspect = if limited_on_one_connection(&server, quota).await {
            "Sent on one kept-alive connection instead, the same number of requests is \
             limited: every new connection starts with a fresh quota. What is the limit keyed \
             by? A connection's peer address includes its port."
        } else {
            "Nothing limits what one address may ask for."
        };
        panic!(
            "{} requests at once from 127.0.0.1, twice the quota of {quota} per address, on \
             many connections: none was refused; expected the ones beyond the quota to get 429 \
             Too Many Requests.\n\
             {suspect}\n\
             Read: {CHAPTER}#one-address",
            2 * quota
        );
    }
    // The limiter's wait, right after the burst: one request's interval,
    // less the time the flood took.
    let interval = Duration::from_secs(60) / quota;
    let shortest = interval.saturating_sub(flood_took);
    let lowest = shortest.as_nanos().div_ceil(1_000_000_000).max(1) as u64;
    let highest = interval.as_nanos().div_ceil(1_000_000_000) as u64;
    let retry_afters: Vec<Option<&str>> = limited.iter().map(|r| r.header("retry-after")).collect();
    assert!(
        retry_afters.iter().all(|value| value
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|seconds| (lowest..=highest).contains(&seconds))),
        "the 429s to 127.0.0.1 said Retry-After {retry_afters:?}; at {quota} a minute the \
         next request was free {shortest:.1?} to {interval:?} after they were sent, so \
         expected {}, in whole seconds rounded up.\n\
         Is the header missing, fixed, rounded down, or not the limiter's own wait?\n\
         Read: {CHAPTER_04}#retry-after",
        if lowest == highest {
            lowest.to_string()
        } else {
            format!("{lowest} to {highest}")
        }
    );
    let reply = another_client(&flooder, &server, OTHER).await;
    assert_eq!(
        reply,
        StatusCode::OK,
        "after 127.0.0.1 used up its quota, a request for {OTHER} through the trusted proxy \
         127.0.0.1 (X-Forwarded-For) answered {reply}; expected 200: the quota is per client \
         address, and {OTHER} has used none of its own.\n\
         Is the limit keyed by something other than the client's address (the peer's, or the \
         one a trusted proxy forwarded for)?\n\
         Read: {CHAPTER}#one-address"
    );
}

/// Sends `quota + 1` requests from a new client at 127.0.0.1, one after
/// another on one kept-alive connection, and says whether any was refused:
/// a limit that holds there, but not across connections, lives per port.
async fn limited_on_one_connection(server: &TestServer, quota: u32) -> bool {
    let client = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    within(
        Duration::from_secs(10),
        "GET /documents on one connection",
        async {
            for _ in 0..=quota {
                let reply = send(client.get(server.url("/documents"))).await;
                if reply.status == StatusCode::TOO_MANY_REQUESTS {
                    return true;
                }
            }
            false
        },
    )
    .await
}

/// The cheapest refusal goes first. An address over its quota costs the
/// server nothing if its requests are refused before they reach anything
/// shared; checked *after* the concurrency limit, each of them first
/// competes for one of the slots every other address needs (and while the
/// slots are full, it is told 503 "retry in a second" instead of its own
/// 429, and comes back at once).
///
/// Here: 2 slots and a quota of 2 per address. 127.0.0.1 uses up its quota;
/// another client, [`OTHER`] behind the trusted proxy, runs two long reports,
/// which hold both slots; then 127.0.0.1 floods. Every request of the flood
/// must be answered 429.
#[tokio::test]
async fn a_flood_over_its_quota_is_refused_before_it_takes_a_slot() {
    let slots = 2;
    let quota = 2;
    let (server, stats) = start(Config {
        max_in_flight: slots,
        ..quota_of(quota)
    });
    let flooder = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let url = server.url("/documents");
    within(
        Duration::from_secs(10),
        "GET /documents from 127.0.0.1",
        async {
            for _ in 0..quota {
                send(flooder.get(&url)).await;
            }
        },
    )
    .await;
    let reports: Vec<_> = (0..slots)
        .map(|_| {
            let report = (flooder.post(server.url("/report")))
                .header("x-forwarded-for", OTHER)
                .json(&report_of(10_000));
            tokio::spawn(try_send(report))
        })
        .collect();
    // Waits for both to run, or for one to be answered (refused) instead.
    let running = || stats.in_flight() == slots || reports.iter().any(|r| r.is_finished());
    eventually(Duration::from_secs(10), running).await;
    if stats.in_flight() != slots {
        let mut answers = Vec::new();
        for report in reports.into_iter().filter(|report| report.is_finished()) {
            answers.push(match report.await {
                Ok(Ok(reply)) => reply.status.to_string(),
                Ok(Err(error)) => format!("cut off ({error})"),
                Err(panicked) => format!("a failed task ({panicked})"),
            });
        }
        let suspect = if answers.iter().any(|answer| answer.starts_with("429")) {
            format!("Is {OTHER}'s quota counted apart from 127.0.0.1's, through the trusted proxy?")
        } else {
            "Does a request that has been answered still hold its slot?".to_owned()
        };
        panic!(
            "two 10 s reports for {OTHER}, within its quota of {quota}, on a server that runs \
             {slots} requests at once: {} of them ran, and {} answered at once {answers:?}; \
             expected both to run.\n\
             {suspect}\n\
             Read: {CHAPTER}#the-stack",
            stats.in_flight(),
            answers.len(),
        );
    }
    // One after another, on the kept-alive connection that used up the quota.
    let flood = within(
        Duration::from_secs(10),
        "a flood of GET /documents from 127.0.0.1",
        async {
            let mut replies = Vec::new();
            for _ in 0..10 {
                replies.push(send(flooder.get(&url)).await);
            }
            replies
        },
    )
    .await;
    reports.iter().for_each(|report| report.abort());
    let statuses: Vec<u16> = flood.iter().map(|r| r.status.as_u16()).collect();
    let suspect = if statuses.contains(&503) {
        "They were answered 503, \"the server is full\": they reached the concurrency limit \
         before anything looked at their address's quota, so each one competes for a slot \
         that other addresses need. Which guard does a request meet first?"
    } else if statuses.contains(&200) {
        "Some were served: nothing limits what one address may ask for."
    } else {
        ""
    };
    assert!(
        statuses.iter().all(|&status| status == 429),
        "127.0.0.1 had used up its quota of {quota} and sent 10 more requests while two \
         reports for {OTHER} held both of the server's {slots} slots: they were answered \
         {statuses:?}; expected 429 Too Many Requests for each, whatever else the server is \
         doing.\n\
         {suspect}\n\
         Read: {CHAPTER}#the-stack"
    );
}

/// The test configuration with a quota of `quota` requests a minute (all
/// at once, at most) per client address, behind [`PROXY`].
fn quota_of(quota: u32) -> Config {
    Config {
        per_ip_burst: quota,
        per_ip_per_minute: quota,
        trusted_proxies: vec![PROXY],
        ..config()
    }
}

/// The tests' trusted proxy: the test's own client, at 127.0.0.1. The
/// addresses it forwards for are documentation addresses (2001:db8::/32,
/// 192.0.2.0/24), only ever written in a header: nothing connects to them.
const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A client other than the test's own, behind the trusted proxy: the
/// server must count it apart from 127.0.0.1. (A second loopback address,
/// 127.0.0.2, would need setting up on macOS; the proxy needs nothing.)
const OTHER: &str = "192.0.2.2";

/// [`forwarded_for`] a client that has used none of its quota, within 10 s.
async fn another_client(proxy: &Client, server: &TestServer, client: &str) -> StatusCode {
    let what = "GET /documents for another client";
    within(
        Duration::from_secs(10),
        what,
        forwarded_for(proxy, server, client),
    )
    .await
}

/// `GET /documents` through the trusted proxy, on behalf of `client`.
async fn forwarded_for(proxy: &Client, server: &TestServer, client: &str) -> StatusCode {
    let request = proxy
        .get(server.url("/documents"))
        .header("x-forwarded-for", client);
    send(request).await.status
}

/// One subscriber of an IPv6 network is usually given a whole /64, and may
/// pick any of its 2^64 addresses for each request. A limit keyed on the
/// full address gives each of them a fresh quota: the limit must key IPv6
/// clients by their /64. The clients come through a trusted proxy (the
/// test's own client) with `X-Forwarded-For`, the only way to show a server
/// many client addresses without any network setup.
///
/// With a quota of 5, 20 requests from 20 addresses of one /64 get 5
/// answers and 15 refusals; a client of another /64 behind the same proxy
/// is still served, and so is an IPv4 client.
#[tokio::test]
async fn the_addresses_of_one_ipv6_network_share_one_quota() {
    let quota = 5;
    let (server, _) = start(quota_of(quota));
    let proxy = client_from(PROXY);
    let network = "2001:db8:1234:5678";
    let sent = 4 * quota;
    let statuses = within(
        Duration::from_secs(10),
        "GET /documents for one IPv6 network",
        async {
            let mut statuses = Vec::new();
            for host in 1..=sent {
                let client = format!("{network}::{host:x}");
                statuses.push(forwarded_for(&proxy, &server, &client).await.as_u16());
            }
            statuses
        },
    )
    .await;
    let served = statuses.iter().filter(|&&status| status == 200).count();
    if served > quota as usize {
        let one = format!("{network}::beef");
        let repeated = within(
            Duration::from_secs(10),
            "GET /documents for one IPv6 address",
            async {
                let mut limited = false;
                for _ in 0..=quota {
                    limited |=
                        forwarded_for(&proxy, &server, &one).await == StatusCode::TOO_MANY_REQUESTS;
                }
                limited
            },
        )
        .await;
        let suspect = if repeated {
            format!(
                "The same number of requests for one address, {one}, is limited: each address \
                 of the network gets a quota of its own. What is the limit keyed by, for an \
                 IPv6 client?"
            )
        } else {
            "Nothing limits what one client behind a trusted proxy may ask for.".to_owned()
        };
        panic!(
            "{sent} requests through a trusted proxy (127.0.0.1), each forwarded for a different \
             address of one IPv6 /64 ({network}::1 to {network}::{sent:x}), with a quota of \
             {quota} per client: {served} answered 200 ({statuses:?}); expected {quota}, then \
             429: one subscriber holds a whole /64 and picks any address in it.\n\
             {suspect}\n\
             Read: {CHAPTER}#many-addresses"
        );
    }
    for other in ["2001:db8:9abc:def0::1", "192.0.2.7"] {
        let status = another_client(&proxy, &server, other).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "after the IPv6 network {network}::/64 used up its quota, a request forwarded for \
             another client, {other}, by the same trusted proxy answered {status}; expected \
             200: it has used none of its own quota.\n\
             Is the client taken from X-Forwarded-For when the peer is a trusted proxy, and is \
             the key no wider than a /64?\n\
             Read: {CHAPTER}#many-addresses"
        );
    }
}

/// A keyed limiter keeps a bucket for every client it has seen. A client
/// whose bucket is full again is, to the limiter, the same as one never
/// seen, and a server that never forgets those grows its map by every
/// address that ever asked (and an attacker can pick new ones as fast as it
/// likes). `/stats` reports the limiter's count as `clients_tracked`.
///
/// Here a whole burst comes back in 200 ms (one request every 200 ms). 40
/// clients, each of its own network, ask once through the trusted proxy:
/// the limiter tracks them. Within a few of those periods after they went
/// quiet, the count must fall back to the few clients still asking.
#[tokio::test]
async fn the_limiter_forgets_clients_that_went_quiet() {
    let period = Duration::from_millis(200);
    let (server, _) = start(Config {
        per_ip_burst: 1,
        per_ip_per_minute: (Duration::from_secs(60).as_millis() / period.as_millis()) as u32,
        trusted_proxies: vec![PROXY],
        ..config()
    });
    let proxy = client_from(PROXY);
    let clients = 40;
    within(
        Duration::from_secs(10),
        "GET /documents for 40 clients",
        join_all((1..=clients).map(|host| {
            let (proxy, server) = (&proxy, &server);
            async move { forwarded_for(proxy, server, &format!("192.0.2.{host}")).await }
        })),
    )
    .await;
    let quiet_since = Instant::now();
    // `/stats` is read for one client of its own, at most once a period.
    let tracked = || async {
        loop {
            let request = proxy
                .get(server.url("/stats"))
                .header("x-forwarded-for", "192.0.2.200");
            let reply = send(request).await;
            if reply.status == StatusCode::OK {
                return reply.json()["clients_tracked"].as_u64();
            }
            tokio::time::sleep(period).await;
        }
    };
    let first = within(Duration::from_secs(10), "GET /stats", tracked()).await;
    let Some(first) = first else {
        panic!(
            "GET /stats reports no `clients_tracked`; the test reads there how many clients the \
             per-address rate limiter remembers. Is there a per-address limiter, and is its \
             count registered with `Stats::count_clients_with`?\n\
             Read: {CHAPTER}#many-addresses"
        );
    };
    assert!(
        first >= clients / 2,
        "{clients} clients, each forwarded by a trusted proxy (127.0.0.1) for an address of its \
         own, asked once; right after, /stats said the limiter tracked {first}; expected about \
         {clients}.\n\
         Is the count on /stats the limiter's own, and is each client keyed by the address \
         the proxy forwarded for?\n\
         Read: {CHAPTER}#many-addresses"
    );
    let patience = 10 * period;
    let mut last = first;
    while quiet_since.elapsed() < patience {
        tokio::time::sleep(period).await;
        last = within(Duration::from_secs(10), "GET /stats", tracked())
            .await
            .unwrap_or(last);
        if last <= 3 {
            return;
        }
    }
    panic!(
        "{clients} clients asked once each, then went quiet; with a quota that comes back whole \
         in {period:?}, /stats said the limiter still tracked {last} of them {:.1?} later \
         (right after: {first}); expected the count to fall back to the few clients still \
         asking within a few of those periods.\n\
         Does the limiter ever forget a client whose bucket is full again?\n\
         Read: {CHAPTER}#many-addresses",
        quiet_since.elapsed()
    );
}

/// A report that needs 3 s on a server whose budget per request is 200 ms
/// must be answered 503 (the status chosen in chapter 05) at about 200 ms,
/// and its work must stop: the report's steps (one every 10 ms) stop
/// counting.
#[tokio::test]
async fn a_report_over_its_budget_answers_503_and_stops() {
    let budget = Duration::from_millis(200);
    let (server, stats) = start(Config {
        request_timeout: budget,
        ..config()
    });
    let client = Client::new();
    let patience = 5 * budget;
    let started = Instant::now();
    let reply = tokio::time::timeout(
        patience,
        try_send(client.post(server.url("/report")).json(&report_of(3000))),
    )
    .await;
    let Ok(reply) = reply else {
        panic!(
            "a 3 s report on a server with a budget of {budget:?} per request: no answer after \
             {patience:?} ({} report steps done so far); expected 503 Service Unavailable at \
             about {budget:?}.\n\
             Nothing bounds how long a request may run.\n\
             Read: {CHAPTER}#over-budget",
            stats.report_steps()
        );
    };
    let reply = reply.unwrap_or_else(|e| panic!("the over-budget report failed: {e}"));
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a report over its budget of {budget:?} answered {} after {:?}; expected 503 Service \
         Unavailable, the status chapter 05 chose for a request that ran out of time.\n\
         Read: {CHAPTER}#over-budget",
        reply.status,
        started.elapsed()
    );
    let (settle, watch) = (Duration::from_millis(50), Duration::from_millis(150));
    tokio::time::sleep(settle).await;
    let steps = stats.report_steps();
    tokio::time::sleep(watch).await;
    let later = stats.report_steps();
    assert_eq!(
        steps, later,
        "the report over its budget was answered 503, but its steps went on: {steps} steps \
         {settle:?} after the 503, {later} {watch:?} later; expected them to stop.\n\
         Does the report's work run outside the request's future?\n\
         Read: {CHAPTER}#over-budget"
    );
}

/// A shutdown waits for the requests in flight, and for nothing else: a
/// server with nothing to finish stops at once, however long its deadline.
/// Here the deadline is 10 s, one kept-alive connection is idle (a browser
/// leaves those open), and `serve` must return within 1.5 s of being asked
/// to stop. The test gives `serve` a shutdown future of its own, as
/// `shutdown_signal` would be.
#[tokio::test]
async fn an_idle_server_stops_at_once() {
    let deadline = Duration::from_secs(10);
    let mut server = start_stoppable(Config {
        shutdown_deadline: deadline,
        ..config()
    });
    let client = Client::new();
    within(
        Duration::from_secs(10),
        "GET /documents",
        send(client.get(server.server.url("/documents"))),
    )
    .await;
    let asked = server.ask_to_stop();
    let patience = Duration::from_millis(1500);
    if tokio::time::timeout(patience, &mut server.returned)
        .await
        .is_ok()
    {
        return;
    }
    let accepting = tokio::time::timeout(
        Duration::from_secs(2),
        TcpStream::connect(server.server.addr()),
    )
    .await
    .is_ok_and(|connected| connected.is_ok());
    let suspect = if accepting {
        "It still accepts connections: does `serve` begin to shut down when the future it is \
         given completes?"
    } else {
        "It stopped accepting connections, and then waited with nothing left to wait for: is \
         the deadline slept through instead of raced against the requests in flight?"
    };
    panic!(
        "a server with no request in flight (one idle kept-alive connection) was asked to stop; \
         {:.1?} later `serve` had still not returned; expected it to return at once: the \
         deadline ({deadline:?}) bounds the wait for requests in flight, and there were none.\n\
         {suspect}\n\
         Read: {CHAPTER}#the-deadline",
        asked.elapsed()
    );
}

/// The deadline counts from the shutdown, not from the start: a server
/// that has run longer than its deadline (here 300 ms, then 450 ms of
/// serving) must still finish a short request in flight (a 100 ms report)
/// when it is asked to stop. A deadline counted from the start would kill
/// a server that was never asked to stop, or cut every request in flight
/// at the signal of a server that has run for a while: every deploy.
#[tokio::test]
async fn the_deadline_counts_from_the_shutdown() {
    let deadline = Duration::from_millis(300);
    let mut server = start_stoppable(Config {
        shutdown_deadline: deadline,
        ..config()
    });
    let served_for = deadline + deadline / 2;
    tokio::time::sleep(served_for).await;
    let client = Client::new();
    let report = Duration::from_millis(100);
    let mut request = tokio::spawn(try_send(
        client
            .post(server.server.url("/report"))
            .json(&report_of(report.as_millis() as u64)),
    ));
    let stats = server.stats.clone();
    let in_flight = within(Duration::from_secs(10), "a report in flight", async {
        loop {
            if stats.in_flight() == 1 {
                return true;
            }
            if request.is_finished() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    if !in_flight {
        let outcome = match (&mut request).await {
            Ok(Ok(reply)) => format!("answered {}", reply.status),
            Ok(Err(error)) => format!("failed: {error}"),
            Err(error) => format!("panicked: {error}"),
        };
        panic!(
            "a server with a shutdown deadline of {deadline:?} had served for {served_for:?}, and \
             was never asked to stop; then a report was sent, and it {outcome}; expected it to \
             run: the server serves until it is asked to stop.\n\
             Did it stop by itself, its deadline counted from when serving began?\n\
             Read: {CHAPTER}#the-deadline"
        );
    }
    server.ask_to_stop();
    let reply = within(Duration::from_secs(10), "the report in flight", request).await;
    let outcome = match &reply {
        Ok(Ok(reply)) if reply.status == StatusCode::OK => return,
        Ok(Ok(reply)) => format!("was answered {}", reply.status),
        Ok(Err(error)) => format!("got no answer ({error})"),
        Err(error) => format!("panicked: {error}"),
    };
    panic!(
        "a server with a shutdown deadline of {deadline:?} had served for {served_for:?}, then was \
         asked to stop with a {report:?} report in flight: the report {outcome}; expected it to \
         complete with 200, well inside the deadline.\n\
         Was the deadline already spent when the shutdown began: is it counted from the start?\n\
         Read: {CHAPTER}#the-deadline"
    );
}

/// The lab's binary as a process, with `args` after `--port 0`.
#[cfg(unix)]
async fn start_binary(args: &[&str]) -> lab_support::process::LabProcess {
    let mut command = std::process::Command::new(lab_support::lab_binary!("production"));
    command.args(["--port", "0"]).args(args);
    command.env("RUST_LOG", "warn");
    lab_support::process::LabProcess::start(&mut command).await
}

/// Waits until the server says that `n` requests are inside a handler
/// (`/stats` counts itself: one more).
#[cfg(unix)]
async fn until_in_flight(client: &Client, url: &str, n: u64) -> bool {
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        if let Ok(reply) = try_send(client.get(url)).await
            && reply.status == StatusCode::OK
            && reply.json()["in_flight"].as_u64() >= Some(n + 1)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// (Unix only: signals.) SIGTERM is how systemd, Docker and Kubernetes stop
/// a server, for a deploy as much as for a shutdown. With 100 reports of
/// 500 ms in flight, all 100 must complete with 200, and then the process
/// must exit 0, well within its deadline (here 10 s).
#[cfg(unix)]
#[tokio::test]
async fn sigterm_lets_100_requests_finish_then_exits_0() {
    let mut server = start_binary(&[
        "--max-in-flight",
        "1000",
        "--per-ip-burst",
        "100000",
        "--shutdown-deadline-ms",
        "10000",
    ])
    .await;
    let client = Client::new();
    let url = server.url("/report");
    let report = Duration::from_millis(500);
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let request = client
                .post(&url)
                .json(&report_of(report.as_millis() as u64));
            tokio::spawn(try_send(request))
        })
        .collect();
    let running = until_in_flight(&client, &server.url("/stats"), 100).await;
    assert!(
        running,
        "100 reports were sent but the server never showed 100 in flight.\n{}",
        server.output()
    );

    let signalled = Instant::now();
    server.terminate();
    let status = server.exit_within(Duration::from_secs(15)).await;
    let exited_after = signalled.elapsed();
    let replies = within(
        Duration::from_secs(5),
        "the 100 reports",
        join_all(requests),
    )
    .await;
    let ok = replies
        .iter()
        .filter(|r| matches!(r, Ok(Ok(reply)) if reply.status == StatusCode::OK))
        .count();
    assert!(
        status.is_some_and(|s| s.success()) && ok == 100,
        "SIGTERM with 100 reports of {report:?} in flight: {ok} of them completed with 200, and the \
         process {} after {exited_after:?}; expected all 100 to complete, then exit 0.\n\
         {}\n\
         Read: {CHAPTER}#sigterm\n\
         The server printed:\n{}",
        match status {
            Some(status) => format!("ended with {status}"),
            None => "was still running".to_owned(),
        },
        if status.is_some_and(|s| !s.success() && s.code().is_none()) {
            "The process was killed by SIGTERM: does it listen for that signal at all?"
        } else {
            "Does the server wait for the requests in flight before it exits?"
        },
        server.output()
    );
}

/// (Unix only: signals.) A graceful shutdown waits for requests in flight,
/// but not for ever: a deploy cannot wait on one slow request. With a 10 s
/// report in flight and a deadline of 300 ms, the process must exit 0 at
/// about the deadline after SIGTERM.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_gives_up_on_slow_requests_at_the_deadline() {
    let deadline = Duration::from_millis(300);
    let mut server = start_binary(&[
        "--request-timeout-ms",
        "30000",
        "--shutdown-deadline-ms",
        &deadline.as_millis().to_string(),
    ])
    .await;
    let client = Client::new();
    let slow = tokio::spawn(try_send(
        client.post(server.url("/report")).json(&report_of(10_000)),
    ));
    let running = until_in_flight(&client, &server.url("/stats"), 1).await;
    assert!(
        running,
        "a report was sent but the server never showed it in flight.\n{}",
        server.output()
    );

    let signalled = Instant::now();
    server.terminate();
    let patience = 5 * deadline;
    let status = server.exit_within(patience).await;
    let exited_after = signalled.elapsed();
    slow.abort();
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM with a 10 s report in flight and a shutdown deadline of {deadline:?}: the \
         process {}; expected it to exit 0 at about the deadline.\n\
         {}\n\
         Read: {CHAPTER}#the-deadline\n\
         The server printed:\n{}",
        match status {
            Some(status) => format!("ended with {status} after {exited_after:?}"),
            None => format!("was still running after {patience:?}"),
        },
        match status {
            Some(s) if s.code().is_none() => {
                "The process was killed by SIGTERM: does it listen for that signal at all?"
            }
            None => "Does anything bound how long the shutdown waits?",
            _ => "",
        },
        server.output()
    );
}
