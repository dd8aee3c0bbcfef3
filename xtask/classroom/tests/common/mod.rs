//! What the classroom's tests share: a room on a free loopback port with a
//! fresh file, a learner's HTTP calls, and a bound on every wait.

#![allow(dead_code)] // each test file uses its own part

use std::future::Future;
use std::time::Duration;

use classroom::client::{Client, Error, Seat};
use classroom::wire::{LabReport, LabState, Update};
use classroom::{Classroom, Config};
use serde_json::Value;

/// Fails the test, saying what it waited for, if `future` takes longer.
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("gave up after {limit:?} waiting for {what}"),
    }
}

/// A room on 127.0.0.1:0 with its own file; `configure` changes the rest.
pub async fn open_room(configure: impl FnOnce(&mut Config)) -> (Classroom, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), dir.path().join("room.sqlite3"));
    configure(&mut config);
    let room = Classroom::open(config).await.expect("the room opens");
    (room, dir)
}

/// The learner's client, as the xtask uses it (with a longer timeout).
pub fn client() -> Client {
    Client::new(Duration::from_secs(10))
}

/// A learner who joined `room` as `name`.
pub async fn joined(client: &Client, room: &Classroom, name: &str) -> Seat {
    let seat = client.join(&room.url(), room.code(), name).await;
    seat.unwrap_or_else(|error| panic!("{name} could not join: {error}"))
}

/// A room as configured by default, the learner's client, and Ada in the room.
pub async fn room_with_ada() -> (Classroom, tempfile::TempDir, Client, Seat) {
    let (room, dir) = open_room(|_| {}).await;
    let client = client();
    let ada = joined(&client, &room, "Ada").await;
    (room, dir, client, ada)
}

/// How the room answered a call: its result, or the status it refused with.
pub fn answered<T>(result: Result<T, Error>) -> Result<T, u16> {
    match result {
        Err(Error::Refused(status, _)) => Err(status.as_u16()),
        Err(error) => panic!("{error}: {error:?}"),
        Ok(done) => Ok(done),
    }
}

/// One lab failing `first` (of 4 tests), `minutes` in.
pub fn failing(slug: &str, first: &str, minutes: u32) -> Update {
    Update {
        labs: vec![LabReport {
            number: 1,
            slug: slug.into(),
            state: LabState::Failing,
            failed: 1,
            tests: 4,
            failing_tests: vec![first.into()],
            hints: 0,
            minutes,
        }],
    }
}

/// The dashboard's data (`GET /api/room`), with the instructor's key.
pub async fn view(dashboard_url: &str) -> Value {
    let url = dashboard_url.replace("/?key=", "/api/room?key=");
    let answer = reqwest::get(url).await.expect("the room answers");
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

/// The dashboard's event stream, read one `room` event at a time.
pub struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// (The test's [`within`] bounds it.)
    pub async fn open(dashboard_url: &str) -> Events {
        let url = dashboard_url.replace("/?key=", "/api/events?key=");
        let response = reqwest::get(url).await.expect("the room answers");
        assert_eq!(response.status(), 200);
        Events { response, buffer: String::new() }
    }

    /// The next `room` event's data; `None` once the stream ends.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> =
                    event.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
                if event.lines().any(|line| line == "event: room") {
                    return Some(serde_json::from_str(&data.join("\n")).unwrap());
                }
                continue;
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Events until one satisfies `wanted`.
    pub async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let view = self.next().await.expect("the stream ended early");
            if wanted(&view) {
                return view;
            }
        }
    }
}
