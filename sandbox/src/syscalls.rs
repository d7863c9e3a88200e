//! The seccomp policy as plain data: which system calls the host may make,
//! which it is refused and how, and why — per group, so the report and the
//! compiled filters come from the same table.
//!
//! Nothing here touches the kernel. [`SyscallPolicy::effective`] computes the
//! verdict the kernel will return for a call (including argument
//! refinements), which is what the report prints and the unit tests check;
//! `seccomp.rs` turns the same table into BPF.

use std::fmt;

use serde::Serialize;

/// What the kernel does with a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The call runs.
    Allow,
    /// The call fails with `EPERM`: a named, deliberate refusal. The host
    /// stays alive and the caller logs the error.
    Eperm,
    /// The call fails with `ENOSYS`, as if the kernel did not have it. The
    /// default for every call not named in the table, so libc falls back to
    /// an older call we do filter (`clone3` -> `clone`).
    Enosys,
    /// The whole process is killed with `SIGSYS`. Only for calls no code path
    /// of the host can make, whose only use is to attack the kernel.
    KillProcess,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "allow",
            Verdict::Eperm => "errno EPERM",
            Verdict::Enosys => "errno ENOSYS",
            Verdict::KillProcess => "kill process (SIGSYS)",
        })
    }
}

/// One system call of this architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sys {
    /// `SYS_name` as libc spells it.
    raw: &'static str,
    pub nr: i64,
}

impl Sys {
    pub fn name(&self) -> &'static str {
        self.raw.strip_prefix("SYS_").unwrap_or(self.raw)
    }
}

macro_rules! sys {
    ($($id:ident),* $(,)?) => { vec![$(Sys { raw: stringify!($id), nr: libc::$id }),*] };
}

/// Width of a compared argument: `int` arguments are compared on their low
/// 32 bits (the kernel truncates them too), pointers and `unsigned long`
/// flags on all 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Width {
    Dword,
    Qword,
}

/// A comparison on one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cmp {
    Eq,
    Ne,
    /// `(arg & mask) == value`
    MaskedEq {
        mask: u64,
    },
}

/// `arg<index> <cmp> value`, with the value's symbolic name for reviewers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Cond {
    pub arg: u8,
    pub width: Width,
    pub cmp: Cmp,
    pub value: u64,
    pub label: &'static str,
}

impl Cond {
    fn matches(&self, args: &[u64; 6]) -> bool {
        let raw = args[usize::from(self.arg)];
        let a = match self.width {
            Width::Dword => raw & 0xffff_ffff,
            Width::Qword => raw,
        };
        match self.cmp {
            Cmp::Eq => a == self.value,
            Cmp::Ne => a != self.value,
            Cmp::MaskedEq { mask } => a & mask == self.value,
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cmp {
            Cmp::Eq => write!(f, "arg{} == {}", self.arg, self.label),
            Cmp::Ne => write!(f, "arg{} != {}", self.arg, self.label),
            Cmp::MaskedEq { mask } => write!(f, "arg{} & {:#x} == {}", self.arg, mask, self.label),
        }
    }
}

/// A named set of calls that share a verdict and a reason.
#[derive(Clone, Debug)]
pub struct Group {
    pub name: &'static str,
    pub verdict: Verdict,
    /// Who needs these calls (allowed groups) or why they are refused.
    pub rationale: &'static str,
    pub calls: Vec<Sys>,
}

/// Argument checks on an allowed call: when any rule (a conjunction of
/// conditions) matches, the call is refused with `EPERM` instead.
#[derive(Clone, Debug)]
pub struct Refinement {
    pub call: Sys,
    pub deny_when: Vec<Vec<Cond>>,
    pub rationale: &'static str,
}

/// The whole seccomp policy.
#[derive(Clone, Debug)]
pub struct SyscallPolicy {
    pub groups: Vec<Group>,
    pub refinements: Vec<Refinement>,
}

/// The verdict for every call the table names, for the report.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SyscallEntry {
    pub name: &'static str,
    pub nr: i64,
    pub group: &'static str,
    pub verdict: Verdict,
    /// Argument rules under which an allowed call is refused with EPERM.
    pub eperm_when: Vec<String>,
}

/// Verdict for calls the table does not name.
pub const DEFAULT_VERDICT: Verdict = Verdict::Enosys;

impl SyscallPolicy {
    /// The production table. `own_pid` pins `tgkill` to this process.
    pub fn production(own_pid: u32) -> Self {
        Self {
            groups: groups(),
            refinements: refinements(own_pid),
        }
    }

    /// The verdict the stacked filters produce for `nr(args)`.
    pub fn effective(&self, nr: i64, args: &[u64; 6]) -> Verdict {
        let Some(group) = self
            .groups
            .iter()
            .find(|g| g.calls.iter().any(|s| s.nr == nr))
        else {
            return DEFAULT_VERDICT;
        };
        if group.verdict == Verdict::Allow {
            let refused = self
                .refinements
                .iter()
                .filter(|r| r.call.nr == nr)
                .any(|r| {
                    r.deny_when
                        .iter()
                        .any(|rule| rule.iter().all(|c| c.matches(args)))
                });
            if refused {
                return Verdict::Eperm;
            }
        }
        group.verdict
    }

    /// Every named call with its verdict, in table order.
    pub fn entries(&self) -> Vec<SyscallEntry> {
        self.groups
            .iter()
            .flat_map(|g| {
                g.calls.iter().map(move |s| SyscallEntry {
                    name: s.name(),
                    nr: s.nr,
                    group: g.name,
                    verdict: g.verdict,
                    eperm_when: self
                        .refinements
                        .iter()
                        .filter(|r| r.call.nr == s.nr)
                        .flat_map(|r| r.deny_when.iter())
                        .map(|rule| {
                            rule.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(" && ")
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// Calls with the given verdict (before argument refinements).
    pub fn calls_with(&self, verdict: Verdict) -> impl Iterator<Item = Sys> + '_ {
        self.groups
            .iter()
            .filter(move |g| g.verdict == verdict)
            .flat_map(|g| g.calls.iter().copied())
    }
}

fn dword(arg: u8, cmp: Cmp, value: u64, label: &'static str) -> Cond {
    Cond {
        arg,
        width: Width::Dword,
        cmp,
        value,
        label,
    }
}

fn qword(arg: u8, cmp: Cmp, value: u64, label: &'static str) -> Cond {
    Cond {
        arg,
        width: Width::Qword,
        cmp,
        value,
        label,
    }
}

#[rustfmt::skip]
fn groups() -> Vec<Group> {
    use Verdict::*;
    let mut g = vec![
        Group { name: "memory", verdict: Allow,
            rationale: "allocator, thread stacks, wasmtime JIT (W^X flips with mprotect), linear-memory \
                        reservations and copy-on-write module images (memfd_create), membarrier for \
                        instruction-cache coherence after code publication",
            calls: sys![SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise,
                        SYS_memfd_create, SYS_membarrier] },
        Group { name: "threads and signals", verdict: Allow,
            rationale: "std/tokio/rayon threads (clone is refined below), futex waits, glibc thread \
                        start-up (set_robust_list, rseq, set_tid_address), wasmtime trap handling \
                        (SIGSEGV/SIGILL/SIGBUS handlers on an alternate stack, sigreturn), thread naming",
            calls: sys![SYS_clone, SYS_futex, SYS_set_robust_list, SYS_get_robust_list, SYS_rseq,
                        SYS_set_tid_address, SYS_gettid, SYS_getpid, SYS_getppid, SYS_sched_yield,
                        SYS_sched_getaffinity, SYS_exit, SYS_exit_group, SYS_tgkill, SYS_rt_sigprocmask,
                        SYS_rt_sigaction, SYS_rt_sigreturn, SYS_sigaltstack, SYS_restart_syscall,
                        SYS_prctl, SYS_getrandom] },
        Group { name: "time", verdict: Allow,
            rationale: "timers and timestamps (vDSO fallbacks), tokio's timer wheel sleeps",
            calls: sys![SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_nanosleep,
                        SYS_clock_nanosleep] },
        Group { name: "event loop", verdict: Allow,
            rationale: "tokio/mio readiness (epoll, eventfd wakers, signal pipes)",
            calls: sys![SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_epoll_pwait2,
                        SYS_eventfd2, SYS_pipe2, SYS_ppoll] },
        Group { name: "network", verdict: Allow,
            rationale: "quinn over UDP (sendmsg/sendmmsg with UDP_SEGMENT GSO, recvmsg/recvmmsg with \
                        GRO/ECN/PKTINFO control messages, setsockopt), loopback TCP the config names, \
                        the operator's unix socket; socket() and socketpair() are refined below, TCP \
                        ports are restricted by Landlock",
            calls: sys![SYS_socket, SYS_socketpair, SYS_bind, SYS_listen, SYS_accept4, SYS_connect,
                        SYS_getsockname, SYS_getpeername, SYS_setsockopt, SYS_getsockopt, SYS_sendto,
                        SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown] },
        Group { name: "files", verdict: Allow,
            rationale: "the WAL (append, fdatasync, atomic rename), policy and cache reads, policy \
                        directory watching (inotify); which paths is Landlock's job",
            calls: sys![SYS_openat, SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64,
                        SYS_pwrite64, SYS_lseek, SYS_close, SYS_fstat, SYS_newfstatat, SYS_statx,
                        SYS_fsync, SYS_fdatasync, SYS_renameat, SYS_renameat2, SYS_unlinkat,
                        SYS_mkdirat, SYS_getdents64, SYS_readlinkat, SYS_fcntl, SYS_flock,
                        SYS_ftruncate, SYS_faccessat, SYS_faccessat2, SYS_getcwd,
                        SYS_dup, SYS_dup3, SYS_fchmod, SYS_ioctl, SYS_inotify_init1, SYS_inotify_add_watch,
                        SYS_inotify_rm_watch, SYS_statfs, SYS_fstatfs] },
        Group { name: "process queries", verdict: Allow,
            rationale: "read-only questions libc and std ask (ids, limits, uname, sysinfo); prlimit64 \
                        is refined to reading this process's limits",
            calls: sys![SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_uname, SYS_prlimit64,
                        SYS_sysinfo, SYS_getpriority, SYS_sched_getparam, SYS_sched_getscheduler] },
        Group { name: "new thread API (fallback)", verdict: Enosys,
            rationale: "clone3 passes its flags in memory seccomp cannot read; ENOSYS makes glibc \
                        fall back to clone, whose flags are checked",
            calls: sys![SYS_clone3] },
        Group { name: "program execution", verdict: Eperm,
            rationale: "the host never runs another program; a compromised host must not either",
            calls: sys![SYS_execve, SYS_execveat] },
        Group { name: "other processes", verdict: Eperm,
            rationale: "debugging, reading or stealing from other processes, and signalling them \
                        (tgkill is pinned to this process below)",
            calls: sys![SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev, SYS_kcmp,
                        SYS_pidfd_open, SYS_pidfd_getfd, SYS_pidfd_send_signal, SYS_process_madvise,
                        SYS_process_mrelease, SYS_kill, SYS_tkill, SYS_rt_sigqueueinfo,
                        SYS_rt_tgsigqueueinfo, SYS_perf_event_open] },
        Group { name: "mounts and namespaces", verdict: Eperm,
            rationale: "changing what the filesystem or the process's namespaces look like",
            calls: sys![SYS_mount, SYS_umount2, SYS_pivot_root, SYS_chroot, SYS_move_mount,
                        SYS_open_tree, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
                        SYS_mount_setattr, SYS_unshare, SYS_setns, SYS_open_by_handle_at,
                        SYS_name_to_handle_at, SYS_quotactl, SYS_swapon, SYS_swapoff] },
        Group { name: "kernel attack surface", verdict: Eperm,
            rationale: "interfaces that program or bypass the kernel's checks (eBPF, io_uring runs \
                        operations without seccomp, userfaultfd stalls the kernel), and changes to \
                        this confinement itself",
            calls: sys![SYS_bpf, SYS_userfaultfd, SYS_io_uring_setup, SYS_io_uring_enter,
                        SYS_io_uring_register, SYS_seccomp, SYS_landlock_create_ruleset,
                        SYS_landlock_add_rule, SYS_landlock_restrict_self, SYS_personality,
                        SYS_add_key, SYS_request_key, SYS_keyctl, SYS_fanotify_init] },
        Group { name: "identity and machine state", verdict: Eperm,
            rationale: "changing users, capabilities, clocks, host name, kernel log or accounting",
            calls: sys![SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid,
                        SYS_setresgid, SYS_setfsuid, SYS_setfsgid, SYS_setgroups, SYS_capset,
                        SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime, SYS_adjtimex,
                        SYS_sethostname, SYS_setdomainname, SYS_syslog, SYS_acct, SYS_vhangup,
                        SYS_mknodat] },
        Group { name: "ownership and permission bits", verdict: Eperm,
            rationale: "Landlock has no right for chmod/chown, so a path-based call would reach every \
                        file the host's user owns (as root: every file); fchmod on a descriptor \
                        Landlock let the host open stays allowed (std::fs::copy needs it)",
            calls: sys![SYS_fchmodat, SYS_fchmodat2, SYS_fchown, SYS_fchownat] },
        Group { name: "kernel replacement", verdict: KillProcess,
            rationale: "loading kernel code, replacing the kernel, rebooting: no host code path calls \
                        these, so a call is proof of compromise; killing stops the attacker before a \
                        second attempt, and the WAL's recovery makes a kill safe for the data",
            calls: sys![SYS_kexec_load, SYS_kexec_file_load, SYS_init_module, SYS_finit_module,
                        SYS_delete_module, SYS_reboot] },
    ];
    arch_specific(&mut g);
    g
}

/// Legacy x86_64 entry points: glibc and std still use some of them (e.g.
/// `rename`, `poll`), the rest are refused like their `*at` successors.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
fn arch_specific(groups: &mut [Group]) {
    let add = |groups: &mut [Group], name: &str, calls: Vec<Sys>| {
        groups.iter_mut().find(|g| g.name == name).expect("group exists").calls.extend(calls);
    };
    add(groups, "files", sys![SYS_open, SYS_stat, SYS_lstat, SYS_access, SYS_rename, SYS_unlink,
                              SYS_mkdir, SYS_rmdir, SYS_readlink, SYS_dup2, SYS_inotify_init]);
    add(groups, "event loop", sys![SYS_epoll_wait, SYS_epoll_create, SYS_poll]);
    add(groups, "time", sys![SYS_time]);
    add(groups, "process queries", sys![SYS_getrlimit, SYS_arch_prctl]);
    add(groups, "other processes", sys![SYS_fork, SYS_vfork]);
    add(groups, "identity and machine state", sys![SYS_mknod, SYS_uselib]);
    add(groups, "ownership and permission bits", sys![SYS_chmod, SYS_chown, SYS_lchown]);
    add(groups, "kernel replacement", sys![SYS_iopl, SYS_ioperm]);
}

#[cfg(not(target_arch = "x86_64"))]
fn arch_specific(_: &mut [Group]) {}

const NAMESPACE_FLAGS: [(u64, &str); 8] = [
    (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
    (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
    (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
    (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
    (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
    (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
    (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
    (0x80, "CLONE_NEWTIME"),
];

/// `PAGEMAP_SCAN` (Linux 6.7, `linux/fs.h`); the libc crate does not name it.
const PAGEMAP_SCAN: u64 = (3 << 30) | (96 << 16) | ((b'f' as u64) << 8) | 16;

/// ioctl requests the runtime stack issues on its own descriptors.
// The request type is u64 on glibc x86_64 but c_int on musl: keep the casts.
#[allow(clippy::unnecessary_cast)]
const IOCTLS: [(u64, &str); 7] = [
    (libc::FIONBIO as u64, "FIONBIO"),
    // wasmtime's pooling allocator asks the kernel which pages a policy
    // instance dirtied (on its own /proc/self/pagemap) and resets only those:
    // half the CPU of the madvise reset per evaluation. It reads page flags
    // of this process and changes nothing. _IOWR('f', 16, struct
    // pm_scan_arg), 96 bytes.
    (PAGEMAP_SCAN, "PAGEMAP_SCAN"),
    (libc::FIOCLEX as u64, "FIOCLEX"),
    (libc::FIONCLEX as u64, "FIONCLEX"),
    (libc::FIONREAD as u64, "FIONREAD"),
    (libc::TCGETS as u64, "TCGETS"),
    (libc::TIOCGWINSZ as u64, "TIOCGWINSZ"),
];

/// prctl options: thread names (std, tokio), anonymous-mapping names (glibc),
/// and reading this confinement's own state.
const PRCTLS: [(u64, &str); 5] = [
    (libc::PR_SET_NAME as u64, "PR_SET_NAME"),
    (libc::PR_GET_NAME as u64, "PR_GET_NAME"),
    (libc::PR_SET_VMA as u64, "PR_SET_VMA"),
    (libc::PR_GET_NO_NEW_PRIVS as u64, "PR_GET_NO_NEW_PRIVS"),
    (libc::PR_GET_SECCOMP as u64, "PR_GET_SECCOMP"),
];

/// Socket types are compared under this mask (`SOCK_NONBLOCK`/`SOCK_CLOEXEC`
/// live above it).
const SOCK_TYPE_MASK: u64 = 0xf;

fn refinements(own_pid: u32) -> Vec<Refinement> {
    let sys1 = |v: Vec<Sys>| v[0];
    let mut socket_rules = vec![vec![
        dword(0, Cmp::Ne, libc::AF_UNIX as u64, "AF_UNIX"),
        dword(0, Cmp::Ne, libc::AF_INET as u64, "AF_INET"),
        dword(0, Cmp::Ne, libc::AF_INET6 as u64, "AF_INET6"),
    ]];
    for (family, fname) in [
        (libc::AF_INET as u64, "AF_INET"),
        (libc::AF_INET6 as u64, "AF_INET6"),
    ] {
        // Only stream and datagram sockets...
        for t in (0..=SOCK_TYPE_MASK)
            .filter(|t| *t != libc::SOCK_STREAM as u64 && *t != libc::SOCK_DGRAM as u64)
        {
            socket_rules.push(vec![
                dword(0, Cmp::Eq, family, fname),
                dword(
                    1,
                    Cmp::MaskedEq {
                        mask: SOCK_TYPE_MASK,
                    },
                    t,
                    sock_type_label(t),
                ),
            ]);
        }
        // ...of plain TCP or UDP (no ICMP "ping" datagrams, SCTP, MPTCP, UDP-Lite).
        socket_rules.push(vec![
            dword(0, Cmp::Eq, family, fname),
            dword(2, Cmp::Ne, 0, "0 (default protocol)"),
            dword(2, Cmp::Ne, libc::IPPROTO_TCP as u64, "IPPROTO_TCP"),
            dword(2, Cmp::Ne, libc::IPPROTO_UDP as u64, "IPPROTO_UDP"),
        ]);
    }
    let mut clone_rules: Vec<Vec<Cond>> = NAMESPACE_FLAGS
        .iter()
        .map(|&(flag, name)| vec![qword(0, Cmp::MaskedEq { mask: flag }, flag, name)])
        .collect();
    clone_rules.push(vec![qword(
        0,
        Cmp::MaskedEq {
            mask: libc::CLONE_THREAD as u64,
        },
        0,
        "0 (no CLONE_THREAD: a new process)",
    )]);
    vec![
        Refinement {
            call: sys1(sys![SYS_socket]),
            deny_when: socket_rules,
            rationale: "only AF_UNIX, and AF_INET/AF_INET6 stream or datagram sockets of TCP/UDP: \
                        no netlink, packet, raw, ICMP or other families",
        },
        Refinement {
            call: sys1(sys![SYS_socketpair]),
            deny_when: vec![vec![dword(0, Cmp::Ne, libc::AF_UNIX as u64, "AF_UNIX")]],
            rationale: "socket pairs are local (tokio signal handling)",
        },
        Refinement {
            call: sys1(sys![SYS_clone]),
            deny_when: clone_rules,
            rationale: "threads only: no new processes, no new namespaces",
        },
        Refinement {
            call: sys1(sys![SYS_ioctl]),
            deny_when: vec![
                IOCTLS
                    .iter()
                    .map(|&(v, n)| dword(1, Cmp::Ne, v, n))
                    .collect(),
            ],
            rationale: "non-blocking/close-on-exec flags, readable byte count, terminal probing for log colours",
        },
        Refinement {
            call: sys1(sys![SYS_prctl]),
            deny_when: vec![
                PRCTLS
                    .iter()
                    .map(|&(v, n)| dword(0, Cmp::Ne, v, n))
                    .collect(),
            ],
            rationale: "naming threads and mappings, reading own confinement state",
        },
        Refinement {
            call: sys1(sys![SYS_tgkill]),
            deny_when: vec![vec![dword(
                0,
                Cmp::Ne,
                u64::from(own_pid),
                "getpid() at apply time",
            )]],
            rationale: "signals to this process's own threads only (abort, pthread_kill)",
        },
        Refinement {
            call: sys1(sys![SYS_prlimit64]),
            deny_when: vec![
                vec![dword(0, Cmp::Ne, 0, "0 (this process)")],
                vec![qword(2, Cmp::Ne, 0, "NULL (read only)")],
            ],
            rationale: "reading this process's limits; changing limits or reading another process's is refused",
        },
    ]
}

fn sock_type_label(t: u64) -> &'static str {
    const LABELS: [&str; 16] = [
        "0",
        "SOCK_STREAM",
        "SOCK_DGRAM",
        "SOCK_RAW",
        "SOCK_RDM",
        "SOCK_SEQPACKET",
        "SOCK_DCCP",
        "7",
        "8",
        "9",
        "SOCK_PACKET",
        "11",
        "12",
        "13",
        "14",
        "15",
    ];
    LABELS[(t & SOCK_TYPE_MASK) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nr(name: &str) -> i64 {
        let p = SyscallPolicy::production(1234);
        p.groups
            .iter()
            .flat_map(|g| &g.calls)
            .find(|s| s.name() == name)
            .map(|s| s.nr)
            .expect(name)
    }

    fn verdict(name: &str, args: [u64; 6]) -> Verdict {
        SyscallPolicy::production(1234).effective(nr(name), &args)
    }

    #[test]
    fn every_call_has_exactly_one_group() {
        let p = SyscallPolicy::production(1);
        let mut seen = std::collections::BTreeMap::new();
        for g in &p.groups {
            for s in &g.calls {
                if let Some(other) = seen.insert(s.nr, g.name) {
                    panic!("{} is in both {other:?} and {:?}", s.name(), g.name);
                }
            }
        }
    }

    #[test]
    fn refinements_only_narrow_allowed_calls() {
        let p = SyscallPolicy::production(1);
        for r in &p.refinements {
            let g = p
                .groups
                .iter()
                .find(|g| g.calls.contains(&r.call))
                .expect("refined call is in the table");
            assert_eq!(
                g.verdict,
                Verdict::Allow,
                "{} is refined but not allowed",
                r.call.name()
            );
            assert!(
                r.deny_when.iter().all(|rule| !rule.is_empty()),
                "empty rule would refuse {} always",
                r.call.name()
            );
        }
    }

    #[test]
    fn named_dangerous_calls_are_refused() {
        let zero = [0; 6];
        for name in [
            "execve",
            "execveat",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "mount",
            "umount2",
            "pivot_root",
            "bpf",
            "unshare",
            "setns",
            "io_uring_setup",
            "seccomp",
            "userfaultfd",
            "fchmodat",
            "fchownat",
        ] {
            assert_eq!(verdict(name, zero), Verdict::Eperm, "{name}");
        }
        for name in [
            "kexec_load",
            "kexec_file_load",
            "init_module",
            "finit_module",
            "delete_module",
            "reboot",
        ] {
            assert_eq!(verdict(name, zero), Verdict::KillProcess, "{name}");
        }
        assert_eq!(verdict("clone3", zero), Verdict::Enosys);
    }

    #[test]
    fn unnamed_calls_get_the_default() {
        let p = SyscallPolicy::production(1);
        assert_eq!(p.effective(libc::SYS_mlock, &[0; 6]), Verdict::Enosys);
        assert_eq!(p.effective(100_000, &[0; 6]), Verdict::Enosys);
    }

    #[test]
    fn socket_families_and_types() {
        let s = |d: i32, t: i32, p: i32| verdict("socket", [d as u64, t as u64, p as u64, 0, 0, 0]);
        let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
        assert_eq!(
            s(libc::AF_INET, libc::SOCK_DGRAM | flags, 0),
            Verdict::Allow
        );
        assert_eq!(
            s(libc::AF_INET6, libc::SOCK_DGRAM, libc::IPPROTO_UDP),
            Verdict::Allow
        );
        assert_eq!(
            s(libc::AF_INET, libc::SOCK_STREAM | flags, libc::IPPROTO_TCP),
            Verdict::Allow
        );
        assert_eq!(s(libc::AF_UNIX, libc::SOCK_STREAM, 0), Verdict::Allow);
        assert_eq!(
            s(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            Verdict::Eperm
        );
        assert_eq!(s(libc::AF_INET6, libc::SOCK_RAW | flags, 0), Verdict::Eperm);
        assert_eq!(
            s(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP),
            Verdict::Eperm
        );
        assert_eq!(
            s(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP),
            Verdict::Eperm
        );
        assert_eq!(s(libc::AF_NETLINK, libc::SOCK_RAW, 0), Verdict::Eperm);
        assert_eq!(s(libc::AF_PACKET, libc::SOCK_DGRAM, 0), Verdict::Eperm);
        // The high half of an int argument is ignored, as by the kernel.
        assert_eq!(
            s(libc::AF_INET, libc::SOCK_DGRAM, 0),
            verdict("socket", [libc::AF_INET as u64 | 1 << 40, 2, 0, 0, 0, 0])
        );
    }

    #[test]
    fn clone_makes_threads_only() {
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(verdict("clone", [thread, 0, 0, 0, 0, 0]), Verdict::Allow);
        assert_eq!(
            verdict("clone", [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            Verdict::Eperm,
            "fork"
        );
        assert_eq!(
            verdict(
                "clone",
                [thread | libc::CLONE_NEWUSER as u64, 0, 0, 0, 0, 0]
            ),
            Verdict::Eperm
        );
        assert_eq!(
            verdict("clone", [thread | libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
            Verdict::Eperm
        );
    }

    #[test]
    #[allow(clippy::unnecessary_cast)] // ioctl request types differ across libc targets
    fn small_refinements() {
        assert_eq!(verdict("tgkill", [1234, 5, 6, 0, 0, 0]), Verdict::Allow);
        assert_eq!(verdict("tgkill", [1, 5, 9, 0, 0, 0]), Verdict::Eperm);
        assert_eq!(
            verdict("prlimit64", [0, 7, 0, 0x1000, 0, 0]),
            Verdict::Allow
        );
        assert_eq!(
            verdict("prlimit64", [0, 7, 0x1000, 0, 0, 0]),
            Verdict::Eperm
        );
        assert_eq!(
            verdict("prlimit64", [1, 7, 0, 0x1000, 0, 0]),
            Verdict::Eperm
        );
        assert_eq!(
            verdict("ioctl", [3, libc::FIONBIO as u64, 0, 0, 0, 0]),
            Verdict::Allow
        );
        assert_eq!(
            verdict("ioctl", [3, libc::TIOCSTI as u64, 0, 0, 0, 0]),
            Verdict::Eperm
        );
        assert_eq!(PAGEMAP_SCAN, 0xc060_6610);
        assert_eq!(
            verdict("ioctl", [3, PAGEMAP_SCAN, 0, 0, 0, 0]),
            Verdict::Allow
        );
        assert_eq!(
            verdict("prctl", [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]),
            Verdict::Allow
        );
        assert_eq!(
            verdict("prctl", [libc::PR_SET_DUMPABLE as u64, 1, 0, 0, 0, 0]),
            Verdict::Eperm
        );
    }

    #[test]
    fn entries_show_refinements_in_words() {
        let e = SyscallPolicy::production(1).entries();
        let socket = e.iter().find(|e| e.name == "socket").unwrap();
        assert!(
            socket.eperm_when.iter().any(|r| r.contains("SOCK_RAW")),
            "{:?}",
            socket.eperm_when
        );
        let exec = e.iter().find(|e| e.name == "execve").unwrap();
        assert_eq!(
            (exec.verdict, exec.group),
            (Verdict::Eperm, "program execution")
        );
    }
}
