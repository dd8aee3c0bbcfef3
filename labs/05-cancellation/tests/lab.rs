//! The checks of lab 05, run with `cargo test -p cancellation`.
//!
//! They watch the work itself. The app counts its report steps, rendered tiles
//! and requests in flight ([`Observations`]); a test hangs up on a slow
//! request (or lets the timeout fire), gives the cancellation a moment to
//! arrive, and then checks that the counters have stopped moving.
//!
//! The work asked for is long (300 steps of 10 ms: 3 s) and the moment is
//! generous (300 ms), so that work which stops passes on a busy machine, and
//! work which goes on fails every time. Work that stops at once is seen
//! still sooner, and passes without waiting out the whole moment.
//!
//! Every failure message says what was observed, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cancellation::{Observations, STEP, app};
use lab_support::client::{get, leave_after, send};
use lab_support::{TestServer, eventually, within};

const LIMIT: Duration = Duration::from_secs(10);

/// A per-request timeout no test reaches, for the tests about clients leaving.
const NO_TIMEOUT: Duration = Duration::from_secs(60);
/// The per-request timeout of the timeout test.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
/// Work that is still going on long after the test has looked: 3 s.
const LONG_WORK: u32 = 300;
/// A report that is over soon after the test has looked: 1 s.
const SHORT_WORK: u32 = 100;
/// How long a client waits for an answer before it hangs up.
const PATIENCE: Duration = Duration::from_millis(200);
/// How long cancelled work may take to notice: generous on a busy machine.
const SETTLE: Duration = Duration::from_millis(300);
/// How long the counters must then stay still.
const WINDOW: Duration = Duration::from_millis(400);

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("05-cancellation.html");

fn start(timeout: Duration) -> (TestServer, Arc<Observations>) {
    let observed = Arc::new(Observations::default());
    let server = TestServer::start(app(observed.clone(), timeout));
    (server, observed)
}

/// How often the counters are read while waiting for them to stop.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// How far `count` moves during the [`WINDOW`] that begins [`SETTLE`] from
/// now: 0 once the work has stopped. The answer is 0 as soon as `count` has
/// stood still for a whole [`WINDOW`], beginning within [`SETTLE`]: work that
/// stops at once does not wait out the rest of [`SETTLE`].
async fn steps_after_settling(count: impl Fn() -> u64) -> u64 {
    let began = Instant::now();
    let (mut last, mut still_since) = (count(), began);
    let mut at_settle = None;
    loop {
        tokio::time::sleep(LOOK_EVERY).await;
        let now = count();
        if now != last {
            (last, still_since) = (now, Instant::now());
        } else if still_since.elapsed() >= WINDOW {
            return 0;
        }
        if began.elapsed() >= SETTLE {
            let before = *at_settle.get_or_insert(now);
            if began.elapsed() >= SETTLE + WINDOW {
                return now - before;
            }
        }
    }
}

/// What to suspect when the in-flight gauge reads `gauge`, not 0, after a
/// request that ran to its end.
fn finished_gauge_hint(gauge: i64) -> &'static str {
    if gauge < 0 {
        "A negative count: is the gauge now decremented twice, in two places?"
    } else {
        "Is every request counted in once and out once, on every path?"
    }
}

/// What to suspect when the in-flight gauge reads `gauge`, not 0, after its
/// client left. (When a client leaves, hyper drops the request's future at
/// the `.await` where it waits; no line after that `.await` ever runs.)
fn abandoned_gauge_hint(gauge: i64) -> &'static str {
    if gauge < 0 {
        "A negative count: is the gauge now decremented twice, in two places?"
    } else {
        "The code after a pending .await never runs once the client has left: is the gauge \
         decremented after `next.run(request).await`?"
    }
}

/// What to suspect when a render whose client was waiting is answered 503
/// before a single tile, as if called off the moment it began.
const CALLED_OFF_AT_ONCE: &str = "The render was called off as it began, though its client was \
     waiting: is what calls it off fired at once, by a guard bound with `let _ = ...`?";

/// Runs a test's body within [`LIMIT`].
async fn bounded(what: &str, body: impl Future<Output = ()>) {
    within(LIMIT, what, body).await;
}

/// A short report runs to its end: every section, every step counted, and
/// the gauge back at 0. Whatever makes abandoned work stop must not stop
/// work that someone still waits for.
#[tokio::test]
async fn a_short_report_answers_with_every_section() {
    let (server, _observed) = start(NO_TIMEOUT);
    bounded("GET /report?steps=5", async {
        let reply = get(&server.url("/report?steps=5")).await;
        assert!(
            reply.status == 200,
            "GET /report?steps=5 answered {} {:?}; expected 200 OK.\n\
             Read: {CHAPTER}#the-exercise",
            reply.status,
            reply.body
        );
        for section in ["sales: 5 rows", "stock: 5 rows", "returns: 5 rows"] {
            assert!(
                reply.body.contains(section),
                "GET /report?steps=5 answered {:?}; expected a line {section:?}.\n\
                 Read: {CHAPTER}#the-exercise",
                reply.body
            );
        }
        let stats = get(&server.url("/stats")).await.json();
        assert!(
            stats["report_steps"] == 15,
            "/stats says {stats} after a report of 3 sections of 5 steps; expected \
             \"report_steps\": 15.\n\
             Read: {CHAPTER}#the-exercise"
        );
        let gauge = stats["in_flight"].as_i64().unwrap_or(i64::MAX);
        assert!(
            gauge == 0,
            "/stats says {stats} after the only report was answered; expected \"in_flight\": 0.\n\
             {}\n\
             Read: {CHAPTER}#state-that-assumes-the-end",
            finished_gauge_hint(gauge)
        );
    })
    .await;
}

/// A short render runs to its end too: every tile, and the gauge back at 0.
#[tokio::test]
async fn a_short_render_answers_with_its_checksum() {
    let (server, observed) = start(NO_TIMEOUT);
    bounded("GET /render?steps=5", async {
        let reply = get(&server.url("/render?steps=5")).await;
        let tiles = observed.snapshot().render_steps;
        assert!(
            reply.status == 200 || tiles > 0,
            "GET /render?steps=5 answered {} after {:?}, before a single tile was rendered; \
             expected 200 \"rendered 5 tiles, checksum ...\".\n\
             {CALLED_OFF_AT_ONCE}\n\
             Read: {CHAPTER}#a-loop-on-a-blocking-thread",
            reply.status,
            reply.elapsed
        );
        assert!(
            reply.status == 200 && reply.body.starts_with("rendered 5 tiles, checksum "),
            "GET /render?steps=5 answered {} {:?}; expected 200 \"rendered 5 tiles, checksum \
             ...\".\n\
             Read: {CHAPTER}#the-exercise",
            reply.status,
            reply.body
        );
        let stats = observed.snapshot();
        assert!(
            stats.render_steps == 5,
            "the counters say {stats:?} after a render of 5 tiles; expected render_steps: 5.\n\
             Read: {CHAPTER}#the-exercise"
        );
        assert!(
            stats.in_flight == 0,
            "the in-flight gauge reads {} after the only render was answered; expected 0.\n\
             {}\n\
             Read: {CHAPTER}#state-that-assumes-the-end",
            stats.in_flight,
            finished_gauge_hint(stats.in_flight)
        );
    })
    .await;
}

/// A client asks for a 3 s report and hangs up after 200 ms: the report's
/// steps must stop. When a client leaves, hyper drops the handler's future;
/// there is no error to react to, the handler simply never runs again, and
/// everything the future owns stops with it. What it does not own goes on:
/// a task started with `tokio::spawn` belongs to the runtime, and dropping
/// its `JoinHandle` detaches it rather than stopping it.
#[tokio::test]
async fn report_work_stops_when_the_client_leaves() {
    let (server, observed) = start(NO_TIMEOUT);
    let path = format!("/report?steps={LONG_WORK}");
    bounded("a client leaving /report, then the report's work", async {
        let answer = leave_after(server.addr(), &path, PATIENCE).await;
        assert!(
            answer.is_none(),
            "GET {path} answered within {PATIENCE:?} ({answer:?}); expected no answer yet: the \
             report takes 3 s.\n\
             Read: {CHAPTER}#the-exercise"
        );
        let before_leaving = observed.snapshot().report_steps;
        let more = steps_after_settling(|| observed.snapshot().report_steps).await;
        let suspect = if observed.snapshot().in_flight == 0 {
            "Is the report's work running in tasks that nothing stops when the handler is \
             dropped?"
        } else {
            "Is the report's work, or the whole request (it still counts as in flight), running \
             in a task that nothing stops when the client leaves?"
        };
        assert!(
            more == 0,
            "The report kept working after its client left: {more} more steps in the {WINDOW:?} \
             that began {SETTLE:?} after the hang-up; expected none.\n\
             {suspect}\n\
             Read: {CHAPTER}#work-that-escapes-the-request"
        );
        assert!(
            before_leaving > 0,
            "no report step ran in the {PATIENCE:?} before the client left; expected the \
             sections to start at once.\n\
             Read: {CHAPTER}#the-exercise"
        );
    })
    .await;
}

/// The same client, watched through the in-flight gauge: 1 while the report
/// runs, 0 once its client has left. A gauge decremented by a line after the
/// handler's `.await` stays up forever when the client leaves, because that
/// line never runs. (A value whose `Drop` does the decrement runs however the
/// request ends; bound to `_`, though, it is dropped on the spot, and the
/// gauge never shows the request at all.) The report here is short (1 s), so
/// that a gauge which does come down, but only once the report's work is
/// done, is seen too: then the request ran to its end with nobody waiting,
/// in a task of its own that hyper cannot drop.
#[tokio::test]
async fn in_flight_gauge_returns_to_zero_when_a_client_leaves() {
    let (server, observed) = start(NO_TIMEOUT);
    let path = format!("/report?steps={SHORT_WORK}");
    bounded(
        "a client leaving /report, then the in-flight gauge",
        async {
            let sent = Instant::now();
            let (addr, path) = (server.addr(), path.clone());
            let client = tokio::spawn(async move { leave_after(addr, &path, PATIENCE).await });
            let mut most_in_flight = 0;
            while !client.is_finished() {
                most_in_flight = most_in_flight.max(observed.snapshot().in_flight);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            client.await.expect("the leaving client");
            assert!(
                most_in_flight == 1,
                "While one report was running the in-flight gauge read at most {most_in_flight}; \
                 expected 1.\n\
                 The request was counted out as soon as it was counted in: is a guard bound with \
                 `let _ = ...`, which drops it on the spot?\n\
                 Read: {CHAPTER}#state-that-assumes-the-end"
            );

            let in_flight = || observed.snapshot().in_flight;
            if eventually(SETTLE + WINDOW, || in_flight() == 0).await {
                return;
            }
            // Still up: wait out the report's own second of work (and then some).
            let report_done = STEP * SHORT_WORK + SETTLE;
            let back_to_zero = eventually(report_done.saturating_sub(sent.elapsed()), || {
                in_flight() == 0
            })
            .await;
            assert!(
                !back_to_zero,
                "The in-flight gauge came back to 0 only {:.1?} after the request, when its \
                 report's work was done, though its client left after {PATIENCE:?}; expected 0 \
                 within {:?} of the hang-up.\n\
                 The request ran to its end with nobody waiting: is it running in a task of its \
                 own, which hyper cannot drop when the client leaves?\n\
                 Read: {CHAPTER}#work-that-escapes-the-request",
                sent.elapsed(),
                SETTLE + WINDOW
            );
            let gauge = in_flight();
            panic!(
                "The in-flight gauge reads {gauge}, {:.1?} after the only client left; expected \
                 0.\n\
                 {}\n\
                 Read: {CHAPTER}#state-that-assumes-the-end",
                sent.elapsed() - PATIENCE,
                abandoned_gauge_hint(gauge)
            );
        },
    )
    .await;
}

/// A render of 3 s with a 300 ms budget: the timeout answers 503 at once,
/// and the render's tiles must stop. The timeout drops the handler's future
/// and nothing else. The render's loop runs on a blocking thread, where
/// nothing can stop it from outside (a running blocking task cannot be
/// aborted): the loop stops only if it checks, on every pass, something that
/// the dropped handler leaves behind.
#[tokio::test]
async fn a_timed_out_render_answers_503_and_stops() {
    let (server, observed) = start(SHORT_TIMEOUT);
    let url = server.url(&format!("/render?steps={LONG_WORK}"));
    bounded(
        "GET /render past its timeout, then the render's work",
        async {
            let reply = send(reqwest::Client::new().get(&url)).await;
            let all_the_work = STEP * LONG_WORK;
            assert!(
                reply.status == 503 || reply.elapsed < all_the_work / 2,
                "GET /render?steps={LONG_WORK} (3 s of work, a {SHORT_TIMEOUT:?} timeout) \
                 answered {} after {:.2?}, when its work was all done; expected 503 after \
                 {SHORT_TIMEOUT:?}.\n\
                 The timeout never got its turn: does the render's loop hold the handler's \
                 thread from tile to tile, with no .await where a timeout can step in?\n\
                 Read: {CHAPTER}#a-loop-on-a-blocking-thread",
                reply.status,
                reply.elapsed
            );
            assert!(
                reply.status == 503,
                "GET /render?steps={LONG_WORK} (3 s of work, a {SHORT_TIMEOUT:?} timeout) \
                 answered {} after {:?}; expected 503 Service Unavailable from the timeout.\n\
                 Is the server's timeout still in place, answering 503?\n\
                 Read: {CHAPTER}#which-status-for-a-timeout",
                reply.status,
                reply.elapsed
            );
            assert!(
                reply.elapsed < Duration::from_secs(2),
                "the 503 came after {:?}; expected it at once, with a {SHORT_TIMEOUT:?} timeout.\n\
                 Is something holding the answer back after the timeout fired?\n\
                 Read: {CHAPTER}#which-status-for-a-timeout",
                reply.elapsed
            );
            let more = steps_after_settling(|| observed.snapshot().render_steps).await;
            assert!(
                more == 0,
                "The render timed out and answered 503, but its work went on: {more} more tiles \
                 in the {WINDOW:?} that began {SETTLE:?} after the answer; expected none.\n\
                 Does the loop on the blocking thread ever learn that nobody waits for it?\n\
                 Read: {CHAPTER}#a-loop-on-a-blocking-thread"
            );
        },
    )
    .await;
}

/// A client leaves a 3 s render after 200 ms, with no timeout involved: the
/// tiles must stop as well. Whatever tells the loop to stop has to be set
/// however the handler ends (answered, timed out, or dropped because its
/// client left), not only in the branch that handles a timeout.
#[tokio::test]
async fn render_work_stops_when_the_client_leaves() {
    let (server, observed) = start(NO_TIMEOUT);
    let path = format!("/render?steps={LONG_WORK}");
    bounded("a client leaving /render, then the render's work", async {
        let answer = leave_after(server.addr(), &path, PATIENCE).await;
        let called_off = answer.as_deref().is_some_and(|line| line.contains(" 503 "))
            && observed.snapshot().render_steps == 0;
        assert!(
            answer.is_none(),
            "GET {path} answered within {PATIENCE:?} ({answer:?}); expected no answer yet: the \
             render takes 3 s.\n\
             {}Read: {CHAPTER}#the-exercise",
            if called_off {
                format!("{CALLED_OFF_AT_ONCE}\n")
            } else {
                String::new()
            }
        );
        let before_leaving = observed.snapshot().render_steps;
        let more = steps_after_settling(|| observed.snapshot().render_steps).await;
        let suspect = if observed.snapshot().in_flight == 0 {
            "Does the render's loop hear of a client leaving, or only of timeouts, or of nothing \
             at all?"
        } else {
            "Does the render's loop hear of a client leaving? (The request still counts as in \
             flight: is its handler still running, never dropped?)"
        };
        assert!(
            more == 0,
            "The render kept working after its client left: {more} more tiles in the {WINDOW:?} \
             that began {SETTLE:?} after the hang-up; expected none (no timeout was involved).\n\
             {suspect}\n\
             Read: {CHAPTER}#a-loop-on-a-blocking-thread"
        );
        assert!(
            before_leaving > 0,
            "no tile was rendered in the {PATIENCE:?} before the client left; expected the \
             render to start at once.\n\
             Read: {CHAPTER}#the-exercise"
        );
    })
    .await;
}

/// How many renders [`stats_answer_at_once_while_renders_run`] runs at once.
const RENDERS: usize = 4;
/// How long each of them is: 0.5 s on a thread of its own.
const RENDER_WORK: u32 = 50;

/// While renders run, the server still answers everyone else at once. A
/// render is CPU-bound: each tile holds a thread for 10 ms. Run on the
/// runtime's own threads, the loop can be made to stop when its client leaves
/// (an `.await` between tiles is a point where dropping the future stops it),
/// but every tile still takes a runtime thread away from every other request:
/// chapter 01's bug. On a server with one runtime thread, as here, a cheap
/// `GET /stats` then waits for tile after tile; the loop belongs beside the
/// runtime, on a thread of its own.
#[tokio::test]
async fn stats_answer_at_once_while_renders_run() {
    let observed = Arc::new(Observations::default());
    let server = TestServer::start_current_thread(app(observed.clone(), NO_TIMEOUT));
    let render_url = server.url(&format!("/render?steps={RENDER_WORK}"));
    bounded("GET /stats while renders run", async {
        let renders: Vec<_> = (0..RENDERS)
            .map(|_| {
                let url = render_url.clone();
                tokio::spawn(async move { get(&url).await })
            })
            .collect();
        let started = eventually(Duration::from_secs(2), || {
            observed.snapshot().render_steps >= RENDERS as u64
                || renders.iter().all(|render| render.is_finished())
        })
        .await;
        let tiles = observed.snapshot().render_steps;
        if tiles < RENDERS as u64 {
            let mut answers = Vec::new();
            for render in renders.iter().filter(|render| !render.is_finished()) {
                render.abort();
            }
            for render in renders {
                if let Ok(reply) = render.await {
                    answers.push(reply.status.as_u16());
                }
            }
            panic!(
                "{RENDERS} renders were asked for, and {} tiles were done {}; expected them to \
                 start at once and take about {:?}.\n\
                 {}Read: {CHAPTER}#the-exercise",
                tiles,
                if started {
                    format!("before they were answered {answers:?}")
                } else {
                    "after 2 s".to_owned()
                },
                STEP * RENDER_WORK,
                if answers.contains(&503) {
                    format!("{CALLED_OFF_AT_ONCE}\n")
                } else {
                    String::new()
                }
            );
        }

        let stats_url = server.url("/stats");
        // Nine tries, or fewer if the server is that slow to answer.
        let patience = Duration::from_secs(1);
        let asking = Instant::now();
        let mut took = Vec::new();
        while took.len() < 9 && asking.elapsed() < 2 * patience {
            match tokio::time::timeout(patience, get(&stats_url)).await {
                Ok(reply) => took.push(reply.elapsed),
                Err(_) => took.push(patience),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        took.sort_unstable();
        let median = took[took.len() / 2];
        assert!(
            median < 2 * STEP,
            "GET /stats took {median:.1?} to answer (the median of {} tries; the slowest \
             {:.1?}) while {RENDERS} renders ran; expected a few ms: nothing should wait for a \
             render.\n\
             A render is holding the runtime's thread from tile to tile: does its loop run on \
             the runtime, instead of on a thread of its own?\n\
             Read: {CHAPTER}#a-loop-on-a-blocking-thread",
            took.len(),
            took[took.len() - 1]
        );
        for render in renders {
            let reply = render.await.expect("a render's client");
            assert!(
                reply.status == 200,
                "GET /render?steps={RENDER_WORK} answered {} {:?}; expected 200.\n\
                 Read: {CHAPTER}#the-exercise",
                reply.status,
                reply.body
            );
        }
    })
    .await;
}

/// Stretch (opt in with `cargo test -p cancellation -- --ignored stretch_`):
/// count the requests whose client left before the answer, as nginx logs
/// them with status 499. `/stats` reports them as `"client_gone"`: a request
/// that is answered (even with the timeout's 503) does not count, one whose
/// future is dropped because its client hung up does. The same idea as the
/// gauge, one step further: a guard whose `Drop` knows whether the request
/// got to its end. The reference solution does not count them; this is
/// yours to add.
#[tokio::test]
#[ignore = "stretch: /stats counts the requests whose client left before the answer (`client_gone`)"]
async fn stretch_stats_count_the_clients_who_left() {
    let (server, _observed) = start(NO_TIMEOUT);
    let client_gone = || async {
        let stats = get(&server.url("/stats")).await.json();
        stats["client_gone"].as_u64().unwrap_or_else(|| {
            panic!(
                "/stats says {stats}; expected a count of requests whose client left, `client_gone`"
            )
        })
    };
    bounded("a short report, a client leaving, then /stats", async {
        let short = get(&server.url("/report?steps=5")).await;
        assert!(
            short.status == 200,
            "GET /report?steps=5 answered {}",
            short.status
        );
        let after_answered = client_gone().await;
        assert!(
            after_answered == 0,
            "/stats says \"client_gone\": {after_answered} after one report that was answered in \
             full; expected 0."
        );

        let path = format!("/report?steps={LONG_WORK}");
        leave_after(server.addr(), &path, PATIENCE).await;
        let mut counted = 0;
        for _ in 0..20 {
            counted = client_gone().await;
            if counted > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            counted == 1,
            "/stats says \"client_gone\": {counted} after one client left GET {path} before its \
             answer; expected 1."
        );
    })
    .await;
}
