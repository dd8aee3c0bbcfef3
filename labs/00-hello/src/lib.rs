//! Lab 00 · hello: the workflow.
//!
//! A one-route server, wrong on purpose so that you can practise the loop
//! every later lab uses: run the tests, read the failure, fix, run again.
//!
//! `GET /hello` greets the world; `GET /hello?name=Ferris` should greet Ferris.

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;

/// The lab's app: the tests start it on a free port, `cargo run -p hello` on port 8080.
pub fn app() -> Router {
    Router::new().route("/hello", get(hello))
}

/// The query string of `/hello`, e.g. `?name=Ferris`.
#[derive(Debug, Deserialize)]
pub struct Greeting {
    name: Option<String>,
}

// ANCHOR: hello
async fn hello(Query(greeting): Query<Greeting>) -> String {
    let _name = greeting.name;
    "Hello, world!".to_string()
}
// ANCHOR_END: hello
