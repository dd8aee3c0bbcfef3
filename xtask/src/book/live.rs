//! The served book knows your lab: every lab's chapter shows where that lab
//! stands (not started, failing, passing...), pushed to the open page with
//! server-sent events whenever `check`, `watch` or `status` records a result
//! or the learner edits the lab.
//!
//! # The endpoint
//!
//! `GET /workbook/events` is an event stream (`text/event-stream`). It sends
//! one `labs` event when a client connects and another whenever any lab's
//! state changes, each a single line of JSON:
//!
//! ```text
//! event: labs
//! data: {"labs":[{"number":2,"slug":"shared-state","folder":"02-shared-state",
//! data:   "title":"Shared state","state":"failing","failed":1,"tests":4,
//! data:   "summary":"✗ 1 of 4 checks failing","command":"cargo xtask watch shared-state"}]}
//! ```
//!
//! (shown wrapped; it is one `data:` line). `state` is one of `not-started`,
//! `unchecked` (changed since its last check), `does-not-compile`, `failing`,
//! `passing`; `failed` and `tests` count the last check's tests; `summary` and
//! `command` are what the page shows. A passing lab whose test files differ
//! from the shipped ones lists them in `edited_tests` (and its summary says
//! so, as `status` does: such a pass proves little). A comment line keeps the connection
//! alive every 15 s, and `retry: 1000` makes a browser reconnect within a
//! second when the server comes back. The page's side is
//! `book/theme/workbook-live.js` (listed in `book/book.toml`).
//!
//! # How a change is seen
//!
//! The states come from [`progress::states`], testing nothing, but with one
//! `git status` per lab: tens of milliseconds. So a thread takes a *stamp*
//! every 250 ms instead (the size and modification time of the progress
//! file, of every file under `labs/`, of the files every lab shares and of
//! git's index and HEAD: `stat` calls only), computes the states when it
//! changes, and sends an event when they differ from the last ones. What the
//! stamp cannot see (a commit made elsewhere) is caught by recomputing every
//! 5 s while a page listens.
//!
//! Stopping: [`Live::stop`] ends every open stream, so the server's graceful
//! shutdown does not wait for pages that would keep them open for ever.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;
use tower_http::services::fs::AsyncReadBody;

use crate::progress::{self, LabState, Progress};
use crate::workbook::{Lab, Workbook, files_under};

/// The path of the event stream.
pub const EVENTS_PATH: &str = "/workbook/events";

/// How often the stamp is taken.
const POLL: Duration = Duration::from_millis(250);
/// How often the states are recomputed anyway while a page listens.
const REFRESH: Duration = Duration::from_secs(5);
/// How often an idle stream sends a comment, so that nothing between the
/// page and the server closes it for being quiet.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long a browser waits before it reconnects (the `retry:` field).
const RECONNECT_MS: u32 = 1000;

/// The labs' states as the book sees them: a thread keeps them current, every
/// open stream follows them. Cheap to clone into handlers.
#[derive(Clone)]
pub struct Live {
    /// The last JSON sent, one line.
    states: watch::Receiver<Arc<str>>,
    /// Becomes `true` once the server stops.
    stopping: watch::Sender<bool>,
    /// How many streams are open.
    listeners: Arc<AtomicUsize>,
    /// The thread that keeps the states current.
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Live {
    /// Computes the states once (so the first event is right) and starts the
    /// thread that keeps them current.
    pub fn start(workbook: Workbook) -> Live {
        let stamp = stamp(&workbook);
        let (sender, states) = watch::channel(snapshot(&workbook));
        let (stopping, stopped) = watch::channel(false);
        let listeners = Arc::new(AtomicUsize::new(0));
        let thread = thread::Builder::new()
            .name("book-live-state".into())
            .spawn({
                let listeners = listeners.clone();
                move || keep_current(&workbook, &sender, &stopped, &listeners, stamp)
            })
            .map_err(|error| eprintln!("warning: the book will not show live lab states: {error}"))
            .ok();
        Live { states, stopping, listeners, thread: Arc::new(Mutex::new(thread)) }
    }

    /// Ends every open stream at once, and the thread (within a poll and a
    /// computation of the states).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Waits for the thread to end, after [`Live::stop`].
    pub fn join(&self) {
        if let Some(thread) = self.thread.lock().ok().and_then(|mut thread| thread.take()) {
            let _ = thread.join();
        }
    }
}

/// Counts an open stream while it lives.
struct Listening(Arc<AtomicUsize>);

impl Listening {
    fn new(listeners: &Arc<AtomicUsize>) -> Listening {
        listeners.fetch_add(1, Ordering::SeqCst);
        Listening(listeners.clone())
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `GET /workbook/events`: the labs' states now, then on every change.
pub async fn events(State(live): State<Live>) -> Response {
    // The stream is written as text into an in-memory pipe whose other end
    // is the response body: the SSE format is three kinds of line. (axum's
    // `Sse` would want a `futures::Stream`, a crate the xtask does not use.)
    let (reader, mut writer) = tokio::io::simplex(16 * 1024);
    let mut states = live.states.clone();
    let mut stopping = live.stopping.subscribe();
    let listening = Listening::new(&live.listeners);
    tokio::spawn(async move {
        let _listening = listening;
        // An error means the page went away: nothing to do but stop.
        let _ = stream_states(&mut writer, &mut states, &mut stopping).await;
        let _ = writer.shutdown().await;
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::new(AsyncReadBody::with_capacity(reader, 16 * 1024)),
    )
        .into_response()
}

/// Writes the current states, then each change and keep-alive comments,
/// until the server stops or the page goes away (a write fails).
async fn stream_states(
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    states: &mut watch::Receiver<Arc<str>>,
    stopping: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    out.write_all(format!("retry: {RECONNECT_MS}\n\n").as_bytes()).await?;
    loop {
        if *stopping.borrow() {
            return Ok(());
        }
        let data = states.borrow_and_update().clone();
        out.write_all(format!("event: labs\ndata: {data}\n\n").as_bytes()).await?;
        out.flush().await?;
        loop {
            tokio::select! {
                changed = states.changed() => match changed {
                    Ok(()) => break,
                    Err(_) => return Ok(()),
                },
                () = stopped(stopping) => return Ok(()),
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    out.write_all(b": keep-alive\n\n").await?;
                    out.flush().await?;
                }
            }
        }
    }
}

/// Completes once the server stops.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // An error means the server is gone: stopped too.
    let _ = stopping.wait_for(|stopping| *stopping).await.map(drop);
}

/// The thread's loop: a new stamp every [`POLL`]; new states when it
/// changed (or every [`REFRESH`] while a page listens), published when they
/// differ from the last ones.
fn keep_current(
    workbook: &Workbook,
    sender: &watch::Sender<Arc<str>>,
    stopped: &watch::Receiver<bool>,
    listeners: &AtomicUsize,
    mut last_stamp: u64,
) {
    let mut computed = Instant::now();
    loop {
        thread::sleep(POLL);
        if *stopped.borrow() {
            return;
        }
        let new_stamp = stamp(workbook);
        let listened = listeners.load(Ordering::SeqCst) > 0;
        if new_stamp == last_stamp && !(listened && computed.elapsed() >= REFRESH) {
            continue;
        }
        if new_stamp != last_stamp {
            // A joined workshop room hears of it too (in the background).
            crate::room::report(workbook);
        }
        last_stamp = new_stamp;
        computed = Instant::now();
        let json = snapshot(workbook);
        sender.send_if_modified(|current| {
            let changed = **current != *json;
            if changed {
                *current = json;
            }
            changed
        });
    }
}

/// Size and modification time of every file the labs' states depend on,
/// hashed: stat calls only. A missing file counts, too.
fn stamp(workbook: &Workbook) -> u64 {
    let root = &workbook.root;
    let mut paths: Vec<PathBuf> = files_under(&root.join("labs"));
    paths.push(Progress::path(root));
    for shared in ["Cargo.toml", "Cargo.lock", ".cargo/config.toml", ".git/index", ".git/HEAD"] {
        paths.push(root.join(shared));
    }
    let mut hasher = DefaultHasher::new();
    for path in &paths {
        path.hash(&mut hasher);
        match std::fs::metadata(path) {
            Ok(meta) => {
                meta.len().hash(&mut hasher);
                meta.modified().ok().hash(&mut hasher);
            }
            Err(_) => "missing".hash(&mut hasher),
        }
    }
    hasher.finish()
}

/// One lab as the page sees it.
#[derive(Debug, Serialize)]
struct LabView {
    number: u32,
    slug: String,
    /// `NN-slug`: the chapter is `NN-slug.html`.
    folder: String,
    title: String,
    /// `not-started`, `unchecked`, `does-not-compile`, `failing`, `passing`.
    state: &'static str,
    failed: usize,
    tests: usize,
    /// What the badge says, as `cargo xtask status` says it.
    summary: String,
    /// What to run next (empty once the lab passes).
    command: String,
    /// A passing lab's test files that differ from the shipped ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    edited_tests: Vec<String>,
}

/// Every lab's state, as one line of JSON.
#[derive(Debug, Serialize)]
struct Snapshot {
    labs: Vec<LabView>,
    /// Why there are no labs, if they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The labs' states now, as the JSON the events carry.
fn snapshot(workbook: &Workbook) -> Arc<str> {
    let snapshot = match progress::states(workbook, &Progress::load(&workbook.root)) {
        Ok(states) => Snapshot {
            labs: states.iter().map(|(lab, state)| view(workbook, lab, state)).collect(),
            error: None,
        },
        Err(error) => Snapshot { labs: Vec::new(), error: Some(format!("{error:#}")) },
    };
    serde_json::to_string(&snapshot).expect("the snapshot is plain data").into()
}

fn view(workbook: &Workbook, lab: &Lab, state: &LabState) -> LabView {
    let watch = format!("cargo xtask watch {}", lab.slug);
    let check = format!("cargo xtask check {}", lab.slug);
    let (word, failed, tests, command) = match *state {
        LabState::NotStarted => ("not-started", 0, 0, watch),
        LabState::Unchecked => ("unchecked", 0, 0, check),
        LabState::DidNotCompile => ("does-not-compile", 0, 0, check),
        LabState::Failing { failed, tests } => ("failing", failed, tests, watch),
        LabState::Passing { tests } => ("passing", 0, tests, String::new()),
    };
    let summary = state.summary();
    // As `status` says it: a pass with edited tests is not a plain ✓.
    let edited_tests =
        if state.passing() { progress::edited_tests(workbook, lab) } else { Vec::new() };
    let (summary, command) = if edited_tests.is_empty() {
        (summary, command)
    } else {
        (
            "! passing, with edited tests".to_owned(),
            format!("git checkout -- {}", edited_tests.join(" ")),
        )
    };
    LabView {
        number: lab.number,
        slug: lab.slug.clone(),
        folder: lab.folder_name(),
        title: lab.title.clone(),
        state: word,
        failed,
        tests,
        summary,
        command,
        edited_tests,
    }
}
