//! Sans-IO wire protocol of VibeSync (`vibesync/1`): CBOR frames sealed with
//! HMAC-SHA256, the receiver that refuses stale, replayed, reordered,
//! oversize, too-deep or forged frames, the handshake, key rotation, the
//! messages, the heartbeat deadman and the pairing file format.
//!
//! Nothing here opens a socket, spawns a thread or reads a clock: time is a
//! `u64` of unix milliseconds passed in, randomness is bytes passed in. The
//! host (`vibesync-link`) and the adapter SDK move bytes and time into these
//! state machines. `docs/protocol.md` is the normative description.

pub mod batch;
pub mod cbor;
pub mod frame;
pub mod handshake;
pub mod health;
pub mod keys;
pub mod msg;
pub mod pairing;

/// ALPN and protocol name.
pub const PROTOCOL: &str = "vibesync/1";

/// A 32-byte symmetric key (session key or bootstrap secret).
pub type Key = [u8; 32];

pub use batch::{BATCH_BODY_BUDGET, Budget, MAX_BATCH, Packed, pack_commands, pack_replies};
pub use frame::{
    Channel, Direction, Limits, Opened, REFUSAL_CODES, Receiver, Refusal, RefusalCounts, Sender,
    decode, seal_raw,
};
pub use handshake::{AdapterHandshake, HandshakeError, HostHandshake};
pub use health::{DEADMAN_MS, Health, Observed, TripReason};
pub use keys::{KeyRing, RotationPolicy};
pub use msg::{
    B32, Bye, Challenge, Command, CommandBody, Event, Heartbeat, Hello, Message, Prove, Refused,
    Rekey, Reply, ReplyError, Welcome,
};
pub use pairing::{Pairing, PairingError};
