//! Compiles the [`SyscallPolicy`] table into seccomp-BPF with `seccompiler`
//! and installs it on every thread of the process (`SECCOMP_FILTER_FLAG_TSYNC`).
//!
//! seccompiler gives one filter a single match action, so the policy is three
//! stacked filters. The kernel runs all of them and returns the most severe
//! action (kill > errno > allow); between two errno results the most recently
//! installed filter wins. Installation order makes that the table's verdict:
//!
//! 1. `kill`: the kill-process group -> `KILL_PROCESS`, everything else allow.
//! 2. `allow`: the allowed groups (+ `seccomp` itself, so filter 3 can still be
//!    installed) -> allow, everything else `ENOSYS`.
//! 3. `deny`: the EPERM groups and the argument refinements -> `EPERM`,
//!    everything else allow. Installed last, so its `EPERM` overrides filter
//!    2's `ENOSYS`, and it refuses `seccomp` from then on.
//!
//! Calls allowed without argument checks by all three filters hit the
//! kernel's per-filter action cache and run no BPF at all.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::syscalls::{Cmp, Cond, SyscallPolicy, Verdict, Width};

/// The three programs, in installation order.
#[derive(Debug)]
pub struct Compiled {
    pub kill: BpfProgram,
    pub allow: BpfProgram,
    pub deny: BpfProgram,
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "seccomp: architecture {0:?} has no syscall table in this build; remedy: run with --no-sandbox or port the table"
    )]
    Arch(&'static str),
    #[error("seccomp: compiling the {filter} filter failed")]
    Compile {
        filter: &'static str,
        source: seccompiler::BackendError,
    },
    #[error("seccomp: installing the {filter} filter on all threads failed")]
    Install {
        filter: &'static str,
        source: seccompiler::Error,
    },
}

fn arch() -> Result<TargetArch, SeccompError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SeccompError::Arch(std::env::consts::ARCH))
}

fn condition(c: &Cond) -> SeccompCondition {
    let len = match c.width {
        Width::Dword => SeccompCmpArgLen::Dword,
        Width::Qword => SeccompCmpArgLen::Qword,
    };
    let op = match c.cmp {
        Cmp::Eq => SeccompCmpOp::Eq,
        Cmp::Ne => SeccompCmpOp::Ne,
        Cmp::MaskedEq { mask } => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.arg, len, op, c.value).expect("argument index < 6 by construction")
}

fn build(
    filter: &'static str,
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, SeccompError> {
    let compile = |source| SeccompError::Compile { filter, source };
    SeccompFilter::new(rules, mismatch, matched, arch()?)
        .and_then(BpfProgram::try_from)
        .map_err(compile)
}

/// Compiles the policy. Pure: nothing is installed.
pub fn compile(policy: &SyscallPolicy) -> Result<Compiled, SeccompError> {
    let unconditional = |verdict| {
        policy
            .calls_with(verdict)
            .map(|s| (s.nr, Vec::new()))
            .collect::<BTreeMap<_, _>>()
    };

    let kill = build(
        "kill",
        unconditional(Verdict::KillProcess),
        SeccompAction::Allow,
        SeccompAction::KillProcess,
    )?;

    let mut allowed = unconditional(Verdict::Allow);
    allowed.insert(libc::SYS_seccomp, Vec::new());
    let allow = build(
        "allow",
        allowed,
        SeccompAction::Errno(libc::ENOSYS as u32),
        SeccompAction::Allow,
    )?;

    let mut denied = unconditional(Verdict::Eperm);
    for r in &policy.refinements {
        let rules = r
            .deny_when
            .iter()
            .map(|rule| {
                SeccompRule::new(rule.iter().map(condition).collect()).expect("non-empty rule")
            })
            .collect::<Vec<_>>();
        denied.entry(r.call.nr).or_default().extend(rules);
    }
    let deny = build(
        "deny",
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
    )?;

    Ok(Compiled { kill, allow, deny })
}

/// Installs the three filters on every thread. Threads that exist now get
/// them through TSYNC (and `no_new_privs` with them); later threads inherit.
pub fn install(c: &Compiled) -> Result<(), SeccompError> {
    for (filter, prog) in [("kill", &c.kill), ("allow", &c.allow), ("deny", &c.deny)] {
        seccompiler::apply_filter_all_threads(prog)
            .map_err(|source| SeccompError::Install { filter, source })?;
    }
    Ok(())
}

/// Whether this kernel accepts seccomp filters at all (asked without
/// installing one: `SECCOMP_GET_ACTION_AVAIL` for the actions we use).
pub fn kernel_supports_filters() -> bool {
    [
        libc::SECCOMP_RET_KILL_PROCESS,
        libc::SECCOMP_RET_ERRNO,
        libc::SECCOMP_RET_ALLOW,
    ]
    .iter()
    .all(|action| {
        // SAFETY: the kernel reads one u32 through the pointer.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_ACTION_AVAIL,
                0,
                action as *const u32,
            ) == 0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_policy_compiles_to_three_bounded_programs() {
        let c = compile(&SyscallPolicy::production(std::process::id())).unwrap();
        for (name, p) in [("kill", &c.kill), ("allow", &c.allow), ("deny", &c.deny)] {
            // BPF programs are limited to 4096 instructions by the kernel.
            assert!(
                !p.is_empty() && p.len() < 4096,
                "{name}: {} instructions",
                p.len()
            );
        }
    }
}
