//! `cargo xtask verify`: the lab contract (CONTRIBUTING.md) as one command.
//! Each starter fails exactly its `[fails]`, each for its declared phrase,
//! and passes the rest; each solution passes the same tests; the
//! workspace's own tests pass; the book builds with every include, hint and
//! link resolved. It checks the working tree in place, and names a lab that
//! differs from the last commit on its lines.

use std::collections::BTreeMap;
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
/// includes, hints and links resolve. Ends with `verify: N passed, M failed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verify only this lab (slug or number, e.g. `overload` or `3`) and the
    /// book; skips the workspace's own tests.
    #[arg(long, value_name = "LAB")]
    pub lab: Option<String>,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let mut tally = Tally::default();
    if let Err(error) = verify(workbook, &args, &mut tally) {
        io::stdout().flush().ok();
        eprintln!("error: {error:#}");
        tally.failed.push("verify could not run".into());
    }
    Ok(ui::summary("verify", tally.passed, &tally.failed, started))
}

#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    step: usize,
    total: usize,
}

impl Tally {
    /// Runs one check: `[i/N] name ... ok (summary, 1.2 s)`, or `FAILED` and why.
    fn check(&mut self, name: &str, verdict: impl FnOnce() -> Result<String, String>) {
        self.step += 1;
        print!("[{}/{}] {name} ... ", self.step, self.total);
        io::stdout().flush().ok();
        let started = Instant::now();
        let (verdict, seconds) = (verdict(), started.elapsed().as_secs_f64());
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
    let (selected, broken, own) = match &args.lab {
        Some(wanted) => (vec![workbook.lab(wanted)?], Vec::new(), Vec::new()),
        None => {
            // The default members but the solutions, which are checked with their labs.
            let mut own = cargo::default_members(workbook)?;
            own.retain(|package| !labs.iter().any(|lab| lab.solution_package() == *package));
            (labs.clone(), broken, own)
        }
    };
    tally.total = own.len() + broken.len() + 2 * selected.len() + 1;
    let state = match git::changes(&workbook.root, &workbook.root) {
        None => " (not a git checkout: no commit to compare with)".to_owned(),
        Some(changes) if changes.is_empty() => " (as committed)".to_owned(),
        Some(changes) => format!(", with {} uncommitted change(s)", changes.len()),
    };
    println!("verify: checking the working tree in place{state}");

    // One build of every lab and solution (cargo builds them in parallel);
    // its errors show again below, against their lab.
    println!("verify: compiling the labs and solutions (cargo test --no-run)...");
    let mut build = cargo::command(workbook);
    build.args(["test", "--no-run"]).stdout(std::process::Stdio::null());
    for lab in &selected {
        build.args(lab.package_args());
    }
    process::Supervised::spawn(&mut build)?.wait()?;

    // One package at a time: built together, the tool's dependencies would
    // change the features of the labs', and every lab would compile again.
    for package in &own {
        tally.check(&format!("workspace: cargo test -p {package}"), || {
            let tests = ran(cargo::test(workbook, package, false), package)?;
            let summary = format!("{} tests passed", passing(&tests));
            verdict(describe_failures(&tests, |_| true), summary)
        });
    }
    for lab in &broken {
        let name = format!("{}: lab.toml", workbook.relative(&lab.dir));
        tally.check(&name, || Err(format!("{:#}", lab.error)));
    }
    let changed = |dir: &std::path::Path| match git::changes(&workbook.root, dir) {
        Some(changes) if !changes.is_empty() => {
            let dir = workbook.relative(dir);
            format!(" [{dir} differs from the commit: {} file(s)]", changes.len())
        }
        _ => String::new(),
    };
    for lab in &selected {
        let (folder, slug) = (lab.folder_name(), &lab.slug);
        let lab_changed = changed(&lab.dir);
        let mut starter_tests: Option<Vec<String>> = None;
        tally.check(&format!("{}: starter fails as declared{lab_changed}", lab.label()), || {
            let what = "the starter (a starter must compile and be broken in behaviour only)";
            let tests = ran(cargo::test(workbook, slug, false), what);
            starter_tests = tests.as_ref().ok().map(|tests| tests.keys().cloned().collect());
            let verdict = tests.and_then(|tests| starter(lab, &tests));
            verdict.map_err(|problem| match lab_changed.is_empty() {
                true => problem,
                false => format!(
                    "{problem}\n(labs/{folder} has uncommitted changes, a fix perhaps: verify \
                     checks the working tree as it is. `git stash` or `cargo xtask reset {slug}` \
                     brings back the starter.)"
                ),
            })
        });
        let solution_changed = changed(&lab.solution_dir());
        tally.check(&format!("{}: solution passes{solution_changed}", lab.label()), || {
            solution(workbook, lab, starter_tests.as_deref())
        });
    }
    let dest = workbook.target_dir.join("verify-book");
    tally.check("book: build, includes, hints, links", || {
        let built = book::build(&workbook.root, &labs, &dest).map_err(|e| format!("{e:#}"))?;
        verdict(built.problems, format!("{} chapters", built.chapters))
    });
    Ok(())
}

type Tests = BTreeMap<String, TestResult>;

/// A check passes with its summary when it found no problems.
fn verdict(problems: Vec<String>, summary: String) -> Result<String, String> {
    if problems.is_empty() { Ok(summary) } else { Err(problems.join("\n")) }
}

/// The tests of a run, or what kept them from running.
fn ran(report: Result<Report>, what: &str) -> Result<Tests, String> {
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

/// The starter fails exactly its `[fails]`, each for the declared reason.
fn starter(lab: &Lab, tests: &Tests) -> Result<String, String> {
    let summary = format!("{} failed as declared, {} passed", lab.fails.len(), passing(tests));
    verdict(judge_starter(lab, tests), summary)
}

/// Tests that need Unix signals are `#[cfg(unix)]`: elsewhere a declared
/// test may be missing (the Unix runs check those names).
const UNIX_ONLY_TESTS_MAY_BE_MISSING: bool = cfg!(not(unix));

/// What is wrong with a starter's test results, in words a maintainer can act on.
pub fn judge_starter(lab: &Lab, tests: &BTreeMap<String, TestResult>) -> Vec<String> {
    let folder = lab.folder_name();
    if tests.is_empty() {
        let none = format!("no test ran; a lab needs tests (labs/{folder}/tests/lab.rs)");
        return if UNIX_ONLY_TESTS_MAY_BE_MISSING { Vec::new() } else { vec![none] };
    }
    let source = format!("labs/{folder}/lab.toml");
    let mut problems = Vec::new();
    for (name, phrase) in &lab.fails {
        let message = tests.get(name).and_then(|test| test.message.as_deref()).unwrap_or("");
        problems.push(match tests.get(name).map(|test| test.outcome) {
            None if UNIX_ONLY_TESTS_MAY_BE_MISSING => continue,
            None => format!(
                "`{name}` is declared in [fails] of {source} but no test has that name \
                 (the tests are: {})",
                tests.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            Some(Outcome::Passed) => format!(
                "`{name}` passed on the starter, but {source} says it must fail \
                 (is the bug still in the starter? does the test detect it?)"
            ),
            Some(Outcome::Ignored) => {
                format!("`{name}` is #[ignore]d, but {source} says it must fail")
            }
            Some(Outcome::Failed) if message.contains(phrase.as_str()) => continue,
            Some(Outcome::Failed) => format!(
                "`{name}` failed, but not for the declared reason: its message \
                 does not contain {phrase:?} ({source}). It said:\n{}",
                indent(message, "    ")
            ),
        });
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
fn solution(workbook: &Workbook, lab: &Lab, starter: Option<&[String]>) -> Result<String, String> {
    let mut problems = solution_files_differ(workbook, lab);
    match ran(cargo::test(workbook, &lab.solution_package(), false), "the solution") {
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
            if starter.is_some_and(|starter| !starter.iter().eq(tests.keys())) {
                problems.push(format!(
                    "the solution ran other tests than the starter; its Cargo.toml's [[test]] must \
                     include labs/{}/tests/lab.rs",
                    lab.folder_name()
                ));
            }
            return verdict(problems, format!("{} passed", passing(&tests)));
        }
    }
    Err(problems.join("\n"))
}

/// A solution's `src/` holds only what differs from its lab's (the rest is
/// used from the lab's folder): no file the lab lacks, and no file the same
/// as the lab's unless the code includes it (`include_str!` reads beside
/// the file that calls it).
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
        // The committed starter, so that a learner's fix in the lab is no excuse.
        match git::starter(&workbook.root, &lab_src.join(&name)) {
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
fn describe_failures(tests: &Tests, wanted: impl Fn(&str) -> bool) -> Vec<String> {
    tests
        .iter()
        .filter(|(name, test)| test.outcome == Outcome::Failed && wanted(name))
        .map(|(name, test)| match &test.message {
            Some(message) => format!("`{name}` failed:\n{}", indent(message, "    ")),
            None => format!("`{name}` failed"),
        })
        .collect()
}

fn passing(tests: &Tests) -> usize {
    tests.values().filter(|t| t.outcome == Outcome::Passed).count()
}
