//! The learner's verbs, one module each (`join.rs` also has `leave`). They
//! run the learner's code with `cargo test -p <lab>`, as the book does, and
//! remember what they found ([`crate::progress`]). [`explain`] is no verb:
//! it is what `check`, `watch` and `hint` print.

pub mod check;
pub mod console;
pub mod explain;
pub mod fetch;
pub mod hint;
pub mod join;
pub mod reset;
pub mod restore;
pub mod solution;
pub mod status;
pub mod watch;
