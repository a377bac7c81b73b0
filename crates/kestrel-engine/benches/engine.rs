//! Engine benches (filled in below).
fn main() {}
