//! Frames: how one message is sealed on the wire and how a received one is
//! judged.
//!
//! ```text
//! record = len:u32 big-endian || signed || tag          (len = |signed| + 32)
//! signed = CBOR map {"v": 1, "k": key id, "c": channel, "d": direction,
//!                    "s": seq, "t": unix ms, "y": kind, "b": body}
//! tag    = HMAC-SHA256(session key `k`, signed)          (32 bytes)
//! ```
//!
//! The tag covers the exact received bytes, so nothing is re-encoded before
//! checking it. A [`Receiver`] holds the per-channel, per-direction state
//! (last sequence number, refusal counters) and refuses, in this order:
//! oversize, undecodable or too deep, unknown key, bad tag, misrouted, stale,
//! from the future, replayed, out of order, bad body. Each refusal is a
//! [`Refusal`] with a stable [`Refusal::code`]. The receiver is plain state:
//! the caller passes the current time in.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::cbor::{self, ScanError};
use crate::keys::KeyRing;
use crate::msg::Message;

/// Wire version in every frame's `v`.
pub const VERSION: u64 = 1;
/// Length of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Which stream a frame travels on; part of the signed header so a frame
/// cannot be moved from one stream to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Channel {
    /// The ordered bidirectional control stream: handshake, commands, replies, events, rekey.
    Control = 0,
    /// The adapter's unidirectional heartbeat stream.
    Heartbeat = 1,
    /// One unidirectional stream per large reply (mesh data, previews).
    Bulk = 2,
}

/// Who sent a frame; signed so a frame cannot be reflected back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    HostToAdapter = 0,
    AdapterToHost = 1,
}

/// Receiver limits. The defaults are the protocol's.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_frame: usize,
    pub max_depth: usize,
    pub max_age_ms: u64,
    pub max_skew_ms: u64,
}

impl Limits {
    pub fn for_channel(c: Channel) -> Limits {
        let max_frame = match c {
            Channel::Control => 1 << 20,
            Channel::Heartbeat => 4 << 10,
            Channel::Bulk => 64 << 20,
        };
        Limits {
            max_frame,
            max_depth: 32,
            max_age_ms: 5_000,
            max_skew_ms: 1_000,
        }
    }
}

/// Why a received frame was refused. Every variant maps to a stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "oversize: frame of {len} bytes exceeds the {max}-byte limit of this channel; send large payloads on a bulk stream"
    )]
    Oversize { len: usize, max: usize },
    #[error("undecodable: {0}; frames are one definite-length CBOR map followed by a 32-byte tag")]
    Undecodable(String),
    #[error("too-deep: CBOR nesting exceeds {max} levels; flatten the body")]
    TooDeep { max: usize },
    #[error(
        "unknown-key: key id {key_id} is not a current session key (expired after rotation, or the handshake is not done)"
    )]
    UnknownKey { key_id: u32 },
    #[error("bad-tag: HMAC-SHA256 tag does not match the frame bytes under key {key_id}")]
    BadTag { key_id: u32 },
    #[error("misrouted: `{kind}` frame from {dir:?} is not allowed on the {channel:?} channel")]
    Misrouted {
        kind: String,
        channel: Channel,
        dir: Direction,
    },
    #[error(
        "stale: frame timestamp is {age_ms} ms old (limit {max_ms} ms); check the sender's clock"
    )]
    Stale { age_ms: u64, max_ms: u64 },
    #[error(
        "future: frame timestamp is {ahead_ms} ms ahead (allowed skew {max_ms} ms); check the sender's clock"
    )]
    Future { ahead_ms: u64, max_ms: u64 },
    #[error("replay: sequence number {seq} was already used (last accepted {last})")]
    Replay { seq: u64, last: u64 },
    #[error("out-of-order: sequence number {seq} arrived while {expected} was expected")]
    OutOfOrder { seq: u64, expected: u64 },
    #[error("unknown-kind: message kind `{0}` is not part of vibesync/1")]
    UnknownKind(String),
    #[error("bad-body: `{kind}` body does not match its schema: {reason}")]
    BadBody { kind: String, reason: String },
}

/// All refusal codes, in counter order.
pub const REFUSAL_CODES: [&str; 12] = [
    "oversize",
    "undecodable",
    "too-deep",
    "unknown-key",
    "bad-tag",
    "misrouted",
    "stale",
    "future",
    "replay",
    "out-of-order",
    "unknown-kind",
    "bad-body",
];

impl Refusal {
    /// The stable code (also the first word of the message).
    pub fn code(&self) -> &'static str {
        REFUSAL_CODES[self.index()]
    }

    fn index(&self) -> usize {
        match self {
            Refusal::Oversize { .. } => 0,
            Refusal::Undecodable(_) => 1,
            Refusal::TooDeep { .. } => 2,
            Refusal::UnknownKey { .. } => 3,
            Refusal::BadTag { .. } => 4,
            Refusal::Misrouted { .. } => 5,
            Refusal::Stale { .. } => 6,
            Refusal::Future { .. } => 7,
            Refusal::Replay { .. } => 8,
            Refusal::OutOfOrder { .. } => 9,
            Refusal::UnknownKind(_) => 10,
            Refusal::BadBody { .. } => 11,
        }
    }
}

/// Refusals counted per code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefusalCounts(pub [u64; 12]);

impl RefusalCounts {
    pub fn get(&self, code: &str) -> u64 {
        REFUSAL_CODES
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.0[i])
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub fn add(&mut self, other: &RefusalCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
    /// `(code, count)` for every non-zero counter.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        REFUSAL_CODES
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (*c, n))
            .collect()
    }
}

/// The decoded, not yet verified header of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key_id: u32,
    pub channel: u8,
    pub direction: u8,
    pub seq: u64,
    pub ts_ms: u64,
    pub kind: String,
}

/// A decoded record: header, the signed bytes, the body bytes, the tag.
pub type Decoded<'a> = (Header, &'a [u8], &'a [u8], &'a [u8]);

/// Splits `record` (signed || tag, without the length prefix) and decodes the
/// header. Pure and total: this is the fuzzed decoder.
pub fn decode(record: &[u8], max_depth: usize) -> Result<Decoded<'_>, Refusal> {
    if record.len() < TAG_LEN + 1 {
        return Err(Refusal::Undecodable(format!(
            "record of {} bytes is shorter than a tag",
            record.len()
        )));
    }
    let (signed, tag) = record.split_at(record.len() - TAG_LEN);
    let entries = cbor::map_entries(signed, max_depth)
        .map_err(scan_refusal)?
        .ok_or_else(|| Refusal::Undecodable("frame is not a CBOR map".into()))?;
    let mut v = None;
    let mut k = None;
    let mut c = None;
    let mut d = None;
    let mut s = None;
    let mut t = None;
    let mut y = None;
    let mut b = None;
    for (ks, vs) in entries {
        let key: &str = cbor4ii::serde::from_slice(&signed[ks])
            .map_err(|_| Refusal::Undecodable("frame map keys must be text".into()))?;
        let val = &signed[vs];
        let uint = |name: &str| -> Result<u64, Refusal> {
            cbor4ii::serde::from_slice::<u64>(val).map_err(|_| {
                Refusal::Undecodable(format!("field `{name}` must be an unsigned integer"))
            })
        };
        let slot = match key {
            "v" => &mut v,
            "k" => &mut k,
            "c" => &mut c,
            "d" => &mut d,
            "s" => &mut s,
            "t" => &mut t,
            "y" => {
                let kind: String = cbor4ii::serde::from_slice(val)
                    .map_err(|_| Refusal::Undecodable("field `y` (kind) must be text".into()))?;
                if y.replace(kind).is_some() {
                    return Err(Refusal::Undecodable("field `y` appears twice".into()));
                }
                continue;
            }
            "b" => {
                if b.replace(val).is_some() {
                    return Err(Refusal::Undecodable("field `b` appears twice".into()));
                }
                continue;
            }
            other => {
                return Err(Refusal::Undecodable(format!(
                    "unknown frame field `{}`",
                    other.escape_debug()
                )));
            }
        };
        if slot.replace(uint(key)?).is_some() {
            return Err(Refusal::Undecodable(format!("field `{key}` appears twice")));
        }
    }
    let need = |f: Option<u64>, name: &str| {
        f.ok_or_else(|| Refusal::Undecodable(format!("frame field `{name}` is missing")))
    };
    if need(v, "v")? != VERSION {
        return Err(Refusal::Undecodable(format!(
            "frame version {} is not {VERSION}",
            v.unwrap_or(0)
        )));
    }
    let key_id = u32::try_from(need(k, "k")?)
        .map_err(|_| Refusal::Undecodable("field `k` exceeds u32".into()))?;
    let channel = u8::try_from(need(c, "c")?)
        .map_err(|_| Refusal::Undecodable("field `c` exceeds u8".into()))?;
    let direction = u8::try_from(need(d, "d")?)
        .map_err(|_| Refusal::Undecodable("field `d` exceeds u8".into()))?;
    let header = Header {
        key_id,
        channel,
        direction,
        seq: need(s, "s")?,
        ts_ms: need(t, "t")?,
        kind: y.ok_or_else(|| Refusal::Undecodable("frame field `y` is missing".into()))?,
    };
    let body = b.ok_or_else(|| Refusal::Undecodable("frame field `b` is missing".into()))?;
    Ok((header, signed, body, tag))
}

fn scan_refusal(e: ScanError) -> Refusal {
    match e {
        ScanError::TooDeep { max, .. } => Refusal::TooDeep { max },
        other => Refusal::Undecodable(other.to_string()),
    }
}

/// Builds a record from explicit header values. [`Sender::seal`] is the
/// normal path; this one exists for test clients that craft hostile frames
/// and for the documented example frames, hence the long argument list.
#[allow(clippy::too_many_arguments)]
pub fn seal_raw(
    key_id: u32,
    key: Option<&[u8; 32]>,
    channel: u8,
    direction: u8,
    seq: u64,
    ts_ms: u64,
    kind: &str,
    body: &[u8],
) -> Vec<u8> {
    let mac = key.map(|k| HmacSha256::new_from_slice(k).expect("HMAC takes any key length"));
    seal_with(
        key_id,
        mac.as_ref(),
        channel,
        direction,
        seq,
        ts_ms,
        kind,
        |out| out.extend_from_slice(body),
    )
}

/// Writes the whole record into one buffer: length prefix, signed map with
/// the body appended in place by `body`, then the tag over the signed bytes.
/// `mac` is the keyed HMAC state (cloned, never consumed); `None` seals an
/// unsigned handshake frame (all-zero tag).
#[allow(clippy::too_many_arguments)]
fn seal_with(
    key_id: u32,
    mac: Option<&HmacSha256>,
    channel: u8,
    direction: u8,
    seq: u64,
    ts_ms: u64,
    kind: &str,
    body: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    // The map is written by hand so that `b` is embedded byte for byte.
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(&[0; 4]); // length, filled in below
    out.push(0xa8); // map of 8
    let text = |out: &mut Vec<u8>, s: &str| {
        put_head(out, 3, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    };
    for (name, value) in [
        ("v", VERSION),
        ("k", key_id as u64),
        ("c", channel as u64),
        ("d", direction as u64),
        ("s", seq),
        ("t", ts_ms),
    ] {
        text(&mut out, name);
        put_head(&mut out, 0, value);
    }
    text(&mut out, "y");
    text(&mut out, kind);
    text(&mut out, "b");
    body(&mut out);
    let tag: [u8; TAG_LEN] = match mac {
        Some(m) => {
            let mut m = m.clone();
            m.update(&out[4..]);
            m.finalize().into_bytes().into()
        }
        None => [0; TAG_LEN],
    };
    out.extend_from_slice(&tag);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out
}

pub(crate) fn put_head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

/// Seals outgoing frames of one channel and direction.
#[derive(Debug)]
pub struct Sender {
    channel: Channel,
    direction: Direction,
    next_seq: u64,
}

impl Sender {
    pub fn new(channel: Channel, direction: Direction) -> Self {
        Sender {
            channel,
            direction,
            next_seq: 1,
        }
    }

    /// A sender whose next frame carries `next_seq`.
    pub fn resume(channel: Channel, direction: Direction, next_seq: u64) -> Self {
        Sender {
            channel,
            direction,
            next_seq,
        }
    }

    /// The sequence number the next frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seals `msg` under the current key of `keys` (or unsigned with key id
    /// 0 during the handshake). Returns the record with its length prefix.
    pub fn seal(&mut self, keys: Option<&mut KeyRing>, now_ms: u64, msg: &Message) -> Vec<u8> {
        self.seal_body(keys, now_ms, msg.kind(), |out| msg.encode_body_into(out))
    }

    /// Seals a body the batch packer already encoded (`crate::batch`), as
    /// [`Sender::seal`] does.
    pub fn seal_packed(
        &mut self,
        keys: Option<&mut KeyRing>,
        now_ms: u64,
        packed: &crate::batch::Packed,
    ) -> Vec<u8> {
        self.seal_body(keys, now_ms, packed.kind, |out| {
            out.extend_from_slice(&packed.body)
        })
    }

    fn seal_body(
        &mut self,
        keys: Option<&mut KeyRing>,
        now_ms: u64,
        kind: &str,
        body: impl FnOnce(&mut Vec<u8>),
    ) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (c, d) = (self.channel as u8, self.direction as u8);
        match keys {
            Some(ring) => {
                ring.note_frame();
                seal_with(
                    ring.current_id(),
                    Some(ring.current_mac()),
                    c,
                    d,
                    seq,
                    now_ms,
                    kind,
                    body,
                )
            }
            None => seal_with(0, None, c, d, seq, now_ms, kind, body),
        }
    }
}

/// Frames refused in a row as `out-of-order` after which a strict stream
/// counts as wedged ([`Receiver::is_wedged`]).
pub const WEDGED_AFTER: u32 = 3;

/// How a channel's sequence numbers must advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// Exactly last + 1 (control and heartbeat streams).
    Strict,
    /// Any unused number above `max seen - window` (bulk streams, which QUIC
    /// does not order among themselves).
    Window(u64),
}

/// A received frame that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub key_id: u32,
    pub seq: u64,
    pub ts_ms: u64,
    pub msg: Message,
}

/// Judges the frames of one channel from one direction.
#[derive(Debug)]
pub struct Receiver {
    channel: Channel,
    from: Direction,
    order: Ordering,
    limits: Limits,
    last_seq: u64,
    seen: BTreeSet<u64>,
    counts: RefusalCounts,
    accepted: u64,
    /// Frames refused in a row for arriving past the next expected number
    /// (strict streams); see [`Receiver::is_wedged`].
    gap_run: u32,
}

impl Receiver {
    pub fn new(channel: Channel, from: Direction) -> Self {
        let order = if channel == Channel::Bulk {
            Ordering::Window(4096)
        } else {
            Ordering::Strict
        };
        Receiver {
            channel,
            from,
            order,
            limits: Limits::for_channel(channel),
            last_seq: 0,
            seen: BTreeSet::new(),
            counts: RefusalCounts::default(),
            accepted: 0,
            gap_run: 0,
        }
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn counts(&self) -> RefusalCounts {
        self.counts
    }

    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Checks a length prefix before its bytes are read. On `Err` the caller
    /// discards `len` bytes without buffering them.
    pub fn check_len(&mut self, len: usize) -> Result<(), Refusal> {
        if len > self.limits.max_frame {
            return self.refuse(Refusal::Oversize {
                len,
                max: self.limits.max_frame,
            });
        }
        Ok(())
    }

    fn refuse<T>(&mut self, r: Refusal) -> Result<T, Refusal> {
        self.counts.0[r.index()] += 1;
        Err(r)
    }

    /// Whether this stream can accept no later frame: [`WEDGED_AFTER`]
    /// frames in a row refused on a strict stream for arriving past the
    /// next expected number. Then the expected frame arrived and was
    /// refused without using up its number (it could not be authenticated,
    /// e.g. sealed with a key that expired in transit) and the transport
    /// never delivers it again; carrying on would refuse every later frame
    /// while looking connected, so the session must end and the peer
    /// reconnect with fresh keys. One early frame followed by the expected
    /// one (a buggy or hostile key holder) is only refused.
    pub fn is_wedged(&self) -> bool {
        self.gap_run >= WEDGED_AFTER
    }

    /// Opens one record (without its length prefix). `keys` is `None`
    /// during the handshake, when only unsigned key-id-0 frames are taken.
    pub fn open(
        &mut self,
        record: &[u8],
        keys: Option<&mut KeyRing>,
        now_ms: u64,
    ) -> Result<Opened, Refusal> {
        match self.judge(record, keys, now_ms) {
            Ok(o) => {
                self.accepted += 1;
                self.gap_run = 0;
                Ok(o)
            }
            Err(r) => {
                if self.order == Ordering::Strict && matches!(r, Refusal::OutOfOrder { .. }) {
                    self.gap_run += 1;
                }
                self.refuse(r)
            }
        }
    }

    fn judge(
        &mut self,
        record: &[u8],
        keys: Option<&mut KeyRing>,
        now_ms: u64,
    ) -> Result<Opened, Refusal> {
        if record.len() > self.limits.max_frame {
            return Err(Refusal::Oversize {
                len: record.len(),
                max: self.limits.max_frame,
            });
        }
        let (h, signed, body, tag) = decode(record, self.limits.max_depth)?;
        // Authenticity first: nothing below is trusted before the tag.
        let mut keys = keys;
        match keys.as_deref_mut() {
            None => {
                if h.key_id != 0 {
                    return Err(Refusal::UnknownKey { key_id: h.key_id });
                }
                if tag.iter().any(|&b| b != 0) {
                    return Err(Refusal::BadTag { key_id: 0 });
                }
            }
            Some(ring) => {
                let mut m = ring
                    .lookup_mac(h.key_id, now_ms)
                    .ok_or(Refusal::UnknownKey { key_id: h.key_id })?
                    .clone();
                m.update(signed);
                // `verify_slice` compares in constant time (subtle).
                m.verify_slice(tag)
                    .map_err(|_| Refusal::BadTag { key_id: h.key_id })?;
            }
        }
        if h.channel != self.channel as u8
            || h.direction != self.from as u8
            || !kind_allowed(&h.kind, self.channel, self.from, keys.is_none())
        {
            if crate::msg::KINDS.contains(&h.kind.as_str())
                || h.channel != self.channel as u8
                || h.direction != self.from as u8
            {
                return Err(Refusal::Misrouted {
                    kind: h.kind.clone(),
                    channel: self.channel,
                    dir: self.from,
                });
            }
            return Err(Refusal::UnknownKind(h.kind));
        }
        let late = if h.ts_ms + self.limits.max_age_ms < now_ms {
            Some(Refusal::Stale {
                age_ms: now_ms - h.ts_ms,
                max_ms: self.limits.max_age_ms,
            })
        } else if h.ts_ms > now_ms + self.limits.max_skew_ms {
            Some(Refusal::Future {
                ahead_ms: h.ts_ms - now_ms,
                max_ms: self.limits.max_skew_ms,
            })
        } else {
            None
        };
        if let Some(refusal) = late {
            // An authentic frame outside the time window is refused, but if
            // it is the one the stream expects next it still uses up its
            // sequence number: otherwise every later frame on a strict
            // stream would be refused as out of order while the session
            // stays up.
            if self.in_order(h.seq) {
                self.consume(h.seq);
            }
            return Err(refusal);
        }
        match self.order {
            Ordering::Strict => {
                if h.seq <= self.last_seq {
                    return Err(Refusal::Replay {
                        seq: h.seq,
                        last: self.last_seq,
                    });
                }
                if h.seq != self.last_seq + 1 {
                    return Err(Refusal::OutOfOrder {
                        seq: h.seq,
                        expected: self.last_seq + 1,
                    });
                }
            }
            Ordering::Window(w) => {
                if h.seq == 0 || self.seen.contains(&h.seq) {
                    return Err(Refusal::Replay {
                        seq: h.seq,
                        last: self.last_seq,
                    });
                }
                if h.seq + w <= self.last_seq {
                    return Err(Refusal::OutOfOrder {
                        seq: h.seq,
                        expected: self.last_seq.saturating_sub(w) + 1,
                    });
                }
            }
        }
        // The frame is authentic, fresh and in order: it consumes its
        // sequence number even if the body turns out malformed, so one bad
        // body does not wedge the stream.
        self.consume(h.seq);
        if let Some(ring) = keys
            && h.key_id == ring.current_id()
        {
            ring.note_frame();
        }
        let msg = Message::decode_body(&h.kind, body)?;
        Ok(Opened {
            key_id: h.key_id,
            seq: h.seq,
            ts_ms: h.ts_ms,
            msg,
        })
    }
}

impl Receiver {
    /// Whether `seq` is acceptable by order alone (the checks of `judge`).
    fn in_order(&self, seq: u64) -> bool {
        match self.order {
            Ordering::Strict => seq == self.last_seq + 1,
            Ordering::Window(w) => seq != 0 && !self.seen.contains(&seq) && seq + w > self.last_seq,
        }
    }

    fn consume(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
        if let Ordering::Window(w) = self.order {
            self.seen.insert(seq);
            let floor = self.last_seq.saturating_sub(w);
            self.seen = self.seen.split_off(&floor);
        }
    }
}

/// Which kinds may travel where. Handshake kinds only before keys exist.
fn kind_allowed(kind: &str, channel: Channel, from: Direction, handshake: bool) -> bool {
    use Direction::*;
    let ok_dir = match kind {
        "hello" | "prove" => handshake && from == AdapterToHost,
        "challenge" | "welcome" => handshake && from == HostToAdapter,
        "refused" | "bye" => true,
        "command" | "commands" | "rekey" => !handshake && from == HostToAdapter,
        "reply" | "replies" | "event" | "heartbeat" => !handshake && from == AdapterToHost,
        _ => false,
    };
    let ok_channel = match channel {
        Channel::Heartbeat => kind == "heartbeat",
        Channel::Bulk => kind == "reply",
        Channel::Control => kind != "heartbeat",
    };
    ok_dir && ok_channel
}

/// The example frames of docs/protocol.md: session key `00 01 .. 1f`, key
/// id 1, timestamp 1 700 000 000 000 ms. Other-language adapters check their
/// encoder and HMAC against these.
pub fn test_vectors() -> Vec<(&'static str, Vec<u8>)> {
    use crate::msg::{Command, CommandBody, Heartbeat, Reply};
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let ts = 1_700_000_000_000;
    let cmd = Message::Command(Command {
        id: 7,
        body: CommandBody::Verify {
            tid: 3,
            ids: vec!["obj-1".into()],
        },
    });
    let reply = Message::Reply(Reply::ok(7, serde_json::json!({"hash": "ab"})));
    let hb = Message::Heartbeat(Heartbeat {
        last_pump_ms: ts - 40,
        pump_age_ms: 40,
        busy: None,
        queue_depth: 0,
        frozen: false,
    });
    vec![
        (
            "command (host to adapter, control, seq 3)",
            seal_raw(1, Some(&key), 0, 0, 3, ts, "command", &cmd.encode_body()),
        ),
        (
            "reply (adapter to host, control, seq 3)",
            seal_raw(1, Some(&key), 0, 1, 3, ts, "reply", &reply.encode_body()),
        ),
        (
            "heartbeat (adapter to host, heartbeat stream, seq 1)",
            seal_raw(1, Some(&key), 1, 1, 1, ts, "heartbeat", &hb.encode_body()),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::RotationPolicy;
    use crate::msg::{Heartbeat, Reply};

    const NOW: u64 = 1_700_000_000_000;

    fn ring() -> KeyRing {
        KeyRing::new(1, [5; 32], NOW, RotationPolicy::default())
    }

    fn reply(id: u64) -> Message {
        Message::Reply(Reply::ok(id, serde_json::json!({"hash": "ab"})))
    }

    fn body(rec: &[u8]) -> &[u8] {
        &rec[4..]
    }

    fn pair() -> (Sender, Receiver, KeyRing, KeyRing) {
        (
            Sender::new(Channel::Control, Direction::AdapterToHost),
            Receiver::new(Channel::Control, Direction::AdapterToHost),
            ring(),
            ring(),
        )
    }

    #[test]
    fn honest_frames_open_in_order() {
        let (mut tx, mut rx, mut a, mut h) = pair();
        for id in 1..=3 {
            let rec = tx.seal(Some(&mut a), NOW, &reply(id));
            assert_eq!(
                u32::from_be_bytes(rec[..4].try_into().unwrap()) as usize,
                rec.len() - 4
            );
            let o = rx.open(body(&rec), Some(&mut h), NOW + 10).unwrap();
            assert_eq!((o.seq, o.msg), (id, reply(id)));
        }
        assert_eq!(rx.counts().total(), 0);
    }

    #[test]
    fn every_refusal_has_its_code_and_counter_and_the_stream_keeps_working() {
        let (mut tx, mut rx, mut a, mut h) = pair();
        let first = tx.seal(Some(&mut a), NOW, &reply(1));
        rx.open(body(&first), Some(&mut h), NOW).unwrap();

        let expect = |rx: &mut Receiver, h: &mut KeyRing, rec: &[u8], now: u64, code: &str| {
            let err = rx.open(rec, Some(h), now).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert!(
                err.to_string().starts_with(code),
                "message names the rule: {err}"
            );
        };
        // replay
        expect(&mut rx, &mut h, body(&first), NOW, "replay");
        // stale / future (correctly signed, not the next seq: see
        // `late_frame_uses_up_its_seq` for the next one)
        let stale = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            5,
            NOW - 5_001,
            "reply",
            &reply(2).encode_body(),
        );
        expect(&mut rx, &mut h, body(&stale), NOW, "stale");
        let fut = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            5,
            NOW + 1_001,
            "reply",
            &reply(2).encode_body(),
        );
        expect(&mut rx, &mut h, body(&fut), NOW, "future");
        // out of order: seq 3 before 2
        let third = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            3,
            NOW,
            "reply",
            &reply(3).encode_body(),
        );
        expect(&mut rx, &mut h, body(&third), NOW, "out-of-order");
        // bad tag: flip a bit of the body
        let mut forged = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            2,
            NOW,
            "reply",
            &reply(2).encode_body(),
        );
        let n = forged.len();
        forged[n - 40] ^= 1;
        expect(&mut rx, &mut h, body(&forged), NOW, "bad-tag");
        let wrong_key = seal_raw(
            1,
            Some(&[6; 32]),
            0,
            1,
            2,
            NOW,
            "reply",
            &reply(2).encode_body(),
        );
        expect(&mut rx, &mut h, body(&wrong_key), NOW, "bad-tag");
        let unknown = seal_raw(
            9,
            Some(&[5; 32]),
            0,
            1,
            2,
            NOW,
            "reply",
            &reply(2).encode_body(),
        );
        expect(&mut rx, &mut h, body(&unknown), NOW, "unknown-key");
        // reflected (direction) and misrouted (heartbeat on control)
        let reflected = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            0,
            2,
            NOW,
            "reply",
            &reply(2).encode_body(),
        );
        expect(&mut rx, &mut h, body(&reflected), NOW, "misrouted");
        let hb = Message::Heartbeat(Heartbeat {
            last_pump_ms: NOW,
            pump_age_ms: 0,
            busy: None,
            queue_depth: 0,
            frozen: false,
        });
        let hb_rec = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            2,
            NOW,
            "heartbeat",
            &hb.encode_body(),
        );
        expect(&mut rx, &mut h, body(&hb_rec), NOW, "misrouted");
        // deep nesting inside a correctly signed body
        let mut deep = vec![0x81u8; 40];
        deep.push(0);
        let deep_rec = seal_raw(1, Some(&[5; 32]), 0, 1, 2, NOW, "reply", &deep);
        expect(&mut rx, &mut h, body(&deep_rec), NOW, "too-deep");
        // garbage
        expect(
            &mut rx,
            &mut h,
            &[0xde, 0xad, 0xbe, 0xef],
            NOW,
            "undecodable",
        );
        expect(&mut rx, &mut h, &[0xff; 64], NOW, "undecodable");
        // oversize, both by the length prefix and by the record
        assert_eq!(rx.check_len((1 << 20) + 1).unwrap_err().code(), "oversize");
        expect(&mut rx, &mut h, &vec![0u8; (1 << 20) + 1], NOW, "oversize");

        // The honest sender's next frame (seq 2) is still accepted.
        let next = tx.seal(Some(&mut a), NOW, &reply(2));
        assert_eq!(rx.open(body(&next), Some(&mut h), NOW).unwrap().seq, 2);
        // ...and now the held-back seq 3 is in order.
        assert_eq!(rx.open(body(&third), Some(&mut h), NOW).unwrap().seq, 3);

        let c = rx.counts();
        for (code, n) in [
            ("replay", 1),
            ("stale", 1),
            ("future", 1),
            ("out-of-order", 1),
            ("bad-tag", 2),
            ("unknown-key", 1),
            ("misrouted", 2),
            ("too-deep", 1),
            ("undecodable", 2),
            ("oversize", 2),
        ] {
            assert_eq!(c.get(code), n, "{code}");
        }
        assert_eq!(rx.accepted(), 3);
    }

    #[test]
    fn late_frame_uses_up_its_seq() {
        // The honest sender's seq 1 arrives too old and seq 2 from the
        // future (a clock that jumped): both refused, and seq 3 on time is
        // accepted instead of the strict stream refusing everything after.
        let (_, mut rx, _, mut h) = pair();
        let stale = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            1,
            NOW - 5_001,
            "reply",
            &reply(1).encode_body(),
        );
        assert_eq!(
            rx.open(body(&stale), Some(&mut h), NOW).unwrap_err().code(),
            "stale"
        );
        let fut = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            2,
            NOW + 1_001,
            "reply",
            &reply(2).encode_body(),
        );
        assert_eq!(
            rx.open(body(&fut), Some(&mut h), NOW).unwrap_err().code(),
            "future"
        );
        let on_time = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            3,
            NOW,
            "reply",
            &reply(3).encode_body(),
        );
        assert_eq!(rx.open(body(&on_time), Some(&mut h), NOW).unwrap().seq, 3);
        // ...and the late frame can never be accepted later either.
        assert_eq!(
            rx.open(body(&stale), Some(&mut h), NOW - 5_001)
                .unwrap_err()
                .code(),
            "replay"
        );
    }

    #[test]
    fn signed_but_malformed_body_consumes_its_seq() {
        let (_, mut rx, _, mut h) = pair();
        let bad = seal_raw(1, Some(&[5; 32]), 0, 1, 1, NOW, "reply", &[0xa0]);
        assert_eq!(
            rx.open(body(&bad), Some(&mut h), NOW).unwrap_err().code(),
            "bad-body"
        );
        let good = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            2,
            NOW,
            "reply",
            &reply(2).encode_body(),
        );
        rx.open(body(&good), Some(&mut h), NOW).unwrap();
        let unknown = seal_raw(1, Some(&[5; 32]), 0, 1, 3, NOW, "teleport", &[0xa0]);
        assert_eq!(
            rx.open(body(&unknown), Some(&mut h), NOW)
                .unwrap_err()
                .code(),
            "unknown-kind"
        );
    }

    #[test]
    fn rotation_keeps_in_flight_frames_for_the_overlap_only() {
        let (mut tx, mut rx, mut a, mut h) = pair();
        let old = tx.seal(Some(&mut a), NOW, &reply(1));
        h.install(2, [6; 32], NOW);
        a.install(2, [6; 32], NOW);
        let new = tx.seal(Some(&mut a), NOW, &reply(2));
        // The frame sealed before the switch still opens.
        rx.open(body(&old), Some(&mut h), NOW + 100).unwrap();
        rx.open(body(&new), Some(&mut h), NOW + 100).unwrap();
        let late_old = seal_raw(
            1,
            Some(&[5; 32]),
            0,
            1,
            3,
            NOW + 5_001,
            "reply",
            &reply(3).encode_body(),
        );
        let refused = rx
            .open(body(&late_old), Some(&mut h), NOW + 5_001)
            .unwrap_err();
        assert_eq!(refused.code(), "unknown-key");
        // It could not be authenticated, so it did not use up seq 3: the
        // strict stream has a gap that no later frame can fill.
        for seq in 4..4 + u64::from(WEDGED_AFTER) {
            assert!(!rx.is_wedged());
            let later = seal_raw(
                2,
                Some(&[6; 32]),
                0,
                1,
                seq,
                NOW + 5_001,
                "reply",
                &reply(seq).encode_body(),
            );
            let refused = rx
                .open(body(&later), Some(&mut h), NOW + 5_001)
                .unwrap_err();
            assert_eq!(refused.code(), "out-of-order");
        }
        assert!(rx.is_wedged(), "the session must end");
    }

    #[test]
    fn one_early_frame_at_a_time_does_not_wedge_a_strict_stream() {
        let (mut tx, mut rx, mut a, mut h) = pair();
        for _ in 0..WEDGED_AFTER {
            let early = seal_raw(
                1,
                Some(&[5; 32]),
                0,
                1,
                tx.next_seq() + 1,
                NOW,
                "reply",
                &reply(9).encode_body(),
            );
            let refused = rx.open(body(&early), Some(&mut h), NOW).unwrap_err();
            assert_eq!(refused.code(), "out-of-order");
            // The expected frame still arrives and is taken: no gap.
            let honest = tx.seal(Some(&mut a), NOW, &reply(1));
            rx.open(body(&honest), Some(&mut h), NOW).unwrap();
        }
        assert!(!rx.is_wedged());
    }

    #[test]
    fn handshake_phase_takes_only_unsigned_handshake_kinds() {
        let mut rx = Receiver::new(Channel::Control, Direction::AdapterToHost);
        let hello = Message::Hello(crate::msg::Hello {
            protocol: "vibesync/1".into(),
            engine: "e".into(),
            kind: "reference".into(),
            nonce: crate::B32([1; 32]),
            batch: false,
        });
        let mut tx = Sender::new(Channel::Control, Direction::AdapterToHost);
        let rec = tx.seal(None, NOW, &hello);
        assert_eq!(rx.open(body(&rec), None, NOW).unwrap().msg, hello);
        let r = tx.seal(None, NOW, &reply(1));
        assert_eq!(
            rx.open(body(&r), None, NOW).unwrap_err().code(),
            "misrouted"
        );
        // Once keys exist, unsigned frames are refused.
        let mut k = ring();
        let again = tx.seal(None, NOW, &hello);
        assert_eq!(
            rx.open(body(&again), Some(&mut k), NOW).unwrap_err().code(),
            "unknown-key"
        );
    }

    #[test]
    fn bulk_channel_accepts_any_unused_seq_in_its_window() {
        let mut rx = Receiver::new(Channel::Bulk, Direction::AdapterToHost);
        let mut h = ring();
        let rec = |s: u64| {
            seal_raw(
                1,
                Some(&[5; 32]),
                2,
                1,
                s,
                NOW,
                "reply",
                &reply(s).encode_body(),
            )
        };
        for s in [3, 1, 2] {
            rx.open(body(&rec(s)), Some(&mut h), NOW).unwrap();
        }
        assert_eq!(
            rx.open(body(&rec(2)), Some(&mut h), NOW)
                .unwrap_err()
                .code(),
            "replay"
        );
    }

    #[test]
    fn command_json_and_cbor_share_one_shape() {
        let cmd = crate::msg::Command {
            id: 17,
            body: crate::msg::CommandBody::Verify {
                tid: 4,
                ids: vec!["obj-1".into()],
            },
        };
        // `id` first, then the body as declared (its tag first).
        assert_eq!(
            serde_json::to_string(&cmd).unwrap(),
            r#"{"id":17,"kind":"verify","tid":4,"ids":["obj-1"]}"#
        );
        let m = Message::Command(cmd.clone());
        assert_eq!(
            Message::decode_body("command", &m.encode_body()).unwrap(),
            m
        );
        let create = vibesync_canonical::Op::CreateObject {
            id: Some("a".into()),
            name: "A".into(),
            kind: vibesync_canonical::ObjectKind::Mesh,
            primitive: None,
            parent: None,
            transform: Some(vibesync_canonical::Transform::IDENTITY),
        };
        let apply = Message::Command(crate::msg::Command {
            id: 2,
            body: crate::msg::CommandBody::Apply {
                tid: 1,
                ops: vec![create],
            },
        });
        assert_eq!(
            Message::decode_body("command", &apply.encode_body()).unwrap(),
            apply
        );
        crate::cbor::check(&apply.encode_body(), 32).expect("definite lengths only");
        let rb = Message::Command(crate::msg::Command {
            id: 3,
            body: crate::msg::CommandBody::Rollback {
                tid: 1,
                undo_token: serde_json::json!({"before": [{"id": "a", "object": null}]}),
            },
        });
        assert_eq!(
            Message::decode_body("command", &rb.encode_body()).unwrap(),
            rb,
            "a null in an undo token stays null"
        );
        crate::cbor::check(&rb.encode_body(), 32).expect("definite lengths only");
        let r = Message::Reply(Reply::ok(
            4,
            serde_json::json!({"objects": [{"parent": null, "x": [1.5, -2, 3]}]}),
        ));
        assert_eq!(Message::decode_body("reply", &r.encode_body()).unwrap(), r);
        // Any key order reads the same (the host's own, `id` and `kind`
        // first, is read without buffering); `id` is required.
        let parse = |s: &str| serde_json::from_str::<crate::msg::Command>(s);
        for text in [
            r#"{"id":9,"kind":"commit","tid":4}"#,
            r#"{"tid":4,"kind":"commit","id":9}"#,
            r#"{"kind":"commit","id":9,"tid":4}"#,
        ] {
            let c = parse(text).unwrap();
            assert_eq!(
                (c.id, c.body),
                (9, crate::msg::CommandBody::Commit { tid: 4 })
            );
        }
        let apply =
            r#"{"id":9,"kind":"apply","tid":4,"ops":[{"op":"delete_object","args":{"id":"a"}}]}"#;
        assert!(
            matches!(parse(apply).unwrap().body, crate::msg::CommandBody::Apply { tid: 4, ref ops } if ops.len() == 1)
        );
        assert!(
            parse(r#"{"kind":"commit","tid":4}"#)
                .unwrap_err()
                .to_string()
                .contains("missing field `id`")
        );
        assert!(parse(r#"{"id":-1,"kind":"commit","tid":4}"#).is_err());
        assert!(
            parse(r#"{"id":9,"kind":"apply","tid":4}"#).is_err(),
            "apply needs its ops"
        );
        let snap = Message::Command(crate::msg::Command {
            id: 1,
            body: crate::msg::CommandBody::Snapshot,
        });
        assert_eq!(
            Message::decode_body("command", &snap.encode_body()).unwrap(),
            snap
        );
    }
}

#[cfg(test)]
mod vector_tests {
    use super::*;

    /// docs/protocol.md shows these bytes; an encoder change must update both.
    #[test]
    fn documented_vectors_are_pinned_and_open() {
        let v = test_vectors();
        assert_eq!(
            hex::encode(&v[0].1),
            "00000068a8617601616b0161630061640061730361741b0000018bcfe56800617967636f6d6d616e646162a462696407646b696e646676657269667963746964036369647381656f626a2d319903f39525017519e2102c0e06245a846be57617242cde911a2cc3f316a665c2"
        );
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let now = 1_700_000_000_000;
        let mut ring = KeyRing::new(1, key, now, crate::keys::RotationPolicy::default());
        let mut to_adapter = Receiver::new(Channel::Control, Direction::HostToAdapter);
        to_adapter.last_seq = 2;
        assert_eq!(
            to_adapter
                .open(&v[0].1[4..], Some(&mut ring), now)
                .unwrap()
                .msg
                .kind(),
            "command"
        );
        let mut to_host = Receiver::new(Channel::Control, Direction::AdapterToHost);
        to_host.last_seq = 2;
        assert_eq!(
            to_host
                .open(&v[1].1[4..], Some(&mut ring), now)
                .unwrap()
                .msg
                .kind(),
            "reply"
        );
        let mut hb = Receiver::new(Channel::Heartbeat, Direction::AdapterToHost);
        assert_eq!(
            hb.open(&v[2].1[4..], Some(&mut ring), now)
                .unwrap()
                .msg
                .kind(),
            "heartbeat"
        );
    }
}
