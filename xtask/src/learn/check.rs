//! `cargo xtask check <lab>`: run a lab's tests and explain the result.
//!
//! It runs exactly what the book tells learners to run, `cargo test -p <lab>`
//! on their own code, and turns libtest's output into: which checks pass and
//! fail, the first failure's message (the lab's tests are written to teach,
//! so the message is the most useful thing to show), the chapter to read and
//! the hint command. On success it names the next lab. The result is
//! remembered (see [`crate::progress`]), which is what makes `status` fast.

use std::process::ExitCode;

use anyhow::Result;

use crate::cargo::{Outcome, Report};
use crate::progress::{self, Progress};
use crate::ui::{self, command, indent, paint};
use crate::workbook::{Lab, Workbook};

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

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    crate::process::exit_on_signal();
    let lab = workbook.lab(&args.lab)?;
    if check(workbook, &lab)?.passed() {
        announce_next(workbook, &lab, Next::Suggest);
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// Runs the lab's tests, prints the explained result and remembers it.
pub fn check(workbook: &Workbook, lab: &Lab) -> Result<Report> {
    let running = command(format!("cargo test -p {}", lab.slug));
    anstream::println!("{} lab {} ({running})...", paint(ui::STRONG, "Checking"), lab.label());
    let report = progress::test_lab(workbook, lab, true)?;
    explain(workbook, lab, &report);
    Ok(report)
}

/// Prints what the run means for the learner.
fn explain(workbook: &Workbook, lab: &Lab, report: &Report) {
    match report {
        Report::DidNotCompile(errors) => {
            anstream::println!(
                "\n{} lab {} does not compile yet. The compiler says:\n",
                paint(ui::FAIL, "✗"),
                lab.label()
            );
            anstream::println!("{}", indent(errors, "  "));
            print_help(workbook, lab);
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
            let failed: Vec<&&String> =
                names.iter().filter(|name| tests[**name].outcome == Outcome::Failed).collect();
            if report.passed() {
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
            print_help(workbook, lab);
        }
    }
}

/// Where to read and how to get a hint.
fn print_help(workbook: &Workbook, lab: &Lab) {
    let chapter = workbook.chapter(lab);
    let hints_seen = Progress::load(&workbook.root).lab(&lab.slug).hints_seen;
    anstream::println!(
        "\n{}  chapter {:02} \"{}\": {} ({} serves the book)",
        paint(ui::STRONG, "Read:"),
        lab.number,
        lab.title,
        workbook.relative(&chapter),
        command("cargo xtask book")
    );
    anstream::println!(
        "{}  {}",
        paint(ui::STRONG, "Code:"),
        workbook.relative(&lab.dir.join("src")),
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
pub fn announce_next(workbook: &Workbook, done: &Lab, how: Next) -> Option<Lab> {
    let states = progress::states(workbook).ok()?;
    let next = progress::next_after(&states, done);
    match &next {
        Some(lab) => {
            let chapter = workbook.relative(&workbook.chapter(lab));
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
            if states.iter().all(|(_, state)| state.passing()) {
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
