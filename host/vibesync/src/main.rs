//! The VibeSync host orchestrator.

fn main() {}
