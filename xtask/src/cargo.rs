//! Every way the tool runs cargo, and reading what libtest printed.
//!
//! The tool never links against the labs: it runs cargo as a learner would
//! and parses libtest's human output (`test name ... ok`, the `---- name
//! stdout ----` sections). That keeps the labs ordinary crates and means the
//! xtask sees exactly what `cargo test -p <lab>` shows.
//!
//! A run ends in one of two ways: the tests ran (each with an outcome and,
//! if it failed, its message), or the code did not compile (with the
//! compiler's errors). The callers treat those very differently.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::workbook::Workbook;
use crate::{process, ui};

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
}

/// One test of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub outcome: Outcome,
    /// For a failed test: what it printed, usually the panic message.
    pub message: Option<String>,
}

/// What `cargo test` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The tests ran; keyed by test name (`module::name` for nested tests).
    Ran {
        tests: BTreeMap<String, TestResult>,
        /// Cargo failed although no test failed (e.g. a test binary crashed):
        /// its error output.
        problem: Option<String>,
    },
    /// The code did not compile, or cargo failed before running any test:
    /// the relevant part of cargo's error output.
    DidNotCompile(String),
}

impl Report {
    /// The names of the failed tests.
    pub fn failed(&self) -> Vec<&str> {
        match self {
            Report::Ran { tests, .. } => tests
                .iter()
                .filter(|(_, t)| t.outcome == Outcome::Failed)
                .map(|(name, _)| name.as_str())
                .collect(),
            Report::DidNotCompile(_) => Vec::new(),
        }
    }

    /// Whether the code compiled, ran at least one test and failed none.
    pub fn passed(&self) -> bool {
        match self {
            Report::Ran { tests, problem } => {
                problem.is_none()
                    && tests.values().any(|t| t.outcome == Outcome::Passed)
                    && tests.values().all(|t| t.outcome != Outcome::Failed)
            }
            Report::DidNotCompile(_) => false,
        }
    }
}

/// `cargo` at the workbook's root, building into its target directory with
/// the flags of `.cargo/config.toml` (a `RUSTFLAGS` variable would replace
/// them, and every dependency would compile again).
pub fn command(workbook: &Workbook) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(&workbook.root)
        .env("CARGO_TARGET_DIR", &workbook.target_dir)
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null());
    command
}

/// Runs `cargo test -p <package> --no-fail-fast` as a supervised child, so
/// that Ctrl-C stops it, and parses what it printed. With
/// `say_when_compiling`, a long compile gets one line of explanation, so that
/// the first run of a fresh clone is not taken for a hang.
pub fn test(workbook: &Workbook, package: &str, say_when_compiling: bool) -> Result<Report> {
    let mut cargo = command(workbook);
    cargo.args(["test", "--no-fail-fast", "--package", package]);
    // Short failure messages: no backtraces, no colour codes.
    cargo.env("RUST_BACKTRACE", "0").env("CARGO_TERM_COLOR", "never");
    let started = Instant::now();
    let mut said_so = false;
    let output = process::run_captured(&mut cargo, |line| {
        let compiling = line.trim_start().starts_with("Compiling ");
        if say_when_compiling && compiling && !said_so && started.elapsed() > Duration::from_secs(5)
        {
            said_so = true;
            ui::note(
                "  (compiling; the first time takes a few minutes, later runs a second or two)",
            );
        }
    })
    .context("running cargo test")?;
    Ok(parse(&output.stdout, &output.stderr, output.success))
}

/// The packages a plain `cargo test` at the root tests (the workspace's
/// `default-members`), by name.
pub fn default_members(workbook: &Workbook) -> Result<Vec<String>> {
    let mut cargo = command(workbook);
    cargo.args(["metadata", "--no-deps", "--format-version", "1"]);
    let output = process::run_captured(&mut cargo, |_| {})?;
    if !output.success {
        bail!("`cargo metadata` failed:\n{}", output.stderr.trim());
    }
    let metadata: serde_json::Value =
        serde_json::from_str(&output.stdout).context("reading cargo metadata")?;
    let default = metadata["workspace_default_members"].as_array().context("no default members")?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    Ok(packages
        .iter()
        .filter(|package| default.contains(&package["id"]))
        .filter_map(|package| Some(package["name"].as_str()?.to_owned()))
        .collect())
}

/// The variable and value a lab's binary needs to start outside cargo: the
/// labs link their dependencies as one dynamic library (labs/support/dylib),
/// found in `<target>/debug/deps`, with Rust's standard library from the
/// toolchain. (`cargo run` and `cargo test` set the same.)
pub fn library_path(workbook: &Workbook) -> (&'static str, std::ffi::OsString) {
    let variable = match std::env::consts::OS {
        "macos" => "DYLD_FALLBACK_LIBRARY_PATH",
        "windows" => "PATH",
        _ => "LD_LIBRARY_PATH",
    };
    let mut dirs = vec![workbook.target_dir.join("debug").join("deps")];
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    // Where the toolchain keeps the standard library as a shared library.
    let libdir =
        Command::new(rustc).args(["--print", "target-libdir"]).current_dir(&workbook.root).output();
    if let Ok(output) = libdir {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    }
    dirs.extend(std::env::var_os(variable).iter().flat_map(std::env::split_paths));
    (variable, std::env::join_paths(dirs).unwrap_or_default())
}

/// An executable cargo built.
#[derive(Debug)]
pub struct Executable {
    /// The target's name: a binary's or an example's.
    pub name: String,
    pub path: PathBuf,
}

/// `cargo build <args>` with cargo's messages on the terminal; the
/// executables it built.
pub fn build(workbook: &Workbook, args: &[&str]) -> Result<Vec<Executable>> {
    let mut cargo = command(workbook);
    cargo
        .arg("build")
        .args(args)
        .args(["--message-format", "json-render-diagnostics"])
        .stdout(Stdio::piped());
    let output = process::run_captured(&mut cargo, |line| eprintln!("{line}"))?;
    if !output.success {
        bail!("`cargo build {}` failed (see the errors above)", args.join(" "));
    }
    Ok(output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            Some(Executable {
                name: message["target"]["name"].as_str()?.to_owned(),
                path: PathBuf::from(message["executable"].as_str()?),
            })
        })
        .collect())
}

/// Builds the binary of `package` named like it (a tool crate of its own,
/// e.g. `xtask/classroom`) and runs it at the root with `args`, supervised.
pub fn run_binary(
    workbook: &Workbook,
    package: &str,
    args: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
) -> Result<ExitCode> {
    let built = build(workbook, &["--package", package, "--bin", package])?;
    let binary = built
        .into_iter()
        .find(|executable| executable.name == package)
        .with_context(|| format!("cargo built no `{package}` binary"))?;
    let mut command = Command::new(&binary.path);
    command.current_dir(&workbook.root).args(args).stdin(Stdio::null());
    let status = process::Supervised::spawn(&mut command)
        .with_context(|| format!("starting {package}"))?
        .wait()?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Reads libtest's human output (stdout) and cargo's messages (stderr);
/// `success` is whether cargo exited with success.
pub fn parse(stdout: &str, stderr: &str, success: bool) -> Report {
    let mut tests = BTreeMap::new();
    let mut ran_a_harness = false;
    for line in stdout.lines() {
        if line.starts_with("running ") && (line.ends_with(" test") || line.ends_with(" tests")) {
            ran_a_harness = true;
        }
        if let Some((name, outcome)) = parse_result_line(line) {
            tests.insert(name.to_owned(), TestResult { outcome, message: None });
        }
    }
    let compile_failed = stderr.contains("error: could not compile")
        || stderr.lines().any(|l| l.starts_with("error[E"));
    if compile_failed || (!success && !ran_a_harness) {
        let errors = cargo_errors(stderr).unwrap_or_else(|| "cargo failed and said nothing".into());
        return Report::DidNotCompile(errors);
    }
    for (name, message) in failure_sections(stdout) {
        if let Some(test) = tests.get_mut(&name) {
            test.message = Some(message);
        }
    }
    let any_failed = tests.values().any(|t| t.outcome == Outcome::Failed);
    let problem = if success || any_failed {
        None
    } else {
        Some(cargo_errors(stderr).unwrap_or_else(|| "cargo failed and said nothing".into()))
    };
    Report::Ran { tests, problem }
}

/// `test some::name ... ok` -> ("some::name", Passed).
fn parse_result_line(line: &str) -> Option<(&str, Outcome)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.split_once(" ... ")?;
    let outcome = match result.trim() {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        r if r == "ignored" || r.starts_with("ignored,") => Outcome::Ignored,
        _ => return None,
    };
    Some((name.trim(), outcome))
}

/// The `---- name stdout ----` sections of the `failures:` block.
fn failure_sections(stdout: &str) -> Vec<(String, String)> {
    let mut sections = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    for line in stdout.lines() {
        let header = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----"));
        // The list of names that closes the block, or the next harness.
        let block_ends = line == "failures:" || line.starts_with("test result:");
        if (header.is_some() || block_ends)
            && let Some((name, lines)) = current.take()
        {
            sections.push((name, clean_message(&lines)));
        }
        if let Some(name) = header {
            current = Some((name.to_owned(), Vec::new()));
        } else if let Some((_, lines)) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some((name, lines)) = current {
        sections.push((name, clean_message(&lines)));
    }
    sections
}

/// Drops the backtrace hint and surrounding blank lines.
fn clean_message(lines: &[&str]) -> String {
    let kept: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE=1`"))
        .collect();
    kept.join("\n").trim().to_owned()
}

/// The error part of cargo's stderr: everything but the progress lines.
fn cargo_errors(stderr: &str) -> Option<String> {
    const PROGRESS: &str = "Compiling Checking Finished Running Doc-tests Blocking Locking \
                            Updating Downloading Downloaded Adding Fresh";
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            let word = l.trim_start().split(' ').next().unwrap_or("");
            !PROGRESS.split_whitespace().any(|progress| progress == word)
        })
        .collect();
    let text = errors.join("\n").trim().to_owned();
    (!text.is_empty()).then_some(text)
}
