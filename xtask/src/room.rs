//! The learner's side of the workshop room: once `cargo xtask join` has
//! joined it, the tool tells the instructor's dashboard where this
//! workbook's labs stand whenever they change.
//!
//! # What is sent, and what never is
//!
//! The learner's name (at join), then per lab: its state (not started,
//! failing k of n, passing, passing with edited tests...), the names of the
//! failing tests, how many hints were shown and the minutes spent on it.
//! Never code, file contents or paths: [`LabReport`] is everything, and the
//! room refuses any other field (the types are the room's own,
//! `xtask/classroom/src/wire.rs`).
//!
//! # When, and how it never slows the learner
//!
//! `check` and `watch` (after each check) and the served book's live state
//! (on every change it sees) call [`report`], which only wakes a background
//! thread and returns. That thread computes the states (as `status` does:
//! no test runs), and sends them if they differ from the last ones sent,
//! with a one-second timeout. It never prints: while the room is
//! unreachable it stays quiet, and in a long-running `watch` or `book` it
//! tries again every few seconds, so a restarted room gets every learner's
//! state back without anyone doing anything. A one-shot `check` waits for
//! the send at its very end, after printing, for at most [`TIMEOUT`].
//!
//! The membership (room, name, token) is kept in `.workbook-classroom.toml`
//! at the root, ignored by git; `cargo xtask leave` deletes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use classroom::wire::{self, JoinRequest, Joined, LabReport, LabState as Shown, Update};
use serde::{Deserialize, Serialize};

use crate::progress::{self, CheckResult, LabState, Progress};
use crate::workbook::{Workbook, write_atomically};

/// The membership file, at the repository root (listed in `.gitignore`).
pub const FILE_NAME: &str = ".workbook-classroom.toml";
/// How long one request to the room may take.
pub const TIMEOUT: Duration = Duration::from_secs(1);
/// How often a long-running verb tries again while the room is unreachable.
const RETRY: Duration = Duration::from_secs(5);

/// Which room this workbook joined, as whom.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Membership {
    /// `http://<address>:<port>`, without a trailing slash.
    pub url: String,
    pub code: String,
    pub name: String,
    pub learner: i64,
    /// Proves to the room that an update is this learner's.
    pub token: String,
    /// When each lab was started and first passed (Unix seconds), for the
    /// minutes sent.
    #[serde(default)]
    pub labs: BTreeMap<String, Timing>,
}

/// When a lab was started and first passed, as far as this tool saw.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<u64>,
}

impl Membership {
    pub fn path(root: &Path) -> PathBuf {
        root.join(FILE_NAME)
    }

    /// The room this workbook joined, if any.
    pub fn load(root: &Path) -> Option<Membership> {
        toml::from_str(&std::fs::read_to_string(Self::path(root)).ok()?).ok()
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let text = format!(
            "# The workshop room this workbook joined (`cargo xtask leave` deletes this).\n\n{}",
            toml::to_string(self)?
        );
        write_atomically(&Self::path(root), &text)
    }

    pub fn remove(root: &Path) {
        let _ = std::fs::remove_file(Self::path(root));
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Every lab's state now, as sent; updates `timing` (when each lab was
/// started and first passed).
pub fn update(
    workbook: &Workbook,
    timing: &mut BTreeMap<String, Timing>,
    now: u64,
) -> Result<Update> {
    let progress = Progress::load(&workbook.root);
    let mut labs = Vec::new();
    for (lab, state) in progress::states(workbook, &progress)? {
        let remembered = progress.lab(&lab.slug);
        let hints = remembered.hints_seen + remembered.hints_seen_for.values().sum::<usize>();
        let failing_names = |check: &progress::LastCheck| {
            let order = lab.test_order();
            // What the room would refuse is left out, not the whole update.
            let sendable = check.failed.iter().filter(|t| wire::is_test_name(t));
            let mut names: Vec<String> = sendable.take(wire::MAX_FAILING_TESTS).cloned().collect();
            names.sort_by_key(|name| (order(name), name.clone()));
            names
        };
        let (shown, failed, tests, failing_tests) = match &state {
            LabState::NotStarted => (Shown::NotStarted, 0, 0, Vec::new()),
            LabState::DidNotCompile => (Shown::DoesNotCompile, 0, 0, Vec::new()),
            LabState::Passing { tests } if progress::edited_tests(workbook, &lab).is_empty() => {
                (Shown::Passing, 0, *tests, Vec::new())
            }
            LabState::Passing { tests } => (Shown::PassingEditedTests, 0, *tests, Vec::new()),
            LabState::Failing { failed, tests } => {
                let names = remembered.last_check.as_ref().map(failing_names).unwrap_or_default();
                (Shown::Failing, *failed, *tests, names)
            }
            // Edited since its last check: the last result is still the
            // best the room can know.
            LabState::Unchecked => match &remembered.last_check {
                Some(check) if check.result == CheckResult::Failing => {
                    (Shown::Failing, check.failed.len(), check.tests, failing_names(check))
                }
                _ => (Shown::Started, 0, 0, Vec::new()),
            },
        };
        let entry = timing.entry(lab.slug.clone()).or_default();
        if state == LabState::NotStarted {
            *entry = Timing::default(); // reset: it starts over
        } else {
            entry.started.get_or_insert(now);
            if state.passing() {
                entry.passed.get_or_insert(now);
            }
        }
        let minutes = entry
            .started
            .map_or(0, |started| entry.passed.unwrap_or(now).saturating_sub(started) / 60);
        labs.push(LabReport {
            number: lab.number,
            slug: lab.slug.clone(),
            state: shown,
            failed: failed as u32,
            tests: tests as u32,
            failing_tests,
            hints: hints as u32,
            minutes: minutes as u32,
        });
    }
    Ok(Update { labs })
}

/// An HTTP client for the room: [`TIMEOUT`], no proxy (the room is on the
/// local network).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .build()
        .expect("an HTTP client without TLS builds")
}

/// Runs one request to the room on a small runtime of its own.
pub fn blocking<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for one request")
        .block_on(future)
}

/// The room's refusal, as it says it (`{"error": "..."}`).
pub async fn refusal(answer: reqwest::Response) -> String {
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or_default();
    match body["error"].as_str() {
        Some(why) => format!("{why} ({status})"),
        None => format!("the room answered {status}"),
    }
}

/// What a send did.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    /// The room has these states now.
    Sent(usize),
    /// The same as last time: nothing to send.
    Unchanged,
    /// Not joined to a room.
    NotJoined,
}

/// Computes the states and sends them unless they equal `last` (what was
/// last sent). A room that forgot this learner (started afresh) is joined
/// again with the same code and name.
pub async fn send(
    workbook: &Workbook,
    http: &reqwest::Client,
    last: &mut Option<Update>,
) -> Result<Sent> {
    let Some(mut membership) = Membership::load(&workbook.root) else {
        return Ok(Sent::NotJoined);
    };
    let before = membership.labs.clone();
    let update = update(workbook, &mut membership.labs, now())?;
    if membership.labs != before {
        membership.save(&workbook.root)?;
    }
    if last.as_ref() == Some(&update) {
        return Ok(Sent::Unchanged);
    }
    let put = |membership: &Membership| {
        http.put(format!("{}/api/learners/{}", membership.url, membership.learner))
            .bearer_auth(&membership.token)
            .json(&update)
            .send()
    };
    let mut answer = put(&membership).await?;
    if answer.status() == reqwest::StatusCode::NOT_FOUND {
        let joined = join(http, &membership.url, &membership.code, &membership.name).await?;
        membership.learner = joined.learner;
        membership.token = joined.token;
        membership.save(&workbook.root)?;
        answer = put(&membership).await?;
    }
    if !answer.status().is_success() {
        bail!("{}", refusal(answer).await);
    }
    let count = update.labs.len();
    *last = Some(update);
    Ok(Sent::Sent(count))
}

/// `POST /api/join`.
pub async fn join(http: &reqwest::Client, url: &str, code: &str, name: &str) -> Result<Joined> {
    let answer = http
        .post(format!("{url}/api/join"))
        .json(&JoinRequest { code: code.to_owned(), name: name.to_owned() })
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("{}", refusal(answer).await);
    }
    Ok(answer.json().await?)
}

/// Tells the room (in the background) that states may have changed. Returns
/// at once; does nothing unless this workbook joined a room.
pub fn report(workbook: &Workbook) {
    if !Membership::path(&workbook.root).exists() {
        return;
    }
    let reporter = REPORTER.get_or_init(|| Reporter::start(workbook.clone()));
    reporter.wake();
}

/// Waits until what was [`report`]ed is sent (or failed), for at most
/// `limit`: for a verb about to exit.
pub fn flush(limit: Duration) {
    if let Some(reporter) = REPORTER.get() {
        reporter.wait(limit);
    }
}

static REPORTER: OnceLock<Reporter> = OnceLock::new();

/// The background sender: a thread woken through a channel of one (a wake
/// already waiting covers any number of new ones, since each send carries
/// every lab), and counters to know when it caught up.
struct Reporter {
    wake: SyncSender<()>,
    /// (reports asked for, reports done), and a condition on their change.
    progress: Arc<(Mutex<(u64, u64)>, Condvar)>,
}

impl Reporter {
    fn start(workbook: Workbook) -> Reporter {
        let (wake, woken) = mpsc::sync_channel(1);
        let progress = Arc::new((Mutex::new((0, 0)), Condvar::new()));
        let shared = progress.clone();
        let started = std::thread::Builder::new().name("room-reporter".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(runtime) = runtime else { return };
            let http = client(TIMEOUT);
            let mut last = None;
            let mut failed = false;
            loop {
                let woke = if failed {
                    woken.recv_timeout(RETRY)
                } else {
                    woken.recv().map_err(|_| RecvTimeoutError::Disconnected)
                };
                if woke == Err(RecvTimeoutError::Disconnected) {
                    return;
                }
                let asked = shared.0.lock().map_or(0, |counts| counts.0);
                // Quiet: the room being away is no news for the learner.
                failed = runtime.block_on(send(&workbook, &http, &mut last)).is_err();
                if let Ok(mut counts) = shared.0.lock() {
                    counts.1 = counts.1.max(asked);
                }
                shared.1.notify_all();
            }
        });
        if started.is_err() {
            eprintln!("warning: could not start sending to the room");
        }
        Reporter { wake, progress }
    }

    fn wake(&self) {
        if let Ok(mut counts) = self.progress.0.lock() {
            counts.0 += 1;
        }
        // Full: a wake is already waiting, which covers this one.
        let _ = self.wake.try_send(());
    }

    fn wait(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let Ok(mut counts) = self.progress.0.lock() else { return };
        let wanted = counts.0;
        while counts.1 < wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            counts = match self.progress.1.wait_timeout(counts, left) {
                Ok((counts, _)) => counts,
                Err(_) => return,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON the tool sends is the JSON the room's own tests read
    /// (`xtask/classroom/tests/fixtures/update.json`).
    #[test]
    fn an_update_is_the_json_the_room_reads() {
        let update = Update {
            labs: vec![LabReport {
                number: 2,
                slug: "shared-state".into(),
                state: Shown::Failing,
                failed: 1,
                tests: 4,
                failing_tests: vec!["every_increment_is_counted".into()],
                hints: 1,
                minutes: 12,
            }],
        };
        let fixture = include_str!("../classroom/tests/fixtures/update.json");
        let expected: serde_json::Value = serde_json::from_str(fixture).unwrap();
        assert_eq!(serde_json::to_value(&update).unwrap(), expected);
    }
}
