//! The `book` and `verify` verbs, run as a user runs them.
//!
//! These tests run the real `xtask` binary on a small fixture workbook (one
//! lab, one chapter) made in a temporary folder and named by
//! `WORKBOOK_ROOT`, so they do not depend on the state of the real chapters
//! and never touch the repository. They stay fast, because they run inside
//! `cargo xtask verify`'s first check: `verify` is only asked for its help
//! and for a lab that does not exist, which it refuses before any work.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;
use tempfile::TempDir;

/// A workbook with one lab, `00-demo`, and its chapter.
fn fixture() -> TempDir {
    let root = tempfile::tempdir().unwrap();
    let files = [
        (
            "book/book.toml",
            "[book]\ntitle = \"Fixture\"\n[build]\ncreate-missing = false\n",
        ),
        (
            "book/src/SUMMARY.md",
            "# Summary\n\n[Introduction](README.md)\n\n- [00 · Demo](00-demo.md)\n",
        ),
        (
            "book/src/README.md",
            "# Introduction\n\nStart with [the demo](00-demo.md).\n",
        ),
        (
            "book/src/00-demo.md",
            "# Demo\n\n## The code\n\n\
             ```rust\n{{#include ../../labs/00-demo/src/lib.rs:greet}}\n```\n\n\
             Edit [src/lib.rs](../../labs/00-demo/src/lib.rs), see [above](#the-code).\n\n\
             {{#hints demo}}\n",
        ),
        (
            "labs/00-demo/lab.toml",
            "slug = \"demo\"\ntitle = \"Demo\"\nchapter = \"00-demo.md\"\nminutes = 5\n\
             hints = [\"Read `greet`.\", \"Say hello.\"]\n\
             [fails]\ngreets = \"say hello\"\n",
        ),
        (
            "labs/00-demo/Cargo.toml",
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
        ),
        (
            "labs/00-demo/src/lib.rs",
            "// ANCHOR: greet\npub fn greet() -> &'static str {\n    \"bye\"\n}\n// ANCHOR_END: greet\n",
        ),
    ];
    for (path, contents) in files {
        let path = root.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }
    root
}

/// The xtask, working on `root`.
fn xtask(root: &Path) -> assert_cmd::Command {
    let mut command = cargo_bin_cmd!("xtask");
    command
        .env("WORKBOOK_ROOT", root)
        .timeout(Duration::from_secs(60));
    command
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn verify_help_explains_the_checks_and_the_summary_line() {
    let output = cargo_bin_cmd!("xtask")
        .args(["verify", "--help"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "verify --help failed: {}",
        stderr_of(&output)
    );
    let help = stdout_of(&output);
    assert!(
        help.contains("--lab <LAB>"),
        "verify --help should offer --lab:\n{help}"
    );
    assert!(
        help.contains("verify: N passed, M failed"),
        "verify --help should name its closing line:\n{help}"
    );
}

#[test]
fn verify_refuses_an_unknown_lab_and_lists_the_labs() {
    let workbook = fixture();
    let output = xtask(workbook.path())
        .args(["verify", "--lab", "no-such-lab"])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "verify --lab no-such-lab should fail"
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("there is no lab named \"no-such-lab\"") && stderr.contains("00 demo"),
        "the error should name the unknown lab and list the labs, got:\n{stderr}"
    );
    let stdout = stdout_of(&output);
    assert_eq!(
        stdout.lines().last(),
        Some("verify: 0 passed, 1 failed"),
        "verify should still end with its summary line, got:\n{stdout}"
    );
}

#[test]
fn book_build_only_builds_the_book_with_includes_and_hints() {
    let workbook = fixture();
    let dest = tempfile::tempdir().unwrap();
    let output = xtask(workbook.path())
        .args(["book", "--build-only", "--dest-dir"])
        .arg(dest.path())
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    assert!(
        output.status.success(),
        "book --build-only failed:\n{stderr}"
    );
    assert!(
        !stderr.contains("warning"),
        "a sound book builds without warnings:\n{stderr}"
    );
    assert!(
        dest.path().join("index.html").is_file(),
        "the book needs an index.html"
    );
    let chapter = fs::read_to_string(dest.path().join("00-demo.html")).unwrap();
    assert!(
        chapter.contains("pub fn greet()"),
        "the included code is in the chapter"
    );
    assert!(!chapter.contains("ANCHOR"), "the anchor markers are not");
    assert!(
        chapter.contains("<summary>Hint 1</summary>") && chapter.contains("<code>greet</code>"),
        "the lab's hints from lab.toml are in the chapter, Markdown rendered"
    );
}

#[test]
fn book_build_only_warns_about_broken_includes_hints_and_links() {
    let workbook = fixture();
    fs::write(
        workbook.path().join("book/src/00-demo.md"),
        "# Demo\n\n{{#include ../../labs/00-demo/src/lib.rs:gone}}\n\n{{#hints dmeo}}\n\n\
         [missing](../../labs/00-demo/src/main.rs) [no heading](#nowhere)\n",
    )
    .unwrap();
    let dest = tempfile::tempdir().unwrap();
    let output = xtask(workbook.path())
        .args(["book", "--build-only", "--dest-dir"])
        .arg(dest.path())
        .output()
        .unwrap();
    let stderr = stderr_of(&output);
    for problem in [
        "has no `ANCHOR: gone` marker",
        "{{#hints dmeo}} names no lab",
        "there is no labs/00-demo/src/main.rs",
        "has no heading with the id #nowhere",
    ] {
        assert!(
            stderr.contains(problem),
            "expected a warning {problem:?}, got:\n{stderr}"
        );
    }
}

/// `book` with a port that is taken says so and suggests `--port`.
#[test]
fn book_on_a_taken_port_suggests_another() {
    let workbook = fixture();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dest = tempfile::tempdir().unwrap();
    let output = xtask(workbook.path())
        .args(["book", "--port", &port, "--dest-dir"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "book on a taken port should fail");
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains(&format!("port {port} is already in use")) && stderr.contains("--port"),
        "the error should say the port is taken and suggest --port, got:\n{stderr}"
    );
}

/// A served book, stopped (killed) when dropped, even if the test fails.
struct Served {
    child: Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn serve_book(root: &Path, dest: &Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("WORKBOOK_ROOT", root)
        .args(["book", "--port", "0", "--dest-dir"])
        .arg(dest)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut served = Served {
        child,
        url: String::new(),
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Serving the book at ") {
            served.url = rest.split_whitespace().next().unwrap().to_owned();
            return served;
        }
    }
    panic!("`xtask book` never said where it serves the book");
}

/// A plain HTTP/1.1 GET: (status line, the whole response).
fn get(url: &str, path: &str) -> (String, String) {
    let authority = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or("").to_owned();
    (status, response)
}

#[test]
fn the_served_book_shows_chapters_and_lab_files_as_text() {
    let workbook = fixture();
    let dest = tempfile::tempdir().unwrap();
    let served = serve_book(workbook.path(), dest.path());

    let (status, page) = get(&served.url, "/toc.html");
    assert!(status.contains("200"), "GET /toc.html: {status}");
    assert!(
        page.contains("00-demo.html"),
        "the table of contents lists the chapter"
    );

    let (status, file) = get(&served.url, "/labs/00-demo/lab.toml");
    assert!(
        status.contains("200"),
        "GET /labs/00-demo/lab.toml: {status}"
    );
    assert!(
        file.to_lowercase().contains("content-type: text/plain"),
        "lab files are served as plain text:\n{file}"
    );
    assert!(
        file.contains("slug = \"demo\""),
        "the lab file's contents:\n{file}"
    );

    let (status, _) = get(&served.url, "/labs/../book/book.toml");
    assert!(
        !status.contains("200"),
        "nothing outside labs/ is served: {status}"
    );
}

#[cfg(unix)]
#[test]
fn the_book_server_stops_on_sigterm() {
    let workbook = fixture();
    let dest = tempfile::tempdir().unwrap();
    let mut served = serve_book(workbook.path(), dest.path());
    let pid = served.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "the server exits cleanly on SIGTERM: {status}"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the book server was still running 10 s after SIGTERM");
}
