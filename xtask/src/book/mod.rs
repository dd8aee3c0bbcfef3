//! The book: `cargo xtask book` builds it with mdBook's library (so a
//! learner installs nothing) and serves it locally.
//!
//! - [`build`]: mdBook plus a preprocessor that expands `{{#hints <slug>}}`
//!   into the lab's hints from its `lab.toml`;
//! - [`check`]: what `verify` turns into failures: includes that name a
//!   missing file or anchor, links to a missing chapter, heading or file;
//! - [`serve`]: the book on 127.0.0.1, and the lab files it links to
//!   (`../../labs/NN-slug/src/lib.rs` works from disk, `target/book` being
//!   two levels deep like `book/src`, and served, browsers clamping `..` at
//!   the site root) as plain text under `/labs/` and `/solutions/`;
//! - [`live`]: the labs' states, pushed to each lab's chapter as they change.

mod build;
mod check;
mod live;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

pub use build::{BuiltBook, build, expand_hints};
pub use check::{Directive, directives, is_indented, missing_anchor, normalize};

use crate::workbook::Workbook;

/// Build the book and serve it at http://127.0.0.1:3000.
///
/// The book is built into target/book. Chapters link to the labs' files;
/// the server shows those as plain text under /labs/ and /solutions/.
/// Restart it to see edits to the chapters.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The port to serve on (127.0.0.1 only).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Open the book in your browser once it is served.
    #[arg(long)]
    pub open: bool,
    /// Only build the book, do not serve it.
    #[arg(long)]
    pub build_only: bool,
    /// Build into this directory instead of target/book.
    #[arg(long, value_name = "DIR")]
    pub dest_dir: Option<PathBuf>,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let (labs, broken) = workbook.labs()?;
    for lab in &broken {
        eprintln!("warning: {} is skipped: {:#}", workbook.relative(&lab.dir), lab.error);
    }
    let dest = args.dest_dir.clone().unwrap_or_else(|| workbook.target_dir.join("book"));
    let started = Instant::now();
    let built = build(&workbook.root, &labs, &dest)?;
    for problem in &built.problems {
        eprintln!("warning: {problem}");
    }
    let (took, into) = (started.elapsed().as_secs_f64(), workbook.relative(&dest));
    println!("Built the book in {took:.1} s into {into}");
    if !args.build_only {
        let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
        runtime.block_on(serve::serve(workbook, dest, args.port, args.open))?;
    }
    Ok(ExitCode::SUCCESS)
}
