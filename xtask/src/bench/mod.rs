//! `cargo xtask bench`: the tutorial's exercise 5, measured. Loads servers
//! of the course at 1, 10, 100 and 1000 concurrent clients with lab 11's
//! load generator (its solution, built in release mode), and writes the
//! figures and a plot into the book's "Benchmark results" appendix.
//!
//! What runs is declared by the lab that owns the benchmark, in its
//! `bench.toml` ([`plan`]); this module runs it ([`measure`]) and writes it
//! down ([`output`]). Every run stops by itself after a fixed time; servers
//! listen on 127.0.0.1 only and are stopped after their series, so nothing
//! is left running.

pub mod measure;
pub mod output;
pub mod plan;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::process;
use crate::ui::{self, paint};
use crate::workbook::Workbook;
use measure::{Measured, Placement, RunningServer};
use plan::{Bench, Tool};

/// Measure servers of the course at 1, 10, 100 and 1000 concurrent clients.
///
/// Builds lab 11's load generator (its solution) and the servers in release
/// mode, loads each server for a fixed time per concurrency level, prints a
/// table, and writes the results and a plot into the book
/// (book/src/bench/, shown by the "Benchmark results" appendix). wrk, oha and
/// Go are used where installed. What runs is declared in the load-generator
/// lab's bench.toml. Takes about two and a half minutes; --quick under a minute.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One second per run instead of five (numbers are rougher).
    #[arg(long)]
    pub quick: bool,
    /// Seconds per run (overrides --quick).
    #[arg(long, value_name = "SECONDS")]
    pub seconds: Option<u64>,
    /// Only these series (by name; repeat the flag for several).
    #[arg(long, value_name = "SERIES")]
    pub only: Vec<String>,
    /// Print what would run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not pin server and load to separate cores.
    #[arg(long)]
    pub no_pin: bool,
    /// Print the table only; leave the book's files as they are.
    #[arg(long)]
    pub no_write: bool,
}

/// One finished measurement, as the output writes it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Row {
    pub series: String,
    pub tool: Tool,
    pub concurrency: usize,
    #[serde(flatten)]
    pub measured: Measured,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    process::exit_on_signal();
    let bench = Bench::find(workbook)?;
    let seconds = args.seconds.unwrap_or(if args.quick {
        bench.toml.quick_seconds
    } else {
        bench.toml.seconds
    });
    for name in &args.only {
        if !bench.toml.series.iter().any(|s| &s.name == name) {
            anyhow::bail!("no series named {name:?} in {}", workbook.relative(&bench.path));
        }
    }
    let runs = bench.runs(&args.only);
    let placement = Placement::choose(!args.no_pin);
    if args.dry_run {
        print_plan(workbook, &bench, &runs, seconds, &placement);
        return Ok(ExitCode::SUCCESS);
    }

    // Only the servers some run needs, each built once.
    let mut servers: Vec<&str> = runs.iter().map(|r| r.series.server.as_str()).collect();
    servers.dedup();
    servers.sort();
    servers.dedup();
    anstream::println!(
        "{} the load generator and the servers (release)",
        paint(ui::STRONG, "Building")
    );
    let built = measure::build(workbook, &bench, &servers)?;

    let total = runs.len();
    anstream::println!(
        "\n{} {total} runs of {seconds} s each; {}.\n",
        paint(ui::STRONG, "Measuring:"),
        placement.description
    );
    print_header();
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut index = 0;
    for series in bench.toml.series.iter() {
        let levels: Vec<usize> =
            runs.iter().filter(|r| r.series.name == series.name).map(|r| r.concurrency).collect();
        if levels.is_empty() {
            continue;
        }
        index += levels.len();
        if let Some(program) = series.tool.program().filter(|p| !process::on_path(p)) {
            let line = format!(
                "{program} is not installed: skipping {:?} (install: {})",
                series.name,
                series.tool.how_to_install()
            );
            anstream::println!("{} {line}", paint(ui::WARN, "skip"));
            skipped.push(line);
            continue;
        }
        if !built.has_server(&series.server) {
            skipped.push(format!(
                "{:?}: its server {:?} could not be built here",
                series.name, series.server
            ));
            continue;
        }
        let server_spec = &bench.toml.servers[&series.server];
        for (i, &concurrency) in levels.iter().enumerate() {
            // A fresh server for every run: no run inherits the last one's
            // connections, counters or warmed-up state.
            let server = RunningServer::start(&built, &placement, &series.server, server_spec)?;
            let url = format!("http://{}{}", server.addr, series.path);
            let label = format!("{} c={concurrency}", series.name);
            let position = index - levels.len() + i + 1;
            let progress = Progress::start(position, total, &label, seconds);
            let measured = measure::load(
                &built,
                &placement,
                series.tool,
                &url,
                concurrency,
                seconds,
                &series.args,
            );
            progress.stop();
            drop(server);
            let measured = measured?;
            print_row(&series.name, series.tool, concurrency, &measured);
            rows.push(Row {
                series: series.name.clone(),
                tool: series.tool,
                concurrency,
                measured,
            });
        }
    }
    let ratios = output::ratios(&bench, &rows);
    if !ratios.is_empty() {
        anstream::println!("\n{}", paint(ui::STRONG, "Ratios of requests/s:"));
        for ratio in &ratios {
            anstream::println!("  {:<52} {}", ratio.title, ratio.values_text());
        }
    }
    if args.no_write {
        return Ok(ExitCode::SUCCESS);
    }
    let machine = output::Machine::describe(&placement, seconds);
    let written = output::write(workbook, &bench, &machine, &rows, &ratios, &skipped)?;
    anstream::println!("\n{}", paint(ui::STRONG, "Written:"));
    for path in written {
        anstream::println!("  {}", workbook.relative(&path));
    }
    anstream::println!(
        "\nSee them in the book: {} then the appendix \"Benchmark results\".",
        ui::command("cargo xtask book")
    );
    Ok(ExitCode::SUCCESS)
}

fn print_plan(
    workbook: &Workbook,
    bench: &Bench,
    runs: &[plan::Run<'_>],
    seconds: u64,
    placement: &Placement,
) {
    anstream::println!(
        "{} {} runs of {seconds} s each, from {}; {}.",
        paint(ui::STRONG, "Plan:"),
        runs.len(),
        workbook.relative(&bench.path),
        placement.description
    );
    for run in runs {
        let series = run.series;
        let tool = match series.tool.program() {
            Some(program) if !process::on_path(program) => {
                format!("{program} (not installed: skipped)")
            }
            _ => series.tool.name().to_owned(),
        };
        anstream::println!(
            "  {:<20} c={:<5} {} {} with {tool}",
            series.name,
            run.concurrency,
            series.server,
            series.path
        );
    }
    anstream::println!("(dry run: nothing was built or started)");
}

fn print_header() {
    anstream::println!(
        "{}",
        paint(
            ui::STRONG,
            format!(
                "  {:<20} {:<15} {:>6} {:>12} {:>10} {:>10}  {}",
                "series", "tool", "c", "requests/s", "p50 ms", "p99 ms", "errors"
            )
        )
    );
}

fn print_row(series: &str, tool: Tool, concurrency: usize, m: &Measured) {
    let errors =
        if m.errors == 0 { "0".to_owned() } else { format!("{} ({})", m.errors, m.error_kinds) };
    anstream::println!(
        "  {:<20} {:<15} {:>6} {:>12.0} {:>10.2} {:>10.2}  {errors}",
        series,
        tool.name(),
        concurrency,
        m.requests_per_s,
        m.p50_ms,
        m.p99_ms
    );
}

/// A progress bar on stderr while one run loads its server (only on a
/// terminal: a log gets the table lines alone).
struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Progress {
    fn start(position: usize, total: usize, label: &str, seconds: u64) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { done, thread: None };
        }
        let (flag, label) = (done.clone(), label.to_owned());
        let thread = thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) {
                // In thousandths of the whole plan, this run's share filled in as it goes.
                let run = (started.elapsed().as_secs_f64() / seconds.max(1) as f64).min(1.0);
                let done = (((position - 1) as f64 + run) * 1000.0) as usize;
                let bar = ui::progress_bar(done, total * 1000, 30);
                anstream::eprint!("\r  {bar} {position}/{total} {label:<24}");
                thread::sleep(Duration::from_millis(200));
            }
            eprint!("\r{:80}\r", "");
        });
        Progress { done, thread: Some(thread) }
    }

    fn stop(mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
