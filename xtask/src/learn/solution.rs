//! `cargo xtask solution <lab> [--apply]`: the diff from the committed
//! starter to the solution (the lesson), after a spoiler warning; or, with
//! `--apply`, a catch-up that saves the learner's files first.

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use similar::TextDiff;

use crate::backup;
use crate::git::{self, ChangeKind, SolutionFile};
use crate::ui::{self, command, paint};
use crate::workbook::{Lab, Workbook};

/// Show how the solution differs from the starter (a spoiler), or copy it
/// into the lab with --apply (to catch up).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`).
    pub lab: String,
    /// Copy the solution's files into the lab, replacing yours.
    #[arg(long)]
    pub apply: bool,
    /// With --apply: do not ask before replacing files you changed.
    #[arg(long, short, requires = "apply")]
    pub yes: bool,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let lab = workbook.lab(&args.lab)?;
    let changed = git::solution_changes(&workbook.root, &lab)?;
    match args.apply {
        true => apply(workbook, &lab, &changed, args.yes),
        false => show(workbook, &lab, &changed),
    }
}

fn show(workbook: &Workbook, lab: &Lab, changed: &[SolutionFile]) -> Result<ExitCode> {
    anstream::eprintln!(
        "{} this is the solution of lab {}. Working it out yourself teaches more; {} gives a nudge instead.\n",
        paint(ui::WARN, "Spoiler ahead:"),
        lab.label(),
        command(format!("cargo xtask hint {}", lab.slug))
    );
    for file in changed {
        let [starter, solution] =
            [&file.lab, &file.solution].map(|p| git::pathspec(&workbook.root, p));
        let unified = TextDiff::from_lines(&file.starter, &file.fixed)
            .unified_diff()
            .context_radius(3)
            .header(&format!("{starter} (starter)"), &format!("{solution} (solution)"))
            .to_string();
        for line in unified.lines() {
            let style = match line.as_bytes().first() {
                _ if line.starts_with("---") || line.starts_with("+++") => ui::STRONG,
                Some(b'@') => ui::COMMAND,
                Some(b'+') => ui::PASS,
                Some(b'-') => ui::FAIL,
                _ => anstyle::Style::new(),
            };
            anstream::println!("{}", paint(style, line));
        }
    }
    anstream::println!(
        "\n{} copies it into {} (to catch up).",
        command(format!("cargo xtask solution {} --apply", lab.slug)),
        workbook.relative(&lab.dir)
    );
    Ok(ExitCode::SUCCESS)
}

fn apply(workbook: &Workbook, lab: &Lab, changed: &[SolutionFile], yes: bool) -> Result<ExitCode> {
    // Files with the learner's own work in them, which would be lost. Without
    // git, any existing file may hold work: ask about them all.
    let ours: Vec<&SolutionFile> = match git::changes(&workbook.root, &lab.dir) {
        Some(changes) => changed
            .iter()
            .filter(|file| {
                let path = git::pathspec(&workbook.root, &file.lab);
                changes.iter().any(|c| c.path == path && c.kind != ChangeKind::Deleted)
            })
            .collect(),
        None => changed.iter().filter(|file| file.lab.exists()).collect(),
    };
    if !ours.is_empty() && !yes {
        anstream::println!("Applying the solution replaces your version of:");
        for file in &ours {
            anstream::println!("  {}", workbook.relative(&file.lab));
        }
        ui::note("(a copy is kept: `cargo xtask restore` brings them back)");
        if !ui::confirm("Replace them with the solution?") {
            anstream::println!("Nothing changed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let replaced: Vec<PathBuf> = ours.iter().map(|file| file.lab.clone()).collect();
    let saved = backup::save(workbook, lab, &replaced)?;
    for file in changed {
        fs::write(&file.lab, &file.fixed)
            .with_context(|| format!("writing {}", file.lab.display()))?;
        anstream::println!("  {} {}", paint(ui::PASS, "copied to"), workbook.relative(&file.lab));
    }
    anstream::println!(
        "\n{} Lab {} now holds the solution. {} shows it passing; {} undoes this.",
        paint(ui::PASS, "✓"),
        lab.label(),
        command(format!("cargo xtask check {}", lab.slug)),
        command(format!("cargo xtask reset {}", lab.slug)),
    );
    backup::tell_saved(workbook, lab, saved.as_deref());
    Ok(ExitCode::SUCCESS)
}
