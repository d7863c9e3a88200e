//! The built-in policies as embedded `wasm32-wasip2` components.
//!
//! `build.rs` compiles `policies/firewall`, `policies/nan-audit` and
//! `policies/validation` to components during the normal build and embeds
//! them here with their SHA-256, in pipeline order. With the `test-fixtures`
//! feature it also embeds the hostile test policies of `policies/fixtures`
//! ([`test_fixture`]); with `native` it exposes the same three rule sets
//! compiled natively ([`native_pipeline`]) for benchmarks beside the wasm
//! pipeline.

/// One embedded built-in policy component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// The policy's name (`metadata().name`).
    pub name: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
    /// Lower-case hex SHA-256 of `wasm` (what a lock file records).
    pub sha256: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The three built-in rule sets compiled natively.
#[cfg(feature = "native")]
pub mod native {
    use vibesync_policy_sdk::Config;
    use vibesync_policy_types::{Context, Intent, Verdict};

    /// A native rule set: the same function the component exports.
    pub type Evaluate = fn(&Intent, &Context, &Config) -> Verdict;

    /// The built-ins in pipeline order, natively.
    pub const PIPELINE: &[(&str, Evaluate)] = &[
        ("firewall", vibesync_policy_firewall::evaluate),
        ("nan-audit", vibesync_policy_nan_audit::evaluate),
        ("validation", vibesync_policy_validation::evaluate),
    ];

    /// Run the three natives in order with default configuration, stopping
    /// at the first deny; an escalate is kept unless a later policy denies.
    pub fn native_pipeline(intent: &Intent, ctx: &Context) -> Verdict {
        let config = Config::empty();
        let mut result = Verdict::Allow;
        for (_, evaluate) in PIPELINE {
            match evaluate(intent, ctx, &config) {
                Verdict::Allow => {}
                deny @ Verdict::Deny(_) => return deny,
                Verdict::Escalate(findings) => match &mut result {
                    Verdict::Escalate(all) => all.extend(findings),
                    _ => result = Verdict::Escalate(findings),
                },
            }
        }
        result
    }

    /// The benchmark inputs shared with the wasm pipeline's bench, so both
    /// measure the same work.
    pub mod inputs {
        use vibesync_policy_types::{Context, Intent, Source};

        const RATIONALE: &str =
            "Move the crate next to the loading dock so the opening shot reads clearly";

        /// A typical `set_transform` of one object.
        pub fn transform_intent() -> Intent {
            let args = serde_json::json!({
                "id": "obj-1",
                "translation": [1.0, 2.0, 3.0],
                "rotation": [0.0, 0.0, 0.0, 1.0],
                "scale": [1.0, 1.0, 1.0],
            });
            Intent::for_op(
                1,
                Source::Agent,
                "set_transform",
                &args,
                0,
                1,
                vec!["blender".into()],
                vec!["obj-1".into()],
                RATIONALE.into(),
                7,
            )
        }

        /// A `select` of `leaves - 1` objects plus `frame`: a payload of exactly `leaves` leaves
        /// that every built-in allows.
        pub fn wide_intent(leaves: usize) -> Intent {
            let ids: Vec<String> = (0..leaves.saturating_sub(1))
                .map(|i| format!("obj-{i}"))
                .collect();
            let args = serde_json::json!({ "ids": ids, "frame": true });
            Intent::for_op(
                1,
                Source::Agent,
                "select",
                &args,
                0,
                1,
                vec!["blender".into(), "unity".into()],
                ids,
                RATIONALE.into(),
                7,
            )
        }

        /// The context both inputs are evaluated in.
        pub fn context() -> Context {
            Context {
                project_root: "/project".into(),
                scene_version: 7,
                ..Default::default()
            }
        }
    }
}

#[cfg(feature = "native")]
pub use native::native_pipeline;
