//! Console traffic for lab 11. (Work in progress.)

fn main() {}
