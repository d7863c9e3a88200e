//! The real `vibesync serve`, checked from outside: once it is serving, every
//! one of its threads runs with `no_new_privs` and a seccomp filter, as the
//! kernel reports in `/proc/<pid>/task/<tid>/status`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

#[test]
fn serve_is_confined_on_every_thread() {
    let exe = env!("CARGO_BIN_EXE_vibesync");
    let dir = tempfile::tempdir().unwrap();
    let port = vibesync::ports::free_loopback_udp_port().unwrap();
    let config = dir.path().join("vibesync.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nproject_root = {:?}\n\n[link]\nlisten = \"127.0.0.1:{port}\"\n\n[[engines]]\nname = \"ref\"\nkind = \"reference\"\n",
            dir.path().join("state").display().to_string(),
            dir.path().display().to_string(),
        ),
    )
    .unwrap();
    let init = Command::new(exe)
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let mut serve = Command::new(exe)
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = serve.id();
    // Wait until the host is serving: confinement, WAL, policies and QUIC
    // are all up by then.
    let stderr = BufReader::new(serve.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut log = String::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("MCP on stdio") {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not come up:\n{log}");
    }
    assert!(log.contains("sandbox applied (required)"), "{log}");

    let tasks: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(tasks.len() > 1, "the host runs tokio and wasmtime threads");
    for task in &tasks {
        let status = std::fs::read_to_string(task.join("status")).unwrap();
        assert_eq!(
            status_field(&status, "NoNewPrivs:"),
            Some("1"),
            "{}: {status}",
            task.display()
        );
        assert_eq!(
            status_field(&status, "Seccomp:"),
            Some("2"),
            "{}: {status}",
            task.display()
        );
    }

    // Closing the agent's side of stdio ends the MCP session and the host.
    drop(serve.stdin.take());
    let start = Instant::now();
    while serve.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            serve.kill().unwrap();
            panic!("serve did not exit after its MCP session ended");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
