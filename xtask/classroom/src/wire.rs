//! What a learner's tool sends to the room, and what the room checks before
//! it stores any of it.
//!
//! A learner sends two things: once, `POST /api/join` with the room's code
//! and a name; then, whenever a lab's state changes,
//! `PUT /api/learners/<id>` with the token the join gave back and every lab's
//! state:
//!
//! ```json
//! {"labs":[{"number":2,"slug":"shared-state","state":"failing","failed":1,"tests":4,
//!           "failing_tests":["every_increment_is_counted"],"hints":1,"minutes":12}]}
//! ```
//!
//! That is all there is: a state, test names, counts. No field can carry
//! code, a file's contents or a path (unknown fields are refused, test names
//! are identifiers), and whatever breaks a rule below is refused whole, with
//! a 4xx, before anything is stored. (`tests/fixtures/update.json` is the
//! example above, which the tests write and read.)

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 40;
/// The most labs one update may carry.
pub const MAX_LABS: usize = 64;
/// The most failing test names per lab.
pub const MAX_FAILING_TESTS: usize = 50;
/// The longest test name, in bytes.
pub const MAX_TEST_NAME: usize = 160;
/// The largest count (tests, hints) and the most minutes (30 days).
const MAX_COUNT: u32 = 10_000;
const MAX_MINUTES: u32 = 30 * 24 * 60;

/// `POST /api/join`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub code: String,
    pub name: String,
}

/// The answer to a join: who the learner is, and the token that alone may
/// write that learner's row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Joined {
    pub learner: i64,
    pub token: String,
}

/// `PUT /api/learners/<id>`: every lab's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub labs: Vec<LabReport>,
}

/// One lab, as a learner's tool sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabReport {
    pub number: u32,
    pub slug: String,
    pub state: LabState,
    /// Of the last check: how many tests failed, of how many.
    #[serde(default)]
    pub failed: u32,
    #[serde(default)]
    pub tests: u32,
    /// The failing tests' names, the first one first (in the order of the
    /// lab's tests file): the one the learner is working on.
    #[serde(default)]
    pub failing_tests: Vec<String>,
    /// How many hints were shown.
    #[serde(default)]
    pub hints: u32,
    /// Minutes since the learner started the lab (until it first passed).
    #[serde(default)]
    pub minutes: u32,
}

/// Where a lab stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabState {
    NotStarted,
    /// Changed, never checked.
    Started,
    DoesNotCompile,
    Failing,
    Passing,
    /// Passing, but with the lab's test files edited: proves little.
    PassingEditedTests,
}

impl LabState {
    pub fn passing(self) -> bool {
        matches!(self, LabState::Passing | LabState::PassingEditedTests)
    }
}

/// A name the dashboard can show as it is: trimmed, 1 to
/// [`MAX_NAME_CHARS`] characters, no control characters and none of
/// `<>&"`\` (the page shows names as text anyway; refusing them keeps the
/// table free of markup that would only confuse).
pub fn check_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("the name is longer than {MAX_NAME_CHARS} characters"));
    }
    if let Some(bad) = name.chars().find(|c| c.is_control() || "<>&\"`\\".contains(*c)) {
        return Err(format!("the name may not contain {bad:?}: letters, digits and spaces work"));
    }
    Ok(name)
}

/// Whether `test` is a test's name as the room takes it: an identifier path
/// (`tests::name`) of at most [`MAX_TEST_NAME`] bytes, never a file's path.
pub fn is_test_name(test: &str) -> bool {
    !test.is_empty()
        && test.len() <= MAX_TEST_NAME
        && test.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

impl Update {
    /// Whether every field is within bounds and carries only what it says.
    pub fn check(&self) -> Result<(), String> {
        if self.labs.len() > MAX_LABS {
            return Err(format!("{} labs, at most {MAX_LABS}", self.labs.len()));
        }
        let mut slugs = BTreeSet::new();
        for lab in &self.labs {
            lab.check()?;
            if !slugs.insert(&lab.slug) {
                return Err(format!("lab `{}` is listed twice", lab.slug));
            }
        }
        Ok(())
    }
}

impl LabReport {
    fn check(&self) -> Result<(), String> {
        let slug = &self.slug;
        if slug.is_empty()
            || slug.len() > 40
            || !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!("`{slug}` is not a lab's slug (a-z, 0-9 and -, at most 40)"));
        }
        if self.number > 99 {
            return Err(format!("lab number {} is not 0 to 99", self.number));
        }
        if self.tests > MAX_COUNT || self.hints > MAX_COUNT || self.minutes > MAX_MINUTES {
            return Err(format!("lab `{slug}`: a count is out of range"));
        }
        if self.failed > self.tests {
            return Err(format!("lab `{slug}`: {} of {} tests failing", self.failed, self.tests));
        }
        if self.failing_tests.len() > MAX_FAILING_TESTS {
            return Err(format!("lab `{slug}`: more than {MAX_FAILING_TESTS} failing test names"));
        }
        if let Some(test) = self.failing_tests.iter().find(|test| !is_test_name(test)) {
            return Err(format!("lab `{slug}`: `{test}` is not a test's name"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON of the example above is what these types write and read:
    /// what a learner's tool sends is what the room reads.
    #[test]
    fn an_update_is_the_json_the_room_reads_and_passes_the_checks() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../tests/fixtures/update.json")).unwrap();
        let update: Update = serde_json::from_value(fixture.clone()).unwrap();
        assert_eq!(update.check(), Ok(()));
        assert_eq!(update.labs[0].state, LabState::Failing);
        assert_eq!(serde_json::to_value(&update).unwrap(), fixture);
    }

    #[test]
    fn names_are_trimmed_and_markup_is_refused() {
        assert_eq!(check_name("  Ada Lovelace "), Ok("Ada Lovelace"));
        assert_eq!(check_name("José O'Neil"), Ok("José O'Neil"));
        assert!(check_name("<script>alert(1)</script>").is_err());
        assert!(check_name("   ").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name("a\u{7}b").is_err());
    }

    /// The learner's tool leaves out what this would refuse.
    #[test]
    fn only_identifiers_are_test_names() {
        assert!(is_test_name("tests::every_increment_is_counted"));
        assert!(!is_test_name("labs/02-shared-state/src/lib.rs"));
        assert!(!is_test_name(""));
    }

    #[test]
    fn test_names_are_identifiers_never_paths() {
        let mut lab = LabReport {
            number: 2,
            slug: "shared-state".into(),
            state: LabState::Failing,
            failed: 1,
            tests: 4,
            failing_tests: vec!["tests::every_increment_is_counted".into()],
            hints: 0,
            minutes: 3,
        };
        assert_eq!(Update { labs: vec![lab.clone()] }.check(), Ok(()));
        lab.failing_tests = vec!["src/lib.rs".into()];
        assert!(Update { labs: vec![lab.clone()] }.check().is_err());
        lab.failing_tests.clear();
        lab.slug = "../etc".into();
        assert!(Update { labs: vec![lab] }.check().is_err());
    }
}
