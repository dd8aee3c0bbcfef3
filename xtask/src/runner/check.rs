//! `cargo xtask check <lab>`: run a lab's tests and explain the result.
//!
//! It runs exactly what the book tells learners to run, `cargo test -p <lab>`
//! on their own code, and turns libtest's output into: which checks pass and
//! fail, the first failure's message (the lab's tests are written to teach,
//! so the message is the most useful thing to show), the chapter to read and
//! the hint command. On success it names the next lab. The result is
//! remembered (see [`super::progress`]), which is what makes `status` fast.

use std::io::{BufRead, BufReader, Read};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::fingerprint;
use super::process::Supervised;
use super::progress::{CheckResult, LastCheck, Progress};
use super::status::{self, LabState};
use super::ui::{self, command, paint};
use crate::Workspace;
use crate::cargo_test::{self, CargoTest, Outcome, Report};
use crate::labs::Lab;
use crate::verify::indent;

/// Run a lab's tests (`cargo test -p <lab>`) and explain what fails.
///
/// Shows which checks pass and fail, the first failure's message, the
/// chapter to read and how to get a hint; when everything passes, the next
/// lab to do.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`).
    pub lab: String,
}

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    super::process::exit_on_signal();
    let lab = super::find_lab(workspace, &args.lab)?;
    let checked = check(workspace, &lab)?;
    if checked.passed() {
        announce_next(workspace, &lab, Next::Suggest);
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// One run of a lab's tests.
pub struct Checked {
    pub report: Report,
}

impl Checked {
    /// Whether the lab compiled, ran at least one test and failed none.
    pub fn passed(&self) -> bool {
        match &self.report {
            Report::Ran { tests, problem } => {
                problem.is_none()
                    && tests.values().any(|t| t.outcome == Outcome::Passed)
                    && tests.values().all(|t| t.outcome != Outcome::Failed)
            }
            Report::DidNotCompile(_) => false,
        }
    }
}

/// Runs the lab's tests, prints the explained result and remembers it.
pub fn check(workspace: &Workspace, lab: &Lab) -> Result<Checked> {
    anstream::println!(
        "{} lab {} ({})...",
        paint(ui::STRONG, "Checking"),
        lab.label(),
        command(format!("cargo test -p {}", lab.package))
    );
    let checked = test_quietly(workspace, lab)?;
    explain(workspace, lab, &checked);
    Ok(checked)
}

/// Runs the lab's tests and remembers the result, printing nothing.
pub fn test_quietly(workspace: &Workspace, lab: &Lab) -> Result<Checked> {
    // The fingerprint of the files as they are when the tests start: an
    // edit made during the run changes it, so the next status re-tests.
    let fingerprint = fingerprint::of_lab(&workspace.root, lab);
    let report = cargo_test(workspace, lab)?;
    let checked = Checked { report };
    let last_check = LastCheck {
        fingerprint,
        result: if checked.passed() {
            CheckResult::Passing
        } else if matches!(checked.report, Report::DidNotCompile(_)) {
            CheckResult::DidNotCompile
        } else {
            CheckResult::Failing
        },
        tests: match &checked.report {
            Report::Ran { tests, .. } => tests.len(),
            Report::DidNotCompile(_) => 0,
        },
        failed: checked
            .report
            .failed()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    Progress::update(&workspace.root, |progress| {
        progress.lab_mut(&lab.slug).last_check = Some(last_check);
    })?;
    Ok(checked)
}

/// `cargo test -p <lab>` in the real workspace, as a supervised child (so
/// that Ctrl-C or a stopping `watch` stops it), with its output parsed.
fn cargo_test(workspace: &Workspace, lab: &Lab) -> Result<Report> {
    let mut cargo = CargoTest::new(&workspace.root, &workspace.target_dir)
        .package(&lab.package)
        .command();
    let mut child = Supervised::spawn(&mut cargo).context("could not start cargo")?;
    let stdout = child.child().stdout.take().expect("stdout is piped");
    let stderr = child.child().stderr.take().expect("stderr is piped");
    let stdout = thread::spawn(move || read_all(stdout));
    let stderr = thread::spawn(move || read_cargo_stderr(stderr));
    let status = child.wait().context("waiting for cargo")?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(cargo_test::parse(&stdout, &stderr, status.success()))
}

fn read_all(mut pipe: impl Read) -> String {
    let mut bytes = Vec::new();
    pipe.read_to_end(&mut bytes).ok();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Collects cargo's stderr, and says once that dependencies are compiling
/// if that goes on for a while (the first run of a fresh clone), so that a
/// long silence is not mistaken for a hang.
fn read_cargo_stderr(pipe: impl Read) -> String {
    let started = Instant::now();
    let mut said_so = false;
    let mut text = String::new();
    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
        let compiling = line.trim_start().starts_with("Compiling ");
        if compiling && !said_so && started.elapsed() > Duration::from_secs(5) {
            anstream::println!(
                "{}",
                paint(
                    ui::DIM,
                    "  (compiling; the first time takes a few minutes, later runs a second or two)"
                )
            );
            said_so = true;
        }
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Prints what the run means for the learner.
fn explain(workspace: &Workspace, lab: &Lab, checked: &Checked) {
    match &checked.report {
        Report::DidNotCompile(errors) => {
            anstream::println!(
                "\n{} lab {} does not compile yet. The compiler says:\n",
                paint(ui::FAIL, "✗"),
                lab.label()
            );
            anstream::println!("{}", indent(errors, "  "));
            print_help(workspace, lab);
        }
        Report::Ran { tests, problem } => {
            let order = test_order(lab);
            let mut names: Vec<&String> = tests.keys().collect();
            names.sort_by_key(|name| (order(name), name.as_str()));
            anstream::println!();
            for name in &names {
                let (mark, style) = match tests[*name].outcome {
                    Outcome::Passed => ("✓", ui::PASS),
                    Outcome::Failed => ("✗", ui::FAIL),
                    Outcome::Ignored => ("-", ui::DIM),
                };
                anstream::println!("  {} {}", paint(style, mark), name);
            }
            let failed: Vec<&&String> = names
                .iter()
                .filter(|name| tests[**name].outcome == Outcome::Failed)
                .collect();
            if checked.passed() {
                anstream::println!(
                    "\n{} Lab {} passes: all {} checks. Well done!",
                    paint(ui::PASS, "✓"),
                    lab.label(),
                    tests.len()
                );
                return;
            }
            if let Some(first) = failed.first() {
                anstream::println!(
                    "\n{} of {} checks fail. The first failure says:\n",
                    paint(ui::FAIL, failed.len()),
                    tests.len()
                );
                let message = tests[**first].message.as_deref().unwrap_or("(no message)");
                let (message, location) = split_panic_location(message);
                anstream::println!("{}", indent(message, "  "));
                if let Some(location) = location {
                    anstream::println!("{}", paint(ui::DIM, format!("  (at {location})")));
                }
            } else if let Some(problem) = problem {
                anstream::println!(
                    "\n{} The tests did not finish normally:\n",
                    paint(ui::FAIL, "✗")
                );
                anstream::println!("{}", indent(problem, "  "));
            } else {
                anstream::println!(
                    "\n{} No test ran. Is tests/lab.rs still there?",
                    paint(ui::FAIL, "✗")
                );
            }
            print_help(workspace, lab);
        }
    }
}

/// Where to read and how to get a hint.
fn print_help(workspace: &Workspace, lab: &Lab) {
    let chapter = workspace.root.join("book").join("src").join(&lab.chapter);
    let hints_seen = Progress::load(&workspace.root).lab(&lab.slug).hints_seen;
    anstream::println!(
        "\n{}  chapter {:02} \"{}\": {} ({} serves the book)",
        paint(ui::STRONG, "Read:"),
        lab.number,
        lab.title,
        workspace.relative(&chapter),
        command("cargo xtask book")
    );
    anstream::println!(
        "{}  {}",
        paint(ui::STRONG, "Code:"),
        workspace.relative(&lab.dir.join("src")),
    );
    let hint = if hints_seen < lab.hints.len() {
        format!(
            "{} shows hint {} of {}",
            command(format!("cargo xtask hint {}", lab.slug)),
            hints_seen + 1,
            lab.hints.len()
        )
    } else {
        format!(
            "you have seen every hint ({}); {} shows the fix (a spoiler)",
            command(format!("cargo xtask hint {} --all", lab.slug)),
            command(format!("cargo xtask solution {}", lab.slug))
        )
    };
    anstream::println!("{} {hint}", paint(ui::STRONG, "Stuck?"));
}

/// A sort key putting tests in the order they appear in `tests/lab.rs`
/// (the order the lab's author chose), unknown ones last.
fn test_order(lab: &Lab) -> impl Fn(&str) -> usize {
    let source = std::fs::read_to_string(lab.dir.join("tests").join("lab.rs")).unwrap_or_default();
    move |name: &str| {
        let short = name.rsplit("::").next().unwrap_or(name);
        source.find(&format!("fn {short}(")).unwrap_or(usize::MAX)
    }
}

/// How to point at the next lab once one passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// `check`: suggest the command to go on with.
    Suggest,
    /// `watch`: say that we move on.
    MoveOn,
}

/// Names the next lab that does not pass yet (after `done`, in order, then
/// from the start), or celebrates the end. Returns that lab.
pub fn announce_next(workspace: &Workspace, done: &Lab, how: Next) -> Option<Lab> {
    let states = status::quick_states(workspace).ok()?;
    let next = status::next_after(&states, done);
    match &next {
        Some(lab) => {
            let chapter =
                workspace.relative(&workspace.root.join("book").join("src").join(&lab.chapter));
            match how {
                Next::Suggest => anstream::println!(
                    "\n{} lab {} \"{}\": read {}, then run {}",
                    paint(ui::STRONG, "Next:"),
                    lab.label(),
                    lab.title,
                    chapter,
                    command(format!("cargo xtask watch {}", lab.slug))
                ),
                Next::MoveOn => anstream::println!(
                    "\n{} lab {} \"{}\" (read {}).\n",
                    paint(ui::STRONG, "Moving on to"),
                    lab.label(),
                    lab.title,
                    chapter
                ),
            }
        }
        None => {
            let all_pass = states
                .iter()
                .all(|(_, state)| matches!(state, LabState::Passing { .. }));
            if all_pass {
                anstream::println!(
                    "\n{} That was the last one: every lab passes. Congratulations!",
                    paint(ui::PASS, "★")
                );
            }
        }
    }
    next
}

/// Splits libtest's `thread 'name' (id) panicked at file:line:col:` first
/// line off a failure message: the message is what the learner must read.
fn split_panic_location(message: &str) -> (&str, Option<&str>) {
    if let Some((first, rest)) = message.split_once('\n')
        && first.starts_with("thread '")
        && let Some((_, location)) = first.split_once(" panicked at ")
    {
        return (rest, Some(location.trim_end_matches(':')));
    }
    (message, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_panic_location_is_split_off_the_message() {
        let message = "thread 'a_test' (8944) panicked at labs/00-hello/tests/lab.rs:33:5:\n\
                       GET /hello answered 404\n  left: 1";
        let (text, location) = split_panic_location(message);
        assert_eq!(text, "GET /hello answered 404\n  left: 1");
        assert_eq!(location, Some("labs/00-hello/tests/lab.rs:33:5"));
        assert_eq!(split_panic_location("just text"), ("just text", None));
    }
}
