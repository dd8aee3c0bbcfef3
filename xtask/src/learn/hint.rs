//! `cargo xtask hint <lab>`: one more hint each time.
//!
//! A lab's hints live in its `lab.toml`, gentlest first (the book renders the
//! same hints behind `<details>`). Each call reveals the next one and shows
//! those already seen above it, so a learner takes only as much help as they
//! need. How many were seen is remembered per lab slug in the progress file.

use std::process::ExitCode;

use anyhow::Result;

use crate::progress::Progress;
use crate::ui::{self, command, paint};
use crate::workbook::Workbook;

/// Reveal the next hint of a lab (one more each time you ask).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`).
    pub lab: String,
    /// Show every hint at once.
    #[arg(long)]
    pub all: bool,
    /// Forget which hints you have seen and start from the first again.
    #[arg(long, conflicts_with = "all")]
    pub again: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let lab = workbook.lab(&args.lab)?;
    let total = lab.hints.len();
    let seen_before =
        if args.again { 0 } else { Progress::load(&workbook.root).lab(&lab.slug).hints_seen };
    let seen_now = if args.all { total } else { (seen_before + 1).min(total) };
    Progress::update(&workbook.root, |progress| {
        progress.lab_mut(&lab.slug).hints_seen = seen_now;
    })?;

    anstream::println!(
        "{}\n",
        paint(ui::STRONG, format!("Hints for lab {} \"{}\"", lab.label(), lab.title))
    );
    for (index, hint) in lab.hints.iter().enumerate().take(seen_now) {
        let new = index >= seen_before || args.all;
        let heading = format!("Hint {} of {total}", index + 1);
        let text = ui::wrap(hint, "  ", 78);
        if new {
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
    Ok(ExitCode::SUCCESS)
}
