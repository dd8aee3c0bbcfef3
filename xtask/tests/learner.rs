//! The learner's verbs (status, check, watch, hint, reset, solution,
//! console), run the way a learner runs them: the real `xtask` binary, in
//! the root of a workbook, with nothing but the current directory to find it.
//!
//! The workbook is the fixture of `fixture/` (two std-only labs, `00-demo`
//! and `01-echo`, that the tool has never heard of), fresh for each test in
//! a temporary folder and committed to git, so a test may change anything
//! and nothing is shared: each builds what it needs in its own `target/`,
//! in about a second a lab.
//!
//! Why these tests: they pin what a learner reads (the messages the book and
//! the hints refer to), that a lab's knowledge comes from its folder alone
//! (`lab.toml`, the crates, `examples/traffic.rs`), and that whatever the
//! xtask starts stops with it.

mod fixture;

use std::net::TcpListener;
use std::time::Duration;

use fixture::{Workbook, assert_nothing_left_running_in, free_port, run_in};

/// The learner's verbs, each with a phrase its `--help` must contain.
const HELP: &[(&str, &str)] = &[
    ("status", "not started, failing, passing"),
    ("check", "cargo test -p <lab>"),
    ("watch", "every second"),
    ("hint", "--all"),
    ("reset", "--yes"),
    ("restore", "solution --apply"),
    ("solution", "--apply"),
    ("book", "--build-only"),
    ("console", "--solution"),
    ("fetch", "offline"),
    ("join", "--code"),
    ("leave", "stops sending your labs"),
];

#[test]
fn every_verb_explains_itself_with_help() {
    let workbook = Workbook::new();
    for (verb, phrase) in HELP {
        let help = workbook.run(&[verb, "--help"]);
        assert!(help.success(), "`{verb} --help` failed:\n{help}");
        assert!(
            help.stdout.contains(phrase),
            "`cargo xtask {verb} --help` should mention {phrase:?}:\n{help}"
        );
    }
}

/// `cargo xtask --help` lists the learner's verbs and `dev`, and keeps the
/// maintainer's verbs out of the learner's way.
#[test]
fn the_help_lists_the_learners_verbs_and_dev_only() {
    let workbook = Workbook::new();
    let help = workbook.run(&["--help"]);
    assert!(help.success(), "`--help` failed:\n{help}");
    let listed = listed_commands(&help.stdout);
    for (verb, _) in HELP {
        assert!(
            listed.iter().any(|name| name == verb),
            "`cargo xtask --help` should list {verb:?} (it lists {listed:?}):\n{help}"
        );
    }
    assert!(
        listed.iter().any(|name| name == "dev"),
        "`cargo xtask --help` should list `dev` (it lists {listed:?}):\n{help}"
    );
    for hidden in ["verify", "capture-console"] {
        assert!(
            !listed.iter().any(|name| name == hidden),
            "`{hidden}` is a maintainer's verb (under `dev`), not in the learner's list \
             {listed:?}:\n{help}"
        );
    }
}

/// The command names of a clap help text: the first word of each line of
/// its `Commands:` section.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.trim_end().ends_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with(' ') && !line.trim().is_empty())
        .filter(|line| !line.starts_with("        ")) // a wrapped description
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// `join` says why a room cannot be joined, and keeps no membership;
/// `leave` outside a room says that nothing is sent.
#[test]
fn join_says_why_a_room_cannot_be_joined_and_leave_outside_one_is_harmless() {
    let workbook = Workbook::new();
    let join = |url: &str| workbook.run(&["join", url, "--code", "K7Q-42P", "--name", "Ada"]);
    let no_scheme = join("127.0.0.1:4000");
    assert!(!no_scheme.success() && no_scheme.stderr.contains("http://"), "{no_scheme}");
    let away = join(&format!("http://127.0.0.1:{}", free_port())); // nothing listens there
    assert!(!away.success() && away.stderr.contains("could not reach the room"), "{away}");
    assert!(!workbook.path(".workbook-classroom.toml").exists(), "joined nothing, kept a file");
    let leave = workbook.run(&["leave"]);
    assert!(leave.success() && leave.stdout.contains("not in a room"), "{leave}");
}

#[test]
fn an_unknown_lab_is_refused_with_the_list_of_labs() {
    let workbook = Workbook::new();
    for verb in ["check", "watch", "hint", "reset", "solution", "console"] {
        workbook.run(&[verb, "nope"]).assert_refused_unknown_lab("nope");
    }
}

/// Outside a workbook (no folder upward holds both `Cargo.toml` and
/// `labs/`), every verb says so instead of guessing.
#[test]
fn outside_the_workbook_every_verb_says_so() {
    let elsewhere = tempfile::tempdir().unwrap();
    let dir = elsewhere.path().canonicalize().unwrap();
    assert!(
        !dir.ancestors().any(|d| d.join("Cargo.toml").is_file() && d.join("labs").is_dir()),
        "the temporary folder {} is inside a workbook; set TMPDIR elsewhere to run this test",
        dir.display()
    );
    let verbs: &[&[&str]] = &[
        &[],
        &["status"],
        &["check", "demo"],
        &["watch"],
        &["hint", "demo"],
        &["reset", "demo", "--yes"],
        &["solution", "demo"],
        &["book", "--build-only"],
        &["console", "demo"],
        &["fetch"],
        &["dev", "verify"],
        &["dev", "capture-console"],
        &["verify"],
    ];
    for args in verbs {
        let ran = run_in(&dir, args, "");
        assert!(!ran.success(), "`{}` should fail outside a workbook:\n{ran}", ran.command);
        assert!(
            ran.stderr.contains("not inside the workbook")
                || ran.stdout.contains("not inside the workbook"),
            "`{}` should say it is not inside the workbook:\n{ran}",
            ran.command
        );
    }
}

#[test]
fn hints_are_revealed_one_at_a_time_and_remembered() {
    let workbook = Workbook::new();
    let first = workbook.run(&["hint", "demo"]);
    assert!(first.success(), "{first}");
    assert!(
        first.stdout.contains("Hint 1 of 3") && !first.stdout.contains("Hint 2 of 3"),
        "the first `hint` shows hint 1 only:\n{first}"
    );
    assert!(first.stdout.contains("2 more: run cargo xtask hint demo again"), "{first}");

    // By number, the same lab: the second hint, the first shown as seen.
    let second = workbook.run(&["hint", "0"]);
    assert!(
        second.stdout.contains("Hint 1 of 3 (seen)") && second.stdout.contains("Hint 2 of 3"),
        "the second `hint` shows hint 1 as seen, then hint 2:\n{second}"
    );
    assert!(!second.stdout.contains("Hint 3 of 3"), "{second}");

    let all = workbook.run(&["hint", "demo", "--all"]);
    assert!(all.stdout.contains("Hint 3 of 3"), "{all}");
    assert!(all.stdout.contains("That was the last hint"), "{all}");
    assert!(all.stdout.contains("cargo xtask solution demo"), "{all}");

    // Hints are remembered per lab: the other lab starts at its first.
    let other = workbook.run(&["hint", "echo"]);
    assert!(
        other.stdout.contains("Hint 1 of 2") && !other.stdout.contains("(seen)"),
        "lab 01's hints are its own:\n{other}"
    );

    let again = workbook.run(&["hint", "demo", "--again"]);
    assert!(
        again.stdout.contains("Hint 1 of 3") && !again.stdout.contains("(seen)"),
        "--again starts over:\n{again}"
    );
}

#[test]
fn reset_asks_first_then_restores_only_that_lab() {
    let workbook = Workbook::new();
    let starter = workbook.read("labs/00-demo/src/lib.rs");
    let other_lab = "labs/01-echo/src/lib.rs";
    workbook.write("labs/00-demo/src/lib.rs", "// my attempt\n");
    workbook.write("labs/00-demo/src/extra.rs", "// a file I added\n");
    std::fs::remove_file(workbook.path("labs/00-demo/tests/lab.rs")).unwrap();
    workbook.write(other_lab, "// work on another lab\n");

    let declined = workbook.run_with_input(&["reset", "demo"], "n\n");
    assert!(declined.success(), "{declined}");
    for phrase in [
        "undo your changes to labs/00-demo/src/lib.rs",
        "delete labs/00-demo/src/extra.rs",
        "bring back labs/00-demo/tests/lab.rs",
        "Nothing changed",
    ] {
        assert!(
            declined.stdout.contains(phrase),
            "`reset demo` should list what it would do ({phrase:?}) and, declined, do nothing:\n{declined}"
        );
    }
    assert_eq!(workbook.read("labs/00-demo/src/lib.rs"), "// my attempt\n");

    let accepted = workbook.run_with_input(&["reset", "0"], "y\n");
    assert!(accepted.success(), "{accepted}");
    assert!(accepted.stdout.contains("is the starter again"), "{accepted}");
    assert_eq!(workbook.read("labs/00-demo/src/lib.rs"), starter);
    assert!(!workbook.path("labs/00-demo/src/extra.rs").exists());
    assert!(workbook.path("labs/00-demo/tests/lab.rs").exists());
    assert_eq!(
        workbook.read(other_lab),
        "// work on another lab\n",
        "`reset demo` must not touch another lab"
    );

    let again = workbook.run(&["reset", "demo", "--yes"]);
    assert!(again.success(), "{again}");
    assert!(again.stdout.contains("already the committed starter"), "{again}");
}

#[test]
fn solution_shows_the_diff_with_a_warning_and_apply_catches_up() {
    let workbook = Workbook::new();
    let shown = workbook.run(&["solution", "demo"]);
    assert!(shown.success(), "{shown}");
    assert!(shown.stderr.contains("Spoiler ahead"), "a warning first:\n{shown}");
    let diff = &shown.stdout;
    assert!(
        diff.contains("--- labs/00-demo/src/lib.rs (starter)")
            && diff.contains("+++ solutions/00-demo/src/lib.rs (solution)")
            && diff.contains("\n-    String::from(\"Hello, world!\")")
            && diff.contains("\n+    format!(\"Hello, {name}!\")"),
        "`solution demo` shows the starter → solution diff of src/lib.rs:\n{shown}"
    );
    assert!(
        !diff.contains("src/main.rs"),
        "only files that differ are shown (main.rs is the same in both):\n{shown}"
    );
    assert!(
        !diff.contains('\u{1b}'),
        "no colour codes when the output is not a terminal:\n{shown}"
    );
    let coloured = workbook
        .xtask(&["solution", "demo"])
        .env("CLICOLOR_FORCE", "1")
        .write_stdin("")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&coloured.stdout).contains("\u{1b}["),
        "colour when asked for (CLICOLOR_FORCE=1):\n{}",
        String::from_utf8_lossy(&coloured.stdout)
    );

    // An untouched starter is replaced without a question.
    let solution = workbook.read("solutions/00-demo/src/lib.rs");
    let server = workbook.read("labs/00-demo/src/main.rs");
    let applied = workbook.run(&["solution", "0", "--apply"]);
    assert!(applied.success(), "{applied}");
    assert_eq!(workbook.read("labs/00-demo/src/lib.rs"), solution);

    // Work of the learner's is only replaced once they say so.
    workbook.write("labs/00-demo/src/lib.rs", "// my attempt\n");
    let declined = workbook.run_with_input(&["solution", "demo", "--apply"], "n\n");
    assert!(
        declined.stdout.contains("replaces your version of"),
        "--apply asks before replacing the learner's work:\n{declined}"
    );
    assert_eq!(workbook.read("labs/00-demo/src/lib.rs"), "// my attempt\n");
    let forced = workbook.run(&["solution", "demo", "--apply", "--yes"]);
    assert!(forced.success(), "{forced}");
    assert_eq!(workbook.read("labs/00-demo/src/lib.rs"), solution);
    assert_eq!(
        workbook.read("labs/00-demo/src/main.rs"),
        server,
        "the files the solution leaves alone are as they were"
    );
}

/// The learner's loop on lab 00: status says where to start, check and
/// watch show the failure, `h` and Enter show a hint, a fix makes watch pass
/// and name lab 01, Enter moves on to it, SIGTERM stops watch and everything
/// it started, and status then counts lab 00 as done without testing it again.
#[test]
fn a_learner_walks_through_lab_00_with_status_check_and_watch() {
    let workbook = Workbook::new();

    let status = workbook.run(&[]);
    assert!(status.success(), "{status}");
    assert!(
        status.stdout.contains("00  demo") && status.stdout.contains("not started"),
        "{status}"
    );
    assert!(status.stdout.contains("0 of 2 labs pass"), "{status}");
    assert!(status.stdout.contains("cargo xtask watch demo"), "{status}");

    let check = workbook.run(&["check", "demo"]);
    assert_eq!(check.code(), Some(1), "a failing check exits with 1:\n{check}");
    for phrase in [
        "✓ greets_the_world",
        "✗ greets_by_name",
        "Is the handler using the name",
        "book/src/00-demo.md",
        "cargo xtask hint demo",
    ] {
        assert!(
            check.stdout.contains(phrase),
            "`check demo` on the starter should show {phrase:?}:\n{check}"
        );
    }

    let mut watch = workbook.spawn(&["watch"]);
    watch.wait_for("Watching labs/00-demo", fixture::LIMIT);
    watch.type_line("h");
    watch.wait_for("Hint 1", Duration::from_secs(10));
    workbook.fix("00-demo");
    watch.wait_for("Lab 00 demo passes", fixture::LIMIT);
    watch.wait_for("Next: lab 01 echo", Duration::from_secs(10));
    watch.wait_for("Enter: watch lab 01", Duration::from_secs(10));
    watch.type_line("");
    watch.wait_for("Checking lab 01 echo", Duration::from_secs(10));
    // Stopped while it checks lab 01: everything it started stops too.
    // (SIGTERM is Unix's; on Windows dropping `watch` kills it.)
    if cfg!(unix) {
        let stopped = watch.stop();
        assert_eq!(
            stopped.code(),
            Some(130),
            "stopped by a signal, watch exits with 130 ({stopped}). Its output:\n{}",
            watch.transcript
        );
        assert_nothing_left_running_in(workbook.root());
    }
    drop(watch);

    let status = workbook.run(&["status"]);
    assert!(status.stdout.contains("1 of 2 labs pass"), "{status}");
    assert!(
        status.stdout.contains("Start lab 01 echo")
            && status.stdout.contains("cargo xtask watch echo"),
        "{status}"
    );
    assert!(
        !status.stdout.contains("testing"),
        "status should remember lab 00's result, not test it again:\n{status}"
    );

    let check = workbook.run(&["check", "0"]);
    assert!(check.success(), "{check}");
    assert!(check.stdout.contains("Lab 00 demo passes"), "{check}");
    assert!(check.stdout.contains("Next: lab 01 echo"), "{check}");
}

/// `console` builds the lab and its traffic (`examples/traffic.rs`, a file
/// of the lab's, not of the tool's), serves it with the console on, shows
/// the traffic's reports, and stops everything when its time is up.
#[test]
fn console_serves_a_lab_drives_its_traffic_and_stops_it() {
    let workbook = Workbook::new();
    for (flag, answer) in [(None, "Hello, world!"), (Some("--solution"), "Hello, Ferris!")] {
        let console_port = free_port();
        let port = console_port.to_string();
        let mut args =
            vec!["console", "demo", "--port", "0", "--console-port", &port, "--duration", "2"];
        args.extend(flag);
        let ran = workbook.run(&args);
        assert!(ran.success(), "{ran}");
        assert!(
            ran.stdout.contains(&format!("tokio-console http://127.0.0.1:{console_port}")),
            "console says where tokio-console connects:\n{ran}"
        );
        let traffic = format!("traffic | GET /hello?name=Ferris answered \"{answer}\"");
        assert!(
            ran.stdout.contains(&traffic),
            "the traffic's reports are shown as `traffic | <line>` ({traffic:?}):\n{ran}"
        );
        assert!(ran.stdout.contains("the server stopped"), "{ran}");
        assert!(
            TcpListener::bind(("127.0.0.1", console_port)).is_ok(),
            "the console port {console_port} should be free again:\n{ran}"
        );
        assert_nothing_left_running_in(workbook.root());
    }
}

/// A server thread that panics before the test's assertion (a deliberate
/// crash, a worker that died) must not hide the test's own message: the
/// learner reads the test's first, the other thread's after.
#[test]
fn the_first_failure_shown_is_the_tests_own_panic() {
    let workbook = Workbook::new();
    let check = workbook.run(&["check", "echo"]);
    assert_eq!(check.code(), Some(1), "{check}");
    let says = check.stdout.split("The first failure says:").nth(1).unwrap_or_default();
    let first_line = says.trim_start().lines().next().unwrap_or_default();
    assert!(
        first_line.contains("echo of \"  two spaces  \" answered"),
        "the test's own message comes first, not the server thread's:\n{check}"
    );
    assert!(says.contains("(at labs/01-echo/tests/lab.rs:"), "{check}");
    assert!(
        says.contains("1 panic(s) in other threads")
            && says.contains("the server's worker crashed"),
        "the other thread's panic is named after it:\n{check}"
    );
}

/// A check with hints of its own (`[hints_for]`) gets them, in `hint` and in
/// `check`'s "Stuck?" line; `hint` without a lab means the current one.
#[test]
fn hints_follow_the_first_failing_check_and_the_current_lab() {
    let workbook = Workbook::new();
    let check = workbook.run(&["check", "echo"]);
    assert!(
        check.stdout.contains("cargo xtask hint echo shows hint 1 of 2 (for `keeps_the_spaces`)"),
        "{check}"
    );
    let hint = workbook.run(&["hint", "echo"]);
    assert!(
        hint.stdout.contains("for the failing check `keeps_the_spaces`")
            && hint.stdout.contains("Hint 1 of 2")
            && hint.stdout.contains("Spaces at the ends"),
        "{hint}"
    );
    let current = workbook.run(&["hint"]);
    assert!(
        current.success() && current.stdout.contains("Hints for lab 00 demo"),
        "without a lab, the first lab that does not pass:\n{current}"
    );
    let progress = workbook.read(".workbook-progress.toml");
    assert!(progress.contains("keeps_the_spaces = 1"), "{progress}");
}

/// `solution --apply` and `reset` save what they replace; `restore` brings
/// it back, and a second `restore` undoes the first.
#[test]
fn apply_and_reset_save_your_work_and_restore_brings_it_back() {
    let workbook = Workbook::new();
    let attempt = "// my attempt\npub fn greet(name: &str) -> String { name.to_owned() }\n";
    let lib = "labs/00-demo/src/lib.rs";
    workbook.write(lib, attempt);
    let applied = workbook.run(&["solution", "demo", "--apply", "--yes"]);
    assert!(applied.success(), "{applied}");
    assert!(
        applied.stdout.contains("saved in target/workbook/backups/demo/")
            && applied.stdout.contains("cargo xtask restore demo"),
        "--apply says where your files went:\n{applied}"
    );
    assert_eq!(workbook.read(lib), workbook.read("solutions/00-demo/src/lib.rs"));

    let restored = workbook.run(&["restore", "demo"]);
    assert!(restored.success(), "{restored}");
    assert_eq!(workbook.read(lib), attempt, "restore brings the attempt back:\n{restored}");

    let reset = workbook.run(&["reset", "demo", "--yes"]);
    assert!(reset.stdout.contains("saved in target/workbook/backups/demo/"), "{reset}");
    assert_ne!(workbook.read(lib), attempt);
    let restored = workbook.run(&["restore", "0"]);
    assert!(restored.success(), "{restored}");
    assert_eq!(workbook.read(lib), attempt, "and after a reset too:\n{restored}");

    let nothing = Workbook::new().run(&["restore", "echo"]);
    assert!(!nothing.success() && nothing.stderr.contains("there is no saved copy"), "{nothing}");
}

/// Edited tests prove nothing: a lab that passes them is never shown with a
/// plain ✓, and the learner learns how to get the shipped tests back.
#[test]
fn a_pass_with_edited_tests_is_never_a_plain_pass() {
    let workbook = Workbook::new();
    let tests = "labs/00-demo/tests/lab.rs";
    workbook.replace(tests, "got == \"Hello, Ferris!\"", "got == \"Hello, world!\"");
    let check = workbook.run(&["check", "demo"]);
    assert!(
        check.stdout.contains("but with edited tests")
            && check.stdout.contains(&format!("git checkout -- {tests}"))
            && !check.stdout.contains("Well done"),
        "{check}"
    );
    let status = workbook.run(&["status"]);
    assert!(status.stdout.contains("! passing, with edited tests"), "{status}");
    assert!(!status.stdout.contains("✓ passing"), "{status}");
}

/// After a lab passes, `watch` goes on to the next lab in order, never back
/// to one the learner skipped; it names the skipped one instead.
#[test]
fn watch_never_goes_back_to_a_skipped_lab() {
    let workbook = Workbook::new();
    workbook.fix("01-echo");
    let watch = workbook.run(&["watch", "echo"]);
    assert!(watch.success(), "{watch}");
    assert!(
        watch.stdout.contains("Lab 01 echo passes")
            && watch.stdout.contains("Still open before it: lab 00 demo (cargo xtask watch demo)")
            && !watch.stdout.contains("Next: lab 00"),
        "{watch}"
    );
}

/// The tool finds the workbook from any folder inside it, and warns when
/// builds go to a target directory outside it (cargo#12516).
#[test]
fn the_workbook_is_found_from_inside_and_a_shared_target_dir_is_warned_about() {
    let workbook = Workbook::new();
    let deep = run_in(&workbook.path("labs/01-echo/src"), &["hint", "echo"], "");
    assert!(deep.success() && deep.stdout.contains("Hints for lab 01 echo"), "{deep}");

    let elsewhere = tempfile::tempdir().unwrap();
    let shared = workbook
        .xtask(&["hint", "demo"])
        .env("CARGO_TARGET_DIR", elsewhere.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(
        stderr.contains("CARGO_TARGET_DIR points outside this workbook")
            && stderr.contains("cargo#12516"),
        "{stderr}"
    );
}
