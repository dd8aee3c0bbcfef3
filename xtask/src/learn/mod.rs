//! The learner's verbs: where am I, check my lab, watch it, give me a hint.
//!
//! - `status` (the default): every lab with its state, and what to do next;
//! - `check <lab>` and `watch [lab]`: run a lab's tests and explain the result;
//! - `hint <lab>`: one more hint each time;
//! - `reset <lab>` and `solution <lab> [--apply]`: start over, or catch up;
//!   `restore <lab>` undoes either (they save what they replace);
//! - `console <lab>`: the lab's server under tokio-console, with traffic;
//! - `fetch`: download and build everything before an offline workshop;
//! - `join <url>` and `leave`: the instructor's workshop room (see
//!   [`crate::room`]).
//!
//! They run the learner's own code with `cargo test -p <lab>`, exactly what
//! the book tells them to run by hand, and remember what they found (see
//! [`crate::progress`]). Labs are named by slug or number everywhere.
//! [`explain`] is no verb: it is what `check`, `watch` and `hint` print.

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
