//! `LabServer` as a learner meets it: `cargo run -p <lab>` on a port that is
//! already taken must say so in one line, with what to do, not dump a `Debug`
//! of an `io::Error`.
//!
//! The server reads its arguments from the command line, so this test is its
//! own program (`harness = false`): it runs itself again as a lab server with
//! `--port <taken>` and reads what that child says.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

const CHILD: &str = "LAB_SERVER_TEST_CHILD";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        // The child: a lab server, as in every lab's main.rs.
        lab_support::LabServer::new("demo")
            .run(axum::Router::new)
            .unwrap();
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let started = Instant::now();
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--port", &port.to_string()])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "a busy port ends the server with status 1:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "port {port} is in use (is another lab server still running?)"
        )) && stderr.contains("cargo run -p demo -- --port "),
        "the message should name the port, the likely cause and the command:\n{stderr}"
    );
    assert!(!stderr.contains("Custom {"), "no Debug dump:\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it answers at once"
    );
    println!("test a_busy_port_is_said_plainly ... ok");
}
