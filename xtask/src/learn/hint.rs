//! `cargo xtask hint [lab]`: see [`Args`]; the hints are [`super::explain::reveal`]'s.

use std::process::ExitCode;

use anyhow::{Context, Result};

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
        None => progress::first_open(workbook, &progress)?.context(
            "every lab passes: name the lab whose hints you want, `cargo xtask hint <lab>`",
        )?,
    };
    explain::reveal(workbook, &lab, &mut progress, args.all, args.again)?;
    Ok(ExitCode::SUCCESS)
}
