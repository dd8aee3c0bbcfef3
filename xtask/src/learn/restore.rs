//! `cargo xtask restore <lab>`: puts back the latest [`crate::backup`] of a
//! lab, saving what it overwrites in turn (a restore can be undone too).

use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::backup;
use crate::ui::{self, command, paint};
use crate::workbook::Workbook;

/// Bring back your files that `reset` or `solution --apply` replaced (the
/// latest copy they saved).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lab: its slug (`hello`) or number (`0`).
    pub lab: String,
}

pub fn run(workbook: &Workbook, args: Args) -> Result<ExitCode> {
    let lab = workbook.lab(&args.lab)?;
    let Some(latest) = backup::latest(workbook, &lab) else {
        bail!(
            "there is no saved copy of lab {}: `reset` and `solution --apply` save your files \
             in {} before they replace them, and none has yet",
            lab.label(),
            workbook.relative(&backup::dir(workbook, &lab))
        );
    };
    let files = backup::files(workbook, &latest);
    let current: Vec<PathBuf> = files.iter().map(|(_, original)| original.clone()).collect();
    let saved = backup::save(workbook, &lab, &current)?;
    for (copy, original) in &files {
        fs::create_dir_all(original.parent().expect("inside the workbook"))?;
        fs::copy(copy, original).with_context(|| format!("restoring {}", original.display()))?;
        anstream::println!("  {} {}", paint(ui::PASS, "restored"), workbook.relative(original));
    }
    // Consumed: a second restore brings back what this one replaced.
    fs::remove_dir_all(&latest).with_context(|| format!("removing {}", latest.display()))?;
    anstream::println!(
        "\n{} Your files of lab {} are back (saved {}). {} checks them.",
        paint(ui::PASS, "✓"),
        lab.label(),
        latest.file_name().unwrap_or_default().to_string_lossy(),
        command(format!("cargo xtask check {}", lab.slug))
    );
    backup::tell_saved(workbook, &lab, saved.as_deref());
    Ok(ExitCode::SUCCESS)
}
