//! The policy world's data as plain Rust (intent, context, leaves, verdicts, fixtures).
//!
//! This crate mirrors the `types` interface of `wit/policy.wit` one to one so
//! that the host (wasmtime side) and the guests (policies compiled to
//! `wasm32-wasip2`, or the same rules compiled natively for tests and benches)
//! share one vocabulary. It depends on `serde` and `serde_json` only and
//! compiles on both targets.
//!
//! - [`flatten`] and [`canonical_cbor`] turn an op's JSON arguments into the
//!   two views a policy receives (leaves and canonical CBOR bytes).
//! - [`json::parse_lenient`] is the one JSON reader that lets non-finite
//!   floats reach the policies (JSON itself cannot spell them).
//! - [`fixture`] is the corpus format every policy test runner reads.
//! - [`leaves`] is the packed form leaves and string lists live in, on the
//!   host and in the guest alike, and cross the wasm boundary in.

pub mod cbor;
pub mod fixture;
pub mod json;
pub mod leaves;
mod model;
mod tree;

pub use cbor::canonical_cbor;
pub use fixture::{Expect, FixtureCase, FixtureError, FixtureFile};
pub use leaves::{LeafRef, Leaves, ScalarRef, StringList, WireError};
pub use model::*;
pub use tree::{escape_pointer_token, flatten, flatten_packed};
