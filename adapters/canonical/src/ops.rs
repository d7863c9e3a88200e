//! The ops an intent can carry, and how each one changes a [`Scene`].
//!
//! An op travels as `{"op": "<name>", "args": {...}}`. Policies see the raw
//! arguments (so `validation` can report a malformed one precisely); the host
//! parses them into [`Op`] only after the pipeline allowed them. Engines
//! receive the parsed op, already converted to the engine's own frame by the
//! adapter.
//!
//! [`Scene::apply`] is the reference semantics: the host uses it to compute
//! the state it expects, the reference engine and the simulator use it to be
//! an engine.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::{self, Quantum, StateHash};
use crate::model::{Material, ObjectId, ObjectKind, SceneObject, Transform};

/// One change to the scene.
///
/// Absent optional arguments stay absent when serialized (never `null`):
/// an engine's edit re-serialized by the host must read exactly as the
/// engine wrote it, or `validation` sees a `null` vector. The one `null`
/// that means something, `reparent_object`'s `parent`, is always written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum Op {
    /// Create a tracked object. `id` is assigned by the host when absent.
    CreateObject {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<ObjectId>,
        name: String,
        kind: ObjectKind,
        /// Mesh primitive (`cube`, `uv_sphere`, `plane`, `cylinder`, `cone`,
        /// `torus`) or light type (`point`, `sun`, `spot`, `area`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        primitive: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ObjectId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transform: Option<Transform>,
    },
    DeleteObject {
        id: ObjectId,
    },
    RenameObject {
        id: ObjectId,
        name: String,
    },
    /// Reparent keeping the *local* transform (glTF node semantics).
    ReparentObject {
        id: ObjectId,
        #[serde(default)]
        parent: Option<ObjectId>,
    },
    /// Set any of translation, rotation, scale; the others are kept.
    SetTransform {
        id: ObjectId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        translation: Option<[f64; 3]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rotation: Option<[f64; 4]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scale: Option<[f64; 3]>,
    },
    /// Set any material property; an object without a managed material gets
    /// the default one first.
    SetMaterial {
        id: ObjectId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_color: Option<[f64; 4]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        roughness: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metallic: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emission: Option<[f64; 3]>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        emission_strength: Option<f64>,
    },
    /// Select (and optionally frame) objects in every engine. Not tracked
    /// state: it does not change the scene hash or version.
    Select {
        ids: Vec<ObjectId>,
        #[serde(default)]
        frame: bool,
    },
    /// Run a script in the engine (`python` for Blender, `csharp` for
    /// Unity). Only after the firewall allowed it. Not tracked state: a script
    /// that changes tracked objects shows up as a verification mismatch.
    RunScript {
        language: String,
        code: String,
    },
}

/// Why an op cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpError {
    #[error("object `{0}` does not exist; read the scene and use an existing id")]
    NoSuchObject(ObjectId),
    #[error("object `{0}` already exists; choose a new id or omit it to let the host assign one")]
    AlreadyExists(ObjectId),
    #[error("parent `{parent}` of `{id}` does not exist")]
    NoSuchParent { id: ObjectId, parent: ObjectId },
    #[error("reparenting `{id}` under `{parent}` would create a cycle")]
    Cycle { id: ObjectId, parent: ObjectId },
    #[error("`{0}` needs an id before it can be applied (the host assigns one)")]
    MissingId(&'static str),
    #[error("malformed `{op}` arguments: {reason}")]
    Malformed { op: String, reason: String },
}

impl Op {
    /// Parse `{op, args}` as sent by an author.
    pub fn parse(op: &str, args: serde_json::Value) -> Result<Op, OpError> {
        serde_json::from_value(serde_json::json!({ "op": op, "args": args })).map_err(|e| {
            OpError::Malformed {
                op: op.to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// The wire name of the op.
    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateObject { .. } => "create_object",
            Op::DeleteObject { .. } => "delete_object",
            Op::RenameObject { .. } => "rename_object",
            Op::ReparentObject { .. } => "reparent_object",
            Op::SetTransform { .. } => "set_transform",
            Op::SetMaterial { .. } => "set_material",
            Op::Select { .. } => "select",
            Op::RunScript { .. } => "run_script",
        }
    }

    /// Ids of the tracked objects whose state this op may change (what
    /// verification hashes afterwards). Children of a deleted object are
    /// deleted with it; [`Scene::touched_by`] includes them.
    pub fn target_ids(&self) -> Vec<ObjectId> {
        match self {
            Op::CreateObject { id, .. } => id.iter().cloned().collect(),
            Op::DeleteObject { id }
            | Op::RenameObject { id, .. }
            | Op::ReparentObject { id, .. }
            | Op::SetTransform { id, .. }
            | Op::SetMaterial { id, .. } => vec![id.clone()],
            Op::Select { .. } | Op::RunScript { .. } => vec![],
        }
    }

    /// Does the op change tracked state?
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Select { .. })
    }
}

/// A set of tracked objects with the reference semantics of every op.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    pub objects: BTreeMap<ObjectId, SceneObject>,
    #[serde(default)]
    pub quantum: Quantum,
}

impl Scene {
    pub fn new(quantum: Quantum) -> Self {
        Scene {
            objects: BTreeMap::new(),
            quantum,
        }
    }

    pub fn get(&self, id: &str) -> Option<&SceneObject> {
        self.objects.get(id)
    }

    /// Set `id` to `state`: that object, or absent (`None`) — how undo
    /// tokens and a transaction's computed states name an object's state.
    pub fn put(&mut self, id: ObjectId, state: Option<SceneObject>) {
        match state {
            Some(o) => {
                self.objects.insert(id, o);
            }
            None => {
                self.objects.remove(&id);
            }
        }
    }

    /// [`hash::scene_hash`] of every object. The map is already in id
    /// order, so the objects are encoded as they come (no sorted copy).
    pub fn hash(&self) -> StateHash {
        let mut enc = hash::Encoder::new(self.quantum, self.objects.len());
        for (id, obj) in &self.objects {
            debug_assert_eq!(id, &obj.id, "a scene keys each object by its id");
            enc.present(obj);
        }
        enc.finish()
    }

    /// Hash of the given ids, each present or absent.
    pub fn hash_of<'a>(&'a self, ids: impl IntoIterator<Item = &'a ObjectId>) -> StateHash {
        hash::object_set_hash(ids, |id| self.objects.get(id), self.quantum)
    }

    /// The ids whose state `op` changes, including descendants of a deleted
    /// object. Call before applying.
    pub fn touched_by(&self, op: &Op) -> Vec<ObjectId> {
        let mut ids = op.target_ids();
        if let Op::DeleteObject { id } = op {
            ids.extend(self.descendants(id));
        }
        ids
    }

    fn descendants(&self, id: &str) -> Vec<ObjectId> {
        let mut out = Vec::new();
        let mut frontier = vec![id.to_string()];
        while let Some(p) = frontier.pop() {
            for o in self
                .objects
                .values()
                .filter(|o| o.parent.as_deref() == Some(p.as_str()))
            {
                out.push(o.id.clone());
                frontier.push(o.id.clone());
            }
        }
        out
    }

    fn need(&self, id: &str) -> Result<(), OpError> {
        if self.objects.contains_key(id) {
            Ok(())
        } else {
            Err(OpError::NoSuchObject(id.to_string()))
        }
    }

    fn check_parent(&self, id: &str, parent: Option<&str>) -> Result<(), OpError> {
        let Some(p) = parent else { return Ok(()) };
        if !self.objects.contains_key(p) {
            return Err(OpError::NoSuchParent {
                id: id.into(),
                parent: p.into(),
            });
        }
        // Walk up from the new parent: meeting `id` means a cycle.
        let mut cur = Some(p);
        while let Some(c) = cur {
            if c == id {
                return Err(OpError::Cycle {
                    id: id.into(),
                    parent: p.into(),
                });
            }
            cur = self.objects.get(c).and_then(|o| o.parent.as_deref());
        }
        Ok(())
    }

    /// Apply one op. On error the scene is unchanged.
    pub fn apply(&mut self, op: &Op) -> Result<(), OpError> {
        let q = self.quantum;
        match op {
            Op::CreateObject {
                id,
                name,
                kind,
                parent,
                transform,
                ..
            } => {
                let id = id.as_ref().ok_or(OpError::MissingId("create_object"))?;
                if self.objects.contains_key(id) {
                    return Err(OpError::AlreadyExists(id.clone()));
                }
                self.check_parent(id, parent.as_deref())?;
                let mut obj = SceneObject {
                    id: id.clone(),
                    name: name.clone(),
                    kind: *kind,
                    parent: parent.clone(),
                    transform: transform.unwrap_or_default(),
                    material: None,
                };
                hash::snap_object(&mut obj, q);
                self.objects.insert(id.clone(), obj);
            }
            Op::DeleteObject { id } => {
                self.need(id)?;
                for d in self.descendants(id) {
                    self.objects.remove(&d);
                }
                self.objects.remove(id);
            }
            Op::RenameObject { id, name } => {
                self.need(id)?;
                self.objects.get_mut(id).expect("checked").name = name.clone();
            }
            Op::ReparentObject { id, parent } => {
                self.need(id)?;
                self.check_parent(id, parent.as_deref())?;
                self.objects.get_mut(id).expect("checked").parent = parent.clone();
            }
            Op::SetTransform {
                id,
                translation,
                rotation,
                scale,
            } => {
                self.need(id)?;
                let t = &mut self.objects.get_mut(id).expect("checked").transform;
                if let Some(v) = translation {
                    t.translation = *v;
                }
                if let Some(v) = rotation {
                    t.rotation = *v;
                }
                if let Some(v) = scale {
                    t.scale = *v;
                }
                hash::snap_transform(t, q);
            }
            Op::SetMaterial {
                id,
                base_color,
                roughness,
                metallic,
                emission,
                emission_strength,
            } => {
                self.need(id)?;
                let m = self
                    .objects
                    .get_mut(id)
                    .expect("checked")
                    .material
                    .get_or_insert_with(Material::default);
                if let Some(v) = base_color {
                    m.base_color = *v;
                }
                if let Some(v) = roughness {
                    m.roughness = *v;
                }
                if let Some(v) = metallic {
                    m.metallic = *v;
                }
                if let Some(v) = emission {
                    m.emission = *v;
                }
                if let Some(v) = emission_strength {
                    m.emission_strength = *v;
                }
                hash::snap_material(m, q);
            }
            Op::Select { ids, .. } => {
                for id in ids {
                    self.need(id)?;
                }
            }
            Op::RunScript { .. } => {}
        }
        Ok(())
    }

    /// Apply several ops atomically: all of them, or (on the first error)
    /// none.
    pub fn apply_all(&mut self, ops: &[Op]) -> Result<(), (usize, OpError)> {
        // One op needs no copy of the scene: `apply` checks everything
        // before it changes anything.
        if let [op] = ops {
            return self.apply(op).map_err(|e| (0, e));
        }
        let mut next = self.clone();
        for (i, op) in ops.iter().enumerate() {
            next.apply(op).map_err(|e| (i, e))?;
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(id: &str, parent: Option<&str>) -> Op {
        Op::CreateObject {
            id: Some(id.into()),
            name: id.to_uppercase(),
            kind: ObjectKind::Empty,
            primitive: None,
            parent: parent.map(Into::into),
            transform: None,
        }
    }

    #[test]
    fn the_scene_hash_is_the_shared_definition_over_its_objects() {
        let mut scene = Scene::default();
        for id in ["b", "a10", "a9", "c", "a"] {
            scene.apply(&create(id, None)).unwrap();
        }
        scene.apply(&create("d", Some("a9"))).unwrap();
        let mut shuffled: Vec<&SceneObject> = scene.objects.values().collect();
        shuffled.reverse();
        assert_eq!(scene.hash(), hash::scene_hash(shuffled, scene.quantum));
    }

    #[test]
    fn absent_arguments_serialize_as_absent_but_unparent_stays_null() {
        let edit = Op::parse(
            "set_transform",
            serde_json::json!({"id": "a", "translation": [1, 2, 3]}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&edit).unwrap(),
            serde_json::json!({"op": "set_transform", "args": {"id": "a", "translation": [1.0, 2.0, 3.0]}})
        );
        let unparent = Op::ReparentObject {
            id: "a".into(),
            parent: None,
        };
        assert_eq!(
            serde_json::to_value(&unparent).unwrap()["args"]["parent"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn parse_reports_the_field() {
        let err = Op::parse(
            "set_transform",
            serde_json::json!({"id": "a", "translation": [1, 2]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("set_transform"), "{err}");
        let ok = Op::parse(
            "set_transform",
            serde_json::json!({"id": "a", "translation": [1, 2, 3]}),
        )
        .unwrap();
        assert_eq!(ok.name(), "set_transform");
    }

    #[test]
    fn delete_takes_descendants_and_cycles_are_refused() {
        let mut s = Scene::default();
        s.apply_all(&[
            create("a", None),
            create("b", Some("a")),
            create("c", Some("b")),
        ])
        .unwrap();
        let cyc = Op::ReparentObject {
            id: "a".into(),
            parent: Some("c".into()),
        };
        assert!(matches!(s.apply(&cyc), Err(OpError::Cycle { .. })));
        let del = Op::DeleteObject { id: "a".into() };
        let mut touched = s.touched_by(&del);
        touched.sort();
        assert_eq!(touched, ["a", "b", "c"]);
        s.apply(&del).unwrap();
        assert!(s.objects.is_empty());
    }

    #[test]
    fn apply_all_is_atomic() {
        let mut s = Scene::default();
        let before = s.clone();
        let err = s
            .apply_all(&[create("a", None), create("a", None)])
            .unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(s, before);
    }

    #[test]
    fn stored_values_are_snapped() {
        let mut s = Scene::default();
        s.apply(&create("a", None)).unwrap();
        let op = Op::SetTransform {
            id: "a".into(),
            translation: Some([0.1234567, 0.0, 0.0]),
            rotation: Some([0.0, 0.0, 0.0, 2.0]),
            scale: None,
        };
        s.apply(&op).unwrap();
        let t = s.get("a").unwrap().transform;
        assert_eq!(t.translation[0], 0.12346);
        assert_eq!(t.rotation, [0.0, 0.0, 0.0, 1.0]);
    }
}
