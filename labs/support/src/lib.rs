//! Shared support for the labs of *Concurrent HTTP Servers in Rust*.
//!
//! Each lab keeps only its lesson in its own files; everything a lab needs
//! around that lesson lives here, once:
//!
//! - [`serve`]: run a lab's app, either on an ephemeral port for a test
//!   ([`TestServer`]) or on a known port for a learner with curl
//!   ([`LabServer`], used by every `cargo run -p <lab>`).
//! - [`client`]: drive an app the way its users do: many requests at once,
//!   a client that gives up and leaves, a client from another loopback address,
//!   thousands of in-process calls for a race between threads; and the few
//!   helpers of the labs' console traffic (`examples/traffic.rs`).
//! - [`upstream`]: a server to call out to, which counts the connections and
//!   requests it sees and can be slow, hang or fail on demand.
//! - [`race`]: two in-process calls released at the same instant on two
//!   threads, for a race between a check and an act (a last free place).
//! - [`process`]: a lab's binary run as a real process ([`process::LabProcess`]),
//!   for tests that send it signals and wait for it to exit; killed when dropped.
//! - [`within`]: a time bound for every test, so that a hung starter fails in
//!   seconds with a message saying what hung instead of hanging the run;
//!   [`eventually`]: wait, boundedly, for a condition to become true.
//! - [`Chapter`]: the link a failure message gives to the book, to where it
//!   is served (any port), or else to its built pages on disk.

// Links the dependency set dynamically (see dylib/src/lib.rs).
#[cfg(not(windows))]
use lab_deps as _;

mod book;
pub mod client;
mod console;
pub mod process;
pub mod race;
pub mod serve;
mod time;
pub mod upstream;

pub use book::Chapter;
pub use console::{init_tracing, init_tracing_with, init_tracing_with_resources};
pub use serve::{LabServer, ServerArgs, TestServer};
pub use time::{eventually, within};
