//! `cargo run -p fan-out`: serves lab 09. (Work in progress.)

fn main() {}
