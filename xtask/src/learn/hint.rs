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

use super::explain;
use crate::progress::{self, Progress};
use crate::workbook::Workbook;

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
    let mut progress = Progress::load(&workbook.root);
    let lab = match &args.lab {
        Some(name) => workbook.lab(name)?,
        None => match progress::first_open(workbook, &progress)? {
            Some(lab) => lab,
            None => bail!(
                "every lab passes: name the lab whose hints you want, `cargo xtask hint <lab>`"
            ),
        },
    };
    explain::reveal(workbook, &lab, &mut progress, args.all, args.again)?;
    Ok(ExitCode::SUCCESS)
}
