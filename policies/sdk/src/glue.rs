//! wasm32 glue: converts the `wit_bindgen` types to and from
//! `vibesync_policy_types` and calls the author's [`Policy`].
//!
//! Called only from the code [`crate::export_policy!`] expands to.

use crate::bindings::vibesync::policy::types as wit;
use crate::{Config, Policy, types as t};

/// `evaluator.metadata` for policy `P`.
pub fn metadata<P: Policy>() -> wit::PolicyInfo {
    let info = P::metadata();
    wit::PolicyInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        rules: info
            .rules
            .into_iter()
            .map(|r| wit::RuleInfo {
                id: r.id,
                description: r.description,
            })
            .collect(),
    }
}

/// Rule of the deny the glue gives when the host's intent does not decode
/// (never expected from a correct host: fail closed rather than guess).
pub const WIRE_RULE: &str = "sdk.malformed-intent";

/// `evaluator.evaluate` for policy `P`: adopt the packed lists of the
/// intent as they are (after checking their offsets), run the rules, convert
/// the verdict.
pub fn evaluate<P: Policy>(
    intent: wit::Intent,
    context: wit::Context,
    config: Vec<wit::Leaf>,
) -> wit::Verdict {
    let wit::Intent {
        tid,
        source,
        op,
        op_index,
        op_count,
        engines,
        objects,
        rationale,
        scene_version,
        payload_cbor,
        leaves,
    } = intent;
    let packed = (|| {
        Ok::<_, t::WireError>((
            t::StringList::from_parts(engines.text, engines.ends)?,
            t::StringList::from_parts(objects.text, objects.ends)?,
            t::Leaves::from_parts(
                leaves.paths.text,
                leaves.paths.ends,
                leaves.kinds,
                leaves.values,
                leaves.texts,
                leaves.bytes,
            )?,
        ))
    })();
    let (engines, objects, leaves) = match packed {
        Ok(p) => p,
        Err(e) => {
            return wit::Verdict::Deny(vec![finding(t::Finding::critical(
                WIRE_RULE,
                "",
                format!(
                    "the host sent an intent that does not decode ({e}); the host and the policy SDK disagree on wit/policy.wit, rebuild the policy"
                ),
            ))]);
        }
    };
    let intent = t::Intent {
        tid,
        source: match source {
            wit::Source::Agent => t::Source::Agent,
            wit::Source::EngineEdit => t::Source::EngineEdit,
            wit::Source::Operator => t::Source::Operator,
        },
        op,
        op_index,
        op_count,
        engines,
        objects,
        rationale,
        scene_version,
        payload_cbor,
        leaves,
    };
    let context = t::Context {
        objects: context.objects.into_iter().map(object).collect(),
        missing: context.missing,
        scene_object_count: context.scene_object_count,
        scene_version: context.scene_version,
        project_root: context.project_root,
    };
    let config = Config::new(config.into_iter().map(leaf).collect());
    match P::evaluate(&intent, &context, &config) {
        t::Verdict::Allow => wit::Verdict::Allow,
        t::Verdict::Deny(f) => wit::Verdict::Deny(f.into_iter().map(finding).collect()),
        t::Verdict::Escalate(f) => wit::Verdict::Escalate(f.into_iter().map(finding).collect()),
    }
}

fn leaf(l: wit::Leaf) -> t::Leaf {
    t::Leaf {
        path: l.path,
        value: match l.value {
            wit::Scalar::Null => t::Scalar::Null,
            wit::Scalar::Boolean(b) => t::Scalar::Bool(b),
            wit::Scalar::Integer(i) => t::Scalar::Int(i),
            wit::Scalar::Float(f) => t::Scalar::Float(f),
            wit::Scalar::Text(s) => t::Scalar::Text(s),
            wit::Scalar::Bytes(b) => t::Scalar::Bytes(b),
        },
    }
}

fn object(o: wit::ObjectState) -> t::ObjectState {
    let (tx, ty, tz) = o.transform.translation;
    let (rx, ry, rz, rw) = o.transform.rotation;
    let (sx, sy, sz) = o.transform.scale;
    t::ObjectState {
        id: o.id,
        name: o.name,
        kind: o.kind,
        parent: o.parent,
        transform: t::Transform {
            translation: [tx, ty, tz],
            rotation: [rx, ry, rz, rw],
            scale: [sx, sy, sz],
        },
        material: o.material.map(|m| {
            let (r, g, b, a) = m.base_color;
            let (er, eg, eb) = m.emission;
            t::Material {
                base_color: [r, g, b, a],
                roughness: m.roughness,
                metallic: m.metallic,
                emission: [er, eg, eb],
                emission_strength: m.emission_strength,
            }
        }),
        lock: o.lock.map(|l| t::ObjectLock {
            holder: l.holder,
            human: l.human,
        }),
    }
}

fn finding(f: t::Finding) -> wit::Finding {
    wit::Finding {
        rule: f.rule,
        severity: match f.severity {
            t::Severity::Info => wit::Severity::Info,
            t::Severity::Warning => wit::Severity::Warning,
            t::Severity::Error => wit::Severity::Error,
            t::Severity::Critical => wit::Severity::Critical,
        },
        path: f.path,
        message: f.message,
    }
}
