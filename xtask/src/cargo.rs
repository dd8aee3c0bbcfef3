//! Every way the tool runs cargo, and reading what libtest printed. The
//! tool runs cargo as a learner would and parses libtest's human output, so
//! it sees exactly what `cargo test -p <lab>` shows.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

use crate::workbook::Workbook;
use crate::{process, ui};

/// How one test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
}

/// One test of a run; a failed test's message is what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub outcome: Outcome,
    pub message: Option<String>,
}

/// What `cargo test` reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The tests ran, by name (`module::name` for nested ones); `problem` is
    /// cargo's error when it failed with no test failing (a crash).
    Ran { tests: BTreeMap<String, TestResult>, problem: Option<String> },
    /// The code did not compile, or cargo failed before any test: its errors.
    DidNotCompile(String),
}

impl Report {
    pub fn failed(&self) -> Vec<&str> {
        let Report::Ran { tests, .. } = self else { return Vec::new() };
        let failed = tests.iter().filter(|(_, t)| t.outcome == Outcome::Failed);
        failed.map(|(name, _)| name.as_str()).collect()
    }

    /// Whether the code compiled, ran at least one test and failed none.
    pub fn passed(&self) -> bool {
        let Report::Ran { tests, problem: None } = self else { return false };
        tests.values().any(|t| t.outcome == Outcome::Passed) && self.failed().is_empty()
    }
}

/// `cargo` at the workbook's root, with the flags of `.cargo/config.toml`
/// (a `RUSTFLAGS` variable would replace them and rebuild everything).
pub fn command(workbook: &Workbook) -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(&workbook.root)
        .env("CARGO_TARGET_DIR", &workbook.target_dir)
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null());
    command
}

/// Runs `cargo test -p <package> --no-fail-fast`, supervised, and parses
/// what it printed. With `say_when_compiling`, a long compile gets a line of
/// explanation, so that a fresh clone's first run is not taken for a hang.
pub fn test(workbook: &Workbook, package: &str, say_when_compiling: bool) -> Result<Report> {
    let mut cargo = command(workbook);
    cargo.args(["test", "--no-fail-fast", "--package", package]);
    // Short failure messages: no backtraces, no colour codes.
    cargo.env("RUST_BACKTRACE", "0").env("CARGO_TERM_COLOR", "never");
    let (started, mut say_so) = (Instant::now(), say_when_compiling);
    let output = process::run_captured(&mut cargo, |line| {
        let compiling = line.trim_start().starts_with("Compiling ");
        if say_so && compiling && started.elapsed() > Duration::from_secs(5) {
            say_so = false;
            ui::note(
                "  (compiling; the first time takes a few minutes, later runs a second or two)",
            );
        }
    })
    .context("running cargo test")?;
    Ok(parse(&output.stdout, &output.stderr, output.success))
}

/// The workspace's `default-members`, by name.
pub fn default_members(workbook: &Workbook) -> Result<Vec<String>> {
    let mut cargo = command(workbook);
    cargo.args(["metadata", "--no-deps", "--format-version", "1"]);
    let output = process::run_captured(&mut cargo, |_| {})?;
    ensure!(output.success, "`cargo metadata` failed:\n{}", output.stderr.trim());
    let metadata: serde_json::Value =
        serde_json::from_str(&output.stdout).context("reading cargo metadata")?;
    let default = metadata["workspace_default_members"].as_array().context("no default members")?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    let members = packages.iter().filter(|package| default.contains(&package["id"]));
    Ok(members.filter_map(|package| package["name"].as_str().map(str::to_owned)).collect())
}

/// The variable and value a lab's binary needs outside cargo (as `cargo
/// run` sets them): the labs' dependencies are one dynamic library
/// (labs/support/dylib) in `<target>/debug/deps`, beside Rust's own.
pub fn library_path(workbook: &Workbook) -> (&'static str, std::ffi::OsString) {
    let variable = match std::env::consts::OS {
        "macos" => "DYLD_FALLBACK_LIBRARY_PATH",
        "windows" => "PATH",
        _ => "LD_LIBRARY_PATH",
    };
    let mut dirs = vec![workbook.target_dir.join("debug").join("deps")];
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir =
        Command::new(rustc).args(["--print", "target-libdir"]).current_dir(&workbook.root).output();
    if let Ok(output) = libdir {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    }
    dirs.extend(std::env::var_os(variable).iter().flat_map(std::env::split_paths));
    (variable, std::env::join_paths(dirs).unwrap_or_default())
}

/// An executable cargo built, by its target's name.
#[derive(Debug)]
pub struct Executable {
    pub name: String,
    pub path: PathBuf,
}

/// `cargo build <args>`, its messages shown; the executables it built.
pub fn build(workbook: &Workbook, args: &[&str]) -> Result<Vec<Executable>> {
    let mut cargo = command(workbook);
    cargo.arg("build").args(args).args(["--message-format", "json-render-diagnostics"]);
    cargo.stdout(Stdio::piped());
    let output = process::run_captured(&mut cargo, |line| eprintln!("{line}"))?;
    ensure!(output.success, "`cargo build {}` failed (see the errors above)", args.join(" "));
    let messages = output.stdout.lines().flat_map(serde_json::from_str::<serde_json::Value>);
    let artifacts = messages.filter(|message| message["reason"] == "compiler-artifact");
    let executable = |message: serde_json::Value| {
        let name = message["target"]["name"].as_str()?.to_owned();
        Some(Executable { name, path: PathBuf::from(message["executable"].as_str()?) })
    };
    Ok(artifacts.filter_map(executable).collect())
}

/// The arguments of a tool crate's binary (the classroom, the console
/// check), passed on as they are: its `--help` is its own.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct PassedOn {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `cargo run` of the binary named like `package` (a tool crate of its
/// own), at the root with `args`, supervised.
pub fn run_binary(
    workbook: &Workbook,
    package: &str,
    args: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
) -> Result<ExitCode> {
    let mut cargo = command(workbook);
    cargo.args(["run", "--package", package, "--bin", package, "--"]).args(args);
    let status = process::Supervised::spawn(&mut cargo).context("starting cargo")?.wait()?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Reads libtest's output (stdout) and cargo's messages (stderr).
pub fn parse(stdout: &str, stderr: &str, success: bool) -> Report {
    let ran_a_harness = stdout.lines().any(|line| {
        line.starts_with("running ") && (line.ends_with(" test") || line.ends_with(" tests"))
    });
    let mut tests: BTreeMap<_, _> = stdout.lines().filter_map(parse_result_line).collect();
    let compile_failed = stderr.contains("error: could not compile")
        || stderr.lines().any(|l| l.starts_with("error[E"));
    if compile_failed || (!success && !ran_a_harness) {
        return Report::DidNotCompile(cargo_errors(stderr));
    }
    for (name, message) in failure_sections(stdout) {
        if let Some(test) = tests.get_mut(&name) {
            test.message = Some(message);
        }
    }
    let any_failed = tests.values().any(|t| t.outcome == Outcome::Failed);
    let problem = (!success && !any_failed).then(|| cargo_errors(stderr));
    Report::Ran { tests, problem }
}

fn parse_result_line(line: &str) -> Option<(String, TestResult)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.split_once(" ... ")?;
    let outcome = match result.trim() {
        "ok" => Outcome::Passed,
        "FAILED" => Outcome::Failed,
        r if r == "ignored" || r.starts_with("ignored,") => Outcome::Ignored,
        _ => return None,
    };
    Some((name.trim().to_owned(), TestResult { outcome, message: None }))
}

/// The `---- name stdout ----` sections of the `failures:` block, without
/// the backtrace hint.
fn failure_sections(stdout: &str) -> Vec<(String, String)> {
    let mut sections = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    // A last `failures:` ends the last section.
    for line in stdout.lines().chain(["failures:"]) {
        let header = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----"));
        let block_ends = line == "failures:" || line.starts_with("test result:");
        if (header.is_some() || block_ends)
            && let Some((name, lines)) = current.take()
        {
            sections.push((name, lines.join("\n").trim().to_owned()));
        }
        if let Some(name) = header {
            current = Some((name.to_owned(), Vec::new()));
        } else if let Some((_, lines)) = current.as_mut()
            && !line.starts_with("note: run with `RUST_BACKTRACE=1`")
        {
            lines.push(line);
        }
    }
    sections
}

/// The error part of cargo's stderr: everything but the progress lines.
fn cargo_errors(stderr: &str) -> String {
    const PROGRESS: &str = "Compiling Checking Finished Running Doc-tests Blocking Locking \
                            Updating Downloading Downloaded Adding Fresh";
    let progress = |l: &&str| {
        PROGRESS.split_whitespace().any(|word| l.trim_start().split(' ').next() == Some(word))
    };
    let errors = stderr.lines().filter(|l| !progress(l)).collect::<Vec<_>>().join("\n");
    match errors.trim() {
        "" => "cargo failed and said nothing".into(),
        errors => errors.to_owned(),
    }
}
