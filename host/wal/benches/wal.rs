//! WAL benchmarks: group commit vs one fsync per record (same run, same
//! disk), and start-up recovery of a 1 000 000-record log with and without a
//! checkpoint near the tail.
//!
//! `cargo bench -p vibesync-wal --bench wal`
//! Set `VIBESYNC_BENCH_DIR` to put the logs on the disk you care about
//! (default: the system temp directory).

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use vibesync_canonical::{ObjectKind, Op, Scene};
use vibesync_wal::{AckOutcome, Checkpoint, Record, Wal, WalOptions};

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("VIBESYNC_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// A record of typical size (an engine ack with a small undo token).
fn ack(tid: u64) -> Record {
    Record::EngineAck {
        tid,
        engine: "blender".into(),
        ack: AckOutcome::Applied {
            undo_token: serde_json::json!({"undo": tid, "kind": "transform"}).into(),
        },
    }
}

fn append(c: &mut Criterion) {
    const N: u64 = 256;
    let mut g = c.benchmark_group("wal_append");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    let records: Vec<Record> = (0..N).map(ack).collect();
    for batch in [1usize, 16, 256] {
        let dir = bench_dir();
        let (mut wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        g.bench_with_input(
            BenchmarkId::new("records_per_fsync", batch),
            &batch,
            |b, &batch| {
                b.iter(|| {
                    for chunk in records.chunks(batch) {
                        wal.append_batch(chunk.iter().map(|r| (0, r))).unwrap();
                    }
                })
            },
        );
    }
    g.finish();
}

/// Write `n` records: transactions of intent / begin / ack / commit that
/// each move one of 100 objects, with an optional checkpoint `tail` records
/// before the end.
fn build_log(dir: &std::path::Path, n: u64, checkpoint_tail: Option<u64>) {
    let (mut wal, _) = Wal::open(dir, WalOptions::default()).unwrap();
    let mut scene = Scene::default();
    let mut version = 0;
    let mut batch: Vec<Record> = Vec::new();
    let mut tid = 0;
    let mut written = 0u64;
    let mut checkpointed = false;
    while written < n {
        let ops = if tid < 100 {
            vec![Op::CreateObject {
                id: Some(format!("obj-{tid}")),
                name: format!("Cube {tid}"),
                kind: ObjectKind::Mesh,
                primitive: Some("cube".into()),
                parent: None,
                transform: None,
            }]
        } else {
            vec![Op::SetTransform {
                id: format!("obj-{}", tid % 100),
                translation: Some([tid as f64 * 0.001, 1.0, 2.0]),
                rotation: None,
                scale: None,
            }]
        };
        let touched: Vec<String> = ops.iter().flat_map(|o| o.target_ids()).collect();
        for op in &ops {
            scene.apply(op).unwrap();
        }
        version += 1;
        batch.push(Record::Intent(vibesync_wal::IntentRecord {
            tid,
            source: vibesync_wal::Source::Agent,
            author: "bench".into(),
            ops,
            rationale: "move the cube along x for the benchmark".into(),
            idempotency_key: None,
            scene_version_read: version - 1,
            engines: vec!["blender".into()],
        }));
        batch.push(Record::Begin {
            tid,
            touched: touched.clone(),
            engines: vec!["blender".into()],
            expected: scene.hash_of(&touched),
        });
        batch.push(ack(tid));
        batch.push(Record::Commit {
            tid,
            scene_version: version,
            scene_hash: Some(scene.hash()),
        });
        written += 4;
        tid += 1;
        if let Some(tail) = checkpoint_tail
            && !checkpointed
            && written + tail >= n
        {
            batch.push(Record::Checkpoint(Box::new(Checkpoint {
                scene: scene.clone(),
                scene_version: version,
                next_tid: tid,
                idempotency: vec![],
                locks: vec![],
                panic: None,
            })));
            written += 1;
            checkpointed = true;
        }
        if batch.len() >= 4096 {
            wal.append_batch(batch.iter().map(|r| (0, r))).unwrap();
            batch.clear();
        }
    }
    wal.append_batch(batch.iter().map(|r| (0, r))).unwrap();
}

fn recovery(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let mut g = c.benchmark_group("wal_recovery_1m");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, tail) in [
        ("no_checkpoint", None),
        ("checkpoint_10k_from_tail", Some(10_000)),
    ] {
        let dir = bench_dir();
        build_log(dir.path(), N, tail);
        g.bench_function(name, |b| {
            b.iter(|| {
                let (_, rec) = Wal::open(dir.path(), WalOptions::default()).unwrap();
                assert!(rec.replay.open.is_empty());
                rec.records_replayed
            })
        });
    }
    g.finish();
}

criterion_group!(benches, append, recovery);
criterion_main!(benches);
