//! The canonical state hash.
//!
//! SHA-256 over a byte encoding of tracked objects, with every float
//! quantised to an integer number of steps (1e-5 by default) so that a
//! conversion round trip through an engine's float32 storage does not read
//! as a mismatch. The host snaps every value it stores to the same grid
//! ([`snap`]), which keeps honest engine read-backs far from a rounding
//! boundary.
//!
//! The encoding is specified byte for byte in `docs/canonical-state.md`;
//! adapters in other languages check themselves against
//! `docs/test-vectors/canonical-hash.json`. Summary:
//!
//! ```text
//! header  = "vibesync/state/v1" || u32be(steps_per_unit) || u32be(entry_count)
//! present = 0x01 || str(id) || str(name) || str(kind) || str(parent or "")
//!           || i64be x 10 (translation xyz, rotation xyzw, scale xyz)
//!           || 0x00                      (no material)
//!            | 0x01 || i64be x 10        (base_color rgba, roughness,
//!                                         metallic, emission rgb, strength)
//! absent  = 0x00 || str(id)
//! str(s)  = u32be(len(utf8(s))) || utf8(s)
//! q(v)    = round_half_away_from_zero(v * steps_per_unit), saturating to
//!           i64; NaN -> i64::MIN, +inf -> i64::MAX, -inf -> i64::MIN + 1
//! rotation: after quantising, negate all four if w < 0, or if w == 0 and
//!           the first non-zero of x, y, z is negative (q and -q are the
//!           same rotation)
//! ```
//! Entries are sorted by id (bytewise) and ids are unique.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Material, ObjectId, SceneObject, Transform};

const DOMAIN: &[u8] = b"vibesync/state/v1";

/// Quantisation grid: integer steps per unit (metre, colour unit, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantum(pub u32);

impl Default for Quantum {
    /// 1e-5: 100 000 steps per unit.
    fn default() -> Self {
        Quantum(100_000)
    }
}

impl Quantum {
    /// Quantise one value (see the module docs for the exact rule).
    pub fn q(self, v: f64) -> i64 {
        if v.is_nan() {
            return i64::MIN;
        }
        if v == f64::INFINITY {
            return i64::MAX;
        }
        if v == f64::NEG_INFINITY {
            return i64::MIN + 1;
        }
        // `f64::round` rounds half away from zero; `as` saturates.
        (v * self.0 as f64).round() as i64
    }

    /// Snap a value to the grid (what the host stores).
    pub fn snap(self, v: f64) -> f64 {
        if !v.is_finite() {
            return v;
        }
        (v * self.0 as f64).round() / self.0 as f64
    }
}

/// A canonical state hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StateHash(pub [u8; 32]);

impl StateHash {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        Some(StateHash(bytes.try_into().ok()?))
    }
}

impl fmt::Display for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for StateHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateHash({})", &self.to_hex()[..16])
    }
}

impl Serialize for StateHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for StateHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StateHash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Hash of a whole scene: every object, sorted by id.
pub fn scene_hash<'a>(
    objects: impl IntoIterator<Item = &'a SceneObject>,
    quantum: Quantum,
) -> StateHash {
    let sorted: BTreeMap<&str, &SceneObject> =
        objects.into_iter().map(|o| (o.id.as_str(), o)).collect();
    let mut enc = Encoder::new(quantum, sorted.len());
    for obj in sorted.values() {
        enc.present(obj);
    }
    enc.finish()
}

/// Hash of a set of ids: each one present (with its state) or absent.
///
/// This is what verification compares after a transaction: the expected
/// state of exactly the objects it touched, deletions included.
pub fn object_set_hash<'a, I, F>(ids: I, lookup: F, quantum: Quantum) -> StateHash
where
    I: IntoIterator<Item = &'a ObjectId>,
    F: Fn(&str) -> Option<&'a SceneObject>,
{
    let sorted: std::collections::BTreeSet<&str> = ids.into_iter().map(String::as_str).collect();
    let mut enc = Encoder::new(quantum, sorted.len());
    for id in sorted {
        match lookup(id) {
            Some(obj) => enc.present(obj),
            None => enc.absent(id),
        }
    }
    enc.finish()
}

/// Snap every float of an object to the grid, and normalise its rotation
/// first. The host applies this to everything it stores.
pub fn snap_object(obj: &mut SceneObject, quantum: Quantum) {
    snap_transform(&mut obj.transform, quantum);
    if let Some(m) = obj.material.as_mut() {
        snap_material(m, quantum);
    }
}

/// Snap a transform to the grid; the rotation ends up a unit quaternion
/// up to the grid.
///
/// Idempotent: a rotation whose snapped components already have a norm
/// within one grid step of 1 is kept as snapped. Dividing such a rotation
/// by its norm again (as this did before) moves a component to the next
/// grid point (e.g. `w` 0.74914 -> 0.74915 for `[0.62628, 0.21575, 0,
/// 0.74914]`), so an engine resynced with the host's snapped scene, which
/// snaps what it is given, reported a different hash than the host's and
/// could never be reconciled. A normalised quaternion snapped to the grid
/// is off unit length by at most one step (each of its four components by
/// at most half a step), which is the bound used here.
pub fn snap_transform(t: &mut Transform, quantum: Quantum) {
    let norm = |r: &[f64; 4]| (r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + r[3] * r[3]).sqrt();
    let step = 1.0 / quantum.0 as f64;
    let snapped = t.rotation.map(|c| quantum.snap(c));
    let n = norm(&t.rotation);
    if (norm(&snapped) - 1.0).abs() > step * (1.0 + 1e-9) && n.is_finite() && n > 0.0 {
        t.rotation = t.rotation.map(|c| c / n);
    }
    for v in t
        .translation
        .iter_mut()
        .chain(t.rotation.iter_mut())
        .chain(t.scale.iter_mut())
    {
        *v = quantum.snap(*v);
    }
}

pub fn snap_material(m: &mut Material, quantum: Quantum) {
    for v in m
        .base_color
        .iter_mut()
        .chain([&mut m.roughness, &mut m.metallic])
        .chain(m.emission.iter_mut())
        .chain([&mut m.emission_strength])
    {
        *v = quantum.snap(*v);
    }
}

/// The byte encoding, exposed so tests and tools can show what was hashed.
pub struct Encoder {
    quantum: Quantum,
    buf: Vec<u8>,
}

impl Encoder {
    pub fn new(quantum: Quantum, entries: usize) -> Self {
        let mut buf = Vec::with_capacity(64 + entries * 160);
        buf.extend_from_slice(DOMAIN);
        buf.extend_from_slice(&quantum.0.to_be_bytes());
        buf.extend_from_slice(&(entries as u32).to_be_bytes());
        Encoder { quantum, buf }
    }

    fn str(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }

    fn ints(&mut self, vs: &[f64]) {
        for v in vs {
            self.buf
                .extend_from_slice(&self.quantum.q(*v).to_be_bytes());
        }
    }

    pub fn present(&mut self, o: &SceneObject) {
        self.buf.push(1);
        self.str(&o.id);
        self.str(&o.name);
        self.str(o.kind.as_str());
        self.str(o.parent.as_deref().unwrap_or(""));
        let t = &o.transform;
        self.ints(&t.translation);
        let mut r = t.rotation.map(|c| self.quantum.q(c));
        let first_nonzero_negative = r[..3].iter().find(|c| **c != 0).is_some_and(|c| *c < 0);
        if r[3] < 0 || (r[3] == 0 && first_nonzero_negative) {
            r = r.map(i64::wrapping_neg);
        }
        for c in r {
            self.buf.extend_from_slice(&c.to_be_bytes());
        }
        self.ints(&t.scale);
        match &o.material {
            None => self.buf.push(0),
            Some(m) => {
                self.buf.push(1);
                self.ints(&m.base_color);
                self.ints(&[m.roughness, m.metallic]);
                self.ints(&m.emission);
                self.ints(&[m.emission_strength]);
            }
        }
    }

    pub fn absent(&mut self, id: &str) {
        self.buf.push(0);
        self.str(id);
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn finish(self) -> StateHash {
        StateHash(Sha256::digest(&self.buf).into())
    }
}

#[cfg(test)]
// 0.70711 in these tests is a quantised value (5 decimals), not an
// approximation of 1/sqrt(2).
#[allow(clippy::approx_constant)]
mod tests {

    #[test]
    fn snapping_twice_changes_nothing() {
        // The rotation the simulator's seed 0 committed: its snapped norm is
        // not exactly 1, and re-normalising it moved `w` one step.
        let mut t = Transform {
            translation: [-10.775, -1.509, 7.142],
            rotation: [0.62628, 0.21575, 0.0, 0.74914],
            scale: [1.0; 3],
        };
        let before = t;
        snap_transform(&mut t, Quantum::default());
        assert_eq!(t, before, "a snapped transform is a fixed point");
        // Random rotations, normalised and snapped once, stay put, and
        // hash the same.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        for _ in 0..20_000 {
            let mut t = Transform {
                translation: [next() * 50.0, next() * 50.0, next() * 50.0],
                rotation: [next(), next(), next(), next()],
                scale: [1.0 + next().abs(), 1.0, 1.0],
            };
            snap_transform(&mut t, Quantum::default());
            let once = t;
            let n = t.rotation.iter().map(|c| c * c).sum::<f64>().sqrt();
            assert!((n - 1.0).abs() <= 1e-5 * (1.0 + 1e-9), "{t:?}");
            snap_transform(&mut t, Quantum::default());
            assert_eq!(t, once);
        }
        // A rotation clearly off unit length is still normalised.
        let mut t = Transform {
            rotation: [0.0, 0.0, 2.0, 2.0],
            ..Transform::IDENTITY
        };
        snap_transform(&mut t, Quantum::default());
        assert_eq!(t.rotation, [0.0, 0.0, 0.70711, 0.70711]);
    }

    use super::*;
    use crate::model::ObjectKind;

    fn cube() -> SceneObject {
        SceneObject {
            id: "obj-1".into(),
            name: "Cube".into(),
            kind: ObjectKind::Mesh,
            parent: None,
            transform: Transform::IDENTITY,
            material: None,
        }
    }

    #[test]
    fn order_of_objects_does_not_matter() {
        let a = cube();
        let mut b = cube();
        b.id = "obj-2".into();
        let q = Quantum::default();
        assert_eq!(scene_hash([&a, &b], q), scene_hash([&b, &a], q));
    }

    #[test]
    fn negated_quaternion_hashes_the_same() {
        let mut a = cube();
        a.transform.rotation = [0.0, 0.70711, 0.0, 0.70711];
        let mut b = a.clone();
        b.transform.rotation = [0.0, -0.70711, 0.0, -0.70711];
        let q = Quantum::default();
        assert_eq!(scene_hash([&a], q), scene_hash([&b], q));
        // A half-turn (w == 0) is canonicalised on its first non-zero axis.
        a.transform.rotation = [0.0, 1.0, 0.0, 0.0];
        b.transform.rotation = [0.0, -1.0, 0.0, -0.0];
        assert_eq!(scene_hash([&a], q), scene_hash([&b], q));
    }

    #[test]
    fn sub_quantum_noise_is_ignored_but_a_step_is_not() {
        let mut a = cube();
        a.transform.translation = [1.25, 0.0, -3.0];
        let mut b = a.clone();
        b.transform.translation[0] += 3e-7; // float32 round-trip noise
        let q = Quantum::default();
        assert_eq!(scene_hash([&a], q), scene_hash([&b], q));
        b.transform.translation[0] += 1e-5;
        assert_ne!(scene_hash([&a], q), scene_hash([&b], q));
    }

    #[test]
    fn absent_and_present_differ() {
        let a = cube();
        let ids = vec![a.id.clone()];
        let q = Quantum::default();
        let present = object_set_hash(&ids, |_| Some(&a), q);
        let absent = object_set_hash(&ids, |_| None, q);
        assert_ne!(present, absent);
    }

    #[test]
    fn quantise_edge_cases() {
        let q = Quantum::default();
        assert_eq!(q.q(0.000005), 1); // half away from zero
        assert_eq!(q.q(-0.000005), -1);
        assert_eq!(q.q(-0.0), 0);
        assert_eq!(q.q(f64::NAN), i64::MIN);
        assert_eq!(q.q(1e300), i64::MAX);
    }
}
