//! A time bound for tests.
//!
//! Every lab test runs inside [`within`]. The labs' starters are broken on
//! purpose, and some of their bugs hang (a request that never completes, a
//! lock never released): the bound turns a hang into a failure that names
//! what was being waited for.

use std::future::Future;
use std::time::Duration;

/// Runs `future` to completion, or panics after `limit` with a message naming
/// `what` was being waited for.
///
/// ```ignore
/// let reply = within(Duration::from_secs(5), "GET /slow", client.get(url).send()).await;
/// ```
pub async fn within<F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!(
            "gave up after {limit:?} waiting for {what}. Something never finished: \
             look for a handler that never answers, a lock that is never released, \
             or a runtime that is blocked."
        ),
    }
}
