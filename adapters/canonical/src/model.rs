//! Tracked objects in the canonical frame.

use serde::{Deserialize, Serialize};

/// A stable VibeSync object id (survives renames, reparenting, save/reload).
///
/// Ids are chosen by the host (`obj-<n>`) or by the author of a
/// `create_object`; they are compared as raw UTF-8 bytes.
pub type ObjectId = String;

/// What an object is. Mesh data itself is not tracked, only its existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Mesh,
    Empty,
    Camera,
    Light,
}

impl ObjectKind {
    /// The name used on the wire and in the canonical hash.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Mesh => "mesh",
            ObjectKind::Empty => "empty",
            ObjectKind::Camera => "camera",
            ObjectKind::Light => "light",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mesh" => ObjectKind::Mesh,
            "empty" => ObjectKind::Empty,
            "camera" => ObjectKind::Camera,
            "light" => ObjectKind::Light,
            _ => return None,
        })
    }
}

/// A local transform in the glTF frame (RH, +Y up, metres).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    pub translation: [f64; 3],
    /// Unit quaternion `(x, y, z, w)`.
    pub rotation: [f64; 4],
    pub scale: [f64; 3],
}

impl Transform {
    pub const IDENTITY: Transform = Transform {
        translation: [0.0; 3],
        rotation: [0.0, 0.0, 0.0, 1.0],
        scale: [1.0; 3],
    };
}

impl Default for Transform {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// Material properties (linear colour space), as a Principled BSDF or a
/// Unity Lit shader sees them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Material {
    /// Linear RGBA in [0, 1].
    pub base_color: [f64; 4],
    pub roughness: f64,
    pub metallic: f64,
    /// Linear RGB.
    pub emission: [f64; 3],
    pub emission_strength: f64,
}

impl Default for Material {
    fn default() -> Self {
        Material {
            base_color: [0.8, 0.8, 0.8, 1.0],
            roughness: 0.5,
            metallic: 0.0,
            emission: [0.0; 3],
            emission_strength: 0.0,
        }
    }
}

/// The canonical state of one tracked object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneObject {
    pub id: ObjectId,
    pub name: String,
    pub kind: ObjectKind,
    #[serde(default)]
    pub parent: Option<ObjectId>,
    #[serde(default)]
    pub transform: Transform,
    /// `None` until a `set_material` gives the object a managed material.
    #[serde(default)]
    pub material: Option<Material>,
}
