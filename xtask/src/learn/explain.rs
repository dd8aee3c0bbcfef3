//! What the learner reads once a lab's tests ran (which checks fail, the
//! first failure's message, the chapter, the hint command; once it passes,
//! what the fix taught and the next lab), and the hints: for `check`,
//! `watch` and `hint`.

use anyhow::Result;
use similar::{DiffTag, TextDiff};

use crate::cargo::{Outcome, Report};
use crate::git;
use crate::progress::{self, CheckResult, Progress};
use crate::ui::{self, command, indent, paint};
use crate::workbook::{Lab, Workbook};

fn xtask(verb: &str, lab: &Lab) -> String {
    command(format!("cargo xtask {verb} {}", lab.slug))
}

/// Runs the lab's tests, prints the explained result and remembers it.
pub fn check(workbook: &Workbook, lab: &Lab, progress: &mut Progress) -> Result<Report> {
    let passed_before =
        progress.lab(&lab.slug).last_check.is_some_and(|last| last.result == CheckResult::Passing);
    let running = command(format!("cargo test -p {}", lab.slug));
    anstream::println!("{} lab {} ({running})...", paint(ui::STRONG, "Checking"), lab.label());
    let report = progress::test_lab(workbook, lab, progress, true)?;
    // Tells a joined workshop room, in the background (see `room`).
    crate::room::report(workbook);
    explain(workbook, lab, progress, &report);
    if report.passed() && !passed_before {
        reflect(workbook, lab);
    }
    Ok(report)
}

/// Once a lab first passes: its `[reflect]`, and the size of the reference fix.
fn reflect(workbook: &Workbook, lab: &Lab) {
    let reflect = &lab.reflect;
    let changed = git::solution_changes(&workbook.root, lab).unwrap_or_default();
    if reflect.fix.is_none() && changed.is_empty() {
        return;
    }
    anstream::println!("\n{}", paint(ui::STRONG, "What the fix teaches"));
    let say = |text: &str| anstream::print!("{}", ui::wrap(text, "  ", 78));
    reflect.fix.iter().for_each(|fix| say(fix));
    if !changed.is_empty() {
        let lines: usize = changed
            .iter()
            .flat_map(|file| TextDiff::from_lines(&file.starter, &file.fixed).ops().to_vec())
            .filter(|op| op.tag() != DiffTag::Equal)
            .map(|op| op.old_range().len().max(op.new_range().len()))
            .sum();
        let files: Vec<String> = changed.iter().map(|file| workbook.relative(&file.lab)).collect();
        say(&format!(
            "The reference fix changes about {lines} lines of {}: {} compares it with yours.",
            files.join(", "),
            xtask("solution", lab)
        ));
    }
    let looks_right = paint(ui::STRONG, "Fixes that look right but are not");
    let opt_in = command(format!("cargo test -p {} -- --ignored stretch_", lab.slug));
    let further = format!("{} (their tests: {opt_in})", paint(ui::STRONG, "Going further"));
    for (title, items) in [(looks_right, &reflect.looks_right), (further, &reflect.stretch)] {
        anstream::print!("{}", if items.is_empty() { String::new() } else { title + "\n" });
        items.iter().for_each(|item| say(&format!("- {item}")));
    }
}

fn explain(workbook: &Workbook, lab: &Lab, progress: &Progress, report: &Report) {
    let (cross, label) = (paint(ui::FAIL, "✗"), lab.label());
    match report {
        Report::DidNotCompile(errors) => {
            anstream::println!(
                "\n{cross} lab {label} does not compile yet. The compiler says:\n\n{}",
                indent(errors, "  ")
            );
            for trap in lab.traps.iter().filter(|trap| errors.contains(&trap.error)) {
                let likely = paint(ui::WARN, "Likely:");
                anstream::println!("\n{likely} {}", workbook.book_links(&trap.says));
            }
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
            if report.passed() {
                let edited = progress::edited_tests(workbook, lab);
                if edited.is_empty() {
                    let pass = paint(ui::PASS, "✓");
                    anstream::println!(
                        "\n{pass} Lab {label} passes: all {checks} checks. Well done!"
                    );
                } else {
                    anstream::println!(
                        "\n{} Lab {label} passes its {checks} checks, but with edited tests: {} \
                         differ(s) from the shipped tests, so this pass proves little. {} \
                         restores them.",
                        paint(ui::WARN, "!"),
                        edited.join(", "),
                        command(format!("git checkout -- {}", edited.join(" ")))
                    );
                }
                return;
            }
            let failed: Vec<&String> =
                names.into_iter().filter(|name| tests[*name].outcome == Outcome::Failed).collect();
            match (failed.first(), problem) {
                (Some(first), _) => {
                    let message = tests[*first].message.as_deref().unwrap_or("(no message)");
                    let (test, others) = test_panic(first, message);
                    let (count, message) =
                        (paint(ui::FAIL, failed.len()), indent(test.message, "  "));
                    anstream::println!(
                        "\n{count} of {checks} checks fail. The first failure says:\n\n{message}"
                    );
                    test.location.iter().for_each(|at| ui::note(format!("  (at {at})")));
                    if let Some(other) = others.first() {
                        let at = other.location.map(|l| format!(" at {l}")).unwrap_or_default();
                        let (count, said) =
                            (others.len(), other.message.lines().next().unwrap_or(""));
                        ui::note(format!(
                            "  (before that, {count} panic(s) in other threads, the first{at}: {said})"
                        ));
                    }
                }
                (None, Some(problem)) => anstream::println!(
                    "\n{cross} The tests did not finish normally:\n\n{}",
                    indent(problem, "  ")
                ),
                (None, None) => {
                    anstream::println!("\n{cross} No test ran. Is tests/lab.rs still there?")
                }
            }
        }
    }
    print_help(workbook, lab, progress);
}

/// Where to read and how to get a hint.
fn print_help(workbook: &Workbook, lab: &Lab, progress: &Progress) {
    let (test, hints) = lab.hints_for(progress::first_failing(progress, lab).as_deref());
    let seen = progress.lab(&lab.slug).seen(test);
    let (chapter, book) = (workbook.relative(&workbook.chapter(lab)), command("cargo xtask book"));
    anstream::println!(
        "\n{}  chapter {:02} \"{}\": {chapter} ({book} serves the book)",
        paint(ui::STRONG, "Read:"),
        lab.number,
        lab.title
    );
    let code = paint(ui::STRONG, "Code:");
    anstream::println!("{code}  {}", workbook.relative(&lab.dir.join("src")));
    let for_test = test.map(|test| format!(" (for `{test}`)")).unwrap_or_default();
    let hint = if seen < hints.len() {
        format!("{} shows hint {} of {}{for_test}", xtask("hint", lab), seen + 1, hints.len())
    } else {
        format!(
            "you have seen every hint{for_test} ({}); {} shows the fix (a spoiler)",
            command(format!("cargo xtask hint {} --all", lab.slug)),
            xtask("solution", lab)
        )
    };
    anstream::println!("{} {hint}", paint(ui::STRONG, "Stuck?"));
}

/// How to point at the next lab once one passes: `check` suggests the
/// command, `watch` names the lab and waits to be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Suggest,
    MoveOn,
}

/// Names the next lab after `done` that does not pass yet (never one
/// before it), or celebrates the end. Returns the next lab.
pub fn announce_next(
    workbook: &Workbook,
    done: &Lab,
    progress: &Progress,
    how: Next,
) -> Option<Lab> {
    let states = progress::states(workbook, progress).ok()?;
    let next = progress::next_after(&states, done);
    match (&next, progress::open_labs(&states).next()) {
        (Some(lab), _) => {
            let chapter = workbook.relative(&workbook.chapter(lab));
            let then = match how {
                Next::Suggest => format!(": read {chapter}, then run {}", xtask("watch", lab)),
                Next::MoveOn => format!(" (read {chapter})."),
            };
            let (next, label, title) = (paint(ui::STRONG, "Next:"), lab.label(), &lab.title);
            anstream::println!("\n{next} lab {label} \"{title}\"{then}");
        }
        (None, None) => anstream::println!(
            "\n{} That was the last one: every lab passes. Congratulations!",
            paint(ui::PASS, "★")
        ),
        (None, Some(skipped)) => anstream::println!(
            "\n{} Every lab after this one passes. Still open before it: lab {} ({}).",
            paint(ui::PASS, "✓"),
            skipped.label(),
            xtask("watch", skipped)
        ),
    }
    next
}

/// One panic in a failed test's output: the thread (libtest names a test's
/// after the test), where, and what it said.
#[derive(Debug, PartialEq, Eq)]
pub struct Panic<'a> {
    pub thread: &'a str,
    pub location: Option<&'a str>,
    pub message: &'a str,
}

/// The panic of the test `name` (else the last one), and the panics of other
/// threads, which the learner reads second: a server's panic is usually a
/// consequence, not the finding.
pub fn test_panic<'a>(name: &str, output: &'a str) -> (Panic<'a>, Vec<Panic<'a>>) {
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
        Some(index) => (panics.remove(index), panics),
        None => (Panic { thread: "", location: None, message: output }, Vec::new()),
    }
}

/// Shows the hints seen so far of the lab's current ladder and one more
/// (or all), and remembers it.
pub fn reveal(
    workbook: &Workbook,
    lab: &Lab,
    progress: &mut Progress,
    all: bool,
    again: bool,
) -> Result<()> {
    let (test, hints) = lab.hints_for(progress::first_failing(progress, lab).as_deref());
    let total = hints.len();
    let seen_before = if again { 0 } else { progress.lab(&lab.slug).seen(test) };
    let seen_now = if all { total } else { (seen_before + 1).min(total) };
    *progress = Progress::update(&workbook.root, |progress| {
        progress.lab_mut(&lab.slug).set_seen(test, seen_now)
    })?;

    let for_test = test.map(|test| format!(", for the failing check `{test}`")).unwrap_or_default();
    let title = format!("Hints for lab {} \"{}\"{for_test}", lab.label(), lab.title);
    anstream::println!("{}\n", paint(ui::STRONG, title));
    for (index, hint) in hints.iter().enumerate().take(seen_now) {
        let (heading, text) = (format!("Hint {} of {total}", index + 1), ui::wrap(hint, "  ", 78));
        if index >= seen_before || all {
            anstream::println!("{}\n{text}", paint(ui::STRONG, heading));
        } else {
            anstream::println!("{}\n{}", paint(ui::DIM, heading + " (seen)"), paint(ui::DIM, text));
        }
    }
    match total - seen_now {
        0 => anstream::println!(
            "That was the last hint. {} shows the whole fix (a spoiler; try first!).",
            xtask("solution", lab)
        ),
        left => anstream::println!(
            "{left} more: run {} again, or add {} to see them all.",
            xtask("hint", lab),
            command("--all")
        ),
    }
    Ok(())
}
