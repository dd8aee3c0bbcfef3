//! Two calls at the same instant, for a race between a check and an act.
//!
//! A limit that looks (how many places are free?) and then takes (one of
//! them) in two steps can let two callers through for one place, if they
//! come between each other's steps. Over sockets that is rare, because the
//! network spreads requests out; here, apps are called in-process on two
//! threads of their own, each pair released at the same instant, and the
//! pairs that really started together are counted, so that a test can tell
//! "no race seen" from "no race tried" (a machine too busy to run both
//! threads at once). Labs 03 and 07 use it for their last free place.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use futures::FutureExt;
use futures::future::join_all;
use tower::ServiceExt;

/// `GET path`, answered by `app` in-process (no sockets): the status, and
/// the time from the call to the answer.
pub async fn call(app: Router, path: String) -> (StatusCode, Duration) {
    let request = axum::http::Request::get(&path)
        .body(Body::empty())
        .unwrap_or_else(|e| panic!("GET {path}: not a valid request ({e})"));
    let sent = Instant::now();
    let response = app
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    (response.status(), sent.elapsed())
}

/// Where the two calls of a pair wait for each other, so that they start at
/// the same instant on two threads.
///
/// Two callers, one per thread, sleep until the same tick of a clock, then
/// take tickets: tickets `2k` and `2k + 1` are a pair. The caller with the
/// even ticket spins until the other takes the odd one (or gives up after
/// [`Self::PATIENCE`]), and then both go. The sleep is what makes the pairs
/// meet on a loaded machine: a thread that wakes from a sleep gets a core
/// promptly, so both threads run at the same moment, even when a running
/// thread would wait milliseconds for its turn. The line counts the pairs
/// that really met.
struct StartLine {
    /// When the line was set up: the clock of the ticks and `released_at`.
    opened: Instant,
    /// Tickets taken so far.
    arrived: AtomicUsize,
    /// The last odd ticket taken, releasing the even one before it.
    released: AtomicUsize,
    /// When it was taken, in nanoseconds since `opened`.
    released_at: AtomicUsize,
    /// Pairs that started together.
    together: AtomicUsize,
}

impl StartLine {
    /// The time between two ticks: the pace of the pairs.
    const TICK: Duration = Duration::from_micros(250);
    /// How long the first of a pair waits for its partner, at most.
    const PATIENCE: Duration = Duration::from_micros(100);
    /// How much longer, from one pair to the next, the one that releases
    /// holds back, and in how many steps, before it starts over.
    const STEP: Duration = Duration::from_nanos(40);
    const STEPS: usize = 16;
    /// The most time between two calls of a pair that still counts as
    /// together.
    const TOGETHER: Duration = Duration::from_micros(5);

    fn new() -> Self {
        StartLine {
            opened: Instant::now(),
            arrived: AtomicUsize::new(0),
            released: AtomicUsize::new(usize::MAX),
            released_at: AtomicUsize::new(0),
            together: AtomicUsize::new(0),
        }
    }

    /// Nanoseconds since the line was set up.
    fn now(&self) -> usize {
        self.opened.elapsed().as_nanos() as usize
    }

    /// Sleeps (the whole thread) until the next tick, then takes a ticket.
    fn ticket(&self) -> usize {
        let tick = Self::TICK.as_nanos() as usize;
        let next = (self.now() / tick + 1) * tick;
        std::thread::sleep(Duration::from_nanos(
            (next.saturating_sub(self.now())) as u64,
        ));
        self.arrived.fetch_add(1, Ordering::SeqCst)
    }

    /// Returns when `ticket`'s partner has come, or after [`Self::PATIENCE`].
    fn wait_for_partner(&self, ticket: usize) {
        if ticket % 2 == 1 {
            self.released_at.store(self.now(), Ordering::SeqCst);
            self.released.store(ticket, Ordering::SeqCst);
            // The partner sees the release a little later, and two calls
            // never take exactly the same time to reach their first steps:
            // so the one that releases holds back for a while, a little
            // longer from one pair to the next, to meet the other at every
            // offset in turn.
            let offset = Self::STEP * (ticket / 2 % Self::STEPS) as u32;
            let until = Instant::now() + offset;
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            return;
        }
        let waiting = Instant::now();
        while self.released.load(Ordering::SeqCst) != ticket + 1 {
            if waiting.elapsed() > Self::PATIENCE {
                return;
            }
            std::hint::spin_loop();
        }
        let apart = self
            .now()
            .saturating_sub(self.released_at.load(Ordering::SeqCst));
        if apart <= Self::TOGETHER.as_nanos() as usize {
            self.together.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Pairs that started together so far.
    fn together(&self) -> usize {
        self.together.load(Ordering::SeqCst)
    }
}

/// Each app's answers: status, and time from call to answer.
pub type Answers = Vec<Mutex<Vec<(StatusCode, Duration)>>>;

/// Calls apps of `apps` twice each with `GET path`, the two calls released
/// at the same instant on two threads, until `together` pairs have started
/// together, the apps run out, or `deadline` passes. Returns each app's
/// answers as they come (a call that answers at once is recorded at once;
/// one that waits goes on in a task of its own, and is recorded if it ever
/// answers), how many apps were called twice, and how many pairs started
/// together.
pub async fn two_calls_at_once(
    apps: &[Router],
    path: &str,
    together: usize,
    deadline: Instant,
) -> (Arc<Answers>, usize, usize) {
    let answers: Arc<Answers> = Arc::new(apps.iter().map(|_| Mutex::default()).collect());
    let apps: Arc<[Router]> = apps.into();
    let line = Arc::new(StartLine::new());
    // Two threads of their own, not tasks: two tasks may share a thread.
    // They still see the test's runtime, where a call that waits goes on.
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (apps, line, answers, path) =
                (apps.clone(), line.clone(), answers.clone(), path.to_owned());
            tokio::task::spawn_blocking(move || {
                while line.together() < together && Instant::now() < deadline {
                    let ticket = line.ticket();
                    let Some(app) = apps.get(ticket / 2).cloned() else {
                        return;
                    };
                    let answers = answers.clone();
                    let mut answer = Box::pin(call(app, path.clone()).map(move |answer| {
                        answers[ticket / 2].lock().unwrap().push(answer);
                    }));
                    line.wait_for_partner(ticket);
                    if (&mut answer).now_or_never().is_none() {
                        tokio::spawn(answer);
                    }
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("a caller panicked");
    }
    // An app whose second call never came is left out.
    let called = (line.arrived.load(Ordering::SeqCst) / 2).min(apps.len());
    (answers, called, line.together())
}

/// Calls each of `apps` once with `GET path`, all at once, and says whether
/// every call was refused (503) within `at_once`: the control a race test
/// runs first, once each app's last place is taken, so that an app that
/// lets a second caller in without any race gets a message of its own.
pub async fn all_refuse_at_once(apps: &[Router], path: &str, at_once: Duration) -> bool {
    let answers = join_all(
        apps.iter()
            .map(|app| tokio::time::timeout(at_once, call(app.clone(), path.to_owned()))),
    )
    .await;
    answers
        .iter()
        .all(|answer| matches!(answer, Ok((StatusCode::SERVICE_UNAVAILABLE, _))))
}
