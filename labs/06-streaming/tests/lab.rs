//! The checks of lab 06, run with `cargo test -p streaming`. (Work in progress.)
