//! `cargo xtask`, the workbook's tool, as a library (`main.rs` calls a
//! verb). Its layers are mapped in CONTRIBUTING.md; it knows no lab by name.

pub mod backup;
pub mod bench;
pub mod book;
pub mod cargo;
pub mod dev;
pub mod git;
pub mod learn;
pub mod process;
pub mod progress;
pub mod room;
pub mod server;
pub mod ui;
pub mod workbook;
