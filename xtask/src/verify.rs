//! `cargo xtask verify`: prove the course is sound (maintainers and CI).
//!
//! The lab contract (DESIGN §3) as one command. For every lab:
//!
//! - the starter fails exactly the tests its `lab.toml` declares in `[fails]`,
//!   each with a message containing the declared phrase, and passes the rest;
//! - with `solutions/NN-slug/` laid over it, every test passes; the solution
//!   holds only files that exist in the lab (it mirrors the lab's paths);
//!
//! and, once: the workspace's own tests pass (`lab-support`, the xtask), and
//! the book builds with every include, hint and link resolved.
//!
//! What is verified is the repository as committed (`git archive HEAD`),
//! extracted into `target/verify/tree` (labs, solutions, book) and
//! `target/verify/workspace` (the workspace's own tests, some of which copy
//! the workbook and build its labs), so a learner's half-fixed lab cannot
//! change the answer. The scratch trees use the real target directory as
//! cargo's build directory, with the same `Cargo.lock` and
//! `.cargo/config.toml`, so every dependency is reused and only the path
//! crates recompile; their packages are tagged so that they never share a
//! compiled unit with the real workspace or each other (see
//! `crate::scratch`). Unchanged files keep their timestamps between runs, so
//! a second `verify` recompiles only what changed. One `verify` runs at a
//! time (a lock file in `target/verify`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::Workspace;
use crate::book;
use crate::cargo_test::{CargoTest, Outcome, Report, TestResult};
use crate::labs::{self, Lab};
use crate::scratch;

/// Check the course: every starter fails exactly its declared tests, every
/// solution passes, the workspace's own tests pass, the book builds and its
/// includes, hints and links resolve.
///
/// Verifies the repository as committed (HEAD), in target/verify/tree, so
/// uncommitted edits (a learner's work in progress) do not change the
/// answer. Ends with the line `verify: N passed, M failed`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Verify only this lab (slug or number, e.g. `overload` or `3`) and the
    /// book; skips the workspace's own tests.
    #[arg(long, value_name = "LAB")]
    pub lab: Option<String>,
    /// Verify the working tree as it is, uncommitted changes included,
    /// instead of HEAD.
    #[arg(long)]
    pub worktree: bool,
}

pub fn run(workspace: &Workspace, args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let mut tally = Tally::default();
    if let Err(error) = verify(workspace, &args, &mut tally) {
        io::stdout().flush().ok();
        eprintln!("error: {error:#}");
        tally.failed.push("verify could not run".into());
    }
    if !tally.failed.is_empty() {
        println!("\nFailed:");
        for name in &tally.failed {
            println!("  {name}");
        }
    }
    println!("(took {:.0} s)", started.elapsed().as_secs_f64());
    println!(
        "verify: {} passed, {} failed",
        tally.passed,
        tally.failed.len()
    );
    Ok(if tally.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The checks that passed and the names of those that failed.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
}

/// One check's verdict: `Ok(summary)` or `Err(what is wrong, for a maintainer)`.
type Verdict = Result<String, String>;

fn verify(workspace: &Workspace, args: &Args, tally: &mut Tally) -> Result<()> {
    let verify_dir = workspace.target_dir.join("verify");
    let tree = verify_dir.join("tree");
    // An unknown --lab is a typo: say so before any work.
    if let Some(wanted) = &args.lab {
        let (labs, _) = labs::discover(&workspace.root)?;
        labs::find(&labs, wanted)?;
    }
    if workspace.root.starts_with(&verify_dir) {
        bail!("this is verify's own scratch tree; run `cargo xtask verify` in the repository");
    }
    // One verify at a time: two would rewrite one scratch tree under each other.
    let _lock = scratch::Lock::acquire(&verify_dir.join("lock"), "`cargo xtask verify`")?;
    let snapshot = snapshot(workspace, args.worktree)?;
    println!(
        "verify: checking {} in {}",
        snapshot.what,
        workspace.relative(&tree)
    );
    if let Some(note) = &snapshot.note {
        println!("note: {note}");
    }
    // The tree's packages must be units of their own (see crate::scratch).
    // The workspace's own tests run in a second tree: some of them copy the
    // workbook they belong to and build its labs, and those builds must
    // never be taken for the labs verified here.
    let workspace_tree = verify_dir.join("workspace");
    for (dir, tag) in [(&tree, "verify"), (&workspace_tree, "verify-workspace")] {
        let mut files = snapshot.files.clone();
        scratch::isolate(&mut files, tag, dir);
        sync_tree(&files, dir)
            .with_context(|| format!("writing the scratch tree {}", dir.display()))?;
    }

    let (all_labs, broken) = labs::discover(&tree)?;
    let selected: Vec<&Lab> = match &args.lab {
        Some(wanted) => vec![labs::find(&all_labs, wanted).with_context(|| {
            format!(
                "lab {wanted:?} is not in {} (commit it, or use --worktree)",
                snapshot.what
            )
        })?],
        None => all_labs.iter().collect(),
    };
    let run_workspace_tests = args.lab.is_none();
    let broken_to_report: &[labs::BrokenLab] = if args.lab.is_none() { &broken } else { &[] };

    let total = usize::from(run_workspace_tests) + broken_to_report.len() + 2 * selected.len() + 1;
    let mut step = 0;
    let mut check = |name: &str, verdict: &mut dyn FnMut() -> Verdict| {
        step += 1;
        print!("[{step}/{total}] {name} ... ");
        io::stdout().flush().ok();
        let started = Instant::now();
        let verdict = verdict();
        let seconds = started.elapsed().as_secs_f64();
        match verdict {
            Ok(summary) => {
                println!("ok ({summary}, {seconds:.1} s)");
                tally.passed += 1;
            }
            Err(problem) => {
                println!("FAILED ({seconds:.1} s)");
                println!("{}", indent(&problem, "    "));
                tally.failed.push(name.to_owned());
            }
        }
    };

    if run_workspace_tests {
        check("workspace: cargo test (lab-support, xtask)", &mut || {
            workspace_tests(&workspace_tree, &workspace.target_dir)
        });
    }
    for lab in broken_to_report {
        let name = format!("{}: lab.toml", labs::relative(&tree, &lab.dir));
        check(&name, &mut || Err(format!("{:#}", lab.error)));
    }
    for lab in &selected {
        check(&format!("{}: starter", lab.slug), &mut || {
            starter(lab, &tree, &workspace.target_dir)
        });
        check(&format!("{}: solution", lab.slug), &mut || {
            solution(lab, &tree, &workspace.target_dir)
        });
    }
    check("book: build, includes, hints, links", &mut || {
        book_check(&tree, &all_labs, &verify_dir.join("book"))
    });
    Ok(())
}

/// The files to verify, and how to describe them.
pub(crate) struct Snapshot {
    pub(crate) files: Files,
    what: String,
    note: Option<String>,
}

/// Relative path -> (contents, executable).
pub(crate) type Files = BTreeMap<PathBuf, (Vec<u8>, bool)>;

/// Reads HEAD with `git archive`, or the working tree when asked or when
/// this is not a git checkout.
pub(crate) fn snapshot(workspace: &Workspace, worktree: bool) -> Result<Snapshot> {
    let root = &workspace.root;
    if worktree {
        return Ok(Snapshot {
            files: working_tree_files(workspace)?,
            what: "the working tree".into(),
            note: None,
        });
    }
    let Some(commit) = git(root, &["rev-parse", "--short", "HEAD"]) else {
        return Ok(Snapshot {
            files: working_tree_files(workspace)?,
            what: "the working tree".into(),
            note: Some(
                "this is not a git checkout (or git is missing): verifying a copy of the \
                 working tree"
                    .into(),
            ),
        });
    };
    let prefix = git(root, &["rev-parse", "--show-prefix"]).unwrap_or_default();
    let tree_ish = format!("HEAD:{prefix}");
    if git(root, &["rev-parse", "--verify", "--quiet", &tree_ish]).is_none() {
        return Ok(Snapshot {
            files: working_tree_files(workspace)?,
            what: "the working tree".into(),
            note: Some(
                "the workbook is not committed in this git checkout: verifying a copy of \
                 the working tree"
                    .into(),
            ),
        });
    }
    let files = git_archive(root, &tree_ish)?;
    let changes = git(root, &["status", "--porcelain"]).unwrap_or_default();
    let changed = changes.lines().filter(|l| !l.trim().is_empty()).count();
    let note = (changed > 0).then(|| {
        format!(
            "the working tree has uncommitted changes ({changed} {}); HEAD ({commit}) is \
             what is verified. Commit them, or pass --worktree to verify them.",
            if changed == 1 { "file" } else { "files" }
        )
    });
    Ok(Snapshot {
        files,
        what: format!("HEAD ({commit})"),
        note,
    })
}

/// Runs git in `dir`; its trimmed stdout, or `None` if it failed.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The files of `tree_ish`, read from `git archive`'s tar stream.
fn git_archive(root: &Path, tree_ish: &str) -> Result<Files> {
    let mut child = Command::new("git")
        .args(["archive", "--format=tar", tree_ish])
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running git archive")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut archive = tar::Archive::new(stdout);
    let mut files = Files::new();
    for entry in archive.entries().context("reading git archive's output")? {
        let mut entry = entry.context("reading git archive's output")?;
        if !entry.header().entry_type().is_file() {
            continue; // directories are implied; git stores no others we need
        }
        let path = entry.path()?.into_owned();
        let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
        let mut contents = Vec::new();
        io::Read::read_to_end(&mut entry, &mut contents)?;
        files.insert(path, (contents, executable));
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "git archive {tree_ish} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(files)
}

/// The working tree's files, without `.git`, the target directory and the
/// learner's progress file.
fn working_tree_files(workspace: &Workspace) -> Result<Files> {
    let root = &workspace.root;
    let skip: Vec<PathBuf> = vec![
        root.join(".git"),
        root.join("target"),
        workspace.target_dir.clone(),
        root.join(".workbook-progress.toml"),
    ];
    let mut files = Files::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if skip.contains(&path) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                let contents = fs::read(&path)?;
                let relative = path.strip_prefix(root)?.to_path_buf();
                files.insert(relative, (contents, is_executable(&path)));
            }
        }
    }
    Ok(files)
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

/// Makes `tree` hold exactly `files`, rewriting only files whose contents
/// differ, so that cargo sees unchanged files as unchanged.
pub(crate) fn sync_tree(files: &Files, tree: &Path) -> Result<()> {
    fs::create_dir_all(tree)?;
    for (relative, (contents, executable)) in files {
        let path = tree.join(relative);
        if fs::read(&path).ok().as_ref() != Some(contents) {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        }
        set_executable(&path, *executable)?;
    }
    remove_extra_files(tree, tree, files)?;
    Ok(())
}

/// Removes files under `dir` that are not in `files`, and emptied folders.
fn remove_extra_files(tree: &Path, dir: &Path, files: &Files) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            remove_extra_files(tree, &path, files)?;
            if fs::read_dir(&path)?.next().is_none() {
                fs::remove_dir(&path)?;
            }
        } else if !files.contains_key(path.strip_prefix(tree)?) {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path, executable: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    if fs::metadata(path)?.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_executable(_path: &Path, _executable: bool) -> Result<()> {
    Ok(())
}

/// `cargo test` in the scratch tree: the real target directory serves as
/// cargo's build directory (dependencies are shared), the binaries go to
/// `target/verify/target` (see crate::scratch).
fn cargo_test_in(tree: &Path, target_dir: &Path) -> CargoTest {
    let own_target = target_dir.join("verify").join("target");
    CargoTest::new(tree, &own_target).build_dir(target_dir)
}

/// `cargo test` at the root: the default members (lab-support, the xtask).
fn workspace_tests(tree: &Path, target_dir: &Path) -> Verdict {
    let report = cargo_test_in(tree, target_dir)
        .run()
        .map_err(|e| format!("{e:#}"))?;
    let tests = match report {
        Report::DidNotCompile(errors) => {
            return Err(format!("the workspace does not compile:\n{errors}"));
        }
        Report::Ran { tests, problem } => {
            if let Some(problem) = problem {
                return Err(format!("cargo test failed:\n{problem}"));
            }
            tests
        }
    };
    let failures = describe_failures(&tests, |_| true);
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    Ok(format!("{} tests passed", count(&tests, Outcome::Passed)))
}

/// The starter fails exactly its `[fails]`, each for the declared reason.
fn starter(lab: &Lab, tree: &Path, target_dir: &Path) -> Verdict {
    let report = cargo_test_in(tree, target_dir)
        .package(&lab.package)
        .run()
        .map_err(|e| format!("{e:#}"))?;
    let failed = report.failed().len();
    let tests = match report {
        Report::DidNotCompile(errors) => {
            return Err(format!(
                "the starter does not compile; a starter must compile and be broken in \
                 behaviour only:\n{errors}"
            ));
        }
        Report::Ran { tests, problem } => {
            if let Some(problem) = problem {
                return Err(format!(
                    "cargo test failed without a failing test:\n{problem}"
                ));
            }
            tests
        }
    };
    let problems = judge_starter(lab, &tests);
    if problems.is_empty() {
        Ok(format!(
            "{failed} failed as declared, {} passed",
            count(&tests, Outcome::Passed)
        ))
    } else {
        Err(problems.join("\n"))
    }
}

/// What is wrong with a starter's test results, in words a maintainer can act on.
fn judge_starter(lab: &Lab, tests: &BTreeMap<String, TestResult>) -> Vec<String> {
    let mut problems = Vec::new();
    if tests.is_empty() {
        problems.push(format!(
            "no test ran; a lab needs tests (labs/{}/tests/lab.rs)",
            lab.folder_name()
        ));
        return problems;
    }
    let source = format!("labs/{}/lab.toml", lab.folder_name());
    for (name, phrase) in &lab.fails {
        match tests.get(name) {
            None => problems.push(format!(
                "`{name}` is declared in [fails] of {source} but no test has that name \
                 (the tests are: {})",
                tests.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            Some(test) => match test.outcome {
                Outcome::Passed => problems.push(format!(
                    "`{name}` passed on the starter, but {source} says it must fail \
                     (is the bug still in the starter? does the test detect it?)"
                )),
                Outcome::Ignored => problems.push(format!(
                    "`{name}` is #[ignore]d, but {source} says it must fail"
                )),
                Outcome::Failed => {
                    let message = test.message.as_deref().unwrap_or("");
                    if !message.contains(phrase.as_str()) {
                        problems.push(format!(
                            "`{name}` failed, but not for the declared reason: its message \
                             does not contain {phrase:?} ({source}). It said:\n{}",
                            indent(message, "    ")
                        ));
                    }
                }
            },
        }
    }
    let unexpected = describe_failures(tests, |name| !lab.fails.contains_key(name));
    if !unexpected.is_empty() {
        problems.push(format!(
            "tests not listed in [fails] must pass on the starter, but these failed:\n{}",
            indent(&unexpected.join("\n"), "  ")
        ));
    }
    problems
}

/// `solutions/NN-slug` mirrors the lab and, laid over it, passes every test.
fn solution(lab: &Lab, tree: &Path, target_dir: &Path) -> Verdict {
    let solution_dir = lab.solution_dir();
    let relative_solution = labs::relative(tree, &solution_dir);
    if !solution_dir.is_dir() {
        return Err(format!(
            "there is no solution: {relative_solution}/ should hold the fixed files, \
             at the same paths as in labs/{}/",
            lab.folder_name()
        ));
    }
    let files = files_under(&solution_dir).map_err(|e| format!("{e:#}"))?;
    if files.is_empty() {
        return Err(format!(
            "{relative_solution}/ is empty; it should hold the fixed files"
        ));
    }
    let (mirrored, strays): (Vec<&PathBuf>, Vec<&PathBuf>) =
        files.iter().partition(|f| lab.dir.join(f).is_file());
    let mut problems = Vec::new();
    if !strays.is_empty() {
        problems.push(format!(
            "{relative_solution}/ holds files the lab does not have (a solution mirrors the \
             lab's paths and holds only the files that change): {}",
            strays
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    let report = {
        let _overlay = Overlay::apply(&solution_dir, &lab.dir, &mirrored)
            .map_err(|e| format!("laying the solution over the lab: {e:#}"))?;
        cargo_test_in(tree, target_dir)
            .package(&lab.package)
            .run()
            .map_err(|e| format!("{e:#}"))?
    };
    match report {
        Report::DidNotCompile(errors) => {
            problems.push(format!(
                "the solution does not compile (it is laid over the lab, so the errors \
                 name the lab's paths):\n{errors}"
            ));
        }
        Report::Ran { tests, problem } => {
            if tests.is_empty() {
                problems.push("no test ran with the solution".into());
            }
            let failures = describe_failures(&tests, |_| true);
            if !failures.is_empty() {
                problems.push(format!(
                    "with the solution every test must pass, but these failed:\n{}",
                    indent(&failures.join("\n"), "  ")
                ));
            } else if let Some(problem) = problem {
                problems.push(format!(
                    "cargo test failed without a failing test:\n{problem}"
                ));
            }
            if problems.is_empty() {
                return Ok(format!(
                    "{} passed with {} changed file(s)",
                    count(&tests, Outcome::Passed),
                    mirrored.len()
                ));
            }
        }
    }
    Err(problems.join("\n"))
}

/// Solution files laid over a lab; the lab's own files come back on drop.
struct Overlay {
    originals: Vec<(PathBuf, Vec<u8>)>,
}

impl Overlay {
    fn apply(solution_dir: &Path, lab_dir: &Path, files: &[&PathBuf]) -> Result<Self> {
        let mut overlay = Overlay {
            originals: Vec::new(),
        };
        for file in files {
            let target = lab_dir.join(file);
            let original = fs::read(&target)?;
            overlay.originals.push((target.clone(), original));
            fs::copy(solution_dir.join(file), &target)?;
        }
        Ok(overlay)
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        for (path, contents) in &self.originals {
            if let Err(error) = fs::write(path, contents) {
                eprintln!("warning: could not restore {}: {error}", path.display());
            }
        }
    }
}

/// The files under `dir`, relative to it.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path.strip_prefix(dir)?.to_path_buf());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Builds the scratch tree's book and turns its problems into a verdict.
fn book_check(tree: &Path, labs: &[Lab], dest: &Path) -> Verdict {
    let built = book::build(tree, labs, dest).map_err(|e| format!("{e:#}"))?;
    if built.problems.is_empty() {
        let pages = fs::read_dir(dest)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "html"))
                    .count()
            })
            .unwrap_or(0);
        Ok(format!("{pages} pages"))
    } else {
        Err(built.problems.join("\n"))
    }
}

/// One line per failed test matching `wanted`, each followed by its message.
fn describe_failures(
    tests: &BTreeMap<String, TestResult>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, test) in tests {
        if test.outcome == Outcome::Failed && wanted(name) {
            let mut line = format!("`{name}` failed");
            if let Some(message) = &test.message {
                write!(line, ":\n{}", indent(message, "    ")).unwrap();
            }
            failures.push(line);
        }
    }
    failures
}

fn count(tests: &BTreeMap<String, TestResult>, outcome: Outcome) -> usize {
    tests.values().filter(|t| t.outcome == outcome).count()
}

/// `text` with `prefix` before each line.
pub(crate) fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(fails: &[(&str, &str)]) -> Lab {
        Lab {
            number: 3,
            slug: "overload".into(),
            title: "Overload".into(),
            chapter: "03-overload.md".into(),
            minutes: 30,
            hints: vec!["h".into()],
            fails: fails
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_string()))
                .collect(),
            package: "overload".into(),
            dir: PathBuf::from("/w/labs/03-overload"),
        }
    }

    fn results(list: &[(&str, Outcome, &str)]) -> BTreeMap<String, TestResult> {
        list.iter()
            .map(|(name, outcome, message)| {
                let message = (!message.is_empty()).then(|| message.to_string());
                (
                    name.to_string(),
                    TestResult {
                        outcome: *outcome,
                        message,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_starter_failing_exactly_as_declared_is_accepted() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[
            (
                "sheds_load",
                Outcome::Failed,
                "no load shedding: 20 requests all ran",
            ),
            ("answers", Outcome::Passed, ""),
        ]);
        assert_eq!(judge_starter(&lab, &tests), Vec::<String>::new());
    }

    #[test]
    fn a_declared_failure_that_passes_is_reported() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[("sheds_load", Outcome::Passed, "")]);
        let problems = judge_starter(&lab, &tests);
        assert!(
            problems[0].contains("`sheds_load` passed on the starter"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_failure_for_another_reason_is_reported_with_its_message() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[("sheds_load", Outcome::Failed, "connection refused")]);
        let problems = judge_starter(&lab, &tests);
        assert!(
            problems[0].contains("not for the declared reason"),
            "{problems:?}"
        );
        assert!(problems[0].contains("connection refused"), "{problems:?}");
    }

    #[test]
    fn an_undeclared_failure_and_a_missing_test_are_reported() {
        let lab = lab(&[("sheds_load", "load shedding")]);
        let tests = results(&[("answers", Outcome::Failed, "500")]);
        let problems = judge_starter(&lab, &tests);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("no test has that name"),
            "{problems:?}"
        );
        assert!(problems[1].contains("`answers` failed"), "{problems:?}");
    }

    #[test]
    fn a_starter_without_tests_is_reported() {
        let problems = judge_starter(&lab(&[("x", "y")]), &BTreeMap::new());
        assert!(problems[0].contains("no test ran"), "{problems:?}");
    }

    #[test]
    fn the_scratch_tree_is_synced_keeping_unchanged_files() {
        let tree = tempfile::tempdir().unwrap();
        let mut files = Files::new();
        files.insert("a/same.txt".into(), (b"same".to_vec(), false));
        files.insert("b/changed.txt".into(), (b"new".to_vec(), true));
        fs::create_dir_all(tree.path().join("a")).unwrap();
        fs::create_dir_all(tree.path().join("b")).unwrap();
        fs::create_dir_all(tree.path().join("gone/deep")).unwrap();
        fs::write(tree.path().join("a/same.txt"), "same").unwrap();
        fs::write(tree.path().join("b/changed.txt"), "old").unwrap();
        fs::write(tree.path().join("gone/deep/extra.txt"), "x").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(tree.path().join("a/same.txt"))
            .unwrap()
            .set_modified(old)
            .unwrap();

        sync_tree(&files, tree.path()).unwrap();

        let same = fs::metadata(tree.path().join("a/same.txt")).unwrap();
        assert_eq!(
            same.modified().unwrap(),
            old,
            "an unchanged file keeps its mtime"
        );
        assert_eq!(
            fs::read_to_string(tree.path().join("b/changed.txt")).unwrap(),
            "new"
        );
        assert!(
            !tree.path().join("gone").exists(),
            "extra files and folders go"
        );
    }
}
