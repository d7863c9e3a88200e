//! The WAL writer thread: group commit without stopping the core.
//!
//! The core hands each batch of records to this thread and goes on taking
//! messages (answering reads, evaluating policies, staging the next batch)
//! while the batch is written and `fdatasync`ed. The thread takes every
//! batch that is waiting when it is free and appends them with ONE group
//! commit, then reports them durable, in order. The core carries out a
//! batch's effects only on that report, so the WAL contract is unchanged:
//! nothing takes effect, and no answer is given, before its record is
//! durable. Batches are written strictly in the order they were handed
//! over, which is the order the sequencer produced them.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use crate::metrics::Metrics;

use tokio::sync::mpsc;
use vibesync_wal::{Record, Wal};

/// One batch of records, stamped with the time it was staged.
pub struct Batch {
    pub id: u64,
    pub at_ms: u64,
    pub records: Vec<Record>,
}

/// Batches that one group commit made durable (or could not).
pub struct Written {
    /// In the order they were handed over; the records come back so that
    /// the core can fold them into its read models.
    pub batches: Vec<Batch>,
    /// The WAL refused or failed: none of these records is durable, and
    /// the writer refuses everything after (fail closed).
    pub error: Option<String>,
}

/// The core's end of the writer thread.
pub struct Writer {
    tx: std_mpsc::Sender<Batch>,
}

impl Writer {
    /// Moves `wal` to its own thread; reports come back through `done`.
    pub fn start<M: Send + 'static>(
        mut wal: Wal,
        metrics: Arc<Metrics>,
        done: mpsc::UnboundedSender<M>,
        wrap: fn(Written) -> M,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = std_mpsc::channel::<Batch>();
        std::thread::Builder::new()
            .name("vibesync-wal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batches = vec![first];
                    while let Ok(more) = rx.try_recv() {
                        batches.push(more);
                    }
                    let t0 = Instant::now();
                    let result = wal.append_batch(
                        batches
                            .iter()
                            .flat_map(|b| b.records.iter().map(move |r| (b.at_ms, r))),
                    );
                    let records = batches.iter().map(|b| b.records.len()).sum();
                    metrics.observe_wal_commit(records, t0.elapsed());
                    let written = Written {
                        batches,
                        error: result.err().map(|e| e.to_string()),
                    };
                    if done.send(wrap(written)).is_err() {
                        return; // the core is gone
                    }
                }
            })?;
        Ok(Writer { tx })
    }

    /// Queue a batch; `false` when the writer thread is gone.
    pub fn write(&self, batch: Batch) -> bool {
        self.tx.send(batch).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_wal::WalOptions;

    fn lock(i: usize) -> Record {
        Record::Lock(vibesync_wal::LockEntry {
            object: format!("o{i}"),
            holder: "test".into(),
            human: true,
        })
    }

    #[test]
    fn batches_are_reported_in_order_and_are_durable_when_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let metrics = Metrics::new();
        let writer = Writer::start(wal, metrics.clone(), tx, |w| w).unwrap();
        for id in 0..20u64 {
            assert!(writer.write(Batch {
                id,
                at_ms: 1,
                records: (0..3).map(|k| lock(id as usize * 3 + k)).collect(),
            }));
        }
        let mut seen = Vec::new();
        while seen.len() < 20 {
            let w = rx.blocking_recv().unwrap();
            assert!(w.error.is_none());
            seen.extend(w.batches.iter().map(|b| b.id));
        }
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
        let c = metrics.counters();
        assert_eq!(c.wal_records, 60);
        assert!((1..=20).contains(&c.wal_group_commits), "{c:?}");
        drop(writer);
        // Everything reported is on disk, in the order handed over.
        let (_, recovered) = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(recovered.records_replayed, 60);
        assert_eq!(recovered.replay.locks.len(), 60);
    }
}
