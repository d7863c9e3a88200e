//! The MCP front door of the REAL host, end to end: `vibesync serve` (real
//! core: policies, WAL, sequencer, confinement) launched as a child by the
//! official Python MCP SDK over stdio, with two reference engines connected
//! over real QUIC. `tests/mcp/real_agent.py` drives and records; the
//! assertions are here.

mod common;

use std::process::Command;

use serde_json::Value;

/// A fresh project with two paired reference engines; returns its config.
fn project(dir: &std::path::Path) -> std::path::PathBuf {
    let port = vibesync::ports::free_loopback_udp_port().unwrap();
    let config = dir.join("vibesync.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nproject_root = {:?}\n\n[link]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[engines]]\nname = \"blender\"\nkind = \"reference\"\n\n[[engines]]\nname = \"unity\"\nkind = \"reference\"\n",
            dir.join("state").display().to_string(),
            dir.display().to_string(),
        ),
    )
    .unwrap();
    let init = Command::new(common::BIN)
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    config
}

fn run_agent(scenario: &str) -> Option<Value> {
    let python = common::mcp_python()?;
    let tmp = tempfile::tempdir().unwrap();
    let config = project(tmp.path());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/real_agent.py");
    let out = Command::new(python)
        .arg(script)
        .arg(common::BIN)
        .arg(&config)
        .arg(tmp.path().join("state"))
        .arg(scenario)
        .output()
        .expect("run real_agent.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "real_agent.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_str(stdout.lines().last().expect("agent output")).expect("agent JSON"))
}

fn cube(scene: &Value) -> &Value {
    scene["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "cube")
        .expect("the cube")
}

#[test]
fn real_core_over_mcp_and_quic() {
    let Some(out) = run_agent("main") else { return };
    assert_eq!(out["server_name"], "vibesync");

    // Tool listing and schemas.
    let tools = out["tools"].as_array().unwrap();
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tool {name}"))
    };
    let submit = tool("submit_intent");
    let required: Vec<&str> = submit["input_schema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["ops", "rationale", "scene_version"] {
        assert!(
            required.contains(&field),
            "submit_intent requires {required:?}"
        );
    }
    assert!(
        submit["output_schema"]["properties"]["tid"].is_object(),
        "{submit}"
    );
    assert_eq!(submit["annotations"]["destructiveHint"], true);
    assert_eq!(tool("read_scene")["annotations"]["readOnlyHint"], true);
    assert_eq!(
        tool("verify_engine_state")["annotations"]["readOnlyHint"],
        true
    );
    for operator_only in ["resume", "approve", "unlock", "lock"] {
        assert!(
            tools.iter().all(|t| t["name"] != operator_only),
            "agent must not have `{operator_only}`"
        );
    }

    // A write without a rationale is refused, naming the field.
    let no_rationale = &out["no_rationale"];
    assert_eq!(no_rationale["is_error"], true, "{no_rationale}");
    assert!(
        no_rationale["text"]
            .as_str()
            .unwrap()
            .contains("rule `host.rationale-required` on field `/rationale`"),
        "{no_rationale}"
    );

    // Provisionally committed, then committed, and verified on both engines.
    let create = &out["create"];
    assert_eq!(create["is_error"], false, "{create}");
    assert_eq!(create["structured"]["phase"], "provisional", "{create}");
    assert!(
        create["structured"]["note"]
            .as_str()
            .unwrap()
            .contains("provisionally committed"),
        "{create}"
    );
    assert_eq!(
        create["structured"]["acks"].as_array().unwrap().len(),
        2,
        "both engines acked: {create}"
    );
    assert_eq!(
        out["create_final"]["phase"], "committed",
        "{}",
        out["create_final"]
    );
    assert_eq!(
        out["verify_after_create"]["structured"]["all_match"], true,
        "{}",
        out["verify_after_create"]
    );

    // A stale scene version is refused with the rule and the remedy.
    let stale = out["stale"]["text"].as_str().unwrap();
    assert_eq!(out["stale"]["is_error"], true);
    assert!(
        stale.contains("rule `host.stale-scene-version` on field `/scene_version`"),
        "{stale}"
    );
    assert!(
        stale.contains("read_scene"),
        "the remedy says to read the scene: {stale}"
    );

    // A lying engine: provisional answer, then rolled back on both engines.
    assert_eq!(
        out["lie"]["structured"]["phase"], "provisional",
        "{}",
        out["lie"]
    );
    let lie = &out["lie_final"];
    assert_eq!(lie["phase"], "rolled_back", "{lie}");
    assert!(lie["why"].as_str().unwrap().contains("unity"), "{lie}");
    assert_eq!(
        cube(&out["scene_after_lie"])["transform"],
        cube(&out["scene_before_lie"])["transform"]
    );
    assert_eq!(
        out["scene_after_lie"]["version"],
        out["scene_before_lie"]["version"]
    );
    let verify = &out["verify_after_lie"]["structured"];
    assert_eq!(
        verify["all_match"], true,
        "both engines back to the canonical state: {verify}"
    );
    let engines: Vec<&str> = verify["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["blender", "unity"]);
}

#[test]
fn real_core_panic_refusal_text() {
    let Some(out) = run_agent("panic") else {
        return;
    };
    assert!(
        !out["scene_in_panic"]["panic"].is_null(),
        "{}",
        out["scene_in_panic"]
    );
    let refusal = &out["in_panic"];
    assert_eq!(refusal["is_error"], true, "{refusal}");
    let text = refusal["text"].as_str().unwrap();
    for needle in [
        "panic",
        "host.panic",
        "PANIC",
        "blender",
        "vibesync ctl resume",
        "Do not retry",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in: {text}");
    }
    // The write sent while blender hung never committed.
    let during = &out["during_hang"];
    assert!(
        during["is_error"] == true || during["structured"]["phase"] != "committed",
        "{during}"
    );
}
