//! Adapter SDK: Rust library and C ABI for engines.
