//! A headless reference engine speaking the real protocol, with fault switches.

fn main() {}
