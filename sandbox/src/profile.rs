//! The confinement profile as data: which paths the host may read or write,
//! which TCP ports it may bind or connect, which Landlock scopes apply, and
//! the seccomp table. Built from the host's configuration by
//! [`Profile::for_host`]; applying it is `apply.rs`'s job.
//!
//! Construction resolves paths (the kernel attaches Landlock rules to inodes,
//! so a reviewer must see the real path, not a symlink) and refuses missing
//! required directories; it does not restrict anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::syscalls::SyscallPolicy;

/// The directories the host was configured with, opened and created by
/// start-up before the profile is applied.
#[derive(Clone, Debug, Default)]
pub struct HostPaths {
    /// Read-write: WAL, certificates, the operator socket.
    pub state_dir: PathBuf,
    /// Read-only: policy components and their lock file.
    pub policy_dir: PathBuf,
    /// Read-only: compiled-module cache. After the profile is applied a cache
    /// miss compiles in memory; the cache can only be refreshed before.
    pub cache_dir: Option<PathBuf>,
    /// Read-only extras the configuration names (e.g. a config file read
    /// again on reload).
    pub extra_read_only: Vec<PathBuf>,
}

/// The network the configuration names.
#[derive(Clone, Debug, Default)]
pub struct NetRules {
    /// The QUIC listener. Shown in the report; Landlock (ABI <= 9) cannot
    /// restrict UDP, seccomp limits the socket families instead.
    pub udp_listen: Option<SocketAddr>,
    /// TCP ports the host may bind (e.g. MCP streamable HTTP on loopback).
    pub tcp_bind: Vec<u16>,
    /// TCP ports the host may connect to.
    pub tcp_connect: Vec<u16>,
}

/// What a path rule grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsAccess {
    /// Read files, list directories. Never execute.
    ReadOnly,
    /// Read, write, create, rename, remove files, directories and unix
    /// sockets, truncate. No devices, fifos, symlinks or execution.
    ReadWrite,
    /// Read and write an existing device file (`/dev/null`).
    Device,
}

/// One Landlock path rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FsRule {
    /// Canonical path the rule is attached to.
    pub path: PathBuf,
    pub access: FsAccess,
    pub is_dir: bool,
    pub purpose: &'static str,
}

/// A system path the profile wanted but this machine does not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub purpose: &'static str,
}

/// What a port rule grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortAccess {
    BindTcp,
    ConnectTcp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortRule {
    pub port: u16,
    pub access: PortAccess,
}

/// The whole profile `serve` applies.
#[derive(Clone, Debug)]
pub struct Profile {
    pub fs: Vec<FsRule>,
    pub skipped: Vec<Skipped>,
    pub ports: Vec<PortRule>,
    pub udp_listen: Option<SocketAddr>,
    pub syscalls: SyscallPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(
        "sandbox profile: {field} = {path:?} cannot be used; remedy: create it before applying the sandbox (`vibesync init`) or fix the configuration"
    )]
    Path {
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "sandbox profile: {field} = {path:?} is not a directory; remedy: point {field} at a directory"
    )]
    NotADirectory { field: &'static str, path: PathBuf },
}

/// Read-only system paths the process maps or reads after start-up.
/// Missing ones are skipped (and listed in the report).
const SYSTEM_READ_ONLY: &[(&str, &str)] = &[
    ("/lib", "shared libraries"),
    ("/lib64", "shared libraries"),
    ("/usr/lib", "shared libraries"),
    ("/usr/lib64", "shared libraries"),
    ("/etc/ld.so.cache", "dynamic loader cache"),
    (
        "/dev/urandom",
        "randomness fallback when getrandom is unavailable",
    ),
    ("/sys/devices/system/cpu", "CPU count (glibc, thread pools)"),
    (
        "/sys/fs/cgroup",
        "CPU quota (std::thread::available_parallelism)",
    ),
];

impl Profile {
    /// The production profile for a host configured with `paths` and `net`.
    pub fn for_host(paths: &HostPaths, net: &NetRules) -> Result<Self, ProfileError> {
        let mut b = Builder::default();
        b.required_dir(
            "state_dir",
            &paths.state_dir,
            FsAccess::ReadWrite,
            "WAL, certificates, operator socket",
        )?;
        b.required_dir(
            "policy_dir",
            &paths.policy_dir,
            FsAccess::ReadOnly,
            "policy components and lock file",
        )?;
        if let Some(cache) = &paths.cache_dir {
            b.required_dir(
                "cache_dir",
                cache,
                FsAccess::ReadOnly,
                "compiled-module cache",
            )?;
        }
        for extra in &paths.extra_read_only {
            b.required(
                "extra_read_only",
                extra,
                FsAccess::ReadOnly,
                "named by the configuration",
            )?;
        }
        if let Ok(exe) = std::env::current_exe() {
            b.optional(
                &exe,
                FsAccess::ReadOnly,
                "the host executable (backtraces read its debug info)",
            );
        }
        // The rule attaches to /proc/<pid>, which /proc/self and
        // /proc/thread-self resolve into for every thread.
        b.optional(
            Path::new("/proc/self"),
            FsAccess::ReadOnly,
            "own process information (cgroup, limits)",
        );
        for (path, purpose) in SYSTEM_READ_ONLY {
            b.optional(Path::new(path), FsAccess::ReadOnly, purpose);
        }
        b.optional(Path::new("/dev/null"), FsAccess::Device, "discarded output");

        let mut ports: Vec<PortRule> = (net.tcp_bind.iter().map(|&port| PortRule {
            port,
            access: PortAccess::BindTcp,
        }))
        .chain(net.tcp_connect.iter().map(|&port| PortRule {
            port,
            access: PortAccess::ConnectTcp,
        }))
        .collect();
        ports.sort_by_key(|r| (r.access, r.port));
        ports.dedup();

        Ok(Profile {
            fs: b.fs,
            skipped: b.skipped,
            ports,
            udp_listen: net.udp_listen,
            syscalls: SyscallPolicy::production(std::process::id()),
        })
    }

    /// Number of rules per kind of access, for the report.
    pub fn count(&self, access: FsAccess) -> usize {
        self.fs.iter().filter(|r| r.access == access).count()
    }
}

#[derive(Default)]
struct Builder {
    fs: Vec<FsRule>,
    skipped: Vec<Skipped>,
}

impl Builder {
    fn push(&mut self, path: PathBuf, is_dir: bool, access: FsAccess, purpose: &'static str) {
        // Several configured names can resolve to one inode (/lib -> /usr/lib):
        // keep the first rule, or the wider one if they differ.
        if let Some(existing) = self.fs.iter_mut().find(|r| r.path == path) {
            if existing.access == FsAccess::ReadOnly && access != FsAccess::ReadOnly {
                existing.access = access;
                existing.purpose = purpose;
            }
            return;
        }
        self.fs.push(FsRule {
            path,
            access,
            is_dir,
            purpose,
        });
    }

    fn required(
        &mut self,
        field: &'static str,
        path: &Path,
        access: FsAccess,
        purpose: &'static str,
    ) -> Result<bool, ProfileError> {
        let err = |source| ProfileError::Path {
            field,
            path: path.to_owned(),
            source,
        };
        let real = path.canonicalize().map_err(err)?;
        let is_dir = real.metadata().map_err(err)?.is_dir();
        self.push(real, is_dir, access, purpose);
        Ok(is_dir)
    }

    fn required_dir(
        &mut self,
        field: &'static str,
        path: &Path,
        access: FsAccess,
        purpose: &'static str,
    ) -> Result<(), ProfileError> {
        if self.required(field, path, access, purpose)? {
            Ok(())
        } else {
            self.fs.pop();
            Err(ProfileError::NotADirectory {
                field,
                path: path.to_owned(),
            })
        }
    }

    fn optional(&mut self, path: &Path, access: FsAccess, purpose: &'static str) {
        match path
            .canonicalize()
            .and_then(|real| real.metadata().map(|m| (real, m.is_dir())))
        {
            Ok((real, is_dir)) => self.push(real, is_dir, access, purpose),
            Err(_) => self.skipped.push(Skipped {
                path: path.to_owned(),
                purpose,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (tempfile::TempDir, HostPaths) {
        let root = tempfile::tempdir().unwrap();
        for d in ["state", "policies", "cache"] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        let paths = HostPaths {
            state_dir: root.path().join("state"),
            policy_dir: root.path().join("policies"),
            cache_dir: Some(root.path().join("cache")),
            extra_read_only: vec![],
        };
        (root, paths)
    }

    fn rule<'a>(p: &'a Profile, path: &Path) -> &'a FsRule {
        let real = path.canonicalize().unwrap();
        p.fs.iter()
            .find(|r| r.path == real)
            .unwrap_or_else(|| panic!("no rule for {real:?}"))
    }

    #[test]
    fn state_is_the_only_writable_directory() {
        let (_root, paths) = dirs();
        let p = Profile::for_host(&paths, &NetRules::default()).unwrap();
        assert_eq!(rule(&p, &paths.state_dir).access, FsAccess::ReadWrite);
        assert_eq!(rule(&p, &paths.policy_dir).access, FsAccess::ReadOnly);
        assert_eq!(
            rule(&p, paths.cache_dir.as_ref().unwrap()).access,
            FsAccess::ReadOnly
        );
        let writable: Vec<_> =
            p.fs.iter()
                .filter(|r| r.access != FsAccess::ReadOnly)
                .map(|r| &r.path)
                .collect();
        assert_eq!(
            writable,
            [
                &paths.state_dir.canonicalize().unwrap(),
                &PathBuf::from("/dev/null")
            ]
        );
        assert_eq!(p.count(FsAccess::ReadWrite), 1);
        assert!(p.fs.iter().all(|r| r.path.is_absolute()));
    }

    #[test]
    fn symlinked_system_paths_collapse_into_one_rule() {
        let (_root, paths) = dirs();
        let p = Profile::for_host(&paths, &NetRules::default()).unwrap();
        let mut seen: Vec<_> = p.fs.iter().map(|r| &r.path).collect();
        seen.sort();
        let before = seen.len();
        seen.dedup();
        assert_eq!(before, seen.len());
    }

    #[test]
    fn missing_required_directory_names_the_field_and_remedy() {
        let (root, mut paths) = dirs();
        paths.policy_dir = root.path().join("nope");
        let err = Profile::for_host(&paths, &NetRules::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("policy_dir") && err.contains("nope") && err.contains("remedy"),
            "{err}"
        );

        let (root, mut paths) = dirs();
        std::fs::write(root.path().join("file"), b"").unwrap();
        paths.state_dir = root.path().join("file");
        let err = Profile::for_host(&paths, &NetRules::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("state_dir") && err.contains("not a directory"),
            "{err}"
        );
    }

    #[test]
    fn missing_system_paths_are_skipped_and_listed() {
        let mut b = Builder::default();
        b.optional(
            Path::new("/definitely/not/here"),
            FsAccess::ReadOnly,
            "test",
        );
        assert!(b.fs.is_empty());
        assert_eq!(
            b.skipped,
            [Skipped {
                path: "/definitely/not/here".into(),
                purpose: "test"
            }]
        );
    }

    #[test]
    fn ports_are_sorted_and_deduplicated() {
        let (_root, paths) = dirs();
        let net = NetRules {
            udp_listen: None,
            tcp_bind: vec![8080, 7000, 8080],
            tcp_connect: vec![443],
        };
        let p = Profile::for_host(&paths, &net).unwrap();
        assert_eq!(
            p.ports,
            [
                PortRule {
                    port: 7000,
                    access: PortAccess::BindTcp
                },
                PortRule {
                    port: 8080,
                    access: PortAccess::BindTcp
                },
                PortRule {
                    port: 443,
                    access: PortAccess::ConnectTcp
                },
            ]
        );
    }
}
