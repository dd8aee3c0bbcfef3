//! `cargo xtask check <lab>`: see [`Args`]; the explaining is [`super::explain`]'s.

use std::process::ExitCode;

use anyhow::Result;

use super::explain::{self, Next};
use crate::progress::Progress;
use crate::workbook::Workbook;

/// Run a lab's tests (`cargo test -p <lab>`) and explain what fails.
///
/// Shows which checks pass and fail, the first failure's message, the
/// chapter to read and how to get a hint; once all pass, the next lab.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`).
    pub lab: String,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let lab = workbook.lab(&args.lab)?;
    let mut progress = Progress::load(&workbook.root);
    let passed = explain::check(workbook, &lab, &mut progress)?.passed();
    if passed {
        explain::announce_next(workbook, &lab, &progress, Next::Suggest);
    }
    // Everything is printed; let a joined room's send finish (or time out).
    crate::room::flush(crate::room::TIMEOUT);
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
