//! `cargo xtask dev loop-bench`: the learner's loop, timed. For each lab, a
//! real edit (a comment appended to `src/lib.rs`), then the build (`cargo
//! test --no-run`) and the tests timed apart; the medians, with the build's
//! CPU time and the load average on Linux (wall time follows the load, CPU
//! time much less). The file is put back (after a Ctrl-C, by the next run).

use std::fs;
use std::path::PathBuf;
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
    let labs = workbook.labs_named(&args.labs, |_| true)?;
    let load = load_average().map(|load| format!("; load average {load}")).unwrap_or_default();
    println!("median of {} runs after a real edit of src/lib.rs, warm{load}\n", args.runs);
    println!("{:20} {:>8} {:>9} {:>8} {:>8}", "lab", "build", "build cpu", "tests", "total");
    for lab in &labs {
        let Medians { build, build_cpu, tests } = measure(workbook, lab, args.runs)?;
        let cpu = build_cpu.map_or("-".to_owned(), |seconds| format!("{seconds:.2}s"));
        let (slug, total) = (&lab.slug, build + tests);
        println!("{slug:20} {build:>7.2}s {cpu:>9} {tests:>7.2}s {total:>7.2}s");
    }
    if let Some(load) = load_average() {
        println!("\nload average at the end: {load}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The medians of one lab's runs, in seconds (the build's CPU time where
/// the system tells it).
struct Medians {
    build: f64,
    build_cpu: Option<f64>,
    tests: f64,
}

fn measure(workbook: &Workbook, lab: &Lab, runs: usize) -> Result<Medians> {
    let lib = lab.dir.join("src").join("lib.rs");
    let text = fs::read_to_string(&lib).with_context(|| format!("reading {}", lib.display()))?;
    // A run stopped by Ctrl-C leaves its edit behind; the next one takes it out.
    let original = text.split("\n// loop-bench edit ").next().unwrap_or_default().to_owned();
    let _restore = Restore { path: lib.clone(), text: original.clone() };
    // One untimed round first, so that only the lab itself is rebuilt.
    time(workbook, &lab.slug, true)?;
    let (mut builds, mut cpus, mut tests) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        fs::write(&lib, format!("{original}\n// loop-bench edit {run}\n"))?;
        let cpu_before = children_cpu();
        builds.push(time(workbook, &lab.slug, true)?);
        cpus.extend(cpu_before.zip(children_cpu()).map(|(before, after)| after - before));
        tests.push(time(workbook, &lab.slug, false)?);
    }
    let build_cpu = (cpus.len() == runs).then(|| median(cpus));
    Ok(Medians { build: median(builds), build_cpu, tests: median(tests) })
}

/// The CPU time (user + system, s) of this process's finished children
/// and theirs: fields 16 and 17 of `/proc/self/stat`, in 1/100 s. Linux only.
fn children_cpu() -> Option<f64> {
    let stat = fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: count from after it.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
    Some((ticks(16)? + ticks(17)?) as f64 / 100.0)
}

/// The 1, 5 and 15-minute load averages (Linux only).
fn load_average() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    Some(text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Seconds `cargo test -p <package>` takes (`--no-run` with `build_only`);
/// a starter's tests fail, only the time counts.
fn time(workbook: &Workbook, package: &str, build_only: bool) -> Result<f64> {
    let mut command = cargo::command(workbook);
    command.args(["test", "--quiet", "--package", package]).args(build_only.then_some("--no-run"));
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
    path: PathBuf,
    text: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        if fs::write(&self.path, &self.text).is_err() {
            eprintln!("warning: could not put back {}", self.path.display());
        }
    }
}
