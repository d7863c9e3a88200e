//! Guest-side helpers for writing VibeSync policies in Rust.
