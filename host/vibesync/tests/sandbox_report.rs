//! `vibesync sandbox report --config FILE`: the profile `serve --config FILE`
//! would apply, derived from the same configuration (paths and ports).

mod common;

use std::process::Command;

use serde_json::Value;

fn report(config: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(common::BIN)
        .args(["sandbox", "report", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn report_follows_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let state = root.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(root.join("team-policies")).unwrap();
    let config = root.join("vibesync.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nproject_root = {:?}\n\n[link]\nlisten = \"127.0.0.1:47123\"\n\n\
             [policies]\ndir = \"team-policies\"\n\n[mcp]\nhttp = \"127.0.0.1:47124\"\n\n\
             [metrics]\nhttp = \"127.0.0.1:47125\"\n\n[[engines]]\nname = \"blender\"\nkind = \"reference\"\n",
            state.display().to_string(),
            root.display().to_string(),
        ),
    )
    .unwrap();

    let out = report(&config, &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = json.to_string();
    let landlock = &json["landlock"];
    assert_eq!(landlock["udp_listen"], "127.0.0.1:47123", "{landlock}");
    assert_eq!(
        landlock["counts"]["tcp_bind"], 2,
        "MCP HTTP and metrics ports: {landlock}"
    );
    assert_eq!(landlock["counts"]["tcp_connect"], 0, "{landlock}");
    for port in [47124, 47125] {
        assert!(
            text.contains(&format!("\"port\":{port}")),
            "bind rule for {port}: {landlock}"
        );
    }
    assert!(
        text.contains(&format!("{:?}", state.display().to_string())),
        "state dir rule: {text}"
    );
    assert!(
        text.contains(&format!(
            "{:?}",
            root.join("team-policies").display().to_string()
        )),
        "policy dir rule: {text}"
    );

    // The text report names the same paths, readable.
    let out = report(&config, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains(&format!("READ-WRITE {}", state.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "read-only  {}",
            root.join("team-policies").display()
        )),
        "{text}"
    );
    assert!(text.contains("TCP bind port 47124"), "{text}");
}

#[test]
fn report_refuses_a_config_whose_state_dir_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("vibesync.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nproject_root = {:?}\n\n[[engines]]\nname = \"blender\"\nkind = \"reference\"\n",
            dir.path().join("nowhere").display().to_string(),
            dir.path().display().to_string(),
        ),
    )
    .unwrap();
    let out = report(&config, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state_dir") && err.contains("vibesync init"),
        "{err}"
    );
}
