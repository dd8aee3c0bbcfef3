//! Writing the bench down for the book: `results.json` (every run),
//! `results.md` (the tables the appendix includes) and `plot.svg`
//! (requests/s and p99 against concurrency, log scales, drawn by plotters).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use plotters::prelude::*;

use crate::{RATIOS, Row, Series};

/// What the numbers were measured on, one line each.
pub fn machine(placement: &str, seconds: u64, repeat: usize) -> Vec<String> {
    let first_line = |program: &str, args: &[&str]| {
        let output = Command::new(program).args(args).output().ok()?;
        // wrk prints its version to stdout and exits 1.
        let text = if output.stdout.is_empty() {
            output.stderr
        } else {
            output.stdout
        };
        let line = String::from_utf8_lossy(&text)
            .lines()
            .next()?
            .trim()
            .to_owned();
        (!line.is_empty()).then_some(line)
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut lines = vec![
        format!("CPU: {} ({cores} cores)", cpu.unwrap_or("unknown").trim()),
        format!(
            "load average before the run: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ];
    lines.extend(first_line("rustc", &["--version"]));
    lines.extend(first_line("go", &["version"]));
    lines.extend(
        first_line("wrk", &["--version"]).map(|v| v.split(" [").next().unwrap_or(&v).to_owned()),
    );
    lines.extend(first_line("oha", &["--version"]));
    lines.push(format!(
        "{seconds} s per run, tail variants {repeat} × each (median shown); {placement}"
    ));
    lines
}

/// Each ratio of requests/s, at every concurrency both series ran:
/// (title, "c=10: 0.62×  c=100: …").
pub fn ratios(rows: &[Row]) -> Vec<(String, String)> {
    let rate = |series: &str, c: usize| {
        median(
            rows.iter()
                .filter(|r| r.series == series && r.concurrency == c)
                .map(|r| r.measured.requests_per_s),
        )
    };
    let mut out = Vec::new();
    for (title, of, to) in RATIOS {
        let mut levels: Vec<usize> = rows
            .iter()
            .filter(|r| r.series == *of)
            .map(|r| r.concurrency)
            .collect();
        levels.dedup();
        let values: Vec<String> = levels
            .into_iter()
            .filter_map(|c| Some(format!("c={c}: {:.2}×", rate(of, c)? / rate(to, c)?)))
            .collect();
        if !values.is_empty() {
            out.push((format!("{title} (`{of}` / `{to}`)"), values.join("  ")));
        }
    }
    out
}

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Writes the three files into `dir`; returns their paths.
pub fn all(
    dir: &Path,
    machine: &[String],
    plan: &[Series],
    rows: &[Row],
    ratios: &[(String, String)],
    skipped: &[String],
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let json = serde_json::json!({ "machine": machine, "rows": rows, "ratios": ratios, "skipped": skipped });
    let files = [
        (
            "results.json",
            serde_json::to_string_pretty(&json).expect("JSON") + "\n",
        ),
        ("results.md", markdown(machine, plan, rows, ratios, skipped)),
        ("plot.svg", plot(plan, rows)?),
    ];
    files
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .collect()
}

fn markdown(
    machine: &[String],
    plan: &[Series],
    rows: &[Row],
    ratios: &[(String, String)],
    skipped: &[String],
) -> String {
    let mut md = String::from("<!-- Written by `cargo xtask bench`; do not edit by hand. -->\n\n");
    machine.iter().for_each(|line| _ = writeln!(md, "- {line}"));
    let errors = |m: &crate::Measured| {
        if m.errors == 0 {
            "0".into()
        } else {
            format!("{} ({})", m.errors, m.error_kinds)
        }
    };
    for series in plan.iter().filter(|s| !s.tail) {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.series == series.name).collect();
        let Some(first) = mine.first() else { continue };
        let _ = writeln!(
            md,
            "\n**{}** (`{}`): {}, loaded by {}\n",
            series.name, series.path, series.title, first.tool
        );
        md.push_str("| concurrency | requests/s | p50 (ms) | p99 (ms) | errors |\n|---:|---:|---:|---:|---|\n");
        for r in mine {
            let m = &r.measured;
            let _ = writeln!(
                md,
                "| {} | {:.0} | {:.2} | {:.2} | {} |",
                r.concurrency,
                m.requests_per_s,
                m.p50_ms,
                m.p99_ms,
                errors(m)
            );
        }
    }
    // The tail: every variant at c = 1000, medians of its runs, against Go's.
    let mut tail: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    rows.iter()
        .filter(|r| r.series.starts_with("tail-"))
        .for_each(|r| tail.entry(&r.series).or_default().push(r));
    if !tail.is_empty() {
        let of = |rows: &[&Row], f: fn(&crate::Measured) -> f64| {
            median(rows.iter().map(|r| f(&r.measured))).unwrap_or(0.0)
        };
        let go = tail
            .get("tail-go")
            .map(|rows| (of(rows, |m| m.requests_per_s), of(rows, |m| m.p99_ms)));
        let _ = writeln!(
            md,
            "\n**The tail at c = 1000** (`/api`, loaded by {}; medians of each variant's runs)\n",
            tail.values().next().unwrap()[0].tool
        );
        md.push_str("| variant | what | requests/s | p50 (ms) | p99 (ms) | p99 of each run | requests/s ÷ Go | p99 ÷ Go | errors | listen overflows | run-queue overflows |\n");
        md.push_str("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n");
        for series in plan.iter().filter(|s| s.tail) {
            let Some(mine) = tail.get(series.name.as_str()) else {
                continue;
            };
            let (rate, p99) = (of(mine, |m| m.requests_per_s), of(mine, |m| m.p99_ms));
            let each: Vec<String> = mine
                .iter()
                .map(|r| format!("{:.1}", r.measured.p99_ms))
                .collect();
            let vs = |x: f64, go: f64| {
                if go > 0.0 {
                    format!("{:.2}", x / go)
                } else {
                    "–".into()
                }
            };
            let _ = writeln!(
                md,
                "| {} | {} | {rate:.0} | {:.2} | {p99:.2} | {} | {} | {} | {} | {} | {} |",
                series.name,
                series.title,
                of(mine, |m| m.p50_ms),
                each.join(", "),
                go.map_or("–".into(), |(r, _)| vs(rate, r)),
                go.map_or("–".into(), |(_, p)| vs(p99, p)),
                mine.iter().map(|r| r.measured.errors).sum::<u64>(),
                mine.iter()
                    .filter_map(|r| r.measured.listen_overflows)
                    .sum::<u64>(),
                median(
                    mine.iter()
                        .filter_map(|r| r.measured.queue_overflows.map(|n| n as f64))
                )
                .map_or("–".into(), |n| format!("{n:.0}")),
            );
        }
    }
    if !ratios.is_empty() {
        md.push_str("\n| ratio of requests/s | measured |\n|---|---|\n");
        ratios
            .iter()
            .for_each(|(title, values)| _ = writeln!(md, "| {title} | {values} |"));
    }
    if !skipped.is_empty() {
        md.push('\n');
        skipped
            .iter()
            .for_each(|line| _ = writeln!(md, "- Skipped: {line}"));
    }
    md
}

/// What a panel plots of a row.
type Metric = fn(&Row) -> f64;

/// Two panels, requests/s and p99 against concurrency, one line per plotted series.
fn plot(plan: &[Series], rows: &[Row]) -> Result<String, String> {
    let plotted: Vec<(&str, Vec<&Row>)> = plan
        .iter()
        .filter(|s| s.plot)
        .map(|s| {
            (
                s.name.as_str(),
                rows.iter()
                    .filter(|r| r.series == s.name)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, rows)| !rows.is_empty())
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 380)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(450);
        let panels: [(_, _, Metric); 2] = [
            (left, "requests/s", |r| r.measured.requests_per_s),
            (right, "p99 latency (ms)", |r| r.measured.p99_ms),
        ];
        for (area, title, value) in panels {
            let values = plotted
                .iter()
                .flat_map(|(_, r)| r.iter().map(|r| value(r)))
                .filter(|v| *v > 0.0);
            let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            if hi == 0.0 {
                continue;
            }
            let mut chart = ChartBuilder::on(&area)
                .caption(title, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(56)
                .build_cartesian_2d(
                    (0.8f64..1300.0).log_scale(),
                    (lo / 2.0..hi * 2.0).log_scale(),
                )
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("concurrency")
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, (name, rows)) in plotted.iter().enumerate() {
                let colour = Palette99::pick(i).to_rgba();
                let points: Vec<(f64, f64)> = rows
                    .iter()
                    .map(|r| (r.concurrency as f64, value(r)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                    .map_err(|e| e.to_string())?
                    .label(*name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                    });
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 3, colour.filled())),
                    )
                    .map_err(|e| e.to_string())?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg + "\n")
}
