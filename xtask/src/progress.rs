//! The learner's progress. `.workbook-progress.toml` (ignored by git, safe
//! to delete) remembers per lab slug the hints seen and the last check's
//! result with a fingerprint of the files it ran on. A lab's [`LabState`]
//! comes from that and from git, testing nothing: files with the fingerprint
//! of the last check keep its result, files as committed are "not started".
//! Only [`test_lab`] runs tests, and it remembers what it found.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cargo::{self, Outcome, Report};
use crate::git;
use crate::workbook::{Lab, Workbook, files_under, write_atomically};

/// At the repository root.
pub const FILE_NAME: &str = ".workbook-progress.toml";

const HEADER: &str = "\
# Your progress through the workbook, written by `cargo xtask`.
# Safe to delete: check results are recomputed, only the hint count is lost.
";

/// Everything remembered, keyed by lab slug.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub labs: BTreeMap<String, LabProgress>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProgress {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hints_seen: usize,
    /// Of a test's own hints (`hints_for` in `lab.toml`), by test name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hints_seen_for: BTreeMap<String, usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<LastCheck>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The result of a lab's tests on files with a given [`fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheck {
    pub fingerprint: String,
    pub result: CheckResult,
    #[serde(default)]
    pub tests: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckResult {
    Passing,
    Failing,
    DidNotCompile,
}

impl LabProgress {
    /// How many hints of a ladder were seen: a test's own or the lab's.
    pub fn seen(&self, test: Option<&str>) -> usize {
        test.map_or(self.hints_seen, |test| self.hints_seen_for.get(test).copied().unwrap_or(0))
    }

    pub fn set_seen(&mut self, test: Option<&str>, seen: usize) {
        match test {
            Some(test) => _ = self.hints_seen_for.insert(test.to_owned(), seen),
            None => self.hints_seen = seen,
        }
    }
}

impl Progress {
    pub fn path(root: &Path) -> PathBuf {
        root.join(FILE_NAME)
    }

    /// A missing or unreadable file is a fresh start.
    pub fn load(root: &Path) -> Progress {
        let text = fs::read_to_string(Self::path(root)).unwrap_or_default();
        toml::from_str(&text).unwrap_or_else(|error| {
            eprintln!("warning: {FILE_NAME} could not be read ({error}); starting it afresh");
            Progress::default()
        })
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        write_atomically(&Self::path(root), &format!("{HEADER}\n{}", toml::to_string(self)?))
    }

    pub fn lab(&self, slug: &str) -> LabProgress {
        self.labs.get(slug).cloned().unwrap_or_default()
    }

    pub fn lab_mut(&mut self, slug: &str) -> &mut LabProgress {
        self.labs.entry(slug.to_owned()).or_default()
    }

    /// Loads, changes, saves: so that two verbs at once (a `watch` and a
    /// `hint`) do not undo each other's changes.
    pub fn update(root: &Path, change: impl FnOnce(&mut Progress)) -> Result<Progress> {
        let mut progress = Self::load(root);
        change(&mut progress);
        progress.save(root)?;
        Ok(progress)
    }
}

/// Where a lab stands: `NotStarted` is exactly the committed starter,
/// `Unchecked` changed since its last check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabState {
    NotStarted,
    Unchecked,
    DidNotCompile,
    Failing { failed: usize, tests: usize },
    Passing { tests: usize },
}

impl LabState {
    pub fn passing(&self) -> bool {
        matches!(self, LabState::Passing { .. })
    }

    /// How the state reads, the same in `status` and in the served book.
    pub fn summary(&self) -> String {
        match self {
            LabState::NotStarted => "· not started".into(),
            LabState::Unchecked => "? changed, not checked".into(),
            LabState::DidNotCompile => "✗ does not compile".into(),
            LabState::Failing { failed, tests } => format!("✗ {failed} of {tests} checks failing"),
            LabState::Passing { tests } => format!("✓ passing (all {tests} checks)"),
        }
    }
}

/// A lab's state from what is remembered and what git says, testing nothing.
pub fn state(workbook: &Workbook, lab: &Lab, progress: &Progress) -> LabState {
    let fingerprint = fingerprint(workbook, lab);
    let last = progress.lab(&lab.slug).last_check.filter(|last| last.fingerprint == fingerprint);
    let untouched = git::changes(&workbook.root, &lab.dir).is_some_and(|c| c.is_empty());
    match last {
        // Passing beats untouched: a learner may have committed a fix.
        Some(LastCheck { result: CheckResult::Passing, tests, .. }) => LabState::Passing { tests },
        _ if untouched => LabState::NotStarted,
        Some(LastCheck { result: CheckResult::DidNotCompile, .. }) => LabState::DidNotCompile,
        Some(LastCheck { tests, failed, .. }) => LabState::Failing { failed: failed.len(), tests },
        None => LabState::Unchecked,
    }
}

/// Every lab with its state, testing nothing.
pub fn states(workbook: &Workbook, progress: &Progress) -> Result<Vec<(Lab, LabState)>> {
    let (labs, _broken) = workbook.labs()?;
    let states = labs.into_iter().map(|lab| (state(workbook, &lab, progress), lab));
    Ok(states.map(|(state, lab)| (lab, state)).collect())
}

/// The first lab after `done`, in order, that does not pass.
pub fn next_after(states: &[(Lab, LabState)], done: &Lab) -> Option<Lab> {
    open_labs(states).find(|lab| lab.number > done.number).cloned()
}

/// The first lab, in order, that does not pass.
pub fn first_open(workbook: &Workbook, progress: &Progress) -> Result<Option<Lab>> {
    Ok(open_labs(&states(workbook, progress)?).next().cloned())
}

/// The labs that do not pass, in order.
pub fn open_labs(states: &[(Lab, LabState)]) -> impl Iterator<Item = &Lab> {
    states.iter().filter(|(_, state)| !state.passing()).map(|(lab, _)| lab)
}

/// The first failing test of the last check, in `tests/lab.rs` order.
pub fn first_failing(progress: &Progress, lab: &Lab) -> Option<String> {
    let failed = progress.lab(&lab.slug).last_check?.failed;
    let order = lab.test_order();
    failed.into_iter().min_by_key(|name| (order(name), name.clone()))
}

/// The lab's test files that differ from the committed ones (a pass with
/// edited tests proves little).
pub fn edited_tests(workbook: &Workbook, lab: &Lab) -> Vec<String> {
    let changes = git::changes(&workbook.root, &lab.dir.join("tests")).unwrap_or_default();
    changes.into_iter().map(|change| change.path).collect()
}

/// Runs `cargo test -p <lab>` and remembers the result, in the file and in
/// `progress`.
pub fn test_lab(
    workbook: &Workbook,
    lab: &Lab,
    progress: &mut Progress,
    say_when_compiling: bool,
) -> Result<Report> {
    // The fingerprint of the files as they are when the tests start: an
    // edit made during the run changes it, so the next status re-tests.
    let fingerprint = fingerprint(workbook, lab);
    let report = cargo::test(workbook, &lab.slug, say_when_compiling)?;
    // Opt-in tests (`#[ignore]`, the stretch tasks) are not checks.
    let (result, tests) = match &report {
        Report::DidNotCompile(_) => (CheckResult::DidNotCompile, 0),
        Report::Ran { tests, .. } => {
            let result = if report.passed() { CheckResult::Passing } else { CheckResult::Failing };
            (result, tests.values().filter(|t| t.outcome != Outcome::Ignored).count())
        }
    };
    let failed = report.failed().into_iter().map(str::to_owned).collect();
    let last = Some(LastCheck { fingerprint, result, tests, failed });
    *progress =
        Progress::update(&workbook.root, |saved| saved.lab_mut(&lab.slug).last_check = last)?;
    Ok(report)
}

/// A fingerprint of the files a lab's tests depend on: its folder and what
/// every lab shares.
pub fn fingerprint(workbook: &Workbook, lab: &Lab) -> String {
    let root = &workbook.root;
    let mut paths =
        [files_under(&lab.dir), files_under(&root.join("labs").join("support"))].concat();
    paths.extend(["Cargo.toml", "Cargo.lock", ".cargo/config.toml"].map(|file| root.join(file)));
    hash_files(root, &paths)
}

/// The fingerprint of the lab's own folder only: what a learner edits.
pub fn folder_fingerprint(workbook: &Workbook, lab: &Lab) -> String {
    hash_files(&workbook.root, &files_under(&lab.dir))
}

/// Each file's path (relative, with `/`) and contents, in order, hashed
/// with 64-bit FNV-1a: stable across Rust versions and platforms, which
/// `std`'s hasher is not promised to be. An unreadable file counts as missing.
pub fn hash_files(root: &Path, paths: &[PathBuf]) -> String {
    let mut bytes = Vec::new();
    for path in paths {
        let name = path.strip_prefix(root).unwrap_or(path);
        bytes.extend(name.to_string_lossy().replace('\\', "/").bytes().chain([0]));
        match fs::read(path) {
            Ok(contents) => {
                bytes.extend((contents.len() as u64).to_le_bytes());
                bytes.extend(contents);
            }
            Err(_) => bytes.extend(b"<missing>"),
        }
    }
    let fnv = |hash: u64, byte: &u8| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    format!("{:016x}", bytes.iter().fold(0xcbf2_9ce4_8422_2325, fnv))
}
