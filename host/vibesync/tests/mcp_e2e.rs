//! The MCP front door driven by a real MCP client (the Python SDK) over
//! stdio, against `vibesync serve --fake-core` launched as a child process.

mod common;

use std::process::Command;

use serde_json::Value;

/// Runs `tests/mcp/agent.py SCENARIO` and returns what it observed.
fn run_agent(scenario: &str, extra: &[&str]) -> Option<Value> {
    let python = common::mcp_python()?;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/agent.py");
    let out = Command::new(python)
        .arg(script)
        .arg(common::BIN)
        .arg(&state)
        .arg(scenario)
        .args(extra)
        .output()
        .expect("run agent.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "agent.py failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_str(stdout.lines().last().expect("agent output")).expect("agent JSON"))
}

const WRITE_TOOLS: [&str; 10] = [
    "submit_intent",
    "validate_intent",
    "create_object",
    "delete_object",
    "rename_object",
    "reparent_object",
    "set_transform",
    "set_material",
    "select_objects",
    "run_script",
];

fn tool<'a>(out: &'a Value, name: &str) -> &'a Value {
    out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

#[test]
fn mcp_session_against_fake_core() {
    let Some(out) = run_agent("main", &["--fake-verify-step-ms", "100"]) else {
        return;
    };
    assert_eq!(out["server_name"], "vibesync");

    // Tool listing and schemas.
    let names: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in [
        "read_engine_state",
        "read_scene",
        "list_engines",
        "get_transaction",
        "get_operation_journal",
        "verify_engine_state",
    ]
    .iter()
    .chain(WRITE_TOOLS.iter())
    {
        assert!(
            names.contains(expected),
            "missing tool {expected} in {names:?}"
        );
    }
    for name in WRITE_TOOLS {
        let schema = &tool(&out, name)["input_schema"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: {schema}"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            required.contains(&"rationale") && required.contains(&"scene_version"),
            "{name} requires {required:?}"
        );
        assert_eq!(
            schema["properties"]["scene_version"]["type"], "integer",
            "{name}"
        );
    }
    assert_eq!(
        tool(&out, "read_scene")["annotations"]["readOnlyHint"],
        true
    );
    assert_eq!(
        tool(&out, "delete_object")["annotations"]["destructiveHint"],
        true
    );
    assert_eq!(
        tool(&out, "set_transform")["annotations"]["readOnlyHint"],
        false
    );
    assert!(tool(&out, "submit_intent")["output_schema"]["properties"]["tid"].is_object());
    let create = &tool(&out, "create_object")["input_schema"];
    assert!(
        create["required"].to_string().contains("\"kind\""),
        "{create}"
    );
    assert!(
        create.to_string().contains("\"light\""),
        "kind enum lists light: {create}"
    );

    // A write without rationale is refused with the rule, the field and the remedy.
    let refused = &out["no_rationale"];
    assert_eq!(refused["is_error"], true);
    let text = refused["text"].as_str().unwrap();
    assert!(
        text.contains("rule `host.rationale-required` on field `/rationale`"),
        "{text}"
    );
    assert!(text.contains("Remedy: add a `rationale`"), "{text}");
    let text = out["no_scene_version"]["text"].as_str().unwrap();
    assert!(
        text.contains("host.scene-version-required") && text.contains("call read_scene"),
        "{text}"
    );
    let text = out["stale"]["text"].as_str().unwrap();
    assert_eq!(out["stale"]["is_error"], true);
    assert!(
        text.contains("rule `host.stale-scene-version` on field `/scene_version`"),
        "{text}"
    );

    // A provisional answer that says so.
    let create = &out["create"];
    assert_eq!(create["is_error"], false);
    assert_eq!(create["structured"]["phase"], "provisional");
    assert!(
        create["structured"]["note"]
            .as_str()
            .unwrap()
            .contains("verification pending — see get_transaction")
    );
    assert_eq!(create["structured"]["acks"].as_array().unwrap().len(), 2);

    // With a progress token the call reports verification and ends committed.
    let progress = out["progress"].as_array().unwrap();
    assert!(progress.len() >= 3, "{progress:?}");
    assert!(
        progress[0]["message"]
            .as_str()
            .unwrap()
            .contains("provisionally committed")
    );
    assert!(
        progress
            .iter()
            .any(|p| p["message"].as_str().unwrap().contains("verified unity")),
        "{progress:?}"
    );
    assert_eq!(
        out["move_with_progress"]["structured"]["phase"],
        "committed"
    );

    // A denial is a tool error naming rule and field.
    let denied = &out["denied_script"];
    assert_eq!(denied["is_error"], true);
    let text = denied["text"].as_str().unwrap();
    assert!(text.starts_with("denied (tid "), "{text}");
    assert!(
        text.contains("rule `firewall.python-import` on field `/ops/0/args/code`"),
        "{text}"
    );
    let text = out["zero_scale"]["text"].as_str().unwrap();
    assert!(
        text.contains("rule `validation.zero-scale` on field `/ops/0/args/scale/1`"),
        "{text}"
    );

    // A dry run returns verdicts and applies nothing.
    assert_eq!(out["validate"]["structured"]["verdict"], "allow");
    assert_eq!(
        out["validate"]["structured"]["scene_version"],
        out["move_with_progress"]["structured"]["scene_version"]
    );

    // Escalation: the agent is told to wait for a human; ctl approves it.
    let text = out["escalated"]["text"].as_str().unwrap();
    assert!(text.starts_with("escalated (tid "), "{text}");
    assert!(text.contains("vibesync ctl approve"), "{text}");
    assert_eq!(out["ctl_approve"]["code"], 0, "{}", out["ctl_approve"]);
    let tx = &out["after_approve"]["structured"];
    assert_eq!(tx["phase"], "committed", "{tx}");
    assert!(
        tx["phases"].to_string().contains("approved by operator:"),
        "{tx}"
    );
    assert!(
        out["journal"]["structured"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["phase"] == "escalated")
    );
    assert_eq!(out["verify"]["structured"]["all_match"], true);
}

#[test]
fn panic_refuses_writes_and_only_ctl_resumes() {
    let Some(out) = run_agent(
        "panic",
        &["--fake-panic", "unity:missed heartbeats for 5000 ms"],
    ) else {
        return;
    };
    let names = out["tool_names"].to_string();
    for operator_only in ["resume", "approve", "deny", "unlock", "lock", "reload"] {
        assert!(
            !names.contains(&format!("\"{operator_only}")),
            "agent has a `{operator_only}` tool: {names}"
        );
    }
    let during = &out["during_panic"];
    assert_eq!(during["is_error"], true);
    let text = during["text"].as_str().unwrap();
    assert!(text.starts_with("panic: rule `host.panic`"), "{text}");
    assert!(
        text.contains("engine `unity` missed heartbeats for 5000 ms"),
        "{text}"
    );
    assert!(text.contains("vibesync ctl resume"), "{text}");
    assert!(
        out["engines_during_panic"]["structured"]["engines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["frozen"] == true)
    );
    assert!(
        out["agent_resume"]["exception"]
            .as_str()
            .unwrap()
            .contains("tool not found"),
        "{}",
        out["agent_resume"]
    );
    assert!(out["agent_resume"]["structured"].is_null());
    assert!(
        out["ctl_status"]["stdout"]
            .as_str()
            .unwrap()
            .contains("missed heartbeats"),
        "{}",
        out["ctl_status"]
    );
    assert_eq!(out["ctl_resume"]["code"], 0, "{}", out["ctl_resume"]);
    assert_eq!(
        out["after_resume"]["is_error"], false,
        "{}",
        out["after_resume"]
    );
    assert_eq!(out["after_resume"]["structured"]["phase"], "provisional");
}
