//! The maintainer's verbs, under `cargo xtask dev`: `verify` proves the
//! course is sound (every starter fails as declared, every solution passes,
//! the book builds), `capture-console` records the book's tokio-console
//! screens.

pub mod capture;
pub mod verify;
