//! Hot swap of a team policy while `vibesync serve` handles intents.
//!
//! The real host (confined `serve`, MCP on stdio, two reference engines over
//! QUIC) runs team policy `team-protect` v1 from its policy directory: an
//! agent may not rename an object whose name starts with `HERO_`. A
//! submitter renames the hero object again and again while the reviewer
//! approves v2 (which protects `KEEP_` instead) into the directory's lock and
//! the operator runs `vibesync ctl reload`. Every submission must get a
//! definite answer from a policy — denied by v1's rule or committed under v2
//! — never an error; once one is allowed, no later one is denied; and the
//! submission after `reload` returns is decided by v2. Then the decision log
//! (`vibesync policy decisions`) attributes each verdict to the module hash
//! that made it, with the swap between them.

mod mcp_client;
mod policy_support;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mcp_client::{Client, call, ok, scene_version, text, wait_final};
use policy_support::{BIN, Example, both, example, rust_template_variant, vibesync};
use rmcp::ServiceExt;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

/// What happened to one rename.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// Denied by team-protect v1's rule.
    Protected,
    /// Allowed and committed.
    Committed(u64),
}

/// Renames refused as stale and resubmitted.
static STALE_RETRIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn rename(client: &Client, i: u32) -> Answer {
    let r = loop {
        let version = scene_version(client).await;
        let r = call(
            client,
            "submit_intent",
            json!({
                "ops": [{"op": "rename_object", "args": {"id": "hero", "name": format!("HERO_Robot_{i}")}}],
                "rationale": "number the hero robot's takes so the editor can tell them apart",
                "scene_version": version,
            }),
        )
        .await;
        // Two writers rename the same object: one may commit between the
        // other's read and submit. Re-read and resubmit, as an agent would
        // (the policies decided the refused one too: it is in the log).
        if !(r.is_error == Some(true) && text(&r).contains("host.stale-scene-version")) {
            break r;
        }
        STALE_RETRIES.fetch_add(1, Ordering::Relaxed);
    };
    if r.is_error == Some(true) {
        let t = text(&r);
        assert!(
            t.contains("team-protect.protected"),
            "submission {i} failed for another reason: {t}"
        );
        return Answer::Protected;
    }
    let tid = ok(&r, "submit_intent")["tid"].as_u64().unwrap();
    let (phase, _) = wait_final(client, tid).await;
    assert_eq!(phase, "committed", "submission {i} (tid {tid})");
    Answer::Committed(tid)
}

fn spawn_engine(state: &Path, name: &str, convention: &str) -> tokio::process::Child {
    tokio::process::Command::new(BIN)
        .arg("reference-engine")
        .arg("--pairing")
        .arg(vibesync::orchestrator::boot::pairing_path(state, name))
        .arg("--convention")
        .arg(convention)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start a reference engine")
}

#[test]
fn team_policy_swaps_while_serving_and_the_next_intent_sees_it() {
    let v1 = example(Example::Rust).expect("the Rust template always builds");
    let tmp = tempfile::tempdir().unwrap();
    let v2 = rust_template_variant(&tmp.path().join("v2-src"), "KEEP_");
    let project = tmp.path().join("project");
    let policies = project.join("policies.d");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::copy(&v1, policies.join("team-protect.wasm")).unwrap();
    let o = vibesync(&[
        &"policy",
        &"approve",
        &policies,
        &"team-protect",
        &"--reviewer",
        &"alice",
    ]);
    assert!(o.status.success(), "{}", both(&o));

    let state = project.join("state");
    let port = vibesync::ports::free_loopback_udp_port().unwrap();
    let config = project.join("vibesync.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nproject_root = {:?}\n\n[link]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[engines]]\nname = \"blender\"\nkind = \"reference\"\n\n[[engines]]\nname = \"unity\"\nkind = \"reference\"\n\n\
             [policies]\ndir = \"policies.d\"\n",
            state.display().to_string(),
            project.display().to_string(),
        ),
    )
    .unwrap();
    let init = std::process::Command::new(BIN)
        .args(["init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", both(&init));

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut serve = tokio::process::Command::new(BIN);
        serve.arg("serve").arg("--config").arg(&config);
        let log = std::fs::File::create(project.join("serve.log")).unwrap();
        let (transport, _) = TokioChildProcess::builder(serve).stderr(Stdio::from(log)).spawn().unwrap();
        let client: Arc<Client> = Arc::new(().serve(transport).await.expect("MCP handshake"));
        let _blender = spawn_engine(&state, "blender", "blender");
        let _unity = spawn_engine(&state, "unity", "unity");
        let start = Instant::now();
        loop {
            let r = call(&client, "list_engines", json!({})).await;
            let e = ok(&r, "list_engines")["engines"].clone();
            if e.as_array().is_some_and(|e| e.len() == 2 && e.iter().all(|e| e["connected"] == true)) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "engines did not connect: {e}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let version = scene_version(&client).await;
        let r = call(
            &client,
            "submit_intent",
            json!({
                "ops": [{"op": "create_object", "args": {"id": "hero", "name": "HERO_Robot", "kind": "mesh", "primitive": "cube"}}],
                "rationale": "place the hero robot for the opening shot",
                "scene_version": version,
            }),
        )
        .await;
        let tid = ok(&r, "submit_intent")["tid"].as_u64().unwrap();
        assert_eq!(wait_final(&client, tid).await.0, "committed");
        assert_eq!(rename(&client, 0).await, Answer::Protected, "v1 protects HERO_ objects");

        // The submitter: renames back to back until told to stop.
        let stop = Arc::new(AtomicBool::new(false));
        let submitter = {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                let mut i = 1;
                while !stop.load(Ordering::Relaxed) {
                    answers.push(rename(&client, i).await);
                    i += 1;
                }
                answers
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Review and swap while it runs.
        std::fs::copy(&v2, policies.join("team-protect.wasm")).unwrap();
        let o = vibesync(&[&"policy", &"approve", &policies, &"team-protect", &"--reviewer", &"bob"]);
        assert!(o.status.success(), "{}", both(&o));
        let reload = tokio::process::Command::new(BIN).arg("ctl").arg("--config").arg(&config).arg("reload").output().await.unwrap();
        assert!(reload.status.success(), "ctl reload: {}", both(&reload));
        // The next intent is decided by v2.
        let after = rename(&client, 10_000).await;
        assert!(matches!(after, Answer::Committed(_)), "the first intent after reload: {after:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        let answers = submitter.await.unwrap();

        let first_allowed = answers.iter().position(|a| matches!(a, Answer::Committed(_)));
        let first_allowed = first_allowed.unwrap_or_else(|| panic!("nothing was allowed after the swap: {answers:?}"));
        assert!(
            answers[first_allowed..].iter().all(|a| matches!(a, Answer::Committed(_))),
            "a v1 verdict came after a v2 one: {answers:?}"
        );
        assert!(first_allowed > 0, "the submitter saw no v1 verdict before the swap: {answers:?}");

        // The decision log: v1's denies, the swap, v2's allows, by hash.
        let sha = |p: &Path| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
        };
        let (h1, h2) = (sha(&v1), sha(&v2));
        let wal = state.join("wal");
        let o = vibesync(&[&"policy", &"decisions", &"--wal", &wal, &"--policy", &"team-protect", &"--json"]);
        assert!(o.status.success(), "{}", both(&o));
        let log: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
        let swap = log.iter().position(|l| l["kind"] == "swap").unwrap_or_else(|| panic!("no swap in {log:?}"));
        assert_eq!(log[swap]["old_sha256"], h1);
        assert_eq!(log[swap]["new_sha256"], h2);
        let before: Vec<&Value> = log[..swap].iter().collect();
        let after: Vec<&Value> = log[swap + 1..].iter().collect();
        assert!(before.iter().all(|d| d["module_sha256"] == h1), "{before:?}");
        // v1 allowed creating the hero, then denied every rename of it.
        assert_eq!(before[0]["verdict"], "allow", "{before:?}");
        assert!(before.len() > 2, "{before:?}");
        assert!(before[1..].iter().all(|d| d["verdict"] == "deny" && d["rules"][0] == "team-protect.protected"), "{before:?}");
        assert!(!after.is_empty() && after.iter().all(|d| d["module_sha256"] == h2 && d["verdict"] == "allow"), "{after:?}");
        let committed = answers.iter().filter(|a| matches!(a, Answer::Committed(_))).count() + 1;
        let decided = committed + STALE_RETRIES.load(Ordering::Relaxed);
        assert_eq!(after.len(), decided, "one v2 decision per committed or stale-refused rename");
        // The text form and the module filter.
        let o = vibesync(&[&"policy", &"decisions", &"--wal", &wal, &"--module", &&h2[..12]]);
        let out = policy_support::stdout(&o);
        assert!(out.contains(&format!("swap {} -> {}", &h1[..12], &h2[..12])), "{out}");
        assert!(out.contains(&format!("{decided} decisions, 1 swaps")), "{out}");

        drop(client);
    });
}
