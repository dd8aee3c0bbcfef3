//! The labs' states, pushed to each lab's chapter as they change.
//!
//! `GET /workbook/events` is an event stream, read by
//! `book/theme/workbook-live.js`: `retry: 1000` (reconnect within a second
//! once the server is back), then a `labs` event on connecting and on every
//! change, its data one line of JSON:
//!
//! ```text
//! {"labs":[{"number":2,"slug":"shared-state","folder":"02-shared-state",
//!   "title":"Shared state","state":"failing","failed":1,"tests":4,
//!   "summary":"✗ 1 of 4 checks failing","command":"cargo xtask watch shared-state"}]}
//! ```
//!
//! `state` is `not-started`, `unchecked` (changed since its last check),
//! `does-not-compile`, `failing` or `passing`; a pass with edited test files
//! lists them in `edited_tests`; `error` says why there are no labs.
//!
//! The states cost a `git status` per lab, so a thread hashes a cheap stamp
//! every 250 ms instead (the `stat` of every file they depend on) and
//! computes them when it changes, or every 5 s while a page listens (for
//! what the stamp misses, e.g. a commit made elsewhere).

use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::WatchStream;

use crate::progress::{self, LabState, Progress};
use crate::workbook::{Lab, Workbook, files_under};

pub const EVENTS_PATH: &str = "/workbook/events";

const POLL: Duration = Duration::from_millis(250);
const REFRESH: Duration = Duration::from_secs(5);

/// The labs' states as the JSON the events carry, kept current by a thread.
/// `None` once the server stops: that ends every open stream at once (the
/// server's graceful shutdown would wait for them for ever). Only the open
/// streams hold receivers, so `receiver_count` is how many pages listen.
#[derive(Clone)]
pub struct Live(watch::Sender<Option<Arc<str>>>);

impl Live {
    /// Computes the states once, so the first event is right, and starts the
    /// thread that keeps them current; it ends within a poll after
    /// [`Live::stop`].
    pub fn start(workbook: Workbook) -> (Live, JoinHandle<()>) {
        let stamp = stamp(&workbook);
        let live = Live(watch::Sender::new(Some(snapshot(&workbook))));
        let sender = live.0.clone();
        (live, tokio::task::spawn_blocking(move || keep_current(&workbook, &sender, stamp)))
    }

    pub fn stop(&self) {
        self.0.send_replace(None);
    }
}

/// `GET /workbook/events`: the labs' states now, then on every change.
pub async fn events(State(live): State<Live>) -> Response {
    let retry =
        tokio_stream::once(Ok::<_, Infallible>(Event::default().retry(Duration::from_secs(1))));
    let labs = WatchStream::new(live.0.subscribe())
        .map_while(|json| Some(Ok(Event::default().event("labs").data(json?.as_ref()))));
    // A comment every 15 s keeps a quiet stream from being closed on the way.
    Sse::new(retry.chain(labs)).keep_alive(KeepAlive::new()).into_response()
}

fn keep_current(workbook: &Workbook, sender: &watch::Sender<Option<Arc<str>>>, mut last: u64) {
    let mut computed = Instant::now();
    loop {
        thread::sleep(POLL);
        if sender.borrow().is_none() {
            return;
        }
        let stamp = stamp(workbook);
        let listened = sender.receiver_count() > 0;
        if stamp == last && !(listened && computed.elapsed() >= REFRESH) {
            continue;
        }
        if stamp != last {
            // A joined workshop room hears of it too (in the background).
            crate::room::report(workbook);
        }
        (last, computed) = (stamp, Instant::now());
        let json = snapshot(workbook);
        // Not once stopped: the streams have ended.
        sender.send_if_modified(|current| {
            let changed = current.as_ref().is_some_and(|current| **current != *json);
            changed && current.replace(json).is_some()
        });
    }
}

/// The size and modification time of every file the labs' states depend on,
/// hashed: `stat` calls only. A missing file counts, too.
fn stamp(workbook: &Workbook) -> u64 {
    let root = &workbook.root;
    let shared = ["Cargo.toml", "Cargo.lock", ".cargo/config.toml", ".git/index", ".git/HEAD"];
    let mut paths = files_under(&root.join("labs"));
    paths.extend(shared.iter().map(|path| root.join(path)).chain([Progress::path(root)]));
    let mut hasher = DefaultHasher::new();
    for path in &paths {
        path.hash(&mut hasher);
        let meta = std::fs::metadata(path).ok();
        meta.as_ref().map(|meta| (meta.len(), meta.modified().ok())).hash(&mut hasher);
    }
    hasher.finish()
}

#[derive(Serialize)]
struct Snapshot {
    labs: Vec<LabView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct LabView {
    number: u32,
    slug: String,
    folder: String,
    title: String,
    state: &'static str,
    failed: usize,
    tests: usize,
    summary: String,
    command: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    edited_tests: Vec<String>,
}

fn snapshot(workbook: &Workbook) -> Arc<str> {
    let (labs, error) = match progress::states(workbook, &Progress::load(&workbook.root)) {
        Ok(states) => {
            (states.iter().map(|(lab, state)| view(workbook, lab, state)).collect(), None)
        }
        Err(error) => (Vec::new(), Some(format!("{error:#}"))),
    };
    serde_json::to_string(&Snapshot { labs, error }).expect("the snapshot is plain data").into()
}

fn view(workbook: &Workbook, lab: &Lab, state: &LabState) -> LabView {
    let watch = format!("cargo xtask watch {}", lab.slug);
    let check = format!("cargo xtask check {}", lab.slug);
    let (state_word, failed, tests, mut command) = match *state {
        LabState::NotStarted => ("not-started", 0, 0, watch),
        LabState::Unchecked => ("unchecked", 0, 0, check),
        LabState::DidNotCompile => ("does-not-compile", 0, 0, check),
        LabState::Failing { failed, tests } => ("failing", failed, tests, watch),
        LabState::Passing { tests } => ("passing", 0, tests, String::new()),
    };
    let mut summary = state.summary();
    // As `status` says it: a pass with edited tests is not a plain ✓.
    let edited_tests =
        if state.passing() { progress::edited_tests(workbook, lab) } else { Vec::new() };
    if !edited_tests.is_empty() {
        summary = "! passing, with edited tests".to_owned();
        command = format!("git checkout -- {}", edited_tests.join(" "));
    }
    LabView {
        number: lab.number,
        slug: lab.slug.clone(),
        folder: lab.folder_name(),
        title: lab.title.clone(),
        state: state_word,
        failed,
        tests,
        summary,
        command,
        edited_tests,
    }
}
