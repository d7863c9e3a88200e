//! The link over real QUIC between separate processes: this test process is
//! the host (`vibesync-link`), each engine is a spawned
//! `vibesync-reference-engine` talking through the adapter SDK.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;
use vibesync_canonical::{ObjectKind, Op, Quantum, Scene, Transform};
use vibesync_link::{Link, LinkConfig, LinkError, LinkEvent, PanicState};
use vibesync_protocol::{CommandBody, RotationPolicy};

struct Host {
    link: Link,
    dir: tempfile::TempDir,
}

async fn host(engines: &[&str], rotation: RotationPolicy, timeout: Duration) -> Host {
    host_with(engines, |cfg| {
        cfg.rotation = rotation;
        cfg.command_timeout = timeout;
    })
    .await
}

async fn host_with(engines: &[&str], configure: impl FnOnce(&mut LinkConfig)) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = LinkConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("state"));
    for e in engines {
        cfg.engines
            .insert(e.to_string(), vibesync_link::random_key());
    }
    configure(&mut cfg);
    Host {
        link: Link::start(cfg).await.unwrap(),
        dir,
    }
}

impl Host {
    fn pairing(&self, engine: &str) -> PathBuf {
        let p = self.dir.path().join(format!("{engine}.json"));
        vibesync_link::write_pairing(&p, &self.link.pairing(engine, "reference").unwrap()).unwrap();
        p
    }

    async fn wait_connected(&self, engine: &str, sessions: u64) {
        let t0 = Instant::now();
        while !self
            .link
            .engine(engine)
            .is_some_and(|e| e.connected && e.sessions >= sessions)
        {
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "engine {engine} did not connect: {:?}",
                self.link.handshake_failures()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Engine {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Engine {
    fn spawn(pairing: &Path, args: &[&str]) -> Engine {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_vibesync-reference-engine"))
            .arg("--pairing")
            .arg(pairing)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Engine {
            child,
            stdin,
            lines,
        }
    }

    fn ctl(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn expect(&self, prefix: &str, within: Duration) -> String {
        let t0 = Instant::now();
        loop {
            let left = within
                .checked_sub(t0.elapsed())
                .unwrap_or_else(|| panic!("no `{prefix}` line within {within:?}"));
            let l = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no `{prefix}` line within {within:?}"));
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    fn status(&mut self) -> serde_json::Value {
        self.ctl("status");
        let l = self.expect("STATUS ", Duration::from_secs(5));
        serde_json::from_str(&l["STATUS ".len()..]).unwrap()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create(id: &str, t: [f64; 3]) -> Op {
    Op::CreateObject {
        id: Some(id.into()),
        name: id.into(),
        kind: ObjectKind::Mesh,
        primitive: None,
        parent: None,
        transform: Some(Transform {
            translation: t,
            ..Transform::IDENTITY
        }),
    }
}

fn move_to(id: &str, t: [f64; 3]) -> Op {
    Op::SetTransform {
        id: id.into(),
        translation: Some(t),
        rotation: None,
        scale: None,
    }
}

async fn apply(
    link: &Link,
    engine: &str,
    tid: u64,
    ops: Vec<Op>,
) -> Result<serde_json::Value, LinkError> {
    link.send(engine, CommandBody::Apply { tid, ops }).await
}

async fn snapshot_hash(link: &Link, engine: &str) -> String {
    link.send(engine, CommandBody::Snapshot).await.unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_commands_and_conventions() {
    let h = host(
        &["blender-1", "unity-1"],
        RotationPolicy::default(),
        Duration::from_secs(10),
    )
    .await;
    let _b = Engine::spawn(&h.pairing("blender-1"), &["--convention", "blender"]);
    let _u = Engine::spawn(&h.pairing("unity-1"), &["--convention", "unity"]);
    h.wait_connected("blender-1", 1).await;
    h.wait_connected("unity-1", 1).await;

    let mut canonical = Scene::new(Quantum::default());
    let ops = vec![
        create("obj-1", [1.0, 2.0, 3.0]),
        Op::SetTransform {
            id: "obj-1".into(),
            translation: None,
            rotation: Some([0.0, 0.3826834, 0.0, 0.9238795]),
            scale: Some([1.0, 2.0, 0.5]),
        },
    ];
    canonical.apply_all(&ops).unwrap();
    let want = canonical.hash_of(["obj-1".to_string()].iter()).to_hex();
    for e in ["blender-1", "unity-1"] {
        let r = apply(&h.link, e, 1, ops.clone()).await.unwrap();
        assert_eq!(r["hash"], want, "{e} converts to and from its convention");
        assert_eq!(r["touched"], json!(["obj-1"]));
        let v = h
            .link
            .send(
                e,
                CommandBody::Verify {
                    tid: 1,
                    ids: vec!["obj-1".into()],
                },
            )
            .await
            .unwrap();
        assert_eq!(v["hash"], want);
        assert_eq!(snapshot_hash(&h.link, e).await, canonical.hash().to_hex());
        // An engine error comes back with its code.
        match apply(&h.link, e, 2, vec![create("obj-1", [0.0; 3])]).await {
            Err(LinkError::Engine { code, .. }) => assert_eq!(code, "already-exists"),
            other => panic!("{other:?}"),
        }
    }
    let info = h.link.engine("unity-1").unwrap();
    assert_eq!(
        (
            info.kind.as_str(),
            info.frames_refused.total(),
            info.sessions
        ),
        ("reference", 0, 1)
    );
    // Heartbeats arrive every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let info = h.link.engine("unity-1").unwrap();
    assert!(
        vibesync_link_now() - info.last_heartbeat_ms < 1500,
        "{info:?}"
    );
}

fn vibesync_link_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_under_load_loses_no_command() {
    let rotation = RotationPolicy {
        rotate_after_ms: 300,
        rotate_after_frames: 40,
        overlap_ms: 5_000,
    };
    let h = host(&["e"], rotation, Duration::from_secs(10)).await;
    let _e = Engine::spawn(&h.pairing("e"), &["--convention", "unity"]);
    h.wait_connected("e", 1).await;
    let mut canonical = Scene::new(Quantum::default());
    let first = vec![create("obj-1", [0.0; 3])];
    canonical.apply_all(&first).unwrap();
    apply(&h.link, "e", 1, first).await.unwrap();

    // 8 concurrent senders, 600 commands in all, keys rotating every 40 frames.
    let n = 600u64;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let link = h.link.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in (w..n).step_by(8) {
                let r = link
                    .send(
                        "e",
                        CommandBody::Verify {
                            tid: 100 + i,
                            ids: vec!["obj-1".into()],
                        },
                    )
                    .await;
                r.unwrap();
                ok += 1;
            }
            ok
        }));
    }
    // Mutations interleaved on the same stream, in order.
    for i in 0..50u64 {
        let op = move_to("obj-1", [i as f64, 0.5, -1.0]);
        canonical.apply(&op).unwrap();
        apply(&h.link, "e", 2 + i, vec![op]).await.unwrap();
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, n);
    let info = h.link.engine("e").unwrap();
    assert!(
        info.rotations >= 10,
        "keys rotated {} times",
        info.rotations
    );
    assert_eq!(
        info.frames_refused.total(),
        0,
        "{:?}",
        info.frames_refused.nonzero()
    );
    assert_eq!(info.sessions, 1);
    assert_eq!(snapshot_hash(&h.link, "e").await, canonical.hash().to_hex());
    eprintln!(
        "rotation: {} rotations, key id {}, {} frames accepted",
        info.rotations, info.key_id, info.frames_accepted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_commands_travel_batched_and_the_single_frame_path_still_works() {
    for batch in [true, false] {
        let h = host_with(&["e"], |cfg| cfg.batch_frames = batch).await;
        let _e = Engine::spawn(&h.pairing("e"), &[]);
        h.wait_connected("e", 1).await;
        let before = h.link.engine("e").unwrap().frames_accepted;
        let n = 20;
        let mut bodies = Vec::new();
        for i in 0..n {
            let id = format!("obj-{i}");
            bodies.push(CommandBody::Apply {
                tid: i + 1,
                ops: vec![create(&id, [i as f64, 0.0, 0.0])],
            });
            // Right behind its apply, in the same frame when batched: the
            // read-back must see the applied object.
            bodies.push(CommandBody::Verify {
                tid: i + 1,
                ids: vec![id.as_str().into()],
            });
        }
        let waiting = h.link.send_many("e", bodies).await;
        for (k, p) in waiting.into_iter().enumerate() {
            let v = p.unwrap().wait().await.unwrap();
            assert!(v["hash"].is_string(), "{v}");
            if k % 2 == 1 {
                assert_eq!(v["objects"].as_array().map(Vec::len), Some(1), "{v}");
            }
        }
        let frames = h.link.engine("e").unwrap().frames_accepted - before;
        // Heartbeats count too (one a second).
        if batch {
            assert!(
                frames <= n,
                "{frames} frames for {} replies: not batched",
                2 * n
            );
        } else {
            assert!(frames >= 2 * n, "{frames} frames for {} replies", 2 * n);
        }
        let info = h.link.engine("e").unwrap();
        assert_eq!(
            info.frames_refused.total(),
            0,
            "{:?}",
            info.frames_refused.nonzero()
        );
        eprintln!(
            "batch {batch}: {frames} frames from the engine for {} replies",
            2 * n
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_refused_and_counted_while_the_session_serves() {
    let h = host(&["e"], RotationPolicy::default(), Duration::from_secs(10)).await;
    let mut e = Engine::spawn(&h.pairing("e"), &[]);
    h.wait_connected("e", 1).await;
    apply(&h.link, "e", 1, vec![create("obj-1", [0.0; 3])])
        .await
        .unwrap();

    let cases = [
        ("replay", "replay"),
        ("stale", "stale"),
        ("future", "future"),
        ("reorder", "out-of-order"),
        ("bad-tag", "bad-tag"),
        ("oversize", "oversize"),
        ("deep", "too-deep"),
        ("garbage", "undecodable"),
        ("bad-batch", "bad-body"),
    ];
    for (i, (attack, code)) in cases.iter().enumerate() {
        e.ctl(&format!("attack {attack}"));
        let t0 = Instant::now();
        while h.link.engine("e").unwrap().frames_refused.get(code) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "`{attack}` was not refused as `{code}`: {:?}",
                h.link.engine("e").unwrap().frames_refused.nonzero()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The session keeps serving honest frames after each refusal.
        let r = apply(
            &h.link,
            "e",
            10 + i as u64,
            vec![move_to("obj-1", [i as f64, 0.0, 0.0])],
        )
        .await
        .unwrap();
        assert!(r["hash"].is_string());
    }
    let info = h.link.engine("e").unwrap();
    for (_, code) in cases {
        assert_eq!(
            info.frames_refused.get(code),
            1,
            "{code}: {:?}",
            info.frames_refused.nonzero()
        );
    }
    assert_eq!(info.frames_refused.total(), cases.len() as u64);
    assert_eq!(info.sessions, 1, "no reconnect was needed");
    assert_eq!(e.status()["sessions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificate_and_wrong_secret_never_get_a_session() {
    let h = host(
        &["e", "honest"],
        RotationPolicy::default(),
        Duration::from_secs(10),
    )
    .await;
    let good = h.link.pairing("e", "reference").unwrap();

    let mut wrong_cert = good.clone();
    wrong_cert.cert_sha256 = "00".repeat(32);
    let p1 = h.dir.path().join("wrong-cert.json");
    vibesync_link::write_pairing(&p1, &wrong_cert).unwrap();
    let mut wrong_secret = good.clone();
    wrong_secret.bootstrap_secret = "11".repeat(32);
    let p2 = h.dir.path().join("wrong-secret.json");
    vibesync_link::write_pairing(&p2, &wrong_secret).unwrap();
    assert_eq!(
        std::fs::metadata(&p2).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let mut bad1 = Engine::spawn(&p1, &[]);
    let mut bad2 = Engine::spawn(&p2, &[]);
    let honest = Engine::spawn(&h.pairing("honest"), &[]);
    h.wait_connected("honest", 1).await;
    let t0 = Instant::now();
    loop {
        let f = h.link.handshake_failures();
        if f.get("tls").copied().unwrap_or(0) >= 1 && f.get("bad-proof").copied().unwrap_or(0) >= 1
        {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{f:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.link.engine("e").is_none(),
        "no session for either bad adapter"
    );
    let settled = |e: &mut Engine| {
        let t0 = Instant::now();
        loop {
            let s = e.status();
            if !s["last_error"].is_null() || t0.elapsed() > Duration::from_secs(5) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let s1 = settled(&mut bad1);
    assert!(
        s1["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("fingerprint"),
        "{s1}"
    );
    let s2 = settled(&mut bad2);
    assert!(
        s2["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("bad-proof"),
        "{s2}"
    );
    assert_eq!(s2["state"], "connecting");
    // The honest engine is served throughout.
    apply(&h.link, "honest", 1, vec![create("obj-1", [0.0; 3])])
        .await
        .unwrap();
    drop(honest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_engine_trips_panic_and_recovery_needs_reconcile_and_resume() {
    let h = host(
        &["hung", "healthy"],
        RotationPolicy::default(),
        Duration::from_secs(3),
    )
    .await;
    let mut hung = Engine::spawn(&h.pairing("hung"), &["--convention", "unity"]);
    let mut healthy = Engine::spawn(&h.pairing("healthy"), &["--convention", "blender"]);
    h.wait_connected("hung", 1).await;
    h.wait_connected("healthy", 1).await;
    let mut events = h.link.subscribe();

    let mut canonical = Scene::new(Quantum::default());
    let base = vec![create("obj-1", [0.0, 1.0, 0.0])];
    canonical.apply_all(&base).unwrap();
    for e in ["hung", "healthy"] {
        apply(&h.link, e, 1, base.clone()).await.unwrap();
        h.link
            .reconcile(
                e,
                &canonical.objects.values().cloned().collect::<Vec<_>>(),
                Quantum::default(),
            )
            .await
            .unwrap();
    }

    // Hang the main thread for 8 s, then give it work it cannot do.
    hung.ctl("hang 8000");
    let line = hung.expect("HANG last_pump_ms=", Duration::from_secs(5));
    let last_pump: u64 = line["HANG last_pump_ms=".len()..].parse().unwrap();
    let lost = apply(&h.link, "hung", 2, vec![move_to("obj-1", [9.0, 9.0, 9.0])]);
    let (lost, panic_at) = tokio::join!(lost, async {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .expect("PANIC within 10 s")
                .unwrap()
            {
                LinkEvent::Panic {
                    engine,
                    reason,
                    at_ms,
                } => {
                    assert_eq!(engine, "hung");
                    assert!(reason.contains("main thread"), "{reason}");
                    break at_ms;
                }
                _ => continue,
            }
        }
    });
    assert!(matches!(lost, Err(LinkError::Timeout { .. })), "{lost:?}");
    let detect = panic_at - last_pump;
    eprintln!("PANIC tripped {detect} ms after the last good pump (bound 5250 ms)");
    assert!(
        (5000..=5250).contains(&detect),
        "tripped {detect} ms after the last pump"
    );

    // During PANIC: nothing new is mutated, on any engine.
    let refused = h.link.check_mutation_allowed().unwrap_err().to_string();
    assert!(
        refused.contains("hung") && refused.contains("main thread"),
        "{refused}"
    );
    match apply(
        &h.link,
        "healthy",
        3,
        vec![move_to("obj-1", [5.0, 5.0, 5.0])],
    )
    .await
    {
        Err(LinkError::Refused(_)) => {}
        other => panic!("mutation accepted during PANIC: {other:?}"),
    }
    // The healthy engine was told to freeze.
    let t0 = Instant::now();
    while healthy.status()["state"] != "frozen" {
        assert!(t0.elapsed() < Duration::from_secs(3));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        snapshot_hash(&h.link, "healthy").await,
        canonical.hash().to_hex(),
        "healthy engine untouched"
    );
    // An operator resume before recovery is refused.
    assert!(h.link.resume().await.is_err());

    // The engine comes back, applies the late command (it diverges), then
    // reconciliation resyncs it.
    hung.expect("RESUMED", Duration::from_secs(10));
    let t0 = Instant::now();
    while h.link.engine("hung").unwrap().health != vibesync_protocol::Health::Healthy {
        assert!(t0.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(
        snapshot_hash(&h.link, "hung").await,
        canonical.hash().to_hex(),
        "the late apply landed on the engine"
    );
    let err = h.link.resume().await.unwrap_err().to_string();
    assert!(err.contains("not reconciled"), "{err}");
    let objects: Vec<_> = canonical.objects.values().cloned().collect();
    assert!(
        h.link
            .reconcile("hung", &objects, Quantum::default())
            .await
            .unwrap()
            .resynced
    );
    assert!(
        !h.link
            .reconcile("healthy", &objects, Quantum::default())
            .await
            .unwrap()
            .resynced
    );
    h.link.resume().await.unwrap();
    assert_eq!(h.link.panic_state(), PanicState::Normal);
    for e in ["hung", "healthy"] {
        assert_eq!(
            snapshot_hash(&h.link, e).await,
            canonical.hash().to_hex(),
            "{e} agrees with the canonical scene"
        );
    }
    // Mutations flow again.
    let op = move_to("obj-1", [1.0, 1.0, 1.0]);
    canonical.apply(&op).unwrap();
    for e in ["hung", "healthy"] {
        apply(&h.link, e, 4, vec![op.clone()]).await.unwrap();
        assert_eq!(snapshot_hash(&h.link, e).await, canonical.hash().to_hex());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_reconnects_and_must_reconcile_first() {
    let h = host(&["e"], RotationPolicy::default(), Duration::from_secs(5)).await;
    let mut e = Engine::spawn(&h.pairing("e"), &[]);
    h.wait_connected("e", 1).await;
    let mut canonical = Scene::new(Quantum::default());
    let ops = vec![create("obj-1", [1.0, 0.0, 0.0])];
    canonical.apply_all(&ops).unwrap();
    apply(&h.link, "e", 1, ops).await.unwrap();
    e.ctl("drop");
    e.expect("READY session=", Duration::from_secs(5));
    e.expect("READY session=", Duration::from_secs(10));
    h.wait_connected("e", 2).await;
    match apply(&h.link, "e", 2, vec![move_to("obj-1", [2.0, 0.0, 0.0])]).await {
        Err(LinkError::NotReconciled(_)) => {}
        other => panic!("{other:?}"),
    }
    let objects: Vec<_> = canonical.objects.values().cloned().collect();
    let r = h
        .link
        .reconcile("e", &objects, Quantum::default())
        .await
        .unwrap();
    assert!(!r.resynced, "state survived the reconnect");
    apply(&h.link, "e", 2, vec![move_to("obj-1", [2.0, 0.0, 0.0])])
        .await
        .unwrap();
    assert_eq!(
        h.link.panic_state(),
        PanicState::Normal,
        "a quick reconnect does not trip the deadman"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_engine_trips_panic_on_heartbeat_silence() {
    let h = host(&["e"], RotationPolicy::default(), Duration::from_secs(5)).await;
    let mut e = Engine::spawn(&h.pairing("e"), &[]);
    h.wait_connected("e", 1).await;
    let mut events = h.link.subscribe();
    let t0 = Instant::now();
    e.ctl("crash");
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("PANIC within 10 s")
            .unwrap()
        {
            LinkEvent::Panic { reason, .. } => break reason,
            _ => continue,
        }
    };
    assert!(
        reason.contains("no heartbeat") || reason.contains("main thread"),
        "{reason}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(4000),
        "not before the deadman"
    );
}

/// A host restarted during PANIC: the journal keeps the PANIC, the new
/// link starts `Normal`, and the adapter still holds the freeze the old
/// process sent (the SDK keeps it across sessions). The operator's resume
/// gets `NotInPanic` from the link, and must still leave the adapter thawed,
/// or every later apply is refused `frozen` for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_host_restart_thaws_an_adapter_still_frozen() {
    let h = host(&["e"], RotationPolicy::default(), Duration::from_secs(5)).await;
    let mut e = Engine::spawn(&h.pairing("e"), &[]);
    h.wait_connected("e", 1).await;
    // What the previous host process left behind.
    h.link
        .send(
            "e",
            CommandBody::Freeze {
                reason: "PANIC: engine `e`: main thread silent (previous host process)".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(e.status()["state"], "frozen");
    match apply(&h.link, "e", 1, vec![create("obj-1", [1.0, 0.0, 0.0])]).await {
        Err(LinkError::Engine { code, .. }) => assert_eq!(code, "frozen"),
        other => panic!("a frozen adapter applied: {other:?}"),
    }
    assert_eq!(h.link.panic_state(), PanicState::Normal);
    assert_eq!(
        h.link.resume().await,
        Err(vibesync_link::ResumeRefused::NotInPanic),
        "the link itself was not in PANIC"
    );
    assert_eq!(
        e.status()["state"],
        "connected",
        "resume thawed the adapter"
    );
    apply(&h.link, "e", 2, vec![create("obj-1", [1.0, 0.0, 0.0])])
        .await
        .unwrap();
}
