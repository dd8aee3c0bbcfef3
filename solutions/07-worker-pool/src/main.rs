//! `cargo run -p worker-pool`: serves lab 07. (Work in progress.)

fn main() {}
