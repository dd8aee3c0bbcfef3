//! Lab 10 · graceful-shutdown: stop without dropping anyone, and stop in time.
//!
//! A server is stopped all the time: every deploy, every scale-down, every
//! node drained. Kubernetes, systemd and `docker stop` ask first, with
//! SIGTERM, and kill later. A server that does not catch the signal dies at
//! once, cutting every request in flight. A server that catches it should
//! stop taking new connections, let the requests in flight finish, end what
//! would never finish on its own (an event stream, a client that went quiet
//! halfway through its headers), and exit, all within a deadline.
//!
//! Here serving and stopping *are* the lesson, so this lab does not use the
//! workbook's `LabServer`: [`serve`] takes the listener, the "please stop"
//! signal and the deadline from `main.rs` (or from anything else that wants
//! to stop it), and returns when the server has stopped.
//!
//! Routes:
//! - `GET /work?ms=2000`: a slow request (a sleep of `ms` ms), answers 200.
//! - `GET /events`: a server-sent event stream, one `tick` a second, endless.
//! - `GET /health`: `{"in_flight":…,"streams":…,"pid":…}`: slow requests, open
//!   streams, and the process id to send a signal to.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Query;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Extension, Json, Router};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How long a shutdown may take unless `--shutdown-timeout` says otherwise:
/// Kubernetes' default `terminationGracePeriodSeconds`, after which it sends
/// SIGKILL anyway.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

// ANCHOR: signal
/// Completes when the user presses Ctrl-C.
pub async fn shutdown_signal() {
    // An error here means no handler could be installed: then never fire.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
// ANCHOR_END: signal

// ANCHOR: serve
/// Serves the app on `listener` until `shutdown` completes.
///
/// `deadline` is the longest a shutdown may take.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    _deadline: Duration,
) -> std::io::Result<()> {
    let load = Load::default();
    let app = app(load.clone());
    tokio::select! {
        served = axum::serve(listener, app) => served,
        () = shutdown => {
            tracing::info!(
                in_flight = load.in_flight(),
                streams = load.streams(),
                "asked to stop"
            );
            Ok(())
        }
    }
}
// ANCHOR_END: serve

/// The lab's routes. `load` counts the slow requests and open streams.
pub fn app(load: Load) -> Router {
    Router::new()
        .route("/work", get(work))
        .route("/events", get(events))
        .route("/health", get(health))
        .layer(Extension(load))
}

/// The query string of `/work`, e.g. `?ms=500`.
#[derive(Debug, Deserialize)]
struct Work {
    ms: Option<u64>,
}

/// How long `/work` takes when it does not say.
const DEFAULT_WORK: Duration = Duration::from_secs(2);
/// How often `/events` sends a tick.
const TICK_EVERY: Duration = Duration::from_secs(1);

/// `GET /work?ms=N`: a slow request, such as a report or an upload being
/// processed; here a sleep.
async fn work(Extension(load): Extension<Load>, Query(work): Query<Work>) -> String {
    let _counted = load.request_started();
    let duration = work.ms.map_or(DEFAULT_WORK, Duration::from_millis);
    tokio::time::sleep(duration).await;
    format!("done after {} ms\n", duration.as_millis())
}

// ANCHOR: events
/// `GET /events`: a tick every second, for as long as the client listens.
async fn events(
    Extension(load): Extension<Load>,
) -> Sse<impl Stream<Item = Result<Event, axum::Error>>> {
    Sse::new(ticks(load).map(Ok)).keep_alive(KeepAlive::default())
}
// ANCHOR_END: events

/// An endless stream of numbered ticks, counted as an open stream while it lives.
fn ticks(load: Load) -> impl Stream<Item = Event> {
    async_stream::stream! {
        let _counted = load.stream_opened();
        let mut every = tokio::time::interval(TICK_EVERY);
        for n in 1_u64.. {
            every.tick().await;
            yield Event::default().event("tick").data(n.to_string());
        }
    }
}

/// `GET /health`: what the server is busy with, and its process id (for
/// `kill -TERM <pid>`).
async fn health(Extension(load): Extension<Load>) -> Json<Value> {
    Json(json!({
        "in_flight": load.in_flight(),
        "streams": load.streams(),
        "pid": std::process::id(),
    }))
}

/// How busy the server is: slow requests running and streams open. Clones
/// share the counts.
#[derive(Debug, Clone, Default)]
pub struct Load(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    in_flight: AtomicUsize,
    streams: AtomicUsize,
}

impl Load {
    /// Slow requests running now.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::SeqCst)
    }

    /// Event streams open now.
    pub fn streams(&self) -> usize {
        self.0.streams.load(Ordering::SeqCst)
    }

    /// Counts a slow request until the guard drops, however the request ends.
    fn request_started(&self) -> Counted {
        Counted::new(self.clone(), |counts| &counts.in_flight)
    }

    /// Counts an open stream until the guard drops.
    fn stream_opened(&self) -> Counted {
        Counted::new(self.clone(), |counts| &counts.streams)
    }
}

/// One count in a [`Load`], taken back when dropped.
struct Counted {
    load: Load,
    counter: fn(&Counts) -> &AtomicUsize,
}

impl Counted {
    fn new(load: Load, counter: fn(&Counts) -> &AtomicUsize) -> Self {
        counter(&load.0).fetch_add(1, Ordering::SeqCst);
        Counted { load, counter }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        (self.counter)(&self.load.0).fetch_sub(1, Ordering::SeqCst);
    }
}
