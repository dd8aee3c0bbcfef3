//! The checks of lab 06, run with `cargo test -p streaming`.
//!
//! A test opens an event stream over a real socket, as a browser's
//! `EventSource` does, and notes when each block of it arrives: an event
//! (`id:` and `data:` lines) or a comment (a line starting with `:`), each
//! ended by a blank line. Whether the events arrive early, spaced, or all at
//! once is then measured where the user sees it. The jobs count themselves
//! ([`Observations`]), so "the producer stopped when the client left" is
//! measured where the work runs.
//!
//! The times are short (a step of 100 ms, a keep-alive of 200 ms) and the
//! checks are generous ratios of them, so that a server that streams passes
//! on a busy machine, and one that does not fails every time.
//!
//! Every failure message says what was observed, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_support::client::{get, leave_after};
use lab_support::{TestServer, eventually, within};
use reqwest::{Client, Response, StatusCode};
use streaming::{Config, Observations, app};

/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(10);
/// One step of a test's job: the time between two events.
const STEP: Duration = Duration::from_millis(100);
/// The keep-alive of the tests' server: a comment after this much silence.
const KEEP_ALIVE: Duration = Duration::from_millis(200);

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("06-streaming.html");

/// Serves the lab's app with short times, and hands back the jobs' counters.
fn start() -> (TestServer, Arc<Observations>) {
    let observed = Arc::new(Observations::default());
    let config = Config {
        count: 10,
        every: STEP,
        keep_alive: KEEP_ALIVE,
    };
    let server = TestServer::start(app(config, observed.clone()));
    (server, observed)
}

/// The path of a job of `count` steps, one every `every`.
fn events_path(count: u32, every: Duration) -> String {
    format!("/events?count={count}&every_ms={}", every.as_millis())
}

/// One block of an event stream: an event or a comment.
#[derive(Debug, Clone, PartialEq)]
enum Block {
    /// An event: its `id:` and `data:` lines, and its `event:` line if it
    /// names a type other than the default, `message` (the only type a
    /// page's `onmessage` sees).
    Event {
        id: Option<String>,
        data: String,
        name: Option<String>,
    },
    /// A comment line, such as a keep-alive (`:` and maybe some text).
    Comment,
}

/// A block, and when it arrived, counted from when the request was sent.
#[derive(Debug, Clone)]
struct Arrival {
    at: Duration,
    block: Block,
}

/// An open event stream, read block by block as the bytes arrive.
struct EventStream {
    response: Response,
    sent: Instant,
    /// Text received and not yet ended by a blank line.
    pending: String,
    /// Blocks received and not yet handed out.
    ready: std::collections::VecDeque<Arrival>,
    /// When the response ended, counted from the request, once it has.
    ended: Option<Duration>,
}

/// What became of a request for a stream, within the time allowed.
enum Opened {
    Stream(Box<EventStream>),
    /// Nothing came back, not even the status line, in this long.
    Silent(Duration),
}

impl EventStream {
    /// Sends `GET url` and waits at most `patience` for the response's head.
    async fn open(url: &str, patience: Duration) -> Opened {
        let sent = Instant::now();
        match tokio::time::timeout(patience, Client::new().get(url).send()).await {
            Err(_) => Opened::Silent(sent.elapsed()),
            Ok(Err(error)) => panic!(
                "GET {url} failed: {error}; expected a stream of events.\n\
                 Did the server crash, or close the connection?\n\
                 Read: {CHAPTER}#the-exercise"
            ),
            Ok(Ok(response)) => Opened::Stream(Box::new(EventStream::reading(response, sent))),
        }
    }

    /// Reads `response`, a request sent at `sent`, as an event stream.
    fn reading(response: Response, sent: Instant) -> EventStream {
        EventStream {
            response,
            sent,
            pending: String::new(),
            ready: Default::default(),
            ended: None,
        }
    }

    /// Like [`Self::open`], for a test that has no use for a silent server.
    async fn open_now(url: &str) -> EventStream {
        match Self::open(url, LIMIT).await {
            Opened::Stream(stream) => *stream,
            Opened::Silent(waited) => panic!("GET {url}: no response in {waited:?}"),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    }

    /// The next block, or `None` once the stream has ended or `deadline`
    /// (counted from the request) has passed.
    async fn next(&mut self, deadline: Duration) -> Option<Arrival> {
        loop {
            if let Some(arrival) = self.ready.pop_front() {
                return Some(arrival);
            }
            if self.ended.is_some() {
                return None;
            }
            let left = deadline.checked_sub(self.sent.elapsed())?;
            let chunk = match tokio::time::timeout(left, self.response.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None) | Err(_)) => {
                    self.ended = Some(self.sent.elapsed());
                    continue;
                }
            };
            let at = self.sent.elapsed();
            // SSE lines end with \n, \r\n or \r; \n is all this server uses.
            self.pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = self.pending.find("\n\n") {
                let text: String = self.pending.drain(..end + 2).collect();
                self.ready.push_back(Arrival {
                    at,
                    block: parse_block(&text),
                });
            }
        }
    }

    /// Every block that arrives before `deadline` or the end of the stream.
    async fn collect(&mut self, deadline: Duration) -> Vec<Arrival> {
        let mut arrivals = Vec::new();
        while let Some(arrival) = self.next(deadline).await {
            arrivals.push(arrival);
        }
        arrivals
    }
}

/// One block's lines: an event if any line is a field, else a comment.
fn parse_block(text: &str) -> Block {
    let (mut id, mut data, mut name, mut event) = (None, Vec::new(), None, false);
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        event = true;
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "data" => data.push(value),
            // An empty `event:` is the default type too.
            "event" if !value.is_empty() && value != "message" => name = Some(value.to_owned()),
            _ => {}
        }
    }
    if event {
        Block::Event {
            id,
            data: data.join("\n"),
            name,
        }
    } else {
        Block::Comment
    }
}

/// The events among `arrivals`, with their arrival times.
fn events_of(arrivals: &[Arrival]) -> Vec<(Duration, String)> {
    arrivals
        .iter()
        .filter_map(|arrival| match &arrival.block {
            Block::Event { data, .. } => Some((arrival.at, data.clone())),
            Block::Comment => None,
        })
        .collect()
}

/// Arrival times, for a message: `[102ms, 203ms, …]`.
fn times(events: &[(Duration, String)]) -> String {
    let times: Vec<String> = events
        .iter()
        .map(|(at, _)| format!("{}ms", at.as_millis()))
        .collect();
    format!("[{}]", times.join(", "))
}

/// A short job runs to its end: every event, in order, with its id, and then
/// the stream ends and the job is counted out. Whatever makes an abandoned
/// job stop must not stop a job that someone still listens to.
///
/// Each event is checked as the lab's page reads it: unnamed (the page
/// listens with `onmessage`, which sees no event with an `event:` name of its
/// own), its step as its `id` (what a reconnecting `EventSource` sends back).
/// The end is checked for itself, against a bound much shorter than the
/// test's own limit: a stream that stays open after its last event leaves a
/// client that waits for the end (curl, a script) waiting for ever.
#[tokio::test]
async fn every_event_arrives_in_order_and_the_stream_ends() {
    let (server, observed) = start();
    let path = events_path(5, Duration::from_millis(20));
    // The job takes 100 ms; its stream must have ended long before this.
    let ends_within = Duration::from_secs(3);
    within(LIMIT, &format!("GET {path} to its end"), async {
        let mut stream = EventStream::open_now(&server.url(&path)).await;
        assert!(
            stream.response.status() == StatusCode::OK,
            "GET {path} answered {}; expected 200 OK.\n\
             Read: {CHAPTER}#the-exercise",
            stream.response.status()
        );
        let arrivals = stream.collect(ends_within).await;
        let events: Vec<(Option<String>, String, Option<String>)> = arrivals
            .into_iter()
            .filter_map(|arrival| match arrival.block {
                Block::Event { id, data, name } => Some((id, data, name)),
                Block::Comment => None,
            })
            .collect();
        let expected_data: Vec<String> = (1..=5)
            .map(|step| format!(r#"{{"step":{step},"of":5}}"#))
            .collect();
        let data: Vec<&String> = events.iter().map(|(_, data, _)| data).collect();
        let suspect = if events.is_empty() {
            "No event at all: is the job stopped as soon as the handler returns?"
        } else {
            "Are events lost, repeated or out of order between the job and the response?"
        };
        assert!(
            data == expected_data.iter().collect::<Vec<_>>(),
            "GET {path} streamed the data {data:?}; expected 5 events, \
             `data: {{\"step\":1,\"of\":5}}` up to step 5, in order, and then the end.\n\
             {suspect}\n\
             Read: {CHAPTER}#the-exercise"
        );
        let names: Vec<&str> = events
            .iter()
            .filter_map(|(_, _, name)| name.as_deref())
            .collect();
        assert!(
            names.is_empty(),
            "GET {path} streamed events named {names:?} (an `event:` line); expected events \
             without a name: the lab's page listens with `onmessage`, which sees only unnamed \
             events (or ones named `message`), so its progress bar would never move.\n\
             What gives these events a name of their own?\n\
             Read: {CHAPTER}#in-the-browser"
        );
        let ids: Vec<&str> = events
            .iter()
            .map(|(id, _, _)| id.as_deref().unwrap_or("(none)"))
            .collect();
        let expected_ids: Vec<String> = (1..=5).map(|step| step.to_string()).collect();
        assert!(
            ids == expected_ids,
            "GET {path} streamed the right 5 events, with the ids {ids:?}; expected \
             {expected_ids:?}, each event's step: a reconnecting `EventSource` sends back the \
             last id it saw (`Last-Event-ID`), and the server must be able to tell the step \
             from it.\n\
             What does each event's `id:` line carry?\n\
             Read: {CHAPTER}#in-the-browser"
        );
        assert!(
            stream.ended.is_some(),
            "GET {path} streamed its 5 events and then stayed open: {ends_within:?} after the \
             request it had not ended; expected the response to end with the job's last step, \
             about 100ms in. A client that waits for the end of the stream (curl, a script) \
             waits for ever.\n\
             What keeps the stream going after the job's last event?\n\
             Read: {CHAPTER}#the-exercise"
        );
        let stats = observed.snapshot();
        assert!(
            stats.events_produced == 5,
            "the counters say {stats:?} after a job of 5 steps; expected events_produced: 5.\n\
             Read: {CHAPTER}#the-exercise"
        );
        assert!(
            eventually(Duration::from_secs(1), || observed
                .snapshot()
                .live_producers
                == 0)
            .await,
            "{} producers still counted as live 1 s after the only job ended; expected 0.\n\
             Read: {CHAPTER}#the-exercise",
            observed.snapshot().live_producers
        );
    })
    .await;
}

/// A browser's `EventSource` takes a response for an event stream only if
/// its `Content-Type` is `text/event-stream`; anything else, and it gives up
/// with an error before reading a single event.
#[tokio::test]
async fn events_are_served_as_text_event_stream() {
    let (server, _observed) = start();
    let path = events_path(2, Duration::from_millis(20));
    within(LIMIT, &format!("GET {path}"), async {
        let stream = EventStream::open_now(&server.url(&path)).await;
        let content_type = stream.header("content-type").map(str::to_owned);
        assert!(
            content_type
                .as_deref()
                .is_some_and(|value| value.starts_with("text/event-stream")),
            "GET {path} answered with Content-Type {content_type:?}; expected \
             \"text/event-stream\": a browser's EventSource refuses any other type, and proxies \
             only know not to buffer it by that type.\n\
             Is the response plain text that merely looks like events?\n\
             Read: {CHAPTER}#headers-and-keep-alive"
        );
    })
    .await;
}

/// A job of 10 steps of 100 ms: its first event is ready after 100 ms, and
/// must arrive long before the job is done (1 s). A server that collects the
/// events and answers with all of them sends the first one only at the end.
///
/// Nor may it come before its step is done: an event that reports step 1
/// after a few milliseconds reports work that has not happened (a timer
/// whose first tick fires at once). Half a step is the bound; a busy machine
/// only ever makes an event later.
#[tokio::test]
async fn the_first_event_arrives_long_before_the_last_is_produced() {
    let (server, _observed) = start();
    let count = 10;
    let path = events_path(count, STEP);
    let total = STEP * count;
    within(LIMIT, &format!("GET {path}"), async {
        let mut stream = EventStream::open_now(&server.url(&path)).await;
        let first = loop {
            match stream.next(LIMIT).await {
                Some(Arrival {
                    at,
                    block: Block::Event { .. },
                }) => break at,
                Some(_) => continue,
                None => panic!(
                    "GET {path} ended without an event; expected {count} events.\n\
                     Read: {CHAPTER}#the-exercise"
                ),
            }
        };
        assert!(
            first >= STEP / 2,
            "the first event of a job of {count} steps of {STEP:?} arrived after {first:.0?}, \
             before its first step could be done; expected it after about {STEP:?}, when \
             step 1 is done.\n\
             Does the job's first step take a step, or does its timer fire at once?\n\
             Read: {CHAPTER}#the-exercise"
        );
        assert!(
            first < total / 3,
            "the first event of a job of {count} steps of {STEP:?} arrived after {first:?}; \
             expected it after about {STEP:?}, long before the whole job takes {total:?}.\n\
             The first event waited for the last one: is the whole response built before any \
             of it is sent?\n\
             Read: {CHAPTER}#a-response-built-to-the-end"
        );
    })
    .await;
}

/// A job of 6 steps of 100 ms: its events must arrive about 100 ms apart, as
/// they are produced, not all in one burst at the end. The check is
/// generous: the median gap at least half a step, and the first event and
/// the last at least half the job apart.
#[tokio::test]
async fn events_arrive_spaced_as_they_are_produced() {
    let (server, _observed) = start();
    let count = 6;
    let every = STEP;
    let path = events_path(count, every);
    within(LIMIT, &format!("GET {path} to its end"), async {
        let mut stream = EventStream::open_now(&server.url(&path)).await;
        // The job takes 600 ms: every event is in long before this.
        let events = events_of(&stream.collect(Duration::from_secs(4)).await);
        assert!(
            events.len() == count as usize,
            "GET {path} streamed {} events; expected {count}.\n\
             Read: {CHAPTER}#the-exercise",
            events.len()
        );
        let mut gaps: Vec<Duration> = events
            .windows(2)
            .map(|pair| pair[1].0.saturating_sub(pair[0].0))
            .collect();
        gaps.sort();
        let median = gaps[gaps.len() / 2];
        let span = events[events.len() - 1].0.saturating_sub(events[0].0);
        let produced_over = every * (count - 1);
        assert!(
            median >= every / 2 && span >= produced_over / 2,
            "the {count} events of a job of one step every {every:?} arrived at {}, {median:?} \
             apart (the median) and {span:?} from first to last; expected about {every:?} \
             apart, {produced_over:?} from first to last, as they were produced.\n\
             They came in one burst: is the whole response built before any of it is sent?\n\
             Read: {CHAPTER}#a-response-built-to-the-end",
            times(&events)
        );
    })
    .await;
}

/// A client opens a stream of a 5 s job and leaves after 350 ms: the job
/// must stop, within a few steps. When a client leaves, hyper drops the
/// response and everything it owns; there is no error to react to. What it
/// does not own goes on: a task started with `tokio::spawn` belongs to the
/// runtime, and a loop that never looks at whether anyone still listens runs
/// to its end, producing for nobody.
///
/// At the same time, on a server of its own, a client leaves a job of 2 s
/// steps 300 ms into its first step. A job that notices only when it next
/// has an event to send (a failed send, a check before each sleep) lives on
/// for the rest of the step, 1.7 s, for nobody; with steps of a minute, a
/// minute. It too must stop within the 500 ms allowed.
#[tokio::test]
async fn the_producer_stops_when_the_client_leaves() {
    let allowed = STEP * 5;
    within(
        LIMIT,
        "clients leaving their streams, then their producers",
        async {
            let (left_between, left_mid_step) =
                tokio::join!(leave_between_steps(allowed), leave_mid_step(allowed));
            left_between();
            left_mid_step();
        },
    )
    .await;
}

/// A client leaves a job of 100 ms steps after 350 ms. Returns the checks
/// of what followed, to be run once every observation is done.
async fn leave_between_steps(allowed: Duration) -> impl FnOnce() {
    let (server, observed) = start();
    let path = events_path(50, STEP);
    let patience = Duration::from_millis(350);
    leave_after(server.addr(), &path, patience).await;
    let left = observed.snapshot();
    let stopped = eventually(allowed, || observed.snapshot().live_producers == 0).await;
    let now = observed.snapshot();
    let quiet = Duration::from_millis(300);
    if stopped {
        tokio::time::sleep(quiet).await;
    }
    let after = observed.snapshot();
    move || {
        assert!(
            left.events_produced > 0,
            "the job produced no event in the {patience:?} its client waited; expected about 3 \
             (one every {STEP:?}).\n\
             Read: {CHAPTER}#the-exercise"
        );
        assert!(
            stopped,
            "{} producer(s) still live {allowed:?} after the client left, and {} more events \
             produced since, for nobody; expected the job to stop within a step or two of the \
             hang-up.\n\
             The job runs on its own: does anything stop it, or does it ever look whether \
             anyone still listens?\n\
             Read: {CHAPTER}#a-producer-nobody-stops",
            now.live_producers,
            now.events_produced - left.events_produced
        );
        assert!(
            after.events_produced == now.events_produced,
            "no producer is counted as live, but {} more events were produced in the \
             {quiet:?} after that; expected none: the job goes on without its \
             producer's count.\n\
             Read: {CHAPTER}#a-producer-nobody-stops",
            after.events_produced - now.events_produced
        );
    }
}

/// A client leaves a job of 2 s steps 300 ms into its first step. Returns
/// the checks of what followed, to be run once every observation is done.
async fn leave_mid_step(allowed: Duration) -> impl FnOnce() {
    let (server, observed) = start();
    let every = Duration::from_secs(2);
    let path = events_path(3, every);
    let patience = Duration::from_millis(300);
    let live = || observed.snapshot().live_producers;
    let (_, started) = tokio::join!(
        leave_after(server.addr(), &path, patience),
        eventually(patience, || live() == 1)
    );
    let left = Instant::now();
    let stopped = eventually(allowed, || live() == 0).await;
    let still_live = live();
    let stopped_after = left.elapsed();
    move || {
        assert!(
            started,
            "no producer was counted as live while a client waited {patience:?} for a job of \
             3 steps of {every:?}; expected one, from the request on.\n\
             Read: {CHAPTER}#the-exercise"
        );
        assert!(
            stopped,
            "{still_live} producer(s) still live {stopped_after:.0?} after a client left in the \
             middle of a step of {every:?} (300ms into the first); expected the job to stop \
             within {allowed:?} of the hang-up, as it does between steps of {STEP:?}.\n\
             The job notices the client leaving only when its step is over: does it wait for \
             its step and for the client at the same time?\n\
             Read: {CHAPTER}#a-producer-nobody-stops"
        );
    }
}

/// A job whose first step takes 1.1 s, on a server with a keep-alive of
/// 200 ms: in the first 800 ms the stream must open at once and carry comment
/// lines (at least two of the three or so due), so that proxies and browsers
/// see a live connection and not a dead one.
#[tokio::test]
async fn an_idle_stream_carries_keep_alive_comments() {
    let (server, _observed) = start();
    let first_step = Duration::from_millis(1100);
    let path = events_path(2, first_step);
    let watch = Duration::from_millis(800);
    within(LIMIT, &format!("GET {path}"), async {
        let mut stream = match EventStream::open(&server.url(&path), watch).await {
            Opened::Stream(stream) => *stream,
            Opened::Silent(waited) => panic!(
                "GET {path} sent nothing, not even its status line, in {waited:?}; expected the \
                 stream to open at once and carry a comment every {KEEP_ALIVE:?} until the \
                 first event (after {first_step:?}).\n\
                 The response waits for its content: is the whole response built before any \
                 of it is sent?\n\
                 Read: {CHAPTER}#a-response-built-to-the-end"
            ),
        };
        let arrivals = stream.collect(watch).await;
        let comments = arrivals
            .iter()
            .filter(|arrival| arrival.block == Block::Comment)
            .count();
        if let Some(ended) = stream.ended {
            panic!(
                "GET {path} ended after {ended:.0?}, with {} event(s) and {comments} comment(s); \
                 expected it to stay open for its 2 steps of {first_step:?}, with a comment every \
                 {KEEP_ALIVE:?} until the first event.\n\
                 The stream ended before its job: is the job stopped, or its channel closed, \
                 as soon as the handler returns?\n\
                 Read: {CHAPTER}#a-producer-nobody-stops",
                events_of(&arrivals).len()
            );
        }
        assert!(
            comments >= 2,
            "an event stream silent for its first {watch:?} carried {comments} comment(s) in \
             that time; expected one every {KEEP_ALIVE:?} (the server's `keep_alive`), at \
             least 2.\n\
             Nothing tells the client that this silent connection is alive: what sends \
             something while there is no event?\n\
             Read: {CHAPTER}#headers-and-keep-alive"
        );
    })
    .await;
}

/// `GET /` is a page that shows the stream in a browser: HTML that opens an
/// `EventSource` on `/events`.
#[tokio::test]
async fn the_page_opens_the_event_stream() {
    let (server, _observed) = start();
    within(LIMIT, "GET /", async {
        let reply = get(&server.url("/")).await;
        assert!(
            reply.status == StatusCode::OK
                && reply
                    .header("content-type")
                    .is_some_and(|value| value.starts_with("text/html"))
                && reply.body.contains("new EventSource('/events'"),
            "GET / answered {} ({:?}); expected 200, an HTML page that opens \
             `new EventSource('/events' ...)`.\n\
             Read: {CHAPTER}#in-the-browser",
            reply.status,
            reply.header("content-type")
        );
    })
    .await;
}

/// Stretch (opt in with `cargo test -p streaming -- --ignored stretch_`): a
/// browser whose stream breaks reconnects by itself, and sends the id of the
/// last event it saw as `Last-Event-ID`. A job that resumes after that step
/// spares the user the steps they have already seen. The reference solution
/// starts every job from step 1; this is yours to change.
#[tokio::test]
#[ignore = "stretch: a reconnecting client (Last-Event-ID: 2) gets the events after step 2"]
async fn stretch_a_reconnecting_client_resumes_after_its_last_event() {
    let (server, _observed) = start();
    let path = events_path(5, Duration::from_millis(20));
    within(LIMIT, &format!("GET {path} with Last-Event-ID: 2"), async {
        let request = Client::new()
            .get(server.url(&path))
            .header("last-event-id", "2");
        let response = request.send().await.expect("the server answers");
        let mut stream = EventStream::reading(response, Instant::now());
        let ids: Vec<Option<String>> = stream
            .collect(Duration::from_secs(3))
            .await
            .into_iter()
            .filter_map(|arrival| match arrival.block {
                Block::Event { id, .. } => Some(id),
                Block::Comment => None,
            })
            .collect();
        let expected: Vec<Option<String>> = (3..=5).map(|step| Some(step.to_string())).collect();
        assert!(
            ids == expected,
            "GET {path} with `Last-Event-ID: 2` streamed the events with ids {ids:?}; expected \
             {expected:?}: the steps after the last one the client saw.\n\
             Read: {CHAPTER}#in-the-browser"
        );
    })
    .await;
}
