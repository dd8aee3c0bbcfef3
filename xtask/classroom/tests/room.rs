//! The room as learners and the instructor meet it, over HTTP on loopback:
//! joining and reporting, the dashboard's events, and everything the room
//! refuses (and then stores nowhere).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use classroom::client::Seat;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

/// The learner's rows in the dashboard's data.
fn learners(view: &Value) -> &Vec<Value> {
    view["learners"].as_array().unwrap()
}

/// A learner's change reaches an open dashboard within a second: the page
/// promises "live", and an instructor watching the board after "check now"
/// must not wait. Measured from the update's answer to the event that shows it.
#[tokio::test]
async fn a_learners_change_reaches_the_dashboard_within_a_second() {
    within(LIMIT, "a join and an update to reach the dashboard", async {
        let (room, _dir) = open_room(|_| {}).await;
        let client = client();
        let mut events = Events::open(&room.dashboard_url()).await;
        assert_eq!(learners(&events.next().await.unwrap()).len(), 0);
        let mut ada = joined(&client, &room, "Ada").await;
        events.until(|view| learners(view).len() == 1).await;

        client.send(&mut ada, &failing("blocking", "stays_fast", 3)).await.unwrap();
        let sent = Instant::now();
        let view =
            events.until(|view| learners(view)[0]["labs"]["blocking"]["state"] == "failing").await;
        let took = sent.elapsed();
        assert!(took < Duration::from_secs(1), "the dashboard showed the change after {took:?}");
        let cell = &learners(&view)[0]["labs"]["blocking"];
        assert_eq!(cell["failing_tests"], json!(["stays_fast"]));
        assert_eq!(view["labs"][0]["most_stuck_on"], "stays_fast");
        room.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

/// Hostile or broken input gets a 4xx that says what was wrong, and leaves
/// nothing behind: no learner, no lab. A name with markup is refused (and the
/// page writes names as text anyway); test names that look like paths are
/// refused, so nothing but states can reach the room.
#[tokio::test]
async fn bad_input_is_refused_with_a_clear_4xx_and_stored_nowhere() {
    within(LIMIT, "the bad requests' answers", async {
        let (room, _dir) = open_room(|config| config.body_limit = 4096).await;
        let http = reqwest::Client::new();
        let url = room.url();
        let code = room.code().to_owned();
        let post = |body: String, content_type: &'static str| {
            http.post(format!("{url}/api/join"))
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let json = "application/json";
        let cases = [
            (
                "a wrong code",
                post(json!({"code": "AAA-AAA", "name": "Eve"}).to_string(), json),
                403,
            ),
            ("malformed JSON", post(r#"{"code": "#.into(), json), 400),
            (
                "a body that is not JSON",
                post(json!({"code": code, "name": "Eve"}).to_string(), "text/plain"),
                415,
            ),
            (
                "an unknown field",
                post(json!({"code": code, "name": "Eve", "code_file": "x"}).to_string(), json),
                422,
            ),
            (
                "a name with <script>",
                post(json!({"code": code, "name": "<script>alert(1)</script>"}).to_string(), json),
                422,
            ),
            (
                "an oversized body",
                post(json!({"code": code, "name": "x".repeat(10_000)}).to_string(), json),
                413,
            ),
        ];
        for (what, answer, expected) in cases {
            let answer = answer.await.unwrap();
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert_eq!(status, expected, "{what}: answered {status} {body}, expected {expected}");
            let why = body["error"].as_str().unwrap_or("");
            assert!(!why.is_empty(), "{what}: the refusal should say why; it said {body}");
        }
        assert_eq!(learners(&view(&room.dashboard_url()).await).len(), 0, "nobody stored");

        // A learner who joined properly, then sends bad updates.
        let client = client();
        let mut ada = joined(&client, &room, "Ada").await;
        client.send(&mut ada, &failing("blocking", "stays_fast", 1)).await.unwrap();
        let put = |body: String| {
            http.put(format!("{url}/api/learners/{}", ada.learner))
                .bearer_auth(&ada.token)
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let lab = |extra: Value| {
            let mut lab = json!({"number": 1, "slug": "blocking", "state": "passing", "tests": 4});
            lab.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            json!({ "labs": [lab] }).to_string()
        };
        let cases = [
            ("malformed JSON", put("{\"labs\": [".into()), 400),
            ("a file's contents", put(lab(json!({"code": "fn main() {}"}))), 422),
            (
                "a path for a test name",
                put(lab(json!({"failing_tests": ["labs/01/src/lib.rs"]}))),
                422,
            ),
            ("an unknown state", put(lab(json!({"state": "hacked"}))), 422),
            (
                "an oversized body",
                put(lab(json!({"failing_tests": vec!["a".repeat(150); 40]}))),
                413,
            ),
        ];
        for (what, answer, expected) in cases {
            let answer = answer.await.unwrap();
            let status = answer.status().as_u16();
            assert_eq!(status, expected, "{what}: answered {status}, expected {expected}");
        }
        let view = view(&room.dashboard_url()).await;
        let cell = &learners(&view)[0]["labs"]["blocking"];
        assert_eq!(cell["state"], "failing", "a refused update changed the stored state: {cell}");
        assert_eq!(learners(&view)[0]["updates"], 1);
    })
    .await;
}

/// Each learner's token writes only that learner's row: another learner's
/// token, a made-up one or none is refused, and the row stays as it was.
#[tokio::test]
async fn nobody_writes_another_learners_row() {
    within(LIMIT, "the answers to the other learner's writes", async {
        let (room, _dir, client, mut ada) = room_with_ada().await;
        let bob = joined(&client, &room, "Bob").await;
        client.send(&mut ada, &failing("blocking", "a", 1)).await.unwrap();

        let bob_as_ada = Seat { token: bob.token.clone(), ..ada.clone() };
        let forged = Seat { token: "0".repeat(32), ..ada.clone() };
        for (who, mut seat) in [("Bob's token", bob_as_ada), ("a made-up token", forged)] {
            let sent = answered(client.send(&mut seat, &failing("blocking", "zzz", 9)).await);
            assert_eq!(sent, Err(403), "{who} on Ada's row");
            assert_eq!(answered(client.leave(&seat).await), Err(403), "{who} removing Ada");
        }
        let anonymous = reqwest::Client::new()
            .put(format!("{}/api/learners/{}", room.url(), ada.learner))
            .json(&failing("blocking", "zzz", 9))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);

        let view = view(&room.dashboard_url()).await;
        let rows = learners(&view);
        assert_eq!(rows.len(), 2);
        let ada_row = rows.iter().find(|row| row["name"] == "Ada").unwrap();
        assert_eq!(ada_row["labs"]["blocking"]["failing_tests"], json!(["a"]), "{ada_row}");
    })
    .await;
}

/// Past the bound on learners a join is answered 503, and the room is not
/// changed; once someone leaves (their own token), a seat is free again.
#[tokio::test]
async fn past_the_bound_on_learners_a_join_is_answered_503() {
    within(LIMIT, "the joins' answers", async {
        let (room, _dir) = open_room(|config| config.max_learners = 3).await;
        let client = client();
        let mut seated = Vec::new();
        for name in ["A", "B", "C"] {
            seated.push(joined(&client, &room, name).await);
        }
        let fourth = answered(client.join(&room.url(), room.code(), "D").await);
        assert_eq!(fourth.map(drop), Err(503), "a fourth learner in a room of 3");
        assert_eq!(learners(&view(&room.dashboard_url()).await).len(), 3);

        client.leave(&seated[0]).await.unwrap();
        joined(&client, &room, "D").await;
    })
    .await;
}

/// A room that forgot a learner (started afresh, or they left) answers
/// their next update 404: their client joins again with the same code and
/// name, and sends it, so the board shows them without anyone doing anything.
#[tokio::test]
async fn a_learner_the_room_forgot_joins_again_at_their_next_send() {
    within(LIMIT, "the forgotten learner's update", async {
        let (room, _dir, client, mut ada) = room_with_ada().await;
        client.leave(&ada).await.unwrap();
        let forgotten = ada.clone();
        client.send(&mut ada, &failing("blocking", "a", 1)).await.unwrap();
        assert_ne!(ada.token, forgotten.token, "Ada should have joined again");
        let view = view(&room.dashboard_url()).await;
        assert_eq!(learners(&view).len(), 1);
        assert_eq!(learners(&view)[0]["name"], "Ada");
        assert_eq!(learners(&view)[0]["labs"]["blocking"]["state"], "failing");
    })
    .await;
}

/// A learner's tool that sends far faster than any real check gets 429s,
/// while another learner is unaffected (the limit is per learner).
#[tokio::test]
async fn a_learner_who_sends_too_fast_is_answered_429_and_others_are_not() {
    within(LIMIT, "the updates' answers", async {
        let (room, _dir) = open_room(|config| {
            config.updates_per_second = 1.try_into().unwrap();
            config.update_burst = 3.try_into().unwrap();
        })
        .await;
        let client = client();
        let mut ada = joined(&client, &room, "Ada").await;
        let mut bob = joined(&client, &room, "Bob").await;
        let mut answers = Vec::new();
        for minute in 0..10 {
            answers.push(answered(client.send(&mut ada, &failing("blocking", "a", minute)).await));
        }
        let refused = answers.iter().filter(|&&answer| answer == Err(429)).count();
        assert!(
            refused >= 5,
            "10 updates at once, a burst of 3: only {refused} refused ({answers:?})"
        );
        assert_eq!(&answers[..3], &[Ok(()); 3], "the burst should pass: {answers:?}");
        client.send(&mut bob, &failing("blocking", "a", 0)).await.unwrap();
    })
    .await;
}

/// A client that starts a request and never finishes its body does not hold
/// the room: it gets 408 once the request timeout passes.
#[tokio::test]
async fn a_request_that_never_finishes_is_answered_408() {
    within(LIMIT, "the slow request's answer", async {
        let (room, _dir) =
            open_room(|config| config.request_timeout = Duration::from_millis(300)).await;
        let addr = room.local_addr();
        let answer = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let head = "POST /api/join HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                        content-length: 100\r\n\r\n{\"code\":";
            stream.write_all(head.as_bytes()).unwrap();
            let started = Instant::now();
            let mut answer = [0; 64];
            let n = stream.read(&mut answer).unwrap_or(0);
            (String::from_utf8_lossy(&answer[..n]).into_owned(), started.elapsed())
        })
        .await
        .unwrap();
        let (status_line, took) = answer;
        assert!(status_line.starts_with("HTTP/1.1 408"), "answered {status_line:?} after {took:?}");
        assert!(took < Duration::from_secs(5), "answered after {took:?}, timeout 300 ms");
    })
    .await;
}

/// The dashboard is the instructor's: without the key, or with a wrong one,
/// neither the page nor its data nor its events are served.
#[tokio::test]
async fn the_dashboard_needs_the_instructors_key() {
    within(LIMIT, "the dashboard's answers", async {
        let (room, _dir) = open_room(|_| {}).await;
        let http = reqwest::Client::new();
        let url = room.url();
        for path in ["/", "/api/room", "/api/events", "/?key=wrong", "/api/events?key=wrong"] {
            let status = http.get(format!("{url}{path}")).send().await.unwrap().status();
            assert_eq!(status, 401, "GET {path} without the key answered {status}");
        }
        let page = http.get(room.dashboard_url()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("default-src 'self'"), "{policy}");
        assert!(page.text().await.unwrap().contains("dashboard.js"));
    })
    .await;
}

/// Stopping the room ends the dashboards' streams at once, so a graceful
/// shutdown does not wait for pages that would stay open for ever.
#[tokio::test]
async fn stopping_ends_the_dashboards_streams() {
    within(LIMIT, "the room to stop with a dashboard open", async {
        let (room, _dir) = open_room(|_| {}).await;
        let mut events = Events::open(&room.dashboard_url()).await;
        events.next().await.unwrap();
        let started = Instant::now();
        room.stop(Duration::from_secs(10)).await.unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "stopping took {took:?} with a dashboard open");
        assert!(events.next().await.is_none(), "the stream should end");
    })
    .await;
}
