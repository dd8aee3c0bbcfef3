//! The traffic that makes each lab's bug visible in tokio-console, and what
//! to look for there.
//!
//! A scenario is written against the lab's routes (as its chapter's curl
//! commands are) and prints one line every few seconds saying what the
//! traffic observes, so the terminal tells the same story as the console.
//! A lab without a scenario gets a server and no traffic.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::runner::ui::{self, paint};

type Traffic = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One lab's traffic and the words that go with it.
pub struct Scenario {
    /// What the traffic does, in a sentence.
    pub traffic: &'static str,
    /// What tokio-console shows while the bug is there.
    pub starter: &'static str,
    /// What it shows once the bug is fixed.
    pub solution: &'static str,
    /// Whether the lab has a bug to compare with its solution.
    pub has_bug: bool,
    drive: fn(SocketAddr) -> Traffic,
}

impl Scenario {
    /// Sends the traffic to the server at `addr`, forever.
    pub async fn drive(&self, addr: SocketAddr) {
        (self.drive)(addr).await;
    }
}

/// The scenario of the lab `slug`.
pub fn for_lab(slug: &str) -> Scenario {
    match slug {
        "hello" => Scenario {
            traffic: "GET /hello?name=Ferris once a second.",
            starter: "One task per connection (spawned in axum's serve module): the \
                      server's only tasks. They are idle nearly all the time, with a poll \
                      of a few microseconds per request. This lab has no concurrency bug; \
                      it is the place to learn the screen.",
            solution: "The same quiet picture: one idle task per connection.",
            has_bug: false,
            drive: |addr| Box::pin(hello(addr)),
        },
        "blocking" => Scenario {
            traffic: "over and over, two GET /slow?ms=1000 and one GET /crunch?ms=1000 at \
                      once; meanwhile GET /health every 250 ms, timed.",
            starter: "The connection tasks (Location: axum's serve/mod.rs) are Busy for \
                      seconds with only a handful of Polls: each poll lasts a whole second, \
                      because `std::thread::sleep` and the checksum loop never return to \
                      the runtime. Their Sched time grows too: tasks ready to run, waiting \
                      for the runtime's only thread. Open one (sort by Polls with the arrow \
                      keys, select a row with j, press Enter): the p50 of its poll times is \
                      1.00s. The /health lines below show the cost: up to 3 s for a reply.",
            solution: "The connection tasks stay Idle while they wait: Busy in milliseconds \
                       over dozens of polls of a few hundred microseconds. /crunch's work \
                       runs as tasks of kind `blocking`, spawned at \
                       labs/01-blocking/src/lib.rs (spawn_blocking), each Busy for its \
                       second on a thread of its own. /health answers in milliseconds.",
            has_bug: true,
            drive: |addr| Box::pin(blocking(addr)),
        },
        "shared-state" => Scenario {
            traffic: "20 POST /api at once, every 2 s; the numbers they get are compared.",
            starter: "Twenty connection tasks wake, each idle for the 50 ms of its audit-log \
                      write, and answer: nothing looks wrong to the console, because a lost \
                      update is a logic race, not a scheduling problem. The lines below show \
                      it: 20 requests, far fewer distinct numbers.",
            solution: "The same tasks; now every request gets a number of its own.",
            has_bug: true,
            drive: |addr| Box::pin(shared_state(addr)),
        },
        "cancellation" => Scenario {
            traffic: "4 clients a second ask for a 10 s report (GET /report?steps=1000) and \
                      one a second for a 3 s render (GET /render?steps=300); each hangs up \
                      after 100 ms. GET /stats every 2 s.",
            starter: "Count the live tasks in the header (Running + Idle): it climbs by a \
                      dozen a second. Most sit at labs/05-cancellation/src/lib.rs, the \
                      `tokio::spawn` of a report section: each lives its full 10 s and \
                      ~1000 polls (one per 10 ms step) although its client left after \
                      100 ms. The in-flight gauge below climbs and never comes down.",
            solution: "The section tasks at labs/05-cancellation/src/lib.rs end about 100 ms \
                       after they start (⏹: the console shows finished tasks for a few \
                       seconds, so count the live ones in the header, Running + Idle: a \
                       handful). Renders stop at their next tile: `blocking` tasks of \
                       ~100 ms. The in-flight gauge below stays near 0.",
            has_bug: true,
            drive: |addr| Box::pin(cancellation(addr)),
        },
        "overload" => Scenario {
            traffic: "every 3 s, 6 GET /work?ms=1500 at once (twice the server's limit of 3); \
                      then GET /jobs for the most jobs that ever ran at once.",
            starter: "Six connection tasks (axum's serve/mod.rs), one per client connection, \
                      kept alive between bursts and idle while their jobs await a timer. The \
                      console cannot tell a limited server from an unlimited one here: the \
                      lines below do. All 6 answer 200 and the peak is 6 jobs at once, twice \
                      the limit.",
            solution: "The same six connection tasks. Three requests of each burst are answered \
                       503 within a millisecond and their tasks go back to idle at once. The \
                       lines below: 3 × 200, 3 × 503, and the peak stays at 3.",
            has_bug: true,
            drive: |addr| Box::pin(overload(addr)),
        },
        "client-pool" => Scenario {
            traffic: "every 2 s, 10 GET /proxy/ok one after another; then GET /upstream-stats \
                      says how many TCP connections the upstream has accepted so far.",
            starter: "A stream of tasks born and finished (⏹) within milliseconds: for every \
                      proxied request, the new reqwest client's connection task (hyper-util's \
                      rt/tokio.rs) and the upstream's connection task (axum's serve/mod.rs; the \
                      upstream runs in the same process). Total tasks in the header climb by \
                      hundreds. The lines below: one new upstream connection per request.",
            solution: "A dozen tasks, all long-lived: one pooled connection, its tasks \
                       idle between requests, alive for as long as the server. The lines \
                       below: 0 new upstream connections per round.",
            has_bug: true,
            drive: |addr| Box::pin(client_pool(addr)),
        },
        _ => Scenario {
            traffic: "none for this lab yet; use the curl commands of its chapter.",
            starter: "Send a few requests with curl and watch the tasks they create.",
            solution: "Send a few requests with curl and watch the tasks they create.",
            has_bug: false,
            drive: |_| Box::pin(std::future::pending()),
        },
    }
}

/// How often a scenario reports what it sees.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// Every line the traffic has reported, for `capture-console`.
static REPORTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn report(line: String) {
    anstream::println!("{} {line}", paint(ui::COMMAND, "traffic |"));
    if let Ok(mut reported) = REPORTED.lock() {
        reported.push(line);
    }
}

/// Takes the lines reported so far (and forgets them).
pub fn take_reported() -> Vec<String> {
    REPORTED
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .unwrap_or_default()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a plain HTTP client builds")
}

/// `GET url`, the body as text (or the error, said briefly).
async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client.get(url).send().await.map_err(brief)?;
    response.text().await.map_err(brief)
}

fn brief(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        error.to_string()
    }
}

async fn hello(addr: SocketAddr) {
    let client = client();
    let url = format!("http://{addr}/hello?name=Ferris");
    loop {
        match get_text(&client, &url).await {
            Ok(body) => report(format!("GET /hello?name=Ferris answered {body:?}")),
            Err(error) => report(format!("GET /hello?name=Ferris: {error}")),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn blocking(addr: SocketAddr) {
    let client = client();
    let load = {
        let client = client.clone();
        async move {
            loop {
                let slow = format!("http://{addr}/slow?ms=1000");
                let crunch = format!("http://{addr}/crunch?ms=1000");
                let _ = tokio::join!(
                    get_text(&client, &slow),
                    get_text(&client, &slow),
                    get_text(&client, &crunch)
                );
            }
        }
    };
    let health = async move {
        let url = format!("http://{addr}/health");
        let mut slowest = Duration::ZERO;
        let mut window = Instant::now();
        loop {
            let started = Instant::now();
            let answer = get_text(&client, &url).await;
            let took = started.elapsed();
            slowest = slowest.max(took);
            if let Err(error) = answer {
                report(format!("GET /health: {error}"));
            }
            if window.elapsed() >= REPORT_EVERY {
                report(format!(
                    "GET /health: slowest reply of the last {} s took {} (healthy: ~1 ms)",
                    REPORT_EVERY.as_secs(),
                    human(slowest)
                ));
                slowest = Duration::ZERO;
                window = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(250).saturating_sub(took)).await;
        }
    };
    tokio::join!(load, health);
}

async fn shared_state(addr: SocketAddr) {
    let client = client();
    let url = format!("http://{addr}/api");
    loop {
        let requests = (0..20).map(|_| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let reply = client.post(&url).send().await.ok()?;
                let json: serde_json::Value = reply.json().await.ok()?;
                json["request_num"].as_u64()
            }
        });
        let numbers: Vec<u64> = futures_join_all(requests)
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut distinct = numbers.clone();
        distinct.sort_unstable();
        distinct.dedup();
        report(format!(
            "{} requests got {} distinct numbers ({}..={})",
            numbers.len(),
            distinct.len(),
            distinct.first().unwrap_or(&0),
            distinct.last().unwrap_or(&0)
        ));
        tokio::time::sleep(REPORT_EVERY).await;
    }
}

async fn overload(addr: SocketAddr) {
    let client = client();
    let work = format!("http://{addr}/work?ms=1500");
    let jobs = format!("http://{addr}/jobs");
    loop {
        let burst: Vec<_> = (0..6)
            .map(|_| {
                let client = client.clone();
                let work = work.clone();
                async move {
                    client
                        .get(&work)
                        .send()
                        .await
                        .ok()
                        .map(|r| r.status().as_u16())
                }
            })
            .collect();
        let statuses: Vec<u16> = futures_join_all(burst.into_iter())
            .await
            .into_iter()
            .flatten()
            .collect();
        let peak = match client.get(&jobs).send().await {
            Ok(reply) => reply.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        }
        .map(|counts| counts["peak"].to_string())
        .unwrap_or_else(|| "?".into());
        let count = |status| statuses.iter().filter(|s| **s == status).count();
        report(format!(
            "6 requests at once (limit 3): {} answered 200, {} answered 503; the most jobs \
             ever running at once: {peak}",
            count(200),
            count(503)
        ));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn client_pool(addr: SocketAddr) {
    let client = client();
    let proxied = format!("http://{addr}/proxy/ok");
    let stats = format!("http://{addr}/upstream-stats");
    let mut connections_before: Option<u64> = None;
    loop {
        for _ in 0..10 {
            let _ = get_text(&client, &proxied).await;
        }
        let connections = match client.get(&stats).send().await {
            Ok(reply) => reply.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        }
        .and_then(|seen| seen["connections"].as_u64());
        match (connections, connections_before) {
            (Some(now), Some(before)) => report(format!(
                "10 proxied requests opened {} new upstream connections ({now} in all)",
                now - before
            )),
            (Some(now), None) => report(format!("upstream connections so far: {now}")),
            (None, _) => report("GET /upstream-stats: no answer".into()),
        }
        connections_before = connections.or(connections_before);
        tokio::time::sleep(REPORT_EVERY).await;
    }
}

/// Runs the futures concurrently and collects their outputs in order.
async fn futures_join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        if let Ok(output) = handle.await {
            outputs.push(output);
        }
    }
    outputs
}

/// Sends `GET path` over a raw connection and hangs up after `patience`,
/// the way an impatient client (or a closed browser tab) does.
async fn leave_early(addr: SocketAddr, path: &str, patience: Duration) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_ok() {
        tokio::time::sleep(patience).await;
    }
    // Dropping the stream closes the connection.
}

async fn cancellation(addr: SocketAddr) {
    let sent = Arc::new(AtomicU64::new(0));
    let impatient = |path: &'static str, every: Duration| {
        let sent = sent.clone();
        async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                sent.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(leave_early(addr, path, Duration::from_millis(100)));
            }
        }
    };
    let reports = impatient("/report?steps=1000", Duration::from_millis(250));
    let renders = impatient("/render?steps=300", Duration::from_secs(1));
    let stats = async {
        let client = client();
        let url = format!("http://{addr}/stats");
        let mut last: Option<(u64, u64)> = None;
        // Out of step with the clients (which come on the quarter second), so
        // that the gauge is not read just as two of them arrive.
        tokio::time::sleep(Duration::from_millis(150)).await;
        loop {
            tokio::time::sleep(REPORT_EVERY).await;
            let stats = match client.get(&url).send().await {
                Ok(reply) => reply.json::<serde_json::Value>().await.ok(),
                Err(_) => None,
            };
            let Some(stats) = stats else {
                report("GET /stats: no answer".into());
                continue;
            };
            let steps = (
                stats["report_steps"].as_u64().unwrap_or(0),
                stats["render_steps"].as_u64().unwrap_or(0),
            );
            let per_second = |now: u64, before: u64| {
                (now.saturating_sub(before)) / REPORT_EVERY.as_secs().max(1)
            };
            if let Some(before) = last {
                report(format!(
                    "{} clients came and left so far; in flight: {}; report steps/s: {}; \
                     render tiles/s: {}",
                    sent.load(Ordering::Relaxed),
                    stats["in_flight"],
                    per_second(steps.0, before.0),
                    per_second(steps.1, before.1)
                ));
            }
            last = Some(steps);
        }
    };
    tokio::join!(reports, renders, stats);
}

/// `0.8 ms`, `1.02 s`.
fn human(duration: Duration) -> String {
    if duration < Duration::from_millis(10) {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_in_a_readable_unit() {
        assert_eq!(human(Duration::from_micros(800)), "0.8 ms");
        assert_eq!(human(Duration::from_millis(250)), "250 ms");
        assert_eq!(human(Duration::from_millis(1020)), "1.02 s");
    }

    #[test]
    fn every_lab_has_words_even_without_a_scenario() {
        for slug in [
            "hello",
            "blocking",
            "shared-state",
            "cancellation",
            "overload",
            "client-pool",
            "unknown",
        ] {
            let scenario = for_lab(slug);
            assert!(!scenario.traffic.is_empty() && !scenario.starter.is_empty());
        }
    }
}
