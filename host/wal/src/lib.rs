//! The hash-chained, segmented write-ahead log.
//!
//! Every step of every transaction is a [`Record`] made durable (written and
//! `fdatasync`ed, grouped per batch) *before* the action it describes
//! happens. Records are CBOR, framed with a length and CRC32C, and chained by
//! SHA-256 so that any change to history is detected. The crate is split the
//! quinn-proto way: [`record`] and [`codec`] (the format) and [`replay`]
//! (state rebuilt from records) are pure; [`log`] is the thin file-system
//! shell (segments, group commit, verification, recovery).

pub mod codec;
pub mod log;
pub mod record;
pub mod replay;

pub use codec::{Chain, Entry, Fault, SegmentEnd};
pub use log::{
    Durable, Recovered, ReplayStart, TornTail, VerifyReport, Wal, WalError, WalOptions, read_all,
    segments, verify,
};
pub use record::{
    AckOutcome, ChainHash, Checkpoint, IntentRecord, LockEntry, Outcome, PolicyRecord, Record,
    SessionEvent, Source, Tid, UndoOutcome, UndoToken,
};
pub use replay::{OpenTxn, Replay, ReplayError, Stage};
