//! Session keys: the current one, the previous one during its overlap, and
//! when to rotate.
//!
//! The host issues a fresh random key at the handshake and again on every
//! rotation (`rekey` message). A key rotates after `rotate_after_ms` or
//! `rotate_after_frames` frames, whichever comes first. The previous key keeps
//! verifying *received* frames for `overlap_ms`, so frames already in flight
//! when the peer switched are not lost; nothing is ever sealed with it again.
//! Key id 0 is reserved for the unsigned handshake frames.
//!
//! Each key is held with its keyed HMAC-SHA256 state (inner and outer pads
//! already absorbed), so sealing or checking a frame clones that state
//! instead of re-deriving the pads from the key: two SHA-256 blocks saved
//! per frame, same tag.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Key;

/// HMAC-SHA256 keyed with one session key.
pub type KeyedMac = Hmac<Sha256>;

/// When keys rotate and how long the old one stays valid for reception.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RotationPolicy {
    pub rotate_after_ms: u64,
    pub rotate_after_frames: u64,
    pub overlap_ms: u64,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            rotate_after_ms: 10 * 60 * 1000,
            rotate_after_frames: 1 << 20,
            overlap_ms: 5_000,
        }
    }
}

#[derive(Clone)]
struct Slot {
    id: u32,
    key: Key,
    /// `HMAC(key, ·)` before any data: cloned for every frame.
    mac: KeyedMac,
}

impl Slot {
    fn new(id: u32, key: Key) -> Slot {
        Slot {
            id,
            key,
            mac: KeyedMac::new_from_slice(&key).expect("HMAC takes any key length"),
        }
    }
}

/// The keys one side of a session holds.
#[derive(Clone)]
pub struct KeyRing {
    current: Slot,
    installed_ms: u64,
    frames: u64,
    previous: Option<(Slot, u64)>,
    policy: RotationPolicy,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("KeyRing")
            .field("current_id", &self.current.id)
            .field(
                "previous_id",
                &self.previous.as_ref().map(|(s, until)| (s.id, *until)),
            )
            .field("frames", &self.frames)
            .finish()
    }
}

impl KeyRing {
    pub fn new(key_id: u32, key: Key, now_ms: u64, policy: RotationPolicy) -> Self {
        assert_ne!(key_id, 0, "key id 0 is reserved for handshake frames");
        KeyRing {
            current: Slot::new(key_id, key),
            installed_ms: now_ms,
            frames: 0,
            previous: None,
            policy,
        }
    }

    pub fn current_id(&self) -> u32 {
        self.current.id
    }

    /// The keyed MAC state of the current key (what new frames are sealed with).
    pub(crate) fn current_mac(&self) -> &KeyedMac {
        &self.current.mac
    }

    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// The key for `key_id` if it may verify a frame received at `now_ms`.
    pub fn lookup(&self, key_id: u32, now_ms: u64) -> Option<&Key> {
        self.slot(key_id, now_ms).map(|s| &s.key)
    }

    /// Like [`lookup`](Self::lookup), the keyed MAC state instead of the key.
    pub(crate) fn lookup_mac(&self, key_id: u32, now_ms: u64) -> Option<&KeyedMac> {
        self.slot(key_id, now_ms).map(|s| &s.mac)
    }

    fn slot(&self, key_id: u32, now_ms: u64) -> Option<&Slot> {
        if key_id == self.current.id {
            return Some(&self.current);
        }
        match &self.previous {
            Some((s, until)) if s.id == key_id && now_ms <= *until => Some(s),
            _ => None,
        }
    }

    /// Counts a frame sealed or opened with the current key.
    pub fn note_frame(&mut self) {
        self.frames += 1;
    }

    /// Has the current key reached its age or frame budget?
    pub fn should_rotate(&self, now_ms: u64) -> bool {
        self.frames >= self.policy.rotate_after_frames
            || now_ms.saturating_sub(self.installed_ms) >= self.policy.rotate_after_ms
    }

    /// The id the next key must carry (ids only grow; 0 is never used).
    pub fn next_id(&self) -> u32 {
        self.current.id.checked_add(1).unwrap_or(1).max(1)
    }

    /// Makes `key` current; the old one verifies for `overlap_ms` more.
    pub fn install(&mut self, key_id: u32, key: Key, now_ms: u64) {
        let old = std::mem::replace(&mut self.current, Slot::new(key_id, key));
        self.previous = Some((old, now_ms + self.policy.overlap_ms));
        self.installed_ms = now_ms;
        self.frames = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_by_frames_and_time_with_overlap() {
        let p = RotationPolicy {
            rotate_after_ms: 1000,
            rotate_after_frames: 3,
            overlap_ms: 500,
        };
        let mut r = KeyRing::new(1, [1; 32], 0, p);
        assert!(!r.should_rotate(10));
        for _ in 0..3 {
            r.note_frame();
        }
        assert!(r.should_rotate(10));
        r.install(2, [2; 32], 100);
        assert!(!r.should_rotate(1099));
        assert!(r.should_rotate(1100));
        assert_eq!(r.lookup(1, 600), Some(&[1; 32]));
        assert_eq!(r.lookup(1, 601), None, "old key expires after the overlap");
        assert_eq!(r.lookup(2, 10_000), Some(&[2; 32]));
        assert_eq!(r.lookup(0, 0), None);
        assert_eq!(r.next_id(), 3);
    }
}
