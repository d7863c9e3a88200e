//! The report a security reviewer reads: the profile (every path and port
//! rule, every system call with its verdict and reason) and what the running
//! kernel enforces of it. One data structure, rendered as text or JSON, for
//! `vibesync sandbox report`, for `serve`'s start-up log, and for
//! `--no-sandbox`'s warning.

use std::fmt::Write as _;

use serde::Serialize;

use crate::apply::Mode;
use crate::landlock::{self as ll, Gap};
use crate::profile::{FsAccess, FsRule, PortAccess, PortRule, Profile, Skipped};
use crate::seccomp::{self, Compiled};
use crate::syscalls::{DEFAULT_VERDICT, SyscallEntry, Verdict};

/// What the running kernel offers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// 0 when Landlock is missing or disabled.
    pub landlock_abi: u8,
    pub seccomp_filters: bool,
    pub arch: &'static str,
}

impl Kernel {
    pub fn probe() -> Self {
        Kernel {
            landlock_abi: ll::kernel_abi(),
            seccomp_filters: seccomp::kernel_supports_filters(),
            arch: std::env::consts::ARCH,
        }
    }
}

/// Whether the profile is a plan, in force, or switched off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status", content = "mode")]
pub enum Status {
    /// Not applied: what `serve` would apply (`vibesync sandbox report`).
    Planned,
    Applied(Mode),
    /// `serve --no-sandbox`: nothing is enforced.
    Disabled,
}

#[derive(Clone, Debug, Serialize)]
pub struct RuleCounts {
    pub read_only: usize,
    pub read_write: usize,
    pub device: usize,
    pub tcp_bind: usize,
    pub tcp_connect: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct LandlockSection {
    pub target_abi: u8,
    pub handled_fs: Vec<String>,
    pub handled_net: Vec<String>,
    pub scopes: Vec<String>,
    pub counts: RuleCounts,
    pub fs_rules: Vec<FsRuleView>,
    pub skipped: Vec<Skipped>,
    pub tcp_rules: Vec<PortRule>,
    pub udp_listen: Option<String>,
    pub udp_note: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct FsRuleView {
    #[serde(flatten)]
    pub rule: FsRule,
    pub rights: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    pub name: &'static str,
    pub verdict: Verdict,
    pub calls: usize,
    pub rationale: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct SeccompSection {
    pub default_verdict: Verdict,
    /// BPF instruction counts of the stacked filters, in installation order.
    pub filters: Vec<(&'static str, usize)>,
    pub groups: Vec<GroupView>,
    pub refinements: Vec<RefinementView>,
    pub syscalls: Vec<SyscallEntry>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefinementView {
    pub call: &'static str,
    pub rationale: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub status: Status,
    pub kernel: Kernel,
    /// `PR_GET_NO_NEW_PRIVS` of the thread that built the report.
    pub no_new_privs: bool,
    pub threads_at_apply: Option<usize>,
    pub landlock: LandlockSection,
    pub seccomp: SeccompSection,
    /// Everything the profile asks for that is not in force.
    pub not_enforced: Vec<Gap>,
}

impl Report {
    pub(crate) fn new(
        profile: &Profile,
        kernel: &Kernel,
        status: Status,
        threads_at_apply: Option<usize>,
        compiled: Option<&Compiled>,
        not_enforced: Vec<Gap>,
    ) -> Self {
        let landlock = LandlockSection {
            target_abi: ll::TARGET_ABI_NUMBER,
            handled_fs: ll::names(ll::handled_fs()),
            handled_net: ll::names(ll::handled_net()),
            scopes: ll::names(ll::scopes()),
            counts: RuleCounts {
                read_only: profile.count(FsAccess::ReadOnly),
                read_write: profile.count(FsAccess::ReadWrite),
                device: profile.count(FsAccess::Device),
                tcp_bind: profile
                    .ports
                    .iter()
                    .filter(|p| p.access == PortAccess::BindTcp)
                    .count(),
                tcp_connect: profile
                    .ports
                    .iter()
                    .filter(|p| p.access == PortAccess::ConnectTcp)
                    .count(),
            },
            fs_rules: profile
                .fs
                .iter()
                .map(|r| FsRuleView {
                    rule: r.clone(),
                    rights: ll::names(ll::rights(r)),
                })
                .collect(),
            skipped: profile.skipped.clone(),
            tcp_rules: profile.ports.clone(),
            udp_listen: profile.udp_listen.map(|a| a.to_string()),
            udp_note: "Landlock before ABI 10 has no UDP rules; UDP is limited by seccomp to AF_INET/AF_INET6 datagram sockets",
        };
        let p = &profile.syscalls;
        let seccomp = SeccompSection {
            default_verdict: DEFAULT_VERDICT,
            filters: compiled
                .map(|c| {
                    vec![
                        ("kill", c.kill.len()),
                        ("allow", c.allow.len()),
                        ("deny", c.deny.len()),
                    ]
                })
                .unwrap_or_default(),
            groups: p
                .groups
                .iter()
                .map(|g| GroupView {
                    name: g.name,
                    verdict: g.verdict,
                    calls: g.calls.len(),
                    rationale: g.rationale,
                })
                .collect(),
            refinements: p
                .refinements
                .iter()
                .map(|r| RefinementView {
                    call: r.call.name(),
                    rationale: r.rationale,
                })
                .collect(),
            syscalls: p.entries(),
        };
        // SAFETY: reading a per-thread flag; no pointers involved.
        let no_new_privs = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1;
        Report {
            status,
            kernel: kernel.clone(),
            no_new_privs,
            threads_at_apply,
            landlock,
            seccomp,
            not_enforced,
        }
    }

    /// What `serve` would apply on this kernel (nothing is applied).
    pub fn plan(profile: &Profile) -> Self {
        let kernel = Kernel::probe();
        let gaps = profile.gaps(&kernel, 1);
        let compiled = seccomp::compile(&profile.syscalls).ok();
        Report::new(
            profile,
            &kernel,
            Status::Planned,
            None,
            compiled.as_ref(),
            gaps,
        )
    }

    /// For `serve --no-sandbox`: the profile, with everything listed as not enforced.
    pub fn disabled(profile: &Profile) -> Self {
        let kernel = Kernel::probe();
        let gaps = vec![Gap {
            feature: "the whole sandbox (--no-sandbox)",
            needs_abi: 0,
            consequence:
                "no Landlock rule, no seccomp filter, no no_new_privs: a compromised host can do anything its user can"
                    .into(),
        }];
        Report::new(profile, &kernel, Status::Disabled, None, None, gaps)
    }

    /// True when the profile is in force and nothing is missing.
    pub fn fully_enforced(&self) -> bool {
        matches!(self.status, Status::Applied(_)) && self.not_enforced.is_empty()
    }

    /// One line for the log at start-up; `serve --no-sandbox` logs it at error level.
    pub fn summary(&self) -> String {
        match self.status {
            Status::Disabled => {
                "SANDBOX DISABLED (--no-sandbox): the host runs unconfined; never do this outside debugging".into()
            }
            _ => format!(
                "sandbox {}: landlock ABI {} ({} read-only, {} read-write, {} device path rules; {} TCP port rules), seccomp {} calls named, default {}{}",
                match self.status {
                    Status::Planned => "planned",
                    Status::Applied(Mode::Require) => "applied (required)",
                    Status::Applied(Mode::BestEffort) => "applied (best effort)",
                    Status::Disabled => unreachable!(),
                },
                self.kernel.landlock_abi,
                self.landlock.counts.read_only,
                self.landlock.counts.read_write,
                self.landlock.counts.device,
                self.landlock.counts.tcp_bind + self.landlock.counts.tcp_connect,
                self.seccomp.syscalls.len(),
                self.seccomp.default_verdict,
                if self.not_enforced.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; NOT ENFORCED: {}",
                        self.not_enforced.iter().map(|g| g.feature).collect::<Vec<_>>().join(", ")
                    )
                }
            ),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report is plain data")
    }

    /// The human-readable report.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let status = match self.status {
            Status::Planned => "PLANNED (not applied; this is what `vibesync serve` applies)",
            Status::Applied(Mode::Require) => "APPLIED (required)",
            Status::Applied(Mode::BestEffort) => "APPLIED (best effort)",
            Status::Disabled => "DISABLED (--no-sandbox)",
        };
        let k = &self.kernel;
        let _ = writeln!(o, "VibeSync host sandbox: {status}");
        let _ = writeln!(
            o,
            "kernel: landlock ABI {} (profile needs {}), seccomp filters {}, arch {}",
            if k.landlock_abi == 0 {
                "none".to_string()
            } else {
                k.landlock_abi.to_string()
            },
            self.landlock.target_abi,
            if k.seccomp_filters {
                "available"
            } else {
                "UNAVAILABLE"
            },
            k.arch
        );
        let _ = writeln!(
            o,
            "no_new_privs: {}",
            if self.no_new_privs { "set" } else { "not set" }
        );
        if let Some(t) = self.threads_at_apply {
            let _ = writeln!(o, "threads when applied: {t}");
        }
        let _ = writeln!(o, "\nNOT ENFORCED:");
        if self.not_enforced.is_empty() {
            let _ = writeln!(o, "  nothing: the whole profile is enforced by this kernel");
        }
        for g in &self.not_enforced {
            let abi = if g.needs_abi > 0 {
                format!(" [needs Landlock ABI {}]", g.needs_abi)
            } else {
                String::new()
            };
            let _ = writeln!(o, "  - {}{abi}: {}", g.feature, g.consequence);
        }

        let l = &self.landlock;
        let _ = writeln!(
            o,
            "\nLANDLOCK (everything handled is denied unless a rule below grants it)"
        );
        let _ = writeln!(
            o,
            "  handled filesystem rights: {}",
            l.handled_fs.join(", ")
        );
        let _ = writeln!(
            o,
            "  handled network rights:    {}",
            l.handled_net.join(", ")
        );
        let _ = writeln!(o, "  scopes:                    {}", l.scopes.join(", "));
        let c = &l.counts;
        let _ = writeln!(
            o,
            "  rules: {} read-only, {} read-write, {} device, {} TCP bind, {} TCP connect",
            c.read_only, c.read_write, c.device, c.tcp_bind, c.tcp_connect
        );
        for r in &l.fs_rules {
            let kind = match r.rule.access {
                FsAccess::ReadOnly => "read-only ",
                FsAccess::ReadWrite => "READ-WRITE",
                FsAccess::Device => "device rw ",
            };
            let _ = writeln!(
                o,
                "  {kind} {}  [{}]  ({})",
                r.rule.path.display(),
                r.rights.join(" "),
                r.rule.purpose
            );
        }
        for s in &l.skipped {
            let _ = writeln!(o, "  (absent)   {}  ({})", s.path.display(), s.purpose);
        }
        if l.tcp_rules.is_empty() {
            let _ = writeln!(o, "  TCP: no bind, no connect");
        }
        for p in &l.tcp_rules {
            let what = match p.access {
                PortAccess::BindTcp => "bind",
                PortAccess::ConnectTcp => "connect",
            };
            let _ = writeln!(o, "  TCP {what} port {}", p.port);
        }
        let _ = writeln!(
            o,
            "  UDP listen: {} — {}",
            l.udp_listen.as_deref().unwrap_or("none configured"),
            l.udp_note
        );

        let s = &self.seccomp;
        let _ = writeln!(
            o,
            "\nSECCOMP (all threads; calls not listed: {})",
            s.default_verdict
        );
        if !s.filters.is_empty() {
            let f: Vec<_> = s
                .filters
                .iter()
                .map(|(n, len)| format!("{n} {len}"))
                .collect();
            let _ = writeln!(o, "  stacked filters (BPF instructions): {}", f.join(", "));
        }
        for g in &s.groups {
            let _ = writeln!(
                o,
                "  [{}] {} ({} calls): {}",
                g.verdict, g.name, g.calls, g.rationale
            );
            let names: Vec<_> = s
                .syscalls
                .iter()
                .filter(|e| e.group == g.name)
                .map(|e| e.name)
                .collect();
            let _ = writeln!(o, "      {}", names.join(" "));
        }
        let _ = writeln!(o, "  argument checks (EPERM when any rule matches):");
        for r in &s.refinements {
            let _ = writeln!(o, "    {}: {}", r.call, r.rationale);
            for e in s.syscalls.iter().filter(|e| e.name == r.call) {
                for rule in &e.eperm_when {
                    let _ = writeln!(o, "      - {rule}");
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{HostPaths, NetRules};

    fn profile() -> (tempfile::TempDir, Profile) {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("state")).unwrap();
        std::fs::create_dir(root.path().join("pol")).unwrap();
        let paths = HostPaths {
            state_dir: root.path().join("state"),
            policy_dir: root.path().join("pol"),
            ..HostPaths::default()
        };
        let net = NetRules {
            udp_listen: Some("127.0.0.1:4433".parse().unwrap()),
            tcp_bind: vec![7070],
            tcp_connect: vec![],
        };
        let p = Profile::for_host(&paths, &net).unwrap();
        (root, p)
    }

    fn kernel(abi: u8) -> Kernel {
        Kernel {
            landlock_abi: abi,
            seccomp_filters: true,
            arch: "x86_64",
        }
    }

    #[test]
    fn text_report_names_every_rule_call_and_gap() {
        let (_root, p) = profile();
        let gaps = p.gaps(&kernel(3), 1);
        let r = Report::new(&p, &kernel(3), Status::Planned, None, None, gaps);
        let t = r.render_text();
        assert!(t.contains("PLANNED"));
        assert!(t.contains("landlock ABI 3 (profile needs 6)"));
        assert!(
            t.contains("TCP bind/connect rules [needs Landlock ABI 4]"),
            "{t}"
        );
        assert!(t.contains("READ-WRITE") && t.contains("/state"));
        assert!(t.contains("TCP bind port 7070"));
        assert!(t.contains("UDP listen: 127.0.0.1:4433"));
        assert!(t.contains("[errno EPERM] program execution"));
        assert!(t.contains("execve execveat"));
        assert!(t.contains("[kill process (SIGSYS)] kernel replacement"));
        assert!(
            t.contains("arg0 != AF_UNIX && arg0 != AF_INET && arg0 != AF_INET6"),
            "{t}"
        );
        assert!(!r.fully_enforced());
        assert!(r.summary().contains("NOT ENFORCED: TCP bind/connect rules"));
    }

    #[test]
    fn full_kernel_has_nothing_missing() {
        let (_root, p) = profile();
        let r = Report::new(
            &p,
            &kernel(7),
            Status::Applied(Mode::Require),
            Some(1),
            None,
            p.gaps(&kernel(7), 1),
        );
        assert!(r.fully_enforced());
        assert!(
            r.render_text()
                .contains("nothing: the whole profile is enforced")
        );
        assert!(!r.summary().contains("NOT ENFORCED"));
    }

    #[test]
    fn threads_and_missing_seccomp_are_gaps() {
        let (_root, p) = profile();
        let k = Kernel {
            seccomp_filters: false,
            ..kernel(7)
        };
        let gaps = p.gaps(&k, 3);
        let features: Vec<_> = gaps.iter().map(|g| g.feature).collect();
        assert_eq!(
            features,
            [
                "Landlock on threads started before the sandbox",
                "seccomp filters"
            ]
        );
        assert!(gaps[0].consequence.starts_with("2 thread(s)"));
    }

    #[test]
    fn json_report_is_machine_readable() {
        let (_root, p) = profile();
        let r = Report::new(
            &p,
            &kernel(7),
            Status::Applied(Mode::BestEffort),
            Some(1),
            None,
            vec![],
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["status"], "applied");
        assert_eq!(v["mode"], "best-effort");
        assert_eq!(v["kernel"]["landlock_abi"], 7);
        assert_eq!(v["landlock"]["counts"]["read_write"], 1);
        assert_eq!(v["landlock"]["tcp_rules"][0]["port"], 7070);
        let calls = v["seccomp"]["syscalls"].as_array().unwrap();
        let execve = calls.iter().find(|c| c["name"] == "execve").unwrap();
        assert_eq!(execve["verdict"], "eperm");
        assert_eq!(v["seccomp"]["default_verdict"], "enosys");
        let state = v["landlock"]["fs_rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["access"] == "read-write")
            .unwrap();
        assert!(
            state["rights"]
                .as_array()
                .unwrap()
                .contains(&"WriteFile".into())
        );
    }

    #[test]
    fn disabled_report_shouts() {
        let (_root, p) = profile();
        let r = Report::disabled(&p);
        assert!(r.summary().starts_with("SANDBOX DISABLED"));
        assert!(r.render_text().contains("DISABLED (--no-sandbox)"));
        assert!(!r.fully_enforced());
    }
}
