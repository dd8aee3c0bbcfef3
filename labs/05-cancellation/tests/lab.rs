//! The checks of lab 05, run with `cargo test -p cancellation`.
//!
//! They watch the work itself. The app counts its report steps, rendered tiles
//! and requests in flight ([`Observations`]); a test hangs up on a slow
//! request (or lets the timeout fire), gives the cancellation a moment to
//! arrive, and then checks that the counters have stopped moving.
//!
//! The work asked for is long (300 steps of 10 ms: 3 s) and the moment is
//! generous (300 ms), so that work which stops passes on a busy machine, and
//! work which goes on fails every time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cancellation::{Observations, app};
use lab_support::client::{get, leave_after, send};
use lab_support::{TestServer, eventually, within};

const LIMIT: Duration = Duration::from_secs(10);

/// A per-request timeout no test reaches, for the tests about clients leaving.
const NO_TIMEOUT: Duration = Duration::from_secs(60);
/// The per-request timeout of the timeout test.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
/// Work that is still going on long after the test has looked: 3 s.
const LONG_WORK: u32 = 300;
/// How long a client waits for an answer before it hangs up.
const PATIENCE: Duration = Duration::from_millis(200);
/// How long cancelled work may take to notice: generous on a busy machine.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the counters must then stay still.
const WINDOW: Duration = Duration::from_millis(400);

fn start(timeout: Duration) -> (TestServer, Arc<Observations>) {
    let observed = Arc::new(Observations::default());
    let server = TestServer::start(app(observed.clone(), timeout));
    (server, observed)
}

/// How far `count` moves during the [`WINDOW`] that begins [`SETTLE`] from
/// now: 0 once the work has stopped.
async fn steps_after_settling(count: impl Fn() -> u64) -> u64 {
    tokio::time::sleep(SETTLE).await;
    let before = count();
    tokio::time::sleep(WINDOW).await;
    count() - before
}

/// What to suspect when the in-flight gauge reads `gauge`, not 0, after a
/// request that ran to its end.
fn finished_gauge_hint(gauge: i64) -> &'static str {
    if gauge < 0 {
        "A negative count: is the gauge now decremented twice, by a guard and by the old line?"
    } else {
        "Is every request counted in once and out once, on every path?"
    }
}

/// What to suspect when the in-flight gauge reads `gauge`, not 0, after its
/// client left.
fn abandoned_gauge_hint(gauge: i64) -> &'static str {
    if gauge < 0 {
        "A negative count: is the gauge now decremented twice, by a guard and by the old line?"
    } else {
        "When a client leaves, hyper drops the request's future, and the code after its pending \
         `.await` never runs: is the gauge decremented after `next.run(request).await`? Let the \
         `Drop` of a guard do it (chapter 05, 'State that assumes the end')."
    }
}

/// Runs a test's body within [`LIMIT`].
async fn bounded(what: &str, body: impl Future<Output = ()>) {
    within(LIMIT, what, body).await;
}

#[tokio::test]
async fn a_short_report_answers_with_every_section() {
    let (server, _observed) = start(NO_TIMEOUT);
    bounded("GET /report?steps=5", async {
        let reply = get(&server.url("/report?steps=5")).await;
        assert_eq!(
            reply.status, 200,
            "GET /report?steps=5 answered {}: {:?}",
            reply.status, reply.body
        );
        for section in ["sales: 5 rows", "stock: 5 rows", "returns: 5 rows"] {
            assert!(
                reply.body.contains(section),
                "GET /report?steps=5 answered {:?}; expected a line {section:?}",
                reply.body
            );
        }
        let stats = get(&server.url("/stats")).await.json();
        assert_eq!(
            stats["report_steps"], 15,
            "3 sections of 5 steps; /stats says {stats}"
        );
        let gauge = stats["in_flight"].as_i64().unwrap_or(i64::MAX);
        assert_eq!(
            gauge,
            0,
            "/stats says {stats} after the only report was answered; expected in_flight 0. {}",
            finished_gauge_hint(gauge)
        );
    })
    .await;
}

#[tokio::test]
async fn a_short_render_answers_with_its_checksum() {
    let (server, observed) = start(NO_TIMEOUT);
    bounded("GET /render?steps=5", async {
        let reply = get(&server.url("/render?steps=5")).await;
        assert_eq!(
            reply.status, 200,
            "GET /render?steps=5 answered {}: {:?}",
            reply.status, reply.body
        );
        assert!(
            reply.body.starts_with("rendered 5 tiles, checksum "),
            "GET /render?steps=5 answered {:?}; expected \"rendered 5 tiles, checksum ...\"",
            reply.body
        );
        let stats = observed.snapshot();
        assert_eq!(
            stats.render_steps, 5,
            "a render of 5 tiles; the counters say {stats:?}"
        );
        assert_eq!(
            stats.in_flight,
            0,
            "the in-flight gauge reads {} after the only render was answered; expected 0. {}",
            stats.in_flight,
            finished_gauge_hint(stats.in_flight)
        );
    })
    .await;
}

#[tokio::test]
async fn report_work_stops_when_the_client_leaves() {
    let (server, observed) = start(NO_TIMEOUT);
    let path = format!("/report?steps={LONG_WORK}");
    bounded("a client leaving /report, then the report's work", async {
        let answer = leave_after(server.addr(), &path, PATIENCE).await;
        assert_eq!(
            answer, None,
            "GET {path} answered within {PATIENCE:?}; it should take 3 s"
        );
        let before_leaving = observed.snapshot().report_steps;
        let more = steps_after_settling(|| observed.snapshot().report_steps).await;
        assert_eq!(
            more, 0,
            "The report kept working after its client left: {more} more steps in the \
             {WINDOW:?} that began {SETTLE:?} after the hang-up; expected none. When a client \
             leaves, the handler's future is dropped, with no error to react to, and a dropped \
             `JoinHandle` lets its task run on: are the sections `tokio::spawn`ed and awaited \
             through plain `JoinHandle`s? (chapter 05, 'Work that escapes the request')"
        );
        assert!(
            before_leaving > 0,
            "no report step ran in the {PATIENCE:?} before the client left; \
             expected the sections to start at once"
        );
    })
    .await;
}

#[tokio::test]
async fn in_flight_gauge_returns_to_zero_when_a_client_leaves() {
    let (server, observed) = start(NO_TIMEOUT);
    let path = format!("/report?steps={LONG_WORK}");
    bounded(
        "a client leaving /report, then the in-flight gauge",
        async {
            let (addr, path) = (server.addr(), path.clone());
            let client = tokio::spawn(async move { leave_after(addr, &path, PATIENCE).await });
            let mut most_in_flight = 0;
            while !client.is_finished() {
                most_in_flight = most_in_flight.max(observed.snapshot().in_flight);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client.await.expect("the leaving client");
            assert_eq!(
                most_in_flight, 1,
                "While one report was running the in-flight gauge read at most {most_in_flight}; \
             expected 1. If you count with a guard now, is it bound with `let _ = ...`? That \
             drops it at once; give it a name (`let _in_flight = ...`)."
            );

            let in_flight = || observed.snapshot().in_flight;
            eventually(SETTLE + WINDOW, || in_flight() == 0).await;
            let gauge = in_flight();
            assert_eq!(
                gauge,
                0,
                "The in-flight gauge reads {gauge} {:?} after the only client left; expected 0. {}",
                SETTLE + WINDOW,
                abandoned_gauge_hint(gauge)
            );
        },
    )
    .await;
}

#[tokio::test]
async fn a_timed_out_render_answers_503_and_stops() {
    let (server, observed) = start(SHORT_TIMEOUT);
    let url = server.url(&format!("/render?steps={LONG_WORK}"));
    bounded(
        "GET /render past its timeout, then the render's work",
        async {
            let reply = send(reqwest::Client::new().get(&url)).await;
            assert_eq!(
                reply.status, 503,
                "GET /render?steps={LONG_WORK} (3 s of work, a {SHORT_TIMEOUT:?} timeout) answered \
             {} after {:?}; expected 503 Service Unavailable from the timeout. Is the \
             `TimeoutLayer` still there, with `StatusCode::SERVICE_UNAVAILABLE`? \
             (chapter 05, 'Which status for a timeout')",
                reply.status, reply.elapsed
            );
            assert!(
                reply.elapsed < Duration::from_secs(2),
                "the 503 came after {:?}; with a {SHORT_TIMEOUT:?} timeout it should come at once",
                reply.elapsed
            );
            let more = steps_after_settling(|| observed.snapshot().render_steps).await;
            assert_eq!(
                more, 0,
                "The render timed out and answered 503, but its work went on: {more} more tiles in \
             the {WINDOW:?} that began {SETTLE:?} after the answer; expected none. A timeout \
             drops the handler's future and nothing else, and no one can abort a loop on a \
             blocking thread from outside: does the loop check a `CancellationToken` \
             (`is_cancelled()`) that the handler cancels when it is dropped (`drop_guard`)? \
             (chapter 05, 'A loop on a blocking thread')"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn render_work_stops_when_the_client_leaves() {
    let (server, observed) = start(NO_TIMEOUT);
    let path = format!("/render?steps={LONG_WORK}");
    bounded("a client leaving /render, then the render's work", async {
        let answer = leave_after(server.addr(), &path, PATIENCE).await;
        assert_eq!(
            answer, None,
            "GET {path} answered within {PATIENCE:?}; it should take 3 s"
        );
        let before_leaving = observed.snapshot().render_steps;
        let more = steps_after_settling(|| observed.snapshot().render_steps).await;
        assert_eq!(
            more, 0,
            "The render kept working after its client left: {more} more tiles in the \
             {WINDOW:?} that began {SETTLE:?} after the hang-up; expected none (no timeout \
             was involved). Dropping the handler cannot stop a loop on a blocking thread, nor \
             can aborting its task once it runs: the loop must check something. Cancel a \
             `CancellationToken` from a guard that drops with the handler (`drop_guard`), not \
             only when a timeout fires, and check `is_cancelled()` on every pass of the loop \
             (chapter 05, 'A loop on a blocking thread')"
        );
        assert!(
            before_leaving > 0,
            "no tile was rendered in the {PATIENCE:?} before the client left; \
             expected the render to start at once"
        );
    })
    .await;
}
