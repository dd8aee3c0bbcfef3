//! `cargo xtask reset <lab>`: the lab's folder exactly as committed (added
//! files deleted too: a stray `mod` file could change the starter), after
//! the learner said yes, with what it undoes saved first.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::backup;
use crate::git::{self, ChangeKind};
use crate::ui::{self, command, paint};
use crate::workbook::Workbook;

/// Restore a lab's files to the committed starter (asks first).
///
/// Changed and deleted files come back as committed; files you added to
/// the lab's folder are deleted. Other labs are never touched.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`).
    pub lab: String,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let lab = workbook.lab(&args.lab)?;
    let folder = workbook.relative(&lab.dir);
    let changes = git::changes(&workbook.root, &lab.dir).context(
        "reset needs git: this copy of the workbook is not a git checkout (or git is \
         not installed), so there is no committed starter to go back to",
    )?;
    if changes.is_empty() {
        anstream::println!("{folder} is already the committed starter: nothing to reset.");
        return Ok(ExitCode::SUCCESS);
    }

    anstream::println!("Resetting {folder} to the committed starter will:");
    for change in &changes {
        let what = match change.kind {
            ChangeKind::Modified => paint(ui::WARN, "undo your changes to"),
            ChangeKind::Deleted => paint(ui::PASS, "bring back"),
            ChangeKind::New => paint(ui::FAIL, "delete"),
        };
        anstream::println!("  {what} {}", change.path);
    }
    if !args.yes && !ui::confirm("Reset it?") {
        anstream::println!("Nothing changed.");
        return Ok(ExitCode::SUCCESS);
    }

    let replaced: Vec<_> = changes.iter().map(|change| workbook.root.join(&change.path)).collect();
    let saved = backup::save(workbook, &lab, &replaced)?;
    git::restore(&workbook.root, &lab.dir)?;
    anstream::println!(
        "{} {folder} is the starter again. {} shows where you start.",
        paint(ui::PASS, "✓"),
        command(format!("cargo xtask check {}", lab.slug))
    );
    backup::tell_saved(workbook, &lab, saved.as_deref());
    Ok(ExitCode::SUCCESS)
}
