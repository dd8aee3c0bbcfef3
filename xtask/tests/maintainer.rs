//! The maintainer's verbs (`dev verify`, `book`), run as a maintainer or CI
//! runs them: the real `xtask` binary in the root of a workbook.
//!
//! The workbook is the fixture of `fixture/` (two std-only labs the tool has
//! never heard of), fresh for each test in a temporary folder and committed
//! to git. Because its labs build in about a second, `dev verify` runs here
//! for real, on the working tree in place: on the clean fixture it passes,
//! and it fails, saying why, for each way a course goes wrong that a
//! maintainer must hear about: a lab changed since the commit (a learner's
//! fix), a solution that does not fix, a starter that fails for another
//! reason than the declared one. The book tests build and serve the
//! fixture's book: includes, hints and links, and what the server shows.

mod fixture;

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use fixture::{Ran, Workbook, http_get};

/// The summary line `verify` always ends with: (passed, failed).
fn summary(ran: &Ran) -> (usize, usize) {
    let last = ran.last_line().unwrap_or("");
    let parsed = last
        .strip_prefix("verify: ")
        .and_then(|rest| rest.split_once(" passed, "))
        .and_then(|(passed, rest)| {
            let failed = rest.strip_suffix(" failed")?;
            Some((passed.parse().ok()?, failed.parse().ok()?))
        });
    parsed.unwrap_or_else(|| {
        panic!("the last line should be `verify: N passed, M failed`, not {last:?}:\n{ran}")
    })
}

/// The progress lines `[i/N] <name> ... <verdict>`, and N.
fn progress_lines(ran: &Ran) -> (Vec<&str>, usize) {
    let lines: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|line| {
            line.strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .is_some_and(|(step, _)| step.split_once('/').is_some())
        })
        .collect();
    let total = lines
        .first()
        .and_then(|line| line[1..].split_once(']'))
        .and_then(|(step, _)| step.split_once('/'))
        .and_then(|(_, total)| total.parse().ok())
        .unwrap_or_else(|| panic!("verify should show `[i/N] <check> ...` progress lines:\n{ran}"));
    (lines, total)
}

#[test]
fn verify_help_explains_the_checks_and_the_summary_line() {
    let workbook = Workbook::new();
    let help = workbook.run(&["dev", "verify", "--help"]);
    assert!(help.success(), "{help}");
    assert!(help.stdout.contains("--lab <LAB>"), "verify's help should offer --lab:\n{help}");
    assert!(
        help.stdout.contains("verify: N passed, M failed"),
        "verify's help should name its closing line:\n{help}"
    );
    // The old spelling still works (hidden from the learner's help).
    let alias = workbook.run(&["verify", "--help"]);
    assert!(
        alias.success() && alias.stdout.contains("--lab <LAB>"),
        "`cargo xtask verify` is still verify:\n{alias}"
    );
    let dev = workbook.run(&["dev", "--help"]);
    assert!(dev.success(), "{dev}");
    assert!(
        dev.stdout.contains("verify") && dev.stdout.contains("capture-console"),
        "`dev --help` lists the maintainer's verbs:\n{dev}"
    );
    let capture = workbook.run(&["dev", "capture-console", "--help"]);
    assert!(
        capture.success() && capture.stdout.contains("tmux"),
        "`dev capture-console --help` says it drives tmux:\n{capture}"
    );
}

#[test]
fn verify_refuses_an_unknown_lab_and_lists_the_labs() {
    let workbook = Workbook::new();
    for args in
        [&["dev", "verify", "--lab", "no-such-lab"][..], &["verify", "--lab", "no-such-lab"]]
    {
        let ran = workbook.run(args);
        ran.assert_refused_unknown_lab("no-such-lab");
        assert_eq!(
            ran.last_line(),
            Some("verify: 0 passed, 1 failed"),
            "verify should still end with its summary line:\n{ran}"
        );
    }
}

/// The committed fixture is a sound course: every starter fails exactly
/// its declared test, every solution passes, the workspace's tests pass
/// and the book builds.
#[test]
fn verify_passes_on_the_clean_workbook() {
    let workbook = Workbook::new();
    let ran = workbook.run(&["dev", "verify"]);
    let (lines, total) = progress_lines(&ran);
    assert_eq!(
        ran.last_line(),
        Some(format!("verify: {total} passed, 0 failed").as_str()),
        "every check of the clean fixture passes:\n{ran}"
    );
    assert!(ran.success(), "verify passed, so it exits with 0:\n{ran}");
    assert_eq!(lines.len(), total, "one progress line per check:\n{ran}");
    assert!(
        lines.iter().all(|line| line.contains("... ok")),
        "every progress line says ok:\n{ran}"
    );
    for name in ["demo", "echo", "book"] {
        assert!(
            lines.iter().any(|line| line.contains(name)),
            "a progress line should name {name:?}:\n{ran}"
        );
    }
    assert!(
        total >= 4,
        "at least the workspace's tests, lab 00, lab 01 and the book are checked:\n{ran}"
    );
    assert!(
        !ran.stdout.contains("differs from the commit"),
        "nothing differs from the commit in a fresh fixture:\n{ran}"
    );
}

/// A learner's fix in the working tree makes the starter pass the test it
/// must fail: verify says so, and says the lab is not as committed.
#[test]
fn verify_fails_on_a_lab_changed_since_the_commit() {
    let workbook = Workbook::new();
    workbook.fix("00-demo");
    let ran = workbook.run(&["dev", "verify", "--lab", "demo"]);
    let (_, failed) = summary(&ran);
    assert!(failed >= 1, "a starter that passes is a failure of verify:\n{ran}");
    assert!(!ran.success(), "verify failed, so it does not exit with 0:\n{ran}");
    assert!(
        ran.stdout
            .lines()
            .any(|line| line.contains("labs/00-demo") && line.contains("differs from the commit")),
        "verify should say that labs/00-demo differs from the commit:\n{ran}"
    );
    assert!(
        ran.stdout.lines().any(|line| line.contains("greets_by_name") && line.contains("passed")),
        "verify should say that the declared test greets_by_name passed:\n{ran}"
    );
}

/// A solution's `src/` holds only what the fix changes: a copy of a file
/// the fix leaves alone is named, and so is a file the lab does not have.
#[test]
fn verify_fails_on_a_solution_that_copies_or_adds_files() {
    let workbook = Workbook::new();
    workbook.write("solutions/00-demo/src/main.rs", &workbook.read("labs/00-demo/src/main.rs"));
    workbook.write("solutions/00-demo/src/extra.rs", "// not in the lab\n");
    let ran = workbook.run(&["dev", "verify", "--lab", "demo"]);
    ran.assert_failed_saying(&[
        "solutions/00-demo/src/main.rs is the same as the lab's",
        "solutions/00-demo/src/extra.rs has no counterpart in labs/00-demo/src",
    ]);
}

/// A solution that does not fix the lab fails verify, which names it.
#[test]
fn verify_fails_on_a_broken_solution_and_names_it() {
    let workbook = Workbook::new();
    let solution = "solutions/00-demo/src/lib.rs";
    workbook.replace(solution, "format!(\"Hello, {name}!\")", "format!(\"Hello {name}\")");
    let ran = workbook.run(&["dev", "verify", "--lab", "demo"]);
    let (_, failed) = summary(&ran);
    assert!(failed >= 1, "a broken solution is a failure:\n{ran}");
    assert!(!ran.success(), "verify failed, so it does not exit with 0:\n{ran}");
    let (lines, _) = progress_lines(&ran);
    assert!(
        lines.iter().any(|line| line.contains("FAILED") && line.contains("solution")),
        "the failing check should be the solution's:\n{ran}"
    );
    assert!(
        ran.stdout.contains("greets_the_world"),
        "the details name the test the broken solution fails:\n{ran}"
    );
}

/// A starter that fails its declared test for another reason than the
/// declared one (its message lacks the phrase) is not a sound lab.
#[test]
fn verify_fails_on_a_starter_that_fails_for_another_reason() {
    let workbook = Workbook::new();
    workbook.replace("labs/01-echo/lab.toml", "Is echo changing the text", "Is the cache warm");
    fixture::files::git(workbook.root(), &["commit", "-q", "-am", "another reason"]);
    let ran = workbook.run(&["dev", "verify", "--lab", "echo"]);
    let (_, failed) = summary(&ran);
    assert!(failed >= 1, "a starter failing for another reason is a failure:\n{ran}");
    ran.assert_failed_saying(&["Is the cache warm"]); // the phrase the message lacks
    assert!(!ran.stdout.contains("differs from the commit"), "the change is committed:\n{ran}");
}

#[test]
fn book_build_only_builds_the_book_with_includes_and_hints() {
    let workbook = Workbook::new();
    let dest = tempfile::tempdir().unwrap();
    let dest_arg = dest.path().to_str().unwrap();
    let ran = workbook.run(&["book", "--build-only", "--dest-dir", dest_arg]);
    assert!(ran.success(), "book --build-only failed:\n{ran}");
    assert!(!ran.stderr.contains("warning"), "a sound book builds without warnings:\n{ran}");
    assert!(dest.path().join("index.html").is_file(), "the book needs an index.html");
    let chapter = fs::read_to_string(dest.path().join("00-demo.html")).unwrap();
    assert!(chapter.contains("pub fn greet("), "the included code is in the chapter");
    assert!(!chapter.contains("ANCHOR"), "the anchor markers are not");
    assert!(
        chapter.contains("<summary>Hint 1</summary>") && chapter.contains("<code>greet</code>"),
        "the lab's hints from lab.toml are in the chapter, Markdown rendered"
    );
    assert!(dest.path().join("01-echo.html").is_file(), "every chapter is built");
}

#[test]
fn book_build_only_warns_about_broken_includes_hints_and_links() {
    let workbook = Workbook::new();
    workbook.write(
        "book/src/00-demo.md",
        "# Demo\n\n{{#include ../../labs/00-demo/src/lib.rs:gone}}\n\n{{#hints dmeo}}\n\n\
         [missing](../../labs/00-demo/src/missing.rs) [no heading](#nowhere)\n",
    );
    let dest = tempfile::tempdir().unwrap();
    let dest_arg = dest.path().to_str().unwrap();
    let ran = workbook.run(&["book", "--build-only", "--dest-dir", dest_arg]);
    ran.assert_said(&[
        "has no `ANCHOR: gone` marker",
        "{{#hints dmeo}} names no lab",
        "there is no labs/00-demo/src/missing.rs",
        "has no heading with the id #nowhere",
    ]);
}

/// `book` on a port that is taken says so and suggests `--port`.
#[test]
fn book_on_a_taken_port_suggests_another() {
    let workbook = Workbook::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dest = tempfile::tempdir().unwrap();
    let dest_arg = dest.path().to_str().unwrap();
    let ran = workbook.run(&["book", "--port", &port, "--dest-dir", dest_arg]);
    assert!(!ran.success(), "book on a taken port should fail:\n{ran}");
    assert!(
        ran.stderr.contains(&format!("port {port} is already in use"))
            && ran.stderr.contains("--port"),
        "the error should say the port is taken and suggest --port:\n{ran}"
    );
}

/// GET `path` of the served book, asserting a 200; the response, headers too.
fn get_ok(url: &str, path: &str) -> String {
    let (status, response) = http_get(url, path);
    assert!(status.contains("200"), "GET {path}: {status}\n{response}");
    response
}

#[test]
fn the_served_book_shows_chapters_and_lab_files_as_text() {
    let workbook = Workbook::new();
    let (_served, url) = workbook.serve_book();
    let page = get_ok(&url, "/toc.html");
    assert!(
        page.contains("00-demo.html") && page.contains("01-echo.html"),
        "the table of contents lists the chapters:\n{page}"
    );
    let file = get_ok(&url, "/labs/00-demo/lab.toml");
    assert!(
        file.to_lowercase().contains("content-type: text/plain"),
        "lab files are served as plain text:\n{file}"
    );
    assert!(file.contains("title = \"Demo\""), "the lab file's contents:\n{file}");
    let file = get_ok(&url, "/labs/00-demo/src/lib.rs");
    assert!(file.contains("pub fn greet("), "GET /labs/00-demo/src/lib.rs: {file}");
}

/// The chapters link to the solutions (the "what the fix teaches" part), so
/// `solutions/` is served as text beside `labs/`; nothing else of the
/// repository is, not even through `..`.
#[test]
fn the_served_book_serves_labs_and_solutions_but_nothing_else() {
    let workbook = Workbook::new();
    let (_served, url) = workbook.serve_book();
    get_ok(&url, "/solutions/00-demo/src/lib.rs");
    let outside = [
        "/Cargo.toml",
        "/book/book.toml",
        "/.git/config",
        "/labs/../book/book.toml",
        "/labs/%2e%2e/Cargo.toml",
    ];
    for path in outside {
        let (status, response) = http_get(&url, path);
        assert!(
            !status.contains("200"),
            "nothing outside labs/ and solutions/ is served: GET {path}:\n{response}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_book_server_stops_on_sigterm() {
    let workbook = Workbook::new();
    let (mut served, url) = workbook.serve_book();
    let stopped = served.stop();
    assert!(
        stopped.success(),
        "the book server exits cleanly on SIGTERM ({stopped}):\n{}",
        served.transcript
    );
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    assert!(
        std::net::TcpStream::connect_timeout(&authority.parse().unwrap(), Duration::from_secs(2))
            .is_err(),
        "nothing listens on {authority} any more"
    );
}
