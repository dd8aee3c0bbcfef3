//! The labs' whole dependency set, linked once into one dynamic library.
//!
//! Every lab and solution links axum, tokio, hyper, reqwest and
//! console-subscriber. Linked statically, each lab's server and test binary
//! carried all of them (~50 MB each), and every edit of a lab re-linked them
//! all: most of the time between saving a file and seeing its tests. With this
//! crate (`crate-type = ["dylib"]`), which `lab-support` links, rustc takes
//! those crates from this library instead, and a lab's binaries link only the
//! lab (the trick of Bevy's `dynamic_linking` feature).
//!
//! `cargo run`, `cargo test` and `cargo xtask` set the library path the
//! binaries need. To start a lab's binary by hand, set it too:
//! `LD_LIBRARY_PATH=target/debug/deps:$(rustc --print target-libdir)`
//! (`DYLD_FALLBACK_LIBRARY_PATH` on macOS). On Windows, where a DLL exports at
//! most 65,535 symbols, the labs link statically as before.

#![allow(unused_imports)]

pub use async_stream;
pub use axum;
pub use clap;
pub use console_subscriber;
pub use futures;
pub use governor;
pub use hdrhistogram;
pub use http_body_util;
pub use hyper;
pub use hyper_util;
pub use reqwest;
pub use serde;
pub use serde_json;
pub use subtle;
pub use tokio;
pub use tokio_stream;
pub use tokio_util;
pub use tower;
pub use tower_http;
pub use tracing;
pub use tracing_subscriber;
