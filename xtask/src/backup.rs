//! Copies of a learner's files, made before a verb replaces them.
//!
//! `reset` and `solution --apply` overwrite a lab's files; an instructor's
//! catch-up must never cost a learner their own attempt. So before either
//! writes, the files it is about to change go to
//! `target/workbook/backups/<slug>/<n>-<UTC time>/`, path for path (`n`
//! counts up, so the latest sorts last), and `cargo xtask restore <lab>` puts
//! the latest copy back.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::ui;
use crate::workbook::{Lab, Workbook, files_under};

/// Where the backups of `lab` live, one folder per backup.
pub fn dir(workbook: &Workbook, lab: &Lab) -> PathBuf {
    workbook.target_dir.join("workbook").join("backups").join(&lab.slug)
}

/// Copies the `files` that exist (absolute paths inside the workbook) into a
/// new backup of `lab`; returns its folder, or `None` if there was nothing
/// to copy.
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
    // The names start with a zero-padded count, so they sort as text.
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
        let note = format!(
            "(the files replaced are saved in {}; {undo} brings them back)",
            workbook.relative(saved)
        );
        ui::note(note);
    }
}

/// Now, in UTC, as `2026-11-29T22-41-07Z` (a folder name on every system).
fn utc_now() -> String {
    utc(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// `seconds` since the Unix epoch, in UTC, as `2026-11-29T22-41-07Z`.
fn utc(seconds: u64) -> String {
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (time / 3600, time / 60 % 60, time % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}-{minute:02}-{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_named_after_the_utc_time() {
        assert_eq!(utc(0), "1970-01-01T00-00-00Z");
        assert_eq!(utc(951782400), "2000-02-29T00-00-00Z", "a leap day");
        assert_eq!(utc(1796078467), "2026-11-30T22-41-07Z");
    }
}
