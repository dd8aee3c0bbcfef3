//! Console traffic for lab 10. (Work in progress.)

fn main() {}
