//! The served book knows your lab: `cargo xtask book` pushes every lab's
//! state (not started, changed, failing, passing) to the pages that listen on
//! `/workbook/events`, as server-sent events, soon after `check` records a
//! result or a lab's files change; and it still stops at once with a page
//! listening.
//!
//! The client here is a plain one: an HTTP/1.1 request on a `TcpStream`, the
//! chunked body decoded and the event stream parsed by hand, as a browser's
//! `EventSource` would. (The page's side, `book/theme/workbook-live.js`, is
//! tried in headless Chromium by hand when it changes: CONTRIBUTING.md says how.)

mod fixture;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use fixture::{Workbook, http_get};
use serde_json::Value;

/// How soon a change must reach a listening page. The server notices within
/// 250 ms plus one computation of the states (a few ms per lab); this leaves
/// room for a busy 2-core machine.
const PROMPT: Duration = Duration::from_secs(2);

/// What the event stream delivers, in order.
#[derive(Debug)]
enum Message {
    /// An event: its name (`message` if it has none) and its data.
    Event { name: String, data: String },
    /// The response ended (the last chunk came): the server closed the stream.
    Ended,
    /// The connection failed or was cut.
    Failed(String),
}

/// A plain client of an event stream, reading in a thread of its own.
struct EventStream {
    /// The status line and headers of the response.
    head: String,
    messages: Receiver<Message>,
    /// Every event read so far, for failure messages.
    seen: Vec<String>,
    /// The last `labs` event read.
    last: Option<Value>,
}

impl EventStream {
    fn connect(url: &str, path: &str) -> EventStream {
        let authority = url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(authority)
            .unwrap_or_else(|e| panic!("connecting to {authority}: {e}"));
        stream.set_read_timeout(Some(fixture::LIMIT)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/event-stream\r\n\
             Cache-Control: no-cache\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let read = reader.read_line(&mut line).expect("reading the response's head");
            if read == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let (sender, messages) = mpsc::channel();
        let chunked = head.to_lowercase().contains("transfer-encoding: chunked");
        thread::spawn(move || {
            let end = match read_events(&mut reader, chunked, &sender) {
                Ok(()) => Message::Ended,
                Err(error) => Message::Failed(error),
            };
            let _ = sender.send(end);
        });
        EventStream { head, messages, seen: Vec::new(), last: None }
    }

    /// The next message, or a panic after `limit`.
    fn next(&mut self, limit: Duration) -> Message {
        match self.messages.recv_timeout(limit) {
            Ok(message) => {
                if let Message::Event { name, data } = &message {
                    self.seen.push(format!("{name}: {data}"));
                }
                message
            }
            Err(_) => {
                panic!("no event within {limit:?}. The events so far:\n{}", self.seen.join("\n"))
            }
        }
    }

    /// The next `labs` event's data, parsed.
    fn next_labs(&mut self, limit: Duration) -> Value {
        match self.next(limit) {
            Message::Event { name, data } => {
                assert_eq!(name, "labs", "the events are named `labs`: {data}");
                let labs: Value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("the data of an event is JSON ({e}): {data}"));
                self.last = Some(labs.clone());
                labs
            }
            Message::Ended => panic!("the stream ended; so far:\n{}", self.seen.join("\n")),
            Message::Failed(error) => {
                panic!("the stream failed: {error}; so far:\n{}", self.seen.join("\n"))
            }
        }
    }

    /// Reads `labs` events until lab `slug` is in `state`; returns that lab
    /// and how long it took. Panics after `limit`.
    fn wait_for_state(&mut self, slug: &str, state: &str, limit: Duration) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let Some(left) = limit.checked_sub(started.elapsed()) else {
                panic!(
                    "{slug} was not {state:?} within {limit:?}. The events:\n{}",
                    self.seen.join("\n")
                );
            };
            let labs = self.next_labs(left);
            let lab = find_lab(&labs, slug);
            if lab["state"] == state {
                return (lab, started.elapsed());
            }
        }
    }
}

/// Reads the body (de-chunked if `chunked`) and sends each event as it is
/// complete; `Ok` once the body ends.
fn read_events(
    reader: &mut BufReader<TcpStream>,
    chunked: bool,
    sender: &mpsc::Sender<Message>,
) -> Result<(), String> {
    let mut text = String::new();
    loop {
        let bytes = if chunked {
            let mut size = String::new();
            reader.read_line(&mut size).map_err(|e| format!("reading a chunk's size: {e}"))?;
            let size = size.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16)
                .map_err(|e| format!("a chunk size {size:?}: {e}"))?;
            if size == 0 {
                return Ok(());
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).map_err(|e| format!("reading a chunk: {e}"))?;
            chunk.truncate(size);
            chunk
        } else {
            let mut buffer = vec![0; 4096];
            let read = reader.read(&mut buffer).map_err(|e| format!("reading: {e}"))?;
            if read == 0 {
                return Ok(());
            }
            buffer.truncate(read);
            buffer
        };
        text.push_str(&String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?);
        // An event ends with a blank line.
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut name, mut data) = ("message".to_owned(), Vec::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim_start().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                }
                // `retry:` and `: comments` carry no event.
            }
            if !data.is_empty()
                && sender.send(Message::Event { name, data: data.join("\n") }).is_err()
            {
                return Ok(());
            }
        }
    }
}

/// The lab `slug` of a `labs` event.
fn find_lab(labs: &Value, slug: &str) -> Value {
    labs["labs"]
        .as_array()
        .unwrap_or_else(|| panic!("a `labs` event has a list of labs: {labs}"))
        .iter()
        .find(|lab| lab["slug"] == slug)
        .unwrap_or_else(|| panic!("the event has no lab {slug:?}: {labs}"))
        .clone()
}

/// A lab chapter's live state follows the learner: not started, then
/// changed (an edit), failing (`check`), changed (the fix), passing
/// (`check`), passing with edited tests, each pushed to the open stream
/// within [`PROMPT`] without a new request.
#[test]
fn the_events_follow_a_lab_from_not_started_to_passing() {
    let workbook = Workbook::new();
    let (_served, url) = workbook.serve_book();

    let mut events = EventStream::connect(&url, "/workbook/events");
    assert!(events.head.starts_with("HTTP/1.1 200"), "the event stream answers:\n{}", events.head);
    assert!(
        events.head.to_lowercase().contains("content-type: text/event-stream"),
        "the answer is an event stream:\n{}",
        events.head
    );
    let first = events.next_labs(PROMPT);
    for (slug, folder, number) in [("demo", "00-demo", 0), ("echo", "01-echo", 1)] {
        let lab = find_lab(&first, slug);
        assert_eq!(lab["state"], "not-started", "a fresh workbook: {first}");
        assert_eq!(lab["folder"], folder, "the chapter is {folder}.html: {first}");
        assert_eq!(lab["number"], number, "{first}");
        assert_eq!(lab["summary"], "· not started", "{first}");
        assert_eq!(lab["command"], format!("cargo xtask watch {slug}"), "{first}");
    }

    // An edit that fixes nothing: the lab is changed, not checked yet.
    let starter = workbook.read("labs/00-demo/src/lib.rs");
    workbook.write("labs/00-demo/src/lib.rs", &format!("{starter}\n// trying something\n"));
    let (lab, took) = events.wait_for_state("demo", "unchecked", PROMPT);
    eprintln!("an edit reached the stream in {} ms", took.as_millis());
    assert_eq!(lab["command"], "cargo xtask check demo", "{lab}");

    // `check` records the failure; the page hears of it.
    let ran = workbook.run(&["check", "demo"]);
    assert!(!ran.success(), "the starter fails its check:\n{ran}");
    let (lab, took) = events.wait_for_state("demo", "failing", PROMPT);
    eprintln!("a failing check reached the stream {} ms after `check` ended", took.as_millis());
    let (failed, tests) = (lab["failed"].as_u64().unwrap(), lab["tests"].as_u64().unwrap());
    assert!(failed >= 1 && tests > failed, "some of the demo's checks fail: {lab}");
    assert_eq!(lab["summary"], format!("✗ {failed} of {tests} checks failing"), "{lab}");
    assert_eq!(lab["command"], "cargo xtask watch demo", "{lab}");

    // The fix, then `check`: passing.
    workbook.fix("00-demo");
    events.wait_for_state("demo", "unchecked", PROMPT);
    let ran = workbook.run(&["check", "demo"]);
    assert!(ran.success(), "the fixed lab passes:\n{ran}");
    let (lab, took) = events.wait_for_state("demo", "passing", PROMPT);
    eprintln!("a passing check reached the stream {} ms after `check` ended", took.as_millis());
    assert_eq!(lab["failed"], 0, "{lab}");
    assert_eq!(lab["summary"], format!("✓ passing (all {} checks)", lab["tests"]), "{lab}");
    assert_eq!(lab["command"], "", "nothing left to run for a passing lab: {lab}");
    assert!(lab.get("edited_tests").is_none(), "its tests are the shipped ones: {lab}");

    // Passing with an edited test file is not a plain pass (as in `status`).
    let tests = workbook.read("labs/00-demo/tests/lab.rs");
    workbook.write("labs/00-demo/tests/lab.rs", &format!("{tests}\n// my own check\n"));
    events.wait_for_state("demo", "unchecked", PROMPT);
    let ran = workbook.run(&["check", "demo"]);
    assert!(ran.success(), "the fixed lab passes its edited tests:\n{ran}");
    let (lab, _) = events.wait_for_state("demo", "passing", PROMPT);
    assert_eq!(lab["edited_tests"], serde_json::json!(["labs/00-demo/tests/lab.rs"]), "{lab}");
    assert_eq!(lab["summary"], "! passing, with edited tests", "{lab}");
    assert_eq!(lab["command"], "git checkout -- labs/00-demo/tests/lab.rs", "{lab}");

    // The other lab was never touched.
    let labs = events.last.clone().unwrap();
    assert_eq!(find_lab(&labs, "echo")["state"], "not-started", "{labs}");
}

/// Nothing changes, nothing is sent: a second event only comes with a
/// change, and `hint` (which writes the progress file too) is not one.
#[test]
fn no_event_is_sent_without_a_change_of_state() {
    let workbook = Workbook::new();
    let (_served, url) = workbook.serve_book();
    let mut events = EventStream::connect(&url, "/workbook/events");
    events.next_labs(PROMPT);
    let ran = workbook.run(&["hint", "demo"]);
    assert!(ran.success(), "{ran}");
    assert!(workbook.path(".workbook-progress.toml").is_file(), "hint writes the progress file");
    match events.messages.recv_timeout(Duration::from_millis(1500)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {}
        other => panic!("no event without a change of state, got {other:?}"),
    }
    // A second page gets the current states at once.
    let mut other = EventStream::connect(&url, "/workbook/events");
    let labs = other.next_labs(PROMPT);
    assert_eq!(find_lab(&labs, "demo")["state"], "not-started", "{labs}");
}

/// Open event streams do not hold the server up: on SIGTERM it ends them and
/// exits at once (not after the 2 s it gives other open connections).
#[cfg(unix)]
#[test]
fn the_book_server_stops_at_once_with_pages_listening() {
    let workbook = Workbook::new();
    let (mut served, url) = workbook.serve_book();
    let mut pages: Vec<EventStream> =
        (0..3).map(|_| EventStream::connect(&url, "/workbook/events")).collect();
    for page in &mut pages {
        page.next_labs(PROMPT);
    }
    let started = Instant::now();
    let stopped = served.stop();
    let took = started.elapsed();
    eprintln!("stopped {} ms after SIGTERM with 3 streams open", took.as_millis());
    assert!(stopped.success(), "the book server exits cleanly ({stopped}):\n{}", served.transcript);
    assert!(
        took < Duration::from_millis(1500),
        "the book server took {took:?} to stop with event streams open:\n{}",
        served.transcript
    );
    for page in &mut pages {
        match page.next(Duration::from_secs(2)) {
            Message::Ended => {}
            other => panic!("the stream ends cleanly when the server stops, got {other:?}"),
        }
    }
}

/// The page's side: the real book lists the script and its style sheet, and
/// a book that does (here the fixture's, with the real files) links them
/// from every chapter and serves them with the book.
#[test]
fn the_chapters_load_the_live_state_script_from_the_book_itself() {
    let book_toml = include_str!("../../book/book.toml");
    let script = include_str!("../../book/theme/workbook-live.js");
    let style = include_str!("../../book/theme/workbook-live.css");
    for file in ["theme/workbook-live.js", "theme/workbook-live.css"] {
        assert!(book_toml.contains(&format!("\"{file}\"")), "book/book.toml lists {file}");
    }
    assert!(script.contains("workbook/events"), "the script listens to the book server");
    assert!(!script.contains("//cdn") && !script.contains("https://"), "nothing from elsewhere");

    let workbook = Workbook::new();
    let fixture_toml = workbook.read("book/book.toml");
    workbook.write(
        "book/book.toml",
        &format!(
            "{fixture_toml}\n[output.html]\nadditional-js = [\"theme/workbook-live.js\"]\n\
             additional-css = [\"theme/workbook-live.css\"]\n"
        ),
    );
    workbook.write("book/theme/workbook-live.js", script);
    workbook.write("book/theme/workbook-live.css", style);
    let (_served, url) = workbook.serve_book();
    let (status, page) = http_get(&url, "/00-demo.html");
    assert!(status.contains("200"), "GET /00-demo.html: {status}");
    let source = page
        .split("<script src=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|src| src.contains("workbook-live"))
        .unwrap_or_else(|| panic!("the chapter loads the live state script:\n{page}"));
    assert!(page.contains("theme/workbook-live"), "and its style sheet");
    let (status, served_script) = http_get(&url, &format!("/{source}"));
    assert!(status.contains("200"), "GET /{source}: {status}");
    assert!(served_script.contains("workbook/events"), "the script itself:\n{served_script}");
    let built = workbook.path("target/served-book/theme");
    assert!(fs::read_dir(built).is_ok(), "copied into the built book");
}
