//! The checks of lab 04, run with `cargo test -p middleware`.
//!
//! Each test serves the lab's app on a real socket, as `cargo run` does
//! (with the peer's address available to the app), and talks to it like its
//! users: with and without a token, in bursts, from a second address
//! (127.0.0.2, or ::1 where that is missing), through a proxy that says who
//! it forwards for. What is checked is what a client or an operator sees:
//! statuses, headers, bodies, and the server's log lines.
//!
//! The rate-limit tests allow a small quota (5 requests a minute) and send
//! every request on a new connection, as separate visits would: a limit that
//! forgets a client between connections must not pass. A refusal is checked
//! for what it tells the client (`Retry-After`, the limiter's own wait, which
//! the test knows from its own clock) and for what it spared the server (no
//! handler ran for it: its log lines say so).
//!
//! Every failure message says what was observed, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use lab_support::client::{Reply, SecondClient, send};
use lab_support::{TestServer, eventually, within};
use middleware::{Config, Rate, app};
use reqwest::{Client, RequestBuilder, StatusCode};
use tokio::time::Instant;

/// The token the tests' servers accept.
const TOKEN: &str = "s3cret-t0ken-for-lab-04";
/// The quota of the rate-limit tests: 5 requests a minute, all at once if
/// the client likes, then one every 12 s.
const QUOTA: u32 = 5;
/// How long a request of that quota takes to come back: 60 s / 5 = 12 s.
const QUOTA_PERIOD: Duration = Duration::from_secs(60 / QUOTA as u64);
/// A quota no test comes near, for the tests that are not about the limit.
const GENEROUS: u32 = 1000;
/// No test may take longer than this, even against a broken server.
const LIMIT: Duration = Duration::from_secs(10);

/// The public routes, and a piece of what each must answer.
const PUBLIC: [(&str, &str); 2] = [("/", "orders API"), ("/health", "ok")];
/// The routes that need the token, and a piece of what each must answer.
const PROTECTED: [(&str, &str); 2] = [
    ("/api/orders", "coffee beans"),
    ("/api/export", "id,item,quantity"),
];

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("04-middleware.html");

/// The lab's app with `requests` a minute per client and the given trusted
/// proxies, served as `cargo run -p middleware` serves it.
fn serve(rate: Rate, trusted_proxies: Vec<IpAddr>) -> TestServer {
    TestServer::start(app(Config {
        token: TOKEN.to_owned(),
        rate,
        trusted_proxies,
    }))
}

/// The lab's app with a quota of `QUOTA` a minute and no trusted proxy.
fn serve_with_quota() -> TestServer {
    serve(Rate::per_minute(QUOTA), Vec::new())
}

/// Sends `request`, bounded by `LIMIT`.
async fn fetch(what: &str, request: RequestBuilder) -> Reply {
    within(LIMIT, what, send(request)).await
}

/// `GET path` on a connection of its own: a new client for every request, so
/// each one comes from a new source port, as separate visits do.
async fn visit(server: &TestServer, path: &str) -> Reply {
    fetch(&format!("GET {path}"), Client::new().get(server.url(path))).await
}

/// `GET path` with `X-Forwarded-For: forwarded_for`, on a connection of its own.
async fn visit_forwarded(server: &TestServer, path: &str, forwarded_for: &str) -> Reply {
    let request = Client::new()
        .get(server.url(path))
        .header("x-forwarded-for", forwarded_for);
    fetch(&format!("GET {path} for {forwarded_for}"), request).await
}

/// A reply, with when its request was sent and when its answer was in, by
/// the test's clock: the server did its work somewhere in between.
struct Timed {
    reply: Reply,
    sent: Instant,
    answered: Instant,
}

/// [`visit`], timed.
async fn timed_visit(server: &TestServer, path: &str) -> Timed {
    let sent = Instant::now();
    let reply = visit(server, path).await;
    Timed {
        reply,
        sent,
        answered: Instant::now(),
    }
}

/// The limiter's wait at a refusal, as the test's clock knows it.
///
/// A client that starts from a full bucket gets its first token back one
/// `period` after it took it, whatever it sent meanwhile. The test knows
/// when the limiter took that token (during `first`) and when it answered
/// the refusal (during `refused`) only between sending and answer, so it
/// knows the wait within a range, and the honest `Retry-After` (the wait in
/// whole seconds, rounded up, at least 1) within a range too: one value,
/// unless the machine is so slow that the range crosses a whole second.
struct Wait {
    shortest: Duration,
    longest: Duration,
    period: Duration,
}

impl Wait {
    fn at(refused: &Timed, first: &Timed, period: Duration) -> Wait {
        Wait {
            shortest: (first.sent + period).saturating_duration_since(refused.answered),
            longest: (first.answered + period).saturating_duration_since(refused.sent),
            period,
        }
    }

    /// The values of `Retry-After` that state this wait, rounded up.
    fn honest(&self) -> RangeInclusive<u64> {
        whole_seconds_up(self.shortest)..=whole_seconds_up(self.longest)
    }

    /// Checks that `refused` says `Retry-After: <the wait, rounded up>`, and
    /// names the suspect that fits the value it says instead. `context`
    /// says what the client did before.
    fn check(&self, refused: &Reply, context: &str) {
        let retry_after = refused.header("retry-after");
        let value = retry_after.and_then(|value| value.parse::<u64>().ok());
        let honest = self.honest();
        if value.is_some_and(|v| honest.contains(&v)) {
            return;
        }
        let told = retry_after.map_or("no Retry-After header".to_owned(), |value| {
            format!("Retry-After: {value}")
        });
        let expected = if honest.start() == honest.end() {
            format!("Retry-After: {}", honest.start())
        } else {
            format!("Retry-After: {} or {}", honest.start(), honest.end())
        };
        let mut suspects = Vec::new();
        match value {
            None => suspects.push("Is the header missing, or not a whole number of seconds?"),
            Some(v) => {
                let rounded_down = self.shortest.as_secs()..=self.longest.as_secs();
                if rounded_down.contains(&v) {
                    suspects.push(
                        "Is the wait rounded down? A client told less than the wait comes \
                         back too early and is refused again.",
                    );
                }
                let period = [self.period.as_secs(), whole_seconds_up(self.period)];
                if period.contains(&v) && v != *honest.start() {
                    suspects.push(
                        "Is it the time a request takes to come back (the quota's period), \
                         rather than what is left of that time?",
                    );
                }
                if suspects.is_empty() {
                    suspects.push("Is it a fixed number, or not the limiter's own wait?");
                }
            }
        }
        panic!(
            "{context}: refused with {told}; expected {expected}.\n\
             By this test's clock the client's next request comes free {} later (the token \
             its first request took comes back {:.1} s after it was taken), and Retry-After is \
             that wait in whole seconds, rounded up: told less, the client is refused again; \
             told more, it waits longer than it must.\n\
             {}\n\
             Read: {CHAPTER}#retry-after",
            self.shown(),
            self.period.as_secs_f64(),
            suspects.join(" ")
        );
    }

    /// The wait as the test knows it: "11.98 s", or "1.47 to 1.50 s".
    fn shown(&self) -> String {
        let (shortest, longest) = (self.shortest.as_secs_f64(), self.longest.as_secs_f64());
        if format!("{shortest:.2}") == format!("{longest:.2}") {
            format!("{shortest:.2} s")
        } else {
            format!("{shortest:.2} to {longest:.2} s")
        }
    }
}

/// A duration in whole seconds, rounded up, and at least 1: `Retry-After: 0`
/// would send the client straight back.
fn whole_seconds_up(duration: Duration) -> u64 {
    duration.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

/// What to suspect when a client over its quota was answered `status`
/// instead of `429`: a refusal with the wrong status, or no refusal at all.
fn not_refused_suspect(status: StatusCode) -> String {
    if status.is_success() {
        "Nothing limits this client yet (see the test \
         a_burst_beyond_the_quota_gets_429_with_retry_after): does the limiter remember \
         anything from one request (or one connection) to the next?"
            .to_owned()
    } else {
        format!(
            "The request was refused, but with {status}: a client over its own quota is \
             answered 429 Too Many Requests, so that it knows the fault is its own and when to \
             come back (503 says the whole server is unavailable, to everyone). Which status does \
             the refusal answer with?"
        )
    }
}

/// What to suspect when a client was refused before it used up its quota.
/// A server started for the purpose, which has never seen this client,
/// tells whether the counts are shared between servers (one limiter for the
/// whole process) or the quota is just smaller than configured.
async fn early_refusal_suspect() -> (&'static str, &'static str) {
    let fresh = serve_with_quota();
    if visit(&fresh, "/").await.status == StatusCode::TOO_MANY_REQUESTS {
        (
            "A server started just now, which has never seen this client, refuses its first \
             request too: the counts are shared between servers. Is one limiter made for the \
             whole process (in a static, say), instead of one by each `app()` with its own quota?",
            "a-limit-that-forgets",
        )
    } else {
        (
            "Is the quota smaller than configured, or is each request counted more than once?",
            "the-exercise",
        )
    }
}

/// Panics unless `reply`, the answer to `GET /` from a client within its
/// quota (`what` says which request), is a `200`.
async fn assert_served(what: &str, reply: &Reply) {
    if reply.status == StatusCode::OK {
        return;
    }
    let (suspect, section) = match reply.status {
        StatusCode::TOO_MANY_REQUESTS => early_refusal_suspect().await,
        StatusCode::UNAUTHORIZED => (
            "GET / is a public route, open to anyone: does the auth layer wrap more than the \
             protected routes?",
            "layer-order",
        ),
        _ => (
            "GET / is a public route: it answers 200 to anyone within the quota.",
            "the-exercise",
        ),
    };
    panic!(
        "{what} answered {} {:?}; expected 200.\n\
         {suspect}\n\
         Read: {CHAPTER}#{section}",
        reply.status, reply.body
    );
}

/// Panics if `reply` is a `429` from a server whose quota (`GENEROUS` a
/// minute) no test comes near: the limit counted requests this server never
/// had, or used a quota other than its own.
fn assert_not_limited(what: &str, reply: &Reply) {
    assert!(
        reply.status != StatusCode::TOO_MANY_REQUESTS,
        "{what} answered 429 Too Many Requests {:?}, from a server that allows {GENEROUS} \
         requests a minute, far more than this test sends it; expected the route's own answer.\n\
         The limit counted requests this server never received, or used another quota than \
         the one it was given: is the limiter shared with every other server in this process \
         (made once, for the process, not by each `app()`), or its quota not the `Config`'s?\n\
         Read: {CHAPTER}#a-limit-that-forgets",
        reply.body
    );
}

/// Sends `QUOTA` requests (built by `request`) one after another and checks
/// they were all served, then one more and checks it was refused: the client
/// has used up its quota. `who` names the client in the messages.
async fn use_up_quota<F, Fut>(who: &str, mut request: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for sent in 1..=QUOTA {
        let reply = request().await;
        let what = format!(
            "request {sent} of {who}, within its quota of {QUOTA} a minute (this was its first \
             minute),"
        );
        assert_served(&what, &reply).await;
    }
    let over = request().await;
    assert!(
        over.status == StatusCode::TOO_MANY_REQUESTS,
        "request {} of {who}, over its quota of {QUOTA} a minute, answered {} {:?}; expected 429 \
         Too Many Requests.\n\
         {}\n\
         Read: {CHAPTER}#{}",
        QUOTA + 1,
        over.status,
        over.body,
        not_refused_suspect(over.status),
        refusal_section(over.status),
    );
}

/// The book's section that fits a request over its quota answered `status`.
fn refusal_section(status: StatusCode) -> &'static str {
    if status.is_success() {
        "a-limit-that-forgets"
    } else {
        "retry-after"
    }
}

/// Every route answers with its own content, token in hand. A middleware
/// that answers for the handler instead of calling it (one that forgets
/// `next.run(request).await`) gives an empty `200 OK`, which looks like
/// success to every check that reads only the status.
#[tokio::test]
async fn every_route_answers_with_its_content() {
    let server = serve(Rate::per_minute(GENEROUS), Vec::new());
    let client = Client::new();
    for (path, content) in PUBLIC.iter().chain(&PROTECTED) {
        let reply = fetch(
            &format!("GET {path}"),
            client.get(server.url(path)).bearer_auth(TOKEN),
        )
        .await;
        assert_not_limited(&format!("GET {path} with the token"), &reply);
        assert!(
            reply.status == StatusCode::OK && reply.body.contains(content),
            "GET {path} with the token answered {} {:?}; expected 200 with {content:?} in the \
             body, the handler's own answer.\n\
             An answer without the handler's content comes from a layer: does every middleware \
             pass the request on to the next one, and return what it answers?\n\
             Read: {CHAPTER}#a-middleware-must-call-next",
            reply.status,
            reply.body
        );
    }
}

/// The public routes answer anyone, no token needed. An auth layer wrapped
/// around the whole app instead of the protected routes locks them too.
#[tokio::test]
async fn public_routes_answer_without_a_token() {
    let server = serve(Rate::per_minute(GENEROUS), Vec::new());
    for (path, content) in PUBLIC {
        let reply = visit(&server, path).await;
        assert_not_limited(&format!("GET {path} without a token"), &reply);
        let (suspect, section) = if reply.status == StatusCode::OK {
            (
                "A 200 without the handler's content comes from a layer: does every middleware \
                 pass the request on to the next one?",
                "a-middleware-must-call-next",
            )
        } else {
            (
                "Does the auth layer wrap more than the protected routes?",
                "layer-order",
            )
        };
        assert!(
            reply.status == StatusCode::OK && reply.body.contains(content),
            "GET {path} without a token answered {} {:?}; expected 200 with {content:?}: it is a \
             public route.\n\
             {suspect}\n\
             Read: {CHAPTER}#{section}",
            reply.status,
            reply.body
        );
    }
}

/// Every protected route answers `401 Unauthorized`, with a
/// `WWW-Authenticate` challenge saying which scheme to use, to a request
/// without the exact token: none, a wrong one, one a character short or
/// long, one without its `Bearer ` scheme. A route added to the router
/// *after* the auth layer is not wrapped by it: a layer wraps the routes
/// that exist when it is added, and no others.
#[tokio::test]
async fn every_protected_route_answers_401_without_a_valid_token() {
    let server = serve(Rate::per_minute(GENEROUS), Vec::new());
    let short = &TOKEN[..TOKEN.len() - 1];
    let attempts: [(&str, Option<String>); 6] = [
        ("no Authorization header", None),
        ("a wrong token", Some("Bearer not-the-token".to_owned())),
        (
            "the token minus its last character",
            Some(format!("Bearer {short}")),
        ),
        (
            "the token plus one character",
            Some(format!("Bearer {TOKEN}x")),
        ),
        ("the token without `Bearer `", Some(TOKEN.to_owned())),
        ("an empty bearer token", Some("Bearer ".to_owned())),
    ];
    let client = Client::new();
    for (path, content) in PROTECTED {
        for (attempt, authorization) in &attempts {
            let mut request = client.get(server.url(path));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let reply = fetch(&format!("GET {path} with {attempt}"), request).await;
            assert_not_limited(&format!("GET {path} with {attempt}"), &reply);
            if reply.status == StatusCode::OK && authorization.is_none() {
                let (suspect, section) = if reply.body.contains(content) {
                    (
                        "The auth layer does not wrap this route: was it added to the router \
                         after the layer?",
                        "layer-order",
                    )
                } else {
                    (
                        "And not with the handler's answer: a layer answered instead. Does \
                         every middleware pass the request on, or refuse it?",
                        "a-middleware-must-call-next",
                    )
                };
                panic!(
                    "GET {path} with no Authorization header answered 200 {:?}; expected 401 \
                     Unauthorized: this route is open to anyone.\n\
                     {suspect}\n\
                     Read: {CHAPTER}#{section}",
                    reply.body
                );
            }
            assert!(
                reply.status == StatusCode::UNAUTHORIZED,
                "GET {path} with {attempt} answered {} {:?}; expected 401 Unauthorized.\n\
                 Only `Authorization: Bearer <the token>`, exactly, may pass: does the check \
                 compare the whole token, and only the token?\n\
                 Read: {CHAPTER}#auth",
                reply.status,
                reply.body
            );
            let challenge = reply.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.to_ascii_lowercase().starts_with("bearer"),
                "GET {path} with {attempt} answered 401, with WWW-Authenticate {:?}; expected a \
                 challenge that starts with \"Bearer\" (HTTP requires one with every 401: it \
                 tells the client how to authenticate).\n\
                 Is the header missing from the 401 response?\n\
                 Read: {CHAPTER}#auth",
                reply.header("www-authenticate")
            );
        }
    }
}

/// One client (127.0.0.1) sends `QUOTA + 3` requests in a row, each on a
/// connection of its own: the first `QUOTA` are served, the rest answered
/// `429 Too Many Requests` with `Retry-After` saying the limiter's own wait:
/// at 5 a minute, the token the burst's first request took comes back 12 s
/// after it was taken, so `12`. (The test works the value out from its own
/// clock, in case the burst was slow; a fixed `1` would send the client back
/// eleven times too early.)
///
/// Then the same client asks a protected route, without the token and with
/// it. Both answers are 429: the limit comes before auth, or guessing tokens
/// would be unlimited. Both carry a request id, like every other answer. And
/// neither request reached auth or the handler: their log lines show the
/// refusal and nothing else. A limiter consulted only after the request was
/// passed on also answers 429, once the work it was there to spare is done.
///
/// Last, a second server (another `app()`) serves the same client's first
/// request: the counts are each app's own.
///
/// A limiter that is made anew for every request (or every connection)
/// starts each one with a full quota and never refuses anything; so does a
/// limit keyed on the peer's address *and port*, since every connection has
/// a port of its own.
#[tokio::test]
async fn a_burst_beyond_the_quota_gets_429_with_retry_after() {
    let logs = capture_logs();
    let server = serve_with_quota();
    let sent = QUOTA as usize + 3;
    let mut replies = Vec::new();
    for _ in 0..sent {
        replies.push(timed_visit(&server, "/").await);
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.reply.status.as_u16()).collect();
    let served = replies
        .iter()
        .take_while(|r| r.reply.status == StatusCode::OK)
        .count();

    if served == sent {
        // Would the same client be limited on one kept-alive connection?
        let per_connection = per_connection_limit_seen().await;
        let suspect = if per_connection {
            "Sent on one kept-alive connection instead, the same requests are limited: every \
             new connection starts with a fresh quota. What is the limit keyed by? A \
             connection's peer address includes its port."
        } else {
            "Nothing limits this client: does the limiter remember anything from one request \
             (or one connection) to the next?"
        };
        panic!(
            "one client sent {sent} requests in a row, each on a new connection, to a server \
             that allows {QUOTA} a minute: all {sent} answered 200; expected the ones after the \
             {QUOTA}th to get 429 Too Many Requests.\n\
             {suspect}\n\
             Read: {CHAPTER}#a-limit-that-forgets"
        );
    }
    let refused_with = replies[served].reply.status;
    let (suspect, section) = if served < QUOTA as usize
        && refused_with == StatusCode::TOO_MANY_REQUESTS
    {
        let (suspect, section) = early_refusal_suspect().await;
        (suspect.to_owned(), section)
    } else if statuses.iter().all(|s| [200, 429].contains(s)) {
        (
            format!(
                "Is the quota set to {QUOTA} a minute, with a burst of {QUOTA}? Is each request \
                 counted once?"
            ),
            "the-exercise",
        )
    } else if served == QUOTA as usize
        && replies[served..]
            .iter()
            .all(|r| r.reply.status == refused_with)
    {
        (
            not_refused_suspect(refused_with),
            refusal_section(refused_with),
        )
    } else if refused_with == StatusCode::UNAUTHORIZED {
        (
            "GET / is a public route, open to anyone: does the auth layer wrap more than the \
             protected routes?"
                .to_owned(),
            "layer-order",
        )
    } else {
        (
            "GET / is a public route: it answers 200 to anyone within the quota, 429 beyond it."
                .to_owned(),
            "the-exercise",
        )
    };
    assert!(
        served == QUOTA as usize
            && replies[served..]
                .iter()
                .all(|r| r.reply.status == StatusCode::TOO_MANY_REQUESTS),
        "one client sent {sent} requests in a row to a server that allows {QUOTA} a minute; the \
         statuses were {statuses:?}; expected {QUOTA} × 200, then 429 for the rest.\n\
         {suspect}\n\
         Read: {CHAPTER}#{section}"
    );
    for (number, refused) in replies.iter().enumerate().skip(served) {
        Wait::at(refused, &replies[0], QUOTA_PERIOD).check(
            &refused.reply,
            &format!(
                "one client sent {sent} requests in a row to a server that allows {QUOTA} a \
                 minute; request {}",
                number + 1
            ),
        );
        assert!(
            refused
                .reply
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty()),
            "the 429 answer has no x-request-id header; expected one, as on every answer.\n\
             Does the refusal happen outside the layers that set and return the request id?\n\
             Read: {CHAPTER}#request-ids"
        );
    }

    let (path, _) = PROTECTED[0];
    for (what, token) in [("without a token", None), ("with the token", Some(TOKEN))] {
        let id = format!("lab-04-over-quota-{}", what.replace(' ', "-"));
        let mut request = Client::new()
            .get(server.url(path))
            .header("x-request-id", &id);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = fetch(&format!("GET {path} {what}"), request).await;
        let suspect = if reply.status == StatusCode::UNAUTHORIZED {
            "The request got past the rate limit to auth: is the limit inside the auth layer, \
             or not wrapping this route? Then anyone can guess tokens as fast as they like."
        } else {
            "The request got past the rate limit: does the limit wrap this route?"
        };
        assert!(
            reply.status == StatusCode::TOO_MANY_REQUESTS,
            "once the client had used up its quota, GET {path} {what} answered {} {:?}; \
             expected 429: a client over its quota is refused before anything else looks at it.\n\
             {suspect}\n\
             Read: {CHAPTER}#layer-order",
            reply.status,
            reply.body
        );
        // The answer is logged as it leaves; give the line a moment to land.
        eventually(Duration::from_secs(2), || {
            logs.lines_with(&id)
                .iter()
                .any(|l| l.contains("status=429"))
        })
        .await;
        let lines = logs.lines_with(&id);
        let work = lines
            .iter()
            .any(|l| l.contains("no valid token") || l.contains("listing"));
        assert!(
            !work,
            "once the client had used up its quota, GET {path} {what} answered 429; its log \
             lines (request id {id}) were:\n{}\n\
             expected none from auth (\"refused: no valid token\") or the handler (\"listing 3 \
             orders\"): a request over the quota is refused before anyone works on it.\n\
             The 429 came after the work it was meant to spare: is the quota checked only once \
             the request has been passed on, and answered?\n\
             Read: {CHAPTER}#refuse-before-the-work",
            lines.join("\n")
        );
    }

    let other = serve_with_quota();
    let fresh = visit(&other, "/").await;
    assert!(
        fresh.status == StatusCode::OK,
        "after the client used up its quota on one server, a second server (another `app()`, \
         with its own Config) answered the client's first request {} {:?}; expected 200: that \
         server had never seen the client.\n\
         Its limiter counts the first server's requests: is one limiter shared by every app in \
         the process (made once, for the process), instead of made by each `app()`?\n\
         Read: {CHAPTER}#a-limit-that-forgets",
        fresh.status,
        fresh.body
    );
}

/// Sends `QUOTA + 3` requests from one client over one kept-alive
/// connection to a fresh server and says whether any was refused: a limit
/// that holds there, but not across connections, lives per connection.
async fn per_connection_limit_seen() -> bool {
    let server = serve_with_quota();
    let client = Client::new();
    let mut refused = false;
    for _ in 0..QUOTA + 3 {
        let reply = fetch("GET / on one connection", client.get(server.url("/"))).await;
        refused |= reply.status == StatusCode::TOO_MANY_REQUESTS;
    }
    refused
}

/// A client that waits as long as `Retry-After` says is served again, and
/// what it is told is always what is left of the limiter's wait. Two
/// clients, each with a server of its own, at once:
///
/// - With 2 requests per 2 s, the third comes free a second after the
///   first: the refusal must say `Retry-After: 1` (the wait, under a second,
///   rounded *up*: rounded down it says 0, and the client comes back at once
///   to be refused again), and after that second the client is served.
/// - With 1 request per 1.5 s, a refusal right after the first request says
///   `2` (just under 1.5 s, rounded up), and one 0.75 s later says `1`: what
///   is left of the wait. A fixed value, or the period (1.5 s, as 1 or 2),
///   is wrong at one of the two.
#[tokio::test]
async fn waiting_as_long_as_retry_after_says_is_enough() {
    tokio::join!(waiting_a_second_is_enough(), retry_after_counts_down());
}

/// The first half of [`waiting_as_long_as_retry_after_says_is_enough`].
async fn waiting_a_second_is_enough() {
    let rate = Rate {
        requests: 2,
        per: Duration::from_secs(2),
    };
    let server = serve(rate, Vec::new());
    let first = timed_visit(&server, "/").await;
    let what = "a client's first request to a server that allows 2 requests per 2 s";
    assert_served(what, &first.reply).await;
    let second = visit(&server, "/").await;
    assert_served("its second request", &second).await;
    let refused = timed_visit(&server, "/").await;
    let what = "with a quota of 2 requests per 2 s, the third request in a row";
    assert_refused(what, &refused.reply);
    Wait::at(&refused, &first, rate.per / rate.requests).check(&refused.reply, what);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = visit(&server, "/").await;
    let suspect = if again.status == StatusCode::TOO_MANY_REQUESTS {
        "Does the header promise less than the limiter's real wait?"
    } else {
        "GET / is a public route: it answers 200 to anyone within the quota."
    };
    assert!(
        again.status == StatusCode::OK,
        "a client refused with Retry-After: 1 waited 1 s and asked again: {} {:?}; expected 200, \
         since one request comes free every second.\n\
         {suspect}\n\
         Read: {CHAPTER}#retry-after",
        again.status,
        again.body
    );
}

/// The second half of [`waiting_as_long_as_retry_after_says_is_enough`].
async fn retry_after_counts_down() {
    let period = Duration::from_millis(1500);
    let server = serve(
        Rate {
            requests: 1,
            per: period,
        },
        Vec::new(),
    );
    let first = timed_visit(&server, "/").await;
    let what = "a client's first request to a server that allows 1 request per 1.5 s";
    assert_served(what, &first.reply).await;
    let early = timed_visit(&server, "/").await;
    let what = "with a quota of 1 request per 1.5 s, the second request in a row";
    assert_refused(what, &early.reply);
    Wait::at(&early, &first, period).check(&early.reply, what);

    tokio::time::sleep_until(first.answered + period / 2).await;
    let later = timed_visit(&server, "/").await;
    let wait = Wait::at(&later, &first, period);
    if later.reply.status == StatusCode::OK && wait.shortest.is_zero() {
        // So slow a machine that the wait may be over: nothing to check.
        return;
    }
    let what = "with a quota of 1 request per 1.5 s, a client refused right after its first \
                request asked again 0.75 s after it";
    assert_refused(what, &later.reply);
    wait.check(&later.reply, what);
}

/// Panics unless `reply`, the answer to a client over its quota (`what`
/// says how), is a `429`.
fn assert_refused(what: &str, reply: &Reply) {
    assert!(
        reply.status == StatusCode::TOO_MANY_REQUESTS,
        "{what} answered {} {:?}; expected 429 Too Many Requests.\n\
         {}\n\
         Read: {CHAPTER}#{}",
        reply.status,
        reply.body,
        not_refused_suspect(reply.status),
        refusal_section(reply.status)
    );
}

/// The quota is per client: after 127.0.0.1 has used up its quota, a second
/// client, from another loopback address (127.0.0.2, or ::1), still gets all
/// of its own. One bucket shared by everyone lets the busiest client starve
/// all the others.
#[tokio::test]
async fn a_second_client_is_unaffected_by_the_first() {
    let other = SecondClient::new(&format!("{CHAPTER}#one-bucket-per-client"));
    let server = serve_with_quota();
    use_up_quota("127.0.0.1", || visit(&server, "/")).await;

    let from = other.ip();
    for sent in 1..=QUOTA {
        let reply = fetch(&format!("GET / from {from}"), other.get(&server, "/")).await;
        assert!(
            reply.status == StatusCode::OK,
            "127.0.0.1 used up its quota of {QUOTA} a minute; then request {sent} from \
             {from}, a client that had sent nothing before, answered {} {:?}; expected 200: \
             each client has a quota of its own.\n\
             All clients seem to share one quota: what is the limit keyed by?\n\
             Read: {CHAPTER}#one-bucket-per-client",
            reply.status,
            reply.body
        );
    }
}

/// `X-Forwarded-For` is believed only from a trusted proxy. Without one, it
/// is whatever the client wrote: a client over its quota that adds
/// `X-Forwarded-For: 203.0.113.7` is still refused. With 127.0.0.1
/// configured as a trusted proxy, each address it forwards for has a quota
/// of its own; and since a proxy *appends* the address it saw, only the last
/// entry is the proxy's word: a client behind it that writes its own entry
/// in front gets no fresh quota either.
#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    // No trusted proxy: the header is the client's own claim.
    let server = serve_with_quota();
    use_up_quota("127.0.0.1", || visit(&server, "/")).await;
    let forged = visit_forwarded(&server, "/", "203.0.113.7").await;
    assert!(
        forged.status == StatusCode::TOO_MANY_REQUESTS,
        "127.0.0.1 used up its quota, then sent `X-Forwarded-For: 203.0.113.7` and was answered \
         {} {:?}; expected 429: no proxy is trusted here, so the header is the client's own \
         claim, and anyone can write it.\n\
         The header bought a fresh quota: is it believed whoever sends it?\n\
         Read: {CHAPTER}#x-forwarded-for",
        forged.status,
        forged.body
    );

    // 127.0.0.1 is a trusted proxy: the address it forwards for is the client.
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let behind_proxy = serve(Rate::per_minute(QUOTA), vec![localhost]);
    use_up_quota("203.0.113.7 (behind the trusted proxy 127.0.0.1)", || {
        visit_forwarded(&behind_proxy, "/", "203.0.113.7")
    })
    .await;
    let neighbour = visit_forwarded(&behind_proxy, "/", "203.0.113.8").await;
    if neighbour.status != StatusCode::OK {
        let (suspect, section) = if neighbour.status != StatusCode::TOO_MANY_REQUESTS {
            (
                "GET / is a public route: it answers 200 to anyone within the quota.",
                "the-exercise",
            )
        } else {
            match second_address_refused(&behind_proxy).await {
                Some(true) => (
                    "A client from another address, not behind the proxy and new to the server, is \
                     refused too: every client shares one quota, whatever its address. What is \
                     the limit keyed by? (The test a_second_client_is_unaffected_by_the_first \
                     fails for the same reason.)",
                    "one-bucket-per-client",
                ),
                Some(false) => (
                    "A client from another address has a quota of its own, but everyone behind the \
                     proxy shares the proxy's: is X-Forwarded-For read when the peer is a \
                     trusted proxy?",
                    "x-forwarded-for",
                ),
                None => (
                    "Everyone behind the proxy shares one quota: is X-Forwarded-For read when \
                     the peer is a trusted proxy, and does the limit keep a quota per client \
                     at all?",
                    "x-forwarded-for",
                ),
            }
        };
        panic!(
            "behind the trusted proxy 127.0.0.1, the client 203.0.113.7 used up its quota; then \
             a request the proxy forwarded for 203.0.113.8 answered {} {:?}; expected 200: each \
             client behind a trusted proxy has a quota of its own.\n\
             {suspect}\n\
             Read: {CHAPTER}#{section}",
            neighbour.status, neighbour.body
        );
    }
    let spoofed = visit_forwarded(&behind_proxy, "/", "198.51.100.1, 203.0.113.7").await;
    assert!(
        spoofed.status == StatusCode::TOO_MANY_REQUESTS,
        "behind the trusted proxy 127.0.0.1, the client 203.0.113.7 used up its quota, then sent \
         its own `X-Forwarded-For: 198.51.100.1`, which the proxy extended to \"198.51.100.1, \
         203.0.113.7\"; answered {} {:?}; expected 429.\n\
         The first entry is whatever the client wrote; the proxy appends the address it saw, \
         at the end: which entry is believed?\n\
         Read: {CHAPTER}#x-forwarded-for",
        spoofed.status,
        spoofed.body
    );
}

/// Whether `server` refuses a first request from a second address, a client
/// that has sent nothing: `None` where this machine has no second loopback
/// address, which the test `a_second_client_is_unaffected_by_the_first`
/// explains.
async fn second_address_refused(server: &TestServer) -> Option<bool> {
    let other = SecondClient::find().ok()?;
    let what = format!("GET / from {}", other.ip());
    let reply = fetch(&what, other.get(server, "/")).await;
    Some(reply.status == StatusCode::TOO_MANY_REQUESTS)
}

/// Every answer carries an `x-request-id`: the client's own if it sent one,
/// a new one if not. And every line the server logs while handling the
/// request carries the same id, so one request's lines can be found among
/// thousands: here, the handler's own line and the line that logs the answer.
#[tokio::test]
async fn each_request_has_an_id_in_its_answer_and_its_log_lines() {
    let logs = capture_logs();
    let server = serve(Rate::per_minute(GENEROUS), Vec::new());
    let client = Client::new();

    let given = "lab-04-request-id-7c1e";
    let reply = fetch(
        "GET /api/orders with a request id",
        client
            .get(server.url("/api/orders"))
            .bearer_auth(TOKEN)
            .header("x-request-id", given),
    )
    .await;
    assert!(
        reply.header("x-request-id") == Some(given),
        "GET /api/orders with `x-request-id: {given}` answered {} with x-request-id {:?}; \
         expected the same id back, so that client and server talk about the same request.\n\
         Read: {CHAPTER}#request-ids",
        reply.status,
        reply.header("x-request-id")
    );

    for (what, request, line) in [
        (
            "GET /api/orders with the token",
            client.get(server.url("/api/orders")).bearer_auth(TOKEN),
            "listing",
        ),
        (
            "GET /api/orders without a token",
            client.get(server.url("/api/orders")),
            "no valid token",
        ),
    ] {
        let reply = fetch(what, request).await;
        assert_not_limited(what, &reply);
        let Some(id) = reply.header("x-request-id").filter(|id| !id.is_empty()) else {
            panic!(
                "{what} answered {} without an x-request-id header; expected a new id on every \
                 answer, refusals included.\n\
                 Read: {CHAPTER}#request-ids",
                reply.status
            );
        };
        let status = format!("status={}", reply.status.as_u16());
        let logged = eventually(Duration::from_secs(2), || {
            let lines = logs.lines_with(id);
            lines.iter().any(|l| l.contains(line)) && lines.iter().any(|l| l.contains(&status))
        })
        .await;
        assert!(
            logged,
            "{what} answered {} with request id {id}; the server's log lines with that id \
             were:\n{}\nexpected the line that says {line:?} and the line that logs its answer \
             ({status}), each with the id.\n\
             Does the logging span record the id, and does the logging wrap every layer that \
             can answer?\n\
             Read: {CHAPTER}#request-ids",
            reply.status,
            logs.lines_with(id).join("\n")
        );
    }
}

/// Stretch (opt in with `cargo test -p middleware -- --ignored stretch_`): a
/// load balancer polls `/health` every few seconds from its own address, or
/// through the same address as everyone behind it, and takes the server out
/// of rotation when it does not answer 200. A health check that is rate
/// limited fails exactly when one client is busy. Leave `/health` outside
/// the limit; keep every other route inside it. The reference solution
/// limits every route; this is yours to change.
#[tokio::test]
#[ignore = "stretch: /health is never rate limited"]
async fn stretch_health_is_never_rate_limited() {
    let server = serve_with_quota();
    use_up_quota("127.0.0.1", || visit(&server, "/")).await;
    let health = visit(&server, "/health").await;
    assert!(
        health.status == StatusCode::OK,
        "127.0.0.1 used up its quota on GET /, then GET /health answered {} {:?}; expected 200: \
         the health check is not limited.",
        health.status,
        health.body
    );
    let other = visit(&server, "/").await;
    assert!(
        other.status == StatusCode::TOO_MANY_REQUESTS,
        "after GET /health, GET / from the same client answered {}; expected 429: every route \
         but /health stays limited.",
        other.status
    );
}

/// The server's log lines, captured by a global tracing subscriber that
/// writes to memory. Installed once per test binary; the tests that run
/// meanwhile log into it too, which is fine: lines are found by request id.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// The captured lines that contain `text`.
    fn lines_with(&self, text: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut captured = self.0.lock().unwrap_or_else(|e| e.into_inner());
        captured.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing the log lines (at INFO and above, as `cargo run` shows them).
fn capture_logs() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    })
    .clone()
}
