//! `cargo run -p middleware`: serves lab 04. (Work in progress.)

fn main() {}
