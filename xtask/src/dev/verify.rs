//! `cargo xtask dev verify` (also `cargo xtask verify`): prove the course is
//! sound, for maintainers and CI.
//!
//! The lab contract (CONTRIBUTING.md, "The lab contract") as one command. For every lab:
//!
//! - `cargo test -p <slug>`: the starter fails exactly the tests its
//!   `lab.toml` declares in `[fails]`, each with a message containing the
//!   declared phrase, and passes the rest;
//! - `cargo test -p <slug>-solution`: the solution crate, run against the
//!   lab's own test file, passes every test, the same tests as the starter;
//!
//! and, once: the workspace's own tests pass (`lab-support`, the tool), and
//! the book builds with every include, hint and link resolved.
//!
//! It checks the working tree in place, exactly as a learner's `cargo test
//! -p` would see it. A lab whose folder differs from the last commit (a
//! learner's fix, a maintainer's edit) is named on its lines, so that "the
//! starter passes" is never a mystery. Every lab and solution is compiled
//! first in one cargo invocation (they share one dependency set, and cargo
//! builds them in parallel), then each is run on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use crate::cargo::{self, Outcome, Report, TestResult};
use crate::ui::{self, indent};
use crate::workbook::{Lab, Workbook, files_under};
use crate::{book, git, process};

/// Check the course: every starter fails exactly its declared tests, every
/// solution passes, the workspace's own tests pass, the book builds and its
/// includes, hints and links resolve.
///
/// Checks the working tree as it is; a lab that differs from the last
/// commit is named on its lines. Ends with the line
/// `verify: N passed, M failed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verify only this lab (slug or number, e.g. `overload` or `3`) and the
    /// book; skips the workspace's own tests.
    #[arg(long, value_name = "LAB")]
    pub lab: Option<String>,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let started = Instant::now();
    let mut tally = Tally::default();
    if let Err(error) = verify(workbook, &args, &mut tally) {
        io::stdout().flush().ok();
        eprintln!("error: {error:#}");
        tally.failed.push("verify could not run".into());
    }
    Ok(ui::summary("verify", tally.passed, &tally.failed, started))
}

/// The checks that passed and the names of those that failed.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    step: usize,
    total: usize,
}

impl Tally {
    /// Runs one check, printing its line: `[i/N] name ... ok (summary, 1.2 s)`,
    /// or `FAILED` and what is wrong, for a maintainer.
    fn check(&mut self, name: &str, verdict: impl FnOnce() -> Result<String, String>) {
        self.step += 1;
        print!("[{}/{}] {name} ... ", self.step, self.total);
        io::stdout().flush().ok();
        let started = Instant::now();
        let verdict = verdict();
        let seconds = started.elapsed().as_secs_f64();
        match verdict {
            Ok(summary) => {
                println!("ok ({summary}, {seconds:.1} s)");
                self.passed += 1;
            }
            Err(problem) => {
                println!("FAILED ({seconds:.1} s)\n{}", indent(&problem, "    "));
                self.failed.push(name.to_owned());
            }
        }
    }
}

fn verify(workbook: &Workbook, args: &Args, tally: &mut Tally) -> Result<()> {
    let (labs, broken) = workbook.labs()?;
    let selected = match &args.lab {
        Some(wanted) => vec![workbook.lab(wanted)?],
        None => labs.clone(),
    };
    let everything = args.lab.is_none();
    let broken = if everything { broken } else { Vec::new() };
    // The workspace's own tests: the default members but the solutions,
    // which are checked with their labs below.
    let solutions: Vec<String> = labs.iter().map(Lab::solution_package).collect();
    let own = match everything {
        true => cargo::default_members(workbook)?
            .into_iter()
            .filter(|p| !solutions.contains(p))
            .collect(),
        false => Vec::new(),
    };
    tally.total = own.len() + broken.len() + 2 * selected.len() + 1;
    match git::changes(&workbook.root, &workbook.root) {
        None => println!(
            "verify: checking the working tree in place (not a git checkout: no commit to compare with)"
        ),
        Some(changes) if changes.is_empty() => {
            println!("verify: checking the working tree in place (as committed)")
        }
        Some(changes) => println!(
            "verify: checking the working tree in place, with {} uncommitted change(s)",
            changes.len()
        ),
    }

    // One build of every lab and solution with their tests: they share one
    // dependency set, and cargo compiles them in parallel. Its errors show
    // again in the checks below, against the lab they belong to.
    println!("verify: compiling the labs and solutions (cargo test --no-run)...");
    let mut build = cargo::command(workbook);
    build.args(["test", "--no-run"]).stdout(std::process::Stdio::null());
    for lab in &selected {
        build.args(lab.package_args());
    }
    process::Supervised::spawn(&mut build)?.wait()?;

    // One package at a time: built together, the tool's dependencies would
    // change the features of the labs' (mio's, regex's), and every lab would
    // compile them all again.
    for package in &own {
        tally.check(&format!("workspace: cargo test -p {package}"), || {
            workspace_tests(workbook, package)
        });
    }
    for lab in &broken {
        tally.check(&format!("{}: lab.toml", workbook.relative(&lab.dir)), || {
            Err(format!("{:#}", lab.error))
        });
    }
    for lab in &selected {
        let changed = |dir| match git::changes(&workbook.root, dir) {
            Some(changes) if !changes.is_empty() => {
                format!(
                    " [{} differs from the commit: {} file(s)]",
                    workbook.relative(dir),
                    changes.len()
                )
            }
            _ => String::new(),
        };
        let lab_changed = changed(&lab.dir);
        let mut starter_tests = None;
        tally.check(&format!("{}: starter fails as declared{lab_changed}", lab.label()), || {
            let (verdict, tests) = starter(lab, cargo::test(workbook, &lab.slug, false));
            starter_tests = tests;
            verdict.map_err(|problem| match lab_changed.is_empty() {
                true => problem,
                false => format!(
                    "{problem}\n(labs/{} has uncommitted changes, a fix perhaps: verify checks the working \
                     tree as it is. `git stash` or `cargo xtask reset {}` brings back the starter.)",
                    lab.folder_name(),
                    lab.slug
                ),
            })
        });
        let solution_changed = changed(&lab.solution_dir());
        tally.check(&format!("{}: solution passes{solution_changed}", lab.label()), || {
            let report = cargo::test(workbook, &lab.solution_package(), false);
            solution(workbook, lab, report, starter_tests.as_ref())
        });
    }
    let dest = workbook.target_dir.join("verify-book");
    tally.check("book: build, includes, hints, links", || {
        let built = book::build(&workbook.root, &labs, &dest).map_err(|e| format!("{e:#}"))?;
        match built.problems.is_empty() {
            true => Ok(format!("{} chapters", built.chapters)),
            false => Err(built.problems.join("\n")),
        }
    });
    Ok(())
}

/// The tests of a run, or what kept them from running.
fn ran(report: Result<Report>, what: &str) -> Result<BTreeMap<String, TestResult>, String> {
    match report.map_err(|e| format!("{e:#}"))? {
        Report::DidNotCompile(errors) => Err(format!("{what} does not compile:\n{errors}")),
        Report::Ran { problem: Some(problem), tests }
            if tests.values().all(|t| t.outcome != Outcome::Failed) =>
        {
            Err(format!("cargo test failed without a failing test:\n{problem}"))
        }
        Report::Ran { tests, .. } => Ok(tests),
    }
}

/// `cargo test -p <package>`: the workspace's own tests.
fn workspace_tests(workbook: &Workbook, package: &str) -> Result<String, String> {
    let tests = ran(cargo::test(workbook, package, false), package)?;
    let failures = describe_failures(&tests, |_| true);
    match failures.is_empty() {
        true => Ok(format!("{} tests passed", count(&tests, Outcome::Passed))),
        false => Err(failures.join("\n")),
    }
}

/// The starter fails exactly its `[fails]`, each for the declared reason.
/// Also returns the names of the tests that ran.
fn starter(
    lab: &Lab,
    report: Result<Report>,
) -> (Result<String, String>, Option<BTreeSet<String>>) {
    let what = "the starter (a starter must compile and be broken in behaviour only)";
    let tests = match ran(report, what) {
        Ok(tests) => tests,
        Err(problem) => return (Err(problem), None),
    };
    let names = tests.keys().cloned().collect();
    let problems = judge_starter(lab, &tests);
    let verdict = match problems.is_empty() {
        true => Ok(format!(
            "{} failed as declared, {} passed",
            lab.fails.len(),
            count(&tests, Outcome::Passed)
        )),
        false => Err(problems.join("\n")),
    };
    (verdict, Some(names))
}

/// Tests that need Unix signals are compiled on Unix only (`#[cfg(unix)]`),
/// so elsewhere a declared test may be missing, or a lab may have none: the
/// Unix runs check those names.
const UNIX_ONLY_TESTS_MAY_BE_MISSING: bool = cfg!(not(unix));

/// What is wrong with a starter's test results, in words a maintainer can act on.
fn judge_starter(lab: &Lab, tests: &BTreeMap<String, TestResult>) -> Vec<String> {
    let mut problems = Vec::new();
    if tests.is_empty() && UNIX_ONLY_TESTS_MAY_BE_MISSING {
        return problems;
    }
    if tests.is_empty() {
        problems.push(format!(
            "no test ran; a lab needs tests (labs/{}/tests/lab.rs)",
            lab.folder_name()
        ));
        return problems;
    }
    let source = format!("labs/{}/lab.toml", lab.folder_name());
    for (name, phrase) in &lab.fails {
        match tests.get(name) {
            None if UNIX_ONLY_TESTS_MAY_BE_MISSING => {}
            None => problems.push(format!(
                "`{name}` is declared in [fails] of {source} but no test has that name \
                 (the tests are: {})",
                tests.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(test) => match test.outcome {
                Outcome::Passed => problems.push(format!(
                    "`{name}` passed on the starter, but {source} says it must fail \
                     (is the bug still in the starter? does the test detect it?)"
                )),
                Outcome::Ignored => {
                    problems.push(format!("`{name}` is #[ignore]d, but {source} says it must fail"))
                }
                Outcome::Failed => {
                    let message = test.message.as_deref().unwrap_or("");
                    if !message.contains(phrase.as_str()) {
                        problems.push(format!(
                            "`{name}` failed, but not for the declared reason: its message \
                             does not contain {phrase:?} ({source}). It said:\n{}",
                            indent(message, "    ")
                        ));
                    }
                }
            },
        }
    }
    let unexpected = describe_failures(tests, |name| !lab.fails.contains_key(name));
    if !unexpected.is_empty() {
        problems.push(format!(
            "tests not listed in [fails] must pass on the starter, but these failed:\n{}",
            indent(&unexpected.join("\n"), "  ")
        ));
    }
    problems
}

/// The solution passes every test, the same tests as the starter, and its
/// `src/` holds only the files the fix changes (the diff is the lesson).
fn solution(
    workbook: &Workbook,
    lab: &Lab,
    report: Result<Report>,
    starter_tests: Option<&BTreeSet<String>>,
) -> Result<String, String> {
    let mut problems = Vec::new();
    problems.extend(solution_files_differ(workbook, lab));
    match ran(report, "the solution") {
        Err(problem) => problems.push(problem),
        Ok(tests) => {
            let failures = describe_failures(&tests, |_| true);
            if tests.is_empty() && !UNIX_ONLY_TESTS_MAY_BE_MISSING {
                problems.push("no test ran with the solution".into());
            } else if !failures.is_empty() {
                problems.push(format!(
                    "every test must pass, but these failed:\n{}",
                    indent(&failures.join("\n"), "  ")
                ));
            }
            let ran: BTreeSet<String> = tests.keys().cloned().collect();
            if starter_tests.is_some_and(|starter| *starter != ran) {
                problems.push(format!(
                    "the solution ran other tests than the starter; its Cargo.toml's [[test]] must \
                     include labs/{}/tests/lab.rs",
                    lab.folder_name()
                ));
            }
            if problems.is_empty() {
                return Ok(format!("{} passed", count(&tests, Outcome::Passed)));
            }
        }
    }
    Err(problems.join("\n"))
}

/// A solution's `src/` holds only what differs from its lab's (the diff is
/// the lesson; the rest is used from the lab's folder): no file the lab
/// lacks, and no file the same as the lab's unless the code includes it
/// (`include_str!`, which reads beside the file that calls it).
fn solution_files_differ(workbook: &Workbook, lab: &Lab) -> Vec<String> {
    let (lab_src, solution_src) = (lab.dir.join("src"), lab.solution_dir().join("src"));
    let solution_files = files_under(&solution_src);
    let sources: String = solution_files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    let mut problems = Vec::new();
    for file in &solution_files {
        let name = git::pathspec(&solution_src, file);
        let shown = workbook.relative(file);
        let lab_file = lab_src.join(&name);
        // The committed starter, so that a learner's fix in the lab is no excuse.
        match git::starter(&workbook.root, &lab_file) {
            None => problems.push(format!(
                "{shown} has no counterpart in {}/src: a solution fixes the lab's files",
                workbook.relative(&lab.dir)
            )),
            Some(starter) if std::fs::read(file).is_ok_and(|fixed| fixed == starter.as_bytes()) => {
                let included = ["include_str!", "include_bytes!"]
                    .iter()
                    .any(|include| sources.contains(&format!("{include}(\"{name}\")")));
                if !included {
                    problems.push(format!(
                        "{shown} is the same as the lab's: leave it out (the solution's \
                         Cargo.toml points at the lab's files), so the diff is the fix alone"
                    ));
                }
            }
            Some(_) => {}
        }
    }
    problems
}

/// One line per failed test matching `wanted`, each followed by its message.
fn describe_failures(
    tests: &BTreeMap<String, TestResult>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, test) in tests {
        if test.outcome == Outcome::Failed && wanted(name) {
            let mut line = format!("`{name}` failed");
            if let Some(message) = &test.message {
                write!(line, ":\n{}", indent(message, "    ")).unwrap();
            }
            failures.push(line);
        }
    }
    failures
}

fn count(tests: &BTreeMap<String, TestResult>, outcome: Outcome) -> usize {
    tests.values().filter(|t| t.outcome == outcome).count()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn lab(fails: &[(&str, &str)]) -> Lab {
        Lab {
            number: 3,
            slug: "overload".into(),
            fails: fails.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect(),
            dir: PathBuf::from("/w/labs/03-overload"),
            ..Lab::default()
        }
    }

    fn results(list: &[(&str, Outcome, &str)]) -> BTreeMap<String, TestResult> {
        list.iter()
            .map(|(name, outcome, message)| {
                let message = (!message.is_empty()).then(|| message.to_string());
                (name.to_string(), TestResult { outcome: *outcome, message })
            })
            .collect()
    }

    #[test]
    fn a_starter_failing_exactly_as_declared_is_accepted() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[
            ("sheds_load", Outcome::Failed, "no load shedding: 20 requests all ran"),
            ("answers", Outcome::Passed, ""),
        ]);
        assert_eq!(judge_starter(&lab, &tests), Vec::<String>::new());
    }

    #[test]
    fn a_declared_failure_that_passes_is_reported() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[("sheds_load", Outcome::Passed, "")]);
        let problems = judge_starter(&lab, &tests);
        assert!(problems[0].contains("`sheds_load` passed on the starter"), "{problems:?}");
    }

    #[test]
    fn a_failure_for_another_reason_is_reported_with_its_message() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[("sheds_load", Outcome::Failed, "connection refused")]);
        let problems = judge_starter(&lab, &tests);
        assert!(problems[0].contains("not for the declared reason"), "{problems:?}");
        assert!(problems[0].contains("connection refused"), "{problems:?}");
    }

    #[test]
    fn an_undeclared_failure_and_a_missing_test_are_reported() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[("answers", Outcome::Failed, "500")]);
        let problems = judge_starter(&lab, &tests);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("no test has that name"), "{problems:?}");
        assert!(problems[1].contains("`answers` failed"), "{problems:?}");
    }

    #[test]
    fn a_starter_without_tests_is_reported() {
        let problems = judge_starter(&lab(&[("x", "y")]), &BTreeMap::new());
        assert!(problems[0].contains("no test ran"), "{problems:?}");
    }
}
