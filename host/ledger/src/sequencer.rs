//! The sequencer: one total order of transactions, as a pure state machine.
//!
//! [`Sequencer::handle`] takes an [`Input`] and the current time (a number,
//! never a clock) and returns a [`Step`]: records to make durable, then
//! effects to carry out. The shell (a tokio task in `serve`, a loop in the
//! torture test) must append `step.journal` with one group commit and only
//! then perform `step.effects` in order: that is how every step is in the
//! WAL before it takes effect. The sequencer owns the transaction table;
//! nothing else mutates it.
//!
//! By default one transaction is *active* (applying, verifying or rolling
//! back) at a time; allowed intents queue behind it. That makes the total
//! order of tids the order of effects on every engine, which is what lets an
//! undo token or a resync be exact.
//!
//! [`Config::max_active`] above 1 lets transactions whose *footprints* are
//! disjoint be active together (see [`footprint`]): they begin in tid order
//! (a queued intent that overlaps an active one waits, and so does every
//! intent behind it), and commit in whatever order their verifications
//! finish, each commit applying its ops to the committed scene of that
//! moment. Disjoint footprints make that equal to any serial order, so the
//! journal still replays to the same scene. [`Config::stale_rule`] says
//! when a read is too old; with concurrent writers the per-object rule is
//! the one that lets them proceed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use vibesync_canonical::{ObjectId, Op, Scene, SceneObject, StateHash};
use vibesync_wal::{
    AckOutcome, IntentRecord, LockEntry, Outcome, PolicyRecord, Record, Replay, SessionEvent,
    Source, Stage, Tid, UndoOutcome,
};

/// Timeouts and housekeeping.
#[derive(Clone, Debug)]
pub struct Config {
    /// Every engine the cluster has, by name.
    pub engines: Vec<String>,
    pub apply_timeout_ms: u64,
    pub verify_timeout_ms: u64,
    pub undo_timeout_ms: u64,
    pub escalation_timeout_ms: u64,
    /// Journal a checkpoint after this many commits, at the next idle moment.
    pub checkpoint_every: u64,
    /// Most transactions active at once (1: strictly one after the other).
    /// Concurrent ones always have disjoint footprints.
    pub max_active: usize,
    /// When the scene version an intent was written against is too old.
    pub stale_rule: StaleRule,
    /// Ask for the read-back at begin, right behind the apply
    /// ([`Effect::Verify`] follows each [`Effect::Apply`] in the same step),
    /// instead of after the provisional commit. Engines run an engine's
    /// commands in the order sent, so the read-back sees the applied state;
    /// it saves one engine round trip and one group commit per
    /// transaction. A verification that arrives before every engine has
    /// acknowledged is kept and judged, in engine order, right after the
    /// `Provisional` record, so the journal's order of records is the same
    /// in both modes. Off by default.
    pub verify_with_apply: bool,
}

/// When `scene_version_read` makes an intent stale (checked at begin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StaleRule {
    /// Any commit since the read makes it stale (the read must be the
    /// current version).
    #[default]
    Scene,
    /// Stale when an object in the intent's footprint changed after the
    /// read, when the read is older than what this run can tell apart (the
    /// version recovered at start-up), or when it names a version that does
    /// not exist yet. Writers on different objects do not invalidate each
    /// other's reads.
    Footprint,
}

impl Config {
    pub fn new(engines: Vec<String>) -> Config {
        Config {
            engines,
            apply_timeout_ms: 5_000,
            verify_timeout_ms: 5_000,
            undo_timeout_ms: 5_000,
            escalation_timeout_ms: 300_000,
            checkpoint_every: 10_000,
            max_active: 1,
            stale_rule: StaleRule::Scene,
            verify_with_apply: false,
        }
    }
}

/// What the policy pipeline concluded about an intent.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Allow,
    Deny { reason: String },
    Escalate { reason: String },
}

/// An intent as intake hands it over, with the pipeline's verdicts.
#[derive(Clone, Debug, PartialEq)]
pub struct Submission {
    pub source: Source,
    pub author: String,
    pub ops: Vec<Op>,
    pub rationale: String,
    pub idempotency_key: Option<String>,
    pub scene_version_read: u64,
    /// Target engines; empty means every configured engine.
    pub engines: Vec<String>,
    /// One record per policy that ran (tid is filled in by the sequencer).
    pub verdicts: Vec<PolicyRecord>,
    pub decision: Decision,
}

/// Everything that can happen to the sequencer.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Submit(Submission),
    /// An engine's answer to [`Effect::Apply`].
    Applied {
        tid: Tid,
        engine: String,
        ack: AckOutcome,
    },
    /// An engine's canonical hash of the touched objects (or why it could
    /// not compute one).
    Verified {
        tid: Tid,
        engine: String,
        observed: Result<StateHash, String>,
    },
    /// An engine's answer to [`Effect::Undo`].
    Undone {
        tid: Tid,
        engine: String,
        result: Result<(), String>,
    },
    EngineLost {
        engine: String,
        reason: String,
    },
    /// An engine (re)connected; its state is unknown until resynced.
    EngineBack {
        engine: String,
        session: String,
    },
    Panic {
        reason: String,
    },
    Resume {
        operator: String,
    },
    Decide {
        tid: Tid,
        operator: String,
        approve: bool,
        note: String,
    },
    Lock {
        object: ObjectId,
        holder: String,
        human: bool,
    },
    Unlock {
        object: ObjectId,
        by: String,
        source: Source,
    },
    /// Time passed: fire due timeouts.
    Tick,
}

/// What the author is told.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Every engine applied it; verification follows. `scene_version` is the
    /// version it will have if it commits: the commit's own when it is
    /// journaled with the answer ([`settle_provisional_answers`]), else a
    /// prediction made at the last ack.
    Provisional {
        scene_version: u64,
    },
    /// Waiting for an operator.
    Escalated {
        reason: String,
    },
    /// Accepted, behind `ahead` other transactions.
    Queued {
        ahead: usize,
    },
    /// A retry of a transaction still in progress.
    InProgress,
    Final(Outcome),
}

/// Something the shell must do once the step's journal is durable.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    Apply {
        engine: String,
        tid: Tid,
        ops: Vec<Op>,
    },
    /// Read back and hash these objects (`object_set_hash`).
    Verify {
        engine: String,
        tid: Tid,
        objects: Vec<ObjectId>,
    },
    Undo {
        engine: String,
        tid: Tid,
        token: vibesync_wal::UndoToken,
    },
    /// The transaction committed: the engine may drop its undo token.
    Commit { engine: String, tid: Tid },
    /// Overwrite the engine's tracked state with this canonical scene.
    Resync {
        engine: String,
        scene: Scene,
        scene_version: u64,
    },
    Answer {
        tid: Tid,
        author: String,
        answer: Answer,
    },
}

/// The output of one [`Sequencer::handle`] call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// Append these with one group commit before doing anything else.
    pub journal: Vec<Record>,
    pub effects: Vec<Effect>,
    /// For `Submit`: the tid the intent got (or, for a retry, had).
    pub tid: Option<Tid>,
}

/// Give provisional answers still waiting in `effects` the version their
/// transaction's commit in `journal` got.
///
/// [`Answer::Provisional`] predicts the version at the last ack; when
/// transactions commit out of tid order the prediction is off, and an author
/// who passes it on as its next read (as the tools tell agents to) would be
/// refused as stale. A shell that stages several steps into one group commit
/// (the serve's core: an engine's ack and its read-back arrive together)
/// calls this on everything staged with each step's records, so an answer
/// that leaves with its commit names the committed version. Answers already
/// given keep their prediction.
pub fn settle_provisional_answers(effects: &mut [Effect], journal: &[Record]) {
    for r in journal {
        let Record::Commit {
            tid, scene_version, ..
        } = r
        else {
            continue;
        };
        for e in effects.iter_mut() {
            if let Effect::Answer {
                tid: t,
                answer: Answer::Provisional { scene_version: v },
                ..
            } = e
                && t == tid
            {
                *v = *scene_version;
            }
        }
    }
}

/// A refused input (operator mistakes, messages about finished work).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SequencerError {
    #[error("tid {tid}: {what}; the message is ignored")]
    Unexpected { tid: Tid, what: String },
    #[error("unknown engine `{0}`; configured engines are listed in the host config")]
    UnknownEngine(String),
    #[error("cannot resume: {0}")]
    CannotResume(String),
    #[error("lock on `{object}`: {what}")]
    Lock { object: ObjectId, what: String },
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Escalated { deadline: u64 },
    Queued,
    Applying { deadline: u64 },
    Verifying { deadline: u64 },
    RollingBack { deadline: u64 },
}

/// What an intent's ops make of the committed scene, found by [`trial`].
struct Trial {
    /// The objects they touch, sorted.
    touched: Vec<ObjectId>,
    /// What they make of each (`None`: deleted).
    after: Vec<(ObjectId, Option<SceneObject>)>,
    /// The hash of the touched objects afterwards.
    expected: StateHash,
}

/// Apply `ops` to `scene` (the committed one) on trial, or name the first
/// op that does not apply. The scene is left as it was. Each op changes
/// only the objects `touched_by` names and checks before it changes
/// anything, so putting those objects back undoes the trial without
/// copying the rest of the scene.
fn trial(scene: &mut Scene, ops: &[Op]) -> Result<Trial, (usize, vibesync_canonical::OpError)> {
    let mut before: BTreeMap<ObjectId, Option<SceneObject>> = BTreeMap::new();
    let mut result = Ok(());
    for (i, op) in ops.iter().enumerate() {
        for id in scene.touched_by(op) {
            if let std::collections::btree_map::Entry::Vacant(v) = before.entry(id) {
                let prior = scene.get(v.key()).cloned();
                v.insert(prior);
            }
        }
        if let Err(e) = scene.apply(op) {
            result = Err((i, e));
            break;
        }
    }
    let trial = result.map(|()| {
        let touched: Vec<ObjectId> = before.keys().cloned().collect();
        Trial {
            after: touched
                .iter()
                .map(|id| (id.clone(), scene.get(id).cloned()))
                .collect(),
            expected: scene.hash_of(&touched),
            touched,
        }
    });
    for (id, prior) in before {
        scene.put(id, prior);
    }
    trial
}

/// The objects an intent's ops read or write, as far as ordering goes: what
/// they touch (a deleted object's descendants included), plus the parent a
/// created object attaches to. `None` when the intent must run alone: an op
/// that names no object (`run_script` can change anything, `select`), or a
/// reparent (whether it closes a cycle depends on every ancestor, which
/// another transaction could be moving).
pub fn footprint(scene: &Scene, ops: &[Op]) -> Option<BTreeSet<ObjectId>> {
    let mut set = BTreeSet::new();
    for op in ops {
        let ids = scene.touched_by(op);
        if ids.is_empty() || matches!(op, Op::ReparentObject { .. }) {
            return None;
        }
        set.extend(ids);
        if let Op::CreateObject {
            parent: Some(p), ..
        } = op
        {
            set.insert(p.clone());
        }
    }
    Some(set)
}

#[derive(Clone, Debug)]
struct Txn {
    intent: IntentRecord,
    phase: Phase,
    /// Set at begin; `None` for an intent that runs alone.
    footprint: Option<BTreeSet<ObjectId>>,
    touched: Vec<ObjectId>,
    expected: StateHash,
    /// What the ops make of each touched object (`None`: deleted),
    /// computed at begin; the commit writes these into the scene.
    after: Vec<(ObjectId, Option<SceneObject>)>,
    acks: BTreeMap<String, AckOutcome>,
    verified: BTreeSet<String>,
    /// Verifications that arrived while still applying
    /// ([`Config::verify_with_apply`]), judged once every engine acked.
    early: BTreeMap<String, Result<StateHash, String>>,
    undo_pending: BTreeSet<String>,
}

/// The transaction table and canonical state. See the module docs.
#[derive(Debug)]
pub struct Sequencer {
    cfg: Config,
    scene: Scene,
    version: u64,
    next_tid: Tid,
    txns: BTreeMap<Tid, Txn>,
    queue: VecDeque<Tid>,
    /// Active transactions (at most `cfg.max_active`), in begin order.
    active: BTreeSet<Tid>,
    /// The version at which each object last changed (committed), for
    /// [`StaleRule::Footprint`]; objects absent changed at or before
    /// `stale_floor`.
    modified: BTreeMap<ObjectId, u64>,
    stale_floor: u64,
    idem_done: BTreeMap<String, (Tid, Outcome)>,
    idem_open: BTreeMap<String, Tid>,
    locks: BTreeMap<ObjectId, LockEntry>,
    panic: Option<String>,
    /// Engines with a live session.
    up: BTreeSet<String>,
    commits_since_checkpoint: u64,
    /// Commits recorded without the whole scene's hash since the last one
    /// recorded with it (see [`SCENE_HASH_BUDGET`]).
    commits_since_scene_hash: u64,
}

/// Objects' worth of whole-scene hashing a commit may cost, amortised: a
/// commit record carries the scene's hash when the commits since the last
/// one that did, this one included, times this budget reach the scene's
/// object count. A scene of up to this many objects is hashed at every
/// commit; one of 5 000 at every 79th. Hashing the whole scene at every
/// commit made a commit O(scene) — most of the serve's CPU at 5 000
/// objects. Replay checks each recorded hash when it reaches it, and the
/// verification hash of every transaction (over exactly what it touched)
/// is in its `begin` record either way.
pub const SCENE_HASH_BUDGET: u64 = 64;

impl Sequencer {
    /// A fresh cluster (empty journal). Engines start disconnected.
    pub fn new(cfg: Config) -> Sequencer {
        Sequencer::recover(cfg, Replay::default()).0
    }

    /// Continue from a replayed journal. The returned step resolves every
    /// in-doubt transaction (roll back, mark the engines it reached for
    /// resync); journal it before serving. Engines start disconnected and
    /// are resynced when they come back.
    pub fn recover(cfg: Config, replay: Replay) -> (Sequencer, Step) {
        let mut step = Step::default();
        for txn in replay.in_doubt() {
            let tid = txn.intent.tid;
            match txn.stage {
                Stage::Submitted | Stage::Escalated | Stage::Approved => step.journal.push(Record::Refused {
                    tid,
                    rule: "host-restarted".into(),
                    message: "the host restarted before this transaction began; nothing was applied, resubmit it".into(),
                }),
                Stage::Begun | Stage::Provisional => {
                    step.journal.push(Record::Rollback { tid, reason: "the host restarted before the transaction committed".into() });
                }
                Stage::RollingBack => {}
            }
            if matches!(
                txn.stage,
                Stage::Begun | Stage::Provisional | Stage::RollingBack
            ) {
                for engine in txn.engines_to_undo() {
                    step.journal.push(Record::Undo {
                        tid,
                        engine,
                        undo: UndoOutcome::Resync {
                            why: "host restarted; the engine is resynced when it reconnects".into(),
                        },
                    });
                }
            }
        }
        // The resolution records finish the transactions in the replay too.
        let mut replay = replay;
        for (i, r) in step.journal.iter().enumerate() {
            replay
                .apply(u64::MAX - i as u64, r)
                .expect("resolution records fit the replayed state");
        }
        let seq = Sequencer {
            cfg,
            scene: replay.scene,
            version: replay.scene_version,
            next_tid: replay.next_tid,
            txns: BTreeMap::new(),
            queue: VecDeque::new(),
            active: BTreeSet::new(),
            modified: BTreeMap::new(),
            stale_floor: replay.scene_version,
            idem_done: replay.idempotency,
            idem_open: BTreeMap::new(),
            locks: replay.locks,
            panic: replay.panic,
            up: BTreeSet::new(),
            commits_since_checkpoint: 0,
            commits_since_scene_hash: 0,
        };
        (seq, step)
    }

    /// The committed canonical scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    pub fn scene_version(&self) -> u64 {
        self.version
    }

    /// The tid the next submission will get.
    pub fn next_tid(&self) -> Tid {
        self.next_tid
    }

    pub fn panic(&self) -> Option<&str> {
        self.panic.as_deref()
    }

    /// The scene an operator's resume reconciles every engine to before the
    /// cluster leaves PANIC; `None` outside PANIC. Outside PANIC
    /// transactions commit while the engines are being reconciled, and a
    /// resync to a scene read beforehand would erase those commits on the
    /// engine with nothing left to notice; nor is a reconcile needed then,
    /// since every engine that came back was resynced on `EngineBack`.
    pub fn resume_scene(&self) -> Option<&Scene> {
        self.panic.is_some().then_some(&self.scene)
    }

    /// Transactions not finished yet (escalated, queued or active).
    pub fn open_tids(&self) -> Vec<Tid> {
        self.txns.keys().copied().collect()
    }

    pub fn locks(&self) -> impl Iterator<Item = &LockEntry> {
        self.locks.values()
    }

    /// Feed one input. Errors leave the state unchanged.
    pub fn handle(&mut self, now: u64, input: Input) -> Result<Step, SequencerError> {
        let mut s = Step::default();
        match input {
            Input::Submit(sub) => self.submit(now, sub, &mut s),
            Input::Applied { tid, engine, ack } => self.applied(now, tid, engine, ack, &mut s)?,
            Input::Verified {
                tid,
                engine,
                observed,
            } => self.verified(now, tid, engine, observed, &mut s)?,
            Input::Undone {
                tid,
                engine,
                result,
            } => self.undone(now, tid, engine, result, &mut s)?,
            Input::EngineLost { engine, reason } => {
                self.engine_lost(now, engine, reason, &mut s)?
            }
            Input::EngineBack { engine, session } => {
                self.known(&engine)?;
                s.journal.push(Record::EngineSession {
                    engine: engine.clone(),
                    session: SessionEvent::Open { session },
                });
                self.up.insert(engine.clone());
                self.resync(
                    now,
                    &engine,
                    "engine (re)connected; its state is replaced by the canonical scene",
                    &mut s,
                );
            }
            Input::Panic { reason } => {
                s.journal.push(Record::Panic {
                    reason: reason.clone(),
                });
                self.panic = Some(reason.clone());
                // A rollback can end others (a resync erases them), so
                // look each one up again.
                for tid in self.active.clone() {
                    if self.active.contains(&tid)
                        && !matches!(self.txns[&tid].phase, Phase::RollingBack { .. })
                    {
                        self.rollback(now, tid, format!("PANIC: {reason}"), &mut s);
                    }
                }
                for tid in std::mem::take(&mut self.queue) {
                    self.refuse(tid, "panic", format!("the cluster is in PANIC ({reason}); nothing is applied until an operator resumes"), &mut s);
                }
            }
            Input::Resume { operator } => {
                if self.panic.is_none() {
                    return Err(SequencerError::CannotResume(
                        "the cluster is not in PANIC".into(),
                    ));
                }
                if let Some(down) = self.cfg.engines.iter().find(|e| !self.up.contains(*e)) {
                    return Err(SequencerError::CannotResume(format!(
                        "engine `{down}` is not connected; resume once it is back (it is resynced on reconnect)"
                    )));
                }
                s.journal.push(Record::Resume { operator });
                self.panic = None;
            }
            Input::Decide {
                tid,
                operator,
                approve,
                note,
            } => {
                let Some(Txn {
                    phase: Phase::Escalated { .. },
                    ..
                }) = self.txns.get(&tid)
                else {
                    return Err(SequencerError::Unexpected {
                        tid,
                        what: "is not waiting for an operator decision".into(),
                    });
                };
                s.journal.push(Record::OperatorDecision {
                    tid,
                    operator: operator.clone(),
                    approve,
                    note: note.clone(),
                });
                if approve {
                    self.enqueue(tid, &mut s);
                } else {
                    self.deny(
                        tid,
                        format!("denied by operator {operator}: {note}"),
                        &mut s,
                    );
                }
            }
            Input::Lock {
                object,
                holder,
                human,
            } => {
                if let Some(l) = self.locks.get(&object)
                    && l.holder != holder
                {
                    return Err(SequencerError::Lock {
                        object,
                        what: format!(
                            "already locked by `{}`; ask them to unlock it first",
                            l.holder
                        ),
                    });
                }
                let entry = LockEntry {
                    object: object.clone(),
                    holder,
                    human,
                };
                s.journal.push(Record::Lock(entry.clone()));
                self.locks.insert(object, entry);
            }
            Input::Unlock { object, by, source } => {
                let Some(l) = self.locks.get(&object) else {
                    return Err(SequencerError::Lock {
                        object,
                        what: "is not locked".into(),
                    });
                };
                if l.holder != by
                    && (l.human || source == Source::Agent)
                    && source != Source::Operator
                {
                    let what = format!(
                        "held by `{}`{}; only the holder or an operator can lift it",
                        l.holder,
                        if l.human { " (a human lock)" } else { "" }
                    );
                    return Err(SequencerError::Lock { object, what });
                }
                s.journal.push(Record::Unlock {
                    object: object.clone(),
                    by,
                });
                self.locks.remove(&object);
            }
            Input::Tick => self.tick(now, &mut s),
        }
        self.pump(now, &mut s);
        Ok(s)
    }

    fn known(&self, engine: &str) -> Result<(), SequencerError> {
        if self.cfg.engines.iter().any(|e| e == engine) {
            Ok(())
        } else {
            Err(SequencerError::UnknownEngine(engine.into()))
        }
    }

    fn submit(&mut self, now: u64, sub: Submission, s: &mut Step) {
        if let Some(key) = &sub.idempotency_key {
            if let Some((tid, outcome)) = self.idem_done.get(key) {
                s.tid = Some(*tid);
                s.effects.push(Effect::Answer {
                    tid: *tid,
                    author: sub.author,
                    answer: Answer::Final(outcome.clone()),
                });
                return;
            }
            if let Some(tid) = self.idem_open.get(key) {
                s.tid = Some(*tid);
                s.effects.push(Effect::Answer {
                    tid: *tid,
                    author: sub.author,
                    answer: Answer::InProgress,
                });
                return;
            }
        }
        let tid = self.next_tid;
        self.next_tid += 1;
        s.tid = Some(tid);
        // Host-assigned ids make replay deterministic.
        let ops: Vec<Op> = sub
            .ops
            .into_iter()
            .enumerate()
            .map(|(i, op)| match op {
                Op::CreateObject {
                    id: None,
                    name,
                    kind,
                    primitive,
                    parent,
                    transform,
                } => Op::CreateObject {
                    id: Some(format!("obj-{tid}-{i}")),
                    name,
                    kind,
                    primitive,
                    parent,
                    transform,
                },
                other => other,
            })
            .collect();
        let engines = if sub.engines.is_empty() {
            self.cfg.engines.clone()
        } else {
            sub.engines
        };
        let intent = IntentRecord {
            tid,
            source: sub.source,
            author: sub.author,
            ops,
            rationale: sub.rationale,
            idempotency_key: sub.idempotency_key.clone(),
            scene_version_read: sub.scene_version_read,
            engines,
        };
        s.journal.push(Record::Intent(intent.clone()));
        for mut v in sub.verdicts {
            v.tid = tid;
            s.journal.push(Record::Policy(v));
        }
        if let Some(key) = sub.idempotency_key {
            self.idem_open.insert(key, tid);
        }
        let txn = Txn {
            intent,
            phase: Phase::Queued,
            footprint: None,
            touched: Vec::new(),
            expected: StateHash::default(),
            after: Vec::new(),
            acks: BTreeMap::new(),
            verified: BTreeSet::new(),
            early: BTreeMap::new(),
            undo_pending: BTreeSet::new(),
        };
        self.txns.insert(tid, txn);
        match sub.decision {
            Decision::Deny { reason } => self.deny(tid, reason, s),
            Decision::Escalate { reason } => {
                let deadline = now + self.cfg.escalation_timeout_ms;
                s.journal.push(Record::Escalated {
                    tid,
                    reason: reason.clone(),
                    deadline_ms: deadline,
                });
                let t = self.txns.get_mut(&tid).expect("inserted");
                t.phase = Phase::Escalated { deadline };
                let author = t.intent.author.clone();
                s.effects.push(Effect::Answer {
                    tid,
                    author,
                    answer: Answer::Escalated { reason },
                });
            }
            Decision::Allow => self.enqueue(tid, s),
        }
    }

    fn enqueue(&mut self, tid: Tid, s: &mut Step) {
        if let Some(reason) = &self.panic {
            let msg = format!(
                "the cluster is in PANIC ({reason}); nothing is applied until an operator resumes"
            );
            return self.refuse(tid, "panic", msg, s);
        }
        let t = self.txns.get_mut(&tid).expect("open");
        t.phase = Phase::Queued;
        self.queue.push_back(tid);
        let ahead = self.queue.len() - 1 + self.active.len();
        if ahead > 0 {
            s.effects.push(Effect::Answer {
                tid,
                author: t.intent.author.clone(),
                answer: Answer::Queued { ahead },
            });
        }
    }

    /// Start queued transactions, in tid order, while there is room and
    /// the next one does not overlap an active one.
    fn pump(&mut self, now: u64, s: &mut Step) {
        while self.active.len() < self.cfg.max_active.max(1) {
            let Some(&tid) = self.queue.front() else {
                break;
            };
            if !self.begin(now, tid, s) {
                break;
            }
            self.queue.pop_front();
        }
        if self.txns.is_empty() && self.commits_since_checkpoint >= self.cfg.checkpoint_every {
            s.journal
                .push(Record::Checkpoint(Box::new(vibesync_wal::Checkpoint {
                    scene: self.scene.clone(),
                    scene_version: self.version,
                    next_tid: self.next_tid,
                    idempotency: self
                        .idem_done
                        .iter()
                        .map(|(k, (t, o))| (k.clone(), *t, o.clone()))
                        .collect(),
                    locks: self.locks.values().cloned().collect(),
                    panic: self.panic.clone(),
                })));
            self.commits_since_checkpoint = 0;
        }
    }

    /// Why an intent read at `read` is stale for this footprint, if it is.
    fn stale(&self, read: u64, footprint: Option<&BTreeSet<ObjectId>>) -> Option<String> {
        let current = self.version;
        let changed = match (self.cfg.stale_rule, footprint) {
            (StaleRule::Footprint, Some(ids)) if read <= current && read >= self.stale_floor => ids
                .iter()
                .find(|id| self.modified.get(*id).is_some_and(|&v| v > read))
                .map(|id| format!("object `{id}` changed at version {}", self.modified[id])),
            _ if read == current => None,
            _ => Some(format!("the current version is {current}")),
        };
        changed.map(|why| {
            format!("the intent was written against scene version {read} and {why}; read the scene first, then resubmit")
        })
    }

    /// Begin `tid` (the head of the queue), or refuse it. `false` when it
    /// must wait: it overlaps an active transaction.
    fn begin(&mut self, now: u64, tid: Tid, s: &mut Step) -> bool {
        let t = &self.txns[&tid];
        let intent = &t.intent;
        if let Some(reason) = &self.panic {
            let msg = format!(
                "the cluster is in PANIC ({reason}); nothing is applied until an operator resumes"
            );
            self.refuse(tid, "panic", msg, s);
            return true;
        }
        let footprint = footprint(&self.scene, &intent.ops);
        if !self.active.is_empty() {
            let overlaps = match &footprint {
                None => true,
                Some(ids) => self.active.iter().any(|a| {
                    self.txns[a]
                        .footprint
                        .as_ref()
                        .is_none_or(|other| !other.is_disjoint(ids))
                }),
            };
            if overlaps {
                return false;
            }
        }
        if let Some(msg) = self.stale(intent.scene_version_read, footprint.as_ref()) {
            self.refuse(tid, "stale-scene-version", msg, s);
            return true;
        }
        if let Some(e) = intent
            .engines
            .iter()
            .find(|e| !self.cfg.engines.contains(e))
        {
            let msg = format!(
                "engine `{e}` is not configured; target one of {:?}",
                self.cfg.engines
            );
            self.refuse(tid, "unknown-engine", msg, s);
            return true;
        }
        if let Some(e) = intent.engines.iter().find(|e| !self.up.contains(*e)) {
            let msg = format!("engine `{e}` is not connected; retry when it is back");
            self.refuse(tid, "engine-unavailable", msg, s);
            return true;
        }
        let Trial {
            touched,
            after,
            expected,
        } = match trial(&mut self.scene, &intent.ops) {
            Ok(trial) => trial,
            Err((i, e)) => {
                let msg = format!("op {i} ({}): {e}", intent.ops[i].name());
                self.refuse(tid, "op-invalid", msg, s);
                return true;
            }
        };
        if intent.source != Source::Operator
            && let Some(l) = touched
                .iter()
                .filter_map(|id| self.locks.get(id))
                .find(|l| l.holder != intent.author)
        {
            let msg = format!(
                "object `{}` is locked by `{}`{}; ask them to release it or choose other objects",
                l.object,
                l.holder,
                if l.human {
                    " (a human lock an agent cannot lift)"
                } else {
                    ""
                }
            );
            self.refuse(tid, "object-locked", msg, s);
            return true;
        }
        let engines = intent.engines.clone();
        let ops = intent.ops.clone();
        s.journal.push(Record::Begin {
            tid,
            touched: touched.clone(),
            engines: engines.clone(),
            expected,
        });
        for engine in &engines {
            s.effects.push(Effect::Apply {
                engine: engine.clone(),
                tid,
                ops: ops.clone(),
            });
            if self.cfg.verify_with_apply {
                s.effects.push(Effect::Verify {
                    engine: engine.clone(),
                    tid,
                    objects: touched.clone(),
                });
            }
        }
        let t = self.txns.get_mut(&tid).expect("open");
        t.touched = touched;
        t.expected = expected;
        t.after = after;
        t.footprint = footprint;
        t.phase = Phase::Applying {
            deadline: now + self.cfg.apply_timeout_ms,
        };
        self.active.insert(tid);
        true
    }

    fn active_txn(
        &mut self,
        tid: Tid,
        engine: &str,
        what: &str,
    ) -> Result<&mut Txn, SequencerError> {
        let unexpected = |w: String| SequencerError::Unexpected { tid, what: w };
        if !self.active.contains(&tid) {
            return Err(unexpected(format!(
                "{what} from `{engine}` for a transaction that is not active"
            )));
        }
        let t = self.txns.get_mut(&tid).expect("active is open");
        if !t.intent.engines.iter().any(|e| e == engine) {
            return Err(unexpected(format!(
                "{what} from `{engine}`, which is not a target"
            )));
        }
        Ok(t)
    }

    fn applied(
        &mut self,
        now: u64,
        tid: Tid,
        engine: String,
        ack: AckOutcome,
        s: &mut Step,
    ) -> Result<(), SequencerError> {
        let verify_deadline = now + self.cfg.verify_timeout_ms;
        let pipelined = self.cfg.verify_with_apply;
        // The version it gets if it, and those begun before it, commit.
        let next_version = self.version + 1 + self.active.range(..tid).count() as u64;
        let t = self.active_txn(tid, &engine, "apply ack")?;
        if !matches!(t.phase, Phase::Applying { .. }) || t.acks.contains_key(&engine) {
            return Err(SequencerError::Unexpected {
                tid,
                what: format!("late or duplicate apply ack from `{engine}`"),
            });
        }
        s.journal.push(Record::EngineAck {
            tid,
            engine: engine.clone(),
            ack: ack.clone(),
        });
        t.acks.insert(engine.clone(), ack.clone());
        if let AckOutcome::Failed { error } = ack {
            self.rollback(
                now,
                tid,
                format!("engine `{engine}` could not apply: {error}"),
                s,
            );
            return Ok(());
        }
        if t.acks.len() == t.intent.engines.len() {
            s.journal.push(Record::Provisional { tid });
            t.phase = Phase::Verifying {
                deadline: verify_deadline,
            };
            let author = t.intent.author.clone();
            s.effects.push(Effect::Answer {
                tid,
                author,
                answer: Answer::Provisional {
                    scene_version: next_version,
                },
            });
            if !pipelined {
                for engine in &t.intent.engines {
                    s.effects.push(Effect::Verify {
                        engine: engine.clone(),
                        tid,
                        objects: t.touched.clone(),
                    });
                }
                return Ok(());
            }
            // The read-backs were asked for at begin; judge those that came
            // early, in engine order, now that the record order allows it.
            let early = std::mem::take(&mut t.early);
            for (engine, observed) in early {
                let still_verifying = self
                    .txns
                    .get(&tid)
                    .is_some_and(|t| matches!(t.phase, Phase::Verifying { .. }));
                if !still_verifying {
                    break;
                }
                self.judge(now, tid, engine, observed, s);
            }
        }
        Ok(())
    }

    fn verified(
        &mut self,
        now: u64,
        tid: Tid,
        engine: String,
        observed: Result<StateHash, String>,
        s: &mut Step,
    ) -> Result<(), SequencerError> {
        let early_ok = self.cfg.verify_with_apply;
        let t = self.active_txn(tid, &engine, "verification")?;
        if early_ok && matches!(t.phase, Phase::Applying { .. }) && !t.early.contains_key(&engine) {
            // Asked for right behind the apply; judged after `Provisional`.
            t.early.insert(engine, observed);
            return Ok(());
        }
        if !matches!(t.phase, Phase::Verifying { .. }) || t.verified.contains(&engine) {
            return Err(SequencerError::Unexpected {
                tid,
                what: format!("late or duplicate verification from `{engine}`"),
            });
        }
        self.judge(now, tid, engine, observed, s);
        Ok(())
    }

    /// Journal one engine's verification of `tid` (verifying) and commit
    /// or roll back.
    fn judge(
        &mut self,
        now: u64,
        tid: Tid,
        engine: String,
        observed: Result<StateHash, String>,
        s: &mut Step,
    ) {
        let t = self.txns.get_mut(&tid).expect("verifying is open");
        let expected = t.expected;
        let (obs, err) = match &observed {
            Ok(h) => (Some(*h), None),
            Err(e) => (None, Some(e.clone())),
        };
        s.journal.push(Record::Verification {
            tid,
            engine: engine.clone(),
            expected,
            observed: obs,
            error: err,
        });
        match observed {
            Err(e) => self.rollback(now, tid, format!("engine `{engine}` could not verify: {e}"), s),
            Ok(h) if h != expected => self.rollback(
                now,
                tid,
                format!("engine `{engine}` reports hash {h} for the touched objects, expected {expected}"),
                s,
            ),
            Ok(_) => {
                t.verified.insert(engine);
                if t.verified.len() == t.intent.engines.len() {
                    self.commit(tid, s);
                }
            }
        }
    }

    fn commit(&mut self, tid: Tid, s: &mut Step) {
        let t = self.txns.remove(&tid).expect("active");
        self.active.remove(&tid);
        // The ops change exactly the touched objects, and what they make
        // of them depends only on the footprint. Transactions that
        // committed since this one began had footprints disjoint from its
        // own, so writing the states computed at begin is applying the ops
        // to the committed scene of this moment (the journal replays them
        // so, and recovery checks the hash) — without copying the scene.
        for (id, obj) in t.after {
            self.scene.put(id, obj);
        }
        self.version += 1;
        for id in t.footprint.iter().flatten().chain(&t.touched) {
            self.modified.insert(id.clone(), self.version);
        }
        self.commits_since_scene_hash += 1;
        let scene_hash = (self.commits_since_scene_hash * SCENE_HASH_BUDGET
            >= self.scene.objects.len() as u64)
            .then(|| {
                self.commits_since_scene_hash = 0;
                self.scene.hash()
            });
        s.journal.push(Record::Commit {
            tid,
            scene_version: self.version,
            scene_hash,
        });
        for engine in &t.intent.engines {
            s.effects.push(Effect::Commit {
                engine: engine.clone(),
                tid,
            });
        }
        self.commits_since_checkpoint += 1;
        self.finish(
            t.intent,
            Outcome::Committed {
                scene_version: self.version,
            },
            s,
        );
    }

    fn finish(&mut self, intent: IntentRecord, outcome: Outcome, s: &mut Step) {
        if let Some(key) = &intent.idempotency_key {
            self.idem_open.remove(key);
            self.idem_done
                .insert(key.clone(), (intent.tid, outcome.clone()));
        }
        s.effects.push(Effect::Answer {
            tid: intent.tid,
            author: intent.author,
            answer: Answer::Final(outcome),
        });
    }

    fn refuse(&mut self, tid: Tid, rule: &str, message: String, s: &mut Step) {
        let t = self.txns.remove(&tid).expect("open");
        s.journal.push(Record::Refused {
            tid,
            rule: rule.into(),
            message: message.clone(),
        });
        self.finish(
            t.intent,
            Outcome::Refused {
                rule: rule.into(),
                message,
            },
            s,
        );
    }

    fn deny(&mut self, tid: Tid, reason: String, s: &mut Step) {
        let t = self.txns.remove(&tid).expect("open");
        s.journal.push(Record::Denied {
            tid,
            reason: reason.clone(),
        });
        self.finish(t.intent, Outcome::Denied { reason }, s);
    }

    /// Decide to roll back the active transaction: undo where an engine
    /// holds a token, resync where it may have applied without telling us.
    fn rollback(&mut self, now: u64, tid: Tid, reason: String, s: &mut Step) {
        s.journal.push(Record::Rollback {
            tid,
            reason: reason.clone(),
        });
        let t = self.txns.get_mut(&tid).expect("active");
        let intent = t.intent.clone();
        let mut resync = Vec::new();
        for engine in &intent.engines {
            match t.acks.get(engine) {
                Some(AckOutcome::Failed { .. }) => {}
                Some(AckOutcome::Applied { undo_token }) if self.up.contains(engine) => {
                    s.effects.push(Effect::Undo {
                        engine: engine.clone(),
                        tid,
                        token: undo_token.clone(),
                    });
                    t.undo_pending.insert(engine.clone());
                }
                _ => resync.push(engine.clone()),
            }
        }
        t.phase = Phase::RollingBack {
            deadline: now + self.cfg.undo_timeout_ms,
        };
        for engine in resync {
            let why = if self.up.contains(&engine) {
                "no apply ack before the rollback"
            } else {
                "engine disconnected; resynced when it reconnects"
            };
            s.journal.push(Record::Undo {
                tid,
                engine: engine.clone(),
                undo: UndoOutcome::Resync { why: why.into() },
            });
            self.resync(now, &engine, why, s);
        }
        // The outcome is final for the author now; the engines catch up.
        let outcome = Outcome::RolledBack { reason };
        if let Some(key) = &intent.idempotency_key {
            self.idem_open.remove(key);
            self.idem_done.insert(key.clone(), (tid, outcome.clone()));
        }
        s.effects.push(Effect::Answer {
            tid,
            author: intent.author.clone(),
            answer: Answer::Final(outcome),
        });
        self.maybe_end_rollback(tid);
    }

    fn maybe_end_rollback(&mut self, tid: Tid) {
        if self
            .txns
            .get(&tid)
            .is_some_and(|t| t.undo_pending.is_empty())
        {
            self.txns.remove(&tid);
            self.active.remove(&tid);
        }
    }

    /// Overwrite an engine with the canonical scene (now if connected,
    /// otherwise on reconnect, which always resyncs).
    ///
    /// The committed scene does not hold what other active transactions
    /// applied on that engine, so the resync erases it there: each of them
    /// is rolled back (its undo restores committed values, which is what
    /// the engine then holds). With one active transaction there are none.
    fn resync(&mut self, now: u64, engine: &str, reason: &str, s: &mut Step) {
        if !self.up.contains(engine) {
            return; // `EngineBack` always resyncs.
        }
        s.journal.push(Record::Resync {
            engine: engine.into(),
            reason: reason.into(),
            scene_hash: self.scene.hash(),
        });
        s.effects.push(Effect::Resync {
            engine: engine.into(),
            scene: self.scene.clone(),
            scene_version: self.version,
        });
        let in_flight = |seq: &Sequencer, tid: &Tid| {
            seq.active.contains(tid)
                && seq.txns.get(tid).is_some_and(|t| {
                    !matches!(t.phase, Phase::RollingBack { .. })
                        && t.intent.engines.iter().any(|e| e == engine)
                })
        };
        let erased: Vec<Tid> = self
            .active
            .iter()
            .copied()
            .filter(|t| in_flight(self, t))
            .collect();
        for tid in erased {
            // A rollback above may already have reached it (its own resyncs).
            if in_flight(self, &tid) {
                let why = format!(
                    "engine `{engine}` was resynced while the transaction was in flight ({reason})"
                );
                self.rollback(now, tid, why, s);
            }
        }
    }

    fn undone(
        &mut self,
        now: u64,
        tid: Tid,
        engine: String,
        result: Result<(), String>,
        s: &mut Step,
    ) -> Result<(), SequencerError> {
        let t = self.active_txn(tid, &engine, "undo result")?;
        if !matches!(t.phase, Phase::RollingBack { .. }) || !t.undo_pending.remove(&engine) {
            return Err(SequencerError::Unexpected {
                tid,
                what: format!("unexpected undo result from `{engine}`"),
            });
        }
        match result {
            Ok(()) => s.journal.push(Record::Undo {
                tid,
                engine,
                undo: UndoOutcome::Undone,
            }),
            Err(e) => {
                let why = format!("undo failed: {e}");
                s.journal.push(Record::Undo {
                    tid,
                    engine: engine.clone(),
                    undo: UndoOutcome::Resync { why: why.clone() },
                });
                self.resync(now, &engine, &why, s);
            }
        }
        self.maybe_end_rollback(tid);
        Ok(())
    }

    fn engine_lost(
        &mut self,
        now: u64,
        engine: String,
        reason: String,
        s: &mut Step,
    ) -> Result<(), SequencerError> {
        self.known(&engine)?;
        if !self.up.remove(&engine) {
            return Ok(());
        }
        s.journal.push(Record::EngineSession {
            engine: engine.clone(),
            session: SessionEvent::Close {
                reason: reason.clone(),
            },
        });
        for tid in self.active.clone() {
            // An earlier rollback in this loop may have ended it.
            let Some(t) = self
                .txns
                .get_mut(&tid)
                .filter(|_| self.active.contains(&tid))
            else {
                continue;
            };
            if !t.intent.engines.contains(&engine) {
                continue;
            }
            if matches!(t.phase, Phase::RollingBack { .. }) {
                if t.undo_pending.remove(&engine) {
                    let why =
                        format!("engine lost during undo ({reason}); resynced when it reconnects");
                    s.journal.push(Record::Undo {
                        tid,
                        engine: engine.clone(),
                        undo: UndoOutcome::Resync { why },
                    });
                    self.maybe_end_rollback(tid);
                }
            } else {
                self.rollback(now, tid, format!("engine `{engine}` lost: {reason}"), s);
            }
        }
        Ok(())
    }

    fn tick(&mut self, now: u64, s: &mut Step) {
        let due: Vec<Tid> = self
            .txns
            .iter()
            .filter(|(_, t)| matches!(t.phase, Phase::Escalated { deadline } if deadline <= now))
            .map(|(tid, _)| *tid)
            .collect();
        for tid in due {
            let ms = self.cfg.escalation_timeout_ms;
            s.journal.push(Record::OperatorDecision {
                tid,
                operator: "timeout".into(),
                approve: false,
                note: format!("no decision within {ms} ms"),
            });
            self.deny(
                tid,
                format!("escalation timed out: no operator decided within {ms} ms"),
                s,
            );
        }
        for tid in self.active.clone() {
            if self.active.contains(&tid) {
                self.timeouts(now, tid, s);
            }
        }
    }

    /// Fire the due timeout of active transaction `tid`, if any.
    fn timeouts(&mut self, now: u64, tid: Tid, s: &mut Step) {
        let t = &self.txns[&tid];
        match t.phase {
            Phase::Applying { deadline } if deadline <= now => {
                let missing: Vec<&String> = t
                    .intent
                    .engines
                    .iter()
                    .filter(|e| !t.acks.contains_key(*e))
                    .collect();
                let reason = format!(
                    "engine(s) {missing:?} did not acknowledge within {} ms",
                    self.cfg.apply_timeout_ms
                );
                self.rollback(now, tid, reason, s);
            }
            Phase::Verifying { deadline } if deadline <= now => {
                let missing: Vec<&String> = t
                    .intent
                    .engines
                    .iter()
                    .filter(|e| !t.verified.contains(*e))
                    .collect();
                let reason = format!(
                    "verification by {missing:?} did not complete within {} ms",
                    self.cfg.verify_timeout_ms
                );
                self.rollback(now, tid, reason, s);
            }
            Phase::RollingBack { deadline } if deadline <= now => {
                let pending: Vec<String> = self
                    .txns
                    .get_mut(&tid)
                    .expect("active")
                    .undo_pending
                    .iter()
                    .cloned()
                    .collect();
                for engine in pending {
                    let why = format!("undo not confirmed within {} ms", self.cfg.undo_timeout_ms);
                    s.journal.push(Record::Undo {
                        tid,
                        engine: engine.clone(),
                        undo: UndoOutcome::Resync { why: why.clone() },
                    });
                    self.resync(now, &engine, &why, s);
                }
                self.txns
                    .get_mut(&tid)
                    .expect("active")
                    .undo_pending
                    .clear();
                self.maybe_end_rollback(tid);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provisional_answer_staged_with_its_commit_names_the_committed_version() {
        let answer = |tid, v| Effect::Answer {
            tid,
            author: "agent".into(),
            answer: Answer::Provisional { scene_version: v },
        };
        let mut effects = vec![answer(3, 5), answer(4, 4)];
        let journal = vec![
            Record::Provisional { tid: 3 },
            Record::Commit {
                tid: 3,
                scene_version: 4,
                scene_hash: Some(StateHash::default()),
            },
        ];
        settle_provisional_answers(&mut effects, &journal);
        // tid 3 committed first, to 4; tid 4's answer keeps its prediction.
        assert_eq!(effects, vec![answer(3, 4), answer(4, 4)]);
    }

    /// Seed 4787 of the cluster simulation: a resume outside PANIC
    /// resynced an engine to the scene read when the resume began, erasing
    /// a transaction committed meanwhile.
    #[test]
    fn resume_reconciles_only_to_leave_a_panic() {
        let mut seq = Sequencer::new(Config::new(vec!["blender-1".into()]));
        seq.handle(
            0,
            Input::EngineBack {
                engine: "blender-1".into(),
                session: "s1".into(),
            },
        )
        .unwrap();
        assert!(seq.resume_scene().is_none());
        seq.handle(
            0,
            Input::Panic {
                reason: "deadman".into(),
            },
        )
        .unwrap();
        assert_eq!(seq.resume_scene(), Some(seq.scene()));
        seq.handle(
            1,
            Input::Resume {
                operator: "op".into(),
            },
        )
        .unwrap();
        assert!(seq.resume_scene().is_none());
    }
}
