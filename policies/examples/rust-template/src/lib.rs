//! team-protect: an example team policy in Rust. Copy this crate to start
//! your own (see `docs/policies.md`).
//!
//! Rule: objects whose name starts with the protected prefix (configurable,
//! default `HERO_`) are never deleted or renamed by an AI agent; an artist
//! or operator may still do it. Configuration:
//!
//! ```toml
//! [policies.config.team-protect]
//! protected-prefix = "HERO_"
//! ```
//!
//! The rules are plain functions of their inputs: `cargo test` runs them
//! natively against `fixtures/*.json`, and `vibesync policy test fixtures`
//! runs the compiled component against the same files.

use vibesync_policy_sdk::prelude::*;

/// The policy. `export_policy!` below turns it into the component's exports.
pub struct TeamProtect;

const NAME: &str = "team-protect";
const RULE: &str = "team-protect.protected";
const DEFAULT_PREFIX: &str = "HERO_";

impl Policy for TeamProtect {
    fn metadata() -> PolicyInfo {
        policy_info(
            NAME,
            "0.1.0",
            "Objects with the protected name prefix are never deleted or renamed by an agent.",
            &[(RULE, "an agent may not delete or rename an object whose name has the protected prefix")],
        )
    }

    fn evaluate(intent: &Intent, ctx: &Context, config: &Config) -> Verdict {
        let mut findings = Findings::new();
        if intent.source != Source::Agent || !matches!(intent.op.as_str(), "delete_object" | "rename_object") {
            return findings.verdict();
        }
        let prefix = config.args().str("/protected-prefix").unwrap_or(DEFAULT_PREFIX);
        for id in &intent.objects {
            if let Some(obj) = ctx.object(id).filter(|o| o.name.starts_with(prefix)) {
                findings.error(
                    RULE,
                    "/id",
                    format!(
                        "`{}` ({id}) is protected by the team (its name starts with {prefix:?}); \
                         ask an artist to {} it",
                        obj.name,
                        if intent.op == "delete_object" { "delete" } else { "rename" }
                    ),
                );
            }
        }
        findings.verdict()
    }
}

export_policy!(TeamProtect);

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn fixtures_pass_natively() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let report = vibesync_policy_sdk::testing::run_corpus(&dir, NAME, TeamProtect::evaluate);
        assert!(report.failures.is_empty(), "{:#?}", report.failures);
        assert!(report.hostile > 0 && report.benign > 0);
    }
}
