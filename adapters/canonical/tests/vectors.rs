//! Pins the shared test vectors in `docs/test-vectors/` to this crate.
//!
//! The Python and C# adapters re-implement the canonical hash, the frame
//! conversions and the op semantics, and check themselves against
//! `canonical-hash.json`, `frames.json` and `ops.json`. This test regenerates
//! the files from the Rust reference
//! and fails if the committed files differ, so the vectors can never drift
//! from the implementation. After an intended change to the cases, rewrite
//! them with
//!
//! ```text
//! VIBESYNC_REGEN_VECTORS=1 cargo test -p vibesync-canonical --test vectors
//! ```
//!
//! Floats are written as JSON numbers (shortest round-trip form), except the
//! non-finite ones, which JSON cannot express: those are the strings `"NaN"`,
//! `"Infinity"` and `"-Infinity"`.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value, json};
use vibesync_canonical::frames::Frame;
use vibesync_canonical::hash::Encoder;
use vibesync_canonical::{
    Material, ObjectKind, Op, OpError, Quantum, Scene, SceneObject, Transform, object_set_hash,
    scene_hash,
};

const REGEN_VAR: &str = "VIBESYNC_REGEN_VECTORS";

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/test-vectors")
}

fn num(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

fn nums(vs: &[f64]) -> Value {
    Value::Array(vs.iter().copied().map(num).collect())
}

fn transform_json(t: &Transform) -> Value {
    json!({ "translation": nums(&t.translation), "rotation": nums(&t.rotation), "scale": nums(&t.scale) })
}

fn object_json(o: &SceneObject) -> Value {
    let material = match &o.material {
        None => Value::Null,
        Some(m) => json!({
            "base_color": nums(&m.base_color),
            "roughness": num(m.roughness),
            "metallic": num(m.metallic),
            "emission": nums(&m.emission),
            "emission_strength": num(m.emission_strength),
        }),
    };
    let mut map = Map::new();
    map.insert("id".into(), json!(o.id));
    map.insert("name".into(), json!(o.name));
    map.insert("kind".into(), json!(o.kind.as_str()));
    map.insert(
        "parent".into(),
        o.parent.as_ref().map_or(Value::Null, |p| json!(p)),
    );
    map.insert("transform".into(), transform_json(&o.transform));
    map.insert("material".into(), material);
    Value::Object(map)
}

fn obj(id: &str, name: &str, kind: ObjectKind) -> SceneObject {
    SceneObject {
        id: id.into(),
        name: name.into(),
        kind,
        parent: None,
        transform: Transform::IDENTITY,
        material: None,
    }
}

fn with_t(
    mut o: SceneObject,
    translation: [f64; 3],
    rotation: [f64; 4],
    scale: [f64; 3],
) -> SceneObject {
    o.transform = Transform {
        translation,
        rotation,
        scale,
    };
    o
}

fn with_parent(mut o: SceneObject, parent: &str) -> SceneObject {
    o.parent = Some(parent.into());
    o
}

fn with_material(mut o: SceneObject, m: Material) -> SceneObject {
    o.material = Some(m);
    o
}

/// One hash case: either a whole scene (`ids` is `None`) or an object set.
struct Case {
    name: &'static str,
    note: &'static str,
    quantum: u32,
    ids: Option<Vec<&'static str>>,
    objects: Vec<SceneObject>,
}

#[derive(Serialize)]
struct CaseOut {
    name: &'static str,
    note: &'static str,
    /// `scene`: hash every object, sorted by id. `object_set`: hash `ids`
    /// (deduplicated, sorted), each present (found in `objects`) or absent.
    mode: &'static str,
    quantum: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<&'static str>>,
    objects: Vec<Value>,
    encoding_hex: String,
    sha256: String,
}

fn encode(case: &Case) -> (Vec<u8>, String) {
    let q = Quantum(case.quantum);
    match &case.ids {
        None => {
            let mut sorted: Vec<&SceneObject> = case.objects.iter().collect();
            sorted.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
            let mut enc = Encoder::new(q, sorted.len());
            sorted.iter().for_each(|o| enc.present(o));
            let bytes = enc.bytes().to_vec();
            let hash = enc.finish();
            // The public entry point must agree with the spelled-out encoding.
            assert_eq!(hash, scene_hash(&case.objects, q), "case {}", case.name);
            (bytes, hash.to_hex())
        }
        Some(ids) => {
            let owned: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
            let mut unique: Vec<&str> = ids.clone();
            unique.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            unique.dedup();
            let lookup = |id: &str| case.objects.iter().find(|o| o.id == id);
            let mut enc = Encoder::new(q, unique.len());
            for id in &unique {
                match lookup(id) {
                    Some(o) => enc.present(o),
                    None => enc.absent(id),
                }
            }
            let bytes = enc.bytes().to_vec();
            let hash = enc.finish();
            assert_eq!(
                hash,
                object_set_hash(&owned, lookup, q),
                "case {}",
                case.name
            );
            (bytes, hash.to_hex())
        }
    }
}

fn hash_cases() -> Vec<Case> {
    use ObjectKind::*;
    let d = Quantum::default().0;
    let red = Material {
        base_color: [1.0, 0.0, 0.0, 1.0],
        roughness: 0.25,
        metallic: 1.0,
        emission: [0.0, 0.0, 0.0],
        emission_strength: 0.0,
    };
    let glow = Material {
        base_color: [0.1, 0.2, 0.3, 0.5],
        roughness: 0.9,
        metallic: 0.0,
        emission: [1.0, 0.5, 0.25],
        emission_strength: 12.5,
    };
    let cube = || obj("obj-1", "Cube", Mesh);
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let turned = [0.0, h, 0.0, h];
    vec![
        Case {
            name: "empty_scene",
            note: "header only",
            quantum: d,
            ids: None,
            objects: vec![],
        },
        Case {
            name: "one_cube_identity",
            note: "no material, no parent",
            quantum: d,
            ids: None,
            objects: vec![cube()],
        },
        Case {
            name: "one_cube_transformed",
            note: "translation, a quarter turn about +Y, non-uniform scale",
            quantum: d,
            ids: None,
            objects: vec![with_t(cube(), [1.5, -2.25, 3.0], turned, [2.0, 0.5, 1.0])],
        },
        Case {
            name: "material_default",
            note: "the default material a first set_material creates",
            quantum: d,
            ids: None,
            objects: vec![with_material(cube(), Material::default())],
        },
        Case {
            name: "material_emissive",
            note: "every material field non-trivial",
            quantum: d,
            ids: None,
            objects: vec![with_material(cube(), glow)],
        },
        Case {
            name: "sorted_by_id",
            note: "objects given out of order; entries are sorted by id bytes",
            quantum: d,
            ids: None,
            objects: vec![
                obj("obj-2", "B", Empty),
                with_material(obj("obj-10", "C", Mesh), red),
                obj("obj-1", "A", Camera),
            ],
        },
        Case {
            name: "parent_child",
            note: "the child's parent id is encoded; a root's parent is the empty string",
            quantum: d,
            ids: None,
            objects: vec![
                with_parent(
                    with_t(
                        obj("obj-2", "Wheel", Mesh),
                        [0.0, 0.5, 1.0],
                        [0.0, 0.0, 0.0, 1.0],
                        [1.0, 1.0, 1.0],
                    ),
                    "obj-1",
                ),
                obj("obj-1", "Car", Empty),
            ],
        },
        Case {
            name: "all_kinds",
            note: "kind strings: mesh, empty, camera, light",
            quantum: d,
            ids: None,
            objects: vec![
                obj("a", "m", Mesh),
                obj("b", "e", Empty),
                obj("c", "c", Camera),
                obj("d", "l", Light),
            ],
        },
        Case {
            name: "unicode_names_and_ids",
            note: "lengths are UTF-8 byte counts; ids sort by UTF-8 bytes (\"Z\" < \"a\" < \"é\" < \"日\")",
            quantum: d,
            ids: None,
            objects: vec![
                obj("日本-1", "立方体 🧊", Mesh),
                obj("é-1", "Café", Light),
                obj("a-1", "naïve", Empty),
                obj("Z-1", "Zed", Empty),
            ],
        },
        Case {
            name: "negative_w_normalised",
            note: "q and -q are one rotation: w < 0 is negated after quantising (same bytes as one_cube_transformed's rotation)",
            quantum: d,
            ids: None,
            objects: vec![with_t(
                cube(),
                [1.5, -2.25, 3.0],
                turned.map(|c| -c),
                [2.0, 0.5, 1.0],
            )],
        },
        Case {
            name: "half_turn_w_zero_negative_x",
            note: "w == 0: negated because the first non-zero of x, y, z is negative",
            quantum: d,
            ids: None,
            objects: vec![with_t(cube(), [0.0; 3], [-1.0, 0.0, 0.0, 0.0], [1.0; 3])],
        },
        Case {
            name: "half_turn_w_zero_x_zero_negative_y",
            note: "w == 0 and x == 0: the sign of y decides",
            quantum: d,
            ids: None,
            objects: vec![with_t(cube(), [0.0; 3], [0.0, -0.6, 0.8, -0.0], [1.0; 3])],
        },
        Case {
            name: "tiny_negative_w_quantises_to_zero",
            note: "w = -1e-7 quantises to 0, so the w == 0 rule (x positive) applies and nothing is negated",
            quantum: d,
            ids: None,
            objects: vec![with_t(cube(), [0.0; 3], [1.0, 0.0, 0.0, -1e-7], [1.0; 3])],
        },
        Case {
            name: "object_set_absent",
            note: "an id with no object is encoded as absent",
            quantum: d,
            ids: Some(vec!["obj-9"]),
            objects: vec![],
        },
        Case {
            name: "object_set_mixed",
            note: "present and absent ids, given unsorted and with a duplicate; ids are deduplicated and sorted",
            quantum: d,
            ids: Some(vec!["obj-3", "obj-1", "obj-2", "obj-3"]),
            objects: vec![
                with_material(cube(), red),
                with_parent(obj("obj-3", "Child", Mesh), "obj-1"),
            ],
        },
        Case {
            name: "non_finite",
            note: "NaN -> i64::MIN, +inf -> i64::MAX, -inf -> i64::MIN + 1",
            quantum: d,
            ids: None,
            objects: vec![with_material(
                with_t(
                    cube(),
                    [f64::NAN, f64::INFINITY, f64::NEG_INFINITY],
                    [0.0, 0.0, 0.0, 1.0],
                    [1.0; 3],
                ),
                Material {
                    roughness: f64::NAN,
                    emission_strength: f64::INFINITY,
                    ..Material::default()
                },
            )],
        },
        Case {
            name: "saturating",
            note: "finite values beyond the i64 range saturate; negative zero is zero",
            quantum: d,
            ids: None,
            objects: vec![with_t(
                cube(),
                [1e300, -1e300, -0.0],
                [0.0, 0.0, 0.0, 1.0],
                [9.3e13, -9.3e13, 92233720368.54775],
            )],
        },
        Case {
            name: "saturation_boundary",
            note: "quantum 1: exactly 2^63 saturates to i64::MAX, exactly -2^63 is i64::MIN, the largest double below 2^63 converts exactly",
            quantum: 1,
            ids: None,
            objects: vec![with_t(
                cube(),
                [
                    9223372036854775808.0,
                    -9223372036854775808.0,
                    9223372036854774784.0,
                ],
                [0.0, 0.0, 0.0, 1.0],
                [1.0; 3],
            )],
        },
        Case {
            name: "rounding_boundaries",
            note: "half steps round away from zero, judged on v * steps as computed in f64: 0.000015 * 1e5 is exactly 1.5 (-> 2), 1.234565 * 1e5 is 123456.49999999999 (-> 123456)",
            quantum: d,
            ids: None,
            objects: vec![with_t(
                cube(),
                [0.000005, -0.000005, 0.000015],
                [0.0000049999, 0.0, 0.0, 1.0],
                [1.234565, -2.500005, 0.1 + 0.2],
            )],
        },
        Case {
            name: "float32_noise",
            note: "values read back from float32 storage quantise like the f64 they approximate",
            quantum: d,
            ids: None,
            objects: vec![with_t(
                cube(),
                [0.1f32 as f64, 1.3f32 as f64, -7.77f32 as f64],
                [0.0, 0.38268343f32 as f64, 0.0, 0.9238795f32 as f64],
                [1.0; 3],
            )],
        },
        Case {
            name: "quantum_1000",
            note: "a coarser grid (1e-3); the header carries steps_per_unit",
            quantum: 1000,
            ids: None,
            objects: vec![with_material(
                with_t(cube(), [1.0005, -1.0005, 0.0004], turned, [1.0; 3]),
                glow,
            )],
        },
        Case {
            name: "quantum_1",
            note: "one step per unit",
            quantum: 1,
            ids: None,
            objects: vec![with_t(
                cube(),
                [2.5, -2.5, 0.49],
                [0.0, 0.0, 0.0, 1.0],
                [1.0; 3],
            )],
        },
        Case {
            name: "empty_strings",
            note: "an empty name encodes as length 0; a root's parent is the same bytes as an empty parent",
            quantum: d,
            ids: None,
            objects: vec![obj("x", "", Empty)],
        },
    ]
}

fn hash_file() -> String {
    let cases: Vec<CaseOut> = hash_cases()
        .iter()
        .map(|c| {
            let (bytes, sha) = encode(c);
            CaseOut {
                name: c.name,
                note: c.note,
                mode: if c.ids.is_some() {
                    "object_set"
                } else {
                    "scene"
                },
                quantum: c.quantum,
                ids: c.ids.clone(),
                objects: c.objects.iter().map(object_json).collect(),
                encoding_hex: hex::encode(bytes),
                sha256: sha,
            }
        })
        .collect();
    let doc = json!({
        "about": "Canonical state hash test vectors (docs/canonical-state.md). Generated by adapters/canonical/tests/vectors.rs; do not edit by hand.",
        "float_encoding": "JSON numbers; the non-finite values are the strings NaN, Infinity, -Infinity",
        "cases": cases,
    });
    serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"
}

fn frames_file() -> String {
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let cases: Vec<(&str, Transform)> = vec![
        ("identity", Transform::IDENTITY),
        (
            "up",
            Transform {
                translation: [0.0, 1.0, 0.0],
                ..Transform::IDENTITY
            },
        ),
        (
            "towards_viewer",
            Transform {
                translation: [0.0, 0.0, 1.0],
                ..Transform::IDENTITY
            },
        ),
        (
            "right",
            Transform {
                translation: [1.0, 0.0, 0.0],
                ..Transform::IDENTITY
            },
        ),
        (
            "quarter_turn_x",
            Transform {
                rotation: [h, 0.0, 0.0, h],
                ..Transform::IDENTITY
            },
        ),
        (
            "quarter_turn_y",
            Transform {
                rotation: [0.0, h, 0.0, h],
                ..Transform::IDENTITY
            },
        ),
        (
            "quarter_turn_z",
            Transform {
                rotation: [0.0, 0.0, h, h],
                ..Transform::IDENTITY
            },
        ),
        (
            "non_uniform_scale",
            Transform {
                scale: [1.0, 2.0, 3.0],
                ..Transform::IDENTITY
            },
        ),
        (
            "general",
            Transform {
                translation: [1.5, -2.0, 3.25],
                rotation: [
                    0.1825741858350554,
                    0.3651483716701107,
                    0.5477225575051661,
                    0.7302967433402214,
                ],
                scale: [0.5, 2.0, 4.0],
            },
        ),
    ];
    let out: Vec<Value> = cases
        .iter()
        .map(|(name, t)| {
            let blender = Frame::BlenderZUp.from_canonical(t);
            let unity = Frame::UnityLeftHanded.from_canonical(t);
            assert_eq!(Frame::BlenderZUp.to_canonical(&blender), *t);
            assert_eq!(Frame::UnityLeftHanded.to_canonical(&unity), *t);
            json!({
                "name": name,
                "canonical": transform_json(t),
                "blender": transform_json(&blender),
                "unity": transform_json(&unity),
            })
        })
        .collect();
    let doc = json!({
        "about": "Frame conversion examples (docs/canonical-state.md): canonical glTF (RH, +Y up) <-> Blender (RH, +Z up) <-> Unity (LH, +Y up). Generated by adapters/canonical/tests/vectors.rs; do not edit by hand.",
        "cases": out,
    });
    serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"
}

/// The wire error code (docs/adapter-api.md) an engine reports for an op error.
fn error_code(e: &OpError) -> &'static str {
    match e {
        OpError::NoSuchObject(_) | OpError::NoSuchParent { .. } => "no-such-object",
        OpError::AlreadyExists(_) => "already-exists",
        OpError::Cycle { .. } => "cycle",
        OpError::MissingId(_) | OpError::Malformed { .. } => "malformed",
    }
}

/// Transactions applied in order with `Scene::apply_all`: an engine that
/// applies the same ops must end each one with the same scene hash, or fail
/// at the same op with the same code and change nothing. Values stay small
/// (|v| < 10) so an engine's float32 storage is far inside half a quantum.
fn ops_file() -> String {
    let op = |v: Value| -> Op {
        let name = v["op"].as_str().expect("op name").to_string();
        Op::parse(&name, v["args"].clone()).expect("vector ops parse")
    };
    let transactions: Vec<(&str, Vec<Value>)> = vec![
        (
            "create_snapped_and_normalised",
            vec![
                json!({"op": "create_object", "args": {"id": "obj-1", "name": "Cube", "kind": "mesh", "primitive": "cube",
            "transform": {"translation": [1.2345678, 2.0, -3.0], "rotation": [0.0, 0.5, 0.0, 0.5], "scale": [1.0, 2.0, 0.5]}}}),
            ],
        ),
        (
            "create_default_transform",
            vec![
                json!({"op": "create_object", "args": {"id": "obj-2", "name": "Lamp", "kind": "light", "primitive": "point", "parent": "obj-1"}}),
            ],
        ),
        (
            "material_from_default",
            vec![json!({"op": "set_material", "args": {"id": "obj-1", "roughness": 0.3}})],
        ),
        (
            "material_every_field",
            vec![
                json!({"op": "set_material", "args": {"id": "obj-2", "base_color": [0.1, 0.2, 0.3, 0.4], "roughness": 0.123456789,
            "metallic": 1.0, "emission": [1.0, 0.5, 0.0], "emission_strength": 7.5}}),
            ],
        ),
        (
            "transform_partial",
            vec![
                json!({"op": "set_transform", "args": {"id": "obj-1", "rotation": [0.0, 0.0, 0.0, -2.0]}}),
                json!({"op": "set_transform", "args": {"id": "obj-2", "translation": [-0.000004, 0.000005, 9.99999]}}),
            ],
        ),
        (
            "rename_and_reparent",
            vec![
                json!({"op": "create_object", "args": {"id": "obj-3", "name": "Cam", "kind": "camera"}}),
                json!({"op": "rename_object", "args": {"id": "obj-1", "name": "Body ✓"}}),
                json!({"op": "reparent_object", "args": {"id": "obj-3", "parent": "obj-2"}}),
                json!({"op": "reparent_object", "args": {"id": "obj-2", "parent": null}}),
            ],
        ),
        (
            "failing_third_op_changes_nothing",
            vec![
                json!({"op": "rename_object", "args": {"id": "obj-1", "name": "Nope"}}),
                json!({"op": "delete_object", "args": {"id": "obj-2"}}),
                json!({"op": "create_object", "args": {"id": "obj-1", "name": "Dup", "kind": "empty"}}),
            ],
        ),
        (
            "cycle_refused",
            vec![json!({"op": "reparent_object", "args": {"id": "obj-2", "parent": "obj-3"}})],
        ),
        (
            "missing_parent_refused",
            vec![
                json!({"op": "create_object", "args": {"id": "obj-4", "name": "Orphan", "kind": "empty", "parent": "obj-99"}}),
            ],
        ),
        (
            "select_is_not_state",
            vec![json!({"op": "select", "args": {"ids": ["obj-1", "obj-3"], "frame": true}})],
        ),
        (
            "delete_takes_descendants",
            vec![json!({"op": "delete_object", "args": {"id": "obj-2"}})],
        ),
        (
            "missing_object_refused",
            vec![json!({"op": "set_transform", "args": {"id": "obj-3", "scale": [2.0, 2.0, 2.0]}})],
        ),
    ];
    let mut scene = Scene::default();
    let out: Vec<Value> = transactions
        .into_iter()
        .map(|(name, ops)| {
            let parsed: Vec<Op> = ops.iter().cloned().map(op).collect();
            let expect = match scene.apply_all(&parsed) {
                Ok(()) => json!({"ok": true, "scene_hash": scene.hash().to_hex(), "objects": scene.objects.values().map(object_json).collect::<Vec<_>>()}),
                Err((i, e)) => json!({"ok": false, "failed_op": i, "code": error_code(&e), "scene_hash": scene.hash().to_hex()}),
            };
            json!({"name": name, "ops": ops, "expect": expect})
        })
        .collect();
    let doc = json!({
        "about": "Op semantics (adapters/canonical/src/ops.rs, Scene::apply_all): transactions applied in order to an empty scene with quantum 100000, each with the scene hash after it, or the failing op index and wire error code (the scene unchanged). Generated by adapters/canonical/tests/vectors.rs; do not edit by hand.",
        "quantum": Quantum::default().0,
        "transactions": out,
    });
    serde_json::to_string_pretty(&doc).expect("serialisable") + "\n"
}

fn check(file: &str, expected: String) {
    let path = vectors_dir().join(file);
    if std::env::var_os(REGEN_VAR).is_some() {
        std::fs::create_dir_all(vectors_dir()).expect("create docs/test-vectors");
        std::fs::write(&path, &expected)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "read {}: {e}; generate it with {REGEN_VAR}=1",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs from what the Rust reference generates; if the change is intended, rerun with {REGEN_VAR}=1 and review the diff",
        path.display()
    );
}

#[test]
fn canonical_hash_vectors_match_the_reference() {
    check("canonical-hash.json", hash_file());
}

#[test]
fn frame_vectors_match_the_reference() {
    check("frames.json", frames_file());
}

#[test]
fn op_vectors_match_the_reference() {
    check("ops.json", ops_file());
}

/// The vector file must exercise what it claims to: the rules that are easy
/// to get wrong in another language each change at least one case's bytes.
#[test]
fn vectors_cover_the_tricky_rules() {
    let cases = hash_cases();
    let by_name = |n: &str| {
        cases
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("case {n}"))
    };
    // Negative-w normalisation: same bytes as the positive twin.
    assert_eq!(
        encode(by_name("negative_w_normalised")).0,
        encode(by_name("one_cube_transformed")).0
    );
    // Quantum other than the default shows up in the header.
    let (bytes, _) = encode(by_name("quantum_1000"));
    assert_eq!(&bytes[17..21], &1000u32.to_be_bytes());
    // The boundary case really sits on boundaries: exact halves round away
    // from zero, a product just below a half rounds down.
    let q = Quantum::default();
    assert_eq!((q.q(0.000005), q.q(-0.000005), q.q(0.000015)), (1, -1, 2));
    assert_eq!((q.q(1.234565), q.q(-2.500005)), (123_456, -250_000));
}
