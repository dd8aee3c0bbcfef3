//! `cargo xtask verify`: prove the course is sound (maintainers and CI).

use std::process::ExitCode;

use anyhow::Result;

use crate::Workspace;

/// Check every lab: each starter fails exactly its declared tests, each
/// solution passes, and the book builds with working includes and links.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verify only this lab (slug or number, e.g. `overload` or `3`).
    #[arg(long, value_name = "LAB")]
    pub lab: Option<String>,
}

pub fn run(_workspace: &Workspace, _args: Args) -> Result<ExitCode> {
    anyhow::bail!("`cargo xtask verify` is being written")
}
