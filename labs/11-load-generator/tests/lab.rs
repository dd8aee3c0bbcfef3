//! The checks of lab 11, run with `cargo test -p load-generator`. (Work in progress.)
