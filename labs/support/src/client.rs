//! Clients that behave like a server's users: many at once, impatient ones
//! that leave early, and ones from another address; and, for a race between
//! a server's threads, thousands of in-process calls started in pairs.
//!
//! In the tests' helpers every transport error panics with the URL and a hint,
//! because in a lab test a refused or reset connection is itself the finding
//! ("did the server crash?"), and a plain `unwrap` would hide which request it
//! was.
//!
//! The last section serves the labs' console traffic (`examples/traffic.rs` in
//! each lab): programs that drive a running server for as long as it runs, so
//! their helpers report what went wrong instead of panicking.

use std::fmt::Display;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use futures::future::join_all;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::TestServer;

/// A complete response, and how long it took from sending to the last byte.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    headers: HeaderMap,
    pub body: String,
    pub elapsed: Duration,
}

impl Reply {
    /// The body parsed as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("expected a JSON body, got {:?} ({e})", self.body))
    }

    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` and reads the whole response.
pub async fn send(request: RequestBuilder) -> Reply {
    try_send(request).await.unwrap_or_else(|e| {
        panic!("request failed: {e} (did the server crash, or close the connection?)")
    })
}

/// Like [`send`], but hands back the transport error instead of panicking.
pub async fn try_send(request: RequestBuilder) -> Result<Reply, reqwest::Error> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await?;
    Ok(Reply {
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    })
}

/// `GET url` with a fresh client.
pub async fn get(url: &str) -> Reply {
    send(Client::new().get(url)).await
}

/// The replies to a burst of concurrent requests.
#[derive(Debug)]
pub struct Burst {
    /// In the order the requests were built (request `i` is `replies[i]`).
    pub replies: Vec<Reply>,
    /// From sending the first request to receiving the last reply.
    pub elapsed: Duration,
}

impl Burst {
    /// How many replies have this status.
    pub fn count(&self, status: StatusCode) -> usize {
        self.replies.iter().filter(|r| r.status == status).count()
    }

    /// The status codes, in request order.
    pub fn statuses(&self) -> Vec<u16> {
        self.replies.iter().map(|r| r.status.as_u16()).collect()
    }
}

/// Sends `n` requests at once, built by `request(i)` for `i` in `0..n`, and
/// waits for every reply. Use one [`Client`] per burst: it opens one
/// connection per concurrent request.
pub async fn burst(n: usize, request: impl Fn(usize) -> RequestBuilder) -> Burst {
    let started = Instant::now();
    let replies = join_all((0..n).map(|i| send(request(i)))).await;
    Burst {
        replies,
        elapsed: started.elapsed(),
    }
}

/// Calls `app` with `GET path` in-process (no sockets), keeping `at_once`
/// calls in flight for `duration`: each of `at_once` tasks of the current
/// runtime sends one request after another until the time is up, and the
/// calls start in pairs, two at the same instant on two threads. Returns
/// what `look` makes of each reply (it runs in the calling tasks, in
/// parallel), in no particular order.
///
/// This is for a race between threads, where a handler's read and write of
/// shared state have no `.await` between them: only two threads running
/// those same lines at the same instant can come between them. Over sockets
/// that is rare, because the network takes most of each request; in-process,
/// on a multi-thread runtime (`#[tokio::test(flavor = "multi_thread")]`),
/// with thousands of calls in flight and each call released together with a
/// partner, it happens many times a second. Sockets are for what the lesson
/// needs them for (disconnects, timing); a race in pure logic needs none.
pub async fn keep_calling<T: Send + 'static>(
    app: &Router,
    path: &str,
    at_once: usize,
    duration: Duration,
    look: fn(Reply) -> T,
) -> Vec<T> {
    let until = Instant::now() + duration;
    let start_line = Arc::new(StartLine::default());
    let callers: Vec<_> = (0..at_once)
        .map(|_| {
            let (app, path, start_line) = (app.clone(), path.to_owned(), start_line.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while Instant::now() < until {
                    start_line.wait_for_a_partner();
                    // Awaited at once: the app runs up to its first `.await`
                    // in this same poll, as close to the partner as it gets.
                    seen.push(look(call(&app, &path).await));
                }
                seen
            })
        })
        .collect();
    let mut seen = Vec::new();
    for caller in callers {
        match caller.await {
            Ok(more) => seen.extend(more),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a caller of the app was cancelled: {e}"),
        }
    }
    seen
}

/// Where calls wait for each other, so that two start at the same instant.
///
/// Calls arrive one by one and pair up: the first of a pair spins until the
/// second arrives (or gives up after [`Self::PATIENCE`]), and then both go.
#[derive(Debug, Default)]
struct StartLine {
    /// Calls that reached the line so far: each takes a ticket.
    arrived: AtomicUsize,
    /// The ticket of the last call that arrived second, and so released the
    /// call that arrived just before it.
    released: AtomicUsize,
}

impl StartLine {
    /// How long a call waits for a partner before it starts alone. When
    /// another core runs a caller too, the partner comes within a few
    /// microseconds; when the other cores are busy elsewhere, waiting longer
    /// only wastes this one.
    const PATIENCE: Duration = Duration::from_micros(5);

    /// Returns when the next call arrives, or after [`Self::PATIENCE`]. It
    /// spins rather than awaits, to keep its thread ready to go at once.
    fn wait_for_a_partner(&self) {
        let ticket = self.arrived.fetch_add(1, Ordering::SeqCst);
        if ticket % 2 == 1 {
            self.released.store(ticket, Ordering::SeqCst);
            return;
        }
        let waiting = Instant::now();
        while self.released.load(Ordering::SeqCst) != ticket + 1
            && waiting.elapsed() < Self::PATIENCE
        {
            std::hint::spin_loop();
        }
    }
}

/// `GET path`, answered by `app` in-process.
async fn call(app: &Router, path: &str) -> Reply {
    let request = axum::http::Request::get(path)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("GET {path}: not a valid request ({e})"));
    let sent = Instant::now();
    let response = app
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("read the body of GET {path}: {e}"));
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        elapsed: sent.elapsed(),
    }
}

/// A second client of a [`TestServer`], from another loopback address than
/// the tests' usual 127.0.0.1, so that the server sees another client IP.
///
/// It is 127.0.0.2 where the machine has it (Linux and Windows: every
/// `127.x.y.z` is loopback there), and otherwise ::1, IPv6 loopback, which
/// macOS has and 127.0.0.2 it has not (until `sudo ifconfig lo0 alias
/// 127.0.0.2 up`). 127.0.0.2 comes first because it needs nothing of the
/// server but its usual socket, keeps both clients IPv4 (so a test sees
/// whether the server tells clients apart, not whether it tells IPv4 from
/// IPv6), and works where IPv6 is switched off. A `TestServer` listens on
/// ::1 too, so either address reaches it: send with [`SecondClient::get`] or
/// [`SecondClient::post`], which pick the server's address of the right family.
#[derive(Debug, Clone)]
pub struct SecondClient {
    ip: IpAddr,
    client: Client,
}

/// The addresses a [`SecondClient`] may come from, the preferred first.
pub const SECOND_CLIENT_ADDRESSES: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

impl SecondClient {
    /// The second client, from the first of [`SECOND_CLIENT_ADDRESSES`] this
    /// machine can use. Where it has neither, this panics with what the
    /// machine lacks and how to add it, and `read` (where the chapter
    /// explains the test), instead of letting the test fail on a
    /// connection error.
    #[track_caller]
    pub fn new(read: &str) -> SecondClient {
        match Self::find() {
            Ok(client) => client,
            Err(missing) => panic!("{missing}\nRead: {read}"),
        }
    }

    /// The second client, or what this machine lacks to have one.
    pub fn find() -> Result<SecondClient, NoSecondAddress> {
        let ip = pick_second_address(usable)?;
        Ok(SecondClient {
            ip,
            client: client_from(ip),
        })
    }

    /// The address its connections come from.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// `GET path` on `server`, from this client.
    pub fn get(&self, server: &TestServer, path: &str) -> RequestBuilder {
        self.client.get(server.url_from(self.ip, path))
    }

    /// `POST path` on `server`, from this client.
    pub fn post(&self, server: &TestServer, path: &str) -> RequestBuilder {
        self.client.post(server.url_from(self.ip, path))
    }
}

/// Whether this machine can send from `address`: whether a socket can be
/// bound to it.
fn usable(address: IpAddr) -> std::io::Result<()> {
    std::net::TcpListener::bind((address, 0)).map(drop)
}

/// The first of [`SECOND_CLIENT_ADDRESSES`] that `usable` accepts, or every
/// address and why it was refused. [`SecondClient::find`] asks the machine;
/// a test of the choice itself can say what the machine has.
pub fn pick_second_address(
    usable: impl Fn(IpAddr) -> std::io::Result<()>,
) -> Result<IpAddr, NoSecondAddress> {
    let mut refused = Vec::new();
    for address in SECOND_CLIENT_ADDRESSES {
        match usable(address) {
            Ok(()) => return Ok(address),
            Err(error) => refused.push((address, error)),
        }
    }
    Err(NoSecondAddress { refused })
}

/// Why a machine has no second client address: each address tried, and the
/// error binding it gave.
#[derive(Debug)]
pub struct NoSecondAddress {
    refused: Vec<(IpAddr, std::io::Error)>,
}

impl Display for NoSecondAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "this test needs a second client address besides 127.0.0.1, and this machine has \
             none of the loopback addresses it can use:"
        )?;
        for (address, error) in &self.refused {
            let what = if address.is_ipv6() {
                "IPv6 loopback"
            } else {
                "a second IPv4 loopback address"
            };
            writeln!(f, "  {address} ({what}): {error}")?;
        }
        write!(
            f,
            "Either one is enough. IPv6 loopback is on by default on Linux, macOS and Windows: \
             has IPv6 been switched off here (in a container, say)? Or add 127.0.0.2, until the \
             next reboot: on macOS `sudo ifconfig lo0 alias 127.0.0.2 up`; on Linux and Windows \
             every 127.x.y.z is loopback unless the loopback interface was changed."
        )
    }
}

impl std::error::Error for NoSecondAddress {}

/// The tests' second client address as IPv4 only: 127.0.0.2, once it is
/// known to work. Prefer [`SecondClient`], which falls back to ::1 where
/// 127.0.0.2 is missing (macOS) and so needs no `sudo`; this is for a test
/// whose server listens on 127.0.0.1 alone ([`TestServer::start_serving`]).
///
/// Where the address is missing this panics with how to add it (and `read`,
/// where the chapter explains the test), instead of letting the test fail on
/// a connection error.
pub fn second_loopback(read: &str) -> IpAddr {
    let address = SECOND_CLIENT_ADDRESSES[0];
    if let Err(error) = usable(address) {
        panic!(
            "this test needs a second client address, 127.0.0.2, and this machine cannot use it \
             ({error}). On macOS only 127.0.0.1 is up by default; add the other once (it lasts \
             until the next reboot) with:\n\
             \n    sudo ifconfig lo0 alias 127.0.0.2 up\n\n\
             then run the tests again. (On Linux and Windows every 127.x.y.z is loopback.)\n\
             Read: {read}"
        );
    }
    address
}

/// A client whose connections come from `source` (e.g. `127.0.0.2`), so the
/// server sees a different peer address. Send it to a server address of the
/// same family ([`TestServer::url_from`]): to an IPv4 address, a client from
/// ::1 would connect from 127.0.0.1 unnoticed.
pub fn client_from(source: IpAddr) -> Client {
    Client::builder()
        .local_address(source)
        .build()
        .expect("build a client bound to a source address")
}

/// Sends `GET path` over a raw connection, waits `patience`, then hangs up
/// without reading the rest: a user closing the tab.
///
/// Returns the response's status line if one arrived before hanging up.
pub async fn leave_after(addr: SocketAddr, path: &str, patience: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e} (is the server running?)"));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");

    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let _ = tokio::time::timeout(patience, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    // Dropping the stream closes the connection.
    drop(stream);
    let text = String::from_utf8_lossy(&received);
    text.lines()
        .next()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
}

// The console traffic: `cargo run -p <lab> --features traffic --example traffic -- URL`.

/// The base URL of the server to drive: the traffic program's one argument,
/// e.g. `http://127.0.0.1:8080`, returned without a trailing `/`. Exits with a
/// usage line if it is missing or not an `http://` URL.
pub fn base_url_from_args() -> String {
    let mut args = std::env::args().skip(1);
    match (args.next(), args.next()) {
        (Some(url), None) if url.starts_with("http://") && Url::parse(&url).is_ok() => {
            url.trim_end_matches('/').to_owned()
        }
        _ => {
            eprintln!(
                "usage: cargo run -p <lab> --features traffic --example traffic -- <server URL>\n\
                 \n  e.g. http://127.0.0.1:8080, where `cargo run -p <lab>` listens"
            );
            std::process::exit(2);
        }
    }
}

/// A client for the traffic. It gives up on a request after 30 s: a server
/// that stalls is then reported, not waited for forever.
pub fn traffic_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain-HTTP client always builds")
}

/// Prints one observation of the traffic as a line of its own on stdout, and
/// flushes it, so that a reader at the other end of a pipe sees it at once.
pub fn report(line: impl Display) {
    let mut stdout = std::io::stdout().lock();
    // Nobody to tell if stdout is gone; the traffic goes on regardless.
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

/// A transport error in a few words: `timed out`, `could not connect`, or
/// reqwest's own message.
pub fn brief(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        error.to_string()
    }
}

/// Sends `GET url` over a raw connection and hangs up after `patience`
/// without reading the answer, as an impatient user (or a closed browser tab)
/// does. Unlike [`leave_after`] it never panics: if the server cannot be
/// reached, the visit just ends sooner.
pub async fn leave_early(url: &str, patience: Duration) {
    let Ok(url) = Url::parse(url) else {
        return;
    };
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return;
    };
    let Ok(mut stream) = TcpStream::connect((host, port)).await else {
        return;
    };
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_ok() {
        tokio::time::sleep(patience).await;
    }
    // Dropping the stream closes the connection.
}

/// A duration in a unit read at a glance: `0.8 ms`, `250 ms`, `1.02 s`.
pub fn human(duration: Duration) -> String {
    if duration < Duration::from_millis(10) {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}
