//! What the learner reads once a lab's tests ran: which checks pass and
//! fail, the first failure's message (the lab's tests are written to teach),
//! the chapter to read and the hint command; once the lab passes, what the
//! fix taught and the next lab. `check` and `watch` run a check through
//! here, `hint` and `watch` reveal hints.

use anyhow::Result;

use crate::cargo::{Outcome, Report};
use crate::git;
use crate::progress::{self, CheckResult, Progress};
use crate::ui::{self, command, indent, paint};
use crate::workbook::{Lab, Workbook};

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

/// Once a lab first passes: what the fix taught, the fixes that look right
/// but are not, and where to go further (the `[reflect]` of `lab.toml`).
fn reflect(workbook: &Workbook, lab: &Lab) {
    let reflect = &lab.reflect;
    let changed = git::solution_changes(&workbook.root, lab).unwrap_or_default();
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
    let list = |title: String, items: &[String]| {
        if !items.is_empty() {
            anstream::println!("{title}");
            items
                .iter()
                .for_each(|item| anstream::print!("{}", ui::wrap(&format!("- {item}"), "  ", 78)));
        }
    };
    list(paint(ui::STRONG, "Fixes that look right but are not"), &reflect.looks_right);
    let opt_in = command(format!("cargo test -p {} -- --ignored stretch_", lab.slug));
    list(
        format!("{} (their tests: {opt_in})", paint(ui::STRONG, "Going further")),
        &reflect.stretch,
    );
}

/// Prints what the run means for the learner.
fn explain(workbook: &Workbook, lab: &Lab, progress: &Progress, report: &Report) {
    match report {
        Report::DidNotCompile(errors) => {
            let (cross, label) = (paint(ui::FAIL, "✗"), lab.label());
            anstream::println!("\n{cross} lab {label} does not compile yet. The compiler says:\n");
            anstream::println!("{}", indent(errors, "  "));
            for trap in lab.traps.iter().filter(|trap| errors.contains(&trap.error)) {
                let likely = paint(ui::WARN, "Likely:");
                anstream::println!("\n{likely} {}", workbook.book_links(&trap.says));
            }
            print_help(workbook, lab, progress);
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
            let label = lab.label();
            if report.passed() && !edited.is_empty() {
                let (files, restore) =
                    (edited.join(", "), command(format!("git checkout -- {}", edited.join(" "))));
                anstream::println!(
                    "\n{} Lab {label} passes its {checks} checks, but with edited tests: {files} \
                     differ(s) from the shipped tests, so this pass proves little. {restore} \
                     restores them.",
                    paint(ui::WARN, "!"),
                );
                return;
            }
            if report.passed() {
                let pass = paint(ui::PASS, "✓");
                anstream::println!("\n{pass} Lab {label} passes: all {checks} checks. Well done!");
                return;
            }
            if let Some(first) = failed.first() {
                let count = paint(ui::FAIL, failed.len());
                anstream::println!("\n{count} of {checks} checks fail. The first failure says:\n");
                let message = tests[**first].message.as_deref().unwrap_or("(no message)");
                let (test, others) = test_panic(first, message);
                anstream::println!("{}", indent(test.message, "  "));
                if let Some(location) = test.location {
                    ui::note(format!("  (at {location})"));
                }
                if let Some(other) = others.first() {
                    let first_line = other.message.lines().next().unwrap_or("");
                    let at = other.location.map(|l| format!(" at {l}")).unwrap_or_default();
                    let also = format!(
                        "  (before that, {} panic(s) in other threads, the first{at}: {first_line})",
                        others.len()
                    );
                    ui::note(also);
                }
            } else if let Some(problem) = problem {
                let cross = paint(ui::FAIL, "✗");
                anstream::println!("\n{cross} The tests did not finish normally:\n");
                anstream::println!("{}", indent(problem, "  "));
            } else {
                let cross = paint(ui::FAIL, "✗");
                anstream::println!("\n{cross} No test ran. Is tests/lab.rs still there?");
            }
            print_help(workbook, lab, progress);
        }
    }
}

/// Where to read and how to get a hint.
fn print_help(workbook: &Workbook, lab: &Lab, progress: &Progress) {
    let chapter = workbook.chapter(lab);
    let failing = progress::first_failing(progress, lab);
    let (test, hints) = lab.hints_for(failing.as_deref());
    let hints_seen = progress.lab(&lab.slug).seen(test);
    let (read, chapter, book) =
        (paint(ui::STRONG, "Read:"), workbook.relative(&chapter), command("cargo xtask book"));
    let (number, title) = (lab.number, &lab.title);
    anstream::println!(
        "\n{read}  chapter {number:02} \"{title}\": {chapter} ({book} serves the book)"
    );
    let code = paint(ui::STRONG, "Code:");
    anstream::println!("{code}  {}", workbook.relative(&lab.dir.join("src")));
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
pub fn announce_next(
    workbook: &Workbook,
    done: &Lab,
    progress: &Progress,
    how: Next,
) -> Option<Lab> {
    let states = progress::states(workbook, progress).ok()?;
    let next = progress::next_after(&states, done);
    match &next {
        Some(lab) => {
            let chapter = workbook.relative(&workbook.chapter(lab));
            let (next, label, title) = (paint(ui::STRONG, "Next:"), lab.label(), &lab.title);
            let watch = command(format!("cargo xtask watch {}", lab.slug));
            match how {
                Next::Suggest => {
                    anstream::println!(
                        "\n{next} lab {label} \"{title}\": read {chapter}, then run {watch}"
                    )
                }
                Next::MoveOn => {
                    anstream::println!("\n{next} lab {label} \"{title}\" (read {chapter}).")
                }
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

/// Shows the hints seen so far of the lab's current ladder, and one more
/// (or all); remembers how many were seen.
pub fn reveal(
    workbook: &Workbook,
    lab: &Lab,
    progress: &mut Progress,
    all: bool,
    again: bool,
) -> Result<()> {
    let failing = progress::first_failing(progress, lab);
    let (test, hints) = lab.hints_for(failing.as_deref());
    let total = hints.len();
    let seen_before = if again { 0 } else { progress.lab(&lab.slug).seen(test) };
    let seen_now = if all { total } else { (seen_before + 1).min(total) };
    *progress = Progress::update(&workbook.root, |progress| {
        progress.lab_mut(&lab.slug).set_seen(test, seen_now)
    })?;

    let title = format!("Hints for lab {} \"{}\"", lab.label(), lab.title);
    let title = match test {
        Some(test) => format!("{title}, for the failing check `{test}`"),
        None => title,
    };
    anstream::println!("{}\n", paint(ui::STRONG, title));
    for (index, hint) in hints.iter().enumerate().take(seen_now) {
        let heading = format!("Hint {} of {total}", index + 1);
        let text = ui::wrap(hint, "  ", 78);
        if index >= seen_before || all {
            anstream::println!("{}\n{}", paint(ui::STRONG, heading), text);
        } else {
            anstream::println!(
                "{}\n{}",
                paint(ui::DIM, format!("{heading} (seen)")),
                paint(ui::DIM, text)
            );
        }
    }
    let left = total - seen_now;
    if left > 0 {
        anstream::println!(
            "{left} more: run {} again, or add {} to see them all.",
            command(format!("cargo xtask hint {}", lab.slug)),
            command("--all")
        );
    } else {
        anstream::println!(
            "That was the last hint. {} shows the whole fix (a spoiler; try first!).",
            command(format!("cargo xtask solution {}", lab.slug))
        );
    }
    Ok(())
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
