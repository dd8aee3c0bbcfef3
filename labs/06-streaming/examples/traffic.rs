//! Console traffic for lab 06. (Work in progress.)

fn main() {}
