//! Real kernel enforcement of the production profile: spawns `sandbox-probe`,
//! which applies `Profile::for_host(..).apply(..)` to itself and reports what
//! each of its threads could and could not do; reads `/proc/<pid>/status` of
//! every thread from outside while the probe waits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct Fixture {
    root: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    for d in ["state", "policies", "outside"] {
        std::fs::create_dir(root.path().join(d)).unwrap();
    }
    std::fs::write(root.path().join("policies/policy.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(
        root.path().join("outside/secret.txt"),
        b"the studio's API keys",
    )
    .unwrap();
    Fixture { root }
}

fn spawn(scenario: &str, root: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sandbox-probe"))
        .arg(scenario)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sandbox-probe")
}

fn first_line(child: &mut Child) -> Value {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("probe printed {line:?}: {e}"))
}

/// `NoNewPrivs` and `Seccomp` of every thread of `pid`, read from outside.
fn proc_status(pid: u32) -> Vec<(String, String, String)> {
    let mut out = vec![];
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap();
        let status = std::fs::read_to_string(task.path().join("status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        out.push((
            task.file_name().to_string_lossy().into_owned(),
            field("NoNewPrivs:"),
            field("Seccomp:"),
        ));
    }
    out
}

fn resume_and_wait(mut child: Child) {
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "probe exited with {status:?}");
}

fn errno(battery: &Value, attempt: &str) -> String {
    let a = &battery["attempts"][attempt];
    assert!(!a.is_null(), "{} did not try {attempt}", battery["label"]);
    if a["ok"] == true {
        "ok".into()
    } else {
        a["errno"].as_str().unwrap_or("?").into()
    }
}

const REFUSED: &[(&str, &str)] = &[
    ("read_secret", "EACCES"),
    ("read_etc_shadow", "EACCES"),
    ("list_etc", "EACCES"),
    ("write_outside", "EACCES"),
    ("write_policy_dir", "EACCES"),
    ("execve_bin_sh", "EPERM"),
    ("ptrace_traceme", "EPERM"),
    ("ptrace_attach_parent", "EPERM"),
    ("process_vm_readv", "EPERM"),
    ("raw_socket", "EPERM"),
    ("netlink_socket", "EPERM"),
    ("packet_socket", "EPERM"),
    ("icmp_ping_socket", "EPERM"),
    ("tcp_bind_unlisted", "EACCES"),
    ("tcp_connect_unlisted", "EACCES"),
    ("fork", "EPERM"),
    ("unshare_user_namespace", "EPERM"),
    ("mount_tmpfs", "EPERM"),
    ("bpf", "EPERM"),
    ("kill_parent_signal0", "EPERM"),
    ("unlisted_syscall_mlock", "ENOSYS"),
];

const ALLOWED: &[&str] = &[
    "state_write_fdatasync_rename",
    "read_policy",
    "tcp_bind_listed",
    "getrandom",
    "spawn_thread",
];

#[test]
fn confined_host_refuses_per_thread_and_keeps_working() {
    let f = fixture();
    let mut child = spawn("confined", f.root.path());
    let v = first_line(&mut child);
    let pid = child.id();
    let tasks = proc_status(pid);
    resume_and_wait(child);

    assert_eq!(v["applied"], true, "{}", v["summary"]);
    let report = &v["report"];
    assert_eq!(
        (report["status"].as_str(), report["mode"].as_str()),
        (Some("applied"), Some("require"))
    );
    assert_eq!(report["no_new_privs"], true);
    assert_eq!(report["threads_at_apply"], 1);
    assert_eq!(report["not_enforced"], serde_json::json!([]));
    let threads = v["threads"].as_array().unwrap();
    let labels: Vec<_> = threads
        .iter()
        .map(|t| t["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "main",
            "plain thread after apply",
            "tokio worker",
            "tokio blocking pool"
        ]
    );
    let mut tids: Vec<_> = threads.iter().map(|t| t["tid"].as_i64().unwrap()).collect();
    tids.sort();
    tids.dedup();
    assert_eq!(tids.len(), 4, "each battery ran on its own OS thread");

    let mut failures = vec![];
    for t in threads {
        for (attempt, want) in REFUSED {
            let got = errno(t, attempt);
            if got != *want {
                failures.push(format!(
                    "{} / {attempt}: want {want}, got {got} ({})",
                    t["label"], t["attempts"][attempt]
                ));
            }
        }
        for attempt in ALLOWED {
            if errno(t, attempt) != "ok" {
                failures.push(format!(
                    "{} / {attempt} must work: {}",
                    t["label"], t["attempts"][attempt]
                ));
            }
        }
        let nested = &t["attempts"]["spawn_thread"]["nested_read_secret"];
        if nested["errno"] != "EACCES" {
            failures.push(format!(
                "{} / thread spawned from it read the secret: {nested}",
                t["label"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let udp = &v["work"]["udp_quinn_udp"];
    assert_eq!(udp["ok"], true, "quinn-udp round trip: {udp}");
    assert!(udp["bytes"].as_u64().unwrap() >= 1200);
    let wasm = &v["work"]["wasm_jit"];
    assert_eq!(wasm["ok"], true, "wasmtime: {wasm}");
    assert_eq!(wasm["add"], 5);
    assert_eq!(wasm["boom_trap"], "UnreachableCodeReached");
    assert_eq!(wasm["oob_trap"], "MemoryOutOfBounds");

    // From outside: every thread (main, tokio workers, blocking pool, ...).
    assert!(tasks.len() >= 4, "{tasks:?}");
    for (tid, nnp, seccomp) in &tasks {
        assert_eq!(
            (nnp.as_str(), seccomp.as_str()),
            ("1", "2"),
            "thread {tid} of {pid}"
        );
    }
}

#[test]
fn thread_started_before_apply_is_why_require_refuses() {
    let f = fixture();
    let mut child = spawn("pre-thread", f.root.path());
    let v = first_line(&mut child);
    let tasks = proc_status(child.id());
    resume_and_wait(child);

    let require = v["require_error"]
        .as_str()
        .expect("Mode::Require must refuse");
    assert!(
        require.contains("2 threads are running") && require.contains("remedy"),
        "{require}"
    );
    let gaps = v["best_effort_gaps"].as_array().unwrap();
    assert!(
        gaps.iter()
            .any(|g| g["feature"] == "Landlock on threads started before the sandbox"),
        "{gaps:?}"
    );
    assert!(
        v["best_effort_summary"]
            .as_str()
            .unwrap()
            .contains("NOT ENFORCED")
    );

    let [main, old] = v["threads"].as_array().unwrap().as_slice() else {
        panic!("two batteries")
    };
    assert_eq!(errno(main, "read_secret"), "EACCES");
    // The documented limit: Landlock does not reach a thread that existed
    // before landlock_restrict_self on ABI < 8 ...
    assert_eq!(errno(old, "read_secret"), "ok");
    // ... while seccomp (TSYNC) and no_new_privs do.
    for (attempt, want) in [
        ("execve_bin_sh", "EPERM"),
        ("raw_socket", "EPERM"),
        ("ptrace_traceme", "EPERM"),
        ("unlisted_syscall_mlock", "ENOSYS"),
    ] {
        assert_eq!(errno(old, attempt), want, "{attempt}");
    }
    assert!(tasks.len() >= 2);
    for (tid, nnp, seccomp) in &tasks {
        assert_eq!((nnp.as_str(), seccomp.as_str()), ("1", "2"), "thread {tid}");
    }
}

#[test]
fn kernel_replacement_calls_kill_the_process() {
    let f = fixture();
    let child = spawn("kill", f.root.path());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"applied\":true"), "{stdout}");
    assert!(!stdout.contains("survived"), "{stdout}");
    assert_eq!(out.status.signal(), Some(libc::SIGSYS), "{:?}", out.status);
}

#[test]
fn control_without_sandbox_the_same_attempts_succeed() {
    let f = fixture();
    let child = spawn("unconfined", f.root.path());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut expected_ok = vec![
        "read_secret",
        "list_etc",
        "write_outside",
        "netlink_socket",
        "tcp_bind_unlisted",
        "unlisted_syscall_mlock",
    ];
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root (the CI machine) can do these too; the profile must stop root.
        expected_ok.extend(["read_etc_shadow", "raw_socket"]);
    }
    for attempt in expected_ok {
        assert_eq!(
            errno(&v, attempt),
            "ok",
            "{attempt}: {}",
            v["attempts"][attempt]
        );
    }
}
