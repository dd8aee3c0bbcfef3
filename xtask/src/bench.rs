//! `cargo xtask bench`: runs the benchmark that a lab ships as plain Rust
//! (the example `bench` of its solution, behind the solution's `bench`
//! feature), in release mode, and lets it write the book's "Benchmark
//! results" (book/src/bench/). What it measures is the lab's code; the tool
//! only finds the lab, builds, runs and passes the flags on.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::process::{self, Supervised};
use crate::workbook::Workbook;
use crate::{cargo, ui};

/// Where a lab's solution keeps its benchmark (one file, or a folder).
const EXAMPLES: [&str; 2] = ["examples/bench.rs", "examples/bench/main.rs"];

/// Measure the course's servers at 1, 10, 100 and 1000 concurrent clients.
///
/// Runs the benchmark of the lab whose solution has an example named `bench`
/// (lab 11's load generator): the course's servers, axum against Go, the
/// lab's generator against wrk and oha, and axum's tail at c = 1000 under
/// several runtime settings. Builds in release mode; writes the results and
/// a plot into the book (book/src/bench/). wrk, oha and Go are used where
/// installed. About seven minutes; --quick about one.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One second per run and no repeats (numbers are rougher).
    #[arg(long)]
    pub quick: bool,
    /// Seconds per run (overrides --quick).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<u64>,
    /// How many rounds of the tail variants at c = 1000 (default 3; --quick 1).
    #[arg(long, value_name = "N")]
    pub repeat: Option<usize>,
    /// Only the series whose name starts with this (repeat the flag for several).
    #[arg(long, value_name = "SERIES")]
    pub only: Vec<String>,
    /// Print what would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not pin servers and load to separate cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Print the table only; leave the book's files as they are.
    #[arg(long)]
    pub no_write: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let (labs, _) = workbook.labs()?;
    let Some(lab) =
        labs.iter().find(|lab| EXAMPLES.iter().any(|e| lab.solution_dir().join(e).is_file()))
    else {
        bail!(
            "no lab's solution has a benchmark: `cargo xtask bench` runs solutions/NN-slug/{}",
            EXAMPLES[0]
        );
    };
    let mut cargo = cargo::command(workbook);
    let package = lab.solution_package();
    cargo.args(["run", "--release", "--package", &package, "--features", "bench"]);
    cargo.args(["--example", "bench", "--"]);
    if args.quick {
        cargo.arg("--quick");
    }
    if let Some(seconds) = args.seconds {
        cargo.args(["--seconds", &seconds.to_string()]);
    }
    if let Some(rounds) = args.repeat {
        cargo.args(["--repeat", &rounds.to_string()]);
    }
    for series in &args.only {
        cargo.args(["--only", series]);
    }
    cargo.args(["--dry-run"].iter().filter(|_| args.dry_run));
    cargo.args(["--no-pin"].iter().filter(|_| args.no_pin));
    let out = workbook.root.join("book").join("src").join("bench");
    if !args.no_write && !args.dry_run {
        cargo.arg("--out").arg(&out);
    }
    anstream::println!(
        "{} {}'s benchmark (release)",
        ui::paint(ui::STRONG, "Running"),
        lab.label()
    );
    let status = Supervised::spawn(&mut cargo)?.wait()?;
    if !status.success() {
        bail!("the benchmark of {} failed ({status})", lab.label());
    }
    if !args.no_write && !args.dry_run {
        anstream::println!(
            "\nSee them in the book: {} then the appendix \"Benchmark results\".",
            ui::command("cargo xtask book")
        );
    }
    Ok(ExitCode::SUCCESS)
}
