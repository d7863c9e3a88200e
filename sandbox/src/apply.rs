//! Applying the profile to the running process: the one place with side
//! effects. Order matters and is fixed here:
//!
//! 1. compile the seccomp filters (pure; a failure changes nothing),
//! 2. check what the kernel supports and that the process is single-threaded
//!    (Landlock reaches only the calling thread and its future children on
//!    ABI < 8) — `Mode::Require` refuses here, before anything is applied,
//! 3. Landlock (which also sets `no_new_privs`),
//! 4. `no_new_privs`, set again explicitly and read back,
//! 5. seccomp on every thread (TSYNC), last, so steps 3-4 need no syscalls
//!    the filter refuses.

use landlock::{CompatLevel, RulesetStatus};

use crate::landlock::{self as ll, Gap};
use crate::profile::Profile;
use crate::report::{Kernel, Report, Status};
use crate::seccomp::{self, SeccompError};

/// How strictly to apply the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Refuse (error, nothing applied) unless the whole profile can be enforced.
    Require,
    /// Enforce what the kernel supports; the report lists what is not.
    BestEffort,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("sandbox: --require-sandbox, but this kernel cannot enforce the full profile: {}; remedy: run on a kernel with Landlock ABI >= {} and seccomp filters, or start serve with --require-sandbox=false to apply what this kernel supports (--no-sandbox only to debug)", describe(.gaps), ll::TARGET_ABI_NUMBER)]
    Incomplete { gaps: Vec<Gap> },
    #[error(
        "sandbox: {threads} threads are running, but Landlock confines only the calling thread and the threads it starts later; remedy: apply the sandbox before starting the tokio runtime, wasmtime engines or any other thread"
    )]
    ThreadsRunning { threads: usize },
    #[error(
        "sandbox: cannot count this process's threads in /proc/self/task ({0}); remedy: mount /proc, Landlock's reach depends on it"
    )]
    ThreadCount(std::io::Error),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Landlock(#[from] ll::LandlockError),
    #[error(
        "sandbox: landlock reported {status:?} although the kernel announced ABI {abi}; remedy: report this, the profile was not applied as planned"
    )]
    LandlockUnexpected { status: String, abi: u8 },
    #[error("sandbox: PR_SET_NO_NEW_PRIVS failed or did not stick: {0}")]
    NoNewPrivs(std::io::Error),
}

fn describe(gaps: &[Gap]) -> String {
    gaps.iter()
        .map(|g| format!("{} (ABI {})", g.feature, g.needs_abi))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Number of threads in this process, from `/proc/self/task`.
pub fn thread_count() -> std::io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

fn set_no_new_privs() -> Result<(), ApplyError> {
    // SAFETY: plain prctl calls with integer arguments.
    let (set, get) = unsafe {
        (
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
        )
    };
    match (set, get) {
        (0, 1) => Ok(()),
        (0, _) => Err(ApplyError::NoNewPrivs(std::io::Error::other(
            "flag reads back as 0",
        ))),
        _ => Err(ApplyError::NoNewPrivs(std::io::Error::last_os_error())),
    }
}

impl Profile {
    /// What the running kernel would leave unenforced, and why.
    pub fn gaps(&self, kernel: &Kernel, threads: usize) -> Vec<Gap> {
        let mut gaps = ll::gaps(kernel.landlock_abi);
        if threads > 1 {
            gaps.push(Gap {
                feature: "Landlock on threads started before the sandbox",
                needs_abi: 8,
                consequence: format!(
                    "{} thread(s) other than the caller keep unrestricted filesystem and TCP access (seccomp and no_new_privs still reach them)",
                    threads - 1
                ),
            });
        }
        if !kernel.seccomp_filters {
            gaps.push(Gap {
                feature: "seccomp filters",
                needs_abi: 0,
                consequence: "no system call is filtered: execve, ptrace, raw sockets, mount... remain available"
                    .into(),
            });
        }
        gaps
    }

    /// Confines the whole process: every thread that exists now (seccomp,
    /// no_new_privs) and every thread started later (all of it). Call once,
    /// after start-up has opened what it needs and before any other thread
    /// starts. Irreversible.
    pub fn apply(&self, mode: Mode) -> Result<Report, ApplyError> {
        let compiled = seccomp::compile(&self.syscalls)?;
        let kernel = Kernel::probe();
        let threads = match (thread_count(), mode) {
            (Ok(n), _) => n,
            (Err(e), Mode::Require) => return Err(ApplyError::ThreadCount(e)),
            // Unknown: assume others may exist, so the report says Landlock may not reach them.
            (Err(_), Mode::BestEffort) => 2,
        };
        if mode == Mode::Require && threads != 1 {
            return Err(ApplyError::ThreadsRunning { threads });
        }
        let gaps = self.gaps(&kernel, threads);
        if mode == Mode::Require && !gaps.is_empty() {
            return Err(ApplyError::Incomplete { gaps });
        }

        if kernel.landlock_abi > 0 {
            let level = match mode {
                Mode::Require => CompatLevel::HardRequirement,
                Mode::BestEffort => CompatLevel::BestEffort,
            };
            let status = ll::restrict_self(self, level)?;
            let expected = if kernel.landlock_abi >= ll::TARGET_ABI_NUMBER {
                RulesetStatus::FullyEnforced
            } else {
                RulesetStatus::PartiallyEnforced
            };
            if status != expected {
                return Err(ApplyError::LandlockUnexpected {
                    status: format!("{status:?}"),
                    abi: kernel.landlock_abi,
                });
            }
        }
        set_no_new_privs()?;
        if kernel.seccomp_filters {
            seccomp::install(&compiled)?;
        }
        Ok(Report::new(
            self,
            &kernel,
            Status::Applied(mode),
            Some(threads),
            Some(&compiled),
            gaps,
        ))
    }
}
