//! The `book` and `verify` verbs, run as a user runs them.
//!
//! These tests run the real `xtask` binary against this repository. They
//! stay fast (they run inside `cargo xtask verify`'s first check): the book
//! is built into a temporary folder, and `verify` is only asked for its help
//! and for a lab that does not exist, which it refuses before any work.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin_cmd;

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &std::process::Output) -> String {
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
    let output = cargo_bin_cmd!("xtask")
        .args(["verify", "--lab", "no-such-lab"])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "verify --lab no-such-lab should fail"
    );
    let stderr = stderr_of(&output);
    assert!(
        stderr.contains("there is no lab named \"no-such-lab\"") && stderr.contains("00 hello"),
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
fn book_build_only_builds_the_book_with_its_hints() {
    let dest = tempfile::tempdir().unwrap();
    let output = cargo_bin_cmd!("xtask")
        .args(["book", "--build-only", "--dest-dir"])
        .arg(dest.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "book --build-only failed: {}",
        stderr_of(&output)
    );
    let index = dest.path().join("index.html");
    assert!(index.is_file(), "the book should have an index.html");
    let hello = std::fs::read_to_string(dest.path().join("00-hello.html")).unwrap();
    assert!(
        hello.contains("<summary>Hint 1</summary>"),
        "chapter 00 should show lab hello's hints from its lab.toml"
    );
}

/// `book` with a port that is taken says so and suggests `--port`.
#[test]
fn book_on_a_taken_port_suggests_another() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dest = tempfile::tempdir().unwrap();
    let output = cargo_bin_cmd!("xtask")
        .args(["book", "--port", &port, "--dest-dir"])
        .arg(dest.path())
        .timeout(Duration::from_secs(30))
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

fn serve_book(dest: &std::path::Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
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

/// A plain HTTP/1.1 GET: (status line, headers and body).
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
    let dest = tempfile::tempdir().unwrap();
    let served = serve_book(dest.path());

    let (status, page) = get(&served.url, "/toc.html");
    assert!(status.contains("200"), "GET /toc.html: {status}");
    assert!(
        page.contains("00-hello.html"),
        "the table of contents should list chapter 00"
    );

    let (status, file) = get(&served.url, "/labs/00-hello/lab.toml");
    assert!(
        status.contains("200"),
        "GET /labs/00-hello/lab.toml: {status}"
    );
    assert!(
        file.to_lowercase().contains("content-type: text/plain"),
        "lab files should be served as plain text:\n{file}"
    );
    assert!(
        file.contains("slug = \"hello\""),
        "the lab file's contents:\n{file}"
    );

    let (status, _) = get(&served.url, "/labs/..%2f..%2fCargo.toml");
    assert!(
        !status.contains("200"),
        "nothing outside labs/ may be served: {status}"
    );
}

#[cfg(unix)]
#[test]
fn the_book_server_stops_on_sigterm() {
    let dest = tempfile::tempdir().unwrap();
    let mut served = serve_book(dest.path());
    let pid = served.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = served.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "the server should exit cleanly on SIGTERM: {status}"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the book server was still running 10 s after SIGTERM");
}
