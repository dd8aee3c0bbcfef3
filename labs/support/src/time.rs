//! Time bounds for tests.
//!
//! Every lab test runs inside [`within`]. The labs' starters are broken on
//! purpose, and some of their bugs hang (a request that never completes, a
//! lock never released): the bound turns a hang into a failure that names
//! what was being waited for.
//!
//! Panics in a lab test print no backtrace, whatever `RUST_BACKTRACE` says:
//! the message says what was observed and what to suspect, and a backtrace
//! through tokio and the test harness (dozens of lines per panic) buries it.
//!
//! [`eventually`] waits, boundedly, for something another task or thread will
//! make true (a gauge back at 0, a job that stopped), and says whether it did,
//! so the test can fail with a message of its own.

use std::future::Future;
use std::sync::Once;
use std::time::Duration;

use tokio::time::Instant;

/// Runs `future` to completion, or panics after `limit` with a message naming
/// `what` was being waited for.
///
/// ```ignore
/// let reply = within(Duration::from_secs(5), "GET /slow", client.get(url).send()).await;
/// ```
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    quiet_panics();
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!(
            "gave up after {limit:?} waiting for {what}. Something never finished: \
             look for a handler that never answers, a lock that is never released, \
             or a runtime that is blocked."
        ),
    }
}

/// Replaces the panic hook, once, with one that prints the thread, the
/// location and the message, as the default hook does, but no backtrace.
fn quiet_panics() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(a panic without a message)");
            let at = info
                .location()
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            eprintln!(
                "thread '{}' panicked{at}:\n{message}",
                thread.name().unwrap_or("<unnamed>")
            );
        }));
    });
}

/// How often [`eventually`] checks its condition.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// Checks `condition` every few milliseconds until it holds, for at most
/// `limit`. Returns whether it held in time: `false` is the test's to explain.
///
/// ```ignore
/// let stopped = eventually(Duration::from_secs(2), || jobs.running() == 0).await;
/// assert!(stopped, "{} jobs still ran 2 s after their clients left", jobs.running());
/// ```
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
