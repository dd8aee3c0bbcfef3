//! The checks of lab 10, run with `cargo test -p graceful-shutdown`. (Work in progress.)
