//! The checks of lab 00, run with `cargo test -p hello`.
//!
//! They talk to the real server over a socket, like curl would.
//!
//! Every failure message says what the server did, what was expected, and
//! where to read about it in the book (`cargo xtask book` serves it on
//! <http://127.0.0.1:3000>).

use std::time::Duration;

use lab_support::client::get;
use lab_support::{TestServer, within};

const LIMIT: Duration = Duration::from_secs(10);

/// The chapter of this lab in the locally served book.
const CHAPTER: lab_support::Chapter = lab_support::Chapter::page("00-hello.html");

/// Without a name, the greeting is for the world. The starter gets this one
/// right: it is the part of the server that already works.
#[tokio::test]
async fn hello_greets_the_world() {
    let server = TestServer::start(hello::app());
    let reply = within(LIMIT, "GET /hello", get(&server.url("/hello"))).await;
    assert!(
        (reply.status.as_u16(), reply.body.as_str()) == (200, "Hello, world!"),
        "GET /hello answered {} {:?}; expected 200 \"Hello, world!\".\n\
         Read: {CHAPTER}#see-the-bug",
        reply.status,
        reply.body
    );
}

/// With `?name=Ferris`, the greeting is for Ferris. The query string reaches
/// the handler already parsed (the `Query` extractor); a handler that answers
/// "Hello, world!" anyway is not looking at it.
#[tokio::test]
async fn hello_greets_by_name() {
    let server = TestServer::start(hello::app());
    let reply = within(
        LIMIT,
        "GET /hello?name=Ferris",
        get(&server.url("/hello?name=Ferris")),
    )
    .await;
    assert!(
        reply.status == 200,
        "GET /hello?name=Ferris answered {} {:?}; expected 200 OK.\n\
         Read: {CHAPTER}#see-the-bug",
        reply.status,
        reply.body
    );
    assert!(
        reply.body == "Hello, Ferris!",
        "GET /hello?name=Ferris answered {:?}; expected \"Hello, Ferris!\".\n\
         The greeting ignores the name it was given. Is the handler using the `name` from the query?\n\
         Read: {CHAPTER}#see-the-bug",
        reply.body
    );
}

/// Stretch (opt in with `cargo test -p hello -- --ignored stretch_`): a name
/// that is empty or only spaces is no name. Real query strings come with
/// stray spaces (`%20`) and empty values (`?name=`), and "Hello, !" is not a
/// greeting. The reference solution does not do this; it is yours to add.
#[tokio::test]
#[ignore = "stretch: an empty or blank name greets the world, and names are trimmed"]
async fn stretch_blank_names_greet_the_world() {
    let server = TestServer::start(hello::app());
    for (path, expected) in [
        ("/hello?name=", "Hello, world!"),
        ("/hello?name=%20%20", "Hello, world!"),
        ("/hello?name=%20Ferris%20", "Hello, Ferris!"),
    ] {
        let reply = within(LIMIT, path, get(&server.url(path))).await;
        assert!(
            (reply.status.as_u16(), reply.body.as_str()) == (200, expected),
            "GET {path} answered {} {:?}; expected 200 {expected:?}.\n\
             A blank name is no name, and spaces around a name are not part of it.",
            reply.status,
            reply.body
        );
    }
}
