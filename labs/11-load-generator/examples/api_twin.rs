//! The servers `cargo xtask bench` measures besides the labs' own: the
//! tutorial's `/api` in axum with a delay of your choice (the twin of
//! `bench/api.go`, so axum and Go are compared on the same handler), and a
//! large body written in small pieces or in one buffer (the Go tutorial's
//! "buffer your writes" tip, measured for axum).
//!
//! `cargo run -p load-generator --release --features bench --example api_twin -- --port 0`
//! with `API_DELAY_MS=50` for the audit-log delay of lab 02 (default 0), and
//! `TCP_NODELAY=1` to send small answers at once: `axum::serve` leaves Nagle's
//! algorithm on, Go's `net/http` turns it off.
//!
//! - `GET /api`: `{"request_num": …, "method": …, "path": …}` after the delay.
//! - `GET /lines/unbuffered`: 64 KiB as 1024 lines of 64 bytes, each its own
//!   chunk of the body stream (as many small writes to the connection).
//! - `GET /lines/buffered`: the same 64 KiB built in one buffer first.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde::Serialize;

const LINES: usize = 1024;

#[derive(Serialize)]
struct Served {
    request_num: u64,
    method: String,
    path: String,
}

struct Api {
    counter: AtomicU64,
    delay: Duration,
}

async fn api(State(api): State<Arc<Api>>, method: Method, uri: Uri) -> Json<Served> {
    let request_num = api.counter.fetch_add(1, Ordering::Relaxed) + 1;
    // No timer at all for no delay: even a zero sleep waits for tokio's
    // next 1 ms tick.
    if !api.delay.is_zero() {
        tokio::time::sleep(api.delay).await;
    }
    Json(Served {
        request_num,
        method: method.to_string(),
        path: uri.path().to_owned(),
    })
}

fn line(n: usize) -> String {
    format!(
        "{n:>8} the quick brown fox jumps over the lazy dog {:>10}\n",
        ""
    )
}

async fn unbuffered() -> Body {
    let lines = (0..LINES).map(|n| Ok::<_, Infallible>(Bytes::from(line(n))));
    Body::from_stream(futures::stream::iter(lines))
}

async fn buffered() -> Body {
    let mut text = String::with_capacity(LINES * 64);
    (0..LINES).for_each(|n| text.push_str(&line(n)));
    Body::from(text)
}

fn main() -> std::io::Result<()> {
    let delay_ms = std::env::var("API_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    let nodelay = std::env::var("TCP_NODELAY").is_ok_and(|v| v == "1");
    let port: u16 = match std::env::args().skip_while(|a| a != "--port").nth(1) {
        Some(port) => port
            .parse()
            .map_err(|_| std::io::Error::other("--port: not a port"))?,
        None => 8080,
    };
    let state = Arc::new(Api {
        counter: AtomicU64::new(0),
        delay: Duration::from_millis(delay_ms),
    });
    let app = Router::new()
        .route("/api", get(api))
        .route("/lines/unbuffered", get(unbuffered))
        .route("/lines/buffered", get(buffered))
        .with_state(state);
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        println!(
            "api-twin listening on http://{} (Ctrl-C to stop)",
            listener.local_addr()?
        );
        let listener = listener.tap_io(move |stream| {
            if nodelay {
                let _ = stream.set_nodelay(true);
            }
        });
        tokio::select! {
            served = axum::serve(listener, app) => served,
            _ = stop_signal() => Ok(()),
        }
    })
}

/// Ctrl-C, or SIGTERM (how `cargo xtask bench` stops its servers).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
