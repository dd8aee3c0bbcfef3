//! `cargo xtask`: the workbook's own tool, as a library; `main.rs` parses
//! the command line and calls a verb. The modules are layered, each
//! importing only from the layers below it: CONTRIBUTING.md ("A map of the
//! tool") lists them. The tool knows no lab by name: everything about a lab
//! is read from its folder.

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
pub mod server;
pub mod ui;
pub mod workbook;
