//! The workshop room: the instructor's dashboard of every learner's labs.
//!
//! `cargo xtask classroom` runs this crate's binary; learners' tools join it
//! (`cargo xtask join`) and send their labs' states whenever they change
//! (see `xtask/src/room.rs`). States only: never code, file contents or
//! paths ([`wire`] is everything a learner sends).
//!
//! | module | what it is |
//! |---|---|
//! | [`wire`] | what learners send, and the checks it passes before anything is stored |
//! | [`client`] | the learner's calls: join, send, leave (the xtask uses it and [`wire`], without the feature `server`) |
//! | [`room`] | the room in memory, and the dashboard's view of it |
//! | [`store`] | the room on disk (SQLite), so a restart or a `kill -9` loses nothing |
//! | [`server`] | the HTTP server: limits, tokens, rate limits, the dashboard's events |
//!
//! The server is itself an example of the course: a body limit, timeouts, a
//! token per learner, rate limits, a bound on learners (503 past it) and a
//! graceful shutdown.

pub mod client;
#[cfg(feature = "server")]
pub mod room;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;
pub mod wire;

#[cfg(feature = "server")]
pub use server::{Classroom, Config};
