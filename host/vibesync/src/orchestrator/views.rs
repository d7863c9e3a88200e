//! What the front doors read about transactions, projected from the journal.
//!
//! The WAL is the record of truth; [`Views`] folds each durable record the
//! core journals into what `get_transaction` and `get_operation_journal`
//! return (each transaction kept as its records left it, rendered as a
//! [`TransactionView`] when asked for; one [`JournalEntry`] per phase), so
//! those answers are exactly what a reviewer would find in `vibesync wal
//! show`. Pure: no I/O, time comes in with each record.

use std::collections::{BTreeMap, VecDeque};

use vibesync_canonical::{Op, StateHash};
use vibesync_wal::{AckOutcome, IntentRecord, PolicyRecord, Record, Tid};

use crate::core_api::{
    EngineAck, Finding, JournalEntry, JournalFilter, OpSpec, Phase, PhaseStamp, PolicyVerdict,
    Source, TransactionView, TxProgress, VerdictKind,
};

/// Journal entries kept in memory for `get_operation_journal` (older ones
/// are in the WAL: `vibesync wal show`).
const JOURNAL_KEEP: usize = 10_000;
/// Finished transactions kept in memory for `get_transaction`.
const FINISHED_KEEP: usize = 10_000;
// Journal entries are rendered from their transaction ([`Stamped`]).
const _: () = assert!(JOURNAL_KEEP <= FINISHED_KEEP);

/// How a policy run is stored in a WAL `policy` record's opaque `findings`
/// field: enough to rebuild a [`PolicyVerdict`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyEvidence {
    pub op_index: u32,
    pub findings: Vec<Finding>,
    pub duration_ns: u64,
    /// The budget or contract the module broke, if it faulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// A transaction as its records left it. The API's [`TransactionView`] is
/// rendered from it only when asked for (`get_transaction`): the fold runs
/// for every record the core journals, the rendering only for readers, so
/// what is costly to render (ops as JSON, undo tokens as text) stays in
/// the form the records carried.
#[derive(Debug)]
struct Txn {
    intent: IntentRecord,
    /// The objects the ops name (`id` and `ids`), for the journal's filter.
    objects: Vec<String>,
    phases: Vec<PhaseStamp>,
    verdicts: Vec<PolicyRecord>,
    /// Each engine's ack; an undo token is kept until the transaction is
    /// final (then the engines have dropped theirs too).
    acks: Vec<(String, AckOutcome)>,
    phase: Phase,
    is_final: bool,
    why: Option<String>,
}

impl Txn {
    fn render(&self) -> TransactionView {
        let i = &self.intent;
        TransactionView {
            tid: i.tid,
            source: source(i.source),
            author: i.author.clone(),
            rationale: i.rationale.clone(),
            ops: i.ops.iter().map(op_spec).collect(),
            engines: i.engines.clone(),
            scene_version_read: i.scene_version_read,
            phases: self.phases.clone(),
            verdicts: self.verdicts.iter().map(policy_verdict).collect(),
            acks: self.acks.iter().map(engine_ack).collect(),
            phase: self.phase,
            is_final: self.is_final,
            why: self.why.clone(),
        }
    }

    fn progress(&self) -> TxProgress {
        TxProgress {
            tid: self.intent.tid,
            phase: self.phase,
            progress: self.phases.len() as f64,
            total: None,
            message: self
                .phases
                .last()
                .and_then(|p| p.detail.clone())
                .unwrap_or_else(|| format!("{:?}", self.phase)),
        }
    }
}

/// The projection. One owner: the core task.
#[derive(Debug, Default)]
pub struct Views {
    txns: BTreeMap<Tid, Txn>,
    finished: VecDeque<Tid>,
    /// `get_operation_journal`'s entries, rendered when asked for (see
    /// [`Stamped`]).
    journal: VecDeque<Stamped>,
    /// Per engine: the hash it was last verified at and the scene version
    /// that verification committed.
    verified: BTreeMap<String, (StateHash, u64)>,
    /// Verifications that matched, waiting for their transaction's commit.
    matched: BTreeMap<Tid, Vec<(String, StateHash)>>,
    next_seq: u64,
}

impl Views {
    /// Everything known about `tid`, as `get_transaction` shows it.
    pub fn transaction(&self, tid: Tid) -> Option<TransactionView> {
        self.txns.get(&tid).map(Txn::render)
    }

    /// The engines' acks of `tid` so far, as its answers carry them.
    pub fn acks(&self, tid: Tid) -> Vec<EngineAck> {
        self.txns
            .get(&tid)
            .map(|t| t.acks.iter().map(engine_ack).collect())
            .unwrap_or_default()
    }

    /// What a subscriber of `tid` is told now, and whether it is the last
    /// event (the transaction is final).
    pub fn progress(&self, tid: Tid) -> Option<(TxProgress, bool)> {
        self.txns.get(&tid).map(|t| (t.progress(), t.is_final))
    }

    pub fn pending_escalations(&self) -> Vec<u64> {
        self.txns
            .values()
            .filter(|t| t.phase == Phase::Escalated)
            .map(|t| t.intent.tid)
            .collect()
    }

    /// The hash each engine was last verified at (touched objects only), and
    /// the scene version that commit produced.
    pub fn verified(&self) -> &BTreeMap<String, (StateHash, u64)> {
        &self.verified
    }

    /// Entries matching `filter`, oldest first, at most `limit` (default 100,
    /// capped at 1000), the newest ones when there are more.
    pub fn journal(&self, filter: &JournalFilter) -> Vec<JournalEntry> {
        let limit = filter.limit.unwrap_or(100).min(1000) as usize;
        let mut out: Vec<JournalEntry> = self
            .journal
            .iter()
            .rev()
            .filter(|e| filter.after_seq.is_none_or(|s| e.seq > s))
            .filter(|e| filter.tid.is_none_or(|t| e.tid == t))
            .filter_map(|e| Some((e, self.txns.get(&e.tid)?)))
            .filter(|(_, t)| filter.source.is_none_or(|s| source(t.intent.source) == s))
            .filter(|(e, t)| filter.phase.is_none_or(|p| t.phases[e.stamp].phase == p))
            .filter(|(_, t)| filter.object.as_ref().is_none_or(|o| t.objects.contains(o)))
            .take(limit)
            .map(|(e, t)| e.render(t))
            .collect();
        out.reverse();
        out
    }

    /// Fold one journaled record (taken: what the view keeps is moved out
    /// of it, not copied).
    pub fn apply(&mut self, at_ms: u64, record: Record) {
        match record {
            Record::Intent(i) => {
                let tid = i.tid;
                let txn = Txn {
                    objects: objects_of(&i.ops),
                    intent: i,
                    phases: Vec::new(),
                    verdicts: Vec::new(),
                    acks: Vec::new(),
                    phase: Phase::Submitted,
                    is_final: false,
                    why: None,
                };
                self.txns.insert(tid, txn);
                self.stamp(tid, at_ms, Phase::Submitted, None);
            }
            Record::Policy(p) => {
                if let Some(t) = self.txns.get_mut(&p.tid) {
                    t.verdicts.push(p);
                }
            }
            Record::Refused { tid, rule, message } => {
                self.finish(
                    tid,
                    at_ms,
                    Phase::Denied,
                    format!("refused by `{rule}`: {message}"),
                );
            }
            Record::Denied { tid, reason } => self.finish(tid, at_ms, Phase::Denied, reason),
            Record::Escalated { tid, reason, .. } => {
                self.stamp(tid, at_ms, Phase::Escalated, Some(reason));
            }
            // A denial is finished by the `denied` record that follows.
            Record::OperatorDecision {
                tid,
                operator,
                approve: true,
                note,
            } => {
                let detail = format!("approved by {operator}: {note}");
                self.stamp(tid, at_ms, Phase::Validated, Some(detail));
            }
            Record::Begin { tid, engines, .. } => {
                let detail = format!("applying on {}", engines.join(", "));
                self.stamp(tid, at_ms, Phase::Begun, Some(detail));
            }
            Record::EngineAck { tid, engine, ack } => {
                if let Some(t) = self.txns.get_mut(&tid) {
                    t.acks.push((engine, ack));
                }
            }
            Record::Provisional { tid } => {
                self.stamp(tid, at_ms, Phase::Provisional, None);
            }
            Record::Verification {
                tid,
                engine,
                expected,
                observed,
                error,
            } => {
                let ok = observed == Some(expected);
                let detail = match (ok, error) {
                    (true, _) => format!("{engine}: hash matches"),
                    (false, Some(e)) => format!("{engine}: {e}"),
                    (false, None) => format!(
                        "{engine}: expected {} observed {}",
                        expected.to_hex(),
                        observed.map_or("nothing".into(), |h| h.to_hex())
                    ),
                };
                if let Some(t) = self.txns.get_mut(&tid) {
                    t.phases.push(PhaseStamp {
                        phase: Phase::Verified,
                        at_ms,
                        detail: Some(detail),
                    });
                }
                if ok {
                    self.matched
                        .entry(tid)
                        .or_default()
                        .push((engine, expected));
                }
            }
            Record::Commit {
                tid, scene_version, ..
            } => {
                for (engine, hash) in self.matched.remove(&tid).unwrap_or_default() {
                    self.verified.insert(engine, (hash, scene_version));
                }
                self.finish(
                    tid,
                    at_ms,
                    Phase::Committed,
                    format!("committed at scene version {scene_version}"),
                );
            }
            Record::Rollback { tid, reason } => {
                self.matched.remove(&tid);
                self.finish(tid, at_ms, Phase::RolledBack, reason);
            }
            _ => {}
        }
    }

    /// A phase change of `tid`: stamped on the transaction and entered in
    /// the journal.
    fn stamp(&mut self, tid: Tid, at_ms: u64, phase: Phase, detail: Option<String>) {
        let Some(t) = self.txns.get_mut(&tid) else {
            return;
        };
        t.phase = phase;
        t.phases.push(PhaseStamp {
            phase,
            at_ms,
            detail,
        });
        let entry = Stamped {
            seq: self.next_seq,
            tid,
            stamp: t.phases.len() - 1,
        };
        self.next_seq += 1;
        self.journal.push_back(entry);
        if self.journal.len() > JOURNAL_KEEP {
            self.journal.pop_front();
        }
    }

    fn finish(&mut self, tid: Tid, at_ms: u64, phase: Phase, why: String) {
        if self.txns.get(&tid).is_none_or(|t| t.is_final) {
            return;
        }
        self.stamp(tid, at_ms, phase, Some(why.clone()));
        if let Some(t) = self.txns.get_mut(&tid) {
            t.is_final = true;
            t.why = Some(why);
            for (_, ack) in &mut t.acks {
                if let AckOutcome::Applied { undo_token } = ack {
                    *undo_token = Default::default();
                }
            }
        }
        self.finished.push_back(tid);
        if self.finished.len() > FINISHED_KEEP
            && let Some(old) = self.finished.pop_front()
        {
            self.txns.remove(&old);
        }
    }
}

/// A journal entry as kept: which stamp of which transaction. Rendered
/// into a [`JournalEntry`] only for a reader; the transaction outlives its
/// entries (a finished one is dropped only after [`FINISHED_KEEP`] more
/// have finished, each adding an entry, and [`JOURNAL_KEEP`] is no larger).
#[derive(Debug)]
struct Stamped {
    seq: u64,
    tid: Tid,
    /// Index into the transaction's `phases`.
    stamp: usize,
}

impl Stamped {
    fn render(&self, t: &Txn) -> JournalEntry {
        let PhaseStamp {
            phase,
            at_ms,
            detail,
        } = &t.phases[self.stamp];
        let detail = detail.as_deref().unwrap_or_default();
        JournalEntry {
            seq: self.seq,
            tid: self.tid,
            at_ms: *at_ms,
            phase: *phase,
            source: source(t.intent.source),
            author: t.intent.author.clone(),
            objects: t.objects.clone(),
            summary: match phase {
                Phase::Submitted => {
                    format!("{} op(s): {}", t.intent.ops.len(), t.intent.rationale)
                }
                Phase::Escalated => format!("escalated: {detail}"),
                Phase::Provisional => "applied on every engine; verifying".into(),
                _ => detail.to_owned(),
            },
        }
    }
}

fn source(s: vibesync_wal::Source) -> Source {
    match s {
        vibesync_wal::Source::Agent => Source::Agent,
        vibesync_wal::Source::EngineEdit => Source::EngineEdit,
        vibesync_wal::Source::Operator => Source::Operator,
    }
}

/// An op as the agent wrote it (`{"op", "args"}`), from its parsed form.
fn op_spec(op: &Op) -> OpSpec {
    let v = serde_json::to_value(op).unwrap_or_default();
    OpSpec {
        op: op.name().to_owned(),
        args: v.get("args").cloned().unwrap_or_default(),
    }
}

/// A policy's verdict from its record (the evidence is read in place, no
/// copy of the JSON value).
fn policy_verdict(p: &PolicyRecord) -> PolicyVerdict {
    let e = <PolicyEvidence as serde::Deserialize>::deserialize(&p.findings).unwrap_or(
        PolicyEvidence {
            op_index: 0,
            findings: Vec::new(),
            duration_ns: 0,
            fault: None,
        },
    );
    PolicyVerdict {
        policy: p.policy.clone(),
        op_index: e.op_index,
        verdict: match p.verdict.as_str() {
            "allow" => VerdictKind::Allow,
            "escalate" => VerdictKind::Escalate,
            _ => VerdictKind::Deny,
        },
        findings: e.findings,
        latency_us: e.duration_ns / 1000,
    }
}

fn engine_ack((engine, ack): &(String, AckOutcome)) -> EngineAck {
    match ack {
        AckOutcome::Applied { undo_token } => EngineAck {
            engine: engine.clone(),
            applied: true,
            undo_token: (!undo_token.is_null()).then(|| undo_token.to_string()),
            message: None,
        },
        AckOutcome::Failed { error } => EngineAck {
            engine: engine.clone(),
            applied: false,
            undo_token: None,
            message: Some(error.clone()),
        },
    }
}

/// The objects the ops name: each op's target and the ids it selects.
fn objects_of(ops: &[Op]) -> Vec<String> {
    let mut ids: Vec<String> = ops
        .iter()
        .flat_map(|op| match op {
            Op::Select { ids, .. } => ids.clone(),
            op => op.target_ids(),
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_canonical::{Op, StateHash};
    use vibesync_wal::{IntentRecord, PolicyRecord};

    fn intent(tid: Tid) -> Record {
        Record::Intent(IntentRecord {
            tid,
            source: vibesync_wal::Source::Agent,
            author: "agent".into(),
            ops: vec![Op::RenameObject {
                id: "obj-1".into(),
                name: "Lamp".into(),
            }],
            rationale: "rename the lamp so the artist finds it".into(),
            idempotency_key: None,
            scene_version_read: 3,
            engines: vec!["blender".into()],
        })
    }

    #[test]
    fn a_committed_transaction_reads_back_every_phase() {
        let mut v = Views::default();
        v.apply(1, intent(7));
        let evidence = PolicyEvidence {
            op_index: 0,
            findings: vec![],
            duration_ns: 12_000,
            fault: None,
        };
        v.apply(
            2,
            Record::Policy(PolicyRecord {
                tid: 7,
                policy: "firewall".into(),
                module_hash: "ab".into(),
                verdict: "allow".into(),
                findings: serde_json::to_value(&evidence).unwrap(),
            }),
        );
        v.apply(
            3,
            Record::Begin {
                tid: 7,
                touched: vec!["obj-1".into()],
                engines: vec!["blender".into()],
                expected: StateHash([1; 32]),
            },
        );
        v.apply(
            4,
            Record::EngineAck {
                tid: 7,
                engine: "blender".into(),
                ack: AckOutcome::Applied {
                    undo_token: serde_json::json!({"before": []}).into(),
                },
            },
        );
        let acks = v.acks(7);
        assert_eq!(acks[0].undo_token.as_deref(), Some(r#"{"before":[]}"#));
        v.apply(4, Record::Provisional { tid: 7 });
        v.apply(
            5,
            Record::Verification {
                tid: 7,
                engine: "blender".into(),
                expected: StateHash([1; 32]),
                observed: Some(StateHash([1; 32])),
                error: None,
            },
        );
        v.apply(
            6,
            Record::Commit {
                tid: 7,
                scene_version: 4,
                scene_hash: Some(StateHash([2; 32])),
            },
        );
        let t = v.transaction(7).unwrap();
        assert!(t.is_final);
        assert!(t.acks[0].applied);
        assert_eq!(t.acks[0].undo_token, None, "dropped once final");
        assert_eq!(t.phase, Phase::Committed);
        assert_eq!(t.verdicts[0].latency_us, 12);
        let phases: Vec<Phase> = t.phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            [
                Phase::Submitted,
                Phase::Begun,
                Phase::Provisional,
                Phase::Verified,
                Phase::Committed
            ]
        );
        let journal = v.journal(&JournalFilter {
            object: Some("obj-1".into()),
            ..Default::default()
        });
        assert_eq!(journal.len(), 4, "one entry per phase change: {journal:?}");
        let summaries: Vec<&str> = journal.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(
            summaries,
            [
                "1 op(s): rename the lamp so the artist finds it",
                "applying on blender",
                "applied on every engine; verifying",
                "committed at scene version 4",
            ]
        );
        assert!(
            journal
                .iter()
                .all(|e| e.author == "agent" && e.objects == ["obj-1"])
        );
        assert!(
            v.journal(&JournalFilter {
                object: Some("obj-2".into()),
                ..Default::default()
            })
            .is_empty()
        );
    }

    #[test]
    fn a_rollback_is_final_and_says_why() {
        let mut v = Views::default();
        v.apply(1, intent(9));
        v.apply(
            2,
            Record::Rollback {
                tid: 9,
                reason: "unity reported a different hash".into(),
            },
        );
        let t = v.transaction(9).unwrap();
        assert_eq!(t.phase, Phase::RolledBack);
        assert_eq!(t.why.as_deref(), Some("unity reported a different hash"));
        // A late record does not reopen it.
        v.apply(
            3,
            Record::Denied {
                tid: 9,
                reason: "late".into(),
            },
        );
        assert_eq!(v.transaction(9).unwrap().phase, Phase::RolledBack);
    }
}
