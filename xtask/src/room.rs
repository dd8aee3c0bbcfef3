//! The learner's side of the workshop room: once `cargo xtask join` has
//! joined it (and told the learner what is sent, and what never is), the
//! tool sends the room where this workbook's labs stand whenever they change.
//!
//! It never slows the learner: [`report`] (from `check`, `watch` and the
//! served book) only wakes a background thread, which computes the states
//! (no test runs) and sends them, quietly, if they changed. While the room
//! is away it tries again every [`RETRY`], so a restarted room gets every
//! state back; a one-shot `check` waits for its send at its end ([`flush`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use classroom::client::{Client, Seat};
use classroom::wire::{self, LabReport, LabState as Shown, Update};
use serde::{Deserialize, Serialize};

use crate::progress::{self, CheckResult, LabState, Progress};
use crate::workbook::{Workbook, write_atomically};

/// How long one request to the room may take.
pub const TIMEOUT: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_secs(5);

/// Which room this workbook joined, as whom, and when each lab was started
/// and first passed (for the minutes sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    #[serde(flatten)]
    pub seat: Seat,
    #[serde(default)]
    pub labs: Timings,
}

/// By lab (slug), in Unix seconds.
pub type Timings = BTreeMap<String, Timing>;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub started: Option<u64>,
    pub passed: Option<u64>,
}

/// The membership's file, at the root (ignored by git).
pub const FILE: &str = ".workbook-classroom.toml";

impl Membership {
    pub fn load(root: &Path) -> Option<Membership> {
        toml::from_str(&std::fs::read_to_string(root.join(FILE)).ok()?).ok()
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let text = toml::to_string(self)?;
        let why = "# The workshop room this workbook joined (`cargo xtask leave` deletes this).";
        write_atomically(&root.join(FILE), &format!("{why}\n\n{text}"))
    }
}

/// Every lab's state now, as sent; updates `timing`.
pub fn update(workbook: &Workbook, timing: &mut Timings, now: u64) -> Result<Update> {
    let progress = Progress::load(&workbook.root);
    let mut labs = Vec::new();
    for (lab, state) in progress::states(workbook, &progress)? {
        let remembered = progress.lab(&lab.slug);
        let hints = remembered.hints_seen + remembered.hints_seen_for.values().sum::<usize>();
        let (shown, failed, tests, failing_tests) = match (&state, &remembered.last_check) {
            (LabState::NotStarted, _) => (Shown::NotStarted, 0, 0, Vec::new()),
            (LabState::DidNotCompile, _) => (Shown::DoesNotCompile, 0, 0, Vec::new()),
            (LabState::Passing { tests }, _) => {
                let edited = !progress::edited_tests(workbook, &lab).is_empty();
                let shown = if edited { Shown::PassingEditedTests } else { Shown::Passing };
                (shown, 0, *tests, Vec::new())
            }
            // Failing, or edited since a failing check: the last result is
            // still the best the room can know.
            (LabState::Failing { .. } | LabState::Unchecked, Some(check))
                if check.result == CheckResult::Failing =>
            {
                let order = lab.test_order();
                // What the room would refuse is left out, not the whole update.
                let sendable = check.failed.iter().filter(|t| wire::is_test_name(t));
                let mut names: Vec<_> = sendable.take(wire::MAX_FAILING_TESTS).cloned().collect();
                names.sort_by_key(|name| (order(name), name.clone()));
                (Shown::Failing, check.failed.len(), check.tests, names)
            }
            _ => (Shown::Started, 0, 0, Vec::new()),
        };
        // When it was started and first passed; a lab back at its starter starts over.
        let (entry, started) =
            (timing.entry(lab.slug.clone()).or_default(), shown != Shown::NotStarted);
        entry.started = entry.started.or(Some(now)).filter(|_| started);
        entry.passed = entry.passed.or(state.passing().then_some(now)).filter(|_| started);
        let minutes = entry.started.map_or(0, |at| entry.passed.unwrap_or(now).saturating_sub(at));
        labs.push(LabReport {
            number: lab.number,
            slug: lab.slug.clone(),
            state: shown,
            failed: failed as u32,
            tests: tests as u32,
            failing_tests,
            hints: hints as u32,
            minutes: (minutes / 60) as u32,
        });
    }
    Ok(Update { labs })
}

/// Computes the states and sends them unless they equal `last` (what was
/// last sent): how many labs were sent, if any.
pub async fn send(
    workbook: &Workbook,
    client: &Client,
    last: &mut Option<Update>,
) -> Result<Option<usize>> {
    let Some(mut membership) = Membership::load(&workbook.root) else { return Ok(None) };
    let before = membership.clone();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let update = update(workbook, &mut membership.labs, now)?;
    let new = last.as_ref() != Some(&update);
    let sent = if new { client.send(&mut membership.seat, &update).await } else { Ok(()) };
    if membership != before {
        membership.save(&workbook.root)?; // new timings, or joined again
    }
    sent?;
    let count = update.labs.len();
    *last = Some(update);
    Ok(new.then_some(count))
}

/// Runs calls to the room on a small runtime of its own.
pub fn blocking<T>(future: impl Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    runtime.expect("a runtime for the room's calls").block_on(future)
}

/// (reports asked for, reports done), and a condition on their change.
static COUNTS: (Mutex<(u64, u64)>, Condvar) = (Mutex::new((0, 0)), Condvar::new());

fn counts() -> MutexGuard<'static, (u64, u64)> {
    COUNTS.0.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Tells the room (in the background) that states may have changed. Returns
/// at once; does nothing unless this workbook joined a room.
pub fn report(workbook: &Workbook) {
    static STARTED: Once = Once::new();
    if workbook.root.join(FILE).exists() {
        STARTED.call_once(|| start(workbook.clone()));
        counts().0 += 1;
        COUNTS.1.notify_all();
    }
}

/// Waits until what was [`report`]ed is sent (or failed), for at most
/// `limit`: for a verb about to exit.
pub fn flush(limit: Duration) {
    let counts = counts();
    let asked = counts.0;
    let _ = COUNTS.1.wait_timeout_while(counts, limit, |(_, done)| *done < asked);
}

/// The sending thread: one send covers every report made before it starts
/// (each carries every lab); after a failure it tries again every [`RETRY`].
fn start(workbook: Workbook) {
    let sender = move || {
        let (mut last, mut failed) = (None, false);
        loop {
            let wait = if failed { RETRY } else { Duration::MAX };
            let idle = |(asked, done): &mut (u64, u64)| asked == done;
            let woken = COUNTS.1.wait_timeout_while(counts(), wait, idle);
            let asked = woken.unwrap_or_else(PoisonError::into_inner).0.0;
            // Quiet: the room being away is no news for the learner. (A
            // client per runtime: its connections live on the runtime.)
            failed = blocking(send(&workbook, &Client::new(TIMEOUT), &mut last)).is_err();
            counts().1 = asked;
            COUNTS.1.notify_all();
        }
    };
    if std::thread::Builder::new().name("room-reporter".into()).spawn(sender).is_err() {
        eprintln!("warning: could not start sending to the room");
    }
}
