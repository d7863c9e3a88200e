//! Real Blender (the `bpy` module from PyPI, in the repo's `.venv`) running
//! the add-on's code through the adapter SDK's C ABI, connected over real
//! QUIC to a real `vibesync serve`, beside a Unity-convention reference
//! engine, driven through MCP as an agent would. One cluster, scenarios in
//! order: every op applied and verified; a lying peer makes a transaction
//! roll back and Blender's datablocks come back exactly; a hostile script is
//! refused by the firewall; an artist's edit in Blender reaches the other
//! engine with equal hashes; a main-thread stall trips PANIC; the add-on
//! reconnects after a host restart and reconciles. Between the first two,
//! the agent asks for a preview (`render_preview`) and gets MCP image
//! content: a PNG that decodes fully and is not blank.
//!
//! `blender_transform_throughput` (ignored) measures verified transform
//! intents per second; its command is in docs/PERFORMANCE.md.

mod common;
mod mcp_client;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mcp_client::{Client, text};
use rmcp::ServiceExt;
use rmcp::model::CallToolResult;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use vibesync::config::{EngineConfig, EngineKind};

/// Waits are generous: the machine may be a loaded 2-core box.
const WAIT: Duration = Duration::from_secs(90);

struct Proc {
    child: Child,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    name: &'static str,
}

impl Proc {
    async fn wait_line(&mut self, prefix: &str) -> String {
        let fut = async {
            while let Some(line) = self.stdout.next_line().await.expect("read engine stdout") {
                eprintln!("[{}] {line}", self.name);
                if line.starts_with(prefix) {
                    return line;
                }
                // The add-on must not echo its own (or the host's) changes
                // back as artist edits: an unexpected event fails the test.
                assert!(
                    !line.starts_with("EVENT"),
                    "unexpected artist-edit event from {}: {line}",
                    self.name
                );
            }
            panic!("{} exited before printing `{prefix}`", self.name)
        };
        tokio::time::timeout(WAIT, fut)
            .await
            .unwrap_or_else(|_| panic!("{} did not print `{prefix}`", self.name))
    }

    async fn control(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write control line");
        stdin.flush().await.expect("flush");
    }

    /// `control` a reference engine, then wait until it has acted on the
    /// line: control lines are handled in order, so its answer to a `status`
    /// after it proves it (else an intent sent right away can get there first).
    async fn control_applied(&mut self, line: &str) {
        self.control(line).await;
        self.control("status").await;
        self.wait_line("STATUS").await;
    }
}

struct Cluster {
    dir: PathBuf,
    config: PathBuf,
    state: PathBuf,
    client: Option<Client>,
    engines: usize,
}

impl Cluster {
    /// `blender_kind`: `Blender` for the real add-on, `Reference` for the
    /// reference engine in Blender's convention (the benchmark's baseline).
    fn new(tag: &str, blender_kind: EngineKind, with_unity: bool) -> Cluster {
        let dir =
            std::env::temp_dir().join(format!("vibesync-blender-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state");
        let port = vibesync::ports::free_loopback_udp_port().unwrap();
        let config = dir.join("vibesync.toml");
        std::fs::write(
            &config,
            format!(
                "state_dir = {:?}\nproject_root = {:?}\n\n[link]\nlisten = \"127.0.0.1:{port}\"\n\n\
                 [[engines]]\nname = \"blender\"\nkind = \"{}\"\n{}",
                state.display().to_string(),
                dir.display().to_string(),
                blender_kind.as_str(),
                if with_unity {
                    "\n[[engines]]\nname = \"unity\"\nkind = \"reference\"\n"
                } else {
                    ""
                }
            ),
        )
        .unwrap();
        let mut engines = vec![EngineConfig {
            name: "blender".into(),
            kind: blender_kind,
        }];
        if with_unity {
            engines.push(EngineConfig {
                name: "unity".into(),
                kind: EngineKind::Reference,
            });
        }
        vibesync::init::init(
            &state,
            &engines,
            format!("127.0.0.1:{port}").parse().unwrap(),
            false,
        )
        .expect("vibesync init");
        Cluster {
            dir,
            config,
            state,
            client: None,
            engines: engines.len(),
        }
    }

    fn pairing(&self, engine: &str) -> PathBuf {
        vibesync::orchestrator::boot::pairing_path(&self.state, engine)
    }

    async fn start_host(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let mut serve = Command::new(common::BIN);
        serve.arg("serve").arg("--config").arg(&self.config);
        let (transport, _) = TokioChildProcess::builder(serve)
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn serve");
        self.client = Some(().serve(transport).await.expect("MCP handshake"));
    }

    async fn stop_host(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.cancel().await;
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("host running")
    }

    async fn call(&self, tool: &'static str, args: Value) -> CallToolResult {
        mcp_client::call(self.client(), tool, args).await
    }

    async fn ok(&self, tool: &'static str, args: Value) -> Value {
        mcp_client::ok(&self.call(tool, args).await, tool)
    }

    async fn version(&self) -> u64 {
        mcp_client::scene_version(self.client()).await
    }

    /// Submits ops and returns the transaction's final phase.
    async fn intent(&self, ops: Value, rationale: &str) -> (u64, String) {
        let version = self.version().await;
        let out = self
            .ok(
                "submit_intent",
                json!({"ops": ops, "rationale": rationale, "scene_version": version}),
            )
            .await;
        let tid = out["tid"].as_u64().expect("tid");
        (tid, self.wait_final(tid).await)
    }

    async fn wait_final(&self, tid: u64) -> String {
        mcp_client::wait_final(self.client(), tid).await.0
    }

    async fn wait_connected(&self) {
        let start = Instant::now();
        loop {
            let v = self.ok("list_engines", json!({})).await;
            if v["engines"].as_array().is_some_and(|e| {
                e.len() == self.engines && e.iter().all(|e| e["connected"] == true)
            }) {
                return;
            }
            assert!(start.elapsed() < WAIT, "engines did not connect: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn all_match(&self) -> Value {
        self.ok("verify_engine_state", json!({})).await
    }

    async fn resume(&self) {
        let start = Instant::now();
        loop {
            let out = Command::new(common::BIN)
                .arg("ctl")
                .arg("--config")
                .arg(&self.config)
                .arg("resume")
                .output()
                .await
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "resume refused: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// The PNG of a `render_preview` answer's image content.
fn preview_png(r: &CallToolResult) -> Vec<u8> {
    use base64::Engine as _;
    let image = r
        .content
        .iter()
        .find_map(|c| c.as_image())
        .unwrap_or_else(|| panic!("render_preview returned no image content: {r:?}"));
    assert_eq!(image.mime_type, "image/png");
    base64::engine::general_purpose::STANDARD
        .decode(&image.data)
        .expect("image data is base64")
}

/// Decodes a PNG fully: (width, height, distinct pixel values, percentage
/// of pixels that differ from the commonest value).
fn decode_png(png: &[u8]) -> (u32, u32, usize, f64) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("the preview is a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .expect("the preview's pixels decode");
    let bpp = info.line_size / info.width as usize;
    let mut counts = std::collections::HashMap::new();
    for y in 0..info.height as usize {
        let row = &buf[y * info.line_size..(y + 1) * info.line_size];
        for px in row.chunks(bpp) {
            *counts.entry(px.to_vec()).or_insert(0usize) += 1;
        }
    }
    let total = (info.width * info.height) as f64;
    let mode = counts.values().copied().max().unwrap_or(0) as f64;
    (
        info.width,
        info.height,
        counts.len(),
        100.0 * (total - mode) / total,
    )
}

fn spawn_blender(python: &Path, pairing: &Path) -> Proc {
    let harness = common::repo_root().join("adapters/blender/harness.py");
    let mut child = Command::new(python)
        .arg(harness)
        .arg("--pairing")
        .arg(pairing)
        .env("VIBESYNC_SDK_LIB", common::sdk_cdylib())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start headless Blender");
    let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    Proc {
        child,
        stdout,
        name: "blender",
    }
}

fn spawn_reference(pairing: &Path, convention: &str) -> Proc {
    let mut child = Command::new(common::BIN)
        .args(["reference-engine", "--convention", convention, "--pairing"])
        .arg(pairing)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start reference engine");
    let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    Proc {
        child,
        stdout,
        name: "unity",
    }
}

async fn dump(blender: &mut Proc) -> Value {
    blender.control("dump").await;
    let line = blender.wait_line("DUMP ").await;
    serde_json::from_str(&line["DUMP ".len()..]).expect("dump json")
}

fn object<'a>(scene: &'a Value, id: &str) -> &'a Value {
    scene["objects"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["id"] == id))
        .unwrap_or_else(|| panic!("no `{id}` in {scene}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blender_adapter_end_to_end() {
    let Some(python) = common::bpy_python() else {
        return;
    };
    let mut cl = Cluster::new("e2e", EngineKind::Blender, true);
    cl.start_host().await;
    let mut unity = spawn_reference(&cl.pairing("unity"), "unity");
    let mut blender = spawn_blender(&python, &cl.pairing("blender"));
    let version = blender.wait_line("BLENDER_VERSION").await;
    eprintln!("bpy.app.version: {version}");
    blender.wait_line("READY").await;
    cl.wait_connected().await;

    // Every op, each its own transaction, applied and verified on both.
    let t = json!({"translation": [1.0, 0.5, -2.0], "rotation": [0.0, 0.38268343, 0.0, 0.92387953], "scale": [1.0, 2.0, 1.0]});
    let steps = [
        json!([{"op": "create_object", "args": {"id": "cube", "name": "Cube", "kind": "mesh", "primitive": "cube", "transform": t}}]),
        json!([{"op": "create_object", "args": {"id": "ball", "name": "Ball", "kind": "mesh", "primitive": "uv_sphere"}},
               {"op": "create_object", "args": {"id": "rig", "name": "Rig", "kind": "empty"}},
               {"op": "create_object", "args": {"id": "cam", "name": "Cam", "kind": "camera", "parent": "rig"}},
               {"op": "create_object", "args": {"id": "key", "name": "Key", "kind": "light", "primitive": "spot"}}]),
        json!([{"op": "set_material", "args": {"id": "cube", "base_color": [0.2, 0.4, 0.6, 1.0], "roughness": 0.3, "metallic": 0.7, "emission": [1.0, 0.5, 0.0], "emission_strength": 2.0}}]),
        json!([{"op": "rename_object", "args": {"id": "ball", "name": "Planet"}}]),
        json!([{"op": "reparent_object", "args": {"id": "ball", "parent": "cube"}}]),
        json!([{"op": "set_transform", "args": {"id": "ball", "translation": [0.0, 3.0, 0.0], "scale": [0.5, 0.5, 0.5]}}]),
        json!([{"op": "select", "args": {"ids": ["cube"], "frame": true}}]),
        json!([{"op": "run_script", "args": {"language": "python", "code": "bpy.context.scene.frame_current = 7"}}]),
        json!([{"op": "delete_object", "args": {"id": "key"}}]),
    ];
    for ops in steps {
        let (tid, phase) = cl
            .intent(ops.clone(), "build the test set piece by piece")
            .await;
        assert_eq!(
            phase,
            "committed",
            "tid {tid} {ops}: {}",
            cl.ok("get_transaction", json!({"tid": tid})).await
        );
    }
    let v = cl.all_match().await;
    assert_eq!(v["all_match"], true, "{v}");

    // The agent looks at what it did: a preview rendered in Blender comes
    // back as MCP image content, a PNG that decodes and is not blank. It is
    // a read: nothing is sequenced.
    let version = cl.version().await;
    for (args, w, h) in [
        (json!({"width": 160, "height": 120}), 160, 120),
        (json!({"width": 96, "height": 64, "ids": ["cube"]}), 96, 64),
    ] {
        let r = cl.call("render_preview", args.clone()).await;
        assert_ne!(
            r.is_error,
            Some(true),
            "render_preview {args}: {}",
            text(&r)
        );
        let png = preview_png(&r);
        let (width, height, distinct, off_mode) = decode_png(&png);
        eprintln!(
            "preview {args}: {width}x{height}, {distinct} distinct pixels, {off_mode:.1}% differ from the commonest; {}",
            text(&r)
        );
        assert_eq!((width, height), (w, h), "{args}");
        assert!(
            distinct >= 8 && off_mode >= 1.0,
            "the preview {args} is blank: {distinct} distinct pixel values, {off_mode:.2}% of pixels differ from the commonest"
        );
    }
    for (args, rule) in [
        (json!({"ids": ["ghost"]}), "host.preview-ids"),
        (json!({"width": 4096}), "host.preview-size"),
        (json!({"engine": "unity"}), "host.preview"),
    ] {
        let r = cl.call("render_preview", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}: {}", text(&r));
        assert!(
            text(&r).contains(&format!("rule `{rule}`")) && text(&r).contains("Remedy:"),
            "{args}: {}",
            text(&r)
        );
    }
    assert_eq!(cl.version().await, version, "a preview sequences nothing");

    // A lying peer: the transaction rolls back on Blender too, exactly.
    let before = dump(&mut blender).await;
    unity.control_applied("wrong-hash on").await;
    let (tid, phase) = cl
        .intent(
            json!([{"op": "set_transform", "args": {"id": "cube", "translation": [5.0, 1.0, 1.0], "rotation": [0.5, 0.5, 0.5, 0.5]}},
                   {"op": "set_material", "args": {"id": "cube", "roughness": 0.9, "emission_strength": 7.0}},
                   {"op": "set_material", "args": {"id": "ball", "metallic": 1.0}},
                   {"op": "rename_object", "args": {"id": "rig", "name": "Boom"}},
                   {"op": "reparent_object", "args": {"id": "cam", "parent": null}},
                   {"op": "delete_object", "args": {"id": "cube"}},
                   {"op": "create_object", "args": {"id": "tmp", "name": "Tmp", "kind": "empty"}}]),
            "a change the unity engine will misreport",
        )
        .await;
    unity.control_applied("wrong-hash off").await;
    assert_eq!(phase, "rolled_back", "tid {tid}");
    let after = dump(&mut blender).await;
    assert_eq!(
        after, before,
        "Blender's datablocks after the rollback differ from before it"
    );
    let v = cl.all_match().await;
    assert_eq!(v["all_match"], true, "{v}");

    // A hostile script never reaches Blender: the firewall refuses it.
    let version = cl.version().await;
    let r = cl
        .call("run_script", json!({"language": "python", "code": "import bpy\nimport subprocess\nsubprocess.run(['sh'])", "rationale": "refresh the lighting preset", "scene_version": version}))
        .await;
    assert_eq!(r.is_error, Some(true), "{}", text(&r));
    assert!(text(&r).contains("firewall"), "{}", text(&r));
    assert_eq!(cl.version().await, version, "nothing was sequenced");

    // An artist moves the cube in Blender (Blender frame): the host and the
    // Unity-convention engine follow, hashes equal.
    blender.control("move cube 4 5 6").await;
    blender.wait_line("EDITED").await;
    blender.wait_line("EVENT").await;
    let start = Instant::now();
    loop {
        let scene = cl.ok("read_scene", json!({})).await;
        if object(&scene, "cube")["transform"]["translation"] == json!([4.0, 6.0, -5.0]) {
            break;
        }
        if start.elapsed() > WAIT {
            let journal = cl.ok("get_operation_journal", json!({"limit": 5})).await;
            panic!(
                "the artist edit did not reach the host: {}\njournal: {journal}",
                object(&scene, "cube")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let start = Instant::now();
    loop {
        let v = cl.all_match().await;
        if v["all_match"] == true {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "hashes disagree after the artist edit: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A main-thread stall > 5 s with work pending trips PANIC.
    blender.control("hang 9000").await;
    blender.wait_line("HANG").await;
    let hung_at = Instant::now();
    let version = cl.version().await;
    let _ = cl.call("rename_object", json!({"id": "cube", "name": "Crate", "rationale": "match the props list", "scene_version": version})).await;
    let start = Instant::now();
    loop {
        let scene = cl.ok("read_scene", json!({})).await;
        if !scene["panic"].is_null() {
            eprintln!(
                "PANIC {} ms after the stall began: {}",
                hung_at.elapsed().as_millis(),
                scene["panic"]
            );
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "no PANIC while Blender's main thread is stalled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    blender.wait_line("RESUMED").await;
    cl.resume().await;
    let (_, phase) = cl
        .intent(
            json!([{"op": "rename_object", "args": {"id": "cube", "name": "Crate"}}]),
            "match the props list",
        )
        .await;
    assert_eq!(phase, "committed");

    // Host restart: the add-on reconnects (new session) and reconciles.
    cl.stop_host().await;
    cl.start_host().await;
    blender.wait_line("READY").await;
    cl.wait_connected().await;
    let start = Instant::now();
    loop {
        let v = cl.all_match().await;
        if v["all_match"] == true {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "not reconciled after the restart: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, phase) = cl.intent(json!([{"op": "set_transform", "args": {"id": "cube", "translation": [0.0, 1.0, 0.0]}}]), "move the cube back after the host restart").await;
    assert_eq!(phase, "committed");

    blender.control("quit").await;
    unity.control("quit").await;
    cl.stop_host().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), blender.child.wait()).await;
    let _ = std::fs::remove_dir_all(&cl.dir);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct BenchResult {
    per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// `n` sequential set_transform intents through MCP against one engine named
/// `blender` (real Blender, or the reference engine in Blender's convention).
async fn bench_run(python: &Path, n: usize, real_blender: bool) -> BenchResult {
    let kind = if real_blender {
        EngineKind::Blender
    } else {
        EngineKind::Reference
    };
    let mut cl = Cluster::new(
        if real_blender {
            "bench-blender"
        } else {
            "bench-reference"
        },
        kind,
        false,
    );
    cl.start_host().await;
    let mut engine = if real_blender {
        spawn_blender(python, &cl.pairing("blender"))
    } else {
        spawn_reference(&cl.pairing("blender"), "blender")
    };
    engine.wait_line("READY").await;
    cl.wait_connected().await;
    let (_, phase) = cl.intent(json!([{"op": "create_object", "args": {"id": "bench", "name": "Bench", "kind": "mesh"}}]), "object the benchmark moves").await;
    assert_eq!(phase, "committed");
    let mut version = cl.version().await;
    let mut latencies = Vec::with_capacity(n);
    let mut tids = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let x = (i % 1000) as f64 / 100.0;
        let t0 = Instant::now();
        let out = cl
            .ok("set_transform", json!({"id": "bench", "translation": [x, 1.0, -x], "rationale": "move the benchmark cube along its track", "scene_version": version}))
            .await;
        latencies.push(t0.elapsed());
        version = out["scene_version"].as_u64().expect("scene_version");
        tids.push(out["tid"].as_u64().expect("tid"));
    }
    assert_eq!(cl.wait_final(*tids.last().unwrap()).await, "committed");
    let verified = start.elapsed();
    let mut committed = 0;
    for tid in &tids {
        committed += usize::from(cl.wait_final(*tid).await == "committed");
    }
    assert_eq!(committed, n, "every benchmark intent must commit");
    engine.control("quit").await;
    cl.stop_host().await;
    let _ = std::fs::remove_dir_all(&cl.dir);
    latencies.sort();
    BenchResult {
        per_s: n as f64 / verified.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    }
}

/// Verified transform intents per second through real Blender, against the
/// reference engine in Blender's convention through the same host in the
/// same run (the baseline). Ignored in the normal run; the command and the
/// numbers are in docs/PERFORMANCE.md. `VIBESYNC_BENCH_INTENTS` sets the
/// count per engine (default 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see docs/PERFORMANCE.md"]
async fn blender_transform_throughput() {
    let Some(python) = common::bpy_python() else {
        return;
    };
    let n: usize = std::env::var("VIBESYNC_BENCH_INTENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let reference = bench_run(&python, n, false).await;
    let blender = bench_run(&python, n, true).await;
    for (name, r) in [("reference", &reference), ("blender", &blender)] {
        println!(
            "BENCH {name:<9} n={n} verified_intents_per_s={:.1} submit_latency_p50={:.2}ms p99={:.2}ms",
            r.per_s,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3
        );
    }
    println!(
        "BENCH blender/reference throughput ratio {:.2}",
        blender.per_s / reference.per_s
    );
}
