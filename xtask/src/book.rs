//! `cargo xtask book`: build the workbook with mdBook and serve it locally.

use std::process::ExitCode;

use anyhow::Result;

use crate::Workspace;

/// Build the book and serve it at http://127.0.0.1:3000.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port to serve on (127.0.0.1 only).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Open the book in your browser once it is served.
    #[arg(long)]
    pub open: bool,
    /// Only build the book (into target/book), do not serve it.
    #[arg(long)]
    pub build_only: bool,
}

pub fn run(_workspace: &Workspace, _args: Args) -> Result<ExitCode> {
    anyhow::bail!("`cargo xtask book` is being written")
}
