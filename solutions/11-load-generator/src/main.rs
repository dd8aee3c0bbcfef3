//! `cargo run -p load-generator`: serves lab 11. (Work in progress.)

fn main() {}
