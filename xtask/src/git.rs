//! The few git questions the runner asks: what did the learner change in a
//! lab, what does the committed starter look like (and what does the
//! solution change in it), and put it back.
//!
//! git is how the workbook is distributed, so it is the natural record of
//! "the starter": the lab's files as committed. Every question here is
//! restricted to one lab's folder, so nothing ever touches another lab.
//! Without git (a downloaded zip), the questions answer "unknown" and the
//! verbs that need git say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::workbook::{Lab, files_under};

/// How a file differs from the committed starter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Committed, and changed since.
    Modified,
    /// Committed, and deleted since.
    Deleted,
    /// Not part of the starter (untracked, or only added to the index).
    New,
}

/// One changed file, its path relative to the repository root, with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// A `git` command run at `root`.
fn git(root: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(root)
        // Paths in output as they are, not quoted with octal escapes.
        .args(["-c", "core.quotePath=false"])
        .stdin(Stdio::null());
    command
}

/// The path of `dir` relative to `root`, with forward slashes, as git wants it.
pub fn pathspec(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir).to_string_lossy().replace('\\', "/");
    if relative.is_empty() { ".".to_owned() } else { relative }
}

/// What differs from the last commit under `dir`: modified, deleted and new
/// files (ignored files do not count). `None` if git cannot tell (no git, or
/// not a git checkout).
pub fn changes(root: &Path, dir: &Path) -> Option<Vec<Change>> {
    let output = git(root)
        // Read only: never take `.git/index.lock` from under the learner's own git
        // (the served book asks every few seconds).
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
        ])
        .arg(pathspec(root, dir))
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(parse_porcelain(&String::from_utf8_lossy(&output.stdout)))
}

/// Reads `git status --porcelain=v1 -z`: `XY path\0`, and for a rename or
/// copy a second `\0`-terminated path (the old one).
fn parse_porcelain(output: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut entries = output.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        if entry.len() < 4 {
            continue;
        }
        let (status, path) = entry.split_at(3);
        let mut code = status.chars();
        let (index, worktree) = (code.next().unwrap_or(' '), code.next().unwrap_or(' '));
        let kind = match (index, worktree) {
            ('?', _) | ('A', _) => ChangeKind::New,
            (_, 'D') | ('D', _) => ChangeKind::Deleted,
            ('R' | 'C', _) => {
                // The new name is new to the starter; the old one is gone.
                if let Some(old) = entries.next() {
                    changes.push(Change { kind: ChangeKind::Deleted, path: old.to_owned() });
                }
                ChangeKind::New
            }
            _ => ChangeKind::Modified,
        };
        changes.push(Change { kind, path: path.to_owned() });
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    changes
}

/// The committed contents of `path` (relative to the root, with `/`), or
/// `None` if it is not committed or git cannot tell.
pub fn committed(root: &Path, path: &str) -> Option<String> {
    let output =
        git(root).args(["show", &format!("HEAD:{path}")]).stderr(Stdio::null()).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Puts every committed file under `dir` back as committed (in the index and
/// the working tree), and deletes the files under `dir` that are not part of
/// the commit. Ignored files are left alone.
pub fn restore(root: &Path, dir: &Path) -> Result<()> {
    let Some(changes) = changes(root, dir) else {
        bail!(
            "this copy of the workbook is not a git checkout (or git is not installed), \
             so there is no committed starter to restore"
        );
    };
    let spec = pathspec(root, dir);
    let status = git(root)
        .args(["restore", "--source=HEAD", "--staged", "--worktree", "--"])
        .arg(&spec)
        .status()
        .context("running git restore")?;
    if !status.success() {
        bail!("`git restore --source=HEAD --staged --worktree -- {spec}` failed");
    }
    for change in changes.iter().filter(|c| c.kind == ChangeKind::New) {
        let path = root.join(&change.path);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("deleting {}", change.path))?;
        }
        remove_empty_parents(&path, dir);
    }
    Ok(())
}

/// Removes the now-empty folders between `file` and `stop` (exclusive).
fn remove_empty_parents(file: &Path, stop: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// A lab's file (absolute) as committed, or as it is without git; `None`
/// if it is neither.
pub fn starter(root: &Path, lab_file: &Path) -> Option<String> {
    committed(root, &pathspec(root, lab_file)).or_else(|| std::fs::read_to_string(lab_file).ok())
}

/// A source file the solution changes.
pub struct SolutionFile {
    /// `solutions/NN-slug/src/<path>`.
    pub solution: PathBuf,
    /// `labs/NN-slug/src/<path>`.
    pub lab: PathBuf,
    /// The lab's file as committed (or as it is, without git).
    pub starter: String,
    pub fixed: String,
}

/// The files of the solution's `src` that differ from the committed starter's.
pub fn solution_changes(root: &Path, lab: &Lab) -> Result<Vec<SolutionFile>> {
    let solution_src = lab.solution_dir().join("src");
    let mut changed = Vec::new();
    for solution in files_under(&solution_src) {
        let relative = solution.strip_prefix(&solution_src).expect("listed under it");
        let lab_file = lab.dir.join("src").join(relative);
        let starter = starter(root, &lab_file).unwrap_or_default();
        let fixed = std::fs::read_to_string(&solution)
            .with_context(|| format!("reading {}", solution.display()))?;
        if fixed != starter {
            changed.push(SolutionFile { solution, lab: lab_file, starter, fixed });
        }
    }
    if changed.is_empty() {
        bail!(
            "lab {} has no solution: {}/ is missing or the same as the starter",
            lab.label(),
            pathspec(root, &solution_src)
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn porcelain_output_becomes_changes() {
        let output = " M labs/00-hello/src/lib.rs\0?? labs/00-hello/src/extra.rs\0\
                      A  labs/00-hello/src/staged.rs\0 D labs/00-hello/tests/lab.rs\0\
                      R  labs/00-hello/src/new.rs\0labs/00-hello/src/old.rs\0";
        let changes = parse_porcelain(output);
        let summary: Vec<(ChangeKind, &str)> =
            changes.iter().map(|c| (c.kind, c.path.as_str())).collect();
        assert_eq!(
            summary,
            [
                (ChangeKind::New, "labs/00-hello/src/extra.rs"),
                (ChangeKind::Modified, "labs/00-hello/src/lib.rs"),
                (ChangeKind::New, "labs/00-hello/src/new.rs"),
                (ChangeKind::Deleted, "labs/00-hello/src/old.rs"),
                (ChangeKind::New, "labs/00-hello/src/staged.rs"),
                (ChangeKind::Deleted, "labs/00-hello/tests/lab.rs"),
            ]
        );
    }

    #[test]
    fn no_output_means_no_changes() {
        assert!(parse_porcelain("").is_empty());
    }
}
