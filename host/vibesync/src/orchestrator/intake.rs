//! Intake: from what an author sent to what the policies and the sequencer
//! see, and from the sequencer's answers back to what the author is told.
//!
//! Pure functions over plain data; the core task calls them with the state
//! it owns. Three translations live here:
//! - an [`IntentRequest`] into one policy [`t::Intent`] and [`t::Context`]
//!   per op (the WIT contract evaluates op by op; a later op sees the
//!   objects earlier ops of the same transaction create), through
//!   `vibesync_ledger::policy_view`, which the simulator shares;
//! - the pipeline's [`Decision`]s into the sequencer's [`Submission`] and the
//!   WAL's policy records (with [`PolicyEvidence`] so the decision log keeps
//!   every finding and duration);
//! - the sequencer's final [`Outcome`] into a [`CoreError`] that names the
//!   rule, the field and the remedy.

use std::collections::BTreeMap;

use vibesync_canonical::{Op, Scene, SceneObject};
use vibesync_ledger::policy_view::{self, IntentMeta, OpRef};
use vibesync_ledger::{Decision as SeqDecision, Submission};
use vibesync_policy_runtime::Decision;
use vibesync_policy_types as t;
use vibesync_wal::{LockEntry, Outcome, PolicyRecord};

use super::views::PolicyEvidence;
use crate::core_api::{
    CoreError, ErrorCode, Finding, IntentRequest, LockView, MaterialView, ObjectView,
    PolicyVerdict, Severity, Source, TransformView, ValidationView, VerdictKind,
};

/// What the policies are shown of one intent, op by op (built by the
/// ledger's shared [`policy_view`], which the simulator calls too).
pub use vibesync_ledger::policy_view::PolicyInput;

/// Build the policy view of every op of `req`.
///
/// `scene` is the committed canonical scene; ops that parse are applied to
/// a scratch copy one after the other so op *n* sees what ops *0..n* made.
pub fn policy_input(
    req: &IntentRequest,
    tid: u64,
    scene: &Scene,
    scene_version: u64,
    locks: &BTreeMap<String, LockEntry>,
    engines: &[String],
    project_root: &str,
) -> PolicyInput {
    let ops: Vec<OpRef<'_>> = req
        .ops
        .iter()
        .map(|o| OpRef {
            op: &o.op,
            args: &o.args,
        })
        .collect();
    policy_view::policy_input(
        &ops,
        IntentMeta {
            tid,
            source: policy_source(req.source),
            rationale: &req.rationale,
            scene_version_read: req.scene_version,
            engines,
        },
        policy_view::World {
            scene,
            scene_version,
            locks,
            project_root,
        },
    )
}

fn policy_source(s: Source) -> t::Source {
    match s {
        Source::Agent => t::Source::Agent,
        Source::EngineEdit => t::Source::EngineEdit,
        Source::Operator => t::Source::Operator,
    }
}

pub fn wal_source(s: Source) -> vibesync_wal::Source {
    match s {
        Source::Agent => vibesync_wal::Source::Agent,
        Source::EngineEdit => vibesync_wal::Source::EngineEdit,
        Source::Operator => vibesync_wal::Source::Operator,
    }
}

/// A finding with its path made absolute within the intent
/// (`/ops/<i>/args<path>`), as the agent wrote the request.
fn finding(op_index: usize, f: &t::Finding) -> Finding {
    Finding {
        rule: f.rule.clone(),
        severity: match f.severity {
            t::Severity::Info => Severity::Info,
            t::Severity::Warning => Severity::Warning,
            t::Severity::Error => Severity::Error,
            t::Severity::Critical => Severity::Critical,
        },
        path: format!("/ops/{op_index}/args{}", f.path),
        message: f.message.clone(),
    }
}

fn kind(v: &t::Verdict) -> VerdictKind {
    match v {
        t::Verdict::Allow => VerdictKind::Allow,
        t::Verdict::Deny(_) => VerdictKind::Deny,
        t::Verdict::Escalate(_) => VerdictKind::Escalate,
    }
}

/// Every policy run of every op, as the front doors show them.
pub fn verdicts(decisions: &[Decision]) -> Vec<PolicyVerdict> {
    decisions
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            d.runs.iter().map(move |r| PolicyVerdict {
                policy: r.policy.clone(),
                op_index: i as u32,
                verdict: kind(&r.verdict),
                findings: r.verdict.findings().iter().map(|f| finding(i, f)).collect(),
                latency_us: r.duration_ns / 1000,
            })
        })
        .collect()
}

/// The findings behind the whole intent's verdict (deny beats escalate).
pub fn overall(decisions: &[Decision]) -> (VerdictKind, Vec<Finding>) {
    let collect = |want: VerdictKind| -> Vec<Finding> {
        decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| kind(&d.verdict) == want)
            .flat_map(|(i, d)| d.verdict.findings().iter().map(move |f| finding(i, f)))
            .collect()
    };
    if decisions.iter().any(|d| d.verdict.is_deny()) {
        (VerdictKind::Deny, collect(VerdictKind::Deny))
    } else if decisions
        .iter()
        .any(|d| matches!(d.verdict, t::Verdict::Escalate(_)))
    {
        (VerdictKind::Escalate, collect(VerdictKind::Escalate))
    } else {
        (VerdictKind::Allow, Vec::new())
    }
}

pub fn validation_view(decisions: &[Decision], scene_version: u64) -> ValidationView {
    ValidationView {
        verdict: overall(decisions).0,
        verdicts: verdicts(decisions),
        scene_version,
    }
}

/// One line per finding, for the WAL's denial reason and the author.
fn reason(findings: &[Finding]) -> String {
    let lines: Vec<String> = findings
        .iter()
        .map(|f| format!("`{}` at `{}`: {}", f.rule, f.path, f.message))
        .collect();
    if lines.is_empty() {
        "refused by policy".into()
    } else {
        lines.join("; ")
    }
}

/// The sequencer's view of an intent the pipeline has judged.
///
/// Ops that do not parse can only belong to a denied intent (the
/// `validation` policy refuses malformed arguments): an allowed intent with
/// an unparsable op is an error naming the op, never applied.
pub fn submission(
    req: &IntentRequest,
    author: String,
    decisions: &[Decision],
) -> Result<Submission, CoreError> {
    let (verdict, findings) = overall(decisions);
    let mut ops = Vec::with_capacity(req.ops.len());
    for (i, spec) in req.ops.iter().enumerate() {
        match Op::parse(&spec.op, spec.args.clone()) {
            Ok(op) => ops.push(op),
            Err(e) if verdict == VerdictKind::Allow => {
                return Err(CoreError::new(
                    ErrorCode::InvalidArgs,
                    format!("/ops/{i}/args"),
                    e.to_string(),
                    "fix the arguments as docs/ops.md lists them; validate_intent checks them without applying",
                )
                .with_rule("host.op-parse"));
            }
            Err(_) => {}
        }
    }
    let mut records = Vec::new();
    for (i, d) in decisions.iter().enumerate() {
        for run in &d.runs {
            let evidence = PolicyEvidence {
                op_index: i as u32,
                findings: run
                    .verdict
                    .findings()
                    .iter()
                    .map(|f| finding(i, f))
                    .collect(),
                duration_ns: run.duration_ns,
                fault: run.fault.map(|f| format!("{f:?}")),
            };
            records.push(PolicyRecord {
                tid: 0,
                policy: run.policy.clone(),
                module_hash: run.module_sha256.to_string(),
                verdict: run.verdict.kind().to_owned(),
                findings: serde_json::to_value(&evidence).unwrap_or_default(),
            });
        }
    }
    let decision = match verdict {
        VerdictKind::Allow => SeqDecision::Allow,
        VerdictKind::Deny => SeqDecision::Deny {
            reason: reason(&findings),
        },
        VerdictKind::Escalate => SeqDecision::Escalate {
            reason: reason(&findings),
        },
    };
    Ok(Submission {
        source: wal_source(req.source),
        author,
        ops,
        rationale: req.rationale.clone(),
        idempotency_key: req.idempotency_key.clone(),
        scene_version_read: req.scene_version,
        engines: req.engines.clone().unwrap_or_default(),
        verdicts: records,
        decision,
    })
}

/// What the author is told when a transaction ends without committing.
pub fn refusal(
    tid: u64,
    outcome: &Outcome,
    findings: Vec<Finding>,
    current_version: u64,
    read_version: u64,
) -> CoreError {
    match outcome {
        Outcome::Committed { .. } => unreachable!("a commit is not a refusal"),
        Outcome::Denied { reason } if findings.is_empty() => CoreError::new(
            ErrorCode::Denied,
            "",
            reason.clone(),
            "change the request so that it is allowed, or ask the operator why it was denied",
        )
        .with_rule("host.denied")
        .with_tid(tid),
        Outcome::Denied { .. } => CoreError::denied(Some(tid), findings),
        Outcome::RolledBack { reason } => CoreError::new(
            ErrorCode::Conflict,
            "",
            format!("the transaction was rolled back on every engine: {reason}"),
            "read the scene again (read_scene) and resubmit; get_transaction shows every phase",
        )
        .with_rule("host.rolled-back")
        .with_tid(tid),
        Outcome::Refused { rule, message } => {
            let err = match rule.as_str() {
                r if r.contains("stale") => CoreError::stale(read_version, current_version),
                r if r.contains("lock") => CoreError::new(
                    ErrorCode::Locked,
                    "/ops",
                    message.clone(),
                    "a human holds a lock on the object; pick another object or ask the operator to unlock it",
                )
                .with_rule(format!("host.{rule}")),
                r if r.contains("panic") => CoreError::new(
                    ErrorCode::Panic,
                    "",
                    message.clone(),
                    "wait: a human operator must bring the engine back and run `vibesync ctl resume`; do not retry in a loop",
                )
                .with_rule("host.panic"),
                _ => CoreError::new(
                    ErrorCode::Conflict,
                    "",
                    message.clone(),
                    "read the scene (read_scene), adjust the request, and submit again",
                )
                .with_rule(format!("host.{rule}")),
            };
            err.with_tid(tid)
        }
    }
}

pub fn object_view(o: &SceneObject, lock: Option<&LockEntry>) -> ObjectView {
    ObjectView {
        id: o.id.clone(),
        name: o.name.clone(),
        kind: o.kind.as_str().to_owned(),
        parent: o.parent.clone(),
        transform: TransformView {
            translation: o.transform.translation,
            rotation: o.transform.rotation,
            scale: o.transform.scale,
        },
        material: o.material.map(|m| MaterialView {
            base_color: m.base_color,
            roughness: m.roughness,
            metallic: m.metallic,
            emission: m.emission,
            emission_strength: m.emission_strength,
        }),
        lock: lock.map(|l| LockView {
            holder: l.holder.clone(),
            human: l.human,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core_api::OpSpec;
    use serde_json::json;
    use vibesync_canonical::Quantum;

    fn req(ops: Vec<(&str, serde_json::Value)>) -> IntentRequest {
        IntentRequest {
            ops: ops
                .into_iter()
                .map(|(op, args)| OpSpec {
                    op: op.into(),
                    args,
                })
                .collect(),
            rationale: "build the table for the kitchen scene".into(),
            scene_version: 0,
            idempotency_key: None,
            engines: None,
            source: Source::Agent,
        }
    }

    #[test]
    fn later_ops_see_objects_earlier_ops_create() {
        let scene = Scene::new(Quantum::default());
        let r = req(vec![
            (
                "create_object",
                json!({"id": "table", "name": "Table", "kind": "mesh"}),
            ),
            ("set_material", json!({"id": "table", "roughness": 0.3})),
        ]);
        let input = policy_input(
            &r,
            5,
            &scene,
            0,
            &BTreeMap::new(),
            &["blender".into()],
            "/project",
        );
        assert_eq!(
            input.contexts[0].missing,
            ["table"],
            "op 0: the table does not exist yet"
        );
        assert!(
            input.contexts[1].missing.is_empty(),
            "op 1 sees the table op 0 creates"
        );
        assert_eq!(input.contexts[1].objects[0].name, "Table");
        assert_eq!(input.intents[1].op_index, 1);
        assert_eq!(input.intents[1].op_count, 2);
        assert_eq!(input.intents[1].tid, 5);
    }

    #[test]
    fn refusals_name_rule_and_remedy() {
        let e = refusal(
            3,
            &Outcome::Refused {
                rule: "stale-scene-version".into(),
                message: "x".into(),
            },
            vec![],
            9,
            4,
        );
        assert_eq!(e.code, ErrorCode::StaleSceneVersion);
        assert!(e.to_string().contains("scene_version 4 is stale"), "{e}");
        let e = refusal(
            3,
            &Outcome::RolledBack {
                reason: "unity reported a different hash".into(),
            },
            vec![],
            9,
            9,
        );
        assert!(
            e.to_string()
                .contains("rolled back on every engine: unity reported"),
            "{e}"
        );
    }
}
