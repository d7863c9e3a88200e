//! The VibeSync host as a library: the front doors (MCP server, operator
//! control socket, configuration, `init`, metrics, logging) and the message
//! API they use to talk to the orchestrator core. The `vibesync` binary's
//! `main.rs` parses the command line and calls into this.

// `CoreError` (rule, field, remedy, findings) is deliberately a rich value;
// refusals are off the hot path, so it is not boxed.
#![allow(clippy::result_large_err)]

pub mod bench;
pub mod config;
pub mod core_api;
pub mod ctl;
pub mod demo;
pub mod fake_core;
pub mod init;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod orchestrator;
pub mod ports;
pub mod serve;
