//! Landlock and seccomp confinement of the VibeSync host process.
//!
//! The host treats agents, engines and policy modules as hostile, and limits
//! what a compromised host could do: read-only access to policies, the
//! module cache and the libraries it maps; read-write access to its state
//! directory only; TCP only on configured ports; no program execution,
//! debugging, raw or netlink sockets, mounts, eBPF or kernel modules.
//!
//! `serve` calls it once start-up has opened what it needs, **before any
//! other thread starts** (tokio runtime, wasmtime compilation pools):
//!
//! ```no_run
//! use vibesync_sandbox::{HostPaths, Mode, NetRules, Profile};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let profile = Profile::for_host(
//!     &HostPaths { state_dir: "state".into(), policy_dir: "policies".into(), cache_dir: None, extra_read_only: vec![] },
//!     &NetRules { udp_listen: Some("127.0.0.1:4433".parse()?), tcp_bind: vec![], tcp_connect: vec![] },
//! )?;
//! let report = profile.apply(Mode::Require)?; // refuses unless fully enforced
//! eprintln!("{}", report.summary());
//! // now build the tokio runtime, the policy engine, ...
//! # Ok(()) }
//! ```
//!
//! Pure parts (the profile, the syscall table, ABI gaps, the report) are
//! data and functions tested without touching the kernel; `apply.rs`,
//! `landlock::restrict_self` and `seccomp::install` are the thin shell the
//! `sandbox-probe` binary and the enforcement tests exercise for real.

mod apply;
pub mod landlock;
mod profile;
mod report;
pub mod seccomp;
pub mod syscalls;

pub use apply::{ApplyError, Mode, thread_count};
pub use landlock::Gap;
pub use profile::{
    FsAccess, FsRule, HostPaths, NetRules, PortAccess, PortRule, Profile, ProfileError, Skipped,
};
pub use report::{Kernel, Report, Status};
pub use syscalls::Verdict;
