//! `cargo xtask solution <lab> [--apply]`: the fix, as a diff; or a catch-up.
//!
//! `solutions/NN-slug/` holds only the files the fix changes, at the lab's
//! paths, so the diff from the committed starter to those files *is* the
//! lesson. It is printed with a spoiler warning first (and in colour on a
//! terminal). `--apply` copies the solution files into the lab: the way for
//! a learner who fell behind in a workshop to catch up with the group.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use similar::TextDiff;

use super::fingerprint::files_under;
use super::git::{self, ChangeKind};
use super::ui::{self, command, paint};
use crate::Workspace;
use crate::labs::Lab;

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

/// One file of a solution: where it lives and the lab file it replaces.
struct SolutionFile {
    /// `solutions/NN-slug/<path>`.
    solution: PathBuf,
    /// `labs/NN-slug/<path>`.
    lab: PathBuf,
}

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    let lab = super::find_lab(workspace, &args.lab)?;
    let files = solution_files(workspace, &lab)?;
    if args.apply {
        apply(workspace, &lab, &files, args.yes)
    } else {
        show(workspace, &lab, &files)
    }
}

fn solution_files(workspace: &Workspace, lab: &Lab) -> Result<Vec<SolutionFile>> {
    let dir = lab.solution_dir();
    let files: Vec<SolutionFile> = files_under(&dir)
        .into_iter()
        .map(|solution| {
            let relative = solution.strip_prefix(&dir).expect("listed under dir");
            SolutionFile {
                lab: lab.dir.join(relative),
                solution,
            }
        })
        .collect();
    if files.is_empty() {
        bail!(
            "lab {} has no solution: {} is missing or empty",
            lab.label(),
            workspace.relative(&dir)
        );
    }
    Ok(files)
}

fn show(workspace: &Workspace, lab: &Lab, files: &[SolutionFile]) -> Result<ExitCode> {
    anstream::eprintln!(
        "{} this is the solution of lab {}. Working it out yourself teaches more; \
         {} gives a nudge instead.\n",
        paint(ui::WARN, "Spoiler ahead:"),
        lab.label(),
        command(format!("cargo xtask hint {}", lab.slug))
    );
    let mut compared_with_yours = false;
    for file in files {
        let lab_path = git::pathspec(&workspace.root, &file.lab);
        let starter = match git::committed(&workspace.root, &lab_path) {
            Some(text) => text,
            None => {
                compared_with_yours = true;
                fs::read_to_string(&file.lab).unwrap_or_default()
            }
        };
        let solution = fs::read_to_string(&file.solution)
            .with_context(|| format!("reading {}", file.solution.display()))?;
        let diff = TextDiff::from_lines(&starter, &solution);
        let unified = diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("{lab_path} (starter)"),
                &format!("{} (solution)", workspace.relative(&file.solution)),
            )
            .to_string();
        for line in unified.lines() {
            let style = if line.starts_with("---") || line.starts_with("+++") {
                ui::STRONG
            } else if line.starts_with("@@") {
                ui::COMMAND
            } else if line.starts_with('+') {
                ui::PASS
            } else if line.starts_with('-') {
                ui::FAIL
            } else {
                anstyle::Style::new()
            };
            anstream::println!("{}", paint(style, line));
        }
    }
    if compared_with_yours {
        anstream::println!(
            "\n{}",
            paint(
                ui::DIM,
                "(git could not show the committed starter, so the diff starts from your files)"
            )
        );
    }
    anstream::println!(
        "\n{} copies it into {} (to catch up).",
        command(format!("cargo xtask solution {} --apply", lab.slug)),
        workspace.relative(&lab.dir)
    );
    Ok(ExitCode::SUCCESS)
}

fn apply(workspace: &Workspace, lab: &Lab, files: &[SolutionFile], yes: bool) -> Result<ExitCode> {
    // Files with the learner's own work in them, which would be lost.
    let changed: Vec<&SolutionFile> = match git::changes(&workspace.root, &lab.dir) {
        Some(changes) => files
            .iter()
            .filter(|file| {
                let path = git::pathspec(&workspace.root, &file.lab);
                changes
                    .iter()
                    .any(|c| c.path == path && c.kind != ChangeKind::Deleted)
            })
            .collect(),
        // Without git, any existing file may hold work: ask about them all.
        None => files.iter().filter(|file| file.lab.exists()).collect(),
    };
    if !changed.is_empty() && !yes {
        anstream::println!("Applying the solution replaces your version of:");
        for file in &changed {
            anstream::println!("  {}", workspace.relative(&file.lab));
        }
        anstream::println!(
            "{}",
            paint(
                ui::DIM,
                "(to keep your work, copy those files, or `git stash` them, first)"
            )
        );
        if !ui::confirm("Replace them with the solution?") {
            anstream::println!("Nothing changed.");
            return Ok(ExitCode::SUCCESS);
        }
    }
    for file in files {
        copy(&file.solution, &file.lab)?;
        anstream::println!(
            "  {} {}",
            paint(ui::PASS, "copied to"),
            workspace.relative(&file.lab)
        );
    }
    anstream::println!(
        "\n{} Lab {} now holds the solution. {} shows it passing; {} undoes this.",
        paint(ui::PASS, "✓"),
        lab.label(),
        command(format!("cargo xtask check {}", lab.slug)),
        command(format!("cargo xtask reset {}", lab.slug)),
    );
    Ok(ExitCode::SUCCESS)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
