//! The real policy pipeline, with the built-in components, as the simulated
//! host's intake runs it.
//!
//! Compiling the three components is the expensive part, so the pipeline is
//! built once per process ([`pipeline`]) and every simulated intent is
//! evaluated through it, op by op, exactly as the host's intake does
//! (`host/vibesync/src/orchestrator/intake.rs`, which lives in the binary
//! crate and so is mirrored here: context of the named objects from a scratch
//! scene that has the earlier ops of the intent applied, verdicts combined
//! deny > escalate > allow). The wall-clock deadline is raised so that a
//! loaded machine cannot turn a verdict into a timeout fault: a run's
//! verdicts must depend on its seed only.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use vibesync_canonical::{Op, Scene, SceneObject};
use vibesync_ledger::{Decision, Submission};
use vibesync_policy_runtime::{
    Budgets, Pipeline, PolicyConfigs, Runtime, RuntimeConfig, load_builtins,
};
use vibesync_policy_types as t;
use vibesync_wal::{LockEntry, PolicyRecord, Source};

/// The project root the simulated host gives policies.
pub const PROJECT_ROOT: &str = "/projects/sim";

static PIPELINE: OnceLock<Pipeline> = OnceLock::new();

/// The built-in pipeline, compiled on first use.
pub fn pipeline() -> &'static Pipeline {
    PIPELINE.get_or_init(|| {
        let config = RuntimeConfig {
            budgets: Budgets {
                deadline: Duration::from_secs(30),
                ..Budgets::default()
            },
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::new(config).expect("the policy runtime starts");
        let builtins = vibesync_policies::BUILTINS
            .iter()
            .map(|b| (b.name, b.wasm, b.sha256));
        let policies = load_builtins(&runtime, builtins).expect("the built-in policies load");
        Pipeline::new(runtime, policies, PolicyConfigs::default())
    })
}

/// One op as an agent writes it: `{op, args}` (args may be hostile).
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpec {
    pub op: String,
    pub args: Value,
}

/// An agent's request, before intake.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub ops: Vec<OpSpec>,
    pub rationale: String,
    pub scene_version: u64,
    pub idempotency_key: Option<String>,
}

fn named_ids(args: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for key in ["id", "parent"] {
        if let Some(id) = args.get(key).and_then(Value::as_str) {
            ids.push(id.to_owned());
        }
    }
    if let Some(list) = args.get("ids").and_then(Value::as_array) {
        ids.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    ids.dedup();
    ids
}

fn object_state(o: &SceneObject, lock: Option<&LockEntry>) -> t::ObjectState {
    t::ObjectState {
        id: o.id.clone(),
        name: o.name.clone(),
        kind: o.kind.as_str().to_owned(),
        parent: o.parent.clone(),
        transform: t::Transform {
            translation: o.transform.translation,
            rotation: o.transform.rotation,
            scale: o.transform.scale,
        },
        material: o.material.map(|m| t::Material {
            base_color: m.base_color,
            roughness: m.roughness,
            metallic: m.metallic,
            emission: m.emission,
            emission_strength: m.emission_strength,
        }),
        lock: lock.map(|l| t::ObjectLock {
            holder: l.holder.clone(),
            human: l.human,
        }),
    }
}

/// Intake: evaluate every op, then build the sequencer's submission.
/// `Err` is an intake refusal (an allowed op that does not parse).
pub fn intake(
    req: &Request,
    tid: u64,
    scene: &Scene,
    scene_version: u64,
    locks: &BTreeMap<String, LockEntry>,
    engines: &[String],
) -> Result<Submission, String> {
    let mut req = req.clone();
    for op in &mut req.ops {
        t::json::mark_non_finite(&mut op.args);
    }
    let count = req.ops.len() as u32;
    let mut scratch: Option<Scene> = None;
    let mut decisions = Vec::new();
    for (i, spec) in req.ops.iter().enumerate() {
        let current = scratch.as_ref().unwrap_or(scene);
        let ids = named_ids(&spec.args);
        let (objects, missing): (Vec<_>, Vec<_>) =
            ids.iter().partition(|id| current.get(id).is_some());
        let ctx = t::Context {
            objects: objects
                .iter()
                .filter_map(|id| current.get(id))
                .map(|o| object_state(o, locks.get(&o.id)))
                .collect(),
            missing: missing.into_iter().cloned().collect(),
            scene_object_count: current.objects.len() as u32,
            scene_version,
            project_root: PROJECT_ROOT.to_owned(),
        };
        let intent = t::Intent::for_op(
            tid,
            t::Source::Agent,
            &spec.op,
            &spec.args,
            i as u32,
            count,
            engines.to_vec(),
            ids,
            req.rationale.clone(),
            req.scene_version,
        );
        decisions.push(pipeline().evaluate(&intent, &ctx));
        if (i as u32) + 1 < count
            && let Ok(op) = Op::parse(&spec.op, spec.args.clone())
        {
            let _ = scratch.get_or_insert_with(|| scene.clone()).apply(&op);
        }
    }
    let deny = decisions.iter().any(|d| d.verdict.is_deny());
    let escalate = decisions
        .iter()
        .any(|d| matches!(d.verdict, t::Verdict::Escalate(_)));
    let mut ops = Vec::new();
    for (i, spec) in req.ops.iter().enumerate() {
        match Op::parse(&spec.op, spec.args.clone()) {
            Ok(op) => ops.push(op),
            Err(e) if !deny && !escalate => return Err(format!("host.op-parse: op {i}: {e}")),
            Err(_) => {}
        }
    }
    let mut verdicts = Vec::new();
    let mut reasons = Vec::new();
    for (i, d) in decisions.iter().enumerate() {
        for run in &d.runs {
            verdicts.push(PolicyRecord {
                tid: 0,
                policy: run.policy.clone(),
                module_hash: run.module_sha256.to_string(),
                verdict: run.verdict.kind().to_owned(),
                // Durations are wall time: left out so a seed's log is exact.
                findings: serde_json::json!({ "op_index": i, "rules": run.verdict.findings().iter().map(|f| f.rule.clone()).collect::<Vec<_>>() }),
            });
        }
        if (deny && d.verdict.is_deny()) || (!deny && escalate) {
            reasons.extend(
                d.verdict
                    .findings()
                    .iter()
                    .map(|f| format!("`{}` at `/ops/{i}/args{}`", f.rule, f.path)),
            );
        }
    }
    let reason = if reasons.is_empty() {
        "refused by policy".to_owned()
    } else {
        reasons.join("; ")
    };
    let decision = if deny {
        Decision::Deny { reason }
    } else if escalate {
        Decision::Escalate { reason }
    } else {
        Decision::Allow
    };
    Ok(Submission {
        source: Source::Agent,
        author: "agent".into(),
        ops,
        rationale: req.rationale,
        idempotency_key: req.idempotency_key,
        scene_version_read: req.scene_version,
        engines: Vec::new(),
        verdicts,
        decision,
    })
}
