//! The checks of lab 02, run with `cargo test -p shared-state`.
//!
//! They send many requests at once, as real traffic does, and look at the
//! numbers the server hands out.

use std::collections::BTreeMap;
use std::time::Duration;

use lab_support::client::{burst, send};
use lab_support::{TestServer, within};
use reqwest::Client;
use shared_state::AUDIT_LOG_DELAY;

/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(20);

/// The `request_num` of each reply to `n` concurrent `GET /api`, in request order.
async fn numbers_of_concurrent_requests(server: &TestServer, n: usize) -> (Vec<u64>, Duration) {
    let client = Client::new();
    let url = server.url("/api");
    let replies = within(LIMIT, "concurrent GET /api", burst(n, |_| client.get(&url))).await;
    let numbers = replies
        .replies
        .iter()
        .map(|reply| {
            assert_eq!(
                reply.status, 200,
                "GET /api answered {}: {}",
                reply.status, reply.body
            );
            reply.json()["request_num"]
                .as_u64()
                .unwrap_or_else(|| panic!("no numeric request_num in {}", reply.body))
        })
        .collect();
    (numbers, replies.elapsed)
}

#[tokio::test]
async fn hundred_concurrent_requests_get_the_numbers_1_to_100() {
    let server = TestServer::start(shared_state::app());
    let (mut numbers, _) = numbers_of_concurrent_requests(&server, 100).await;

    numbers.sort_unstable();
    let expected: Vec<u64> = (1..=100).collect();
    if numbers != expected {
        let mut times_seen = BTreeMap::<u64, usize>::new();
        for n in &numbers {
            *times_seen.entry(*n).or_default() += 1;
        }
        let (most_repeated, times) = times_seen.iter().max_by_key(|(_, t)| **t).unwrap();
        panic!(
            "100 concurrent requests got {} distinct numbers (the highest {}; {most_repeated} \
             came back {times} times); expected each of 1..=100 exactly once. Updates are being \
             lost: is the counter read before an .await and written back after it? \
             (chapter 02, 'Lost updates')",
            times_seen.len(),
            numbers.last().unwrap()
        );
    }
}

#[tokio::test]
async fn hundred_concurrent_requests_overlap() {
    let server = TestServer::start(shared_state::app());
    let (_, elapsed) = numbers_of_concurrent_requests(&server, 100).await;

    // One after another, 100 requests cannot take less than 100 audit-log writes.
    let one_after_another = 100 * AUDIT_LOG_DELAY;
    assert!(
        elapsed < one_after_another / 2,
        "100 concurrent requests took {elapsed:?}; one after another they would take \
         {one_after_another:?}, together about {AUDIT_LOG_DELAY:?}. They are waiting for each \
         other: is a lock held across the .await? (chapter 02, 'Holding a lock across .await')"
    );
}

#[tokio::test]
async fn requests_one_after_another_count_up() {
    let server = TestServer::start(shared_state::app());
    let client = Client::new();
    for expected in 1..=3 {
        let reply = within(LIMIT, "GET /api", send(client.get(server.url("/api")))).await;
        assert_eq!(
            reply.json()["request_num"],
            expected,
            "reply {expected}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn reply_names_the_method_and_path() {
    let server = TestServer::start(shared_state::app());
    let reply = within(
        LIMIT,
        "POST /api",
        send(Client::new().post(server.url("/api"))),
    )
    .await;
    assert_eq!(reply.status, 200);
    let served = reply.json();
    assert_eq!(served["method"], "POST", "in {served}");
    assert_eq!(served["path"], "/api", "in {served}");
    assert_eq!(served["request_num"], 1, "in {served}");
}
