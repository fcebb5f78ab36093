//! The load generator: see bench/README.md.
fn main() {}
