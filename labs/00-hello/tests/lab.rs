//! The checks of lab 00, run with `cargo test -p hello`.
//!
//! They talk to the real server over a socket, like curl would.

use std::time::Duration;

use lab_support::client::get;
use lab_support::{TestServer, within};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn hello_greets_the_world() {
    let server = TestServer::start(hello::app());
    let reply = within(LIMIT, "GET /hello", get(&server.url("/hello"))).await;
    assert_eq!(reply.status, 200, "GET /hello should answer 200 OK");
    assert_eq!(reply.body, "Hello, world!");
}

#[tokio::test]
async fn hello_greets_by_name() {
    let server = TestServer::start(hello::app());
    let reply = within(
        LIMIT,
        "GET /hello?name=Ferris",
        get(&server.url("/hello?name=Ferris")),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "GET /hello?name=Ferris should answer 200 OK"
    );
    assert_eq!(
        reply.body, "Hello, Ferris!",
        "GET /hello?name=Ferris answered {:?}. Is the handler using the `name` from the query?",
        reply.body
    );
}
