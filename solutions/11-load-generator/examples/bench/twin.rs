//! The axum twin of `labs/11-load-generator/bench/api.go`: the tutorial's
//! `/api` without its sleep (a counter and a JSON answer), so axum and Go are
//! compared on the same handler; and a 64 KiB body written as 1024 small
//! chunks or as one buffer (the Go tutorial's "buffer your writes" tip).
//!
//! A [`Variant`] is one way to run it: the runtime's scheduler settings, the
//! listen backlog, `TCP_NODELAY`. The bench starts each variant as its own
//! process (`bench serve <name>`), one runtime thread, pinned to one core.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpSocket;

/// One way to run the same server. `None` keeps tokio's (or mio's) default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Variant {
    pub name: &'static str,
    pub what: &'static str,
    /// Turn Nagle's algorithm off on every connection, as Go's `net` does.
    pub nodelay: bool,
    /// `listen(2)`'s backlog; `TcpListener::bind` uses 128.
    pub backlog: Option<u32>,
    /// The current-thread scheduler instead of a multi-thread one with one worker.
    pub current_thread: bool,
    /// No LIFO slot: a task woken by the running one waits its turn like the rest.
    pub no_lifo_slot: bool,
    /// Scheduler ticks between two polls of the I/O driver (default 61).
    pub event_interval: Option<u32>,
    /// Scheduler ticks between two looks at the global queue (default 31).
    pub global_queue_interval: Option<u32>,
    /// Ready events the I/O driver takes per poll (default 1024).
    pub max_io_events: Option<usize>,
}

/// Every variant the bench knows; the first is axum's defaults.
#[rustfmt::skip]
pub const VARIANTS: &[Variant] = &[
    Variant { name: "axum", what: "defaults: one worker thread, backlog 128", ..DEFAULT },
    Variant { name: "axum-nodelay", what: "TCP_NODELAY on, as Go", nodelay: true, ..DEFAULT },
    Variant { name: "axum-backlog", what: "listen backlog 4096, as Go (somaxconn)", backlog: Some(4096), ..DEFAULT },
    Variant { name: "axum-no-lifo", what: "the LIFO slot disabled", no_lifo_slot: true, ..DEFAULT },
    Variant { name: "axum-event-1", what: "I/O driver polled every tick (event_interval 1)", event_interval: Some(1), ..DEFAULT },
    Variant { name: "axum-global-1", what: "global queue checked every tick (global_queue_interval 1)", global_queue_interval: Some(1), ..DEFAULT },
    Variant { name: "axum-io-64", what: "64 ready events per I/O poll (max_io_events_per_tick)", max_io_events: Some(64), ..DEFAULT },
    Variant { name: "axum-current", what: "the current-thread scheduler", current_thread: true, ..DEFAULT },
    Variant { name: "axum-current-tuned", what: "current-thread, backlog 4096, TCP_NODELAY", current_thread: true, backlog: Some(4096), nodelay: true, ..DEFAULT },
    Variant { name: "axum-current-batch", what: "current-thread, backlog 4096, I/O polled every 1024 ticks", current_thread: true, backlog: Some(4096), event_interval: Some(1024), ..DEFAULT },
];

const DEFAULT: Variant = Variant {
    name: "",
    what: "",
    nodelay: false,
    backlog: None,
    current_thread: false,
    no_lifo_slot: false,
    event_interval: None,
    global_queue_interval: None,
    max_io_events: None,
};

pub fn variant(name: &str) -> Option<Variant> {
    VARIANTS.iter().copied().find(|v| v.name == name)
}

const LINES: usize = 1024;

#[derive(Serialize)]
struct Served {
    request_num: u64,
    method: String,
    path: String,
}

async fn api(State(counter): State<Arc<AtomicU64>>, method: Method, uri: Uri) -> Json<Served> {
    let request_num = counter.fetch_add(1, Ordering::Relaxed) + 1;
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

/// Each line its own chunk of the body stream: as many small writes.
async fn unbuffered() -> Body {
    let lines = (0..LINES).map(|n| Ok::<_, Infallible>(Bytes::from(line(n))));
    Body::from_stream(futures::stream::iter(lines))
}

async fn buffered() -> Body {
    Body::from((0..LINES).map(line).collect::<String>())
}

/// `GET /runtime`: what the scheduler did so far, for the bench to read
/// after a run: how often the worker's local run queue (256 tasks) overflowed,
/// moving its oldest half to the global queue, and how many tasks were
/// scheduled from outside the worker.
async fn runtime_counts() -> Json<serde_json::Value> {
    let metrics = tokio::runtime::Handle::current().metrics();
    let overflows: u64 = (0..metrics.num_workers())
        .map(|w| metrics.worker_overflow_count(w))
        .sum();
    Json(
        serde_json::json!({ "overflows": overflows, "remote_schedules": metrics.remote_schedule_count() }),
    )
}

/// Serves on 127.0.0.1 (any free port) until the process is killed, after
/// printing `listening on http://ADDR`.
pub fn serve(variant: Variant) -> std::io::Result<()> {
    let mut runtime = if variant.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1);
        builder
    };
    runtime.enable_all();
    if variant.no_lifo_slot {
        runtime.disable_lifo_slot();
    }
    if let Some(ticks) = variant.event_interval {
        runtime.event_interval(ticks);
    }
    if let Some(ticks) = variant.global_queue_interval {
        runtime.global_queue_interval(ticks);
    }
    if let Some(events) = variant.max_io_events {
        runtime.max_io_events_per_tick(events);
    }
    let app = Router::new()
        .route("/api", get(api))
        .route("/lines/unbuffered", get(unbuffered))
        .route("/lines/buffered", get(buffered))
        .route("/runtime", get(runtime_counts))
        .with_state(Arc::new(AtomicU64::new(0)));
    runtime.build()?.block_on(async move {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(variant.backlog.unwrap_or(128))?;
        println!(
            "{} listening on http://{}",
            variant.name,
            listener.local_addr()?
        );
        let nodelay = variant.nodelay;
        let listener = listener.tap_io(move |stream| {
            if nodelay {
                let _ = stream.set_nodelay(true);
            }
        });
        axum::serve(listener, app).await
    })
}
