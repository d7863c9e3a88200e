//! Hot swap under concurrent load: modules replaced on disk (and approved by
//! the lock) are swapped in while several threads evaluate; no evaluation
//! fails or is attributed to the wrong module; a bad version is refused and
//! the old one keeps serving; the directory watcher picks changes up.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use vibesync_policy_runtime::{
    Budgets, DirWatcher, Lockfile, Pipeline, PolicyConfigs, ReloadError, Runtime, RuntimeConfig,
    Sha256,
};
use vibesync_policy_types::Verdict;

/// Replace `dir/team.wasm` atomically and approve it.
fn install(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join("team.wasm.part");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, dir.join("team.wasm")).unwrap();
    Lockfile::approve_dir(dir, "test-reviewer").unwrap();
}

fn pipeline(dir: &Path, cache: &Path) -> Pipeline {
    let rt = Runtime::new(RuntimeConfig {
        budgets: Budgets::default(),
        cache_dir: Some(cache.to_owned()),
        ..Default::default()
    })
    .unwrap();
    Pipeline::with_dir(rt, vec![], dir.to_owned(), PolicyConfigs::default()).unwrap()
}

#[test]
fn hundred_swaps_under_concurrent_load() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (allow, deny) = (fixture("counter"), fixture("deny-all"));
    let (allow_hash, deny_hash) = (Sha256::of(allow), Sha256::of(deny));
    install(dir.path(), allow);
    let p = Arc::new(pipeline(dir.path(), cache.path()));

    let stop = Arc::new(AtomicBool::new(false));
    let evaluations = Arc::new(AtomicU64::new(0));
    let seen_deny = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (p, stop, evaluations, seen_deny) = (
                p.clone(),
                stop.clone(),
                evaluations.clone(),
                seen_deny.clone(),
            );
            let (allow_hash, deny_hash) = (allow_hash.clone(), deny_hash.clone());
            std::thread::spawn(move || {
                let ctx = empty_context();
                let mut tid = w * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    tid += 1;
                    let d = p.evaluate(&transform_intent(tid), &ctx);
                    assert_eq!(d.runs.len(), 1, "{d:#?}");
                    let run = &d.runs[0];
                    assert_eq!(run.fault, None, "failed evaluation: {d:#?}");
                    if run.module_sha256 == allow_hash {
                        assert_eq!(run.verdict, Verdict::Allow, "mis-attributed: {d:#?}");
                    } else if run.module_sha256 == deny_hash {
                        assert_eq!(
                            run.verdict.findings()[0].rule,
                            "deny-all.always",
                            "mis-attributed: {d:#?}"
                        );
                        seen_deny.fetch_add(1, Ordering::Relaxed);
                    } else {
                        panic!("unknown module {}", run.module_sha256);
                    }
                    assert_eq!(d.verdict, run.verdict);
                    evaluations.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let mut swaps = 0;
    for i in 0..120 {
        let (bytes, hash) = if i % 2 == 0 {
            (deny, &deny_hash)
        } else {
            (allow, &allow_hash)
        };
        install(dir.path(), bytes);
        let events = p.reload().expect("an approved module swaps in");
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!(events[0].new_sha256.as_ref(), Some(hash));
        assert_ne!(events[0].old_sha256.as_ref(), Some(hash));
        swaps += 1;
        if i == 60 {
            // A bad version, even approved, is refused; the old keeps serving.
            install(dir.path(), b"\0asm garbage");
            let before = p.current().get("team").unwrap().hash().clone();
            assert!(matches!(p.reload(), Err(ReloadError::Load(_))));
            assert_eq!(p.current().get("team").unwrap().hash(), &before);
            install(dir.path(), bytes);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .expect("no worker saw a failed or mis-attributed evaluation");
    }
    let n = evaluations.load(Ordering::Relaxed);
    eprintln!(
        "{swaps} swaps, {n} evaluations, {} by the deny module",
        seen_deny.load(Ordering::Relaxed)
    );
    assert!(swaps >= 100);
    assert!(
        n > 100,
        "too few evaluations ran concurrently with the swaps: {n}"
    );
    assert!(
        seen_deny.load(Ordering::Relaxed) > 0 && seen_deny.load(Ordering::Relaxed) < n,
        "both versions served"
    );
    assert_eq!(p.current().generation(), swaps);
}

#[test]
fn unapproved_replacement_is_refused_with_the_remedy() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(dir.path(), fixture("counter"));
    let p = pipeline(dir.path(), cache.path());
    std::fs::write(dir.path().join("team.wasm"), fixture("deny-all")).unwrap(); // lock not updated
    let err = p.reload().unwrap_err().to_string();
    for needle in [
        "team.wasm",
        &Sha256::of(fixture("deny-all")).to_string(),
        &Sha256::of(fixture("counter")).to_string(),
        "vibesync policy lock DIR --reviewer NAME",
    ] {
        assert!(err.contains(needle), "{needle} missing from: {err}");
    }
    assert_eq!(
        p.current().get("team").unwrap().hash(),
        &Sha256::of(fixture("counter"))
    );
    assert_eq!(
        p.evaluate(&transform_intent(1), &empty_context()).verdict,
        Verdict::Allow
    );
}

#[test]
fn watcher_swaps_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(dir.path(), fixture("counter"));
    let p = Arc::new(pipeline(dir.path(), cache.path()));
    let (tx, rx) = std::sync::mpsc::channel();
    let _w = DirWatcher::start(p.clone(), Duration::from_millis(100), move |r| {
        let _ = tx.send(r.map_err(|e| e.to_string()));
    })
    .unwrap();
    install(dir.path(), fixture("deny-all"));
    let want = Sha256::of(fixture("deny-all"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let events = rx.recv_timeout(left).expect("the watcher reloads").unwrap();
        if events.iter().any(|e| e.new_sha256.as_ref() == Some(&want)) {
            break;
        }
    }
    assert!(
        p.evaluate(&transform_intent(1), &empty_context())
            .verdict
            .is_deny()
    );
}
