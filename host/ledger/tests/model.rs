//! Property test of the sequencer against modelled engines.
//!
//! Each engine is a `Scene` with a FIFO inbox. A random schedule interleaves
//! submissions, deliveries (with faults: refusal, wrong hash, verification
//! error, lost undo token, dropped reply), time passing, engine losses and
//! returns, PANIC / resume and operator decisions. After the schedule the
//! cluster is drained; then every transaction must have ended, every engine
//! must hold exactly the canonical scene (so no rolled-back change survives
//! anywhere), the version must have moved only on commit, tids must
//! increase, and a replay of the journal must rebuild the same state.
//!
//! The same properties are checked with several transactions active at once
//! (`Config::max_active`, per-object staleness); there the modelled engines
//! keep per-object undo tokens, as the real adapters do, because a
//! whole-scene snapshot would also undo a concurrent transaction.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;
use vibesync_canonical::{ObjectKind, Op, Scene, SceneObject, StateHash};
use vibesync_ledger::{
    Answer, Config, Decision, Effect, Input, SCENE_HASH_BUDGET, Sequencer, StaleRule, Step,
    Submission,
};
use vibesync_wal::{AckOutcome, Outcome, Record, Replay, Source};

const ENGINES: [&str; 2] = ["blender", "unity"];

#[derive(Clone, Debug)]
enum Fault {
    None,
    Refuse,
    WrongHash,
    VerifyError,
    LoseToken,
    DropReply,
}

#[derive(Clone, Debug)]
enum Act {
    Submit {
        obj: u8,
        what: u8,
        stale: bool,
        decision: u8,
        key: Option<u8>,
    },
    Deliver {
        engine: usize,
        fault: Fault,
    },
    Advance {
        ms: u64,
    },
    Lose {
        engine: usize,
    },
    Back {
        engine: usize,
    },
    Panic,
    Resume,
    Decide {
        approve: bool,
    },
}

fn act() -> impl Strategy<Value = Act> {
    let fault = prop_oneof![
        6 => Just(Fault::None),
        1 => Just(Fault::Refuse),
        1 => Just(Fault::WrongHash),
        1 => Just(Fault::VerifyError),
        1 => Just(Fault::LoseToken),
        1 => Just(Fault::DropReply),
    ];
    prop_oneof![
        4 => (0u8..4, 0u8..4, prop::bool::weighted(0.1), 0u8..10, prop::option::of(0u8..6))
            .prop_map(|(obj, what, stale, decision, key)| Act::Submit { obj, what, stale, decision, key }),
        12 => (0usize..2, fault).prop_map(|(engine, fault)| Act::Deliver { engine, fault }),
        2 => (1u64..4000).prop_map(|ms| Act::Advance { ms }),
        1 => (0usize..2).prop_map(|engine| Act::Lose { engine }),
        2 => (0usize..2).prop_map(|engine| Act::Back { engine }),
        1 => Just(Act::Panic),
        2 => Just(Act::Resume),
        1 => any::<bool>().prop_map(|approve| Act::Decide { approve }),
    ]
}

struct Engine {
    scene: Scene,
    inbox: VecDeque<Effect>,
    up: bool,
}

struct World {
    seq: Sequencer,
    engines: Vec<Engine>,
    journal: Vec<Record>,
    now: u64,
    answers: BTreeMap<u64, Vec<Answer>>,
    /// Undo tokens hold the touched objects' previous values (else the
    /// whole scene).
    object_undo: bool,
}

fn config(concurrent: bool) -> Config {
    let mut cfg = Config::new(ENGINES.iter().map(|s| s.to_string()).collect());
    if concurrent {
        cfg.max_active = 4;
        cfg.stale_rule = StaleRule::Footprint;
    }
    cfg
}

/// What `serve` runs: concurrent, and the read-back asked for right behind
/// the apply (`Config::verify_with_apply`).
fn serve_config() -> Config {
    let mut cfg = config(true);
    cfg.verify_with_apply = true;
    cfg
}

impl World {
    fn new() -> World {
        World::with(false)
    }

    /// Several transactions active at once, per-object staleness.
    fn concurrent() -> World {
        World::with(true)
    }

    /// As `serve` runs it: concurrent, read-back behind the apply.
    fn serve() -> World {
        World::with_config(serve_config(), true)
    }

    /// The host restarts: a new sequencer recovered from the journal alone,
    /// and every engine drops its connection (and what was in flight).
    fn restart(&mut self, cfg: Config) {
        let mut replay = Replay::default();
        for (n, r) in self.journal.iter().enumerate() {
            replay.apply(n as u64, r).unwrap();
        }
        let (seq, step) = Sequencer::recover(cfg, replay);
        self.seq = seq;
        self.exec(step);
        for e in &mut self.engines {
            e.up = false;
            e.inbox.clear();
        }
    }

    fn with(concurrent: bool) -> World {
        World::with_config(config(concurrent), concurrent)
    }

    fn with_config(mut cfg: Config, concurrent: bool) -> World {
        cfg.checkpoint_every = 3;
        let mut w = World {
            seq: Sequencer::new(cfg),
            engines: ENGINES
                .iter()
                .map(|_| Engine {
                    scene: Scene::default(),
                    inbox: VecDeque::new(),
                    up: false,
                })
                .collect(),
            journal: Vec::new(),
            now: 0,
            answers: BTreeMap::new(),
            object_undo: concurrent,
        };
        for (i, name) in ENGINES.iter().enumerate() {
            w.input(Input::EngineBack {
                engine: (*name).into(),
                session: "s0".into(),
            });
            w.engines[i].up = true;
        }
        w
    }

    fn input(&mut self, input: Input) {
        let before = self.seq.scene_version();
        let Ok(step) = self.seq.handle(self.now, input) else {
            return;
        };
        let commits = step
            .journal
            .iter()
            .filter(|r| matches!(r, Record::Commit { .. }))
            .count() as u64;
        assert_eq!(
            self.seq.scene_version(),
            before + commits,
            "the version moves only on commit"
        );
        self.exec(step);
    }

    fn exec(&mut self, step: Step) {
        self.journal.extend(step.journal);
        for e in step.effects {
            let target = match &e {
                Effect::Apply { engine, .. }
                | Effect::Verify { engine, .. }
                | Effect::Undo { engine, .. }
                | Effect::Commit { engine, .. }
                | Effect::Resync { engine, .. } => {
                    Some(ENGINES.iter().position(|n| n == engine).unwrap())
                }
                Effect::Answer { tid, answer, .. } => {
                    self.answers.entry(*tid).or_default().push(answer.clone());
                    None
                }
            };
            if let Some(i) = target
                && self.engines[i].up
            {
                self.engines[i].inbox.push_back(e);
            }
        }
    }

    fn deliver(&mut self, i: usize, fault: Fault) {
        let dropped = matches!(fault, Fault::DropReply);
        if let Some(r) = self.run_next(i, fault)
            && !dropped
        {
            self.input(r);
        }
    }

    /// Engine `i` carries out its next command; its reply, if any, is
    /// returned instead of being fed to the sequencer.
    fn run_next(&mut self, i: usize, fault: Fault) -> Option<Input> {
        let msg = self.engines[i].inbox.pop_front()?;
        let engine = ENGINES[i].to_string();
        let eng = &mut self.engines[i];
        match msg {
            Effect::Apply { tid, ops, .. } => {
                let ack = if matches!(fault, Fault::Refuse) {
                    AckOutcome::Failed {
                        error: "refused by the test".into(),
                    }
                } else {
                    let token = if self.object_undo {
                        let before: Vec<(String, Option<SceneObject>)> = ops
                            .iter()
                            .flat_map(|op| eng.scene.touched_by(op))
                            .map(|id| (id.clone(), eng.scene.objects.get(&id).cloned()))
                            .collect();
                        serde_json::to_value(before).unwrap()
                    } else {
                        serde_json::to_value(&eng.scene).unwrap()
                    };
                    match eng.scene.apply_all(&ops) {
                        Ok(()) => AckOutcome::Applied {
                            undo_token: token.into(),
                        },
                        Err((_, e)) => AckOutcome::Failed {
                            error: e.to_string(),
                        },
                    }
                };
                Some(Input::Applied { tid, engine, ack })
            }
            Effect::Verify { tid, objects, .. } => {
                let observed = match fault {
                    Fault::WrongHash => Ok(StateHash([1; 32])),
                    Fault::VerifyError => Err("read-back failed".into()),
                    _ => Ok(eng.scene.hash_of(&objects)),
                };
                Some(Input::Verified {
                    tid,
                    engine,
                    observed,
                })
            }
            Effect::Undo { tid, token, .. } => {
                if matches!(fault, Fault::LoseToken) {
                    Some(Input::Undone {
                        tid,
                        engine,
                        result: Err("undo token lost".into()),
                    })
                } else if self.object_undo {
                    let before: Vec<(String, Option<SceneObject>)> =
                        serde::Deserialize::deserialize(&*token).unwrap();
                    // Restore in reverse, so the oldest value of an id wins.
                    for (id, value) in before.into_iter().rev() {
                        eng.scene.put(id, value);
                    }
                    Some(Input::Undone {
                        tid,
                        engine,
                        result: Ok(()),
                    })
                } else {
                    eng.scene = serde::Deserialize::deserialize(&*token).unwrap();
                    Some(Input::Undone {
                        tid,
                        engine,
                        result: Ok(()),
                    })
                }
            }
            Effect::Commit { .. } => None,
            Effect::Resync { scene, .. } => {
                eng.scene = scene;
                None
            }
            Effect::Answer { .. } => unreachable!(),
        }
    }

    fn submit(&mut self, obj: u8, what: u8, stale: bool, decision: u8, key: Option<u8>) {
        let id = format!("o{obj}");
        let ops = match what {
            0 => vec![Op::CreateObject {
                id: Some(id.clone()),
                name: id,
                kind: ObjectKind::Mesh,
                primitive: None,
                parent: None,
                transform: None,
            }],
            1 => vec![Op::SetTransform {
                id,
                translation: Some([self.now as f64 * 0.01, 0.0, 1.0]),
                rotation: None,
                scale: None,
            }],
            2 => vec![Op::DeleteObject { id }],
            // Multi-op: create, give a material, place it (all or nothing).
            _ => vec![
                Op::CreateObject {
                    id: Some(format!("{id}-m")),
                    name: "m".into(),
                    kind: ObjectKind::Mesh,
                    primitive: None,
                    parent: None,
                    transform: None,
                },
                Op::SetMaterial {
                    id: format!("{id}-m"),
                    base_color: Some([1.0, 0.0, 0.0, 1.0]),
                    roughness: None,
                    metallic: None,
                    emission: None,
                    emission_strength: None,
                },
                Op::SetTransform {
                    id: format!("{id}-m"),
                    translation: Some([0.0, 2.0, 0.0]),
                    rotation: None,
                    scale: None,
                },
            ],
        };
        let v = self.seq.scene_version();
        let decision = match decision {
            0 => Decision::Deny {
                reason: "policy says no".into(),
            },
            1 => Decision::Escalate {
                reason: "needs a human".into(),
            },
            _ => Decision::Allow,
        };
        self.input(Input::Submit(Submission {
            source: Source::Agent,
            author: "agent".into(),
            ops,
            rationale: "model test".into(),
            idempotency_key: key.map(|k| format!("k{k}")),
            scene_version_read: if stale { v + 1 } else { v },
            engines: vec![],
            verdicts: vec![],
            decision,
        }));
    }

    fn run(&mut self, a: Act) {
        match a {
            Act::Submit {
                obj,
                what,
                stale,
                decision,
                key,
            } => self.submit(obj, what, stale, decision, key),
            Act::Deliver { engine, fault } => self.deliver(engine, fault),
            Act::Advance { ms } => {
                self.now += ms;
                self.input(Input::Tick);
            }
            Act::Lose { engine } => {
                self.engines[engine].up = false;
                self.engines[engine].inbox.clear();
                self.input(Input::EngineLost {
                    engine: ENGINES[engine].into(),
                    reason: "test".into(),
                });
            }
            Act::Back { engine } => {
                if !self.engines[engine].up {
                    self.engines[engine].up = true;
                    self.input(Input::EngineBack {
                        engine: ENGINES[engine].into(),
                        session: format!("s{}", self.now),
                    });
                }
            }
            Act::Panic => self.input(Input::Panic {
                reason: "heartbeat lost".into(),
            }),
            Act::Resume => self.input(Input::Resume {
                operator: "op".into(),
            }),
            Act::Decide { approve } => {
                let tid = self.journal.iter().rev().find_map(|r| match r {
                    Record::Escalated { tid, .. } => Some(*tid),
                    _ => None,
                });
                if let Some(tid) = tid {
                    self.input(Input::Decide {
                        tid,
                        operator: "op".into(),
                        approve,
                        note: "test".into(),
                    });
                }
            }
        }
    }

    /// Reconnect everyone, resume, deliver everything, let every timeout fire.
    fn drain(&mut self) {
        for i in 0..ENGINES.len() {
            self.run(Act::Back { engine: i });
        }
        self.run(Act::Resume);
        for _ in 0..100 {
            while let Some(i) = (0..ENGINES.len()).find(|&i| !self.engines[i].inbox.is_empty()) {
                self.deliver(i, Fault::None);
            }
            if self.seq.open_tids().is_empty() {
                return;
            }
            self.now += 1_000_000;
            self.input(Input::Tick);
        }
        panic!("cluster did not settle: open {:?}", self.seq.open_tids());
    }
}

/// `answered`: no restart happened, so every author must have been answered.
fn check(w: &World, answered: bool) {
    assert!(w.seq.open_tids().is_empty());
    let canonical = w.seq.scene().hash();
    for (i, e) in w.engines.iter().enumerate() {
        assert_eq!(
            e.scene.hash(),
            canonical,
            "engine {} diverges from the canonical scene",
            ENGINES[i]
        );
    }
    let mut last_tid = None;
    let mut finals: BTreeMap<u64, usize> = BTreeMap::new();
    let mut versions = Vec::new();
    for r in &w.journal {
        match r {
            Record::Intent(i) => {
                assert!(last_tid.is_none_or(|t| i.tid > t), "tids strictly increase");
                last_tid = Some(i.tid);
                finals.insert(i.tid, 0);
            }
            Record::Commit {
                tid, scene_version, ..
            } => {
                versions.push(*scene_version);
                *finals.get_mut(tid).unwrap() += 1;
            }
            Record::Rollback { tid, .. }
            | Record::Refused { tid, .. }
            | Record::Denied { tid, .. } => *finals.get_mut(tid).unwrap() += 1,
            _ => {}
        }
    }
    assert!(
        finals.values().all(|&n| n == 1),
        "every transaction ends exactly once: {finals:?}"
    );
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    assert_eq!(w.seq.scene_version(), versions.len() as u64);
    // Every author got exactly one final answer per transaction (retries aside).
    for (tid, answers) in w.answers.iter().filter(|_| answered) {
        let finals: Vec<&Outcome> = answers
            .iter()
            .filter_map(|a| {
                if let Answer::Final(o) = a {
                    Some(o)
                } else {
                    None
                }
            })
            .collect();
        assert!(!finals.is_empty(), "tid {tid} never got a final answer");
        assert!(
            finals.windows(2).all(|p| p[0] == p[1]),
            "tid {tid}: a retry got a different answer"
        );
    }
    // A retried key never ran twice.
    let mut keys: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &w.journal {
        if let Record::Intent(i) = r
            && let Some(k) = &i.idempotency_key
        {
            *keys.entry(k.as_str()).or_default() += 1;
        }
    }
    assert!(
        keys.values().all(|&n| n == 1),
        "an idempotency key started two transactions: {keys:?}"
    );
    // The journal alone rebuilds the same state.
    let mut replay = Replay::default();
    for (n, r) in w.journal.iter().enumerate() {
        replay.apply(n as u64, r).unwrap();
    }
    assert!(
        replay.in_doubt().is_empty(),
        "in doubt after drain: {:?}",
        replay.in_doubt()
    );
    assert_eq!(replay.scene, *w.seq.scene());
    assert_eq!(replay.scene_version, w.seq.scene_version());
    assert_eq!(replay.next_tid, w.seq.next_tid());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_transaction_ends_committed_or_rolled_back_everywhere(acts in prop::collection::vec(act(), 1..120)) {
        let mut w = World::new();
        for a in acts {
            w.run(a);
        }
        w.drain();
        check(&w, true);
    }

    /// A restart in the middle of anything resolves every in-doubt
    /// transaction and the engines converge after reconnecting.
    #[test]
    fn recovery_mid_schedule_resolves_in_doubt(acts in prop::collection::vec(act(), 1..80), more in prop::collection::vec(act(), 0..40)) {
        let mut w = World::new();
        for a in acts {
            w.run(a);
        }
        w.restart(Config::new(ENGINES.iter().map(|s| s.to_string()).collect()));
        for a in more {
            w.run(a);
        }
        w.drain();
        check(&w, false);
    }

    /// The same end state with up to four transactions active at once.
    #[test]
    fn concurrent_transactions_end_committed_or_rolled_back_everywhere(acts in prop::collection::vec(act(), 1..160)) {
        let mut w = World::concurrent();
        for a in acts {
            w.run(a);
        }
        w.drain();
        check(&w, true);
    }

    /// The same with the read-back sent right behind the apply (serve's
    /// configuration): early verifications are held until every engine
    /// acked, faults included.
    #[test]
    fn verify_with_apply_ends_committed_or_rolled_back_everywhere(acts in prop::collection::vec(act(), 1..160)) {
        let mut w = World::serve();
        for a in acts {
            w.run(a);
        }
        w.drain();
        check(&w, true);
    }

    #[test]
    fn verify_with_apply_recovery_mid_schedule_resolves_in_doubt(acts in prop::collection::vec(act(), 1..100), more in prop::collection::vec(act(), 0..40)) {
        let mut w = World::serve();
        for a in acts {
            w.run(a);
        }
        w.restart(serve_config());
        for a in more {
            w.run(a);
        }
        w.drain();
        check(&w, false);
    }

    #[test]
    fn concurrent_recovery_mid_schedule_resolves_in_doubt(acts in prop::collection::vec(act(), 1..100), more in prop::collection::vec(act(), 0..40)) {
        let mut w = World::concurrent();
        for a in acts {
            w.run(a);
        }
        w.restart(config(true));
        for a in more {
            w.run(a);
        }
        w.drain();
        check(&w, false);
    }
}

#[test]
fn disjoint_transactions_are_active_together_and_overlapping_ones_wait() {
    let mut w = World::concurrent();
    for obj in 0..3 {
        w.submit(obj, 0, false, 9, None); // create o0, o1, o2
    }
    while (0..2).any(|i| !w.engines[i].inbox.is_empty()) {
        for i in 0..2 {
            w.deliver(i, Fault::None);
        }
    }
    assert_eq!(w.seq.scene_version(), 3);
    // Read at version 3: o0 and o1 are disjoint, the second write to o0
    // overlaps the first and waits; o2's write stays queued behind it
    // (begins are in tid order).
    w.submit(0, 1, false, 9, None); // tid 3
    w.submit(1, 1, false, 9, None); // tid 4
    w.submit(0, 1, false, 9, None); // tid 5, overlaps 3
    w.submit(2, 1, false, 9, None); // tid 6, behind 5
    let applied: Vec<u64> = w.engines[0]
        .inbox
        .iter()
        .filter_map(|e| {
            if let Effect::Apply { tid, .. } = e {
                Some(*tid)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        applied,
        [3, 4],
        "3 and 4 active together, 5 waits for 3, 6 waits behind 5"
    );
    // Finish 4 before 3: commits may end in any order.
    let mut inbox: Vec<Effect> = w.engines[0].inbox.drain(..).collect();
    inbox.reverse();
    w.engines[0].inbox.extend(inbox);
    let mut inbox: Vec<Effect> = w.engines[1].inbox.drain(..).collect();
    inbox.reverse();
    w.engines[1].inbox.extend(inbox);
    for _ in 0..2 {
        for i in 0..2 {
            w.deliver(i, Fault::None); // applies (4 first)
        }
    }
    let first_commit = |w: &World| {
        w.journal.iter().find_map(|r| match r {
            Record::Commit {
                tid, scene_version, ..
            } if *scene_version == 4 => Some(*tid),
            _ => None,
        })
    };
    for i in 0..2 {
        w.deliver(i, Fault::None); // verify 4
    }
    assert_eq!(
        first_commit(&w),
        Some(4),
        "tid 4 commits first, to version 4"
    );
    w.drain();
    // tid 5 read version 3, but o0 changed at version 5 (tid 3): stale.
    assert!(w.journal.iter().any(
        |r| matches!(r, Record::Refused { tid: 5, rule, .. } if rule == "stale-scene-version")
    ));
    // tid 6 read version 3 and o2 did not change since: committed.
    assert!(
        w.journal
            .iter()
            .any(|r| matches!(r, Record::Commit { tid: 6, .. }))
    );
    check(&w, true);
}

#[test]
fn footprint_rule_still_refuses_future_and_changed_reads() {
    let mut w = World::concurrent();
    w.submit(0, 0, true, 9, None); // read version 1 while the scene is at 0
    assert!(
        matches!(w.journal.last(), Some(Record::Refused { rule, .. }) if rule == "stale-scene-version")
    );
}

#[test]
fn a_large_scene_records_its_hash_at_sparse_commits_and_replay_checks_them() {
    let mut w = World::new();
    for obj in 0..100 {
        w.submit(obj, 0, false, 9, None);
        w.drain();
    }
    for _ in 0..10 {
        w.submit(7, 1, false, 9, None);
        w.drain();
    }
    let hashed: Vec<bool> = w
        .journal
        .iter()
        .filter_map(|r| match r {
            Record::Commit { scene_hash, .. } => Some(scene_hash.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(hashed.len(), 110);
    // Up to SCENE_HASH_BUDGET objects, every commit; past it, one commit in
    // ceil(objects / budget) (2 for 65..=128 objects).
    let budget = SCENE_HASH_BUDGET as usize;
    assert!(hashed[..budget].iter().all(|&h| h), "{hashed:?}");
    let later = hashed[budget..].iter().filter(|&&h| h).count();
    assert_eq!(later, (110 - budget) / 2, "{hashed:?}");
    // Replay (in `check`) checks every recorded hash on the way.
    check(&w, true);
    // And refuses a journal whose recorded hash disagrees.
    let mut journal = w.journal.clone();
    let last = journal
        .iter_mut()
        .rev()
        .find_map(|r| match r {
            Record::Commit { scene_hash, .. } if scene_hash.is_some() => Some(scene_hash),
            _ => None,
        })
        .unwrap();
    *last = Some(StateHash::default());
    let mut replay = Replay::default();
    let refused = journal
        .iter()
        .enumerate()
        .find_map(|(n, r)| replay.apply(n as u64, r).err());
    assert!(refused.is_some(), "a wrong recorded scene hash is refused");
}

#[test]
fn stale_reads_are_refused_with_the_current_version() {
    let mut w = World::new();
    w.submit(0, 0, true, 9, None);
    let Record::Refused { rule, message, .. } = w.journal.last().unwrap() else {
        panic!("{:?}", w.journal.last())
    };
    assert_eq!(rule, "stale-scene-version");
    assert!(
        message.contains("current version is 0") && message.contains("read the scene"),
        "{message}"
    );
}

#[test]
fn a_retried_intent_gets_the_original_answer_and_is_not_applied_twice() {
    let mut w = World::new();
    w.submit(0, 0, false, 9, Some(1));
    w.drain();
    assert_eq!(w.seq.scene_version(), 1);
    let intents = w.journal.len();
    // Retry with the *old* read version: still the original answer.
    w.input(Input::Submit(Submission {
        source: Source::Agent,
        author: "agent".into(),
        ops: vec![],
        rationale: "retry".into(),
        idempotency_key: Some("k1".into()),
        scene_version_read: 0,
        engines: vec![],
        verdicts: vec![],
        decision: Decision::Allow,
    }));
    assert_eq!(w.journal.len(), intents, "a retry journals nothing");
    assert_eq!(
        w.answers[&0].last(),
        Some(&Answer::Final(Outcome::Committed { scene_version: 1 }))
    );
    assert_eq!(w.seq.scene_version(), 1);
}

#[test]
fn human_locks_block_agents_and_only_the_holder_or_an_operator_lifts_them() {
    let mut w = World::new();
    w.submit(0, 0, false, 9, None);
    w.drain();
    w.input(Input::Lock {
        object: "o0".into(),
        holder: "alice".into(),
        human: true,
    });
    w.submit(0, 1, false, 9, None);
    let Record::Refused { rule, message, .. } = w.journal.last().unwrap() else {
        panic!()
    };
    assert_eq!(rule, "object-locked");
    assert!(message.contains("alice"), "{message}");
    let err = w
        .seq
        .handle(
            w.now,
            Input::Unlock {
                object: "o0".into(),
                by: "agent".into(),
                source: Source::Agent,
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("only the holder or an operator"),
        "{err}"
    );
    w.seq
        .handle(
            w.now,
            Input::Unlock {
                object: "o0".into(),
                by: "root".into(),
                source: Source::Operator,
            },
        )
        .unwrap();
}

#[test]
fn escalations_time_out_to_a_deny() {
    let mut w = World::new();
    w.submit(0, 0, false, 1, None);
    assert!(matches!(w.journal.last(), Some(Record::Escalated { .. })));
    w.run(Act::Advance { ms: 300_001 });
    let Some(Record::Denied { reason, .. }) = w.journal.last() else {
        panic!("{:?}", w.journal.last())
    };
    assert!(reason.contains("timed out"));
}

#[test]
fn a_verification_mismatch_rolls_back_on_every_engine() {
    let mut w = World::new();
    w.submit(0, 0, false, 9, None);
    w.deliver(0, Fault::None); // blender applies
    w.deliver(1, Fault::None); // unity applies -> provisional
    assert!(w.answers[&0].contains(&Answer::Provisional { scene_version: 1 }));
    w.deliver(0, Fault::None); // blender verifies
    w.deliver(1, Fault::WrongHash); // unity mismatches -> rollback
    assert!(
        matches!(w.journal.iter().rev().find(|r| matches!(r, Record::Rollback { .. })), Some(Record::Rollback { reason, .. }) if reason.contains("expected"))
    );
    w.drain();
    assert_eq!(w.seq.scene_version(), 0);
    assert!(w.engines.iter().all(|e| e.scene.objects.is_empty()));
    check(&w, true);
}

/// An engine's apply ack and verify reply reaching the host in one read
/// (an adapter that answers a burst of commands at once): whichever order
/// the shell feeds them in, the transaction commits, with the journal's
/// usual record order, and nothing is refused as unexpected.
#[test]
fn an_apply_ack_and_its_verify_reply_fed_together_commit_in_either_order() {
    for reversed in [false, true] {
        let mut w = World::serve();
        w.submit(0, 0, false, 9, None);
        for i in 0..2 {
            // The engine runs apply then verify; the host gets both replies.
            let ack = w.run_next(i, Fault::None).expect("apply ack");
            let verify = w.run_next(i, Fault::None).expect("verify reply");
            let (first, second) = if reversed {
                (verify, ack)
            } else {
                (ack, verify)
            };
            for r in [first, second] {
                let step = w
                    .seq
                    .handle(w.now, r.clone())
                    .unwrap_or_else(|e| panic!("reversed={reversed}: {r:?} refused: {e}"));
                w.exec(step);
            }
        }
        assert_eq!(
            w.answers[&0],
            [
                Answer::Provisional { scene_version: 1 },
                Answer::Final(Outcome::Committed { scene_version: 1 })
            ],
            "reversed={reversed}"
        );
        let kinds: Vec<&str> = w
            .journal
            .iter()
            .filter(|r| r.tid() == Some(0))
            .map(Record::kind)
            .skip_while(|k| *k != "begin")
            .collect();
        assert_eq!(
            kinds,
            [
                "begin",
                "engine-ack",
                "engine-ack",
                "provisional",
                "verification",
                "verification",
                "commit"
            ],
            "reversed={reversed}"
        );
        w.drain();
        check(&w, true);
    }
}

/// `verify_with_apply`: the read-back goes out right behind the apply; a
/// verification that comes back before every engine acked is held, and the
/// journal keeps the order of the other mode (acks, provisional,
/// verifications, commit).
#[test]
fn verify_with_apply_sends_the_read_back_behind_the_apply_and_keeps_record_order() {
    let mut w = World::serve();
    w.submit(0, 0, false, 9, None);
    for e in &w.engines {
        let kinds: Vec<&str> = e
            .inbox
            .iter()
            .map(|m| match m {
                Effect::Apply { .. } => "apply",
                Effect::Verify { .. } => "verify",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["apply", "verify"]);
    }
    // Blender applies and reads back before Unity acks: both held.
    w.deliver(0, Fault::None);
    w.deliver(0, Fault::None);
    assert!(
        !w.journal
            .iter()
            .any(|r| matches!(r, Record::Verification { .. } | Record::Provisional { .. }))
    );
    let before = w.journal.len();
    w.deliver(1, Fault::None); // unity acks: provisional, then blender's verification
    let kinds: Vec<&str> = w.journal[before..].iter().map(Record::kind).collect();
    assert_eq!(kinds, ["engine-ack", "provisional", "verification"]);
    w.deliver(1, Fault::None); // unity's verification: commit
    assert!(matches!(
        w.journal.last(),
        Some(Record::Commit { tid: 0, .. })
    ));
    assert_eq!(
        w.answers[&0],
        [
            Answer::Provisional { scene_version: 1 },
            Answer::Final(Outcome::Committed { scene_version: 1 })
        ]
    );
    check(&w, true);
}

#[test]
fn verify_with_apply_early_mismatch_rolls_back_after_provisional_and_a_nack_drops_it() {
    let mut w = World::serve();
    w.submit(0, 0, false, 9, None);
    w.deliver(0, Fault::None);
    w.deliver(0, Fault::WrongHash); // held
    w.deliver(1, Fault::None); // all acked: provisional, then the mismatch
    assert!(w.journal.iter().any(
        |r| matches!(r, Record::Rollback { tid: 0, reason } if reason.contains("reports hash"))
    ));
    w.drain();
    check(&w, true);
    assert_eq!(w.seq.scene_version(), 0);

    // A refused apply rolls back at once; the read-back behind it is late.
    let mut w = World::serve();
    w.submit(0, 0, false, 9, None);
    w.deliver(0, Fault::None);
    w.deliver(0, Fault::None); // held verification
    w.deliver(1, Fault::Refuse);
    assert!(matches!(
        w.answers[&0].last(),
        Some(Answer::Final(Outcome::RolledBack { .. }))
    ));
    w.drain();
    assert!(
        !w.journal
            .iter()
            .any(|r| matches!(r, Record::Verification { .. })),
        "a held verification of a rolled-back transaction is not journaled"
    );
    check(&w, true);
}
