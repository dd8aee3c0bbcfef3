//! The learner's verbs (status, check, watch, hint, reset, solution, console),
//! run the way a learner runs them.
//!
//! Every test that changes something works on its own copy of the workbook
//! (labs 00 and 01, the support crate, the workspace files) in
//! `target/xtask-tests/<test>`, made a git repository with one commit: the
//! starter. The xtask is pointed at it with `WORKBOOK_ROOT`, so your own labs
//! are never touched. Copies build with the real target directory as cargo's
//! build directory, so no dependency compiles twice; their packages get a
//! version tag of their own, so they never share a compiled unit with your
//! labs (see `xtask/src/scratch.rs` for why that matters).
//!
//! These tests run inside `cargo xtask verify`'s first check, so they stay
//! quick: only the walk-through and the console test compile anything (lab
//! 00, the smallest), and only once per run.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;

/// The repository this test belongs to.
fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where compiled dependencies live: the build directory of the `cargo
/// test` running us (inside `verify`, the real target directory).
fn build_dir() -> PathBuf {
    for variable in ["CARGO_BUILD_BUILD_DIR", "CARGO_TARGET_DIR"] {
        if let Some(dir) = std::env::var_os(variable) {
            let dir = PathBuf::from(dir);
            return if dir.is_absolute() {
                dir
            } else {
                repository().join(dir)
            };
        }
    }
    repository().join("target")
}

/// A throwaway copy of the workbook with labs 00 and 01, committed to git.
struct Workbook {
    root: PathBuf,
    /// The copy's own target directory (for its binaries).
    target: PathBuf,
}

impl Workbook {
    /// A fresh copy named after the test (the same path on every run, so
    /// the support crate, whose files keep their timestamps, stays compiled).
    fn new(name: &str) -> Workbook {
        let base = build_dir().join("xtask-tests");
        let root = base.join(name);
        let target = base.join(format!("{name}-target"));
        if root.exists() {
            fs::remove_dir_all(&root).unwrap();
        }
        let source = repository();
        for file in ["Cargo.toml", "Cargo.lock", ".gitignore"] {
            copy(&source.join(file), &root.join(file), true);
        }
        // Cargo also reads the config of every parent directory, concatenating
        // arrays: a copy inside the repository (under target/) inherits the
        // workspace's config, and a second copy of it would double the rustflags
        // (and so compile every dependency again).
        // (The source may itself be such a copy, without a config of its own.)
        let config = source
            .ancestors()
            .map(|dir| dir.join(".cargo/config.toml"))
            .find(|config| config.is_file())
            .expect("the workbook's .cargo/config.toml");
        let config_text = fs::read(&config).unwrap();
        let inherited = root.ancestors().skip(1).any(|parent| {
            fs::read(parent.join(".cargo/config.toml")).is_ok_and(|c| c == config_text)
        });
        if !inherited {
            copy(&config, &root.join(".cargo/config.toml"), true);
        }
        copy_dir(
            &source.join("labs/support"),
            &root.join("labs/support"),
            true,
        );
        copy_dir(&source.join("xtask"), &root.join("xtask"), true);
        for lab in ["00-hello", "01-blocking"] {
            // Fresh timestamps: a test changes these files, and cargo must
            // never take an older copy's build for this one.
            copy_dir(
                &source.join("labs").join(lab),
                &root.join("labs").join(lab),
                false,
            );
            copy_dir(
                &source.join("solutions").join(lab),
                &root.join("solutions").join(lab),
                false,
            );
            let chapter = format!("book/src/{lab}.md");
            copy(&source.join(&chapter), &root.join(&chapter), false);
        }
        // Units of our own: tag every package's version (not the workspace's),
        // whatever it is already (inside `verify`, it carries verify's tag).
        let tag = format!("xtask-test-{name}");
        for manifest in ["labs/support", "labs/00-hello", "labs/01-blocking", "xtask"] {
            let path = root.join(manifest).join("Cargo.toml");
            let text = fs::read_to_string(&path).unwrap();
            fs::write(&path, tag_package_version(&text, &tag)).unwrap();
        }
        git(&root, &["init", "-q"]);
        git(&root, &["add", "-A"]);
        git(&root, &["commit", "-q", "-m", "the starter"]);
        Workbook { root, target }
    }

    /// `cargo xtask <args>` in this copy.
    fn xtask(&self, args: &[&str]) -> assert_cmd::Command {
        let mut command = cargo_bin_cmd!("xtask");
        command.args(args);
        self.configure(command.current_dir(&self.root));
        command
    }

    /// The same, as a plain child process (for `watch`, which runs until stopped).
    fn spawn_xtask(&self, args: &[&str]) -> std::process::Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self.configure_std(&mut command);
        command.spawn().unwrap()
    }

    fn configure(&self, command: &mut assert_cmd::Command) {
        command
            .env("WORKBOOK_ROOT", &self.root)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("CARGO_BUILD_BUILD_DIR", build_dir())
            .env_remove("CLICOLOR_FORCE")
            .env_remove("RUSTFLAGS");
    }

    fn configure_std(&self, command: &mut Command) {
        command
            .env("WORKBOOK_ROOT", &self.root)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("CARGO_BUILD_BUILD_DIR", build_dir())
            .env_remove("CLICOLOR_FORCE")
            .env_remove("RUSTFLAGS");
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap()
    }

    fn write(&self, relative: &str, contents: &str) {
        fs::write(self.path(relative), contents).unwrap();
    }

    /// Replaces lab 00's starter with its solution, as a learner's fix would.
    fn fix_hello(&self) {
        let solution = self.read("solutions/00-hello/src/lib.rs");
        self.write("labs/00-hello/src/lib.rs", &solution);
    }
}

/// The manifest with `-<tag>` (or `.<tag>`) appended to its `[package]`
/// version, as `xtask/src/scratch.rs` does for verify's trees.
fn tag_package_version(manifest: &str, tag: &str) -> String {
    let mut in_package = false;
    let mut tagged = String::new();
    for line in manifest.split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            in_package = line.trim() == "[package]";
        }
        let version = line
            .strip_prefix("version = \"")
            .and_then(|rest| rest.trim_end().strip_suffix('"'));
        match version.filter(|_| in_package) {
            Some(version) => {
                let separator = if version.contains('-') { '.' } else { '-' };
                tagged.push_str(&format!("version = \"{version}{separator}{tag}\"\n"));
            }
            None => tagged.push_str(line),
        }
    }
    assert!(
        tagged.contains(tag),
        "no [package] version to tag in:\n{manifest}"
    );
    tagged
}

fn copy(from: &Path, to: &Path, keep_timestamp: bool) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    if keep_timestamp {
        let modified = fs::metadata(from).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(to)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path, keep_timestamps: bool) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name), keep_timestamps);
        } else {
            copy(&entry.path(), &to.join(&name), keep_timestamps);
        }
    }
}

fn git(root: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(root)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "git {args:?} failed in {}",
        root.display()
    );
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The lines a child prints, as they come.
fn lines_of(child: &mut std::process::Child) -> Receiver<String> {
    let (sender, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for pipe in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr),
    ] {
        let sender = sender.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
    }
    lines
}

/// Reads `lines` until one contains `wanted`, within `limit`; everything
/// read so far is added to `transcript` (shown if this fails).
fn wait_for(lines: &Receiver<String>, wanted: &str, limit: Duration, transcript: &mut String) {
    let started = Instant::now();
    while let Some(left) = limit.checked_sub(started.elapsed()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                transcript.push_str(&line);
                transcript.push('\n');
                if line.contains(wanted) {
                    return;
                }
            }
            Err(_) => break,
        }
    }
    panic!("waited {limit:?} for a line with {wanted:?}; the output so far:\n{transcript}");
}

/// How long a step that compiles lab 00 may take on a busy machine.
const COMPILING: Duration = Duration::from_secs(240);

#[test]
fn every_verb_explains_itself_with_help() {
    for (verb, phrase) in [
        ("status", "not started, failing, passing"),
        ("check", "cargo test -p <lab>"),
        ("watch", "every second"),
        ("hint", "--all"),
        ("reset", "--yes"),
        ("solution", "--apply"),
        ("fetch", "offline"),
        ("console", "--solution"),
        ("capture-console", "tmux"),
    ] {
        let output = cargo_bin_cmd!("xtask")
            .args([verb, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{verb} --help failed");
        let help = stdout(&output);
        assert!(
            help.contains(phrase),
            "`cargo xtask {verb} --help` should mention {phrase:?}:\n{help}"
        );
    }
}

#[test]
fn an_unknown_lab_is_refused_with_the_list_of_labs() {
    let workbook = Workbook::new("unknown-lab");
    for verb in ["check", "watch", "hint", "reset", "solution", "console"] {
        let output = workbook.xtask(&[verb, "nope"]).output().unwrap();
        assert!(!output.status.success(), "{verb} nope should fail");
        let error = stderr(&output);
        assert!(
            error.contains("there is no lab named \"nope\"")
                && error.contains("00 hello")
                && error.contains("01 blocking"),
            "`{verb} nope` should list the labs, got:\n{error}"
        );
    }
}

#[test]
fn hints_are_revealed_one_at_a_time_and_remembered() {
    let workbook = Workbook::new("hints");
    let first = workbook.xtask(&["hint", "hello"]).output().unwrap();
    let text = stdout(&first);
    assert!(
        text.contains("Hint 1 of 3") && !text.contains("Hint 2 of 3"),
        "{text}"
    );
    assert!(
        text.contains("2 more: run cargo xtask hint hello again"),
        "{text}"
    );

    // By number, the same lab: the second hint, the first shown as seen.
    let second = stdout(&workbook.xtask(&["hint", "0"]).output().unwrap());
    assert!(
        second.contains("Hint 1 of 3 (seen)") && second.contains("Hint 2 of 3"),
        "{second}"
    );
    assert!(!second.contains("Hint 3 of 3"), "{second}");

    let all = stdout(
        &workbook
            .xtask(&["hint", "hello", "--all"])
            .output()
            .unwrap(),
    );
    assert!(all.contains("Hint 3 of 3"), "{all}");
    assert!(all.contains("That was the last hint"), "{all}");
    assert!(all.contains("cargo xtask solution hello"), "{all}");

    let progress = workbook.read(".workbook-progress.toml");
    assert!(
        progress.contains("[labs.hello]\nhints_seen = 3"),
        "{progress}"
    );

    let again = stdout(
        &workbook
            .xtask(&["hint", "hello", "--again"])
            .output()
            .unwrap(),
    );
    assert!(
        again.contains("Hint 1 of 3") && !again.contains("(seen)"),
        "{again}"
    );
}

#[test]
fn reset_asks_first_then_restores_only_that_lab() {
    let workbook = Workbook::new("reset");
    let starter = workbook.read("labs/00-hello/src/lib.rs");
    let other_lab = "labs/01-blocking/src/lib.rs";
    workbook.write("labs/00-hello/src/lib.rs", "// my attempt\n");
    workbook.write("labs/00-hello/src/extra.rs", "// a file I added\n");
    fs::remove_file(workbook.path("labs/00-hello/tests/lab.rs")).unwrap();
    workbook.write(other_lab, "// work on another lab\n");

    let declined = workbook
        .xtask(&["reset", "hello"])
        .write_stdin("n\n")
        .output()
        .unwrap();
    assert!(declined.status.success());
    let text = stdout(&declined);
    assert!(
        text.contains("undo your changes to labs/00-hello/src/lib.rs")
            && text.contains("delete labs/00-hello/src/extra.rs")
            && text.contains("bring back labs/00-hello/tests/lab.rs")
            && text.contains("Nothing changed"),
        "{text}"
    );
    assert_eq!(workbook.read("labs/00-hello/src/lib.rs"), "// my attempt\n");

    let accepted = workbook
        .xtask(&["reset", "0"])
        .write_stdin("y\n")
        .output()
        .unwrap();
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    assert!(stdout(&accepted).contains("is the starter again"));
    assert_eq!(workbook.read("labs/00-hello/src/lib.rs"), starter);
    assert!(!workbook.path("labs/00-hello/src/extra.rs").exists());
    assert!(workbook.path("labs/00-hello/tests/lab.rs").exists());
    assert_eq!(
        workbook.read(other_lab),
        "// work on another lab\n",
        "reset hello must not touch another lab"
    );

    let again = workbook
        .xtask(&["reset", "hello", "--yes"])
        .output()
        .unwrap();
    assert!(stdout(&again).contains("already the committed starter"));
}

#[test]
fn solution_shows_the_diff_with_a_warning_and_apply_catches_up() {
    let workbook = Workbook::new("solution");
    let shown = workbook.xtask(&["solution", "hello"]).output().unwrap();
    assert!(shown.status.success());
    assert!(
        stderr(&shown).contains("Spoiler ahead"),
        "{}",
        stderr(&shown)
    );
    let diff = stdout(&shown);
    assert!(
        diff.contains("--- labs/00-hello/src/lib.rs (starter)")
            && diff.contains("+++ solutions/00-hello/src/lib.rs (solution)")
            && diff.contains("\n-    \"Hello, world!\".to_string()"),
        "{diff}"
    );
    assert!(
        !diff.contains('\u{1b}'),
        "no colour codes when the output is not a terminal:\n{diff}"
    );
    let coloured = workbook
        .xtask(&["solution", "hello"])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(
        stdout(&coloured).contains("\u{1b}["),
        "colour when asked for"
    );

    // An untouched starter is replaced without a question.
    let solution = workbook.read("solutions/00-hello/src/lib.rs");
    let applied = workbook
        .xtask(&["solution", "0", "--apply"])
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", stderr(&applied));
    assert_eq!(workbook.read("labs/00-hello/src/lib.rs"), solution);

    // Work of the learner's is only replaced once they say so.
    workbook.write("labs/00-hello/src/lib.rs", "// my attempt\n");
    let declined = workbook
        .xtask(&["solution", "hello", "--apply"])
        .write_stdin("n\n")
        .output()
        .unwrap();
    assert!(stdout(&declined).contains("replaces your version of"));
    assert_eq!(workbook.read("labs/00-hello/src/lib.rs"), "// my attempt\n");
    let forced = workbook
        .xtask(&["solution", "hello", "--apply", "--yes"])
        .output()
        .unwrap();
    assert!(forced.status.success());
    assert_eq!(workbook.read("labs/00-hello/src/lib.rs"), solution);
}

/// The learner's loop on lab 00: status says where to start, check and
/// watch show the failure, a fix makes watch pass and move on to lab 01,
/// and status then counts lab 00 as done without testing it again.
#[test]
fn a_learner_walks_through_lab_00_with_status_watch_and_check() {
    let workbook = Workbook::new("walkthrough");

    let status = workbook.xtask(&[]).output().unwrap();
    assert!(status.status.success(), "{}", stderr(&status));
    let text = stdout(&status);
    assert!(
        text.contains("00  hello") && text.contains("not started"),
        "{text}"
    );
    assert!(text.contains("0 of 2 labs pass"), "{text}");
    assert!(text.contains("cargo xtask watch hello"), "{text}");

    let check = workbook
        .xtask(&["check", "hello"])
        .timeout(COMPILING)
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1), "a failing check exits with 1");
    let text = stdout(&check);
    assert!(
        text.contains("✓ hello_greets_the_world")
            && text.contains("✗ hello_greets_by_name")
            && text.contains("Is the handler using the `name`")
            && text.contains("book/src/00-hello.md")
            && text.contains("cargo xtask hint hello"),
        "{text}"
    );

    let mut watch = workbook.spawn_xtask(&["watch"]);
    let lines = lines_of(&mut watch);
    let mut transcript = String::new();
    wait_for(&lines, "Watching labs/00-hello", COMPILING, &mut transcript);
    workbook.fix_hello();
    wait_for(&lines, "Lab 00 hello passes", COMPILING, &mut transcript);
    wait_for(
        &lines,
        "Moving on to lab 01 blocking",
        Duration::from_secs(10),
        &mut transcript,
    );
    wait_for(
        &lines,
        "Checking lab 01 blocking",
        Duration::from_secs(10),
        &mut transcript,
    );
    // Stopped while it runs cargo: everything it started stops too.
    stop(&mut watch);
    assert_nothing_left_running_in(&workbook.root);

    let status = stdout(&workbook.xtask(&["status"]).output().unwrap());
    assert!(status.contains("1 of 2 labs pass"), "{status}");
    assert!(
        status.contains("Start lab 01 blocking") && status.contains("cargo xtask watch blocking"),
        "{status}"
    );
    assert!(
        !status.contains("testing"),
        "status should remember lab 00's result, not test it again:\n{status}"
    );

    let check = workbook
        .xtask(&["check", "0"])
        .timeout(COMPILING)
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stdout(&check));
    let text = stdout(&check);
    assert!(text.contains("Lab 00 hello passes"), "{text}");
    assert!(text.contains("Next: lab 01 blocking"), "{text}");
}

/// Sends SIGTERM and checks that the xtask exits promptly, leaving no
/// process that works in the copy behind.
#[cfg(unix)]
fn stop(child: &mut std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(130), "stopped by a signal: exit 130");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the xtask did not stop within 10 s of SIGTERM"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Fails if a live process still works in `dir` a few seconds from now
/// (cargo, rustc, a test binary...).
#[cfg(target_os = "linux")]
fn assert_nothing_left_running_in(dir: &Path) {
    let started = Instant::now();
    loop {
        let left: Vec<String> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter(|entry| {
                // Zombies have no working directory any more.
                fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
            })
            .map(|entry| {
                let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running in {} after the xtask stopped:\n{}",
            dir.display(),
            left.join("\n")
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(not(target_os = "linux"))]
fn assert_nothing_left_running_in(_dir: &Path) {}

#[cfg(not(unix))]
fn stop(child: &mut std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `console` builds the lab, serves it with the console on, says how to
/// connect, and stops the server when its time is up.
#[test]
fn console_serves_a_lab_with_tokio_console_and_stops_it() {
    let workbook = Workbook::new("console");
    let console_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = workbook
        .xtask(&[
            "console",
            "hello",
            "--port",
            "0",
            "--console-port",
            &console_port.to_string(),
            "--duration",
            "2",
        ])
        .timeout(COMPILING)
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}\n{}", stderr(&output));
    assert!(
        text.contains(&format!("tokio-console http://127.0.0.1:{console_port}")),
        "{text}"
    );
    assert!(
        text.contains("GET /hello?name=Ferris answered \"Hello, world!\""),
        "the traffic should reach the starter:\n{text}"
    );
    assert!(text.contains("the server stopped cleanly"), "{text}");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", console_port)).is_ok(),
        "the console port should be free again"
    );
}
