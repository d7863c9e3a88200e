//! Rebuild the host's state from the journal (pure: records in, state out).
//!
//! Only committed transactions change the scene. A transaction that has no
//! final record (or was rolled back but not every engine confirmed the
//! undo) is *in doubt*: [`Replay::in_doubt`] lists it so the sequencer can
//! resolve it on start-up (roll it back, resync the engines it touched).

use std::collections::{BTreeMap, BTreeSet};

use vibesync_canonical::{ObjectId, Scene};

use crate::record::{AckOutcome, Checkpoint, IntentRecord, LockEntry, Outcome, Record, Tid};

/// How far an unfinished transaction got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Submitted,
    Escalated,
    Approved,
    Begun,
    Provisional,
    /// Rollback decided (final for the author), undo not confirmed everywhere.
    RollingBack,
}

/// A transaction without a final state in the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenTxn {
    pub intent: IntentRecord,
    pub stage: Stage,
    /// Engines `begin` sent the change to.
    pub engines: Vec<String>,
    pub acks: BTreeMap<String, AckOutcome>,
    /// Engines whose undo (or resync) was journaled.
    pub undone: BTreeSet<String>,
    pub rollback_reason: Option<String>,
}

impl OpenTxn {
    /// Engines that may hold this transaction's change: sent to and not
    /// refused, and not yet undone.
    pub fn engines_to_undo(&self) -> Vec<String> {
        self.engines
            .iter()
            .filter(|e| !matches!(self.acks.get(*e), Some(AckOutcome::Failed { .. })))
            .filter(|e| !self.undone.contains(*e))
            .cloned()
            .collect()
    }
}

/// The journal does not describe a possible history (a bug or a forged log
/// with a valid chain); recovery stops rather than guess.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error("record seq {seq}: {what}")]
    Inconsistent { seq: u64, what: String },
}

/// State rebuilt from the journal.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Replay {
    pub scene: Scene,
    pub scene_version: u64,
    /// The smallest tid never used.
    pub next_tid: Tid,
    pub open: BTreeMap<Tid, OpenTxn>,
    pub idempotency: BTreeMap<String, (Tid, Outcome)>,
    pub locks: BTreeMap<ObjectId, LockEntry>,
    pub panic: Option<String>,
    /// Transactions finished since replay started, by outcome kind.
    pub committed: u64,
    pub ended_otherwise: u64,
}

impl Replay {
    /// Start from a checkpoint instead of the empty scene.
    pub fn from_checkpoint(c: &Checkpoint) -> Replay {
        Replay {
            scene: c.scene.clone(),
            scene_version: c.scene_version,
            next_tid: c.next_tid,
            idempotency: c
                .idempotency
                .iter()
                .map(|(k, t, o)| (k.clone(), (*t, o.clone())))
                .collect(),
            locks: c
                .locks
                .iter()
                .map(|l| (l.object.clone(), l.clone()))
                .collect(),
            panic: c.panic.clone(),
            ..Replay::default()
        }
    }

    /// What a checkpoint of this state holds. Only meaningful with no open
    /// transaction (the sequencer checkpoints when idle).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            scene: self.scene.clone(),
            scene_version: self.scene_version,
            next_tid: self.next_tid,
            idempotency: self
                .idempotency
                .iter()
                .map(|(k, (t, o))| (k.clone(), *t, o.clone()))
                .collect(),
            locks: self.locks.values().cloned().collect(),
            panic: self.panic.clone(),
        }
    }

    /// Unfinished transactions, oldest first.
    pub fn in_doubt(&self) -> Vec<&OpenTxn> {
        self.open.values().collect()
    }

    fn open_mut(&mut self, seq: u64, tid: Tid) -> Result<&mut OpenTxn, ReplayError> {
        self.open
            .get_mut(&tid)
            .ok_or_else(|| ReplayError::Inconsistent {
                seq,
                what: format!("tid {tid} is not open (no intent, or already final)"),
            })
    }

    fn finish(&mut self, tid: Tid, outcome: Outcome, keep_open: bool) {
        let txn = if keep_open {
            self.open.get(&tid).cloned()
        } else {
            self.open.remove(&tid)
        };
        if let Some(t) = txn
            && let Some(key) = &t.intent.idempotency_key
        {
            self.idempotency.insert(key.clone(), (tid, outcome.clone()));
        }
        if outcome.is_committed() {
            self.committed += 1;
        } else {
            self.ended_otherwise += 1;
        }
    }

    /// [`Replay::apply`] without copying an intent's ops (recovery's path).
    pub fn apply_owned(&mut self, seq: u64, record: Record) -> Result<(), ReplayError> {
        match record {
            Record::Intent(i) => self.open_intent(seq, i),
            other => self.apply(seq, &other),
        }
    }

    fn open_intent(&mut self, seq: u64, i: IntentRecord) -> Result<(), ReplayError> {
        if i.tid < self.next_tid {
            return Err(ReplayError::Inconsistent {
                seq,
                what: format!("tid {} reused (next is {})", i.tid, self.next_tid),
            });
        }
        self.next_tid = i.tid + 1;
        let tid = i.tid;
        let txn = OpenTxn {
            intent: i,
            stage: Stage::Submitted,
            engines: Vec::new(),
            acks: BTreeMap::new(),
            undone: BTreeSet::new(),
            rollback_reason: None,
        };
        self.open.insert(tid, txn);
        Ok(())
    }

    /// Apply one record.
    pub fn apply(&mut self, seq: u64, record: &Record) -> Result<(), ReplayError> {
        match record {
            Record::Intent(i) => self.open_intent(seq, i.clone())?,
            Record::Refused { tid, rule, message } => {
                self.open_mut(seq, *tid)?;
                self.finish(
                    *tid,
                    Outcome::Refused {
                        rule: rule.clone(),
                        message: message.clone(),
                    },
                    false,
                );
            }
            Record::Denied { tid, reason } => {
                self.open_mut(seq, *tid)?;
                self.finish(
                    *tid,
                    Outcome::Denied {
                        reason: reason.clone(),
                    },
                    false,
                );
            }
            Record::Escalated { tid, .. } => self.open_mut(seq, *tid)?.stage = Stage::Escalated,
            Record::OperatorDecision { tid, approve, .. } => {
                let t = self.open_mut(seq, *tid)?;
                if *approve {
                    t.stage = Stage::Approved;
                }
            }
            Record::Begin { tid, engines, .. } => {
                let t = self.open_mut(seq, *tid)?;
                t.stage = Stage::Begun;
                t.engines = engines.clone();
            }
            Record::EngineAck { tid, engine, ack } => {
                self.open_mut(seq, *tid)?
                    .acks
                    .insert(engine.clone(), ack.clone());
            }
            Record::Provisional { tid } => self.open_mut(seq, *tid)?.stage = Stage::Provisional,
            Record::Commit {
                tid,
                scene_version,
                scene_hash,
            } => {
                let t = self.open_mut(seq, *tid)?;
                let ops = std::mem::take(&mut t.intent.ops);
                if *scene_version != self.scene_version + 1 {
                    return Err(ReplayError::Inconsistent {
                        seq,
                        what: format!(
                            "commit of tid {tid} to version {scene_version}, current is {}",
                            self.scene_version
                        ),
                    });
                }
                // In place: a failure aborts recovery, so atomicity is moot,
                // and cloning the scene per commit would make replay O(n²).
                for (i, op) in ops.iter().enumerate() {
                    self.scene.apply(op).map_err(|e| ReplayError::Inconsistent {
                        seq,
                        what: format!("committed tid {tid} op {i} does not apply to the replayed scene: {e}"),
                    })?;
                }
                self.scene_version = *scene_version;
                if let Some(recorded) = scene_hash
                    && self.scene.hash() != *recorded
                {
                    return Err(ReplayError::Inconsistent {
                        seq,
                        what: format!(
                            "the replayed scene hashes to {}, commit of tid {tid} recorded {recorded}",
                            self.scene.hash()
                        ),
                    });
                }
                self.finish(
                    *tid,
                    Outcome::Committed {
                        scene_version: *scene_version,
                    },
                    false,
                );
            }
            Record::Rollback { tid, reason } => {
                let t = self.open_mut(seq, *tid)?;
                t.stage = Stage::RollingBack;
                t.rollback_reason = Some(reason.clone());
                let done = t.engines_to_undo().is_empty();
                self.finish(
                    *tid,
                    Outcome::RolledBack {
                        reason: reason.clone(),
                    },
                    !done,
                );
            }
            Record::Undo { tid, engine, .. } => {
                let t = self.open_mut(seq, *tid)?;
                t.undone.insert(engine.clone());
                if t.stage == Stage::RollingBack && t.engines_to_undo().is_empty() {
                    self.open.remove(tid);
                }
            }
            Record::Panic { reason } => self.panic = Some(reason.clone()),
            Record::Resume { .. } => self.panic = None,
            Record::Lock(l) => {
                self.locks.insert(l.object.clone(), l.clone());
            }
            Record::Unlock { object, .. } => {
                self.locks.remove(object);
            }
            Record::Checkpoint(c) => {
                if !self.open.is_empty() {
                    return Err(ReplayError::Inconsistent {
                        seq,
                        what: format!(
                            "checkpoint taken with {} transaction(s) still open",
                            self.open.len()
                        ),
                    });
                }
                let (committed, other) = (self.committed, self.ended_otherwise);
                *self = Replay::from_checkpoint(c);
                self.committed = committed;
                self.ended_otherwise = other;
            }
            Record::Policy(_)
            | Record::Verification { .. }
            | Record::PolicySwap { .. }
            | Record::EngineSession { .. }
            | Record::Resync { .. } => {}
        }
        Ok(())
    }
}
