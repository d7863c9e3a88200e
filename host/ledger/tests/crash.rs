//! Crash test with real processes: `wal-torture` is killed with SIGKILL at
//! random points of a 10 000-intent run and restarted 50 times, sometimes
//! with a torn write (a partial frame) appended as a crash mid-`write`
//! would leave it. Afterwards the chain verifies, every commit a run
//! acknowledged is in the log with the same version and scene hash, every
//! injected torn tail was cut (never accepted), no tid was reused and no
//! transaction is left in doubt.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use vibesync_wal::{Record, Wal, WalOptions, read_all, segments, verify};

const TOTAL: u64 = 10_000;
const KILLS: usize = 50;
/// Simulated engine apply latency: spreads the run over the 50 kills (about
/// 300 ms apart on average) and makes most kills land inside a transaction.
const APPLY_US: u64 = 1_000;

fn scratch() -> tempfile::TempDir {
    // SIGKILL keeps the page cache, so fsync speed is irrelevant here: use
    // memory when the system has it, to keep the test fast.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

struct Run {
    commits: Vec<(u64, u64, String)>,
    recovered: String,
    done: bool,
}

fn run(dir: &Path, kill_after: Option<Duration>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wal-torture"))
        .arg(dir)
        .arg(TOTAL.to_string())
        .arg(APPLY_US.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let killer = kill_after.map(|d| {
        std::thread::spawn(move || {
            std::thread::sleep(d);
            // SAFETY: plain kill(2) on our own child's pid; it is not reaped
            // before the reader below sees EOF, so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        })
    });
    let mut out = Run {
        commits: Vec::new(),
        recovered: String::new(),
        done: false,
    };
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let mut w = line.split_whitespace();
        match w.next() {
            Some("COMMIT") => {
                let tid = w.next().unwrap().parse().unwrap();
                let v = w.next().unwrap().parse().unwrap();
                out.commits.push((tid, v, w.next().unwrap().to_string()));
            }
            Some("RECOVERED") => out.recovered = line.clone(),
            Some("DONE") => out.done = true,
            _ => {}
        }
    }
    if let Some(k) = killer {
        k.join().unwrap();
    }
    let status = child.wait().unwrap();
    assert!(
        out.done == status.success(),
        "exit {status:?} but done={}",
        out.done
    );
    out
}

fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn sigkill_at_random_points_loses_no_acknowledged_commit() {
    let dir = scratch();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_0001);
    let mut acked: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut injected_torn: Option<u64> = None;
    let mut torn_cut = 0;
    let mut in_doubt_seen = 0;
    let mut runs = 0;
    loop {
        let kill = (runs < KILLS).then(|| Duration::from_millis(rng.random_range(30..600)));
        let r = run(dir.path(), kill);
        runs += 1;
        // A torn tail we appended must be cut by this run's recovery, exactly.
        if r.recovered.is_empty() {
            // Killed before recovery finished: the torn tail is cut or still there, whole.
            if let Some(bytes) = injected_torn {
                match verify(dir.path()).unwrap().torn_tail {
                    Some(t) => assert_eq!(t.bytes, bytes),
                    None => {
                        injected_torn = None;
                        torn_cut += 1;
                    }
                }
            }
        } else {
            if let Some(bytes) = injected_torn.take() {
                assert_eq!(field(&r.recovered, "torn_bytes"), bytes, "{}", r.recovered);
                torn_cut += 1;
            }
            in_doubt_seen += field(&r.recovered, "in_doubt");
        }
        for (tid, v, h) in r.commits {
            assert!(
                acked.insert(tid, (v, h)).is_none(),
                "tid {tid} committed twice"
            );
        }
        if r.done && runs > KILLS {
            break;
        }
        // Every third crash also leaves half a frame behind, where the next
        // record would have gone: over the zeros the writer reserved after
        // its records. Recovery cuts it and that reserve.
        if runs % 3 == 0 && injected_torn.is_none() {
            let (_, last) = segments(dir.path()).unwrap().pop().unwrap();
            let valid = verify(dir.path()).unwrap().segments.last().unwrap().bytes as usize;
            let bytes = std::fs::read(&last).unwrap();
            if valid > 64 {
                let n = rng.random_range(1..40usize);
                let mut torn = bytes[valid - 64..valid - 64 + n].to_vec();
                torn[0] ^= 0xff;
                let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
                std::os::unix::fs::FileExt::write_all_at(&f, &torn, valid as u64).unwrap();
                injected_torn = Some((bytes.len().max(valid + n) - valid) as u64);
            }
        }
    }
    assert!(
        runs > KILLS && torn_cut > 5,
        "runs {runs}, torn tails cut {torn_cut}"
    );
    assert!(
        in_doubt_seen > 0,
        "no kill landed inside a transaction; the test proves nothing"
    );

    let report = verify(dir.path()).unwrap();
    assert!(
        report.is_intact() && report.torn_tail.is_none(),
        "{report:?}"
    );

    // Every acknowledged commit is in the log, with the same version and hash.
    let mut logged: BTreeMap<u64, (u64, String)> = BTreeMap::new();
    let mut finals: BTreeMap<u64, u32> = BTreeMap::new();
    let mut last_tid = None;
    read_all(dir.path(), |_, e| match &e.record {
        Record::Intent(i) => {
            assert!(
                last_tid.is_none_or(|t| i.tid > t),
                "tid {} reused or out of order",
                i.tid
            );
            last_tid = Some(i.tid);
            finals.insert(i.tid, 0);
        }
        Record::Commit {
            tid,
            scene_version,
            scene_hash,
        } => {
            // The torture's scenes stay under `SCENE_HASH_BUDGET` objects,
            // so every commit records the scene's hash.
            let hash = scene_hash.expect("a small scene's commit records its hash");
            logged.insert(*tid, (*scene_version, hash.to_hex()));
            *finals.get_mut(tid).unwrap() += 1;
        }
        Record::Rollback { tid, .. } | Record::Refused { tid, .. } | Record::Denied { tid, .. } => {
            *finals.get_mut(tid).unwrap() += 1
        }
        _ => {}
    })
    .unwrap();
    for (tid, v) in &acked {
        assert_eq!(
            logged.get(tid),
            Some(v),
            "acknowledged commit of tid {tid} lost or changed"
        );
    }
    assert_eq!(last_tid, Some(TOTAL - 1));
    assert!(
        finals.values().all(|&n| n == 1),
        "a transaction without exactly one outcome"
    );
    let (_, rec) = Wal::open(
        dir.path(),
        WalOptions {
            full_verify: true,
            ..WalOptions::default()
        },
    )
    .unwrap();
    assert!(rec.replay.in_doubt().is_empty());
    assert_eq!(rec.replay.next_tid, TOTAL);
}
