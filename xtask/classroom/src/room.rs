//! The room in memory: who joined, where each stands, and what the dashboard
//! makes of it (per lab: how many passed, the median minutes, the test most
//! learners are stuck on; per learner: who has been stuck on one test for
//! too long).
//!
//! Everything here is plain data and arithmetic; the server keeps it behind a
//! lock and mirrors every change into SQLite (see [`crate::store`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use crate::wire::{LabReport, LabState, Update};

/// A learner, as the room remembers them.
#[derive(Debug, Clone)]
pub struct Learner {
    pub id: i64,
    pub name: String,
    /// What the learner's tool proves itself with (see [`crate::wire`]).
    pub token: String,
    /// Milliseconds since the Unix epoch.
    pub joined: i64,
    pub updated: i64,
    /// How many updates were stored.
    pub updates: u64,
    /// By slug.
    pub labs: BTreeMap<String, Lab>,
}

/// One lab of one learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    pub report: LabReport,
    /// The first failing test, and since when (ms) it has been the first: a
    /// learner whose first failing test stays the same is stuck on it.
    pub stuck_on: Option<String>,
    pub stuck_since: i64,
}

impl Learner {
    /// The learner's labs after `update`, received at `now`: a lab whose
    /// first failing test is unchanged keeps the time it became the first.
    pub fn apply(&self, update: &Update, now: i64) -> BTreeMap<String, Lab> {
        update
            .labs
            .iter()
            .map(|report| {
                let first = match report.state {
                    LabState::Failing => report.failing_tests.first().cloned(),
                    _ => None,
                };
                let before = self.labs.get(&report.slug);
                let stuck_since = match before {
                    Some(lab) if first.is_some() && lab.stuck_on == first => lab.stuck_since,
                    _ => now,
                };
                let lab = Lab { report: report.clone(), stuck_on: first, stuck_since };
                (report.slug.clone(), lab)
            })
            .collect()
    }
}

/// A lab, across the room: how many learners pass it and how many started
/// it, the median of the minutes of those who started it, and the first
/// failing test most learners share, with how many share it.
#[derive(Debug, Serialize)]
pub struct LabColumn {
    pub number: u32,
    pub slug: String,
    pub passed: usize,
    pub started: usize,
    pub median_minutes: Option<u32>,
    pub most_stuck_on: Option<String>,
    pub most_stuck_count: usize,
}

/// A learner's row.
#[derive(Debug, Serialize)]
pub struct LearnerRow {
    pub id: i64,
    pub name: String,
    /// Seconds since their last update.
    pub seen_seconds_ago: i64,
    pub updates: u64,
    pub labs: BTreeMap<String, LabCell>,
}

/// One cell of the grid: the lab as last sent, and how stuck.
#[derive(Debug, Serialize)]
pub struct LabCell {
    #[serde(flatten)]
    pub report: LabReport,
    /// Minutes on the same first failing test, while it fails.
    pub stuck_minutes: Option<u32>,
    /// Stuck for longer than the room's threshold: highlighted.
    pub stuck: bool,
}

/// What the dashboard shows, as the JSON its events carry.
#[derive(Debug, Serialize)]
pub struct View {
    pub labs: Vec<LabColumn>,
    pub learners: Vec<LearnerRow>,
    /// How long on one failing test counts as stuck.
    pub stuck_after_minutes: f64,
}

/// The dashboard's view of `learners` at `now` (ms).
pub fn view<'a>(
    learners: impl IntoIterator<Item = &'a Learner>,
    now: i64,
    stuck_after: Duration,
) -> View {
    let stuck_after_ms = i64::try_from(stuck_after.as_millis()).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    let mut columns: BTreeMap<(u32, String), Vec<&Lab>> = BTreeMap::new();
    for learner in learners {
        let mut cells = BTreeMap::new();
        for (slug, lab) in &learner.labs {
            columns.entry((lab.report.number, slug.clone())).or_default().push(lab);
            let stuck_for = lab.stuck_on.as_ref().map(|_| (now - lab.stuck_since).max(0));
            cells.insert(
                slug.clone(),
                LabCell {
                    report: lab.report.clone(),
                    stuck_minutes: stuck_for.map(|ms| (ms / 60_000) as u32),
                    stuck: stuck_for.is_some_and(|ms| ms > stuck_after_ms),
                },
            );
        }
        rows.push(LearnerRow {
            id: learner.id,
            name: learner.name.clone(),
            seen_seconds_ago: (now - learner.updated).max(0) / 1000,
            updates: learner.updates,
            labs: cells,
        });
    }
    let labs = columns.into_iter().map(|((number, slug), labs)| column(number, slug, &labs));
    View {
        labs: labs.collect(),
        learners: rows,
        stuck_after_minutes: stuck_after.as_secs_f64() / 60.0,
    }
}

/// One lab's summary over the learners who sent it.
fn column(number: u32, slug: String, labs: &[&Lab]) -> LabColumn {
    let started: Vec<&&Lab> =
        labs.iter().filter(|lab| lab.report.state != LabState::NotStarted).collect();
    let passed = labs.iter().filter(|lab| lab.report.state.passing()).count();
    let mut minutes: Vec<u32> = started.iter().map(|lab| lab.report.minutes).collect();
    let mut stuck_on: HashMap<&str, usize> = HashMap::new();
    for lab in labs {
        if let Some(test) = &lab.stuck_on {
            *stuck_on.entry(test).or_default() += 1;
        }
    }
    // The most shared; on a tie, the first by name, so the board is stable.
    let most = stuck_on.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)));
    LabColumn {
        number,
        slug,
        passed,
        started: started.len(),
        median_minutes: median(&mut minutes),
        most_stuck_on: most.map(|(test, _)| test.to_owned()),
        most_stuck_count: most.map_or(0, |(_, count)| count),
    }
}

/// The median (the mean of the middle two, for an even count).
fn median(values: &mut [u32]) -> Option<u32> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]).div_ceil(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(slug: &str, state: LabState, failing: &[&str], minutes: u32) -> LabReport {
        LabReport {
            number: 1,
            slug: slug.into(),
            state,
            failed: failing.len() as u32,
            tests: 4,
            failing_tests: failing.iter().map(|t| t.to_string()).collect(),
            hints: 0,
            minutes,
        }
    }

    fn learner(id: i64) -> Learner {
        Learner {
            id,
            name: format!("L{id}"),
            token: String::new(),
            joined: 0,
            updated: 0,
            updates: 0,
            labs: BTreeMap::new(),
        }
    }

    #[test]
    fn stuck_means_the_same_first_failing_test_for_longer_than_the_threshold() {
        let minute = 60_000;
        let mut ada = learner(1);
        let failing = |test: &str| Update {
            labs: vec![report("blocking", LabState::Failing, &[test, "z"], 5)],
        };
        ada.labs = ada.apply(&failing("a"), 0);
        ada.labs = ada.apply(&failing("a"), 9 * minute);
        let threshold = Duration::from_secs(600);
        let cell = |l: &Learner, now| view([l], now, threshold).learners[0].labs["blocking"].stuck;
        assert!(!cell(&ada, 10 * minute), "exactly 10 minutes is not more than 10");
        assert!(cell(&ada, 11 * minute), "11 minutes on `a`");
        ada.labs = ada.apply(&failing("b"), 11 * minute);
        assert!(!cell(&ada, 12 * minute), "moved on to `b` a minute ago");
    }

    #[test]
    fn a_lab_column_counts_passes_the_median_and_the_most_shared_failing_test() {
        let mut room: Vec<Learner> = (1..=4).map(learner).collect();
        let labs = [
            report("blocking", LabState::Passing, &[], 20),
            report("blocking", LabState::Failing, &["b", "a"], 30),
            report("blocking", LabState::Failing, &["b"], 40),
            report("blocking", LabState::NotStarted, &[], 0),
        ];
        for (learner, lab) in room.iter_mut().zip(labs) {
            learner.labs = learner.apply(&Update { labs: vec![lab] }, 0);
        }
        let view = view(&room, 0, Duration::from_secs(600));
        let column = &view.labs[0];
        assert_eq!((column.passed, column.started), (1, 3));
        assert_eq!(column.median_minutes, Some(30));
        assert_eq!((column.most_stuck_on.as_deref(), column.most_stuck_count), (Some("b"), 2));
    }
}
