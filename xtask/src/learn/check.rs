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
use crate::progress::{self, CheckResult, Progress};
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
    let passed = check(workbook, &lab)?.passed();
    if passed {
        announce_next(workbook, &lab, Next::Suggest);
    }
    // Everything is printed; let a joined room's send finish (or time out).
    crate::room::flush(crate::room::TIMEOUT);
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs the lab's tests, prints the explained result and remembers it.
pub fn check(workbook: &Workbook, lab: &Lab) -> Result<Report> {
    let passed_before = Progress::load(&workbook.root)
        .lab(&lab.slug)
        .last_check
        .is_some_and(|last| last.result == CheckResult::Passing);
    let running = command(format!("cargo test -p {}", lab.slug));
    anstream::println!("{} lab {} ({running})...", paint(ui::STRONG, "Checking"), lab.label());
    let report = progress::test_lab(workbook, lab, true)?;
    // Tells a joined workshop room, in the background (see `room`).
    crate::room::report(workbook);
    explain(workbook, lab, &report);
    if report.passed() && !passed_before {
        reflect(workbook, lab);
    }
    Ok(report)
}

/// Once a lab first passes: what the fix taught, the fixes that look right
/// but are not, and where to go further (the `[reflect]` of `lab.toml`).
fn reflect(workbook: &Workbook, lab: &Lab) {
    let reflect = &lab.reflect;
    let changed = super::solution::changed_files(workbook, lab).unwrap_or_default();
    if reflect.fix.is_none() && changed.is_empty() {
        return;
    }
    anstream::println!("\n{}", paint(ui::STRONG, "What the fix teaches"));
    if let Some(fix) = &reflect.fix {
        anstream::print!("{}", ui::wrap(fix, "  ", 78));
    }
    let lines: usize = changed
        .iter()
        .flat_map(|file| similar::TextDiff::from_lines(&file.starter, &file.fixed).ops().to_vec())
        .filter(|op| op.tag() != similar::DiffTag::Equal)
        .map(|op| op.old_range().len().max(op.new_range().len()))
        .sum();
    if !changed.is_empty() {
        let files: Vec<String> = changed.iter().map(|file| workbook.relative(&file.lab)).collect();
        let compare = format!(
            "The reference fix changes about {lines} lines of {}: {} compares it with yours.",
            files.join(", "),
            command(format!("cargo xtask solution {}", lab.slug))
        );
        anstream::print!("{}", ui::wrap(&compare, "  ", 78));
    }
    if !reflect.looks_right.is_empty() {
        anstream::println!("{}", paint(ui::STRONG, "Fixes that look right but are not"));
        reflect
            .looks_right
            .iter()
            .for_each(|item| anstream::print!("{}", ui::wrap(&format!("- {item}"), "  ", 78)));
    }
    if !reflect.stretch.is_empty() {
        let opt_in = command(format!("cargo test -p {} -- --ignored stretch_", lab.slug));
        anstream::println!("{} (their tests: {opt_in})", paint(ui::STRONG, "Going further"));
        reflect
            .stretch
            .iter()
            .for_each(|item| anstream::print!("{}", ui::wrap(&format!("- {item}"), "  ", 78)));
    }
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
            for trap in lab.traps.iter().filter(|trap| errors.contains(&trap.error)) {
                anstream::println!(
                    "\n{} {}",
                    paint(ui::WARN, "Likely:"),
                    workbook.book_links(&trap.says)
                );
            }
            print_help(workbook, lab);
        }
        Report::Ran { tests, problem } => {
            // Opt-in tests (`#[ignore]`, the stretch tasks) are not checks.
            let checks = tests.values().filter(|t| t.outcome != Outcome::Ignored).count();
            let order = lab.test_order();
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
            let edited = progress::edited_tests(workbook, lab);
            if report.passed() && !edited.is_empty() {
                anstream::println!(
                    "\n{} Lab {} passes its {} checks, but with edited tests: {} differ(s) from the \
                     shipped tests, so this pass proves little. {} restores them.",
                    paint(ui::WARN, "!"),
                    lab.label(),
                    checks,
                    edited.join(", "),
                    command(format!("git checkout -- {}", edited.join(" ")))
                );
                return;
            }
            if report.passed() {
                anstream::println!(
                    "\n{} Lab {} passes: all {} checks. Well done!",
                    paint(ui::PASS, "✓"),
                    lab.label(),
                    checks
                );
                return;
            }
            if let Some(first) = failed.first() {
                anstream::println!(
                    "\n{} of {} checks fail. The first failure says:\n",
                    paint(ui::FAIL, failed.len()),
                    checks
                );
                let message = tests[**first].message.as_deref().unwrap_or("(no message)");
                let (test, others) = test_panic(first, message);
                anstream::println!("{}", indent(test.message, "  "));
                if let Some(location) = test.location {
                    anstream::println!("{}", paint(ui::DIM, format!("  (at {location})")));
                }
                if let Some(other) = others.first() {
                    let first_line = other.message.lines().next().unwrap_or("");
                    let at = other.location.map(|l| format!(" at {l}")).unwrap_or_default();
                    let also = format!(
                        "  (before that, {} panic(s) in other threads, the first{at}: {first_line})",
                        others.len()
                    );
                    anstream::println!("{}", paint(ui::DIM, also));
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
    let progress = Progress::load(&workbook.root);
    let failing = progress::first_failing(&progress, lab);
    let (test, hints) = lab.hints_for(failing.as_deref());
    let hints_seen = progress.lab(&lab.slug).seen(test);
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
        workbook.relative(&lab.dir.join("src"))
    );
    let for_test = test.map(|test| format!(" (for `{test}`)")).unwrap_or_default();
    let hint = if hints_seen < hints.len() {
        format!(
            "{} shows hint {} of {}{for_test}",
            command(format!("cargo xtask hint {}", lab.slug)),
            hints_seen + 1,
            hints.len()
        )
    } else {
        format!(
            "you have seen every hint{for_test} ({}); {} shows the fix (a spoiler)",
            command(format!("cargo xtask hint {} --all", lab.slug)),
            command(format!("cargo xtask solution {}", lab.slug))
        )
    };
    anstream::println!("{} {hint}", paint(ui::STRONG, "Stuck?"));
}

/// How to point at the next lab once one passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// `check`: suggest the command to go on with.
    Suggest,
    /// `watch`: name it; `watch` then waits to be asked.
    MoveOn,
}

/// Names the next lab after `done` that does not pass yet, or celebrates
/// the end, or names a lab skipped before it. Returns the next lab.
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
                    "\n{} lab {} \"{}\" (read {}).",
                    paint(ui::STRONG, "Next:"),
                    lab.label(),
                    lab.title,
                    chapter
                ),
            }
        }
        None => match progress::open_labs(&states).next() {
            None => anstream::println!(
                "\n{} That was the last one: every lab passes. Congratulations!",
                paint(ui::PASS, "★")
            ),
            // Never backwards: a learner who skipped a lab chose to.
            Some(skipped) => anstream::println!(
                "\n{} Every lab after this one passes. Still open before it: lab {} ({}).",
                paint(ui::PASS, "✓"),
                skipped.label(),
                command(format!("cargo xtask watch {}", skipped.slug))
            ),
        },
    }
    next
}

/// One panic in a failed test's output.
#[derive(Debug, PartialEq, Eq)]
struct Panic<'a> {
    /// The thread's name: libtest names a test's thread after the test.
    thread: &'a str,
    location: Option<&'a str>,
    /// What it said, without libtest's `thread '…' panicked at …:` line.
    message: &'a str,
}

/// The panic of the test `name` in its failure output, and the panics of
/// other threads (a server's worker, say), which the learner reads second: a
/// deliberate `/crash` or a server panic is usually a consequence, not the
/// finding. Without a panic of the test's own thread, the last one counts.
fn test_panic<'a>(name: &str, output: &'a str) -> (Panic<'a>, Vec<Panic<'a>>) {
    let mut panics = Vec::new();
    let mut rest = output;
    while let Some(start) = rest.find("thread '") {
        let block = &rest[start..];
        let end = block[1..].find("\nthread '").map_or(block.len(), |i| i + 1);
        let (header, message) = block[..end].split_once('\n').unwrap_or((&block[..end], ""));
        let thread = header["thread '".len()..].split('\'').next().unwrap_or("");
        let location =
            header.split_once(" panicked at ").map(|(_, at)| at.trim_end().trim_end_matches(':'));
        panics.push(Panic { thread, location, message: message.trim_end() });
        rest = &block[end..];
    }
    let short = name.rsplit("::").next().unwrap_or(name);
    let own = panics.iter().rposition(|p| p.thread == name || p.thread == short);
    match own.or(panics.len().checked_sub(1)) {
        Some(index) => {
            let test = panics.remove(index);
            (test, panics)
        }
        None => (Panic { thread: "", location: None, message: output }, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tests_own_panic_comes_first_and_other_threads_after() {
        let output = "thread 'tokio-runtime-worker' (8950) panicked at labs/03-overload/src/lib.rs:134:5:\n\
                      deliberate crash\n\
                      thread 'excess_requests_are_refused_fast' (8944) panicked at labs/03-overload/tests/lab.rs:33:5:\n\
                      6 requests answered 200\n  left: 1";
        let (test, others) = test_panic("excess_requests_are_refused_fast", output);
        assert_eq!(test.message, "6 requests answered 200\n  left: 1");
        assert_eq!(test.location, Some("labs/03-overload/tests/lab.rs:33:5"));
        assert_eq!(others.len(), 1);
        assert_eq!(
            (others[0].thread, others[0].message),
            ("tokio-runtime-worker", "deliberate crash")
        );
        let (plain, others) = test_panic("a_test", "just text");
        assert_eq!((plain.message, plain.location, others.len()), ("just text", None, 0));
    }
}
