//! `cargo xtask`: the workbook's own tool, as a library.
//!
//! `main.rs` only parses the command line and calls a verb. The modules are
//! layered, and each imports only from the layers below it:
//!
//! | layer | modules | what they are |
//! |---|---|---|
//! | verbs | [`learn`], [`dev`], [`bench`], [`classroom`] | the learner's verbs; the maintainer's (`verify`, capture); the benchmark; the instructor's room |
//! | book | [`book`] | build (mdBook + hints), check (includes, links), serve, live lab states |
//! | state | [`progress`], [`backup`], [`room`] | where each lab stands; copies of the learner's files; telling a joined room |
//! | tools | [`cargo`], [`git`] | every cargo and every git call |
//! | model | [`workbook`] | where the workbook is; its labs and their `lab.toml` |
//! | base | [`process`], [`ui`] | supervised children and signals; terminal output |
//!
//! The tool knows no lab by name: everything about a lab is read from its
//! folder, so adding a lab touches no code here.

pub mod backup;
pub mod bench;
pub mod book;
pub mod cargo;
pub mod classroom;
pub mod dev;
pub mod git;
pub mod learn;
pub mod process;
pub mod progress;
pub mod room;
pub mod ui;
pub mod workbook;
