//! Canonical scene store, transaction state machine and sequencer core.
