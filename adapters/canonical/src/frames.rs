//! Conversions between the canonical glTF frame and each engine's frame.
//!
//! | frame     | handedness | up | conversion from canonical (x, y, z) |
//! |-----------|------------|----|-------------------------------------|
//! | canonical | right      | +Y | —                                   |
//! | Blender   | right      | +Z | position (x, -z, y), a proper rotation |
//! | Unity     | left       | +Y | position (-x, y, z), a mirror          |
//!
//! Both conversions are signed permutations, so positions and scales convert
//! exactly (no rounding at all). Quaternions follow the vector part: for the
//! Blender rotation the vector part maps like a position; for the Unity mirror
//! the rotation axis is a pseudo-vector, so `(x, y, z, w) -> (x, -y, -z, w)`.

use crate::model::Transform;

/// Which native convention an engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// glTF: RH, +Y up (the canonical frame itself).
    Canonical,
    /// Blender: RH, +Z up.
    BlenderZUp,
    /// Unity: LH, +Y up.
    UnityLeftHanded,
}

impl Frame {
    /// Canonical -> this frame.
    pub fn from_canonical(self, t: &Transform) -> Transform {
        let [x, y, z] = t.translation;
        let [qx, qy, qz, qw] = t.rotation;
        let [sx, sy, sz] = t.scale;
        match self {
            Frame::Canonical => *t,
            Frame::BlenderZUp => Transform {
                translation: [x, -z, y],
                rotation: [qx, -qz, qy, qw],
                scale: [sx, sz, sy],
            },
            Frame::UnityLeftHanded => Transform {
                translation: [-x, y, z],
                rotation: [qx, -qy, -qz, qw],
                scale: [sx, sy, sz],
            },
        }
    }

    /// This frame -> canonical.
    pub fn to_canonical(self, t: &Transform) -> Transform {
        let [x, y, z] = t.translation;
        let [qx, qy, qz, qw] = t.rotation;
        let [sx, sy, sz] = t.scale;
        match self {
            Frame::Canonical => *t,
            Frame::BlenderZUp => Transform {
                translation: [x, z, -y],
                rotation: [qx, qz, -qy, qw],
                scale: [sx, sz, sy],
            },
            // The mirror is its own inverse.
            Frame::UnityLeftHanded => Frame::UnityLeftHanded.from_canonical(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rotate a vector by a unit quaternion (x, y, z, w).
    fn rotate(q: [f64; 4], v: [f64; 3]) -> [f64; 3] {
        let [x, y, z, w] = q;
        let u = [x, y, z];
        let cross = |a: [f64; 3], b: [f64; 3]| {
            [
                a[1] * b[2] - a[2] * b[1],
                a[2] * b[0] - a[0] * b[2],
                a[0] * b[1] - a[1] * b[0],
            ]
        };
        let t = cross(u, v).map(|c| 2.0 * c);
        let ut = cross(u, t);
        [
            v[0] + w * t[0] + ut[0],
            v[1] + w * t[1] + ut[1],
            v[2] + w * t[2] + ut[2],
        ]
    }

    #[test]
    fn canonical_up_is_engine_up() {
        let up = Transform {
            translation: [0.0, 1.0, 0.0],
            ..Transform::IDENTITY
        };
        assert_eq!(
            Frame::BlenderZUp.from_canonical(&up).translation,
            [0.0, 0.0, 1.0]
        );
        assert_eq!(
            Frame::UnityLeftHanded.from_canonical(&up).translation,
            [0.0, 1.0, 0.0]
        );
        // glTF +Z (towards the viewer) is Blender -Y.
        let fwd = Transform {
            translation: [0.0, 0.0, 1.0],
            ..Transform::IDENTITY
        };
        assert_eq!(
            Frame::BlenderZUp.from_canonical(&fwd).translation,
            [0.0, -1.0, 0.0]
        );
    }

    fn unit_quat() -> impl Strategy<Value = [f64; 4]> {
        prop::array::uniform4(-1.0f64..1.0).prop_filter_map("non-zero", |q| {
            let n = (q.iter().map(|c| c * c).sum::<f64>()).sqrt();
            (n > 1e-3).then(|| q.map(|c| c / n))
        })
    }

    proptest! {
        #[test]
        fn round_trips_are_exact(t in prop::array::uniform3(-1e4f64..1e4), q in unit_quat(), s in prop::array::uniform3(0.01f64..100.0)) {
            let tr = Transform { translation: t, rotation: q, scale: s };
            for f in [Frame::BlenderZUp, Frame::UnityLeftHanded] {
                prop_assert_eq!(f.to_canonical(&f.from_canonical(&tr)), tr);
            }
        }

        /// Converting the rotation and then rotating a converted vector is
        /// the same as rotating and then converting: the quaternion rule is
        /// right, not just self-inverse.
        #[test]
        fn rotation_conversion_commutes_with_the_frame(q in unit_quat(), v in prop::array::uniform3(-10f64..10.0)) {
            for f in [Frame::BlenderZUp, Frame::UnityLeftHanded] {
                let rotated = Transform { translation: rotate(q, v), ..Transform::IDENTITY };
                let expected = f.from_canonical(&rotated).translation;
                let qf = f.from_canonical(&Transform { rotation: q, ..Transform::IDENTITY }).rotation;
                let vf = f.from_canonical(&Transform { translation: v, ..Transform::IDENTITY }).translation;
                let got = rotate(qf, vf);
                for i in 0..3 {
                    prop_assert!((got[i] - expected[i]).abs() < 1e-9, "{f:?}: {got:?} vs {expected:?}");
                }
            }
        }
    }
}
