//! What the journal says: one [`Record`] per step of a transaction, plus the
//! cluster-level events (PANIC, policy swaps, engine sessions, checkpoints).
//!
//! Records are plain serde data; [`crate::codec`] frames, checksums and
//! chains them. Anything owned by another crate that the WAL must carry
//! without depending on it (policy findings, engine undo tokens) travels as
//! an opaque `serde_json::Value`.

use std::fmt;

use serde::{Deserialize, Serialize};
use vibesync_canonical::{ObjectId, Op, Scene, StateHash};

/// A transaction id: monotonic, never reused, survives restarts.
pub type Tid = u64;

/// SHA-256 link of the hash chain: `hash(n) = SHA-256(hash(n-1) || body(n))`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev` of the very first record.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", &self.to_hex()[..16])
    }
}

impl Serialize for ChainHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ChainHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("32 bytes or 64 hex digits")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ChainHash, E> {
                Ok(ChainHash(
                    v.try_into()
                        .map_err(|_| E::invalid_length(v.len(), &self))?,
                ))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChainHash, E> {
                let bytes = hex::decode(v).map_err(E::custom)?;
                self.visit_bytes(&bytes)
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(V)
        } else {
            d.deserialize_bytes(V)
        }
    }
}

/// Who asked for a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Agent,
    EngineEdit,
    Operator,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agent => "agent",
            Source::EngineEdit => "engine-edit",
            Source::Operator => "operator",
        }
    }
}

/// An intent as the sequencer accepted it for journaling (ids of created
/// objects already assigned, so replay is deterministic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntentRecord {
    pub tid: Tid,
    pub source: Source,
    /// Who: agent/session name, engine name, or operator name.
    pub author: String,
    pub ops: Vec<Op>,
    /// Why, in the author's words (required and checked by policy).
    pub rationale: String,
    pub idempotency_key: Option<String>,
    /// The scene version the author last read.
    pub scene_version_read: u64,
    /// The engines the change is sent to.
    pub engines: Vec<String>,
}

/// What one policy said about an intent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub tid: Tid,
    pub policy: String,
    /// Hex SHA-256 of the policy component that decided.
    pub module_hash: String,
    /// `allow`, `deny` or `escalate`.
    pub verdict: String,
    /// The findings as the policy runtime reports them (opaque here).
    pub findings: serde_json::Value,
}

/// How a transaction ended. Also what a retried intent is answered with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    Committed {
        scene_version: u64,
    },
    RolledBack {
        reason: String,
    },
    /// Denied by a policy or by an operator (escalation), or timed out.
    Denied {
        reason: String,
    },
    /// Refused by the sequencer before any policy mattered (stale read,
    /// locked object, PANIC, ops that do not apply, unknown engine).
    Refused {
        rule: String,
        message: String,
    },
}

impl Outcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, Outcome::Committed { .. })
    }
}

/// An engine's undo token: opaque, engine-defined JSON (for the reference
/// engines and the add-ons, the touched objects as they were). Shared, not
/// copied: the sequencer, the journal record and the read models hold the
/// same one, and it can be as large as the objects it restores.
pub type UndoToken = std::sync::Arc<serde_json::Value>;

/// An engine's answer to "apply tid".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ack", rename_all = "kebab-case")]
pub enum AckOutcome {
    /// Applied; the token undoes it.
    Applied { undo_token: UndoToken },
    /// Not applied (the engine applies a transaction all-or-nothing).
    Failed { error: String },
}

/// What happened to one engine when a transaction was rolled back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "kebab-case")]
pub enum UndoOutcome {
    Undone,
    /// The engine could not undo (lost its token, error, timeout): it is
    /// resynchronised from the canonical state instead.
    Resync {
        why: String,
    },
}

/// Engine session life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum SessionEvent {
    Open { session: String },
    Close { reason: String },
}

/// A lock on one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockEntry {
    pub object: ObjectId,
    pub holder: String,
    /// Human/operator locks cannot be lifted by an agent.
    pub human: bool,
}

/// Enough state to start replay here instead of at the first record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub scene: Scene,
    pub scene_version: u64,
    pub next_tid: Tid,
    /// Finished transactions with an idempotency key, so retries after a
    /// restart still get the original answer.
    pub idempotency: Vec<(String, Tid, Outcome)>,
    pub locks: Vec<LockEntry>,
    /// `Some(reason)` while the cluster is in PANIC.
    pub panic: Option<String>,
}

/// One journal entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    Intent(IntentRecord),
    Policy(PolicyRecord),
    /// Final: refused by the sequencer.
    Refused {
        tid: Tid,
        rule: String,
        message: String,
    },
    /// Final: denied by the policy pipeline.
    Denied {
        tid: Tid,
        reason: String,
    },
    /// Waiting for an operator until `deadline_ms`.
    Escalated {
        tid: Tid,
        reason: String,
        deadline_ms: u64,
    },
    /// An operator (or the escalation timeout, operator `timeout`) decided.
    OperatorDecision {
        tid: Tid,
        operator: String,
        approve: bool,
        note: String,
    },
    /// Objects locked, apply about to be sent.
    Begin {
        tid: Tid,
        touched: Vec<ObjectId>,
        engines: Vec<String>,
        expected: StateHash,
    },
    EngineAck {
        tid: Tid,
        engine: String,
        ack: AckOutcome,
    },
    /// Every engine acked: the author is answered provisionally.
    Provisional {
        tid: Tid,
    },
    Verification {
        tid: Tid,
        engine: String,
        expected: StateHash,
        observed: Option<StateHash>,
        error: Option<String>,
    },
    /// Final: reality advanced to `scene_version`.
    Commit {
        tid: Tid,
        scene_version: u64,
        /// The whole scene's hash after this commit, when recorded: the
        /// sequencer records it as often as an amortised budget of hashing
        /// allows (every commit for small scenes), and replay checks it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scene_hash: Option<StateHash>,
    },
    /// Final: undo is about to be sent to every engine that applied.
    Rollback {
        tid: Tid,
        reason: String,
    },
    Undo {
        tid: Tid,
        engine: String,
        undo: UndoOutcome,
    },
    Panic {
        reason: String,
    },
    Resume {
        operator: String,
    },
    PolicySwap {
        policy: String,
        old_hash: Option<String>,
        new_hash: String,
        operator: String,
    },
    EngineSession {
        engine: String,
        session: SessionEvent,
    },
    Lock(LockEntry),
    Unlock {
        object: ObjectId,
        by: String,
    },
    /// An engine was (or is about to be) overwritten with the canonical state.
    Resync {
        engine: String,
        reason: String,
        scene_hash: StateHash,
    },
    Checkpoint(Box<Checkpoint>),
}

impl Record {
    /// The record kind, as used in counts and `wal show`.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Intent(_) => "intent",
            Record::Policy(_) => "policy",
            Record::Refused { .. } => "refused",
            Record::Denied { .. } => "denied",
            Record::Escalated { .. } => "escalated",
            Record::OperatorDecision { .. } => "operator-decision",
            Record::Begin { .. } => "begin",
            Record::EngineAck { .. } => "engine-ack",
            Record::Provisional { .. } => "provisional",
            Record::Verification { .. } => "verification",
            Record::Commit { .. } => "commit",
            Record::Rollback { .. } => "rollback",
            Record::Undo { .. } => "undo",
            Record::Panic { .. } => "panic",
            Record::Resume { .. } => "resume",
            Record::PolicySwap { .. } => "policy-swap",
            Record::EngineSession { .. } => "engine-session",
            Record::Lock(_) => "lock",
            Record::Unlock { .. } => "unlock",
            Record::Resync { .. } => "resync",
            Record::Checkpoint(_) => "checkpoint",
        }
    }

    /// The transaction this record belongs to, if any.
    pub fn tid(&self) -> Option<Tid> {
        match self {
            Record::Intent(i) => Some(i.tid),
            Record::Policy(p) => Some(p.tid),
            Record::Refused { tid, .. }
            | Record::Denied { tid, .. }
            | Record::Escalated { tid, .. }
            | Record::OperatorDecision { tid, .. }
            | Record::Begin { tid, .. }
            | Record::EngineAck { tid, .. }
            | Record::Provisional { tid }
            | Record::Verification { tid, .. }
            | Record::Commit { tid, .. }
            | Record::Rollback { tid, .. }
            | Record::Undo { tid, .. } => Some(*tid),
            _ => None,
        }
    }
}
