//! Console traffic for lab 07. (Work in progress.)

fn main() {}
