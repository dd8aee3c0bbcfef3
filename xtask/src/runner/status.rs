//! `cargo xtask status` (and plain `cargo xtask`): where am I?
//!
//! A table of every lab in order with its state, a progress bar, and the
//! exact command for what to do next.
//!
//! It must be quick, so it tests as little as it can:
//!
//! - a lab whose files have the fingerprint of its last check keeps that
//!   check's result (see [`super::fingerprint`]);
//! - a lab whose files are exactly as committed is "not started": starters
//!   fail by design (`cargo xtask verify` proves it), no need to run them;
//! - only a lab that changed since its last check is tested, with a line of
//!   progress for each.

use std::process::ExitCode;

use anyhow::Result;

use super::fingerprint;
use super::git;
use super::progress::{CheckResult, Progress};
use super::ui::{self, command, paint};
use crate::Workspace;
use crate::labs::{self, Lab};

/// Show every lab with its state (not started, failing, passing), and what
/// to do next. Only labs changed since their last check are re-tested.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Re-test every lab you have changed, ignoring remembered results.
    #[arg(long)]
    pub retest: bool,
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
    fn describe(&self) -> String {
        match self {
            LabState::NotStarted => paint(ui::DIM, "· not started"),
            LabState::Unchecked => paint(ui::WARN, "? changed, not checked"),
            LabState::DidNotCompile => paint(ui::FAIL, "✗ does not compile"),
            LabState::Failing { failed, tests } => {
                paint(ui::FAIL, format!("✗ failing ({failed} of {tests} checks)"))
            }
            LabState::Passing { .. } => paint(ui::PASS, "✓ passing"),
        }
    }

    fn passing(&self) -> bool {
        matches!(self, LabState::Passing { .. })
    }
}

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    super::process::exit_on_signal();
    let (labs, broken) = labs::discover(&workspace.root)?;
    let progress = Progress::load(&workspace.root);
    let mut states = Vec::new();
    for lab in labs {
        let mut state = quick_state(workspace, &lab, &progress);
        if args.retest && !matches!(state, LabState::NotStarted) {
            state = LabState::Unchecked;
        }
        if state == LabState::Unchecked {
            anstream::println!(
                "{}",
                paint(
                    ui::DIM,
                    format!(
                        "testing {} (changed since its last check): cargo test -p {}",
                        lab.label(),
                        lab.package
                    )
                )
            );
            super::check::test_quietly(workspace, &lab)?;
            let progress = Progress::load(&workspace.root);
            state = quick_state(workspace, &lab, &progress);
        }
        states.push((lab, state));
    }
    print_table(workspace, &states);
    for lab in &broken {
        anstream::println!(
            "{} {} cannot be loaded: {:#}",
            paint(ui::WARN, "warning:"),
            workspace.relative(&lab.dir),
            lab.error
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(workspace: &Workspace, states: &[(Lab, LabState)]) {
    let slug_width = states.iter().map(|(l, _)| l.slug.len()).max().unwrap_or(4);
    let title_width = states.iter().map(|(l, _)| l.title.len()).max().unwrap_or(5);
    anstream::println!(
        "\n{}\n",
        paint(ui::STRONG, "Concurrent HTTP Servers in Rust: your progress")
    );
    anstream::println!(
        "{}",
        paint(
            ui::DIM,
            format!(
                "  ##  {:slug_width$}  {:title_width$}  state",
                "lab", "title"
            )
        )
    );
    for (lab, state) in states {
        anstream::println!(
            "  {:02}  {:slug_width$}  {:title_width$}  {}",
            lab.number,
            lab.slug,
            lab.title,
            state.describe()
        );
    }
    let passing = states.iter().filter(|(_, s)| s.passing()).count();
    anstream::println!(
        "\n  {} {passing} of {} labs pass\n",
        ui::progress_bar(passing, states.len(), 24),
        states.len()
    );
    match states.iter().find(|(_, s)| !s.passing()) {
        Some((lab, state)) => {
            let chapter =
                workspace.relative(&workspace.root.join("book").join("src").join(&lab.chapter));
            let verb = if *state == LabState::NotStarted {
                "Start"
            } else {
                "Continue with"
            };
            anstream::println!(
                "{} lab {} \"{}\". Read {} ({} serves the book), then run:\n\n    {}\n",
                paint(ui::STRONG, verb),
                lab.label(),
                lab.title,
                chapter,
                command("cargo xtask book"),
                command(format!("cargo xtask watch {}", lab.slug))
            );
        }
        None if !states.is_empty() => {
            anstream::println!("{} Every lab passes. Well done!\n", paint(ui::PASS, "★"))
        }
        None => anstream::println!("No labs found under labs/.\n"),
    }
}

/// Every lab with its state, without running any test (labs changed since
/// their last check are [`LabState::Unchecked`]).
pub fn quick_states(workspace: &Workspace) -> Result<Vec<(Lab, LabState)>> {
    let (labs, _broken) = labs::discover(&workspace.root)?;
    let progress = Progress::load(&workspace.root);
    Ok(labs
        .into_iter()
        .map(|lab| {
            let state = quick_state(workspace, &lab, &progress);
            (lab, state)
        })
        .collect())
}

/// A lab's state from what is remembered and what git says, testing nothing.
pub fn quick_state(workspace: &Workspace, lab: &Lab, progress: &Progress) -> LabState {
    let fingerprint = fingerprint::of_lab(&workspace.root, lab);
    let remembered = progress
        .lab(&lab.slug)
        .last_check
        .filter(|check| check.fingerprint == fingerprint);
    let untouched = git::changes(&workspace.root, &lab.dir).is_some_and(|c| c.is_empty());
    match remembered {
        // Passing beats untouched: a learner may have committed a fix.
        Some(check) if check.result == CheckResult::Passing => {
            LabState::Passing { tests: check.tests }
        }
        _ if untouched => LabState::NotStarted,
        Some(check) => match check.result {
            CheckResult::DidNotCompile => LabState::DidNotCompile,
            _ => LabState::Failing {
                failed: check.failed.len(),
                tests: check.tests,
            },
        },
        None => LabState::Unchecked,
    }
}

/// The first lab after `done` (in order, wrapping around) that does not pass.
pub fn next_after(states: &[(Lab, LabState)], done: &Lab) -> Option<Lab> {
    let later = states.iter().filter(|(lab, _)| lab.number > done.number);
    let earlier = states.iter().filter(|(lab, _)| lab.number < done.number);
    later
        .chain(earlier)
        .find(|(_, state)| !state.passing())
        .map(|(lab, _)| lab.clone())
}

/// The first lab that does not pass, if any.
pub fn first_unfinished(states: &[(Lab, LabState)]) -> Option<Lab> {
    states
        .iter()
        .find(|(_, state)| !state.passing())
        .map(|(lab, _)| lab.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;

    fn lab(number: u32) -> Lab {
        Lab {
            number,
            slug: format!("lab{number}"),
            title: "T".into(),
            chapter: "c.md".into(),
            minutes: 1,
            hints: vec!["h".into()],
            fails: BTreeMap::new(),
            package: format!("lab{number}"),
            dir: PathBuf::from(format!("labs/{number:02}-lab{number}")),
        }
    }

    fn states(passing: &[bool]) -> Vec<(Lab, LabState)> {
        passing
            .iter()
            .enumerate()
            .map(|(n, &pass)| {
                let state = if pass {
                    LabState::Passing { tests: 1 }
                } else {
                    LabState::NotStarted
                };
                (lab(n as u32), state)
            })
            .collect()
    }

    #[test]
    fn the_next_lab_is_the_first_unfinished_one_after_the_done_one() {
        let states = states(&[true, true, false, false]);
        assert_eq!(next_after(&states, &lab(1)).unwrap().number, 2);
        assert_eq!(next_after(&states, &lab(2)).unwrap().number, 3);
    }

    #[test]
    fn a_skipped_lab_comes_back_after_the_last_one() {
        let states = states(&[false, true, true]);
        assert_eq!(next_after(&states, &lab(2)).unwrap().number, 0);
        assert_eq!(first_unfinished(&states).unwrap().number, 0);
    }

    #[test]
    fn when_every_lab_passes_there_is_no_next_one() {
        let states = states(&[true, true]);
        assert_eq!(next_after(&states, &lab(1)), None);
        assert_eq!(first_unfinished(&states), None);
    }
}
