//! The checks of lab 09, run with `cargo test -p fan-out`. (Work in progress.)
