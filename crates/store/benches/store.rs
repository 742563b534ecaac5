//! Benchmarks of ketch-store (filled in below).
fn main() {}
