//! `cargo xtask check <lab>`: run a lab's tests and explain the result.
//!
//! It runs exactly what the book tells learners to run, `cargo test -p <lab>`
//! on their own code, and turns libtest's output into: which checks pass and
//! fail, the first failure's message (the lab's tests are written to teach,
//! so the message is the most useful thing to show), the chapter to read and
//! the hint command (see [`super::explain`]). On success it names the next
//! lab. The result is remembered (see [`crate::progress`]), which is what
//! makes `status` fast.

use std::process::ExitCode;

use anyhow::Result;

use super::explain::{self, Next};
use crate::progress::Progress;
use crate::workbook::Workbook;

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
    let mut progress = Progress::load(&workbook.root);
    let passed = explain::check(workbook, &lab, &mut progress)?.passed();
    if passed {
        explain::announce_next(workbook, &lab, &progress, Next::Suggest);
    }
    // Everything is printed; let a joined room's send finish (or time out).
    crate::room::flush(crate::room::TIMEOUT);
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
