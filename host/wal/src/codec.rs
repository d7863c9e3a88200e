//! The on-disk format, as pure functions over byte slices (no I/O).
//!
//! A segment is a sequence of frames:
//!
//! ```text
//! frame = u32le(len) || u32le(crc32c(body)) || body          (len = |body|)
//! body  = CBOR map { seq: u64, prev: bytes(32), at_ms: u64, record: Record }
//! hash(n) = SHA-256(prev || body(n)),  prev(n) = hash(n-1),  prev(0) = 0^32
//! ```
//!
//! [`Chain`] encodes records and advances the chain; [`scan`] walks a
//! segment and tells an incomplete tail (a crash during a write: cut it) from
//! corruption (anything wrong followed by more valid data, or a valid frame
//! that breaks the chain: refuse it). Zeros from some offset to the end of
//! a segment are the writer's reserve (`crate::log`): the records end
//! there. See `docs/wal.md` for why.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::record::{ChainHash, Record};

/// Bytes before a body: length and CRC32C.
pub const HEADER_LEN: usize = 8;
/// No valid body is shorter (the field names alone take more), so a run of
/// zero bytes never reads as a frame.
pub const MIN_BODY: u32 = 16;
/// Refuse absurd lengths before allocating (a checkpoint of a huge scene is
/// the largest legitimate record).
pub const MAX_BODY: u32 = 256 << 20;

#[derive(Serialize)]
struct BodyRef<'a> {
    seq: u64,
    prev: ChainHash,
    at_ms: u64,
    record: &'a Record,
}

#[derive(Deserialize)]
struct Body {
    seq: u64,
    prev: ChainHash,
    at_ms: u64,
    record: Record,
}

/// One decoded record with where it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub prev: ChainHash,
    /// This record's own chain hash.
    pub hash: ChainHash,
    /// Wall-clock time the host stamped (milliseconds since the Unix epoch).
    pub at_ms: u64,
    pub record: Record,
    /// Offset of the frame header within its segment.
    pub offset: u64,
    /// Frame length including the header.
    pub frame_len: u32,
}

/// What is wrong at one offset of a segment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("frame at offset {offset} is incomplete: needs {need} bytes, {have} present")]
    Truncated { offset: u64, need: u64, have: u64 },
    #[error(
        "frame at offset {offset} declares an impossible body length {len} (allowed {MIN_BODY}..={MAX_BODY})"
    )]
    BadLength { offset: u64, len: u32 },
    #[error(
        "frame at offset {offset} fails its CRC32C: stored {stored:08x}, computed {computed:08x}"
    )]
    Crc {
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error("record at offset {offset} has a valid checksum but does not decode: {reason}")]
    Body { offset: u64, reason: String },
    #[error("record at offset {offset} has seq {found}, expected {expected}")]
    Seq {
        offset: u64,
        expected: u64,
        found: u64,
    },
    #[error(
        "record seq {seq} at offset {offset} does not chain: prev is {found}, the previous record hashes to {expected}"
    )]
    Chain {
        offset: u64,
        seq: u64,
        expected: ChainHash,
        found: ChainHash,
    },
}

impl Fault {
    pub fn offset(&self) -> u64 {
        match self {
            Fault::Truncated { offset, .. }
            | Fault::BadLength { offset, .. }
            | Fault::Crc { offset, .. }
            | Fault::Body { offset, .. }
            | Fault::Seq { offset, .. }
            | Fault::Chain { offset, .. } => *offset,
        }
    }
}

/// Could not encode a record (only a serializer bug or a record over
/// [`MAX_BODY`] gets here).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("record does not serialize to CBOR: {0}")]
    Cbor(String),
    #[error(
        "record body of {0} bytes exceeds the {MAX_BODY}-byte frame limit; split the checkpoint or the intent"
    )]
    TooLarge(usize),
}

/// Where the chain stands: the next sequence number and the last hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    pub next_seq: u64,
    pub head: ChainHash,
}

/// What [`Chain::encode`] appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub hash: ChainHash,
    pub frame_len: u32,
}

impl Chain {
    pub const GENESIS: Chain = Chain {
        next_seq: 0,
        head: ChainHash::GENESIS,
    };

    /// Frame `record` onto `out` and advance the chain. On error nothing is
    /// appended and the chain is unchanged.
    pub fn encode(
        &mut self,
        at_ms: u64,
        record: &Record,
        out: &mut Vec<u8>,
    ) -> Result<Appended, EncodeError> {
        let body = BodyRef {
            seq: self.next_seq,
            prev: self.head,
            at_ms,
            record,
        };
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        let mut buf = std::mem::take(out);
        buf = match cbor4ii::serde::to_vec(buf, &body) {
            Ok(b) => b,
            Err(e) => return Err(EncodeError::Cbor(e.to_string())),
        };
        let body_len = buf.len() - start - HEADER_LEN;
        if body_len > MAX_BODY as usize {
            buf.truncate(start);
            *out = buf;
            return Err(EncodeError::TooLarge(body_len));
        }
        let body_bytes = &buf[start + HEADER_LEN..];
        let crc = crc32c::crc32c(body_bytes);
        let hash = link(&self.head, body_bytes);
        buf[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
        buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        *out = buf;
        let appended = Appended {
            seq: self.next_seq,
            hash,
            frame_len: (HEADER_LEN + body_len) as u32,
        };
        self.next_seq += 1;
        self.head = hash;
        Ok(appended)
    }
}

/// `SHA-256(prev || body)`.
pub fn link(prev: &ChainHash, body: &[u8]) -> ChainHash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(body);
    ChainHash(h.finalize().into())
}

/// The body of the CRC-valid frame at `pos`, or why there is none.
fn frame_at(buf: &[u8], pos: usize) -> Result<&[u8], Fault> {
    let offset = pos as u64;
    let have = (buf.len() - pos) as u64;
    if buf.len() - pos < HEADER_LEN {
        return Err(Fault::Truncated {
            offset,
            need: HEADER_LEN as u64,
            have,
        });
    }
    let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().expect("4 bytes"));
    let stored = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().expect("4 bytes"));
    let need = HEADER_LEN as u64 + len as u64;
    if need > have {
        // A length past the end is what a torn write looks like, but so is a
        // corrupted length; `scan` tells them apart by what follows.
        return Err(Fault::Truncated { offset, need, have });
    }
    if !(MIN_BODY..=MAX_BODY).contains(&len) {
        return Err(Fault::BadLength { offset, len });
    }
    let body = &buf[pos + HEADER_LEN..pos + HEADER_LEN + len as usize];
    let computed = crc32c::crc32c(body);
    if computed != stored {
        return Err(Fault::Crc {
            offset,
            stored,
            computed,
        });
    }
    Ok(body)
}

/// Is there any CRC-valid frame starting at or after `from`? (A chance
/// match is about 2^-32 per candidate position.)
fn valid_frame_from(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len().saturating_sub(HEADER_LEN - 1)).find(|&p| frame_at(buf, p).is_ok())
}

/// Decode a CRC-valid body found at `offset`.
pub fn decode_body(body: &[u8], offset: u64) -> Result<Entry, Fault> {
    let b: Body = cbor4ii::serde::from_slice(body).map_err(|e| Fault::Body {
        offset,
        reason: e.to_string(),
    })?;
    Ok(Entry {
        seq: b.seq,
        prev: b.prev,
        hash: link(&b.prev, body),
        at_ms: b.at_ms,
        record: b.record,
        offset,
        frame_len: (HEADER_LEN + body.len()) as u32,
    })
}

/// How a segment ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte belongs to a valid record, or to the zeros the writer
    /// reserved after the last one.
    Clean,
    /// The bytes from `fault.offset()` on are an incomplete or unchecksummed
    /// final write with nothing valid after it; recovery cuts them.
    TornTail { fault: Fault, bytes: u64 },
}

/// The result of [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scanned {
    pub end: SegmentEnd,
    /// Bytes of valid records (where a writer may append); any zeros the
    /// writer reserved follow them.
    pub valid_len: u64,
    pub records: u64,
}

/// Walk the frames of one segment, verify the chain from `chain` (or, if
/// `None`, trust the first record's `seq`/`prev`: recovery from a
/// checkpoint), and call `visit` for each valid record in order.
///
/// `may_be_torn` says whether this is the segment a crash could have left
/// half-written (the last one). A bad frame followed by any valid frame is
/// corruption, never a torn tail; a checksum-valid record that breaks the
/// chain is always corruption.
pub fn scan(
    buf: &[u8],
    chain: &mut Option<Chain>,
    may_be_torn: bool,
    mut visit: impl FnMut(Entry),
) -> Result<Scanned, Fault> {
    let mut pos = 0usize;
    let mut records = 0u64;
    while pos < buf.len() {
        let body = match frame_at(buf, pos) {
            Ok(body) => body,
            Err(_) if buf[pos..].iter().all(|&b| b == 0) => {
                // The writer's reserve (see `crate::log`): space after the
                // last record that reads as zeros, where the next one goes.
                break;
            }
            Err(fault) => {
                if !may_be_torn || valid_frame_from(buf, pos + 1).is_some() {
                    return Err(fault);
                }
                let bytes = (buf.len() - pos) as u64;
                return Ok(Scanned {
                    end: SegmentEnd::TornTail { fault, bytes },
                    valid_len: pos as u64,
                    records,
                });
            }
        };
        let entry = decode_body(body, pos as u64)?;
        if let Some(c) = chain {
            if entry.seq != c.next_seq {
                return Err(Fault::Seq {
                    offset: pos as u64,
                    expected: c.next_seq,
                    found: entry.seq,
                });
            }
            if entry.prev != c.head {
                return Err(Fault::Chain {
                    offset: pos as u64,
                    seq: entry.seq,
                    expected: c.head,
                    found: entry.prev,
                });
            }
        }
        *chain = Some(Chain {
            next_seq: entry.seq + 1,
            head: entry.hash,
        });
        pos += entry.frame_len as usize;
        records += 1;
        visit(entry);
    }
    Ok(Scanned {
        end: SegmentEnd::Clean,
        valid_len: pos as u64,
        records,
    })
}

/// Decode only the first frame of a segment (to find checkpoints fast).
pub fn first_entry(buf: &[u8]) -> Option<Entry> {
    decode_body(frame_at(buf, 0).ok()?, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Source;

    fn rec(tid: u64) -> Record {
        Record::Provisional { tid }
    }

    fn log(n: u64) -> (Vec<u8>, Chain, Vec<u64>) {
        let mut chain = Chain::GENESIS;
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for i in 0..n {
            offsets.push(out.len() as u64);
            chain.encode(1000 + i, &rec(i), &mut out).unwrap();
        }
        (out, chain, offsets)
    }

    fn scan_all(buf: &[u8], torn_ok: bool) -> Result<(Scanned, Vec<Entry>), Fault> {
        let mut seen = Vec::new();
        let mut chain = Some(Chain::GENESIS);
        let s = scan(buf, &mut chain, torn_ok, |e| seen.push(e))?;
        Ok((s, seen))
    }

    #[test]
    fn zeros_to_the_end_are_the_reserve_in_any_segment() {
        let (mut buf, _, _) = log(5);
        let records = buf.len() as u64;
        buf.resize(buf.len() + 4096, 0);
        for last in [false, true] {
            let (s, seen) = scan_all(&buf, last).unwrap();
            assert_eq!(
                (s.end, s.valid_len, seen.len()),
                (SegmentEnd::Clean, records, 5)
            );
        }
        // Anything non-zero after the zeros: a torn tail in the last
        // segment, corruption in a sealed one.
        let n = buf.len();
        buf[n - 1] = 1;
        let (s, _) = scan_all(&buf, true).unwrap();
        assert!(
            matches!(s.end, SegmentEnd::TornTail { bytes: 4096, .. }),
            "{s:?}"
        );
        assert_eq!(s.valid_len, records);
        assert!(scan_all(&buf, false).is_err());
        // Only zeros, no record yet: an empty segment.
        let (s, seen) = scan_all(&[0; 100], false).unwrap();
        assert_eq!((s.end, s.valid_len, seen.len()), (SegmentEnd::Clean, 0, 0));
    }

    #[test]
    fn round_trip_keeps_order_chain_and_content() {
        let (buf, chain, _) = log(50);
        let (s, seen) = scan_all(&buf, false).unwrap();
        assert_eq!(s.end, SegmentEnd::Clean);
        assert_eq!(seen.len(), 50);
        assert_eq!(seen.last().unwrap().hash, chain.head);
        assert_eq!(seen[7].record, rec(7));
        assert_eq!(seen[7].at_ms, 1007);
        assert_eq!(seen[8].prev, seen[7].hash);
    }

    #[test]
    fn every_record_kind_round_trips() {
        let intent = Record::Intent(crate::record::IntentRecord {
            tid: 9,
            source: Source::Agent,
            author: "claude".into(),
            ops: vec![vibesync_canonical::Op::DeleteObject { id: "a".into() }],
            rationale: "tidy".into(),
            idempotency_key: Some("k".into()),
            scene_version_read: 3,
            engines: vec!["blender".into()],
        });
        let ack = Record::EngineAck {
            tid: 9,
            engine: "unity".into(),
            ack: crate::record::AckOutcome::Applied {
                undo_token: serde_json::json!({"undo": [1, 2.5, "x"]}).into(),
            },
        };
        let mut chain = Chain::GENESIS;
        let mut out = Vec::new();
        chain.encode(1, &intent, &mut out).unwrap();
        chain.encode(2, &ack, &mut out).unwrap();
        let (_, seen) = scan_all(&out, false).unwrap();
        assert_eq!(seen[0].record, intent);
        assert_eq!(seen[1].record, ack);
    }

    #[test]
    fn every_incomplete_tail_is_torn_never_accepted() {
        let (buf, _, offsets) = log(5);
        let last = *offsets.last().unwrap() as usize;
        for cut in last + 1..buf.len() {
            let (s, seen) = scan_all(&buf[..cut], true).unwrap();
            assert_eq!(seen.len(), 4, "cut at {cut}");
            assert_eq!(s.valid_len, last as u64);
            assert!(
                matches!(s.end, SegmentEnd::TornTail { bytes, .. } if bytes == (cut - last) as u64)
            );
            // A sealed segment may not end torn.
            assert_eq!(
                scan_all(&buf[..cut], false).unwrap_err().offset(),
                last as u64
            );
        }
    }

    #[test]
    fn a_flipped_byte_mid_log_is_corruption_at_its_frame() {
        let (buf, _, offsets) = log(10);
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            let frame = offsets.iter().rposition(|&o| o as usize <= i).unwrap();
            match scan_all(&bad, true) {
                Err(fault) => assert_eq!(fault.offset(), offsets[frame], "byte {i}: {fault}"),
                // Only the last frame may read as a torn tail (nothing after it).
                Ok((s, _)) => {
                    assert_eq!(frame, 9, "byte {i} in frame {frame} accepted");
                    assert!(matches!(s.end, SegmentEnd::TornTail { .. }));
                }
            }
        }
    }

    #[test]
    fn a_valid_frame_that_breaks_the_chain_is_refused() {
        let (mut buf, _, offsets) = log(3);
        // Re-encode record 1 with a wrong prev: checksum fine, chain broken.
        let mut rogue = Chain {
            next_seq: 1,
            head: ChainHash([7; 32]),
        };
        let mut frame = Vec::new();
        rogue.encode(0, &rec(1), &mut frame).unwrap();
        let (a, b) = (offsets[1] as usize, offsets[2] as usize);
        buf.splice(a..b, frame);
        assert!(matches!(
            scan_all(&buf, true),
            Err(Fault::Chain { seq: 1, .. })
        ));
    }

    #[test]
    fn zeros_after_the_last_record_are_a_torn_tail() {
        let (mut buf, _, _) = log(3);
        let len = buf.len() as u64;
        buf.extend_from_slice(&[0; 4096]);
        let (s, seen) = scan_all(&buf, true).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(s.valid_len, len);
    }
}
