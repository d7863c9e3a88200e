//! Landlock: which rights the profile handles, which kernel ABI each needs
//! (pure, so the report can say exactly what an older kernel leaves
//! unenforced), and the shell that builds the ruleset with the `landlock`
//! crate and restricts the calling thread.
//!
//! `landlock_restrict_self` confines the calling thread and the threads it
//! creates afterwards, not threads that already exist (ABI 8's
//! `LANDLOCK_RESTRICT_SELF_TSYNC` lifts that; this kernel has ABI 7). The
//! caller ([`crate::Profile::apply`]) therefore checks that the process is
//! single-threaded first.

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath,
    PathFd, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};
use serde::Serialize;

use crate::profile::{FsAccess, FsRule, PortAccess, Profile};

/// The ABI whose features make up the full profile. ABI 7 adds only audit
/// logging of denials (on by default when present), so a 6.12 kernel already
/// enforces everything.
pub const TARGET_ABI: ABI = ABI::V6;
pub const TARGET_ABI_NUMBER: u8 = 6;

/// A part of the profile the running kernel does not enforce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub feature: &'static str,
    /// Landlock ABI that brings it; 0 for gaps that are not about Landlock.
    pub needs_abi: u8,
    pub consequence: String,
}

/// Landlock features the profile relies on, by the ABI that introduced them.
const FEATURES: &[(u8, &str, &str)] = &[
    (
        1,
        "filesystem access control",
        "every path rule is unenforced: the host can read and write anything its user can",
    ),
    (
        2,
        "rename and link across directories (refer)",
        "renames between directories are always refused by the older ABI",
    ),
    (
        3,
        "truncation control",
        "truncate(2) is not restricted: readable files (policies, libraries) can be emptied",
    ),
    (
        4,
        "TCP bind/connect rules",
        "the host can bind or connect any TCP port",
    ),
    (
        5,
        "device ioctl control",
        "ioctls on device files opened after start-up are not restricted by Landlock (seccomp still filters ioctl requests)",
    ),
    (
        6,
        "abstract unix socket and signal scoping",
        "the host can connect to abstract unix sockets and signal processes outside its domain (seccomp still refuses kill/tkill)",
    ),
];

/// What `kernel_abi` leaves unenforced of the profile.
pub fn gaps(kernel_abi: u8) -> Vec<Gap> {
    let missing: Vec<_> = FEATURES
        .iter()
        .filter(|(abi, ..)| *abi > kernel_abi)
        .collect();
    if kernel_abi == 0 {
        return vec![Gap {
            feature: "Landlock",
            needs_abi: 1,
            consequence:
                "Landlock is not available on this kernel: no path, port or scope rule is enforced"
                    .into(),
        }];
    }
    missing
        .into_iter()
        .map(|&(needs_abi, feature, consequence)| Gap {
            feature,
            needs_abi,
            consequence: consequence.into(),
        })
        .collect()
}

/// The kernel's Landlock ABI version, 0 when Landlock is missing or disabled.
pub fn kernel_abi() -> u8 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute only
    // returns the version number.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, /* VERSION */
        )
    };
    u8::try_from(v).unwrap_or(0)
}

/// Filesystem rights the ruleset handles (everything denied unless a rule grants it).
pub fn handled_fs() -> BitFlags<AccessFs> {
    AccessFs::from_all(TARGET_ABI)
}

pub fn handled_net() -> BitFlags<AccessNet> {
    AccessNet::from_all(TARGET_ABI)
}

pub fn scopes() -> BitFlags<Scope> {
    Scope::from_all(TARGET_ABI)
}

/// Rights a rule grants, as the kernel will see them.
pub fn rights(rule: &FsRule) -> BitFlags<AccessFs> {
    use AccessFs::*;
    let granted: BitFlags<AccessFs> = match rule.access {
        FsAccess::ReadOnly => ReadFile | ReadDir,
        FsAccess::ReadWrite => {
            ReadFile
                | ReadDir
                | WriteFile
                | Truncate
                | MakeReg
                | MakeDir
                | MakeSock
                | RemoveFile
                | RemoveDir
                | Refer
        }
        FsAccess::Device => ReadFile | WriteFile,
    };
    // Directory-only rights on a file rule are rejected by the kernel.
    if rule.is_dir {
        granted
    } else {
        granted & (ReadFile | WriteFile | Truncate)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error(
        "landlock: building the ruleset failed: {0}; remedy: run `vibesync sandbox report` to see what this kernel supports, or start with --no-sandbox to debug"
    )]
    Ruleset(#[from] landlock::RulesetError),
    #[error(
        "landlock: cannot open {path:?} to attach its rule; remedy: make sure it exists before the sandbox is applied"
    )]
    Path {
        path: std::path::PathBuf,
        source: landlock::PathFdError,
    },
}

/// Restricts the calling thread (and the threads it creates later).
/// `HardRequirement` fails instead of silently dropping unsupported rights.
pub fn restrict_self(
    profile: &Profile,
    level: CompatLevel,
) -> Result<RulesetStatus, LandlockError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(level)
        .handle_access(handled_fs())?
        .handle_access(handled_net())?
        .scope(scopes())?
        .create()?;
    for rule in &profile.fs {
        let fd = PathFd::new(&rule.path).map_err(|source| LandlockError::Path {
            path: rule.path.clone(),
            source,
        })?;
        ruleset = ruleset.add_rule(PathBeneath::new(fd, rights(rule)))?;
    }
    for port in &profile.ports {
        let access = match port.access {
            PortAccess::BindTcp => AccessNet::BindTcp,
            PortAccess::ConnectTcp => AccessNet::ConnectTcp,
        };
        ruleset = ruleset.add_rule(NetPort::new(port.port, access))?;
    }
    let RestrictionStatus { ruleset, .. } = ruleset.restrict_self()?;
    Ok(ruleset)
}

/// Names of the flags in a set, for the report.
pub fn names<T: Access + std::fmt::Debug>(flags: BitFlags<T>) -> Vec<String> {
    flags.iter().map(|f| format!("{f:?}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn full_abi_has_no_gaps_and_each_older_abi_names_what_it_misses() {
        assert!(gaps(TARGET_ABI_NUMBER).is_empty());
        assert!(gaps(7).is_empty());
        let g3 = gaps(3);
        assert_eq!(
            g3.iter().map(|g| g.needs_abi).collect::<Vec<_>>(),
            [4, 5, 6]
        );
        assert!(g3[0].consequence.contains("TCP"));
        let g0 = gaps(0);
        assert_eq!(g0.len(), 1);
        assert!(g0[0].consequence.contains("no path, port or scope rule"));
    }

    #[test]
    fn read_only_never_executes_and_files_get_file_rights() {
        let dir = FsRule {
            path: PathBuf::from("/usr/lib"),
            access: FsAccess::ReadOnly,
            is_dir: true,
            purpose: "",
        };
        assert_eq!(rights(&dir), AccessFs::ReadFile | AccessFs::ReadDir);
        let file = FsRule {
            is_dir: false,
            ..dir.clone()
        };
        assert_eq!(rights(&file), BitFlags::from(AccessFs::ReadFile));
        let state = FsRule {
            access: FsAccess::ReadWrite,
            ..dir
        };
        let r = rights(&state);
        assert!(
            !r.contains(AccessFs::Execute)
                && !r.contains(AccessFs::MakeChar)
                && !r.contains(AccessFs::MakeSym)
        );
        assert!(r.contains(
            AccessFs::WriteFile | AccessFs::Truncate | AccessFs::MakeSock | AccessFs::Refer
        ));
        assert!(handled_fs().contains(r), "every granted right is handled");
    }

    #[test]
    fn target_abi_handles_tcp_and_both_scopes() {
        assert_eq!(handled_net(), AccessNet::BindTcp | AccessNet::ConnectTcp);
        assert_eq!(scopes(), Scope::AbstractUnixSocket | Scope::Signal);
        assert!(handled_fs().contains(AccessFs::Execute | AccessFs::IoctlDev | AccessFs::Truncate));
    }
}
