//! The policy view of an intent: what the policy pipeline is shown of each
//! op, built from the canonical scene and the lock table this crate's
//! [`Sequencer`](crate::Sequencer) owns.
//!
//! The WIT contract evaluates op by op: each op becomes one
//! [`t::Intent`] (its arguments as canonical CBOR and as flat leaves) and one
//! [`t::Context`] (the objects the op names, as they are before the op: a
//! later op of the same transaction sees what earlier ops create). This is
//! the one place that conversion lives; the host's intake and the
//! deterministic simulator both call it, so what the simulator proves about
//! the policies is what the host shows them.

use std::collections::BTreeMap;

use serde_json::Value;
use vibesync_canonical::{Op, Scene, SceneObject};
use vibesync_policy_types as t;
use vibesync_wal::LockEntry;

/// One op as its author wrote it: the op name and its (unchecked) arguments.
#[derive(Clone, Copy, Debug)]
pub struct OpRef<'a> {
    pub op: &'a str,
    pub args: &'a Value,
}

/// What is the same for every op of one intent.
#[derive(Clone, Copy, Debug)]
pub struct IntentMeta<'a> {
    /// The tid the intent will get if it is submitted now.
    pub tid: u64,
    pub source: t::Source,
    pub rationale: &'a str,
    /// The scene version the author last read.
    pub scene_version_read: u64,
    /// The engines the intent targets.
    pub engines: &'a [String],
}

/// What the world looks like to the policies right now.
#[derive(Clone, Copy, Debug)]
pub struct World<'a> {
    /// The committed canonical scene.
    pub scene: &'a Scene,
    pub scene_version: u64,
    /// Object locks by object id.
    pub locks: &'a BTreeMap<String, LockEntry>,
    /// The project root policies are told about (path rules).
    pub project_root: &'a str,
}

/// The policy view of every op of one intent, index for index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicyInput {
    pub intents: Vec<t::Intent>,
    pub contexts: Vec<t::Context>,
}

/// Ids an op's arguments name: `id`, `parent` and every string of `ids[]`.
pub fn named_ids(args: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for key in ["id", "parent"] {
        if let Some(id) = args.get(key).and_then(Value::as_str) {
            ids.push(id.to_owned());
        }
    }
    if let Some(list) = args.get("ids").and_then(Value::as_array) {
        ids.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    ids.dedup();
    ids
}

/// A canonical object (and its lock, if any) as a policy sees it.
pub fn object_state(o: &SceneObject, lock: Option<&LockEntry>) -> t::ObjectState {
    t::ObjectState {
        id: o.id.clone(),
        name: o.name.clone(),
        kind: o.kind.as_str().to_owned(),
        parent: o.parent.clone(),
        transform: t::Transform {
            translation: o.transform.translation,
            rotation: o.transform.rotation,
            scale: o.transform.scale,
        },
        material: o.material.map(|m| t::Material {
            base_color: m.base_color,
            roughness: m.roughness,
            metallic: m.metallic,
            emission: m.emission,
            emission_strength: m.emission_strength,
        }),
        lock: lock.map(|l| t::ObjectLock {
            holder: l.holder.clone(),
            human: l.human,
        }),
    }
}

/// Build the policy view of every op.
///
/// Ops that parse are applied to a scratch copy of the scene one after the
/// other, so op *n* sees what ops *0..n* made (an op that does not parse or
/// apply changes nothing for the ops after it).
pub fn policy_input(ops: &[OpRef<'_>], meta: IntentMeta<'_>, world: World<'_>) -> PolicyInput {
    let count = ops.len() as u32;
    let mut scratch: Option<Scene> = None;
    let mut out = PolicyInput {
        intents: Vec::with_capacity(ops.len()),
        contexts: Vec::with_capacity(ops.len()),
    };
    for (i, spec) in ops.iter().enumerate() {
        let current = scratch.as_ref().unwrap_or(world.scene);
        let ids = named_ids(spec.args);
        let (objects, missing): (Vec<_>, Vec<_>) =
            ids.iter().partition(|id| current.get(id).is_some());
        out.contexts.push(t::Context {
            objects: objects
                .iter()
                .filter_map(|id| current.get(id))
                .map(|o| object_state(o, world.locks.get(&o.id)))
                .collect(),
            missing: missing.into_iter().cloned().collect(),
            scene_object_count: current.objects.len() as u32,
            scene_version: world.scene_version,
            project_root: world.project_root.to_owned(),
        });
        out.intents.push(t::Intent::for_op(
            meta.tid,
            meta.source,
            spec.op,
            spec.args,
            i as u32,
            count,
            meta.engines.to_vec(),
            ids,
            meta.rationale.to_owned(),
            meta.scene_version_read,
        ));
        // Only multi-op transactions need the scratch scene.
        if (i as u32) + 1 < count
            && let Ok(op) = Op::parse(spec.op, spec.args.clone())
        {
            let next = scratch.get_or_insert_with(|| world.scene.clone());
            let _ = next.apply(&op);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use vibesync_canonical::Quantum;

    #[test]
    fn later_ops_see_what_earlier_ops_create_and_locks_are_shown() {
        let mut scene = Scene::new(Quantum::default());
        scene
            .apply(
                &Op::parse(
                    "create_object",
                    json!({"id": "floor", "name": "Floor", "kind": "mesh"}),
                )
                .expect("op"),
            )
            .expect("apply");
        let locks: BTreeMap<String, LockEntry> = [(
            "floor".to_owned(),
            LockEntry {
                object: "floor".into(),
                holder: "alice".into(),
                human: true,
            },
        )]
        .into();
        let create = json!({"id": "table", "name": "Table", "kind": "mesh", "parent": "floor"});
        let paint = json!({"id": "table", "roughness": 0.3});
        let ops = [
            OpRef {
                op: "create_object",
                args: &create,
            },
            OpRef {
                op: "set_material",
                args: &paint,
            },
        ];
        let engines = ["blender-1".to_owned()];
        let input = policy_input(
            &ops,
            IntentMeta {
                tid: 9,
                source: t::Source::Agent,
                rationale: "place the kitchen table on the floor",
                scene_version_read: 4,
                engines: &engines,
            },
            World {
                scene: &scene,
                scene_version: 4,
                locks: &locks,
                project_root: "/p",
            },
        );
        assert_eq!(input.intents.len(), 2);
        assert_eq!(input.contexts[0].missing, ["table"], "op 0: no table yet");
        assert_eq!(input.contexts[0].objects.len(), 1, "the parent is shown");
        let floor = &input.contexts[0].objects[0];
        assert_eq!(floor.id, "floor");
        assert_eq!(
            floor.lock,
            Some(t::ObjectLock {
                holder: "alice".into(),
                human: true
            })
        );
        assert!(input.contexts[1].missing.is_empty(), "op 1 sees the table");
        assert_eq!(input.contexts[1].objects[0].name, "Table");
        assert_eq!(input.contexts[1].scene_object_count, 2);
        assert_eq!(input.contexts[0].scene_object_count, 1);
        assert_eq!(input.intents[1].op_index, 1);
        assert_eq!(input.intents[1].op_count, 2);
        assert_eq!(input.intents[1].tid, 9);
        assert_eq!(input.intents[1].objects, ["table"]);
        // The committed scene is not touched.
        assert!(scene.get("table").is_none());
    }

    #[test]
    fn named_ids_reads_id_parent_and_ids() {
        assert_eq!(
            named_ids(&json!({"id": "a", "parent": "b", "ids": ["c", 3, "d"]})),
            ["a", "b", "c", "d"]
        );
        assert!(named_ids(&json!({"name": "x"})).is_empty());
    }
}
