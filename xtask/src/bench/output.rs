//! Writing a benchmark down: the machine it ran on, the results as data
//! (`results.json`), as Markdown tables (`results.md`, included by the book's
//! appendix) and as a hand-written SVG plot (`plot.svg`): throughput and p99
//! latency against concurrency, both on log scales.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Row;
use super::measure::Placement;
use super::plan::Bench;
use crate::workbook::Workbook;

/// Where the results go, under `book/src`.
pub const DIR: &str = "bench";

/// What the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub os: String,
    pub rustc: String,
    pub go: Option<String>,
    pub wrk: Option<String>,
    pub placement: String,
    pub seconds_per_run: u64,
    pub date: String,
}

impl Machine {
    pub fn describe(placement: &Placement, seconds: u64) -> Machine {
        Machine {
            cpu: cpu_model().unwrap_or_else(|| "unknown CPU".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: os_name(),
            rustc: first_line("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".into()),
            go: first_line("go", &["version"]),
            wrk: first_line("wrk", &["--version"])
                .map(|v| v.split(" [").next().unwrap_or(&v).to_owned()),
            placement: placement.description.clone(),
            seconds_per_run: seconds,
            date: first_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_default(),
        }
    }
}

fn first_line(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    // wrk prints its version to stdout and exits 1.
    let text = if output.stdout.is_empty() { output.stderr } else { output.stdout };
    let line = String::from_utf8_lossy(&text).lines().next()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}

fn cpu_model() -> Option<String> {
    if let Ok(info) = fs::read_to_string("/proc/cpuinfo") {
        return info
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, model)| model.trim().to_owned());
    }
    first_line("sysctl", &["-n", "machdep.cpu.brand_string"])
}

fn os_name() -> String {
    let pretty = fs::read_to_string("/etc/os-release").ok().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|name| name.trim_matches('"').to_owned())
    });
    let kernel = first_line("uname", &["-sr"]);
    match (pretty, kernel) {
        (Some(pretty), Some(kernel)) => format!("{pretty} ({kernel})"),
        (None, Some(kernel)) => kernel,
        (pretty, None) => pretty.unwrap_or_else(|| std::env::consts::OS.to_owned()),
    }
}

/// A ratio of two series' requests/s at each concurrency both ran.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub title: String,
    pub of: String,
    pub to: String,
    /// (concurrency, ratio)
    pub values: Vec<(usize, f64)>,
}

impl Ratio {
    pub fn values_text(&self) -> String {
        self.values.iter().map(|(c, r)| format!("c={c}: {r:.2}×")).collect::<Vec<_>>().join("  ")
    }
}

pub fn ratios(bench: &Bench, rows: &[Row]) -> Vec<Ratio> {
    let rate = |series: &str, c: usize| {
        rows.iter()
            .find(|r| r.series == series && r.concurrency == c)
            .map(|r| r.measured.requests_per_s)
    };
    bench
        .toml
        .ratios
        .iter()
        .filter_map(|ratio| {
            let values: Vec<(usize, f64)> = rows
                .iter()
                .filter(|r| r.series == ratio.of)
                .filter_map(|r| {
                    let to = rate(&ratio.to, r.concurrency)?;
                    (to > 0.0).then(|| (r.concurrency, r.measured.requests_per_s / to))
                })
                .collect();
            (!values.is_empty()).then(|| Ratio {
                title: ratio.title.clone(),
                of: ratio.of.clone(),
                to: ratio.to.clone(),
                values,
            })
        })
        .collect()
}

#[derive(Serialize)]
struct Results<'a> {
    machine: &'a Machine,
    rows: &'a [Row],
    ratios: &'a [Ratio],
    skipped: &'a [String],
}

/// Writes results.json, results.md and plot.svg; returns their paths.
pub fn write(
    workbook: &Workbook,
    bench: &Bench,
    machine: &Machine,
    rows: &[Row],
    ratios: &[Ratio],
    skipped: &[String],
) -> Result<Vec<PathBuf>> {
    let dir = workbook.root.join("book").join("src").join(DIR);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(&Results { machine, rows, ratios, skipped })?;
    let files = [
        (dir.join("results.json"), json + "\n"),
        (dir.join("results.md"), markdown(bench, machine, rows, ratios, skipped)),
        (dir.join("plot.svg"), svg(bench, rows)),
    ];
    for (path, text) in &files {
        fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

fn markdown(
    bench: &Bench,
    machine: &Machine,
    rows: &[Row],
    ratios: &[Ratio],
    skipped: &[String],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "<!-- Written by `cargo xtask bench`; do not edit by hand. -->\n");
    let _ = writeln!(
        md,
        "Measured on {}:\n",
        if machine.date.is_empty() { "this machine" } else { &machine.date }
    );
    let _ = writeln!(md, "- CPU: {} ({} cores)", machine.cpu, machine.cores);
    let _ = writeln!(md, "- OS: {}", machine.os);
    let _ = writeln!(md, "- {}", machine.rustc);
    if let Some(go) = &machine.go {
        let _ = writeln!(md, "- {go}");
    }
    if let Some(wrk) = &machine.wrk {
        let _ = writeln!(md, "- {wrk}");
    }
    let _ = writeln!(md, "- {} s per run; {}\n", machine.seconds_per_run, machine.placement);
    for series in &bench.toml.series {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.series == series.name).collect();
        if mine.is_empty() {
            continue;
        }
        let _ = writeln!(
            md,
            "**{}** (`{}`): {}, loaded by {}\n",
            series.name,
            series.path,
            series.title,
            mine[0].tool.name()
        );
        let _ = writeln!(md, "| concurrency | requests/s | p50 (ms) | p99 (ms) | errors |");
        let _ = writeln!(md, "|---:|---:|---:|---:|---|");
        for row in mine {
            let m = &row.measured;
            let errors = if m.errors == 0 {
                "0".to_owned()
            } else {
                format!("{} ({})", m.errors, m.error_kinds)
            };
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.2} | {:.2} | {errors} |",
                row.concurrency, m.requests_per_s, m.p50_ms, m.p99_ms
            );
        }
        md.push('\n');
    }
    if !ratios.is_empty() {
        let _ = writeln!(md, "| ratio of requests/s | measured |");
        let _ = writeln!(md, "|---|---|");
        for ratio in ratios {
            let _ = writeln!(
                md,
                "| {} (`{}` / `{}`) | {} |",
                ratio.title,
                ratio.of,
                ratio.to,
                ratio.values_text()
            );
        }
        md.push('\n');
    }
    for line in skipped {
        let _ = writeln!(md, "- Skipped: {line}");
    }
    md
}

/// What a panel plots of a row.
type Metric = fn(&Row) -> f64;

/// Colours of the plotted series, in order.
const COLOURS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// Two panels side by side: requests/s and p99 latency against
/// concurrency, both axes logarithmic, one line per plotted series.
fn svg(bench: &Bench, rows: &[Row]) -> String {
    let plotted: Vec<(&str, Vec<&Row>)> = bench
        .toml
        .series
        .iter()
        .filter(|s| s.plot)
        .map(|s| (s.name.as_str(), rows.iter().filter(|r| r.series == s.name).collect::<Vec<_>>()))
        .filter(|(_, rows)| !rows.is_empty())
        .collect();
    let (width, height) = (820.0, 340.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let levels: Vec<usize> = {
        let mut all: Vec<usize> =
            plotted.iter().flat_map(|(_, r)| r.iter().map(|r| r.concurrency)).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let panels: [(&str, Metric, f64); 2] = [
        ("requests/s", |r| r.measured.requests_per_s, 30.0),
        ("p99 latency (ms)", |r| r.measured.p99_ms, 440.0),
    ];
    for (title, value, left) in panels {
        let values: Vec<f64> = plotted
            .iter()
            .flat_map(|(_, r)| r.iter().map(|r| value(r)))
            .filter(|v| *v > 0.0)
            .collect();
        if values.is_empty() || levels.is_empty() {
            continue;
        }
        let (lo, hi) = decades(&values);
        let (x0, y0, w, h) = (left + 45.0, 30.0, 300.0, 250.0);
        let x_of = |c: usize| {
            let (a, b) = ((levels[0] as f64).log10(), (*levels.last().unwrap() as f64).log10());
            if b > a { x0 + ((c as f64).log10() - a) / (b - a) * w } else { x0 + w / 2.0 }
        };
        let y_of =
            |v: f64| y0 + h - (v.max(lo).log10() - lo.log10()) / (hi.log10() - lo.log10()) * h;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">{title}</text>",
            x0 + w / 2.0
        );
        let _ = writeln!(
            svg,
            "<rect x=\"{x0}\" y=\"{y0}\" width=\"{w}\" height=\"{h}\" fill=\"none\" stroke=\"#999\"/>"
        );
        let mut tick = lo;
        while tick <= hi * 1.0001 {
            let y = y_of(tick);
            let _ = writeln!(
                svg,
                "<line x1=\"{x0}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>",
                x0 + w
            );
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 4.0,
                y + 4.0,
                short(tick)
            );
            tick *= 10.0;
        }
        for &c in &levels {
            let x = x_of(c);
            let _ = writeln!(
                svg,
                "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{c}</text>",
                y0 + h + 16.0
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">concurrency</text>",
            x0 + w / 2.0,
            y0 + h + 32.0
        );
        for (i, (_, rows)) in plotted.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<String> = rows
                .iter()
                .filter(|r| value(r) > 0.0)
                .map(|r| format!("{:.1},{:.1}", x_of(r.concurrency), y_of(value(r))))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                points.join(" ")
            );
            for point in &points {
                let (x, y) = point.split_once(',').expect("x,y");
                let _ = writeln!(svg, "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>");
            }
        }
    }
    for (i, (name, _)) in plotted.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let x = 80.0 + i as f64 * 150.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>",
            height - 16.0
        );
        let _ = writeln!(svg, "<text x=\"{}\" y=\"{}\">{name}</text>", x + 20.0, height - 10.0);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The powers of ten just below the smallest and above the largest value.
fn decades(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(0.0, f64::max);
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// 1000 -> "1k", 0.1 -> "0.1".
fn short(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{}M", v / 1e6),
        v if v >= 1e3 => format!("{}k", v / 1e3),
        v => format!("{v}"),
    }
}
