//! The ordered policy pipeline and the decision record it produces.
//!
//! A [`Pipeline`] holds the current [`PolicySet`] behind an `ArcSwap`: an
//! evaluation takes a snapshot (one atomic load) and runs every policy of that
//! snapshot in order, so a hot swap (see [`crate::swap`]) never changes the set
//! under an evaluation in flight. The first deny short-circuits. The
//! [`Decision`] records the final verdict and, for every policy that ran, its
//! name, module hash, verdict, duration and fault; it is what the WAL
//! journals, so it is serde-serializable.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use vibesync_policy_types::{self as t, Finding, Severity, Verdict};

use crate::bindings::{self, wit};
use crate::fault::FaultKind;
use crate::hash::Sha256;
use crate::runtime::{LoadError, Policy, Runtime};

/// One policy's part in a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRun {
    /// Module name.
    pub policy: String,
    /// SHA-256 of the module that ran (the exact bytes the lock approved).
    pub module_sha256: Sha256,
    /// Its verdict (a deny with a `host.policy-fault` finding if it faulted).
    pub verdict: Verdict,
    /// Wall time of the evaluation in nanoseconds: the call, plus
    /// instantiation when it happened inline (not when the instance was
    /// prepared ahead, see `RuntimeConfig::prepared_per_policy`).
    pub duration_ns: u64,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Which budget or contract it broke, if any.
    pub fault: Option<FaultKind>,
    /// `log` calls dropped by the per-evaluation cap.
    pub logs_dropped: u32,
}

/// The outcome of one op through the pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The final verdict: the first deny; else every escalation's findings
    /// together; else allow.
    pub verdict: Verdict,
    /// Every policy that ran, in order (policies after a deny do not run).
    pub runs: Vec<PolicyRun>,
    /// Generation of the policy set that decided (increments on every swap).
    pub generation: u64,
    /// Wall time of the whole pipeline, conversions included, in nanoseconds.
    pub duration_ns: u64,
}

/// Rule id of the deny an empty pipeline gives (fail closed).
pub const NO_POLICIES_RULE: &str = "host.no-policies";

/// Fold the runs into the final verdict. Pure.
pub fn combine(runs: &[PolicyRun]) -> Verdict {
    if runs.is_empty() {
        return Verdict::Deny(vec![Finding {
            rule: NO_POLICIES_RULE.into(),
            severity: Severity::Critical,
            path: String::new(),
            message:
                "no policy is loaded, so nothing can be allowed; configure the built-in policies"
                    .into(),
        }]);
    }
    if let Some(deny) = runs.iter().find(|r| r.verdict.is_deny()) {
        return deny.verdict.clone();
    }
    let escalations: Vec<Finding> = runs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Escalate(_)))
        .flat_map(|r| r.verdict.findings().iter().cloned())
        .collect();
    if escalations.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Escalate(escalations)
    }
}

/// Per-policy configuration tables, by module name, as the operator wrote
/// them (TOML or JSON). Each table reaches its policy flattened into leaves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicyConfigs(pub BTreeMap<String, serde_json::Value>);

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "policy configuration is not valid TOML (expected one table per policy, e.g. `[nan-audit]`): {0}"
    )]
    Toml(#[from] toml::de::Error),
    #[error(
        "policy configuration is not valid JSON (expected an object of one object per policy): {0}"
    )]
    Json(#[from] serde_json::Error),
}

impl PolicyConfigs {
    /// Parse `[policy-name] key = value ...` tables.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }
    /// Parse `{"policy-name": {...}}` (lenient: `"NaN"` and friends are floats).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Ok(serde_json::from_value(t::json::parse_lenient(text)?)?)
    }
    /// The leaves of `policy`'s table (none if it has no table).
    pub fn leaves(&self, policy: &str) -> Vec<t::Leaf> {
        self.0.get(policy).map(t::flatten).unwrap_or_default()
    }
}

/// An immutable, ordered set of loaded policies with their configuration.
pub struct PolicySet {
    policies: Vec<(Arc<Policy>, Vec<wit::Leaf>)>,
    generation: u64,
}

impl PolicySet {
    /// Build a set; `configs` gives each policy its table.
    pub fn new(policies: Vec<Arc<Policy>>, configs: &PolicyConfigs, generation: u64) -> Self {
        let policies = policies
            .into_iter()
            .map(|p| {
                let leaves = bindings::leaves(&configs.leaves(p.name()));
                (p, leaves)
            })
            .collect();
        Self {
            policies,
            generation,
        }
    }
    /// The policies in pipeline order.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.iter().map(|(p, _)| p)
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    /// The module currently loaded under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Policy>> {
        self.policies().find(|p| p.name() == name)
    }
}

/// The ordered pipeline. `Sync`: evaluate from as many threads as you like.
pub struct Pipeline {
    pub(crate) runtime: Runtime,
    pub(crate) builtins: Vec<Arc<Policy>>,
    pub(crate) dir: Option<PathBuf>,
    pub(crate) configs: PolicyConfigs,
    pub(crate) current: ArcSwap<PolicySet>,
    /// Serializes swaps (evaluations never take it).
    pub(crate) swap_lock: Mutex<()>,
}

impl Pipeline {
    /// A pipeline over a fixed list of policies, in order.
    pub fn new(runtime: Runtime, policies: Vec<Policy>, configs: PolicyConfigs) -> Self {
        let builtins: Vec<Arc<Policy>> = policies.into_iter().map(Arc::new).collect();
        let set = PolicySet::new(builtins.clone(), &configs, 0);
        Self {
            runtime,
            builtins,
            dir: None,
            configs,
            current: ArcSwap::from_pointee(set),
            swap_lock: Mutex::new(()),
        }
    }

    /// `builtins` first, then every approved `*.wasm` of `dir` in file-name
    /// order. Fails closed: any module of `dir` that is not approved or does
    /// not load stops construction.
    pub fn with_dir(
        runtime: Runtime,
        builtins: Vec<Policy>,
        dir: PathBuf,
        configs: PolicyConfigs,
    ) -> Result<Self, LoadError> {
        let mut p = Self::new(runtime, builtins, configs);
        let team = crate::swap::load_dir(&p.runtime, &dir, None)?;
        let mut all = p.builtins.clone();
        all.extend(team);
        p.current = ArcSwap::from_pointee(PolicySet::new(all, &p.configs, 0));
        p.dir = Some(dir);
        Ok(p)
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// A snapshot of the current set.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Decide one op.
    pub fn evaluate(&self, intent: &t::Intent, ctx: &t::Context) -> Decision {
        let start = Instant::now();
        let set = self.current.load_full();
        let wit_intent = bindings::intent(intent);
        let wit_ctx = bindings::context(ctx);
        let runs = self.runtime.evaluate_in_order(
            set.policies.iter().map(|(p, c)| (&**p, c.as_slice())),
            intent.tid,
            &wit_intent,
            &wit_ctx,
        );
        Decision {
            verdict: combine(&runs),
            runs,
            generation: set.generation,
            duration_ns: start.elapsed().as_nanos() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: Verdict) -> PolicyRun {
        PolicyRun {
            policy: "p".into(),
            module_sha256: Sha256::of(b"p"),
            verdict: v,
            duration_ns: 1,
            fuel_used: 1,
            fault: None,
            logs_dropped: 0,
        }
    }
    fn f(rule: &str) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::Warning,
            path: String::new(),
            message: "m".into(),
        }
    }

    #[test]
    fn combine_folds_verdicts() {
        assert!(combine(&[]).is_deny());
        assert_eq!(
            combine(&[run(Verdict::Allow), run(Verdict::Allow)]),
            Verdict::Allow
        );
        assert_eq!(
            combine(&[
                run(Verdict::Escalate(vec![f("a.x")])),
                run(Verdict::Allow),
                run(Verdict::Escalate(vec![f("b.y")]))
            ]),
            Verdict::Escalate(vec![f("a.x"), f("b.y")])
        );
        assert_eq!(
            combine(&[
                run(Verdict::Escalate(vec![f("a.x")])),
                run(Verdict::Deny(vec![f("b.y")]))
            ]),
            Verdict::Deny(vec![f("b.y")])
        );
    }

    #[test]
    fn decision_round_trips_through_json() {
        let d = Decision {
            verdict: Verdict::Allow,
            runs: vec![run(Verdict::Allow)],
            generation: 3,
            duration_ns: 9,
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), d);
    }

    #[test]
    fn configs_flatten_per_policy() {
        let c = PolicyConfigs::from_toml("[nan-audit]\nmax-magnitude = 1e6\n").unwrap();
        let leaves = c.leaves("nan-audit");
        assert_eq!(leaves.len(), 1);
        assert_eq!(leaves[0].path, "/max-magnitude");
        assert!(c.leaves("firewall").is_empty());
        assert!(
            PolicyConfigs::from_json("{\"a\": {\"x\": \"NaN\"}}")
                .unwrap()
                .leaves("a")[0]
                .value
                .as_f64()
                .unwrap()
                .is_nan()
        );
    }
}
