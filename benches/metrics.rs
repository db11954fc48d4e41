//! Cost of recording metrics on the hot path (being written: issue 6).
fn main() {}
