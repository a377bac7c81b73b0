//! The `kestrel` binary.
fn main() {}
