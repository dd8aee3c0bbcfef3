//! The checks of lab 12, run with `cargo test -p production`. (Work in progress.)
