//! Console traffic for lab 09. (Work in progress.)

fn main() {}
