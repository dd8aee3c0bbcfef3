//! `cargo run -p streaming`: serves lab 06. (Work in progress.)

fn main() {}
