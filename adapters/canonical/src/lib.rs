//! The canonical scene: the data every part of VibeSync agrees on.
//!
//! The host keeps the authoritative state of every tracked object in one
//! frame, glTF's: right-handed, +Y up, metres, rotations as unit quaternions
//! `(x, y, z, w)`, transforms local to the parent. Each engine adapter
//! converts to and from its own convention ([`frames`]), and every party
//! computes the same [`hash`] over that state, so "did the engine do what we
//! asked?" is one comparison of 32 bytes.
//!
//! This crate is plain data and pure functions: no I/O, no clocks. The host,
//! the adapter SDK, the reference engine and the simulator all link it; the
//! Python and C# adapters re-implement [`hash`] and [`frames`] and check
//! themselves against `docs/test-vectors/canonical-hash.json`.

pub mod frames;
pub mod hash;
pub mod model;
pub mod ops;

pub use hash::{Quantum, StateHash, object_set_hash, scene_hash};
pub use model::{Material, ObjectId, ObjectKind, SceneObject, Transform};
pub use ops::{Op, OpError, Scene};
