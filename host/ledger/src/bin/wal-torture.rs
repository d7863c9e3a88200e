//! `wal-torture DIR TOTAL [APPLY_US]`: drive the real sequencer and WAL with
//! an in-process simulated engine until the journal holds TOTAL intents,
//! printing `COMMIT <tid> <version> <scene hash>` for every commit once its
//! record is durable. Restarting it on the same DIR recovers and continues.
//! The crash test (`tests/crash.rs`) kills it with SIGKILL at random points.
//! APPLY_US is the simulated engine's apply latency.
//!
//! Output lines: `RECOVERED next_tid=.. version=.. in_doubt=.. torn_bytes=..`,
//! `COMMIT ..`, `ROLLBACK <tid>`, `DONE version=..`.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vibesync_canonical::{ObjectKind, Op, Scene, StateHash};
use vibesync_ledger::{Answer, Config, Decision, Effect, Input, Sequencer, Submission};
use vibesync_wal::{AckOutcome, Outcome, Source, Wal, WalOptions};

struct Driver {
    wal: Wal,
    seq: Sequencer,
    engine: Scene,
    now: u64,
    out: std::io::Stdout,
    /// Simulated engine latency per apply (keeps kills landing mid-transaction).
    pace: Duration,
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Driver {
    /// Feed one input and everything it causes, journal before effects.
    fn feed(&mut self, first: Input) -> Result<(), String> {
        let mut pending = VecDeque::from([first]);
        while let Some(input) = pending.pop_front() {
            self.now += 1;
            let step = self
                .seq
                .handle(self.now, input)
                .map_err(|e| e.to_string())?;
            let at = wall_ms();
            self.wal
                .append_batch(step.journal.iter().map(|r| (at, r)))
                .map_err(|e| e.to_string())?;
            for effect in step.effects {
                match effect {
                    Effect::Apply { engine, tid, ops } => {
                        if !self.pace.is_zero() {
                            std::thread::sleep(self.pace);
                        }
                        // The undo token: the prior state of every object the ops name.
                        let prior: Vec<(String, Option<vibesync_canonical::SceneObject>)> = ops
                            .iter()
                            .flat_map(|op| op.target_ids())
                            .map(|id| {
                                let o = self.engine.get(&id).cloned();
                                (id, o)
                            })
                            .collect();
                        let token = serde_json::to_value(&prior).expect("objects serialize");
                        let ack = match self.engine.apply_all(&ops) {
                            Ok(()) => AckOutcome::Applied {
                                undo_token: token.into(),
                            },
                            Err((i, e)) => AckOutcome::Failed {
                                error: format!("op {i}: {e}"),
                            },
                        };
                        pending.push_back(Input::Applied { tid, engine, ack });
                    }
                    Effect::Verify {
                        engine,
                        tid,
                        objects,
                    } => {
                        // Every 37th transaction the engine "drifts": rollback path.
                        let observed = if tid % 37 == 0 {
                            StateHash([0xee; 32])
                        } else {
                            self.engine.hash_of(&objects)
                        };
                        pending.push_back(Input::Verified {
                            tid,
                            engine,
                            observed: Ok(observed),
                        });
                    }
                    Effect::Undo { engine, tid, token } => {
                        let prior: Vec<(String, Option<vibesync_canonical::SceneObject>)> =
                            serde::Deserialize::deserialize(&*token)
                                .map_err(|e: serde_json::Error| e.to_string())?;
                        for (id, obj) in prior.into_iter().rev() {
                            self.engine.put(id, obj);
                        }
                        pending.push_back(Input::Undone {
                            tid,
                            engine,
                            result: Ok(()),
                        });
                    }
                    Effect::Resync { scene, .. } => self.engine = scene,
                    Effect::Commit { .. } => {}
                    Effect::Answer {
                        tid,
                        answer: Answer::Final(Outcome::Committed { scene_version }),
                        ..
                    } => {
                        writeln!(
                            self.out,
                            "COMMIT {tid} {scene_version} {}",
                            self.seq.scene().hash()
                        )
                        .map_err(|e| e.to_string())?;
                    }
                    Effect::Answer {
                        tid,
                        answer: Answer::Final(Outcome::RolledBack { .. }),
                        ..
                    } => {
                        writeln!(self.out, "ROLLBACK {tid}").map_err(|e| e.to_string())?;
                    }
                    Effect::Answer { .. } => {}
                }
            }
        }
        Ok(())
    }

    fn next_intent(&self) -> Submission {
        let tid = self.seq.next_tid();
        let scene = self.seq.scene();
        let ops = if scene.objects.len() < 50 {
            vec![Op::CreateObject {
                id: None,
                name: format!("Cube {tid}"),
                kind: ObjectKind::Mesh,
                primitive: Some("cube".into()),
                parent: None,
                transform: None,
            }]
        } else {
            let id = scene
                .objects
                .keys()
                .nth(tid as usize % scene.objects.len())
                .expect("non-empty")
                .clone();
            vec![
                Op::SetTransform {
                    id: id.clone(),
                    translation: Some([tid as f64 * 0.01, 1.0, 0.0]),
                    rotation: None,
                    scale: None,
                },
                Op::SetMaterial {
                    id,
                    base_color: None,
                    roughness: Some((tid % 100) as f64 / 100.0),
                    metallic: None,
                    emission: None,
                    emission_strength: None,
                },
            ]
        };
        Submission {
            source: Source::Agent,
            author: "torture".into(),
            ops,
            rationale: format!("torture intent {tid}"),
            idempotency_key: Some(format!("torture-{tid}")),
            scene_version_read: self.seq.scene_version(),
            engines: vec![],
            verdicts: vec![],
            decision: Decision::Allow,
        }
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: wal-torture DIR TOTAL [APPLY_US]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let total: u64 = args.next().ok_or(usage)?.parse().map_err(|_| usage)?;
    let pace = Duration::from_micros(
        args.next()
            .map_or(Ok(0), |p| p.parse())
            .map_err(|_| usage)?,
    );
    let (wal, rec) = Wal::open(
        &dir,
        WalOptions {
            segment_bytes: 256 << 10,
            full_verify: false,
        },
    )
    .map_err(|e| e.to_string())?;
    let torn = rec.torn_tail.as_ref().map_or(0, |t| t.bytes);
    let in_doubt = rec.replay.in_doubt().len();
    let mut cfg = Config::new(vec!["sim".into()]);
    cfg.checkpoint_every = 500;
    let (seq, step) = Sequencer::recover(cfg, rec.replay);
    let mut d = Driver {
        wal,
        seq,
        engine: Scene::default(),
        now: 0,
        out: std::io::stdout(),
        pace,
    };
    d.wal
        .append_batch(step.journal.iter().map(|r| (wall_ms(), r)))
        .map_err(|e| e.to_string())?;
    writeln!(
        d.out,
        "RECOVERED next_tid={} version={} in_doubt={in_doubt} torn_bytes={torn}",
        d.seq.next_tid(),
        d.seq.scene_version()
    )
    .map_err(|e| e.to_string())?;
    d.feed(Input::EngineBack {
        engine: "sim".into(),
        session: format!("pid-{}", std::process::id()),
    })?;
    while d.seq.next_tid() < total {
        let sub = d.next_intent();
        d.feed(Input::Submit(sub))?;
    }
    writeln!(d.out, "DONE version={}", d.seq.scene_version()).map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wal-torture: {e}");
            ExitCode::FAILURE
        }
    }
}
