//! Built-in policy: per-op schema validation.
//!
//! Checks that an op is one the host knows (`docs/ops.md`), that its
//! arguments have the documented fields, types, vector lengths and ranges,
//! that the author explained it (a substantive rationale), and that the
//! objects it touches exist and are not locked. It runs last in the built-in
//! pipeline so the firewall and the NaN audit have already spoken.
//!
//! Decisions (see `docs/builtin-policies.md`):
//! - Unknown fields are refused, not ignored: a misspelt `rotaton` would
//!   otherwise be a silent no-op, and extra fields are a smuggling channel.
//! - An object counts as missing when the host lists it in `context.missing`.
//! - A human lock is a deny naming its holder; a non-human lock escalates
//!   unless its holder is the intent's own source name (`agent`, `operator`,
//!   `engine-edit`), which is the author's own transaction lock.

mod rationale;
mod schema;

use vibesync_policy_sdk::prelude::*;

pub use rationale::substantive;

const UNKNOWN_OP: &str = "validation.unknown-op";
const REQUIRED: &str = "validation.required";
const TYPE: &str = "validation.type";
const VECTOR: &str = "validation.vector";
const RANGE: &str = "validation.range";
const NAME: &str = "validation.name";
const ENUM: &str = "validation.enum";
const UNKNOWN_FIELD: &str = "validation.unknown-field";
const RATIONALE: &str = "validation.rationale";
const MISSING_OBJECT: &str = "validation.missing-object";
const ID_TAKEN: &str = "validation.id-taken";
const CYCLE: &str = "validation.cycle";
const HUMAN_LOCK: &str = "validation.human-lock";
const AGENT_LOCK: &str = "validation.agent-lock";

/// Every rule with its description (what `metadata()` lists).
pub const RULES: &[(&str, &str)] = &[
    (UNKNOWN_OP, "the op is one of those in docs/ops.md"),
    (
        REQUIRED,
        "every required argument is present (and at least one optional one where the op needs one)",
    ),
    (TYPE, "every argument has its documented type"),
    (
        VECTOR,
        "vectors have their documented length and numeric components",
    ),
    (
        RANGE,
        "colours, roughness and metallic in [0, 1]; emission and its strength >= 0",
    ),
    (
        NAME,
        "names are 1-63 characters without control characters, '/' or '\\'",
    ),
    (
        ENUM,
        "kind, primitive and language are among the documented values",
    ),
    (UNKNOWN_FIELD, "no argument the op does not define"),
    (
        RATIONALE,
        "the rationale says something (several distinct words, not a placeholder)",
    ),
    (MISSING_OBJECT, "the objects the op touches exist"),
    (ID_TAKEN, "create_object does not reuse an existing id"),
    (CYCLE, "an object is not made its own parent"),
    (
        HUMAN_LOCK,
        "objects locked by a human are not touched (deny)",
    ),
    (
        AGENT_LOCK,
        "objects locked by another non-human holder need an operator (escalate)",
    ),
];

/// The policy type exported by the component.
pub struct Validation;

impl Policy for Validation {
    fn metadata() -> PolicyInfo {
        policy_info(
            "validation",
            env!("CARGO_PKG_VERSION"),
            "Per-op schemas, a substantive rationale, and targets that exist and are not locked.",
            RULES,
        )
    }

    fn evaluate(intent: &Intent, ctx: &Context, config: &Config) -> Verdict {
        evaluate(intent, ctx, config)
    }
}

export_policy!(Validation);

/// The rules, natively: what the component runs and what the benches call.
pub fn evaluate(intent: &Intent, ctx: &Context, _config: &Config) -> Verdict {
    let mut findings = Findings::new();
    if let Err(why) = substantive(&intent.rationale) {
        findings.error(
            RATIONALE,
            "",
            format!("rationale {why}; say in a sentence what the change is for"),
        );
    }
    let Some(schema) = schema::for_op(&intent.op) else {
        findings.critical(
            UNKNOWN_OP,
            "",
            format!(
                "unknown op {:?}; use one of {}",
                intent.op,
                schema::OP_NAMES.join(", ")
            ),
        );
        return findings.verdict();
    };
    let args = Args::of(intent);
    schema::check(schema, &args, &mut findings);
    check_targets(intent, ctx, &args, &mut findings);
    findings.verdict()
}

/// Existence, id reuse, self-parenting and locks of the objects an op names.
fn check_targets(intent: &Intent, ctx: &Context, args: &Args, findings: &mut Findings) {
    let creating = intent.op == "create_object";
    // (index in `ids`, id); the finding path is only formatted when one fires.
    let mut targets: Vec<(Option<usize>, &str)> = Vec::new();
    if let Some(id) = args.str("/id") {
        targets.push((None, id));
    }
    if let Some(ids) = args.list("/ids") {
        targets.extend(
            ids.iter()
                .enumerate()
                .filter_map(|(i, id)| Some((Some(i), id.as_str()?))),
        );
    }
    let path =
        |index: Option<usize>| index.map_or_else(|| "/id".to_owned(), |i| format!("/ids/{i}"));
    for &(index, id) in &targets {
        if creating {
            if ctx.object(id).is_some() {
                findings.error(
                    ID_TAKEN,
                    path(index),
                    format!("object {id:?} already exists; omit `id` to let the host assign one"),
                );
            }
            continue;
        }
        if ctx.is_missing(id) {
            findings.error(
                MISSING_OBJECT,
                path(index),
                format!("object {id:?} does not exist; read the scene again and use a current id"),
            );
            continue;
        }
        if intent.op == "select" {
            continue; // selection is not tracked state: locks do not apply
        }
        let Some(lock) = ctx.object(id).and_then(|o| o.lock.as_ref()) else {
            continue;
        };
        if lock.human {
            findings.error(
                HUMAN_LOCK,
                path(index),
                format!("object {id:?} is locked by {}; ask them to release it, agents cannot lift a human lock", lock.holder),
            );
        } else if lock.holder != source_name(intent.source) {
            findings.escalate(
                AGENT_LOCK,
                path(index),
                format!(
                    "object {id:?} is locked by {}; an operator must approve touching it",
                    lock.holder
                ),
            );
        }
    }
    if let Some(parent) = args.str("/parent") {
        if ctx.is_missing(parent) {
            findings.error(
                MISSING_OBJECT,
                "/parent",
                format!(
                    "parent {parent:?} does not exist; pick an existing object or null for the root"
                ),
            );
        }
        if !creating && args.str("/id") == Some(parent) {
            findings.error(
                CYCLE,
                "/parent",
                format!("object {parent:?} cannot be its own parent; pick another parent or null"),
            );
        }
    }
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Agent => "agent",
        Source::EngineEdit => "engine-edit",
        Source::Operator => "operator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lists_every_rule() {
        let info = Validation::metadata();
        assert_eq!(info.rules.len(), RULES.len());
        assert_eq!(info.name, "validation");
    }

    /// Runs the whole fixture corpus through the native rules.
    #[test]
    fn corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        vibesync_policy_sdk::testing::run_corpus(&dir, "validation", evaluate).assert_passed(30);
    }
}
