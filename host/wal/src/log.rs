//! The I/O shell: segment files, group-commit appends, verification and
//! start-up recovery. All format decisions live in [`crate::codec`]; this
//! module only moves bytes between it and the file system.
//!
//! A segment is `<dir>/<first seq, 20 digits>.wal`. Segments are created
//! with `create_new` (never overwritten) and only ever appended to; the only
//! destructive operation is recovery cutting a torn tail of the last one.
//!
//! The writer keeps space *reserved* ahead of the records: it extends the
//! file with written zeros, [`RESERVE_STEP`] at a time, made durable by the
//! same `fdatasync` as the records that needed them. A record then
//! overwrites blocks the file already has, written and with their final
//! size, so most group commits' `fdatasync` is one data write and no inode
//! write (`docs/wal.md`). [`codec::scan`] reads an all-zero remainder of a
//! segment as that reserve, not as a torn tail.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::codec::{self, Chain, EncodeError, Entry, Fault, SegmentEnd};
use crate::record::{ChainHash, Record};
use crate::replay::{Replay, ReplayError};

/// Why the log cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal corrupt in {segment} at byte {}: {fault}; the log is refused. Restore the segment from a backup, or inspect it with `vibesync wal verify`", fault.offset())]
    Corrupt { segment: PathBuf, fault: Fault },
    #[error("journal {segment}: {what}; the log is refused. Inspect it with `vibesync wal verify`")]
    Layout { segment: PathBuf, what: String },
    #[error("journal replay stopped in {segment}: {source}")]
    Replay {
        segment: PathBuf,
        source: ReplayError,
    },
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(
        "journal writer is stopped after an earlier failure ({0}); nothing more is acknowledged. Restart the host so recovery re-reads the log"
    )]
    Poisoned(String),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WalError + use<'a> {
    move |source| WalError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Tunables of the writer and of recovery.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Start a new segment when the current one would grow past this.
    pub segment_bytes: u64,
    /// Recovery re-verifies every segment, not only those from the latest
    /// checkpoint on.
    pub full_verify: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 64 << 20,
            full_verify: false,
        }
    }
}

/// Bytes of zeros the writer reserves ahead of the records at a time:
/// one group commit in ~30 writes them (and the new file size) besides its
/// records; small enough that it costs that commit tens of µs, not ms.
pub const RESERVE_STEP: u64 = 64 << 10;

/// Proof that a record is on stable storage (written and `fdatasync`ed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durable {
    pub seq: u64,
    pub hash: ChainHash,
}

/// The segment files of `dir`, by first seq.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("read directory", dir)(e)),
    };
    for ent in rd {
        let ent = ent.map_err(io("read directory", dir))?;
        let name = ent.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if stem.len() == 20
            && let Ok(seq) = stem.parse::<u64>()
        {
            out.push((seq, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.wal"))
}

/// A torn tail that was (or, for `verify`, would be) cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    pub fault: Fault,
}

/// One segment as `verify` saw it.
#[derive(Clone, Debug)]
pub struct SegmentReport {
    pub path: PathBuf,
    pub first_seq: u64,
    pub records: u64,
    pub bytes: u64,
}

/// Everything `vibesync wal verify` prints.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub segments: Vec<SegmentReport>,
    /// Where the chain stands after the last valid record.
    pub head: Chain,
    pub records: u64,
    pub kinds: BTreeMap<&'static str, u64>,
    pub torn_tail: Option<TornTail>,
    /// The first corruption, if any (verification stops there).
    pub corruption: Option<(PathBuf, Fault)>,
    /// Segment-level problems (gaps, misnamed files).
    pub layout: Option<(PathBuf, String)>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.corruption.is_none() && self.layout.is_none()
    }
}

/// Read every segment of `dir` in order and call `visit` on each record,
/// verifying framing, checksums and the chain across segments from
/// `start` (index into `segs`) with `chain` (`None`: trust the first record).
struct Walk {
    chain: Option<Chain>,
    torn_tail: Option<TornTail>,
    /// Valid length of the last segment (where a writer appends).
    last_valid_len: u64,
}

fn walk(
    segs: &[(u64, PathBuf)],
    start: usize,
    mut chain: Option<Chain>,
    mut on_segment: impl FnMut(&Path, u64, u64, u64),
    mut visit: impl FnMut(&Path, Entry),
) -> Result<Walk, WalError> {
    let mut torn_tail = None;
    let mut last_valid_len = 0;
    for (i, (first_seq, path)) in segs.iter().enumerate().skip(start) {
        let buf = fs::read(path).map_err(io("read segment", path))?;
        if let Some(c) = chain
            && c.next_seq != *first_seq
        {
            return Err(WalError::Layout {
                segment: path.clone(),
                what: format!(
                    "segment is named for seq {first_seq} but the chain continues at seq {}; a segment is missing or misnamed",
                    c.next_seq
                ),
            });
        }
        let last = i + 1 == segs.len();
        if chain.is_none() {
            // Trusted start (checkpoint): seq from the file name, prev from the record.
            if let Some(e) = codec::first_entry(&buf) {
                chain = Some(Chain {
                    next_seq: *first_seq,
                    head: e.prev,
                });
            }
        }
        let scanned = codec::scan(&buf, &mut chain, last, |e| visit(path, e)).map_err(|fault| {
            WalError::Corrupt {
                segment: path.clone(),
                fault,
            }
        })?;
        if chain.is_none() {
            chain = Some(Chain {
                next_seq: *first_seq,
                head: ChainHash::GENESIS,
            });
        }
        on_segment(path, *first_seq, scanned.records, scanned.valid_len);
        if let SegmentEnd::TornTail { fault, bytes } = scanned.end {
            torn_tail = Some(TornTail {
                segment: path.clone(),
                offset: scanned.valid_len,
                bytes,
                fault,
            });
        }
        last_valid_len = scanned.valid_len;
    }
    Ok(Walk {
        chain,
        torn_tail,
        last_valid_len,
    })
}

/// Verify the whole log read-only: framing, checksums, the chain across
/// every segment. Never modifies anything; a torn tail is reported, not cut.
pub fn verify(dir: &Path) -> Result<VerifyReport, WalError> {
    let segs = segments(dir)?;
    let mut report = VerifyReport {
        segments: Vec::new(),
        head: Chain::GENESIS,
        records: 0,
        kinds: BTreeMap::new(),
        torn_tail: None,
        corruption: None,
        layout: None,
    };
    let genesis = Chain {
        next_seq: segs.first().map_or(0, |s| s.0),
        head: ChainHash::GENESIS,
    };
    let mut head = genesis;
    let result = walk(
        &segs,
        0,
        Some(genesis),
        |path, first_seq, records, bytes| {
            report.segments.push(SegmentReport {
                path: path.to_path_buf(),
                first_seq,
                records,
                bytes,
            })
        },
        |_, e| {
            report.records += 1;
            *report.kinds.entry(e.record.kind()).or_default() += 1;
            head = Chain {
                next_seq: e.seq + 1,
                head: e.hash,
            };
        },
    );
    report.head = head;
    match result {
        Ok(w) => report.torn_tail = w.torn_tail,
        Err(WalError::Corrupt { segment, fault }) => report.corruption = Some((segment, fault)),
        Err(WalError::Layout { segment, what }) => report.layout = Some((segment, what)),
        Err(e) => return Err(e),
    }
    Ok(report)
}

/// Read every valid record of the log in order (for `show` / `export`),
/// stopping at the first corruption with an error.
pub fn read_all(
    dir: &Path,
    mut visit: impl FnMut(&Path, &Entry),
) -> Result<Option<TornTail>, WalError> {
    let segs = segments(dir)?;
    let genesis = Some(Chain {
        next_seq: segs.first().map_or(0, |s| s.0),
        head: ChainHash::GENESIS,
    });
    Ok(walk(&segs, 0, genesis, |_, _, _, _| {}, |p, e| visit(p, &e))?.torn_tail)
}

/// Where recovery started replaying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayStart {
    Genesis,
    Checkpoint { seq: u64, segment: PathBuf },
}

/// What start-up recovery found and rebuilt.
#[derive(Clone, Debug)]
pub struct Recovered {
    pub replay: Replay,
    pub start: ReplayStart,
    pub records_replayed: u64,
    pub segments_read: usize,
    /// The incomplete final write that was cut, if any.
    pub torn_tail: Option<TornTail>,
}

/// The journal writer. One owner (the sequencer task) appends batches; each
/// batch costs one `write` per segment touched and one `fdatasync`.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    file: File,
    seg_path: PathBuf,
    seg_len: u64,
    /// How far the segment is reserved: `seg_len` bytes of records, then
    /// written zeros up to here (the file's size).
    reserved: u64,
    chain: Chain,
    buf: Vec<u8>,
    poisoned: Option<String>,
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

impl Wal {
    /// Recover `dir` (creating it if needed) and open it for appending.
    ///
    /// Verifies the chain from the latest checkpoint (every segment with
    /// `full_verify`), cuts a torn tail of the last segment, refuses any
    /// corruption, and replays the records into a [`Replay`].
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let segs = segments(dir)?;
        let mut start = 0;
        let mut replay = Replay::default();
        let mut replay_start = ReplayStart::Genesis;
        let mut chain = Some(Chain {
            next_seq: segs.first().map_or(0, |s| s.0),
            head: ChainHash::GENESIS,
        });
        if !opts.full_verify {
            for (i, (seq, path)) in segs.iter().enumerate().rev() {
                let head = read_head(path)?;
                if let Some(Entry {
                    record: Record::Checkpoint(c),
                    ..
                }) = codec::first_entry(&head)
                {
                    start = i;
                    replay = Replay::from_checkpoint(&c);
                    replay_start = ReplayStart::Checkpoint {
                        seq: *seq,
                        segment: path.clone(),
                    };
                    chain = None;
                    break;
                }
            }
        }
        let mut replay_err = None;
        let mut records = 0u64;
        let skip_first = matches!(replay_start, ReplayStart::Checkpoint { .. });
        let walked = walk(
            &segs,
            start,
            chain,
            |_, _, _, _| {},
            |path, e| {
                records += 1;
                if replay_err.is_some() || (skip_first && records == 1) {
                    return;
                }
                if let Err(source) = replay.apply_owned(e.seq, e.record) {
                    replay_err = Some(WalError::Replay {
                        segment: path.to_path_buf(),
                        source,
                    });
                }
            },
        )?;
        if let Some(e) = replay_err {
            return Err(e);
        }
        if let Some(t) = &walked.torn_tail {
            let f = OpenOptions::new()
                .write(true)
                .open(&t.segment)
                .map_err(io("open segment", &t.segment))?;
            f.set_len(t.offset)
                .map_err(io("truncate torn tail of", &t.segment))?;
            f.sync_all().map_err(io("fsync", &t.segment))?;
        }
        let chain = walked.chain.unwrap_or(Chain::GENESIS);
        let (seg_path, seg_len) = match segs.last() {
            Some((_, p)) => (p.clone(), walked.last_valid_len),
            None => {
                let p = segment_path(dir, 0);
                File::options()
                    .create_new(true)
                    .write(true)
                    .open(&p)
                    .map_err(io("create segment", &p))?;
                sync_dir(dir)?;
                (p, 0)
            }
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&seg_path)
            .map_err(io("open segment", &seg_path))?;
        let reserved = file
            .metadata()
            .map_err(io("stat segment", &seg_path))?
            .len()
            .max(seg_len);
        let recovered = Recovered {
            replay,
            start: replay_start,
            records_replayed: records,
            segments_read: segs.len() - start,
            torn_tail: walked.torn_tail,
        };
        let wal = Wal {
            dir: dir.to_path_buf(),
            opts,
            file,
            seg_path,
            seg_len,
            reserved,
            chain,
            buf: Vec::new(),
            poisoned: None,
        };
        Ok((wal, recovered))
    }

    /// Where the next record will chain from.
    pub fn head(&self) -> Chain {
        self.chain
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append one record and make it durable (one `fdatasync`).
    pub fn append(&mut self, at_ms: u64, record: &Record) -> Result<Durable, WalError> {
        Ok(self.append_batch([(at_ms, record)])?[0])
    }

    /// Group commit: append every record, then one `fdatasync`. Returns only
    /// once all of them are durable; on error none of them may be acted on
    /// and the writer refuses further appends (fail closed).
    pub fn append_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u64, &'a Record)>,
    ) -> Result<Vec<Durable>, WalError> {
        if let Some(why) = &self.poisoned {
            return Err(WalError::Poisoned(why.clone()));
        }
        // Encode everything first, so an encoding error touches no file.
        self.buf.clear();
        let mut chain = self.chain;
        let mut durables = Vec::new();
        // (offset in buf where a new segment starts, its first seq)
        let mut cuts: Vec<(usize, u64)> = Vec::new();
        let mut seg_len = self.seg_len;
        for (at_ms, record) in records {
            let start = self.buf.len();
            let seq = chain.next_seq;
            let a = match chain.encode(at_ms, record, &mut self.buf) {
                Ok(a) => a,
                Err(e) => {
                    self.buf.clear();
                    return Err(e.into());
                }
            };
            let rotate = seg_len > 0
                && (matches!(record, Record::Checkpoint(_))
                    || seg_len + a.frame_len as u64 > self.opts.segment_bytes);
            if rotate {
                cuts.push((start, seq));
                seg_len = 0;
            }
            seg_len += a.frame_len as u64;
            durables.push(Durable {
                seq: a.seq,
                hash: a.hash,
            });
        }
        match self.write_out(&cuts) {
            Ok(()) => {
                self.chain = chain;
                Ok(durables)
            }
            Err(e) => {
                self.poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn write_out(&mut self, cuts: &[(usize, u64)]) -> Result<(), WalError> {
        let buf = std::mem::take(&mut self.buf);
        let mut from = 0;
        for &(at, seq) in cuts {
            self.write_records(&buf[from..at])?;
            let path = segment_path(&self.dir, seq);
            let file = File::options()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(io("create segment", &path))?;
            sync_dir(&self.dir)?;
            self.file = file;
            self.seg_path = path;
            self.seg_len = 0;
            self.reserved = 0;
            from = at;
        }
        self.write_records(&buf[from..])?;
        self.buf = buf;
        Ok(())
    }

    /// Write `bytes` after the segment's records, reserving more zeros
    /// first if they do not fit, and make both durable with one
    /// `fdatasync`.
    fn write_records(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        let end = self.seg_len + bytes.len() as u64;
        if end > self.reserved {
            // Never far past the size where the segment rotates.
            let target = end
                .next_multiple_of(RESERVE_STEP)
                .min(self.opts.segment_bytes.max(end));
            // Zeros only where the records will not go: they cover the rest.
            let zeros = vec![0; (target - end) as usize];
            self.file
                .write_all_at(&zeros, end)
                .map_err(io("reserve", &self.seg_path))?;
            self.reserved = target;
        }
        self.file
            .write_all_at(bytes, self.seg_len)
            .map_err(io("write", &self.seg_path))?;
        self.seg_len = end;
        self.file
            .sync_data()
            .map_err(io("fdatasync", &self.seg_path))
    }
}

/// The first frame of a segment, read without loading the whole file.
fn read_head(path: &Path) -> Result<Vec<u8>, WalError> {
    use std::io::Read;
    let mut f = File::open(path).map_err(io("open segment", path))?;
    let mut hdr = [0u8; codec::HEADER_LEN];
    let mut got = 0;
    while got < hdr.len() {
        match f.read(&mut hdr[got..]).map_err(io("read segment", path))? {
            0 => return Ok(hdr[..got].to_vec()),
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(hdr[..4].try_into().expect("4 bytes")).min(codec::MAX_BODY);
    let mut buf = hdr.to_vec();
    f.take(len as u64)
        .read_to_end(&mut buf)
        .map_err(io("read segment", path))?;
    Ok(buf)
}
