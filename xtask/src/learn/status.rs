//! `cargo xtask status` (and plain `cargo xtask`): every lab with its state,
//! a progress bar, and the command for what to do next.

use std::process::ExitCode;

use anyhow::Result;

use crate::progress::{self, LabState, Progress};
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook};

/// Show every lab with its state (not started, failing, passing), and what
/// to do next. Only labs changed since their last check are re-tested.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// Re-test every lab you have changed, ignoring remembered results.
    #[arg(long)]
    pub retest: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let (labs, broken) = workbook.labs()?;
    let mut progress = Progress::load(&workbook.root);
    let mut states = Vec::new();
    for lab in labs {
        let mut state = progress::state(workbook, &lab, &progress);
        if state == LabState::Unchecked || (args.retest && state != LabState::NotStarted) {
            let testing = format!("testing {} (changed since its last check)", lab.label());
            ui::note(format!("{testing}: cargo test -p {}", lab.slug));
            progress::test_lab(workbook, &lab, &mut progress, true)?;
            state = progress::state(workbook, &lab, &progress);
        }
        states.push((lab, state));
    }
    print_table(workbook, &states);
    for lab in &broken {
        let error = format!("{} cannot be loaded: {:#}", workbook.relative(&lab.dir), lab.error);
        anstream::println!("{} {error}", paint(ui::WARN, "warning:"));
    }
    Ok(ExitCode::SUCCESS)
}

/// How a lab's state reads in the table (a pass with edited tests is not a plain pass).
fn describe(state: &LabState, edited_tests: bool) -> String {
    let style = match state {
        LabState::Passing { .. } if edited_tests => {
            return paint(ui::WARN, "! passing, with edited tests");
        }
        LabState::NotStarted => ui::DIM,
        LabState::Unchecked => ui::WARN,
        LabState::DidNotCompile | LabState::Failing { .. } => ui::FAIL,
        LabState::Passing { .. } => ui::PASS,
    };
    paint(style, state.summary())
}

fn print_table(workbook: &Workbook, states: &[(Lab, LabState)]) {
    let slug_width = states.iter().map(|(l, _)| l.slug.len()).max().unwrap_or(4);
    let title_width = states.iter().map(|(l, _)| l.title.len()).max().unwrap_or(5);
    let title = paint(ui::STRONG, "Concurrent HTTP Servers in Rust: your progress");
    anstream::println!("\n{title}\n");
    ui::note(format!("  ##  {:slug_width$}  {:title_width$}  state", "lab", "title"));
    for (lab, state) in states {
        anstream::println!(
            "  {:02}  {:slug_width$}  {:title_width$}  {}",
            lab.number,
            lab.slug,
            lab.title,
            describe(state, !progress::edited_tests(workbook, lab).is_empty())
        );
    }
    let (passing, total) = (states.iter().filter(|(_, s)| s.passing()).count(), states.len());
    let bar = ui::progress_bar(passing, total, 24);
    anstream::println!("\n  {bar} {passing} of {total} labs pass\n");
    match states.iter().find(|(_, s)| !s.passing()) {
        Some((lab, state)) => {
            let chapter = workbook.relative(&workbook.chapter(lab));
            let verb = if *state == LabState::NotStarted { "Start" } else { "Continue with" };
            let (verb, label, title) = (paint(ui::STRONG, verb), lab.label(), &lab.title);
            let (book, watch) =
                (command("cargo xtask book"), command(format!("cargo xtask watch {}", lab.slug)));
            anstream::println!(
                "{verb} lab {label} \"{title}\". Read {chapter} ({book} serves the book), then run:\n\n    {watch}\n"
            );
        }
        None if !states.is_empty() => {
            anstream::println!("{} Every lab passes. Well done!\n", paint(ui::PASS, "★"))
        }
        None => anstream::println!("No labs found under labs/.\n"),
    }
}
