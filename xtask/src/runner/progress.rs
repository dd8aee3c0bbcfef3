//! The learner's progress, in `.workbook-progress.toml` at the repository root.
//!
//! What it remembers, per lab slug (never by number, so reordering the labs
//! cannot mix them up):
//!
//! - how many hints the learner has seen (`hint` reveals the next one);
//! - the result of the last check, with a fingerprint of the files it ran on
//!   (`status` re-tests a lab only when its fingerprint has changed).
//!
//! The file is ignored by git and safe to delete: everything in it is either
//! recomputed or a convenience. A file that cannot be read is replaced rather
//! than being an error.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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
    /// [`super::fingerprint`] of the files the tests ran on.
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

    /// Writes the progress file (to a temporary file first, so that an
    /// interrupted write never leaves half a file).
    pub fn save(&self, root: &Path) -> Result<()> {
        let path = Self::path(root);
        let text = format!("{HEADER}\n{}", toml::to_string(self)?);
        let temporary = path.with_extension("toml.tmp");
        fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
        fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The progress of the lab `slug` (empty if none yet).
    pub fn lab(&self, slug: &str) -> LabProgress {
        self.labs.get(slug).cloned().unwrap_or_default()
    }

    /// The progress of the lab `slug`, to change.
    pub fn lab_mut(&mut self, slug: &str) -> &mut LabProgress {
        self.labs.entry(slug.to_owned()).or_default()
    }

    /// Loads the file, lets `change` edit it, and saves it: for the small
    /// updates the verbs make, so that two verbs running at once (a `watch`
    /// and a `hint`) do not undo each other's changes.
    pub fn update(root: &Path, change: impl FnOnce(&mut Progress)) -> Result<()> {
        let mut progress = Self::load(root);
        change(&mut progress);
        progress.save(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_survives_a_round_trip_through_the_file() {
        let root = tempfile::tempdir().unwrap();
        let mut progress = Progress::default();
        progress.lab_mut("hello").hints_seen = 2;
        progress.lab_mut("blocking").last_check = Some(LastCheck {
            fingerprint: "0123abcd".into(),
            result: CheckResult::Failing,
            tests: 3,
            failed: vec!["ten_slow_requests_finish_together".into()],
        });
        progress.save(root.path()).unwrap();

        let text = fs::read_to_string(Progress::path(root.path())).unwrap();
        assert!(text.starts_with("# Your progress"), "{text}");
        assert!(text.contains("[labs.hello]\nhints_seen = 2"), "{text}");
        assert!(text.contains("result = \"failing\""), "{text}");
        assert_eq!(Progress::load(root.path()), progress);
    }

    #[test]
    fn a_missing_or_garbled_file_is_a_fresh_start() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Progress::load(root.path()), Progress::default());
        fs::write(Progress::path(root.path()), "labs = 3 [").unwrap();
        assert_eq!(Progress::load(root.path()), Progress::default());
    }

    #[test]
    fn an_unknown_lab_has_no_progress() {
        let progress = Progress::default();
        assert_eq!(progress.lab("nope"), LabProgress::default());
    }
}
