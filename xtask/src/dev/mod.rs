//! The maintainer's verbs, under `cargo xtask dev`: `verify` proves the
//! course is sound (every starter fails as declared, every solution passes,
//! the book builds), `capture-console` records the book's tokio-console
//! screens, `console-check` proves what each lab's console shows (with a
//! console client: the crate `xtask/console-check`, run from here),
//! `loop-bench` times the learner's edit-and-test loop.

pub mod capture;
pub mod loop_bench;
pub mod verify;

use std::process::ExitCode;

use anyhow::Result;

use crate::workbook::Workbook;

/// Check each lab's `[console.check]` claims with a real console client,
/// starter and solution, while the lab's traffic runs (`--help` lists the
/// options of the check, a crate of its own: xtask/console-check).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct ConsoleCheckArgs {
    /// The check's own arguments: the labs, `--seconds`, `--only`, `--survey`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn console_check(workbook: &Workbook, args: ConsoleCheckArgs) -> Result<ExitCode> {
    crate::process::exit_on_signal();
    crate::cargo::run_binary(workbook, "console-check", args.args)
}
