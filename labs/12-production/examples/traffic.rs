//! Console traffic for lab 12. (Work in progress.)

fn main() {}
