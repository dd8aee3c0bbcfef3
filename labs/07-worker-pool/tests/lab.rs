//! The checks of lab 07, run with `cargo test -p worker-pool`. (Work in progress.)
