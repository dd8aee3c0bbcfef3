//! `cargo run -p production`: serves lab 12. (Work in progress.)

fn main() {}
