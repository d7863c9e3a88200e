//! The reference engine's scene: tracked objects stored in the engine's
//! native convention, with the conversions, undo tokens and hashes of
//! docs/adapter-api.md. Pure: a command in, a reply out.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use vibesync_adapter_sdk::{Command, CommandBody, Reply};
use vibesync_canonical::frames::Frame;
use vibesync_canonical::{Op, OpError, Quantum, Scene, SceneObject, Transform};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Convention {
    /// Right-handed, +Z up (Blender).
    Blender,
    /// Left-handed, +Y up (Unity).
    Unity,
    /// The canonical glTF frame itself.
    Canonical,
}

impl Convention {
    fn frame(self) -> Frame {
        match self {
            Convention::Blender => Frame::BlenderZUp,
            Convention::Unity => Frame::UnityLeftHanded,
            Convention::Canonical => Frame::Canonical,
        }
    }
}

pub struct Engine {
    frame: Frame,
    /// Tracked objects, transforms in the native frame.
    native: Scene,
    frozen: Option<String>,
    /// Transactions applied here and not yet committed or rolled back: a
    /// rollback restores from the token the host sends back, and only for
    /// these (the engine keeps no copy of the token itself).
    undo: BTreeSet<u64>,
    pub wrong_hash: bool,
}

fn code(e: &OpError) -> &'static str {
    match e {
        OpError::NoSuchObject(_) | OpError::NoSuchParent { .. } => "no-such-object",
        OpError::AlreadyExists(_) => "already-exists",
        OpError::Cycle { .. } => "cycle",
        OpError::MissingId(_) | OpError::Malformed { .. } => "malformed",
    }
}

impl Engine {
    pub fn new(convention: Convention) -> Self {
        Engine {
            frame: convention.frame(),
            native: Scene::new(Quantum::default()),
            frozen: None,
            undo: BTreeSet::new(),
            wrong_hash: false,
        }
    }

    /// Canonical op -> native op.
    fn to_native(&self, op: &Op) -> Op {
        let f = self.frame;
        match op.clone() {
            Op::CreateObject {
                id,
                name,
                kind,
                primitive,
                parent,
                transform,
            } => Op::CreateObject {
                id,
                name,
                kind,
                primitive,
                parent,
                transform: transform.map(|t| f.from_canonical(&t)),
            },
            Op::SetTransform {
                id,
                translation,
                rotation,
                scale,
            } => {
                let t = f.from_canonical(&Transform {
                    translation: translation.unwrap_or([0.0; 3]),
                    rotation: rotation.unwrap_or([0.0, 0.0, 0.0, 1.0]),
                    scale: scale.unwrap_or([1.0; 3]),
                });
                Op::SetTransform {
                    id,
                    translation: translation.map(|_| t.translation),
                    rotation: rotation.map(|_| t.rotation),
                    scale: scale.map(|_| t.scale),
                }
            }
            other => other,
        }
    }

    fn canonical(&self, o: &SceneObject) -> SceneObject {
        SceneObject {
            transform: self.frame.to_canonical(&o.transform),
            ..o.clone()
        }
    }

    fn native_obj(&self, o: &SceneObject) -> SceneObject {
        SceneObject {
            transform: self.frame.from_canonical(&o.transform),
            ..o.clone()
        }
    }

    /// The tracked state as the host sees it.
    pub fn canonical_scene(&self) -> Scene {
        let mut s = Scene::new(self.native.quantum);
        s.objects = self
            .native
            .objects
            .values()
            .map(|o| (o.id.clone(), self.canonical(o)))
            .collect();
        s
    }

    /// One tracked object in the canonical frame, if it exists.
    fn canonical_of(&self, id: &str) -> Option<SceneObject> {
        self.native.get(id).map(|o| self.canonical(o))
    }

    /// The canonical scene restricted to `ids` (those that exist): what an
    /// apply or a verify reports, without converting the untouched rest.
    fn canonical_subset(&self, ids: &[String]) -> Scene {
        let mut s = Scene::new(self.native.quantum);
        s.objects = ids
            .iter()
            .filter_map(|i| self.canonical_of(i).map(|o| (i.clone(), o)))
            .collect();
        s
    }

    fn hash(&self, h: vibesync_canonical::StateHash) -> String {
        let mut hex = h.to_hex();
        if self.wrong_hash {
            let flipped = if hex.starts_with('0') { "1" } else { "0" };
            hex.replace_range(0..1, flipped);
        }
        hex
    }

    pub fn handle(&mut self, c: Command) -> Reply {
        let id = c.id;
        match c.body {
            CommandBody::Apply { tid, ops } => {
                if let Some(r) = &self.frozen {
                    return Reply::err(id, "frozen", format!("engine is frozen: {r}"));
                }
                // Only the touched objects are converted to the canonical
                // frame (before and after), not the whole scene: the
                // parent links `touched_by` follows are the same natively.
                let mut touched: Vec<String> = Vec::new();
                for op in &ops {
                    for t in self.native.touched_by(op) {
                        if !touched.contains(&t) {
                            touched.push(t);
                        }
                    }
                }
                let before: Vec<Value> = touched
                    .iter()
                    .map(|t| json!({"id": t, "object": self.canonical_of(t)}))
                    .collect();
                let native_ops: Vec<Op> = ops.iter().map(|o| self.to_native(o)).collect();
                if let Err((i, e)) = self.native.apply_all(&native_ops) {
                    return Reply::err(id, code(&e), format!("op {i} ({}): {e}", ops[i].name()));
                }
                let token = json!({"tid": tid, "before": before});
                self.undo.insert(tid);
                let h = self.canonical_subset(&touched).hash_of(touched.iter());
                Reply::ok(
                    id,
                    json!({"undo_token": token, "hash": self.hash(h), "touched": touched}),
                )
            }
            CommandBody::Verify { ids, .. } => {
                let canon = self.canonical_subset(&ids);
                let objects: Vec<&SceneObject> = ids.iter().filter_map(|i| canon.get(i)).collect();
                Reply::ok(
                    id,
                    json!({"hash": self.hash(canon.hash_of(ids.iter())), "objects": objects}),
                )
            }
            CommandBody::Rollback { tid, undo_token } => {
                // Only an apply this engine still remembers can be undone
                // from its token: a resync (or a restart) since then
                // replaced the scene, and the token's `before` objects may
                // hold what a later-rolled-back apply left behind. The host
                // resyncs on `undo-token-lost`.
                if !self.undo.contains(&tid) {
                    return Reply::err(
                        id,
                        "undo-token-lost",
                        format!(
                            "no undo record for tid {tid} here (the engine was resynced or restarted since it applied); resync this engine from the host"
                        ),
                    );
                }
                let Some(before) = undo_token.get("before").and_then(Value::as_array) else {
                    return Reply::err(
                        id,
                        "undo-token-lost",
                        format!("undo token of tid {tid} has no `before` list"),
                    );
                };
                let mut restored = self.native.clone();
                for b in before {
                    let Some(oid) = b.get("id").and_then(Value::as_str) else {
                        return Reply::err(id, "undo-token-lost", "undo token entry without `id`");
                    };
                    match b.get("object") {
                        Some(Value::Null) | None => {
                            restored.objects.remove(oid);
                        }
                        Some(o) => match serde_json::from_value::<SceneObject>(o.clone()) {
                            Ok(o) => {
                                restored
                                    .objects
                                    .insert(oid.to_string(), self.native_obj(&o));
                            }
                            Err(e) => {
                                return Reply::err(
                                    id,
                                    "undo-token-lost",
                                    format!("undo token object `{oid}`: {e}"),
                                );
                            }
                        },
                    }
                }
                self.native = restored;
                self.undo.remove(&tid);
                Reply::ok(id, json!({}))
            }
            CommandBody::Commit { tid } => {
                self.undo.remove(&tid);
                Reply::ok(id, json!({}))
            }
            CommandBody::Snapshot => {
                let canon = self.canonical_scene();
                let objects: Vec<&SceneObject> = canon.objects.values().collect();
                Reply::ok(
                    id,
                    json!({"hash": self.hash(canon.hash()), "objects": objects}),
                )
            }
            CommandBody::Resync { objects } => {
                let mut s = Scene::new(self.native.quantum);
                for o in &objects {
                    let mut n = self.native_obj(o);
                    vibesync_canonical::hash::snap_object(&mut n, s.quantum);
                    s.objects.insert(o.id.clone(), n);
                }
                self.native = s;
                self.undo.clear();
                Reply::ok(
                    id,
                    json!({"hash": self.hash(self.canonical_scene().hash())}),
                )
            }
            CommandBody::Freeze { reason } => {
                self.frozen = Some(reason);
                Reply::ok(id, json!({}))
            }
            CommandBody::Thaw => {
                self.frozen = None;
                Reply::ok(id, json!({}))
            }
            CommandBody::Preview { .. } => Reply::err(
                id,
                "unsupported",
                "the reference engine is headless and renders no previews",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_canonical::ObjectKind;

    fn cmd(id: u64, body: CommandBody) -> Command {
        Command { id, body }
    }

    fn create(id: &str, t: [f64; 3]) -> Op {
        Op::CreateObject {
            id: Some(id.into()),
            name: id.into(),
            kind: ObjectKind::Mesh,
            primitive: None,
            parent: None,
            transform: Some(Transform {
                translation: t,
                ..Transform::IDENTITY
            }),
        }
    }

    fn move_to(id: &str, t: [f64; 3]) -> Op {
        Op::SetTransform {
            id: id.into(),
            translation: Some(t),
            rotation: None,
            scale: None,
        }
    }

    #[test]
    fn every_convention_reports_the_reference_hash_and_rolls_back() {
        let ops = vec![
            create("a", [1.0, 2.0, 3.0]),
            Op::SetTransform {
                id: "a".into(),
                translation: None,
                rotation: Some([
                    0.0,
                    std::f64::consts::FRAC_1_SQRT_2,
                    0.0,
                    std::f64::consts::FRAC_1_SQRT_2,
                ]),
                scale: Some([1.0, 2.0, 3.0]),
            },
        ];
        let mut reference = Scene::new(Quantum::default());
        reference.apply_all(&ops).unwrap();
        for conv in [
            Convention::Blender,
            Convention::Unity,
            Convention::Canonical,
        ] {
            let mut e = Engine::new(conv);
            let r = e.handle(cmd(
                1,
                CommandBody::Apply {
                    tid: 1,
                    ops: ops.clone(),
                },
            ));
            let res = r.result.unwrap();
            assert_eq!(
                res["hash"],
                reference.hash_of(["a".to_string()].iter()).to_hex(),
                "{conv:?}"
            );
            if conv != Convention::Canonical {
                assert_ne!(
                    e.native.get("a").unwrap().transform,
                    reference.get("a").unwrap().transform,
                    "stored natively"
                );
            }
            let snap = e.handle(cmd(2, CommandBody::Snapshot)).result.unwrap();
            assert_eq!(snap["hash"], reference.hash().to_hex());
            let rb = e.handle(cmd(
                3,
                CommandBody::Rollback {
                    tid: 1,
                    undo_token: res["undo_token"].clone(),
                },
            ));
            assert!(rb.ok);
            assert!(e.native.objects.is_empty());
        }
    }

    #[test]
    fn frozen_refuses_apply_and_atomic_failure() {
        let mut e = Engine::new(Convention::Unity);
        e.handle(cmd(
            1,
            CommandBody::Freeze {
                reason: "PANIC".into(),
            },
        ));
        let r = e.handle(cmd(
            2,
            CommandBody::Apply {
                tid: 1,
                ops: vec![create("a", [0.0; 3])],
            },
        ));
        assert_eq!(r.error.unwrap().code, "frozen");
        e.handle(cmd(3, CommandBody::Thaw));
        let r = e.handle(cmd(
            4,
            CommandBody::Apply {
                tid: 2,
                ops: vec![create("a", [0.0; 3]), Op::DeleteObject { id: "zz".into() }],
            },
        ));
        assert_eq!(r.error.unwrap().code, "no-such-object");
        assert!(e.native.objects.is_empty(), "all or nothing");
    }

    #[test]
    fn rollback_after_a_resync_is_refused_not_replayed() {
        // Found by the simulator (seed 387 at the time): a late apply of a
        // rolled-back tid 19 lands, tid 21's apply records 19's values as
        // its `before`, a resync restores the canonical scene, and the
        // rollback of 21 then brought 19's values back.
        let mut e = Engine::new(Convention::Unity);
        let base = vec![create("obj-1", [0.0, 0.0, 0.0])];
        assert!(
            e.handle(cmd(1, CommandBody::Apply { tid: 1, ops: base }))
                .ok
        );
        let canonical = e.canonical_scene();
        let late = e.handle(cmd(
            2,
            CommandBody::Apply {
                tid: 19,
                ops: vec![move_to("obj-1", [9.0, 9.0, 9.0])],
            },
        ));
        assert!(late.ok);
        let r21 = e.handle(cmd(
            3,
            CommandBody::Apply {
                tid: 21,
                ops: vec![move_to("obj-1", [1.0, 1.0, 1.0])],
            },
        ));
        assert!(r21.ok);
        let token = r21.result.expect("token")["undo_token"].clone();
        let objects = canonical.objects.values().cloned().collect();
        assert!(e.handle(cmd(4, CommandBody::Resync { objects })).ok);
        let r = e.handle(cmd(
            5,
            CommandBody::Rollback {
                tid: 21,
                undo_token: token,
            },
        ));
        assert!(!r.ok, "the rollback must be refused");
        assert_eq!(r.error.expect("error").code, "undo-token-lost");
        assert_eq!(
            e.canonical_scene().hash(),
            canonical.hash(),
            "the resynced scene stands; tid 19's values did not come back"
        );
    }
}
