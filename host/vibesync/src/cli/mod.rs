//! Subcommand groups, one module each.

pub mod policy;
pub mod sandbox;
pub mod wal;
