//! `cargo xtask bench`: runs, in release mode, the benchmark a lab's
//! solution ships (its example `bench`, feature `bench`), which writes the
//! book's "Benchmark results". The tool only finds, builds and runs it.

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::process::Supervised;
use crate::workbook::{Lab, Workbook};
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
    let (labs, _) = workbook.labs()?;
    let has_bench = |lab: &&Lab| EXAMPLES.iter().any(|e| lab.solution_dir().join(e).is_file());
    let Some(lab) = labs.iter().find(has_bench) else {
        bail!(
            "no lab's solution has a benchmark: `cargo xtask bench` runs solutions/NN-slug/{}",
            EXAMPLES[0]
        );
    };
    let mut cargo = cargo::command(workbook);
    let package = lab.solution_package();
    cargo.args(["run", "--release", "--package", &package, "--features", "bench"]);
    cargo.args(["--example", "bench", "--"]).args(args.quick.then_some("--quick"));
    cargo.args(args.seconds.iter().flat_map(|seconds| ["--seconds".into(), seconds.to_string()]));
    cargo.args(args.repeat.iter().flat_map(|rounds| ["--repeat".into(), rounds.to_string()]));
    cargo.args(args.only.iter().flat_map(|series| ["--only", series]));
    cargo.args(args.dry_run.then_some("--dry-run")).args(args.no_pin.then_some("--no-pin"));
    let writes = !args.no_write && !args.dry_run;
    if writes {
        cargo.arg("--out").arg(workbook.root.join("book").join("src").join("bench"));
    }
    let (running, label) = (ui::paint(ui::STRONG, "Running"), lab.label());
    anstream::println!("{running} {label}'s benchmark (release)");
    let status = Supervised::spawn(&mut cargo)?.wait()?;
    if !status.success() {
        bail!("the benchmark of {label} failed ({status})");
    }
    if writes {
        anstream::println!(
            "\nSee them in the book: {} then the appendix \"Benchmark results\".",
            ui::command("cargo xtask book")
        );
    }
    Ok(ExitCode::SUCCESS)
}
