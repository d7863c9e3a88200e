//! File-level tests: rotation, recovery, torn tails and corruption.

use std::fs;
use std::path::Path;

use vibesync_canonical::{ObjectKind, Op, Scene};
use vibesync_wal::{
    Checkpoint, Fault, IntentRecord, Outcome, Record, ReplayStart, Source, Stage, Wal, WalError,
    WalOptions, segments, verify,
};

fn intent(tid: u64, ops: Vec<Op>) -> Record {
    Record::Intent(IntentRecord {
        tid,
        source: Source::Agent,
        author: "test".into(),
        ops,
        rationale: "because the test says so".into(),
        idempotency_key: Some(format!("key-{tid}")),
        scene_version_read: 0,
        engines: vec!["blender".into()],
    })
}

fn create(id: &str) -> Op {
    Op::CreateObject {
        id: Some(id.into()),
        name: id.into(),
        kind: ObjectKind::Empty,
        primitive: None,
        parent: None,
        transform: None,
    }
}

/// Commit `n` transactions creating obj-0.., leave one begun (in doubt).
fn write_log(dir: &Path, n: u64, opts: WalOptions) -> Scene {
    let (mut wal, _) = Wal::open(dir, opts).unwrap();
    let mut scene = Scene::default();
    for tid in 0..n {
        let ops = vec![create(&format!("obj-{tid}"))];
        scene.apply_all(&ops).unwrap();
        let recs = [
            intent(tid, ops),
            Record::Begin {
                tid,
                touched: vec![],
                engines: vec!["blender".into()],
                expected: scene.hash(),
            },
            Record::Commit {
                tid,
                scene_version: tid + 1,
                scene_hash: Some(scene.hash()),
            },
        ];
        wal.append_batch(recs.iter().map(|r| (tid, r))).unwrap();
    }
    wal.append_batch([
        (0, &intent(n, vec![create("pending")])),
        (
            0,
            &Record::Begin {
                tid: n,
                touched: vec![],
                engines: vec!["blender".into()],
                expected: scene.hash(),
            },
        ),
    ])
    .unwrap();
    scene
}

fn small() -> WalOptions {
    WalOptions {
        segment_bytes: 2048,
        full_verify: false,
    }
}

#[test]
fn recovery_rebuilds_scene_tids_idempotency_and_in_doubt() {
    let dir = tempfile::tempdir().unwrap();
    let scene = write_log(dir.path(), 40, small());
    assert!(segments(dir.path()).unwrap().len() > 3, "rotation by size");
    let (wal, rec) = Wal::open(dir.path(), small()).unwrap();
    assert_eq!(rec.replay.scene, scene);
    assert_eq!(rec.replay.scene_version, 40);
    assert_eq!(rec.replay.next_tid, 41);
    assert_eq!(
        rec.replay.idempotency["key-3"],
        (3, Outcome::Committed { scene_version: 4 })
    );
    let doubt = rec.replay.in_doubt();
    assert_eq!(doubt.len(), 1);
    assert_eq!((doubt[0].intent.tid, doubt[0].stage), (40, Stage::Begun));
    assert_eq!(wal.head().next_seq, 40 * 3 + 2);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_intact() && report.torn_tail.is_none());
    assert_eq!(report.records, 122);
    assert_eq!(report.kinds["commit"], 40);
}

#[test]
fn a_checkpoint_bounds_recovery_and_appends_continue_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 1 << 20,
        full_verify: false,
    };
    let scene = write_log(dir.path(), 10, opts.clone());
    {
        let (mut wal, rec) = Wal::open(dir.path(), opts.clone()).unwrap();
        // Resolve the in-doubt one, then checkpoint.
        let r = [
            Record::Rollback {
                tid: 10,
                reason: "restart".into(),
            },
            Record::Undo {
                tid: 10,
                engine: "blender".into(),
                undo: vibesync_wal::UndoOutcome::Undone,
            },
        ];
        wal.append_batch(r.iter().map(|r| (0, r))).unwrap();
        let mut cp = rec.replay.checkpoint();
        cp.next_tid = 11;
        wal.append(0, &Record::Checkpoint(Box::new(cp))).unwrap();
        wal.append(0, &intent(11, vec![create("after")])).unwrap();
    }
    assert_eq!(
        segments(dir.path()).unwrap().len(),
        2,
        "a checkpoint starts a segment"
    );
    let (_, rec) = Wal::open(dir.path(), opts).unwrap();
    assert!(matches!(rec.start, ReplayStart::Checkpoint { .. }));
    assert_eq!(rec.records_replayed, 2);
    assert_eq!(rec.replay.scene, scene);
    assert_eq!(rec.replay.next_tid, 12);
    assert_eq!(rec.replay.in_doubt().len(), 1);
    let full = Wal::open(
        dir.path(),
        WalOptions {
            full_verify: true,
            ..WalOptions::default()
        },
    )
    .unwrap()
    .1;
    assert_eq!(full.start, ReplayStart::Genesis);
    assert_eq!(full.replay.scene, scene);
    assert!(verify(dir.path()).unwrap().is_intact());
}

#[test]
fn a_torn_tail_is_cut_and_never_a_complete_record() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, WalOptions::default());
    let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
    let file = fs::read(&path).unwrap();
    let valid = verify(dir.path()).unwrap().segments[0].bytes as usize;
    let good = &file[..valid];
    // Half of a copy of the last frame written into the reserve: a write
    // cut short by a crash.
    let mut torn = file.clone();
    torn[valid..valid + 20].copy_from_slice(&good[valid - 30..valid - 10]);
    fs::write(&path, &torn).unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_intact());
    let t = report.torn_tail.unwrap();
    assert_eq!(
        (t.offset, t.bytes),
        (valid as u64, (file.len() - valid) as u64)
    );
    let (_, rec) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(rec.torn_tail.unwrap().offset, valid as u64);
    assert_eq!(
        fs::read(&path).unwrap(),
        good,
        "the torn bytes (and the reserve behind them) were cut, nothing before"
    );
    assert_eq!(rec.replay.scene_version, 5);
}

/// The writer reserves written zeros ahead of its records (so that an
/// `fdatasync` is a data write, without an inode write); they are neither a torn
/// tail nor corruption, in the last segment or a sealed one, and appends
/// after a restart go where the records end.
#[test]
fn the_reserved_zeros_after_the_records_are_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, small());
    let report = verify(dir.path()).unwrap();
    assert!(
        report.is_intact() && report.torn_tail.is_none(),
        "{report:?}"
    );
    let segs = segments(dir.path()).unwrap();
    assert!(segs.len() > 2);
    let mut reserved = 0;
    for (seg, (_, path)) in report.segments.iter().zip(&segs) {
        let file = fs::read(path).unwrap();
        assert!(file[seg.bytes as usize..].iter().all(|&b| b == 0));
        reserved += file.len() as u64 - seg.bytes;
    }
    assert!(reserved > 0, "the writer reserves zeros after its records");
    let records = report.records;
    let (mut wal, rec) = Wal::open(dir.path(), small()).unwrap();
    assert!(rec.torn_tail.is_none());
    wal.append(1, &intent(999, vec![create("after-restart")]))
        .unwrap();
    drop(wal);
    let after = verify(dir.path()).unwrap();
    assert!(after.is_intact() && after.torn_tail.is_none(), "{after:?}");
    assert_eq!(after.records, records + 1);
}

#[test]
fn a_flipped_byte_mid_log_is_reported_with_its_offset_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, WalOptions::default());
    let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    // Find the offset of the 10th frame by walking the lengths.
    let mut off = 0usize;
    for _ in 0..10 {
        off += 8 + u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
    }
    bytes[off + 20] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let report = verify(dir.path()).unwrap();
    let (seg, fault) = report.corruption.clone().unwrap();
    assert_eq!(seg, path);
    assert_eq!(fault.offset(), off as u64);
    assert!(matches!(fault, Fault::Crc { .. }));
    assert_eq!(report.records, 10, "verification stops at the corruption");
    match Wal::open(dir.path(), WalOptions::default()) {
        Err(WalError::Corrupt { segment, fault }) => {
            assert_eq!((segment, fault.offset()), (path.clone(), off as u64));
        }
        other => panic!("expected refusal, got {other:?}"),
    }
    assert_eq!(
        fs::read(&path).unwrap(),
        bytes,
        "a refused log is left untouched"
    );
}

#[test]
fn a_truncated_sealed_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, small());
    let segs = segments(dir.path()).unwrap();
    let (_, mid) = &segs[1];
    let len = verify(dir.path()).unwrap().segments[1].bytes;
    let f = fs::OpenOptions::new().write(true).open(mid).unwrap();
    f.set_len(len - 5).unwrap();
    let report = verify(dir.path()).unwrap();
    let (seg, fault) = report.corruption.unwrap();
    assert_eq!(&seg, mid);
    assert!(matches!(fault, Fault::Truncated { .. }), "{fault}");
    assert!(fault.offset() < len);
    assert!(matches!(
        Wal::open(
            dir.path(),
            WalOptions {
                full_verify: true,
                ..small()
            }
        ),
        Err(WalError::Corrupt { .. })
    ));
}

#[test]
fn a_missing_segment_is_a_layout_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 40, small());
    let segs = segments(dir.path()).unwrap();
    fs::remove_file(&segs[2].1).unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.layout.unwrap().0, segs[3].1);
}

#[test]
fn checkpoint_record_round_trips_a_scene() {
    let dir = tempfile::tempdir().unwrap();
    let mut scene = Scene::default();
    scene.apply(&create("a")).unwrap();
    let cp = Checkpoint {
        scene: scene.clone(),
        scene_version: 7,
        next_tid: 9,
        idempotency: vec![],
        locks: vec![],
        panic: Some("x".into()),
    };
    let (mut wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    wal.append(0, &Record::Checkpoint(Box::new(cp))).unwrap();
    drop(wal);
    let (_, rec) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(rec.replay.scene, scene);
    assert_eq!(
        (
            rec.replay.scene_version,
            rec.replay.next_tid,
            rec.replay.panic.as_deref()
        ),
        (7, 9, Some("x"))
    );
}

#[test]
fn a_replayed_scene_that_disagrees_with_the_commits_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    let recs = [
        intent(0, vec![create("a")]),
        Record::Begin {
            tid: 0,
            touched: vec![],
            engines: vec![],
            expected: Default::default(),
        },
        // The chain is valid, but the commit claims a state the ops do not produce.
        Record::Commit {
            tid: 0,
            scene_version: 1,
            scene_hash: Some(Scene::default().hash()),
        },
    ];
    wal.append_batch(recs.iter().map(|r| (0, r))).unwrap();
    drop(wal);
    let err = Wal::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(matches!(err, WalError::Replay { .. }), "{err}");
    assert!(
        err.to_string().contains("commit of tid 0 recorded"),
        "{err}"
    );
}

#[test]
fn a_commit_without_a_recorded_scene_hash_replays_and_a_later_one_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let begin = |tid| Record::Begin {
        tid,
        touched: vec![],
        engines: vec![],
        expected: Default::default(),
    };
    let mut scene = Scene::default();
    scene.apply(&create("a")).unwrap();
    scene.apply(&create("b")).unwrap();
    let recs = [
        intent(0, vec![create("a")]),
        begin(0),
        Record::Commit {
            tid: 0,
            scene_version: 1,
            scene_hash: None,
        },
        intent(1, vec![create("b")]),
        begin(1),
        Record::Commit {
            tid: 1,
            scene_version: 2,
            scene_hash: Some(scene.hash()),
        },
    ];
    let (mut wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    wal.append_batch(recs.iter().map(|r| (0, r))).unwrap();
    drop(wal);
    let (_, rec) = Wal::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(rec.replay.scene_version, 2);
    assert_eq!(rec.replay.scene.hash(), scene.hash());
}
