//! Policy faults: classifying what went wrong in a guest, and the finding that
//! turns it into a deny.
//!
//! Pure functions over a wasmtime error and the store's memory record, so the
//! wording and classification are tested without running any wasm.

use serde::{Deserialize, Serialize};
use vibesync_policy_types::{Finding, Severity, Verdict};

use crate::hash::Sha256;
use crate::runtime::Budgets;

/// The rule id of every finding the host adds on a policy's behalf.
pub const FAULT_RULE: &str = "host.policy-fault";

/// Which budget or contract a policy broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// Ran out of fuel (CPU budget).
    Fuel,
    /// Passed the wall-clock deadline.
    Deadline,
    /// Tried to grow memory past the cap (and then trapped or could not start).
    Memory,
    /// Exhausted the wasm stack (runaway recursion).
    StackOverflow,
    /// Trapped: `unreachable`, a Rust panic, an out-of-bounds access...
    Trap,
    /// Returned a value the host cannot accept: an invalid encoding, a deny or
    /// escalate without findings, or too many findings.
    MalformedVerdict,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultKind::Fuel => "fuel",
            FaultKind::Deadline => "deadline",
            FaultKind::Memory => "memory",
            FaultKind::StackOverflow => "stack-overflow",
            FaultKind::Trap => "trap",
            FaultKind::MalformedVerdict => "malformed-verdict",
        })
    }
}

/// Classify an error returned by instantiating or calling a guest.
/// `memory_refused` says whether the store's limiter refused a growth.
pub fn classify(error: &wasmtime::Error, memory_refused: bool) -> FaultKind {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => FaultKind::Fuel,
        Some(wasmtime::Trap::Interrupt) => FaultKind::Deadline,
        Some(wasmtime::Trap::StackOverflow) => FaultKind::StackOverflow,
        Some(_) if memory_refused => FaultKind::Memory,
        Some(_) => FaultKind::Trap,
        // Not a trap: instantiation refused by the limiter or the pool, or the
        // canonical ABI rejected what the guest returned.
        None if memory_refused => FaultKind::Memory,
        None => FaultKind::MalformedVerdict,
    }
}

/// Accept a well-formed verdict; a deny or escalate must say why, and may not
/// flood the decision record.
pub fn check_verdict(v: Verdict, max_findings: usize) -> Result<Verdict, (FaultKind, String)> {
    match &v {
        Verdict::Deny(f) | Verdict::Escalate(f) if f.is_empty() => Err((
            FaultKind::MalformedVerdict,
            format!("it returned `{}` without any finding", v.kind()),
        )),
        Verdict::Deny(f) | Verdict::Escalate(f) if f.len() > max_findings => Err((
            FaultKind::MalformedVerdict,
            format!(
                "it returned {} findings, more than the {max_findings} allowed",
                f.len()
            ),
        )),
        _ => Ok(v),
    }
}

/// The finding that explains a fault to the author and the operator.
pub fn finding(
    kind: FaultKind,
    policy: &str,
    hash: &Sha256,
    budgets: &Budgets,
    detail: &str,
) -> Finding {
    let what = match kind {
        FaultKind::Fuel => format!(
            "ran out of fuel (budget {} units): it loops or does too much work per op; fix the policy, or raise `fuel` in the policy budgets",
            budgets.fuel
        ),
        FaultKind::Deadline => format!(
            "passed its wall-clock deadline of {} ms; make it faster, or raise `deadline` in the policy budgets",
            budgets.deadline.as_millis()
        ),
        FaultKind::Memory => format!(
            "tried to grow its memory past the {} MiB cap; reduce its allocations, or raise `memory-bytes` in the policy budgets",
            budgets.memory_bytes >> 20
        ),
        FaultKind::StackOverflow => format!(
            "overflowed its {} KiB stack (runaway recursion); make the recursion bounded or iterative",
            budgets.max_stack_bytes >> 10
        ),
        FaultKind::Trap => "trapped (a panic, `unreachable` or an invalid access); fix the bug in the policy".to_owned(),
        FaultKind::MalformedVerdict => {
            "returned a malformed verdict; it must return allow, or deny/escalate with at least one finding".to_owned()
        }
    };
    let mut detail = detail.lines().next().unwrap_or("").to_owned();
    detail.truncate(300);
    Finding {
        rule: FAULT_RULE.to_owned(),
        severity: Severity::Critical,
        path: String::new(),
        message: format!(
            "policy `{policy}` (sha256 {}) {what}. The op is denied because a faulting policy fails closed. [{kind}: {detail}]",
            hash.short()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_are_classified() {
        let e = |t: wasmtime::Trap| wasmtime::Error::from(t);
        assert_eq!(
            classify(&e(wasmtime::Trap::OutOfFuel), false),
            FaultKind::Fuel
        );
        assert_eq!(
            classify(&e(wasmtime::Trap::Interrupt), false),
            FaultKind::Deadline
        );
        assert_eq!(
            classify(&e(wasmtime::Trap::StackOverflow), true),
            FaultKind::StackOverflow
        );
        assert_eq!(
            classify(&e(wasmtime::Trap::UnreachableCodeReached), false),
            FaultKind::Trap
        );
        assert_eq!(
            classify(&e(wasmtime::Trap::UnreachableCodeReached), true),
            FaultKind::Memory
        );
        assert_eq!(
            classify(&wasmtime::Error::msg("invalid variant discriminant"), false),
            FaultKind::MalformedVerdict
        );
    }

    #[test]
    fn empty_deny_is_malformed_and_allow_is_not() {
        assert!(check_verdict(Verdict::Allow, 1).is_ok());
        assert_eq!(
            check_verdict(Verdict::Deny(vec![]), 1).unwrap_err().0,
            FaultKind::MalformedVerdict
        );
        let f = Finding {
            rule: "a.b".into(),
            severity: Severity::Error,
            path: String::new(),
            message: "m".into(),
        };
        assert!(check_verdict(Verdict::Escalate(vec![f.clone()]), 1).is_ok());
        assert_eq!(
            check_verdict(Verdict::Deny(vec![f.clone(), f]), 1)
                .unwrap_err()
                .0,
            FaultKind::MalformedVerdict
        );
    }

    #[test]
    fn finding_names_policy_budget_and_remedy() {
        let b = Budgets::default();
        let f = finding(
            FaultKind::Fuel,
            "loop",
            &Sha256::of(b"x"),
            &b,
            "wasm trap: all fuel consumed",
        );
        assert_eq!(f.rule, FAULT_RULE);
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            f.message.contains("`loop`")
                && f.message.contains(&b.fuel.to_string())
                && f.message.contains("raise `fuel`")
        );
    }
}
