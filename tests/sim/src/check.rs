//! The invariants, checked as the run goes (every append, every accepted
//! frame, every recovery, every answer) and once more at quiescence
//! ([`World::final_checks`](crate::world::World)).
//!
//! | name | what must hold |
//! |---|---|
//! | `committed-survives-crash` | every commit the agent was told about is in the log after any host restart |
//! | `tids-increase` | intent tids strictly increase along the log, across restarts |
//! | `no-replay-accepted` | no frame identity is accepted twice, none crosses sessions, no tampered copy is accepted |
//! | `no-stale-accepted` | no frame is accepted older than 5 s or more than 1 s ahead of the receiver's clock |
//! | `no-mutation-during-panic` | no sequencer step that starts in PANIC emits an apply; the host seals no new mutation while the link is in PANIC |
//! | `idempotent-commit` | one idempotency key never commits under two tids |
//! | `every-transaction-final`, `rolled-back-change-absent`, `converged-hashes`, `wal-matches-host` | at quiescence |

use std::collections::{BTreeMap, BTreeSet};

use vibesync_protocol::Channel;
use vibesync_protocol::frame::Limits;
use vibesync_wal::{Outcome, Record};

use crate::world::{FrameId, Packet, World};

#[derive(Default)]
pub struct Oracle {
    /// Sender timestamp of every genuine frame.
    sent: BTreeMap<FrameId, u64>,
    accepted: BTreeSet<FrameId>,
    last_intent_tid: Option<u64>,
    /// Commits the agent was told about: tid -> scene version.
    pub acked_commits: BTreeMap<u64, u64>,
    /// Final outcome per idempotency key.
    pub outcomes: BTreeMap<String, (u64, Outcome)>,
}

impl Oracle {
    pub fn sent(&mut self, id: FrameId, ts: u64) {
        self.sent.insert(id, ts);
    }
}

impl World {
    pub fn accepted(&mut self, p: &Packet, conn: u64, ts: u64, now: u64, who: &str) {
        let id = p.id;
        if p.tampered {
            return self.fail(
                "no-replay-accepted",
                format!("{who} accepted a tampered copy of {id:?}"),
            );
        }
        if id.stream.conn != conn || !self.oracle.sent.contains_key(&id) {
            return self.fail(
                "no-replay-accepted",
                format!("{who} accepted {id:?} on connection {conn}, where it was never sent"),
            );
        }
        if !self.oracle.accepted.insert(id) {
            return self.fail(
                "no-replay-accepted",
                format!(
                    "{who} accepted {id:?} a second time (injected copy: {})",
                    p.injected
                ),
            );
        }
        let limits = Limits::for_channel(Channel::Control);
        if ts + limits.max_age_ms < now {
            self.fail(
                "no-stale-accepted",
                format!("{who} accepted {id:?} stamped {ts}, {} ms old", now - ts),
            );
        } else if ts > now + limits.max_skew_ms {
            self.fail(
                "no-stale-accepted",
                format!(
                    "{who} accepted {id:?} stamped {} ms in its future",
                    ts - now
                ),
            );
        }
    }

    pub fn refused(&mut self, p: &Packet, who: &str, why: &str) {
        self.stats.frames_refused += 1;
        if p.injected {
            self.stats.injected_refused += 1;
        } else {
            self.log(format!("{who}: refused genuine frame {:?}: {why}", p.id));
        }
    }

    /// After a successful group commit.
    pub fn check_append(&mut self, records: &[Record]) {
        for r in records {
            if let Record::Intent(i) = r {
                if let Some(last) = self.oracle.last_intent_tid
                    && i.tid <= last
                {
                    return self.fail(
                        "tids-increase",
                        format!("intent tid {} appended after tid {last}", i.tid),
                    );
                }
                self.oracle.last_intent_tid = Some(i.tid);
            }
        }
    }

    /// After recovery read the log: acknowledged commits are in it, tids
    /// increase along it.
    pub fn check_recovery(&mut self, records: &[Record]) {
        let mut last = None;
        let mut commits = BTreeSet::new();
        for r in records {
            match r {
                Record::Intent(i) => {
                    if let Some(l) = last
                        && i.tid <= l
                    {
                        return self.fail(
                            "tids-increase",
                            format!("the recovered log has intent tid {} after tid {l}", i.tid),
                        );
                    }
                    last = Some(i.tid);
                }
                Record::Commit { tid, .. } => {
                    commits.insert(*tid);
                }
                _ => {}
            }
        }
        self.oracle.last_intent_tid = last;
        let lost: Vec<u64> = self
            .oracle
            .acked_commits
            .keys()
            .filter(|t| !commits.contains(t))
            .copied()
            .collect();
        if !lost.is_empty() {
            self.fail(
                "committed-survives-crash",
                format!("tids {lost:?} were answered committed but are not in the recovered log"),
            );
        }
    }
}
