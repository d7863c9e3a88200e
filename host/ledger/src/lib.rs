//! Canonical scene store, transaction state machine and sequencer core.
//!
//! [`Sequencer`] is sans-IO (quinn-proto style): events in, journal records
//! and effects out, time passed in as a number. It owns the canonical
//! [`vibesync_canonical::Scene`], the scene version, the tid counter, the
//! object locks and the transaction table. The journal it produces is the
//! `vibesync-wal` record stream; [`Sequencer::recover`] continues from a
//! [`vibesync_wal::Replay`] of that stream. [`policy_view`] turns an
//! intent and the state the sequencer owns into what the policies see.

pub mod policy_view;
pub mod sequencer;

pub use sequencer::{
    Answer, Config, Decision, Effect, Input, SCENE_HASH_BUDGET, Sequencer, SequencerError,
    StaleRule, Step, Submission, footprint, settle_provisional_answers,
};
