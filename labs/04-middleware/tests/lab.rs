//! The checks of lab 04, run with `cargo test -p middleware`. (Work in progress.)
