//! Copies of a learner's files, made before `reset` or `solution --apply`
//! replaces them (a catch-up must never cost a learner their attempt), in
//! `target/workbook/backups/<slug>/<n>-<UTC time>/`, path for path; `cargo
//! xtask restore <lab>` puts the latest back.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::ui;
use crate::workbook::{Lab, Workbook, files_under};

/// Where the backups of `lab` live, one folder each.
pub fn dir(workbook: &Workbook, lab: &Lab) -> PathBuf {
    workbook.target_dir.join("workbook").join("backups").join(&lab.slug)
}

/// Copies the `files` that exist into a new backup of `lab`; its folder,
/// if there was anything to copy.
pub fn save(workbook: &Workbook, lab: &Lab, files: &[PathBuf]) -> Result<Option<PathBuf>> {
    let existing: Vec<&PathBuf> = files.iter().filter(|file| file.is_file()).collect();
    if existing.is_empty() {
        return Ok(None);
    }
    let number = latest(workbook, lab)
        .and_then(|latest| latest.file_name()?.to_str()?.split('-').next()?.parse::<u32>().ok())
        .map_or(1, |n| n + 1);
    let backup = dir(workbook, lab).join(format!("{number:04}-{}", utc_now()));
    for file in existing {
        let copy = backup.join(file.strip_prefix(&workbook.root).unwrap_or(file));
        fs::create_dir_all(copy.parent().expect("inside the backup"))?;
        fs::copy(file, &copy).with_context(|| format!("backing up {}", file.display()))?;
    }
    Ok(Some(backup))
}

/// The latest backup of `lab`, if any.
pub fn latest(workbook: &Workbook, lab: &Lab) -> Option<PathBuf> {
    let backups = fs::read_dir(dir(workbook, lab)).ok()?;
    backups.flatten().map(|entry| entry.path()).filter(|path| path.is_dir()).max()
}

/// The files of a backup, each with the workbook path it was copied from.
pub fn files(workbook: &Workbook, backup: &Path) -> Vec<(PathBuf, PathBuf)> {
    files_under(backup)
        .into_iter()
        .map(|copy| {
            let original = workbook.root.join(copy.strip_prefix(backup).expect("listed under it"));
            (copy, original)
        })
        .collect()
}

/// Says where the replaced files went, and how to get them back.
pub fn tell_saved(workbook: &Workbook, lab: &Lab, saved: Option<&Path>) {
    if let Some(saved) = saved {
        let undo = ui::command(format!("cargo xtask restore {}", lab.slug));
        let saved = workbook.relative(saved);
        ui::note(format!("(the files replaced are saved in {saved}; {undo} brings them back)"));
    }
}

/// Now, in UTC, as `2026-11-29T22-41-07Z` (a folder name on every system).
fn utc_now() -> String {
    utc(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// `seconds` since the Unix epoch, in UTC, as `2026-11-29T22-41-07Z`.
pub fn utc(seconds: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_secs(seconds);
    humantime::format_rfc3339_seconds(time).to_string().replace(':', "-")
}
