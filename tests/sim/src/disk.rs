//! The simulated disk under the host's write-ahead log.
//!
//! The WAL's format is pure (`vibesync_wal::codec`: [`Chain::encode`] frames
//! records, [`codec::scan`] walks a buffer and cuts a torn tail) and so is its
//! replay ([`Replay`]); only the segment files are a shell. This module keeps
//! the log as bytes in memory with the two halves a real file has after a
//! crash: what was `fdatasync`ed (durable) and what was written but not yet
//! synced (volatile). Faults: a write or an fsync fails (the writer is then
//! poisoned, as `Wal::append_batch` is); a crash keeps any prefix of the
//! volatile bytes, which tears the last write or loses it whole.
//!
//! Simplification: one segment. Rotation and the "start from the newest
//! checkpoint segment" shortcut of `Wal::open` are file-layout code, tested by
//! the WAL crate's own tests; recovery here always scans from genesis (a
//! checkpoint record in the middle is replayed like any record).

use vibesync_wal::codec::{self, SegmentEnd};
use vibesync_wal::{Chain, Record, Replay};

use crate::rng::Rng;

/// An injected I/O error on the next append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoFault {
    /// `write` fails part-way: a prefix of the batch reaches the file.
    Write,
    /// `write` succeeds, `fdatasync` fails: the batch is written, not durable.
    Sync,
}

/// The bytes of the one segment.
#[derive(Default)]
pub struct Disk {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    /// Records appended (and acknowledged) over the run.
    pub appended: u64,
    /// Torn tails cut by recoveries.
    pub torn_tails: u64,
}

/// The host's log writer over [`Disk`], mirroring `Wal::append_batch`:
/// encode the whole batch first, one write, one fsync; any I/O error
/// poisons it until the host restarts.
pub struct Writer {
    chain: Chain,
    pub poisoned: Option<String>,
}

/// What recovery rebuilt.
pub struct Recovered {
    pub replay: Replay,
    pub writer: Writer,
    /// Every record of the log, in order (for the invariant checks).
    pub records: Vec<Record>,
    pub torn_bytes: u64,
}

impl Disk {
    /// Append `records` as one group commit. `Ok` means durable.
    pub fn append(
        &mut self,
        w: &mut Writer,
        at_ms: u64,
        records: &[Record],
        fault: Option<IoFault>,
        rng: &mut Rng,
    ) -> Result<(), String> {
        if let Some(why) = &w.poisoned {
            return Err(format!(
                "the log writer is poisoned by an earlier error ({why}); restart the host"
            ));
        }
        let mut chain = w.chain;
        let mut buf = Vec::new();
        for r in records {
            chain
                .encode(at_ms, r, &mut buf)
                .map_err(|e| format!("encode: {e}"))?;
        }
        match fault {
            Some(IoFault::Write) => {
                let keep = rng.range(0, buf.len() as u64) as usize;
                self.volatile.extend_from_slice(&buf[..keep]);
                let why = format!("write: injected EIO after {keep} of {} bytes", buf.len());
                w.poisoned = Some(why.clone());
                Err(why)
            }
            Some(IoFault::Sync) => {
                self.volatile.extend_from_slice(&buf);
                let why = "fdatasync: injected EIO".to_string();
                w.poisoned = Some(why.clone());
                Err(why)
            }
            None => {
                self.volatile.extend_from_slice(&buf);
                self.durable.append(&mut self.volatile);
                w.chain = chain;
                self.appended += records.len() as u64;
                Ok(())
            }
        }
    }

    /// Power loss: a random prefix of the unsynced bytes survives (none, all,
    /// or a torn piece of the last write).
    pub fn crash(&mut self, rng: &mut Rng) -> (u64, u64) {
        let len = self.volatile.len() as u64;
        let keep = match rng.range(0, 2) {
            0 => 0,
            1 => len,
            _ => rng.range(0, len),
        };
        self.durable
            .extend_from_slice(&self.volatile[..keep as usize]);
        self.volatile.clear();
        (keep, len)
    }

    /// What `Wal::open` does, over the bytes: verify frames, CRCs and the
    /// chain from genesis, replay, cut a torn tail (corruption is an error).
    pub fn recover(&mut self) -> Result<Recovered, String> {
        assert!(
            self.volatile.is_empty(),
            "recover runs after a crash or at boot"
        );
        let mut chain = Some(Chain::GENESIS);
        let mut replay = Replay::default();
        let mut records = Vec::new();
        let mut replay_err = None;
        let scanned = codec::scan(&self.durable, &mut chain, true, |e| {
            if replay_err.is_none()
                && let Err(err) = replay.apply(e.seq, &e.record)
            {
                replay_err = Some(err.to_string());
            }
            records.push(e.record);
        })
        .map_err(|f| format!("the log is corrupt: {f}"))?;
        if let Some(e) = replay_err {
            return Err(format!("replay refused the log: {e}"));
        }
        let mut torn_bytes = 0;
        if let SegmentEnd::TornTail { bytes, .. } = scanned.end {
            self.durable.truncate(scanned.valid_len as usize);
            self.torn_tails += 1;
            torn_bytes = bytes;
        }
        Ok(Recovered {
            replay,
            writer: Writer {
                chain: chain.unwrap_or(Chain::GENESIS),
                poisoned: None,
            },
            records,
            torn_bytes,
        })
    }
}
