//! `cargo run -p graceful-shutdown`: serves lab 10. (Work in progress.)

fn main() {}
