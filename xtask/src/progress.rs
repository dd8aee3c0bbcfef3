//! The learner's progress: where each lab stands, and what is remembered.
//!
//! `.workbook-progress.toml` at the repository root remembers, per lab slug
//! (never by number, so reordering the labs cannot mix them up):
//!
//! - how many hints the learner has seen (`hint` reveals the next one);
//! - the result of the last check, with a fingerprint of the files it ran on.
//!
//! A lab's [`LabState`] comes from that and from git, testing nothing: a lab
//! whose files still have the fingerprint of its last check keeps that
//! result, a lab exactly as committed is "not started" (starters fail by
//! design). Only [`test_lab`] runs tests, and it remembers what it found.
//!
//! The file is ignored by git and safe to delete: everything in it is either
//! recomputed or a convenience. A file that cannot be read is replaced rather
//! than being an error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cargo::{self, Outcome, Report};
use crate::git;
use crate::workbook::{Lab, Workbook, files_under, write_atomically};

/// The file's name, at the repository root (listed in `.gitignore`).
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

/// What is remembered about one lab.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProgress {
    /// How many of the lab's hints have been revealed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hints_seen: usize,
    /// How many of a test's own hints have been revealed (see `hints_for`
    /// in `lab.toml`), by test name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hints_seen_for: BTreeMap<String, usize>,
    /// The last time the lab's tests ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check: Option<LastCheck>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The result of running a lab's tests on files with a given fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheck {
    /// [`fingerprint`] of the files the tests ran on.
    pub fingerprint: String,
    pub result: CheckResult,
    /// How many tests ran.
    #[serde(default)]
    pub tests: usize,
    /// The tests that failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckResult {
    Passing,
    Failing,
    DidNotCompile,
}

impl LabProgress {
    /// How many hints of a ladder were seen: a test's own (`Some(test)`) or
    /// the lab's.
    pub fn seen(&self, test: Option<&str>) -> usize {
        match test {
            Some(test) => self.hints_seen_for.get(test).copied().unwrap_or(0),
            None => self.hints_seen,
        }
    }

    pub fn set_seen(&mut self, test: Option<&str>, seen: usize) {
        match test {
            Some(test) => _ = self.hints_seen_for.insert(test.to_owned(), seen),
            None => self.hints_seen = seen,
        }
    }
}

impl Progress {
    /// The progress file of the workbook at `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join(FILE_NAME)
    }

    /// Reads the progress file; a missing or unreadable file is a fresh start
    /// (with a warning for the unreadable one).
    pub fn load(root: &Path) -> Progress {
        let path = Self::path(root);
        let Ok(text) = fs::read_to_string(&path) else {
            return Progress::default();
        };
        match toml::from_str(&text) {
            Ok(progress) => progress,
            Err(error) => {
                eprintln!("warning: {FILE_NAME} could not be read ({error}); starting it afresh");
                Progress::default()
            }
        }
    }

    /// Writes the progress file.
    pub fn save(&self, root: &Path) -> Result<()> {
        write_atomically(&Self::path(root), &format!("{HEADER}\n{}", toml::to_string(self)?))
    }

    /// The progress of the lab `slug` (empty if none yet).
    pub fn lab(&self, slug: &str) -> LabProgress {
        self.labs.get(slug).cloned().unwrap_or_default()
    }

    /// The progress of the lab `slug`, to change.
    pub fn lab_mut(&mut self, slug: &str) -> &mut LabProgress {
        self.labs.entry(slug.to_owned()).or_default()
    }

    /// Loads the file, lets `change` edit it, saves it and returns it: for
    /// the small updates the verbs make, so that two verbs running at once
    /// (a `watch` and a `hint`) do not undo each other's changes.
    pub fn update(root: &Path, change: impl FnOnce(&mut Progress)) -> Result<Progress> {
        let mut progress = Self::load(root);
        change(&mut progress);
        progress.save(root)?;
        Ok(progress)
    }
}

/// Where a lab stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabState {
    /// Exactly the committed starter.
    NotStarted,
    /// Changed since its last check (only before testing it).
    Unchecked,
    /// Its code does not compile.
    DidNotCompile,
    /// Some tests fail.
    Failing { failed: usize, tests: usize },
    /// Every test passes.
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
    let remembered =
        progress.lab(&lab.slug).last_check.filter(|check| check.fingerprint == fingerprint);
    let untouched = git::changes(&workbook.root, &lab.dir).is_some_and(|c| c.is_empty());
    match remembered {
        // Passing beats untouched: a learner may have committed a fix.
        Some(check) if check.result == CheckResult::Passing => {
            LabState::Passing { tests: check.tests }
        }
        _ if untouched => LabState::NotStarted,
        Some(check) if check.result == CheckResult::DidNotCompile => LabState::DidNotCompile,
        Some(check) => LabState::Failing { failed: check.failed.len(), tests: check.tests },
        None => LabState::Unchecked,
    }
}

/// Every lab with its state, testing nothing.
pub fn states(workbook: &Workbook, progress: &Progress) -> Result<Vec<(Lab, LabState)>> {
    let (labs, _broken) = workbook.labs()?;
    let state = |lab: Lab| (state(workbook, &lab, progress), lab);
    Ok(labs.into_iter().map(state).map(|(state, lab)| (lab, state)).collect())
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

/// The first failing test of the lab's last check, in the order of its
/// `tests/lab.rs`: the one to explain first, and to give hints for.
pub fn first_failing(progress: &Progress, lab: &Lab) -> Option<String> {
    let failed = progress.lab(&lab.slug).last_check?.failed;
    let order = lab.test_order();
    failed.into_iter().min_by_key(|name| (order(name), name.clone()))
}

/// The lab's test files that differ from the committed ones: a pass with
/// edited tests proves little, and the tool says so.
pub fn edited_tests(workbook: &Workbook, lab: &Lab) -> Vec<String> {
    let changes = git::changes(&workbook.root, &lab.dir.join("tests")).unwrap_or_default();
    changes.into_iter().map(|change| change.path).collect()
}

/// Runs the lab's tests (`cargo test -p <lab>`, what the book tells learners
/// to run) and remembers the result, in the file and in `progress`.
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
    let result = match &report {
        _ if report.passed() => CheckResult::Passing,
        Report::DidNotCompile(_) => CheckResult::DidNotCompile,
        Report::Ran { .. } => CheckResult::Failing,
    };
    let last_check = LastCheck {
        fingerprint,
        result,
        tests: match &report {
            // Opt-in tests (`#[ignore]`, the stretch tasks) are not checks.
            Report::Ran { tests, .. } => {
                tests.values().filter(|t| t.outcome != Outcome::Ignored).count()
            }
            Report::DidNotCompile(_) => 0,
        },
        failed: report.failed().into_iter().map(str::to_owned).collect(),
    };
    *progress = Progress::update(&workbook.root, |progress| {
        progress.lab_mut(&lab.slug).last_check = Some(last_check);
    })?;
    Ok(report)
}

/// A fingerprint of the files a lab's tests depend on: the lab's folder and
/// what every lab shares (`labs/support`, the workspace's `Cargo.toml`,
/// `Cargo.lock`, `.cargo/config.toml`), as 16 hex digits.
pub fn fingerprint(workbook: &Workbook, lab: &Lab) -> String {
    let root = &workbook.root;
    let mut paths = files_under(&lab.dir);
    paths.extend(files_under(&root.join("labs").join("support")));
    paths
        .extend(["Cargo.toml", "Cargo.lock", ".cargo/config.toml"].map(|shared| root.join(shared)));
    hash_files(root, &paths)
}

/// The fingerprint of the lab's own folder only: what a learner edits
/// (`watch` looks at it every second where file events do not arrive).
pub fn folder_fingerprint(workbook: &Workbook, lab: &Lab) -> String {
    hash_files(&workbook.root, &files_under(&lab.dir))
}

/// Hashes each file's path (relative to `root`, with `/`) and contents, in
/// order, with the 64-bit FNV-1a hash: stable across Rust versions and
/// platforms, which `std`'s hasher is not promised to be. A file that cannot
/// be read counts as "missing", which is a change too.
fn hash_files(root: &Path, paths: &[PathBuf]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut write = |bytes: &[u8]| {
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for path in paths {
        let name = path.strip_prefix(root).unwrap_or(path);
        write(name.to_string_lossy().replace('\\', "/").as_bytes());
        write(&[0]);
        match fs::read(path) {
            Ok(contents) => {
                write(&(contents.len() as u64).to_le_bytes());
                write(&contents);
            }
            Err(_) => write(b"<missing>"),
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_an_edit_a_new_file_or_a_rename_only() {
        let root = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = root.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        };
        let lib = file("src/lib.rs", "fn a() {}");
        let original = hash_files(root.path(), std::slice::from_ref(&lib));
        assert_eq!(original, hash_files(root.path(), std::slice::from_ref(&lib)));
        assert_eq!(original.len(), 16);
        let main = file("src/main.rs", "fn a() {}");
        assert_ne!(original, hash_files(root.path(), &[main]), "a rename");
        assert_ne!(
            original,
            hash_files(root.path(), &[lib.clone(), file("src/x.rs", "")]),
            "a new file"
        );
        file("src/lib.rs", "fn b() {}");
        assert_ne!(original, hash_files(root.path(), &[lib]), "an edit");
        assert_eq!(hash_files(root.path(), &[]), "cbf29ce484222325", "FNV-1a's offset basis");
    }
}
