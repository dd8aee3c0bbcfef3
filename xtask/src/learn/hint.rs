//! `cargo xtask hint <lab>`: one more hint each time.
//!
//! A lab's hints live in its `lab.toml`, gentlest first (the book renders the
//! same hints behind `<details>`). Each call reveals the next one and shows
//! those already seen above it, so a learner takes only as much help as they
//! need. How many were seen is remembered per lab slug in the progress file.
//!
//! A lab with several bugs may give a test hints of its own (`hints_for` in
//! `lab.toml`): then the hints follow the first failing check.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::progress::{self, Progress};
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook};

/// Reveal the next hint of a lab (one more each time you ask); the hints
/// for its first failing check if it has some of its own.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`). Default: the first lab
    /// that does not pass yet.
    pub lab: Option<String>,
    /// Show every hint at once.
    #[arg(long)]
    pub all: bool,
    /// Forget which hints you have seen and start from the first again.
    #[arg(long, conflicts_with = "all")]
    pub again: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let lab = match &args.lab {
        Some(name) => workbook.lab(name)?,
        None => match progress::open_labs(&progress::states(workbook)?).next() {
            Some(lab) => lab.clone(),
            None => bail!(
                "every lab passes: name the lab whose hints you want, `cargo xtask hint <lab>`"
            ),
        },
    };
    reveal(workbook, &lab, args.all, args.again)?;
    Ok(ExitCode::SUCCESS)
}

/// Shows the hints seen so far of the lab's current ladder, and one more
/// (or all); remembers how many were seen.
pub fn reveal(workbook: &Workbook, lab: &Lab, all: bool, again: bool) -> Result<()> {
    let progress = Progress::load(&workbook.root);
    let failing = progress::first_failing(&progress, lab);
    let (test, hints) = lab.hints_for(failing.as_deref());
    let total = hints.len();
    let seen_before = if again { 0 } else { progress.lab(&lab.slug).seen(test) };
    let seen_now = if all { total } else { (seen_before + 1).min(total) };
    Progress::update(&workbook.root, |progress| {
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
