//! The real policy pipeline, with the built-in components, as the simulated
//! host's intake runs it.
//!
//! Compiling the three components is the expensive part, so the pipeline is
//! built once per process ([`pipeline`]) and every simulated intent is
//! evaluated through it, op by op, with the policy view the host's intake
//! builds (`vibesync_ledger::policy_view`, shared with
//! `host/vibesync/src/orchestrator/intake.rs`). Combining the verdicts
//! (deny > escalate > allow) into the sequencer's submission is re-stated
//! here, because the host's version builds its front-door error types. The
//! wall-clock deadline is raised so that a loaded machine cannot turn a
//! verdict into a timeout fault: a run's verdicts must depend on its seed
//! only.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use vibesync_canonical::{Op, Scene};
use vibesync_ledger::policy_view::{self, IntentMeta, OpRef};
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
    let specs: Vec<OpRef<'_>> = req
        .ops
        .iter()
        .map(|o| OpRef {
            op: &o.op,
            args: &o.args,
        })
        .collect();
    let input = policy_view::policy_input(
        &specs,
        IntentMeta {
            tid,
            source: t::Source::Agent,
            rationale: &req.rationale,
            scene_version_read: req.scene_version,
            engines,
        },
        policy_view::World {
            scene,
            scene_version,
            locks,
            project_root: PROJECT_ROOT,
        },
    );
    let decisions: Vec<_> = input
        .intents
        .iter()
        .zip(&input.contexts)
        .map(|(i, c)| pipeline().evaluate(i, c))
        .collect();
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
