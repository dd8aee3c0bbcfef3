//! The room survives its server: `kill -9` and a restart keep every
//! learner, their labs, the join code and their tokens; SIGTERM closes it
//! gracefully. These run the `classroom` binary itself, as
//! `cargo xtask classroom` does.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const LIMIT: Duration = Duration::from_secs(30);

/// The server's child process, killed if the test fails.
struct Server {
    child: Child,
    dashboard: String,
    code: String,
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts the binary on 127.0.0.1:0 with the room file `db`, and reads
    /// its dashboard link and join line.
    fn start(db: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_classroom"))
            .args(["--bind", "127.0.0.1", "--port", "0", "--db"])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the classroom binary starts");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut server = Server { child, dashboard: String::new(), code: String::new(), lines };
        let started = Instant::now();
        while server.dashboard.is_empty() || server.code.is_empty() {
            let line = server
                .lines
                .recv_timeout(Duration::from_secs(20).saturating_sub(started.elapsed()))
                .expect("the server prints its dashboard link and join line within 20 s");
            if let Some(at) = line.find("http://").filter(|_| line.contains("Dashboard")) {
                server.dashboard = line[at..].trim().to_owned();
            }
            if let Some((_, code)) = line.split_once("--code ") {
                server.code = code.split_whitespace().next().unwrap().to_owned();
            }
        }
        server
    }

    fn url(&self) -> String {
        self.dashboard.split("/?key=").next().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Five learners join and report; the server is killed with SIGKILL (no
/// chance to tidy up) and started again on the same file. Every learner is
/// still there with their labs, the room keeps its code and key, and the
/// learners' old tokens still write their rows: their tools resend without
/// joining again.
#[tokio::test]
async fn after_kill_9_and_a_restart_every_learner_is_still_there() {
    within(LIMIT, "the room to come back after kill -9", async {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("room.sqlite3");
        let client = client();
        let mut server = Server::start(&db);
        let mut learners = Vec::new();
        for n in 0..5 {
            let mut learner =
                client.join(&server.url(), &server.code, &format!("Learner {n}")).await.unwrap();
            let update = failing("blocking", &format!("test_{n}"), n);
            client.send(&mut learner, &update).await.unwrap();
            learners.push(learner);
        }
        let (code, key) =
            (server.code.clone(), server.dashboard.split("?key=").nth(1).unwrap().to_owned());

        server.child.kill().unwrap(); // SIGKILL on Unix
        server.child.wait().unwrap();
        drop(server);
        let server = Server::start(&db);
        assert_eq!(server.code, code, "the join code changed across a restart");
        assert!(server.dashboard.ends_with(&key), "the dashboard's key changed across a restart");

        let view = view(&server.dashboard).await;
        let rows = view["learners"].as_array().unwrap();
        assert_eq!(
            rows.len(),
            5,
            "after kill -9 and a restart the room holds {} learners",
            rows.len()
        );
        for (n, row) in rows.iter().enumerate() {
            assert_eq!(row["name"], format!("Learner {n}"));
            let cell = &row["labs"]["blocking"];
            assert_eq!(cell["failing_tests"][0], format!("test_{n}"), "Learner {n}'s lab: {cell}");
        }
        let resend = failing("blocking", "moved_on", 9);
        for learner in &mut learners {
            learner.url = server.url(); // on port 0, the restarted room has a new port
            let before = learner.clone();
            client.send(learner, &resend).await.expect("an old token after the restart");
            assert_eq!(*learner, before, "the learner had to join again after the restart");
        }
    })
    .await;
}

/// SIGTERM (what `cargo xtask classroom` sends on Ctrl-C) closes the room
/// within the grace period, even with a dashboard's stream open, and the
/// process exits successfully.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_closes_the_room_gracefully() {
    within(LIMIT, "the server to stop on SIGTERM", async {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start(&dir.path().join("room.sqlite3"));
        let mut events = Events::open(&server.dashboard).await;
        events.next().await.unwrap();
        let started = Instant::now();
        let pid = server.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = started.elapsed();
        assert!(status.success(), "exited with {status} after SIGTERM");
        assert!(took < Duration::from_secs(3), "took {took:?} to stop with a dashboard open");
        let said: Vec<String> = server.lines.try_iter().collect();
        assert!(said.iter().any(|line| line.contains("Closing")), "said: {said:?}");
    })
    .await;
}
