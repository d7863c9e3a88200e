//! Guest-side helpers for writing VibeSync policies in Rust.
//!
//! A policy is a type implementing [`Policy`] plus one line,
//! `export_policy!(MyPolicy);`. On `wasm32` the macro exports it as the
//! `vibesync:policy/evaluator` interface of `wit/policy.wit` (the bindings are
//! generated here, by `wit_bindgen`, so a policy crate needs no other
//! dependency and writes no `unsafe`). On every other target the macro
//! expands to nothing and the crate is only the helpers, so a policy's rules
//! can be unit-tested and benchmarked natively.
//!
//! ```
//! use vibesync_policy_sdk::prelude::*;
//!
//! struct NoCubes;
//!
//! impl Policy for NoCubes {
//!     fn metadata() -> PolicyInfo {
//!         policy_info("no-cubes", "0.1.0", "No cubes.", &[("no-cubes.cube", "refuses cubes")])
//!     }
//!     fn evaluate(intent: &Intent, _: &Context, _: &Config) -> Verdict {
//!         let mut findings = Findings::new();
//!         if Args::of(intent).str("/primitive") == Some("cube") {
//!             findings.error("no-cubes.cube", "/primitive", "cubes are refused; use a uv_sphere");
//!         }
//!         findings.verdict()
//!     }
//! }
//! export_policy!(NoCubes);
//!
//! // Natively the rules are plain functions, testable as such.
//! let args = serde_json::json!({"name": "Box", "kind": "mesh", "primitive": "cube"});
//! let intent = Intent::for_op(1, Source::Agent, "create_object", &args, 0, 1, vec![], vec![],
//!     "Add a box for the crate stack".into(), 0);
//! assert!(NoCubes::evaluate(&intent, &Context::default(), &Config::empty()).is_deny());
//! ```

extern crate self as vibesync_policy_sdk;

pub mod arena;
mod helpers;
pub mod log;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use helpers::{Args, Config, Findings, policy_info};
pub use vibesync_policy_types as types;
pub use vibesync_policy_types::{
    Context, Finding, Intent, Leaf, LeafRef, Leaves, ObjectLock, ObjectState, PolicyInfo, RuleInfo,
    Scalar, ScalarRef, Severity, Source, StringList, Verdict,
};

/// Everything a policy author usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Args, Config, Context, Finding, Findings, Intent, Leaf, LeafRef, ObjectState, Policy,
        PolicyInfo, RuleInfo, Scalar, ScalarRef, Severity, Source, Verdict, export_policy, log,
        policy_info,
    };
}

/// What a policy implements. Both functions are pure: a fresh instance runs
/// every evaluation, so nothing kept between calls survives anyway.
pub trait Policy {
    /// Name, version, description and every rule the policy can report.
    fn metadata() -> PolicyInfo;
    /// Decide one op.
    fn evaluate(intent: &Intent, ctx: &Context, config: &Config) -> Verdict;
}

/// The generated bindings of `wit/policy.wit` (wasm32 only; used by [`export_policy!`]).
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod bindings {
    pub use wit_bindgen;
    wit_bindgen::generate!({
        path: "../../wit",
        world: "policy",
        pub_export_macro: true,
        default_bindings_module: "vibesync_policy_sdk::bindings",
        runtime_path: "vibesync_policy_sdk::bindings::wit_bindgen::rt",
    });
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod glue;

/// Export a [`Policy`] as the component's `evaluator` (wasm32 only; nothing natively).
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct VibesyncPolicyExport;
            impl $crate::bindings::exports::vibesync::policy::evaluator::Guest
                for VibesyncPolicyExport
            {
                fn metadata() -> $crate::bindings::vibesync::policy::types::PolicyInfo {
                    $crate::glue::metadata::<$policy>()
                }
                fn evaluate(
                    intent: $crate::bindings::vibesync::policy::types::Intent,
                    context: $crate::bindings::vibesync::policy::types::Context,
                    config: ::std::vec::Vec<$crate::bindings::vibesync::policy::types::Leaf>,
                ) -> $crate::bindings::vibesync::policy::types::Verdict {
                    $crate::glue::evaluate::<$policy>(intent, context, config)
                }
            }
    $crate::bindings::export!(VibesyncPolicyExport with_types_in $crate::bindings);
        };
    };
}
