//! Tests of the tool's library, through its public API: reading libtest's
//! output, loading labs, the progress file, supervised children. (The verbs
//! are tested as a user runs them, in `learner.rs` and `maintainer.rs`.)

mod libtest_output {
    use std::collections::BTreeMap;

    use xtask::cargo::*;

    const TWO_FAILURES: &str = "
running 4 tests
test hello_greets_the_world ... ok
test slow::is_skipped ... ignored, too slow for CI
test hello_greets_by_name ... FAILED
test counts_to_ten ... FAILED

failures:

---- hello_greets_by_name stdout ----

thread 'hello_greets_by_name' panicked at labs/00-hello/tests/lab.rs:25:5:
assertion `left == right` failed: GET /hello?name=Ferris answered \"Hello, world!\". Is the handler using the `name` from the query?
  left: \"Hello, world!\"
 right: \"Hello, Ferris!\"
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- counts_to_ten stdout ----
thread 'counts_to_ten' panicked at src/lib.rs:1:1:
counted to 9

failures:
    counts_to_ten
    hello_greets_by_name

test result: FAILED. 1 passed; 2 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    #[test]
    fn each_test_gets_its_outcome() {
        let Report::Ran { tests, problem } =
            parse(TWO_FAILURES, "error: test failed, to rerun pass `--test lab`", false)
        else {
            panic!("the tests ran")
        };
        assert_eq!(tests.len(), 4);
        assert_eq!(tests["hello_greets_the_world"].outcome, Outcome::Passed);
        assert_eq!(tests["slow::is_skipped"].outcome, Outcome::Ignored);
        assert_eq!(tests["hello_greets_by_name"].outcome, Outcome::Failed);
        assert_eq!(tests["counts_to_ten"].outcome, Outcome::Failed);
        assert_eq!(problem, None, "failing tests explain cargo's failure");
    }

    #[test]
    fn a_failed_test_gets_its_message_without_the_backtrace_note() {
        let Report::Ran { tests, .. } = parse(TWO_FAILURES, "", false) else {
            panic!("the tests ran")
        };
        let message = tests["hello_greets_by_name"].message.as_deref().unwrap();
        assert!(message.starts_with("thread 'hello_greets_by_name' panicked"), "{message}");
        assert!(message.contains("Is the handler using the `name`"), "{message}");
        assert!(message.ends_with("right: \"Hello, Ferris!\""), "{message}");
        assert!(!message.contains("RUST_BACKTRACE"), "{message}");
        let message = tests["counts_to_ten"].message.as_deref().unwrap();
        assert!(message.ends_with("counted to 9"), "{message}");
        assert_eq!(tests["hello_greets_the_world"].message, None);
    }

    #[test]
    fn results_of_several_test_binaries_are_merged() {
        let stdout = "
running 1 test
test a ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s


running 1 test
test b ... ok

test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let report = parse(stdout, "   Compiling x v0.1.0\n     Running tests/lab.rs\n", true);
        assert!(report.failed().is_empty());
        let Report::Ran { tests, problem } = report else { panic!("the tests ran") };
        assert_eq!(tests.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(problem, None);
    }

    #[test]
    fn a_crashed_test_binary_is_a_problem_even_if_no_test_failed() {
        let stdout = "\nrunning 2 tests\ntest a ... ok\n";
        let stderr = "error: test failed, to rerun pass `--test lab`\n\nCaused by:\n  process didn't exit successfully: `lab-123` (signal: 6, SIGABRT: process abort signal)\n";
        let Report::Ran { problem, .. } = parse(stdout, stderr, false) else {
            panic!("the tests ran")
        };
        assert!(problem.unwrap().contains("SIGABRT"));
    }

    #[test]
    fn a_compile_error_is_told_apart_from_failing_tests() {
        let stderr = "   Compiling hello v0.1.0 (/w/labs/00-hello)
error[E0425]: cannot find value `nme` in this scope
 --> labs/00-hello/src/lib.rs:30:12
  |
30 |     match nme {
  |           ^^^ help: a local variable with a similar name exists: `name`

For more information about this error, try `rustc --explain E0425`.
error: could not compile `hello` (lib) due to 1 previous error
";
        let Report::DidNotCompile(errors) = parse("", stderr, false) else {
            panic!("a compile error is not a test run")
        };
        assert!(errors.starts_with("error[E0425]: cannot find value `nme`"), "{errors}");
        assert!(!errors.contains("Compiling"), "{errors}");
    }

    #[test]
    fn a_run_with_no_tests_is_an_empty_run() {
        let stdout = "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let report = parse(stdout, "   Finished `test` profile", true);
        let expected = Report::Ran { tests: BTreeMap::new(), problem: None };
        assert_eq!(report, expected);
    }
}

mod workbook {
    use std::fs;

    use xtask::workbook::*;

    /// A throwaway workbook with the given labs: (folder, lab.toml, package).
    fn workbook(labs: &[(&str, &str, &str)]) -> (tempfile::TempDir, Workbook) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("labs/support")).unwrap();
        fs::create_dir_all(root.join("book/src")).unwrap();
        for (folder, lab_toml, package) in labs {
            let lab = root.join("labs").join(folder);
            fs::create_dir_all(&lab).unwrap();
            fs::write(lab.join("lab.toml"), lab_toml).unwrap();
            fs::write(lab.join("Cargo.toml"), format!("[package]\nname = \"{package}\"\n"))
                .unwrap();
            fs::write(root.join("book/src").join(format!("{folder}.md")), "# x").unwrap();
        }
        let workbook = Workbook::at(root.to_path_buf());
        (dir, workbook)
    }

    const LAB_TOML: &str = "title = \"T\"\nminutes = 30\nhints = [\"one\", \"two\"]\n\
                            [fails]\nsome_test = \"a phrase\"\n[console]\ntraffic = \"GETs\"\n";

    fn problems(workbook: &Workbook) -> String {
        let (_, broken) = workbook.labs().unwrap();
        broken.iter().map(|b| format!("{:#}\n", b.error)).collect()
    }

    #[test]
    fn labs_load_in_order_and_are_found_by_slug_number_or_folder() {
        let (_dir, workbook) =
            workbook(&[("03-overload", LAB_TOML, "overload"), ("00-hello", LAB_TOML, "hello")]);
        let (labs, broken) = workbook.labs().unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        assert_eq!(labs.iter().map(|l| l.slug.as_str()).collect::<Vec<_>>(), ["hello", "overload"]);
        let overload = &labs[1];
        assert_eq!((overload.number, overload.fails["some_test"].as_str()), (3, "a phrase"));
        assert_eq!(overload.console.traffic.as_deref(), Some("GETs"));
        assert_eq!(overload.solution_dir(), workbook.root.join("solutions/03-overload"));
        assert_eq!(overload.solution_package(), "overload-solution");
        for name in ["overload", "3", "03", "03-overload", "labs/03-overload/"] {
            assert_eq!(workbook.lab(name).unwrap().slug, "overload", "finding {name:?}");
        }
        let error = workbook.lab("nope").unwrap_err().to_string();
        assert!(error.contains("00 hello") && error.contains("03 overload"), "{error}");
    }

    #[test]
    fn a_wrong_package_a_missing_chapter_a_typo_or_a_bad_folder_is_refused() {
        let typo = LAB_TOML.replace("[fails]", "[fail]");
        let (dir, workbook) = workbook(&[
            ("01-a", LAB_TOML, "lab01"),
            ("02-b", &typo, "b"),
            ("3-c", LAB_TOML, "c"),
            ("04-d", LAB_TOML, "d"),
            ("04-e", LAB_TOML, "e"),
        ]);
        fs::remove_file(dir.path().join("book/src/04-d.md")).unwrap();
        let problems = problems(&workbook);
        for expected in [
            "names the package \"lab01\"",
            "unknown field `fail`",
            "is not named NN-slug",
            "book/src/04-d.md does not exist",
        ] {
            assert!(problems.contains(expected), "{expected:?} in:\n{problems}");
        }
        let error = format!("{:#}", workbook.lab("b").unwrap_err());
        assert!(error.contains("labs/02-b cannot be loaded"), "{error}");
    }

    #[test]
    fn two_labs_with_one_number_are_refused() {
        let (_dir, workbook) = workbook(&[("03-a", LAB_TOML, "a"), ("03-b", LAB_TOML, "b")]);
        assert!(problems(&workbook).contains("another lab has the number 03"));
    }

    #[test]
    fn hidden_files_backups_and_target_folders_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["src/lib.rs", "src/.lib.rs.swp", "src/lib.rs~", "target/debug/x"] {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        assert_eq!(files_under(dir.path()), [dir.path().join("src/lib.rs")]);
    }
}

mod progress {
    use std::fs;
    use std::path::PathBuf;

    use xtask::progress::*;
    use xtask::workbook::Lab;

    #[test]
    fn progress_survives_a_round_trip_through_the_file() {
        let root = tempfile::tempdir().unwrap();
        let mut progress = Progress::default();
        progress.lab_mut("hello").hints_seen = 2;
        progress.lab_mut("blocking").last_check = Some(LastCheck {
            fingerprint: "0123abcd".into(),
            result: CheckResult::Failing,
            tests: 3,
            failed: vec!["ten_slow_requests_finish_together".into()],
        });
        progress.save(root.path()).unwrap();

        let text = fs::read_to_string(Progress::path(root.path())).unwrap();
        assert!(text.starts_with("# Your progress"), "{text}");
        assert!(text.contains("[labs.hello]\nhints_seen = 2"), "{text}");
        assert!(text.contains("result = \"failing\""), "{text}");
        assert_eq!(Progress::load(root.path()), progress);
    }

    #[test]
    fn a_missing_or_garbled_file_is_a_fresh_start() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(Progress::load(root.path()), Progress::default());
        fs::write(Progress::path(root.path()), "labs = 3 [").unwrap();
        assert_eq!(Progress::load(root.path()), Progress::default());
    }

    #[test]
    fn an_unknown_lab_has_no_progress() {
        let progress = Progress::default();
        assert_eq!(progress.lab("nope"), LabProgress::default());
    }

    #[test]
    fn the_next_lab_is_the_first_unfinished_one_after_the_done_one() {
        let lab = |number: u32| Lab {
            number,
            slug: format!("lab{number}"),
            dir: PathBuf::from(format!("labs/{number:02}-lab{number}")),
            ..Lab::default()
        };
        let states: Vec<(Lab, LabState)> = [false, true, true, false]
            .iter()
            .enumerate()
            .map(|(n, &pass)| {
                let state =
                    if pass { LabState::Passing { tests: 1 } } else { LabState::NotStarted };
                (lab(n as u32), state)
            })
            .collect();
        assert_eq!(next_after(&states, &lab(1)).unwrap().number, 3);
        assert_eq!(next_after(&states, &lab(3)), None, "never backwards");
        let open: Vec<u32> = open_labs(&states).map(|lab| lab.number).collect();
        assert_eq!(open, [0, 3]);
        let done: Vec<_> =
            states.into_iter().map(|(l, _)| (l, LabState::Passing { tests: 1 })).collect();
        assert_eq!(next_after(&done, &lab(1)), None);
    }
}

#[cfg(target_os = "linux")]
mod process {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::thread;
    use std::time::{Duration, Instant};

    use xtask::process::*;

    /// Whether `pid` is alive: exists and is not a zombie.
    fn running(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // "pid (comm) S ...": the state follows the closing parenthesis.
            Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    /// A shell that starts a `sleep` of its own, with what its trap says.
    fn shell_with_grandchild(trap: &str) -> (Supervised, u32) {
        let mut command = Command::new("sh");
        command.args(["-c", &format!("{trap} sleep 30 & echo $!; wait")]).stdout(Stdio::piped());
        let mut child = Supervised::spawn(&mut command).unwrap();
        let stdout = child.child().stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        (child, line.trim().parse().unwrap())
    }

    #[test]
    fn dropping_a_supervised_child_stops_it_and_what_it_started() {
        let (mut child, grandchild) = shell_with_grandchild("");
        let leader = child.child().id();
        assert!(running(leader) && running(grandchild));
        let started = Instant::now();
        drop(child);
        assert!(!running(leader), "the child should be gone after the drop");
        thread::sleep(Duration::from_millis(50));
        assert!(!running(grandchild), "what the child started should be gone too");
        assert!(started.elapsed() < GRACE, "sh and sleep stop on SIGTERM at once");
    }

    #[test]
    fn a_child_that_ignores_sigterm_is_killed_after_the_grace_period() {
        let (mut child, grandchild) = shell_with_grandchild("trap '' TERM;");
        let started = Instant::now();
        let status = child.stop(Duration::from_millis(300));
        assert!(status.is_some_and(|s| !s.success()));
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(2));
        thread::sleep(Duration::from_millis(50));
        assert!(!running(grandchild), "the whole group is killed");
    }
}

mod verify {
    use std::path::PathBuf;

    use std::collections::BTreeMap;

    use xtask::cargo::{Outcome, TestResult};
    use xtask::dev::verify::*;
    use xtask::workbook::Lab;

    fn lab(fails: &[(&str, &str)]) -> Lab {
        Lab {
            number: 3,
            slug: "overload".into(),
            fails: fails.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect(),
            dir: PathBuf::from("/w/labs/03-overload"),
            ..Lab::default()
        }
    }

    fn results(list: &[(&str, Outcome, &str)]) -> BTreeMap<String, TestResult> {
        list.iter()
            .map(|(name, outcome, message)| {
                let message = (!message.is_empty()).then(|| message.to_string());
                (name.to_string(), TestResult { outcome: *outcome, message })
            })
            .collect()
    }

    /// What verify finds wrong with a starter declaring `fails` whose tests ended so.
    fn judged(fails: &[(&str, &str)], tests: &[(&str, Outcome, &str)]) -> Vec<String> {
        judge_starter(&lab(fails), &results(tests))
    }

    #[test]
    fn a_starter_failing_exactly_as_declared_is_accepted() {
        let tests = [
            ("sheds_load", Outcome::Failed, "no load shedding: 20 requests all ran"),
            ("answers", Outcome::Passed, ""),
        ];
        assert_eq!(judged(&[("sheds_load", "load shedding")], &tests), Vec::<String>::new());
    }

    #[test]
    fn a_declared_failure_that_passes_is_reported() {
        let problems =
            judged(&[("sheds_load", "load shedding")], &[("sheds_load", Outcome::Passed, "")]);
        assert!(problems[0].contains("`sheds_load` passed on the starter"), "{problems:?}");
    }

    #[test]
    fn a_failure_for_another_reason_is_reported_with_its_message() {
        let tests = [("sheds_load", Outcome::Failed, "connection refused")];
        let problems = judged(&[("sheds_load", "load shedding")], &tests);
        assert!(problems[0].contains("not for the declared reason"), "{problems:?}");
        assert!(problems[0].contains("connection refused"), "{problems:?}");
    }

    #[test]
    fn an_undeclared_failure_and_a_missing_test_are_reported() {
        let problems =
            judged(&[("sheds_load", "load shedding")], &[("answers", Outcome::Failed, "500")]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("no test has that name"), "{problems:?}");
        assert!(problems[1].contains("`answers` failed"), "{problems:?}");
    }

    #[test]
    fn a_starter_without_tests_is_reported() {
        let problems = judged(&[("x", "y")], &[]);
        assert!(problems[0].contains("no test ran"), "{problems:?}");
    }
}

mod server {
    use std::net::{Ipv4Addr, TcpListener};

    use xtask::server::*;

    #[test]
    fn busy_ports_are_replaced_by_free_ones() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        assert!(!port_is_free(port));
        let ports = Ports::choose(Some(1234), Some(port)).unwrap();
        assert_eq!((ports.server, ports.console), (1234, port), "asked-for ports are kept");
        let free = Ports::any_free().unwrap();
        assert!(port_is_free(free.console));
        assert_eq!(free.server, 0);
    }

    #[test]
    fn the_address_is_read_from_a_servers_line() {
        let line = "cancellation listening on http://127.0.0.1:41234 (Ctrl-C to stop)";
        assert_eq!(listening_address(line), Some("127.0.0.1:41234".parse().unwrap()));
        assert_eq!(listening_address("upstream (/ok) on http://127.0.0.1:1"), None);
    }
}

mod ui {
    use xtask::ui::*;

    #[test]
    fn long_text_is_wrapped_at_the_width_with_an_indent() {
        let wrapped = wrap("one two three four five six", "  ", 12);
        assert_eq!(wrapped, "  one two\n  three four\n  five six\n");
    }

    #[test]
    fn words_and_code_spans_are_never_split_and_lines_are_kept() {
        let wrapped = wrap("a `cargo xtask hint hello` b c\nabcdefghijklm", "", 10);
        assert_eq!(wrapped, "a\n`cargo xtask hint hello`\nb c\nabcdefghijklm\n");
    }

    #[test]
    fn the_progress_bar_is_filled_in_proportion() {
        let bar = anstream::adapter::strip_str(&progress_bar(1, 4, 8)).to_string();
        assert_eq!(bar, "[##......]");
        let empty = anstream::adapter::strip_str(&progress_bar(0, 0, 4)).to_string();
        assert_eq!(empty, "[....]");
    }
}

mod fingerprint {
    use std::fs;

    use xtask::progress::*;

    #[test]
    fn the_fingerprint_changes_with_an_edit_a_new_file_or_a_rename_only() {
        let root = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = root.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, text).unwrap();
            path
        };
        let lib = file("src/lib.rs", "fn a() {}");
        let original = hash_files(root.path(), std::slice::from_ref(&lib));
        assert_eq!(original, hash_files(root.path(), std::slice::from_ref(&lib)));
        assert_eq!(original.len(), 16);
        let main = file("src/main.rs", "fn a() {}");
        assert_ne!(original, hash_files(root.path(), &[main]), "a rename");
        assert_ne!(
            original,
            hash_files(root.path(), &[lib.clone(), file("src/x.rs", "")]),
            "a new file"
        );
        file("src/lib.rs", "fn b() {}");
        assert_ne!(original, hash_files(root.path(), &[lib]), "an edit");
        assert_eq!(hash_files(root.path(), &[]), "cbf29ce484222325", "FNV-1a's offset basis");
    }
}

mod git {
    use xtask::git::*;

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

mod explain {
    use xtask::learn::explain::*;

    #[test]
    fn the_tests_own_panic_comes_first_and_other_threads_after() {
        let output = "thread 'tokio-runtime-worker' (8950) panicked at labs/03-overload/src/lib.rs:134:5:\n\
                      deliberate crash\n\
                      thread 'excess_requests_are_refused_fast' (8944) panicked at labs/03-overload/tests/lab.rs:33:5:\n\
                      6 requests answered 200\n  left: 1";
        let (test, others) = test_panic("excess_requests_are_refused_fast", output);
        assert_eq!(test.message, "6 requests answered 200\n  left: 1");
        assert_eq!(test.location, Some("labs/03-overload/tests/lab.rs:33:5"));
        assert_eq!(others.len(), 1);
        assert_eq!(
            (others[0].thread, others[0].message),
            ("tokio-runtime-worker", "deliberate crash")
        );
        let (plain, others) = test_panic("a_test", "just text");
        assert_eq!((plain.message, plain.location, others.len()), ("just text", None, 0));
    }
}

mod capture {
    use xtask::dev::capture::*;

    #[test]
    fn a_captured_screen_loses_trailing_blanks_only() {
        assert_eq!(tidy("  a  \nb\n\n   \n"), "  a\nb\n");
        assert_eq!(tidy(""), "\n");
    }
}

mod backup {
    use xtask::backup::*;

    #[test]
    fn backups_are_named_after_the_utc_time() {
        assert_eq!(utc(0), "1970-01-01T00-00-00Z");
        assert_eq!(utc(951782400), "2000-02-29T00-00-00Z", "a leap day");
        assert_eq!(utc(1796078467), "2026-11-30T22-41-07Z");
    }
}
