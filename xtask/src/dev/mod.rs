//! The maintainer's verbs, under `cargo xtask dev` (`console-check` is the
//! crate `xtask/console-check`, run by `main.rs`).

pub mod capture;
pub mod loop_bench;
pub mod verify;
