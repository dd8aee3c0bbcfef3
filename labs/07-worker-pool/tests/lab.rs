//! The checks of lab 07, run with `cargo test -p worker-pool`.
//!
//! A pool of 2 workers and a queue of 3 gets jobs over real sockets, each on
//! its own connection, as if from its own client. The pool counts what it
//! does (`worker_pool::Stats`, also served as `GET /stats`): busy workers,
//! queued jobs, jobs done and jobs skipped. A test first makes every worker
//! busy with a long job and waits until the counts say so; only then does it
//! send what it is testing, so that no worker can free a place in the queue
//! while the test is still knocking. Once the work is done, the tests read
//! the counts again: a gauge that does not come back to zero is a leak.
//!
//! One race needs more than sockets: two jobs for the last place at the same
//! instant. That test calls hundreds of small pools in-process, two calls
//! released together on two threads for each.
//!
//! Every failure message says what was observed, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use futures::future::join_all;
use lab_support::client::{Reply, burst, get, leave_after, try_send};
use lab_support::process::LabProcess;
use lab_support::race::{all_refuse_at_once, call, two_calls_at_once};
use lab_support::{TestServer, eventually, lab_binary, within};
use reqwest::{Client, StatusCode};
use tokio::task::JoinSet;
use worker_pool::{PoolSize, Stats, app};

/// The pool under test: small, so that a handful of requests fills it.
const SIZE: PoolSize = PoolSize {
    workers: 2,
    queue: 3,
};
/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(10);
/// A job that keeps its worker busy while a test knocks: three times as
/// long as the knocking.
const LONG_JOB_MS: u64 = 600;
/// The time between two jobs sent to a busy pool: 6 of them take a third of
/// a long job. Enough for anything that takes jobs off the queue to have its
/// turn between two knocks.
const KNOCK_EVERY: Duration = Duration::from_millis(30);
/// How long a refused request may wait for its 503 at most, whatever the
/// load: half a long job.
const REFUSAL_PATIENCE: Duration = Duration::from_millis(500);

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("07-worker-pool.html");

/// Serves the lab's app with a pool of `size`, and hands back its counts.
///
/// The app starts its workers on the runtime that builds it: this test's.
/// The server's connections run on a runtime of their own (see `TestServer`).
fn start(size: PoolSize) -> (TestServer, Stats) {
    let stats = Stats::default();
    let server = TestServer::start(app(size, stats.clone()));
    (server, stats)
}

/// The path of a job for `n` that takes a worker `ms` milliseconds.
fn job(n: u64, ms: u64) -> String {
    format!("/job?n={n}&ms={ms}")
}

/// Waits until every worker is busy, or fails the test saying how far the
/// pool got, with `jobs` describing what was sent to it.
async fn wait_until_every_worker_is_busy(stats: &Stats, jobs: &str) {
    let workers = SIZE.workers;
    let occupied = eventually(Duration::from_secs(3), || stats.busy() == workers).await;
    assert!(
        occupied,
        "{jobs} went to an idle pool of {workers} workers, but in 3 s at most {} of them ran \
         at once (now busy: {}, queued: {}, done: {}); expected busy: {workers}.\n\
         Do the workers run side by side? A worker that holds the queue while it works makes \
         the others wait, and so does a queue per worker, where a job waits for its own \
         worker while another is idle.\n\
         Read: {CHAPTER}#workers-side-by-side",
        stats.peak(),
        stats.busy(),
        stats.queued(),
        stats.done()
    );
}

/// Gives every worker a job of `ms` milliseconds and waits until they are
/// all busy. The requests stay open until the returned set is dropped, which
/// hangs up on them.
async fn occupy_every_worker(server: &TestServer, stats: &Stats, ms: u64) -> JoinSet<()> {
    let client = Client::new();
    let mut requests = JoinSet::new();
    for n in 0..SIZE.workers {
        let request = client.get(server.url(&job(n as u64, ms)));
        requests.spawn(async move {
            let _ = try_send(request).await;
        });
    }
    wait_until_every_worker_is_busy(stats, &format!("{} jobs", SIZE.workers)).await;
    requests
}

/// The square a job for `n` must answer.
fn square_of(reply: &Reply) -> Option<(u64, u64)> {
    let answer = reply.json();
    Some((answer["n"].as_u64()?, answer["square"].as_u64()?))
}

/// The middle one of some durations (the upper middle of an even count).
fn median(mut durations: Vec<Duration>) -> Duration {
    durations.sort_unstable();
    durations
        .get(durations.len() / 2)
        .copied()
        .unwrap_or_default()
}

/// What a test saw of a busy pool that jobs knocked on.
struct Knocks {
    /// The jobs' replies, in the order they were sent.
    replies: Vec<Reply>,
    /// How long each `GET /stats` sent alongside took.
    pages: Vec<Duration>,
    /// The pool just after the last knock: busy workers, jobs done, jobs
    /// queued, and jobs answered so far.
    busy: usize,
    done: usize,
    queued: usize,
    answered: usize,
}

impl Knocks {
    /// The jobs answered 200: accepted, waited, worked on.
    fn accepted(&self) -> usize {
        self.replies
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count()
    }

    /// Jobs that, just after the last knock, were neither answered nor
    /// counted in the queue: they were waiting somewhere else.
    fn waiting_elsewhere(&self) -> usize {
        self.replies
            .len()
            .saturating_sub(self.answered + self.queued)
    }
}

/// Sends `knocks` short jobs (for n = 10, 11, ...) to a busy pool, one every
/// [`KNOCK_EVERY`], and with each a `GET /stats` on a connection of its own:
/// a request that waits for nothing, to tell how long a fast answer takes
/// on this machine right now. Looks at the pool's counts just after the last
/// knock, and returns once every job has its answer.
async fn knock(server: &TestServer, stats: &Stats, knocks: usize) -> Knocks {
    let client = Client::new();
    let answered = AtomicUsize::new(0);
    let sending = join_all((0..knocks).map(|i| {
        let knock = client.get(server.url(&job(10 + i as u64, 10)));
        let page = client.get(server.url("/stats"));
        let answered = &answered;
        async move {
            tokio::time::sleep(KNOCK_EVERY * i as u32).await;
            let (knock, page) = tokio::join!(
                async {
                    let knock = try_send(knock).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    knock
                },
                try_send(page)
            );
            (knock, page)
        }
    }));
    let look = async {
        tokio::time::sleep(KNOCK_EVERY * knocks as u32).await;
        let answered = answered.load(Ordering::SeqCst);
        (stats.busy(), stats.done(), stats.queued(), answered)
    };
    let what = format!("{knocks} jobs sent to a busy pool");
    let (answers, (busy, done, queued, answered)) =
        within(LIMIT, &what, async { tokio::join!(sending, look) }).await;
    let (replies, pages) = answers
        .into_iter()
        .map(|(knock, page)| {
            let knock = knock.unwrap_or_else(|error| {
                panic!(
                    "a job sent to a busy pool got no response ({error}); expected 200 or 503.\n\
                     Did the server close the connection instead of answering?\n\
                     Read: {CHAPTER}#the-exercise"
                )
            });
            let page = page.map_or(Duration::MAX, |page| page.elapsed);
            (knock, page)
        })
        .unzip();
    Knocks {
        replies,
        pages,
        busy,
        done,
        queued,
        answered,
    }
}

/// Checks the pool's counts once the work is done, both the test's copy and
/// `GET /stats`: nothing busy, nothing queued, and every job counted once,
/// as `done` or as `skipped`. `story` says what the test did.
async fn check_the_counts_after_the_work(
    server: &TestServer,
    stats: &Stats,
    story: &str,
    done: usize,
    skipped: usize,
) {
    // Whatever the counts say, give them a moment to settle first.
    eventually(Duration::from_secs(1), || {
        stats.busy() == 0 && stats.queued() == 0 && stats.done() + stats.skipped() >= done + skipped
    })
    .await;
    let page = within(LIMIT, "GET /stats", get(&server.url("/stats"))).await;
    let shown = page.json();
    let expected = [
        ("busy", 0),
        ("queued", 0),
        ("done", done),
        ("skipped", skipped),
    ];
    for (field, value) in expected {
        let suspect = match field {
            "busy" => "A worker counts as busy when its job starts and idle again when it ends: \
                       does every start have its end, counted the right way?"
                .to_owned(),
            "queued" => "A job counts as queued until a worker takes it (or it is refused): \
                         does every job leave the count?"
                .to_owned(),
            _ => format!("Is each job counted once, and in the right count (`{field}`)?"),
        };
        assert!(
            shown[field] == value,
            "{story}; then GET /stats answered {}; expected \
             \"{field}\": {value}.\n\
             {suspect}\n\
             Read: {CHAPTER}#the-exercise",
            page.body
        );
    }
}

/// With every worker busy, jobs keep coming (6, [`KNOCK_EVERY`] apart):
/// exactly `queue` of them are accepted (they wait, then get 200 with their
/// answer), and the rest get 503 with `Retry-After` at once, about as fast
/// as a `GET /stats` sent at the same moment. Once the work is done, the
/// counts are back at zero. The ways to get this wrong:
///
/// - Every job is accepted: the queue has no limit (an unbounded channel, or
///   one so big that it never fills), or a full queue makes the request wait
///   for room (`send(..).await` on a bounded channel) instead of refusing it.
///   Both answer every request, late: the excess waits for the long jobs to
///   end for a 200, instead of learning in a millisecond to come back later.
/// - Some are refused, but more than `queue` accepted: the limit is larger
///   than the queue, e.g. it counts the running jobs' places too.
/// - One job more than the queue is accepted: a place outside the queue,
///   such as a job taken off the queue and held before a worker is free, or
///   queues (one per worker) whose places add up to more than `queue`.
/// - Fewer are accepted: a limit on the workers alone, with no queue, refuses
///   as soon as the workers are busy.
/// - The refusal comes late: the handler waits a while for room first. The
///   time is compared with the `GET /stats` pages sent alongside, so that a
///   slow machine does not fail a fast server.
#[tokio::test]
async fn a_full_pool_accepts_workers_plus_queue_and_refuses_the_rest_fast() {
    let (server, stats) = start(SIZE);
    let busy = occupy_every_worker(&server, &stats, LONG_JOB_MS).await;

    let (workers, queue, extra) = (SIZE.workers, SIZE.queue, 3);
    let knocks = queue + extra;
    let seen = knock(&server, &stats, knocks).await;
    let replies = &seen.replies;

    let accepted = seen.accepted();
    let refused = knocks - accepted;
    let slowest = replies.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let came = format!(
        "with {workers} workers busy and the queue empty, {knocks} jobs came \
         ({KNOCK_EVERY:?} apart)"
    );
    let after_the_last = format!(
        "Just after the last one, the pool counted busy {}, done {}, queued {}, and {} of the \
         {knocks} had their answer",
        seen.busy, seen.done, seen.queued, seen.answered
    );
    assert!(
        refused > 0,
        "{came} and all {knocks} were accepted: they waited, and got 200 after up to \
         {slowest:?}; expected {queue} accepted (the queue holds {queue}) and the other \
         {extra} refused with 503 at once. {after_the_last}.\n\
         Nothing turned the extra jobs away: does the queue have a limit, and does a full queue \
         refuse a job, or make it wait for room?\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );
    let suspect = if seen.waiting_elsewhere() > 0 {
        format!(
            "{} of the jobs were then neither answered nor in the queue: they waited for room \
             somewhere else, and got it once a worker was free. Does a full queue make a job \
             wait a while before it is refused?",
            seen.waiting_elsewhere()
        )
    } else if accepted == queue + 1 {
        format!(
            "One job too many: is there a place outside the queue's {queue}? A job taken off \
             the queue and held before a worker is free for it takes one, and so do queues \
             (one per worker, say) whose places add up to more than {queue}."
        )
    } else {
        format!(
            "Something refuses, but only past {accepted} waiting jobs: is the limit larger \
             than the queue, counting the {workers} running jobs' places as well?"
        )
    };
    assert!(
        accepted <= queue,
        "{came}: {accepted} were accepted (200) and {refused} refused; expected {queue} \
         accepted, one per place in the queue, and {extra} refused. {after_the_last}.\n\
         {suspect}\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );
    assert!(
        accepted == queue,
        "{came} and only {accepted} were accepted; expected {queue}: the queue holds {queue} \
         jobs while the workers are busy.\n\
         Does the server refuse as soon as the workers are busy, as if there were no queue?\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );
    let refusals: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status != StatusCode::OK)
        .collect();
    for reply in &refusals {
        assert!(
            reply.status == StatusCode::SERVICE_UNAVAILABLE,
            "a job beyond the queue was answered {} ({:?}); expected 503 Service Unavailable: \
             the server is busy, not broken.\n\
             Read: {CHAPTER}#a-queue-with-a-limit",
            reply.status,
            reply.body
        );
    }
    // Fast means: about as fast as a page that waits for nothing, sent at the
    // same moment. The margin is generous (3 times, plus 50 ms) for a loaded
    // machine; a refusal that waits 100 ms or more for room does not fit in it
    // unless the machine takes over 25 ms for every page.
    let refusal = median(refusals.iter().map(|r| r.elapsed).collect());
    let page = median(seen.pages.clone());
    let fast = (page * 3 + Duration::from_millis(50)).min(REFUSAL_PATIENCE);
    assert!(
        refusal <= fast,
        "the jobs beyond the queue got their 503 after {refusal:?} (the middle of {refused}), \
         while a GET /stats sent at the same moments took {page:?}; expected the refusal about \
         as fast as the page, within {fast:?}: a refusal waits for nothing.\n\
         It waited before being refused: is room in the queue waited for, for a while, before \
         the refusal?\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );
    for reply in &refusals {
        let retry_after = reply.header("retry-after");
        assert!(
            retry_after.is_some_and(|seconds| seconds.trim().parse::<u64>().is_ok()),
            "the 503 came fast (in {:?}), but its Retry-After header is {retry_after:?}; \
             expected a number of seconds, so that clients know when to come back.\n\
             Is the header missing from the 503 response itself?\n\
             Read: {CHAPTER}#a-queue-with-a-limit",
            reply.elapsed
        );
    }
    for (i, reply) in replies.iter().enumerate() {
        let n = 10 + i as u64;
        if reply.status == StatusCode::OK {
            assert!(
                square_of(reply) == Some((n, n * n)),
                "the job for n = {n} was answered {:?}; expected {{\"n\":{n},\"square\":{}}}.\n\
                 Does each request get the answer to its own job?\n\
                 Read: {CHAPTER}#one-reply-channel-per-job",
                reply.body,
                n * n
            );
        }
    }
    assert!(
        stats.peak() <= workers,
        "{} jobs ran at the same time in a pool of {workers} workers; expected at most \
         {workers}.\n\
         Does something run jobs outside the workers?\n\
         Read: {CHAPTER}#workers-side-by-side",
        stats.peak()
    );
    // The long jobs' clients are still there: they get their answers too.
    within(LIMIT, "the long jobs' answers", busy.join_all()).await;
    check_the_counts_after_the_work(
        &server,
        &stats,
        &format!(
            "{workers} long jobs and {queue} short ones were done, and {extra} refused, all \
             answered"
        ),
        workers + queue,
        0,
    )
    .await;
}

/// Every worker is busy with a long job, the queue is full, and one more
/// job is refused: the pool is full. Then the long jobs' clients leave. The
/// jobs still run (the reference lets a running job finish), so they still
/// take their workers, and the pool is still full: the next jobs are
/// refused too. A place given back when its client leaves, while its job
/// goes on, makes room that is not there, and the pool ends up holding more
/// jobs than it has places for.
///
/// (A worker that stops a job when its client leaves, as the stretch test
/// asks, is free again at once, and then may take more: the test judges
/// only while both abandoned jobs are still running.)
#[tokio::test]
async fn clients_who_leave_running_jobs_free_no_place() {
    let (server, stats) = start(SIZE);
    let (workers, queue) = (SIZE.workers, SIZE.queue);
    let client = Client::new();
    let knock = |n: u64| {
        let request = client.get(server.url(&job(n, 10)));
        // Refused at once, or still waiting (accepted) when patience ends.
        async move { tokio::time::timeout(REFUSAL_PATIENCE, try_send(request)).await }
    };
    let refused = |answer: &Result<Result<Reply, _>, _>| matches!(answer, Ok(Ok(reply)) if reply.status == StatusCode::SERVICE_UNAVAILABLE);

    // Long jobs, from clients who leave after a while.
    let patience = Duration::from_millis(200);
    let leaving: Vec<_> = (0..workers)
        .map(|n| {
            let (addr, path) = (server.addr(), job(n as u64, LONG_JOB_MS));
            tokio::spawn(async move { leave_after(addr, &path, patience).await })
        })
        .collect();
    wait_until_every_worker_is_busy(&stats, &format!("{workers} jobs")).await;
    // While they are there: a full queue, and one job more.
    let mut waiting = JoinSet::new();
    for n in 0..queue {
        waiting.spawn(knock(10 + n as u64));
    }
    let full = eventually(Duration::from_secs(2), || stats.queued() == queue).await;
    let one_more = within(LIMIT, "one job more than the pool holds", knock(20)).await;
    if !full || !refused(&one_more) {
        // The pool holds more than it should with every client there: the
        // test of a full pool says so.
        return;
    }

    // Once the clients have left, the next jobs, spaced out: by the last
    // ones the server has long seen the clients go.
    for client in leaving {
        within(LIMIT, "a client who sends a job and leaves", client)
            .await
            .expect("the leaving client panicked");
    }
    let knocks = workers + 1;
    let sending = join_all((0..knocks).map(|i| async move {
        tokio::time::sleep(KNOCK_EVERY * i as u32).await;
        knock(30 + i as u64).await
    }));
    // Looked at just after the last one was sent: the long jobs still ran?
    let look = async {
        tokio::time::sleep(KNOCK_EVERY * knocks as u32).await;
        (stats.busy(), stats.done())
    };
    let (answers, (busy, done)) = within(LIMIT, "jobs sent after the clients left", async {
        tokio::join!(sending, look)
    })
    .await;
    let accepted = answers.iter().filter(|answer| !refused(answer)).count();
    let still_running = busy == workers && done == 0;
    assert!(
        !still_running || accepted == 0,
        "the pool was full: {workers} workers busy with long jobs, {queue} jobs queued, and one \
         more refused. Then the {workers} long jobs' clients left; the jobs went on (busy \
         {busy}, done {done} just after), but of {knocks} jobs sent next, {accepted} were \
         accepted; expected all {knocks} refused: a running job takes its worker until it \
         ends, whether its client is there or not.\n\
         Does a client who leaves give back a place that its job still takes?\n\
         Read: {CHAPTER}#nobody-waits-for-this-job"
    );
}

/// A client sends a job that has to wait in the queue, then hangs up before
/// a worker is free. When a worker reaches that job, nobody is waiting for
/// its answer: the worker must skip it (`skipped` goes up, `done` does not)
/// and go on to the next job. Working on it anyway spends the scarce thing
/// the pool exists to share on an answer that is thrown away. Skipping must
/// cost the pool nothing: afterwards, the counts are exact and both workers
/// still take jobs side by side.
///
/// (A job that is already running when its client leaves is another matter:
/// this test does not say what to do with it; the chapter discusses it.)
#[tokio::test]
async fn a_job_whose_client_left_is_skipped() {
    let (server, stats) = start(SIZE);
    let workers = SIZE.workers;
    let running_ms = 400;
    let busy = occupy_every_worker(&server, &stats, running_ms).await;

    // A job that waits in the queue, from a client who leaves after 100 ms.
    let abandoned_ms = 300;
    let patience = Duration::from_millis(100);
    let (addr, path) = (server.addr(), job(7, abandoned_ms));
    let leaving = tokio::spawn(async move { leave_after(addr, &path, patience).await });
    let queued = eventually(Duration::from_secs(2), || stats.queued() == 1).await;
    assert!(
        queued,
        "with both workers busy, a job was sent, but the pool never counted it as queued \
         (queued: {}); expected 1.\n\
         Does the job reach the queue?\n\
         Read: {CHAPTER}#the-exercise",
        stats.queued()
    );
    within(LIMIT, "a client who sends a job and leaves", leaving)
        .await
        .expect("the leaving client panicked");

    // The workers finish their jobs after `running_ms` and reach the
    // abandoned one: it is skipped at once, or worked on for `abandoned_ms`.
    let reached = eventually(Duration::from_secs(4), || {
        stats.skipped() >= 1 || stats.done() > workers
    })
    .await;
    assert!(
        stats.done() <= workers,
        "a job waited in the queue and its client hung up after {patience:?}; when a worker \
         reached it, the worker ran it anyway: done {}, skipped {}; expected done {workers} \
         (the jobs whose clients stayed) and skipped 1.\n\
         Nobody was waiting for that answer: does a worker look whether anyone still waits \
         before it starts a job?\n\
         Read: {CHAPTER}#nobody-waits-for-this-job",
        stats.done(),
        stats.skipped()
    );
    assert!(
        reached && stats.skipped() == 1,
        "a job waited in the queue and its client hung up after {patience:?}; the workers \
         finished their {workers} jobs (done {}), but the abandoned one was not counted as \
         skipped (skipped {}, queued {}, busy {}); expected skipped 1.\n\
         Is the skipped job counted (`Stats::count_skipped`)?\n\
         Read: {CHAPTER}#nobody-waits-for-this-job",
        stats.done(),
        stats.skipped(),
        stats.queued(),
        stats.busy()
    );
    within(LIMIT, "the first jobs' answers", busy.join_all()).await;
    let story = format!("{workers} jobs were done and 1, whose client had left, skipped");
    check_the_counts_after_the_work(&server, &stats, &story, workers, 1).await;

    // Both workers are still there: two more jobs run side by side.
    let client = Client::new();
    let mut again = JoinSet::new();
    for n in 0..workers {
        let request = client.get(server.url(&job(n as u64, 200)));
        again.spawn(async move {
            let _ = try_send(request).await;
        });
    }
    let side_by_side = eventually(Duration::from_secs(2), || stats.busy() == workers).await;
    assert!(
        side_by_side,
        "after a job was skipped, {workers} jobs went to the idle pool, but only {} ran at \
         once (busy); expected {workers}: before the skip, {workers} did.\n\
         Is a worker lost when it skips a job? A worker that stops (returns, or panics) \
         instead of going back for the next job shrinks the pool.\n\
         Read: {CHAPTER}#nobody-waits-for-this-job",
        stats.busy()
    );
}

/// Twelve jobs at once, for twelve numbers, taking different times so that
/// they finish in another order than they came: each request must get the
/// answer to its own job. An answer that reaches the wrong request (one
/// channel shared by every reply, an answer taken by whoever asks first) is
/// worse than no answer: it is believed.
#[tokio::test]
async fn each_request_gets_the_answer_to_its_own_job() {
    let size = PoolSize {
        workers: 3,
        queue: 12,
    };
    let (server, _stats) = start(size);
    let jobs = 12;
    let client = Client::new();
    let replies = within(
        LIMIT,
        &format!("{jobs} jobs at once"),
        burst(jobs, |i| {
            let n = 100 + i as u64;
            let ms = 10 * ((i as u64 * 5) % 7);
            client.get(server.url(&job(n, ms)))
        }),
    )
    .await;
    for (i, reply) in replies.replies.iter().enumerate() {
        let n = 100 + i as u64;
        assert!(
            reply.status == StatusCode::OK,
            "{jobs} jobs went to a pool of {} workers and a queue of {}, room for them all, but \
             the job for n = {n} was answered {} ({:?}); expected 200.\n\
             Is a job refused while there is room for it?\n\
             Read: {CHAPTER}#a-queue-with-a-limit",
            size.workers,
            size.queue,
            reply.status,
            reply.body
        );
        assert!(
            square_of(reply) == Some((n, n * n)),
            "{jobs} jobs at once, for n = 100 to {}: the request for n = {n} was answered \
             {:?}; expected {{\"n\":{n},\"square\":{}}}.\n\
             An answer reached the wrong request: does every request have a reply channel of \
             its own?\n\
             Read: {CHAPTER}#one-reply-channel-per-job",
            100 + jobs - 1,
            reply.body,
            n * n
        );
    }
}

/// Three rounds of `queue` jobs, one round after the other: in each, the
/// workers run side by side (2 at once, never more), every job is served,
/// and the pool ends idle. A worker that holds the queue while it works
/// makes the others wait their turn; a worker, a place in the queue or a
/// permit that is lost after a job shrinks the pool until nothing is served.
#[tokio::test]
async fn the_workers_run_side_by_side_round_after_round() {
    let (server, stats) = start(SIZE);
    let (workers, per_round) = (SIZE.workers, SIZE.queue);
    let client = Client::new();
    for round in 1..=3 {
        let replies = within(
            LIMIT,
            &format!("round {round} of {per_round} jobs"),
            burst(per_round, |i| client.get(server.url(&job(i as u64, 60)))),
        )
        .await;
        let served = replies.count(StatusCode::OK);
        assert!(
            served == per_round,
            "round {round} of {per_round} jobs at once, sent to an idle pool of {workers} \
             workers and a queue of {}: {served} were served (statuses {:?}); expected all \
             {per_round}.\n\
             The pool had room for them: is a worker, or a place in the queue, lost after \
             each job?\n\
             Read: {CHAPTER}#a-queue-with-a-limit",
            SIZE.queue,
            replies.statuses()
        );
    }
    let idle = eventually(Duration::from_secs(1), || {
        stats.busy() == 0 && stats.queued() == 0
    })
    .await;
    assert!(
        idle && stats.done() == 3 * per_round,
        "after 3 rounds of {per_round} jobs, all answered, the pool counts busy {}, queued {}, \
         done {}; expected busy 0, queued 0, done {}.\n\
         Read: {CHAPTER}#the-exercise",
        stats.busy(),
        stats.queued(),
        stats.done(),
        3 * per_round
    );
    assert!(
        stats.peak() == workers,
        "{per_round} jobs of 60 ms at once went to {workers} idle workers, and at most {} \
         ran at the same time; expected {workers}.\n\
         {}\n\
         Read: {CHAPTER}#workers-side-by-side",
        stats.peak(),
        if stats.peak() < workers {
            "The workers take turns: does a worker hold the queue (its lock) while it works?"
        } else {
            "Does something run jobs outside the workers?"
        }
    );
}

/// `GET /stats` tells an operator what the pool is doing: with both workers
/// busy and one job waiting, it says so, and the page itself is answered at
/// once: it never waits in the queue for a worker.
#[tokio::test]
async fn the_stats_page_shows_a_busy_pool() {
    let (server, stats) = start(SIZE);
    let mut busy = occupy_every_worker(&server, &stats, LONG_JOB_MS).await;
    let waiting = Client::new().get(server.url(&job(9, 10)));
    busy.spawn(async move {
        let _ = try_send(waiting).await;
    });
    let queued = eventually(Duration::from_secs(2), || stats.queued() == 1).await;
    assert!(
        queued,
        "a job sent to a busy pool was never counted as queued; expected queued 1.\n\
         Read: {CHAPTER}#the-exercise"
    );

    let page = within(LIMIT, "GET /stats", get(&server.url("/stats"))).await;
    let shown = page.json();
    let expected = [
        ("workers", SIZE.workers),
        ("queue", SIZE.queue),
        ("busy", SIZE.workers),
        ("queued", 1),
        ("done", 0),
        ("skipped", 0),
    ];
    for (field, value) in expected {
        assert!(
            shown[field] == value,
            "GET /stats with {} workers busy and 1 job queued answered {} after {:?}; expected \
             \"{field}\": {value}.\n\
             Read: {CHAPTER}#see-the-bug",
            SIZE.workers,
            page.body,
            page.elapsed
        );
    }
}

/// How many small pools the race test makes at a time, for one pair of
/// jobs each.
const RACE_POOLS: usize = 200;
/// How many pairs the race test wants started together, two threads running
/// at the same instant, before it trusts a clean result. A handler that
/// looks and then takes, in two steps, is caught in about half of them.
const RACE_PAIRS: usize = 40;
/// How long a call in-process may take to be refused "at once", at most:
/// thousands of times what it takes.
const AT_ONCE: Duration = Duration::from_millis(100);
/// How long the race test keeps trying, at most, on a machine too busy to
/// run its two threads at once.
const RACE_BUDGET: Duration = Duration::from_millis(1000);

/// [`RACE_POOLS`] pools of 1 worker, each busy with a job that outlasts the
/// test, and a queue of 1: one place free in each.
async fn busy_little_pools() -> Vec<(Router, Stats)> {
    let size = PoolSize {
        workers: 1,
        queue: 1,
    };
    let pools: Vec<(Router, Stats)> = (0..RACE_POOLS)
        .map(|_| {
            let stats = Stats::default();
            (app(size, stats.clone()), stats)
        })
        .collect();
    for (app, _) in &pools {
        // Runs until the test's runtime ends, with the test.
        tokio::spawn(call(app.clone(), job(1, 60_000)));
    }
    let occupied = eventually(Duration::from_secs(5), || {
        pools.iter().all(|(_, stats)| stats.busy() == 1)
    })
    .await;
    let idle = pools.iter().filter(|(_, stats)| stats.busy() != 1).count();
    assert!(
        occupied,
        "{RACE_POOLS} pools of 1 worker each got 1 long job each, but after 5 s {idle} of them \
         counted no busy worker; expected every worker busy.\n\
         Do the workers take jobs off the queue?\n\
         Read: {CHAPTER}#workers-side-by-side"
    );
    pools
}

/// Two jobs come at the same instant for the last place in the queue: one
/// is accepted and the other refused, never both accepted. A handler that
/// looks at how full the queue is (a count of queued jobs, the channel's
/// free capacity) and then puts the job in does it in two steps, and a
/// request on another thread can come between them: both see one place
/// free, and both take it.
///
/// Over sockets the two steps almost never meet, since each request spends
/// most of its time in the network. So this test calls hundreds of small
/// pools in-process (1 worker, kept busy, and a queue of 1), on a
/// multi-thread runtime, with each pool's two calls released together on
/// two threads, until a few hundred pairs have really started together. It
/// also times the refusals: a refusal waits for nothing, so it comes in
/// microseconds here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_place_goes_to_one_of_two_jobs_that_come_at_once() {
    let refusals_of = |pool: &Mutex<Vec<(StatusCode, Duration)>>| {
        let answers = pool.lock().unwrap();
        answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
            .map(|(_, elapsed)| *elapsed)
            .collect::<Vec<_>>()
    };
    // First the same two jobs one after the other in a few pools, the second
    // once the first is in the queue. A pool that accepts both this way holds
    // one job too many whatever the timing: `a_full_pool_...` says why.
    let (apps, stats): (Vec<Router>, Vec<Stats>) = busy_little_pools().await.into_iter().unzip();
    let firsts: Vec<_> = apps[..10]
        .iter()
        .map(|app| tokio::spawn(call(app.clone(), job(2, 10))))
        .collect();
    eventually(LIMIT, || {
        stats[..10].iter().all(|stats| stats.queued() == 1)
    })
    .await;
    let refused = all_refuse_at_once(&apps[..10], &job(3, 10), AT_ONCE).await;
    drop(firsts);
    if !refused {
        return;
    }

    let (mut refusals, mut together, mut pages) = (Vec::new(), 0, Vec::new());
    let deadline = Instant::now() + RACE_BUDGET;
    let mut unused = Some(apps[10..].to_vec());
    while together < RACE_PAIRS && Instant::now() < deadline {
        let apps = match unused.take() {
            Some(apps) => apps,
            None => busy_little_pools()
                .await
                .into_iter()
                .map(|(app, _)| app)
                .collect(),
        };
        let (answers, called, paired) =
            two_calls_at_once(&apps, &job(2, 10), RACE_PAIRS - together, deadline).await;
        together += paired;
        // Every pool called should have its refusal at once; give late ones
        // a second.
        let answers = &answers[..called];
        eventually(Duration::from_secs(1), || {
            answers.iter().all(|pool| !refusals_of(pool).is_empty())
        })
        .await;
        refusals.extend(answers.iter().map(refusals_of));
        // A page that waits for nothing, from the same pools: how fast "at
        // once" is on this machine now.
        for app in apps.iter().take(20) {
            pages.push(call(app.clone(), "/stats".into()).await.1);
        }
        if refusals.iter().any(|r| r.len() != 1) {
            break;
        }
    }
    let pools = refusals.len();
    let refused: usize = refusals.iter().map(Vec::len).sum();
    if refused == 0 {
        // Nothing is refused at all: `a_full_pool_...` says so.
        return;
    }
    let pairs = format!(
        "{pools} pools of 1 busy worker and a queue of 1 each got two jobs, released at the same \
         instant on two threads ({together} pairs started together)"
    );
    let both_taken = refusals.iter().filter(|r| r.is_empty()).count();
    assert!(
        both_taken == 0,
        "{pairs}: {} of them refused one, but in {both_taken} neither job was refused within a \
         second; expected one accepted and one refused in every pool: there was one place.\n\
         Two jobs took the last place: does the handler look at how full the queue is, and \
         then put the job in, in two steps that another request can come between?\n\
         Read: {CHAPTER}#a-queue-with-a-limit",
        pools - both_taken
    );
    let both_refused = refusals.iter().filter(|r| r.len() == 2).count();
    assert!(
        both_refused < pools,
        "{pairs}, and every pool refused both; expected one accepted and one refused: the \
         queue had one place free.\n\
         Does the server refuse as soon as the workers are busy, as if there were no queue?\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );
    assert!(
        both_refused == 0,
        "{pairs}: in {both_refused} of them both were refused; expected one accepted and one \
         refused in every pool: the queue had one place free.\n\
         Each saw the other's job: is a job counted before the look at the queue, and the look \
         then made in a step apart from putting the job in?\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );

    let page = median(pages);
    let refusal = median(refusals.into_iter().flatten().collect());
    let fast = page * 10 + Duration::from_millis(10);
    assert!(
        refusal <= fast,
        "{refused} jobs beyond the queue, called in-process, got their 503 after {refusal:?} \
         (the middle one), while GET /stats took {page:?}; expected the refusal within \
         {fast:?}: it waits for nothing.\n\
         It waited before being refused: is room in the queue waited for, for a while, before \
         the refusal?\n\
         Read: {CHAPTER}#a-queue-with-a-limit"
    );
}

/// When the workers stop (here: the runtime they run on shuts down), a
/// request whose job was running gets `500 Internal Server Error` at once:
/// a pool that cannot work is a bug, not a busy server (that would be 503),
/// and a request must never wait for an answer that cannot come.
#[tokio::test]
async fn a_job_whose_worker_stops_is_answered_500() {
    let size = PoolSize {
        workers: 1,
        queue: 1,
    };
    let workers_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("build a runtime for the workers");
    let stats = Stats::default();
    let pool = {
        let _inside = workers_runtime.enter();
        app(size, stats.clone())
    };
    let running = tokio::spawn(call(pool, job(1, 60_000)));
    let busy = eventually(Duration::from_secs(3), || stats.busy() == 1).await;
    assert!(
        busy,
        "a pool of 1 worker got a job, but after 3 s it counted busy {}; expected 1.\n\
         Read: {CHAPTER}#the-exercise",
        stats.busy()
    );
    // Stops the worker, and drops the job it holds.
    tokio::task::spawn_blocking(move || drop(workers_runtime))
        .await
        .expect("stop the workers' runtime");
    let (status, _) = within(LIMIT, "the job of a stopped worker", running)
        .await
        .expect("the call panicked");
    assert!(
        status == StatusCode::INTERNAL_SERVER_ERROR,
        "the pool's only worker stopped while it ran a job, and that job's request was \
         answered {status}; expected 500 Internal Server Error: the job failed, a bug and not \
         a busy server.\n\
         Is a job that a worker dropped without an answer answered as a failure?\n\
         Read: {CHAPTER}#the-exercise"
    );
}

/// `cargo run -p worker-pool` takes its pool's size from `WORKERS` and
/// `QUEUE`: `WORKERS=1 QUEUE=2` makes a pool of 1 and 2 (1 is the smallest
/// size there is), and `WORKERS=0`, a pool that would never work, is refused
/// with a message that names the variable, before the server starts.
#[tokio::test]
async fn the_pool_size_comes_from_the_environment() {
    let smallest = async {
        let server = LabProcess::start(
            Command::new(lab_binary!("worker-pool"))
                .args(["--port", "0"])
                .env("WORKERS", "1")
                .env("QUEUE", "2"),
        )
        .await;
        let page = get(&server.url("/stats")).await;
        (page, server.output())
    };
    let none = async {
        let mut child = Command::new(lab_binary!("worker-pool"))
            .args(["--port", "0"])
            .env("WORKERS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the lab's binary");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the lab's binary") {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(5) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let mut said = String::new();
        if let Some(mut stderr) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
        }
        (status, said)
    };
    let ((page, printed), (status, said)) = within(LIMIT, "the lab's binary, twice", async {
        tokio::join!(smallest, none)
    })
    .await;
    let shown = page.json();
    assert!(
        shown["workers"] == 1 && shown["queue"] == 2,
        "`WORKERS=1 QUEUE=2 cargo run -p worker-pool` served GET /stats as {}; expected \
         \"workers\": 1 and \"queue\": 2. It printed:\n{printed}\n\
         Read: {CHAPTER}#see-the-bug",
        page.body
    );
    assert!(
        status.is_some_and(|status| !status.success()) && said.contains("WORKERS"),
        "`WORKERS=0 cargo run -p worker-pool` {}, and said {said:?}; expected it to exit with \
         an error that names WORKERS: a pool of no workers accepts jobs and never does them.\n\
         Read: {CHAPTER}#see-the-bug",
        match status {
            None => "was still running after 5 s".to_owned(),
            Some(status) => format!("exited ({status})"),
        }
    );
}

/// Stretch (opt in with `cargo test -p worker-pool -- --ignored stretch_`):
/// a job that is already running when its client leaves. The reference
/// solution lets it finish (its answer is thrown away); a worker that
/// watches for its client while it works can stop and take the next job.
/// This only suits work that can stop halfway without harm.
#[tokio::test]
#[ignore = "stretch: a running job stops when its client leaves"]
async fn stretch_a_running_job_stops_when_its_client_leaves() {
    let (server, stats) = start(SIZE);
    let patience = Duration::from_millis(300);
    within(
        LIMIT,
        "a client who leaves a running job",
        leave_after(server.addr(), &job(5, 3000), patience),
    )
    .await;
    let stopped = eventually(Duration::from_secs(1), || stats.busy() == 0).await;
    assert!(
        stopped && stats.done() == 0,
        "a 3 s job's client left after {patience:?}; 1 s later the pool counts busy {}, done \
         {}; expected busy 0 and done 0: the worker stopped and is free again.",
        stats.busy(),
        stats.done()
    );
}
