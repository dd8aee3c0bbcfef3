//! "Going further" of lab 11: the same closed-loop generator, one HTTP/1
//! connection per worker, driven through hyper's client API
//! (`hyper::client::conn::http1`) instead of reqwest's pooled `Client`.
//!
//! The lesson is unchanged: N workers, all busy, each waiting for its whole
//! answer before it sends again. What goes is the work a general-purpose
//! client does per request that a load generator does not need: finding a
//! pooled connection for the host, parsing the URL, the redirect and timeout
//! machinery. Each worker owns its connection, so there is nothing to share.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use load_generator::{Config, ErrorKind, Outcome, Report, Stop, Tally};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Like [`load_generator::run`], one connection per worker. Only
/// `Stop::After` is needed by the bench; it waits for requests in flight at
/// the deadline, as the lab's generator does.
pub async fn run(config: &Config) -> Report {
    let Stop::After(duration) = config.stop else {
        panic!("the fast generator runs for a time")
    };
    let deadline = Instant::now() + duration;
    let uri: hyper::Uri = config.url.parse().expect("a valid URL");
    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        workers.spawn(worker(uri.clone(), deadline, config.timeout));
    }
    let mut tally = Tally::default();
    while let Some(finished) = workers.join_next().await {
        tally.merge(finished.expect("a worker never panics"));
    }
    tally.report(config, started.elapsed())
}

async fn worker(uri: hyper::Uri, deadline: Instant, timeout: Duration) -> Tally {
    let mut tally = Tally::default();
    while Instant::now() < deadline {
        if let Err(kind) = session(&uri, deadline, timeout, &mut tally).await {
            tally.record(Outcome {
                latency: None,
                error: Some(kind),
            });
        }
    }
    tally
}

/// Opens one connection and sends on it, one request after another, until
/// the deadline or until it fails. The connection's I/O is driven in this
/// same task, not spawned: one wake-up per answer instead of two.
async fn session(
    uri: &hyper::Uri,
    deadline: Instant,
    timeout: Duration,
    tally: &mut Tally,
) -> Result<(), ErrorKind> {
    let authority = uri.authority().expect("a URL with a host").as_str();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|_| ErrorKind::Refused)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::Other)?;
    let mut connection = std::pin::pin!(connection);
    while Instant::now() < deadline {
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let sent = Instant::now();
        let exchange = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        };
        let answer = tokio::select! {
            answer = tokio::time::timeout(timeout, exchange) => answer,
            // Ends only if the connection does, with the request unanswered.
            _ = &mut connection => return Err(ErrorKind::Other),
        };
        match answer {
            Ok(Ok(status)) => tally.record(Outcome {
                latency: Some(sent.elapsed()),
                error: status_error(status.as_u16()),
            }),
            Ok(Err(_)) => return Err(ErrorKind::Other),
            Err(_) => return Err(ErrorKind::Timeout),
        }
    }
    Ok(())
}

fn status_error(status: u16) -> Option<ErrorKind> {
    match status {
        400..=499 => Some(ErrorKind::Status4xx),
        500..=599 => Some(ErrorKind::Status5xx),
        _ => None,
    }
}
