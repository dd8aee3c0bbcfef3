//! The maintainer's verbs, under `cargo xtask dev`: `verify` proves the
//! course is sound (every starter fails as declared, every solution passes,
//! the book builds), `capture-console` records the book's tokio-console
//! screens, `console-check` proves what each lab's console shows (with a
//! console client), `loop-bench` times the learner's edit-and-test loop.

pub mod capture;
pub mod console_check;
pub mod loop_bench;
pub mod verify;
