//! `cargo xtask dev loop-bench`: how long the learner's loop takes, measured.
//!
//! The loop is: save a lab's `src/lib.rs`, run `cargo test -p <lab>`, read
//! the result. For each lab this makes a real edit (a comment appended, so
//! the crate recompiles), then times the build (`cargo test --no-run`) and
//! the tests (`cargo test`, which then has nothing to build) separately, a
//! few times, and prints the median of each. On Linux it also prints the CPU
//! time the build took (cargo's and rustc's, user + system) and the load
//! average: on a busy machine the wall time follows the load, the CPU time
//! much less. The lab's file is put back afterwards (after a Ctrl-C, by the
//! next run). Run it on a quiet machine: it is a benchmark, not a test.

use std::fs;
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cargo;
use crate::workbook::{Lab, Workbook};

/// Time the learner's loop (edit -> build -> test result) for each lab.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The labs to measure (slug or number); default: all.
    pub labs: Vec<String>,
    /// Runs per lab; the median is shown.
    #[arg(long, default_value_t = 7)]
    pub runs: usize,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    crate::process::exit_on_signal();
    let labs = workbook.labs_named(&args.labs, |_| true)?;
    println!("median of {} runs after a real edit of src/lib.rs, warm{}\n", args.runs, load());
    println!("{:20} {:>8} {:>9} {:>8} {:>8}", "lab", "build", "build cpu", "tests", "total");
    for lab in &labs {
        let medians = measure(workbook, lab, args.runs)?;
        let cpu = match medians.build_cpu {
            Some(seconds) => format!("{seconds:.2}s"),
            None => "-".to_owned(),
        };
        println!(
            "{:20} {:>7.2}s {cpu:>9} {:>7.2}s {:>7.2}s",
            lab.slug,
            medians.build,
            medians.tests,
            medians.build + medians.tests
        );
    }
    if let Some(load) = load_average() {
        println!("\nload average at the end: {load}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The medians of one lab's runs, in seconds.
struct Medians {
    build: f64,
    /// The build's CPU time (cargo's and rustc's), where the system tells it.
    build_cpu: Option<f64>,
    tests: f64,
}

/// The medians of the build and the test run, in seconds.
fn measure(workbook: &Workbook, lab: &Lab, runs: usize) -> Result<Medians> {
    let lib = lab.dir.join("src").join("lib.rs");
    let text = fs::read_to_string(&lib).with_context(|| format!("reading {}", lib.display()))?;
    // A run stopped by Ctrl-C leaves its edit behind; the next one takes it out.
    let original = match text.find("\n// loop-bench edit ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    };
    let _restore = Restore { path: lib.clone(), text: original.clone() };
    // One untimed round first, so that only the lab itself is rebuilt.
    time(workbook, &lab.slug, true)?;
    let (mut builds, mut cpus, mut tests) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        fs::write(&lib, format!("{original}\n// loop-bench edit {run}\n"))?;
        let cpu_before = children_cpu();
        builds.push(time(workbook, &lab.slug, true)?);
        if let (Some(before), Some(after)) = (cpu_before, children_cpu()) {
            cpus.push(after - before);
        }
        tests.push(time(workbook, &lab.slug, false)?);
    }
    let build_cpu = (cpus.len() == runs).then(|| median(cpus));
    Ok(Medians { build: median(builds), build_cpu, tests: median(tests) })
}

/// The CPU time, user + system, of this process's finished children (cargo,
/// and the rustc and linker processes cargo waited for), in seconds: fields
/// 16 and 17 of `/proc/self/stat`, in clock ticks of 1/100 s. Linux only.
fn children_cpu() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: count from after it.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some((ticks(16)? + ticks(17)?) as f64 / 100.0)
}

/// The 1, 5 and 15-minute load averages, from `/proc/loadavg` (Linux only).
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// `; load average 1.02 0.80 0.75` where the system tells it.
fn load() -> String {
    load_average().map(|load| format!("; load average {load}")).unwrap_or_default()
}

/// Seconds `cargo test -p <package>` takes (`--no-run` with `build_only`).
/// The tests may fail (a starter): only the time counts.
fn time(workbook: &Workbook, package: &str, build_only: bool) -> Result<f64> {
    let mut command = cargo::command(workbook);
    command.args(["test", "--quiet", "--package", package]);
    if build_only {
        command.arg("--no-run");
    }
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let started = Instant::now();
    let status = command.status().context("running cargo")?;
    let seconds = started.elapsed().as_secs_f64();
    if build_only && !status.success() {
        bail!("`cargo test -p {package} --no-run` failed: does the lab compile?");
    }
    Ok(seconds)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Puts a file's text back when dropped.
struct Restore {
    path: std::path::PathBuf,
    text: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if fs::write(&self.path, &self.text).is_err() {
            eprintln!("warning: could not put back {}", self.path.display());
        }
    }
}
