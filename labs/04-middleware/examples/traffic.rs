//! Console traffic for lab 04. (Work in progress.)

fn main() {}
