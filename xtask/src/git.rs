//! Every git call. The starter is the lab's files as committed: what the
//! learner changed, what the solution changes, putting it back. Each
//! question is about one folder; without git (a zip), the answer is
//! "unknown" and the verbs that need git say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};

use crate::workbook::{Lab, files_under};

/// How a file differs from the commit; `New` is untracked or only staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Deleted,
    New,
}

/// One changed file, its path relative to the repository root, with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
}

/// `git` at `root`, printing paths as they are (not octal-escaped).
fn git(root: &Path) -> Command {
    let mut command = Command::new("git");
    command.current_dir(root).args(["-c", "core.quotePath=false"]).stdin(Stdio::null());
    command
}

/// The path of `dir` relative to `root`, with forward slashes, as git wants it.
pub fn pathspec(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir).to_string_lossy().replace('\\', "/");
    if relative.is_empty() { ".".to_owned() } else { relative }
}

/// What differs from the last commit under `dir` (ignored files do not
/// count); `None` if git cannot tell.
pub fn changes(root: &Path, dir: &Path) -> Option<Vec<Change>> {
    // Never takes `.git/index.lock` from under the learner's own git.
    let output = git(root)
        .args(["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all"])
        .args(["--", &pathspec(root, dir)])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output.status.success().then(|| parse_porcelain(&String::from_utf8_lossy(&output.stdout)))
}

/// Reads `git status --porcelain=v1 -z`: `XY path\0`, and for a rename or
/// copy a second `\0`-terminated path (the old one).
pub fn parse_porcelain(output: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut entries = output.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        // `XY` is the index's status and the working tree's.
        let Some(path) = entry.get(3..).filter(|path| !path.is_empty()) else { continue };
        let kind = match entry.as_bytes() {
            [b'?' | b'A', ..] => ChangeKind::New,
            [_, b'D', ..] | [b'D', ..] => ChangeKind::Deleted,
            [b'R' | b'C', ..] => {
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

/// The committed contents of `path` (relative to the root, with `/`).
pub fn committed(root: &Path, path: &str) -> Option<String> {
    let output =
        git(root).args(["show", &format!("HEAD:{path}")]).stderr(Stdio::null()).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Puts `dir` back as committed (index and working tree), deleting what the
/// commit lacks; ignored files are left alone.
pub fn restore(root: &Path, dir: &Path) -> Result<()> {
    let Some(changes) = changes(root, dir) else {
        bail!(
            "this copy of the workbook is not a git checkout (or git is not installed), \
             so there is no committed starter to restore"
        );
    };
    let spec = pathspec(root, dir);
    let args = ["restore", "--source=HEAD", "--staged", "--worktree", "--", &spec];
    let status = git(root).args(args).status().context("running git restore")?;
    ensure!(status.success(), "`git {}` failed", args.join(" "));
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
    for dir in file.ancestors().skip(1) {
        if dir == stop || !dir.starts_with(stop) || std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// A lab's file as committed, or as it is without git.
pub fn starter(root: &Path, lab_file: &Path) -> Option<String> {
    committed(root, &pathspec(root, lab_file)).or_else(|| std::fs::read_to_string(lab_file).ok())
}

/// A source file the solution changes: its two paths, the committed
/// starter and the fix.
pub struct SolutionFile {
    pub solution: PathBuf,
    pub lab: PathBuf,
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
    ensure!(
        !changed.is_empty(),
        "lab {} has no solution: {}/ is missing or the same as the starter",
        lab.label(),
        pathspec(root, &solution_src)
    );
    Ok(changed)
}
