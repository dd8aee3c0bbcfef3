//! The checks of lab 03, run with `cargo test -p overload`.
//!
//! A server limited to `MAX` jobs at once gets more requests than that, over
//! real sockets, each request on its own connection as if from its own
//! client. The jobs count themselves (`overload::Jobs`), so "at most `MAX` at
//! once" is measured where the work runs, not guessed from timings.

use std::time::Duration;

use futures::future::join_all;
use lab_support::client::{burst, leave_after, try_send};
use lab_support::{TestServer, eventually, within};
use overload::Jobs;
use reqwest::{Client, StatusCode};
use tokio::task::JoinSet;

/// The limit under test: small, so that a handful of requests exceeds it.
const MAX: usize = 3;
/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(10);
/// A job that outlasts its test: it keeps a slot taken while the test knocks.
const LONG_JOB: &str = "/work?ms=3000";
/// How long a refused request may wait for its 503: a sixth of a long job.
const REFUSAL_PATIENCE: Duration = Duration::from_millis(500);
/// A job short enough to run a few rounds of them.
const SHORT_JOB: &str = "/work?ms=50";

/// Serves the lab's app limited to `max`, as `axum::serve(listener, app)`
/// does, and hands back the jobs' own counts.
fn start(max: usize) -> (TestServer, Jobs) {
    let jobs = Jobs::default();
    let server = TestServer::start_plain(overload::app(max, jobs.clone()));
    (server, jobs)
}

/// Takes every slot with a long job. The requests stay open until the
/// returned set is dropped, which hangs up on them.
async fn fill(server: &TestServer, jobs: &Jobs) -> JoinSet<()> {
    let client = Client::new();
    let mut requests = JoinSet::new();
    for _ in 0..MAX {
        let request = client.get(server.url(LONG_JOB));
        requests.spawn(async move {
            let _ = try_send(request).await;
        });
    }
    let filled = eventually(Duration::from_secs(3), || jobs.running() >= MAX).await;
    assert!(
        filled,
        "{MAX} requests for a long job went to a server limited to {MAX}, but after 3 s only {} \
         of their jobs were running; expected all {MAX}. Does the limit let fewer than {MAX} \
         requests in? (chapter 03, 'The exercise')",
        jobs.running()
    );
    requests
}

/// Sends `n` requests for `path` at once and counts the replies that are not 200.
async fn not_served(server: &TestServer, n: usize, path: &str) -> usize {
    let client = Client::new();
    let url = server.url(path);
    let replies = within(
        LIMIT,
        &format!("{n} concurrent GET {path}"),
        burst(n, |_| client.get(&url)),
    )
    .await;
    n - replies.count(StatusCode::OK)
}

#[tokio::test]
async fn excess_requests_are_refused_fast() {
    let (server, jobs) = start(MAX);
    let _full = fill(&server, &jobs).await;

    // Knock MAX more times while every slot is taken.
    let client = Client::new();
    let url = server.url(LONG_JOB);
    let knocks = join_all(
        (0..MAX).map(|_| tokio::time::timeout(REFUSAL_PATIENCE, try_send(client.get(&url)))),
    )
    .await;

    let peak = jobs.peak();
    assert!(
        peak <= MAX,
        "with {MAX} jobs running (the limit), {MAX} more requests came and were run instead of \
         being refused: {peak} jobs ran at once. Nothing limits this server across \
         connections. A tower limit layer on a router without state is built anew for every \
         connection (axum#2582), so each client gets a limit of its own: share one \
         `GlobalConcurrencyLimitLayer`, or one `Arc<Semaphore>` made once for the whole server, \
         and hold each permit until its request ends (`let _ = ...` drops it at once). \
         (chapter 03, 'One limit per connection')"
    );
    for knock in knocks {
        let reply = match knock {
            Err(_) => panic!(
                "with {MAX} jobs running (the limit), a request beyond the limit had no answer \
                 after {REFUSAL_PATIENCE:?}, and no job was started for it: it waited in a queue \
                 instead of being refused. A concurrency limit alone (tower's \
                 `ConcurrencyLimitLayer`) waits for a free slot; load shedding answers 503 at \
                 once. Add `LoadShedLayer` (and `HandleErrorLayer` to turn its error into a 503), \
                 or take a permit with `Semaphore::try_acquire_owned`. \
                 (chapter 03, 'Limiting is not shedding')"
            ),
            Ok(Err(error)) => panic!(
                "a request beyond the limit got no response: {error}. Expected a 503 answer, not \
                 a closed connection. (chapter 03, 'The exercise')"
            ),
            Ok(Ok(reply)) => reply,
        };
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "with {MAX} jobs running (the limit), a request beyond it was answered {} after \
             {:?}: {:?}; expected 503 Service Unavailable, at once. (chapter 03, 'The exercise')",
            reply.status,
            reply.elapsed,
            reply.body
        );
        assert_eq!(
            reply.header("retry-after"),
            Some("1"),
            "the 503 came fast (in {:?}), but its Retry-After header is {:?}; expected \"1\", so \
             that clients know to wait a second before trying again. Make the header part of the \
             503 response itself, e.g. `(StatusCode::SERVICE_UNAVAILABLE, \
             [(header::RETRY_AFTER, \"1\")], body)`. (chapter 03, 'Retry-After')",
            reply.elapsed,
            reply.header("retry-after")
        );
    }
}

#[tokio::test]
async fn exactly_max_jobs_run_at_once() {
    let (server, jobs) = start(MAX);
    let requests = 3 * MAX;
    not_served(&server, requests, "/work?ms=500").await;

    let peak = jobs.peak();
    assert!(
        peak <= MAX,
        "{requests} requests came at once, each on its own connection, and {peak} of their \
         jobs ran at the same time; the limit is {MAX}, so the limit does not hold. A tower \
         limit layer on a router without state is built anew for every connection \
         (axum#2582), so each client gets a limit of its own: share one \
         `GlobalConcurrencyLimitLayer`, or one `Arc<Semaphore>` made once for the whole server, \
         and hold each permit until its request ends (`let _ = ...` drops it at once). \
         (chapter 03, 'One limit per connection')"
    );
    assert!(
        peak >= MAX,
        "{requests} requests came at once, but at most {peak} of their jobs ever ran at the \
         same time; the limit is {MAX}, and it should be reached. Is the limit off by one, or \
         are slots held by something other than running requests? (chapter 03, 'The exercise')"
    );
}

#[tokio::test]
async fn permits_come_back_after_completion() {
    let (server, _jobs) = start(MAX);
    for round in 1..=3 {
        let refused = not_served(&server, MAX, SHORT_JOB).await;
        assert_eq!(
            refused, 0,
            "round {round} of {MAX} requests at once: {refused} were not served, although every \
             earlier request had finished and the limit is {MAX}. A request that completes must \
             give its slot back: is the permit forgotten, or kept somewhere that outlives the \
             request? (chapter 03, 'Permits come back')"
        );
    }
}

#[tokio::test]
async fn permits_come_back_after_a_handler_panics() {
    let (server, jobs) = start(MAX);
    // Each crash closes its connection (or answers 500 under tower-http's
    // `CatchPanicLayer`); what matters is what the server can do afterwards.
    let client = Client::new();
    let crashes = (0..MAX).map(|_| try_send(client.get(server.url("/crash"))));
    within(LIMIT, "GET /crash", join_all(crashes)).await;
    assert!(
        eventually(Duration::from_secs(2), || jobs.running() == 0).await,
        "the crashed jobs should have ended"
    );

    let refused = not_served(&server, MAX, SHORT_JOB).await;
    assert_eq!(
        refused, 0,
        "after {MAX} handlers panicked, {refused} of {MAX} requests at once were not served, \
         although nothing else was running and the limit is {MAX}. The panicked requests never \
         gave their slots back. A panic skips the code after the `.await` but runs every `Drop`: \
         is the slot released by a line after `next.run(..).await` instead of by a guard such as \
         an `OwnedSemaphorePermit`? (chapter 03, 'Permits come back')"
    );
}

#[tokio::test]
async fn permits_come_back_after_clients_disconnect() {
    let (server, jobs) = start(MAX);
    let patience = Duration::from_millis(300);
    let leaving = (0..MAX).map(|_| leave_after(server.addr(), LONG_JOB, patience));
    within(LIMIT, "clients that leave", join_all(leaving)).await;
    assert_eq!(
        jobs.started(),
        MAX,
        "the jobs of the clients who left should have started"
    );
    assert!(
        eventually(Duration::from_secs(2), || jobs.running() == 0).await,
        "{} jobs still ran 2 s after their clients left; hyper drops a request's future when its \
         client hangs up. Does the work run outside the request's future? (chapter 03)",
        jobs.running()
    );

    let refused = not_served(&server, MAX, SHORT_JOB).await;
    assert_eq!(
        refused, 0,
        "after {MAX} clients hung up mid-request, {refused} of {MAX} requests at once were not \
         served, although nothing else was running and the limit is {MAX}. The requests whose \
         clients left never gave their slots back. When a client hangs up, hyper drops the \
         request's future: the code after its `.await` never runs, only `Drop` does. Is the slot \
         released by a line after `next.run(..).await` instead of by a guard such as an \
         `OwnedSemaphorePermit`? (chapter 03, 'Permits come back')"
    );
}
