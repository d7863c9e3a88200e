//! The wasmtime host that loads, locks, budgets and evaluates policy components.
//!
//! - [`Runtime`]: one wasmtime engine (component model, fuel, epoch deadline,
//!   pooling allocator, on-disk compile cache) and one budgeted evaluation of
//!   one policy in a fresh instance.
//! - [`lock`]: `policies.lock`, the reviewer's approval of modules by SHA-256.
//! - [`Pipeline`]: the ordered policies, short-circuiting on deny, producing a
//!   serializable [`Decision`]; hot-swappable ([`Pipeline::reload`],
//!   [`DirWatcher`]).
//! - [`inspect`]: what a module imports and exports, for reviewers.
//! - [`testing`]: the fixture-file runner behind `vibesync policy test`.
//! - [`review`]: the comparison behind `vibesync policy diff OLD NEW`.
//!
//! Faults (trap, fuel, deadline, memory, stack, malformed verdict) never
//! escape as errors: they are denies with a `host.policy-fault` finding
//! ([`fault`]). See `docs/policy-runtime.md`.

mod bindings;
pub mod fault;
mod hash;
pub mod inspect;
pub mod lock;
mod pipeline;
mod prepare;
pub mod review;
mod runtime;
mod swap;
pub mod testing;

pub use fault::{FAULT_RULE, FaultKind};
pub use hash::{BadDigest, Sha256};
pub use lock::{LockEntry, LockError, Lockfile};
pub use pipeline::{
    ConfigError, Decision, NO_POLICIES_RULE, Pipeline, PolicyConfigs, PolicyRun, PolicySet, combine,
};
pub use runtime::{
    Budgets, CacheOutcome, LoadError, Origin, Policy, Runtime, RuntimeConfig, load_builtins,
    module_name,
};
pub use swap::{DirWatcher, ReloadError, SwapEvent};
