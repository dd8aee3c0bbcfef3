//! Clients that behave like a server's users: many at once, impatient ones
//! that leave early, and ones from another address.
//!
//! Every transport error panics with the URL and a hint, because in a lab test
//! a refused or reset connection is itself the finding ("did the server
//! crash?"), and a plain `unwrap` would hide which request it was.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A complete response, and how long it took from sending to the last byte.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
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

/// A client whose connections come from `source` (e.g. `127.0.0.2`), so the
/// server sees a different peer address. Every `127.x.y.z` is loopback on
/// Linux; macOS needs `sudo ifconfig lo0 alias 127.0.0.2 up` first.
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
