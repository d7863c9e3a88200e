"""Unit and property tests of the pure core (no bpy): the shared hash,
frame and op vectors of docs/test-vectors, and a seeded round-trip property
test of the Blender <-> canonical conversion.

    .venv/bin/python -m unittest discover -s adapters/blender/tests -p 'test_core.py'
"""

import json
import math
import os
import random
import struct
import sys
import unittest
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))

from vibesync_blender import core  # noqa: E402


def vectors(name):
    with open(os.path.join(ROOT, "docs", "test-vectors", name)) as f:
        return json.load(f)


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


class HashVectors(unittest.TestCase):
    def test_every_case_encodes_and_hashes_byte_for_byte(self):
        cases = vectors("canonical-hash.json")["cases"]
        self.assertGreater(len(cases), 20)
        for c in cases:
            with self.subTest(c["name"]):
                q = c["quantum"]
                if c["mode"] == "scene":
                    enc = core.scene_encoding(c["objects"], q)
                    h = core.scene_hash(c["objects"], q)
                else:
                    by_id = {o["id"]: o for o in c["objects"]}
                    enc = core.object_set_encoding(c["ids"], by_id.get, q)
                    h = core.object_set_hash(c["ids"], by_id.get, q)
                self.assertEqual(enc.hex(), c["encoding_hex"])
                self.assertEqual(h, c["sha256"])

    def test_quantisation_edges(self):
        self.assertEqual(core.quantize(0.000015), 2)
        self.assertEqual(core.quantize(1.234565), 123456)
        self.assertEqual(core.quantize(-0.000015), -2)
        self.assertEqual(core.quantize("NaN"), core.I64_MIN)
        self.assertEqual(core.quantize(1e300), core.I64_MAX)
        self.assertEqual(core.quantize(-1e300), core.I64_MIN)
        self.assertEqual(core.quantize(-0.0), 0)
        # A finite value whose scaled product overflows saturates like Rust's
        # `(v * q).round() as i64` (it used to raise OverflowError).
        self.assertEqual(core.quantize(1e305), core.I64_MAX)
        self.assertEqual(core.quantize(-1e305), core.I64_MIN)
        self.assertEqual(core.snap(1e305), math.inf)

    def test_fast_path_matches_the_rule_exactly(self):
        """``quantize`` inlines the common case; check it against the rule
        computed with exact fractions, on random doubles of every kind."""
        def rule(v, steps):
            p = v * float(steps)
            if math.isnan(p):
                return core.I64_MIN
            if math.isinf(p):
                return core.I64_MAX if p > 0 else core.I64_MIN
            a = abs(Fraction(p))
            f = math.floor(a)
            if a - f >= Fraction(1, 2):
                f += 1
            r = -f if p < 0 else f
            return max(core.I64_MIN, min(core.I64_MAX, r))

        rng = random.Random(20261203)
        vals = [0.0, -0.0, 0.5e-5, -0.5e-5, 1.5e-5, 2.5e-5, 0.49999999999999994, 8.999999e13, -9.2e13, 9.3e13]
        for _ in range(20000):
            vals.append(rng.uniform(-1e3, 1e3))
            vals.append(round(rng.uniform(-10, 10), 5) + rng.choice((0.5e-5, -0.5e-5)))
            vals.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0])
        for v in vals:
            if math.isnan(v):
                continue
            for steps in (100000, 1000, 1):
                self.assertEqual(core.quantize(v, steps), rule(v, steps), (v, steps))
                if abs(v * steps) < 9.0e18:  # snap inlines the same case
                    self.assertEqual(core.snap(v, steps), float(rule(v, steps)) / float(steps), (v, steps))

    def test_memoised_encoding_equals_a_fresh_one(self):
        """``object_set_encoding``'s memo must give the bytes a fresh
        encoding gives, for an equal object (reused) and a changed one."""
        rng = random.Random(7)
        memo = {}

        def obj(oid, x):
            return {"id": oid, "name": oid.upper(), "kind": "mesh", "parent": None,
                    "transform": {"translation": [x, 0.0, 1.0], "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]},
                    "material": None}
        for _ in range(300):
            objs = {f"o{i}": obj(f"o{i}", rng.choice((0.0, -0.0, 1.5, rng.uniform(-9, 9)))) for i in range(4)}
            ids = rng.sample(sorted(objs) + ["gone"], 3)
            self.assertEqual(core.object_set_encoding(ids, objs.get, memo=memo), core.object_set_encoding(ids, objs.get))


class FrameVectors(unittest.TestCase):
    def test_frames_match_the_shared_vectors(self):
        for c in vectors("frames.json")["cases"]:
            with self.subTest(c["name"]):
                loc, rot, sc = core.transform_to_blender(c["canonical"])
                b = c["blender"]
                self.assertEqual(loc, b["translation"])
                x, y, z, w = b["rotation"]
                self.assertEqual(rot, [w, x, y, z])
                self.assertEqual(sc, b["scale"])
                back = core.transform_from_blender(loc, rot, sc)
                self.assertEqual(back, c["canonical"])

    def test_rotation_commutes_with_the_frame(self):
        # Rotating a converted vector by the converted quaternion equals
        # converting the rotated vector: the formulas are a frame change,
        # not merely self-inverse.
        def rotate(q, v):  # q = (x, y, z, w)
            x, y, z, w = q
            vx, vy, vz = v
            tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
            return [vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx)]

        rng = random.Random(7)
        for _ in range(500):
            q = unit_quat(rng)
            v = [rng.uniform(-10, 10) for _ in range(3)]
            w, bx, by, bz = core.rot_to_blender(q)
            lhs = rotate([bx, by, bz, w], core.pos_to_blender(v))
            rhs = core.pos_to_blender(rotate(q, v))
            for a, b in zip(lhs, rhs):
                self.assertAlmostEqual(a, b, delta=1e-9)


def unit_quat(rng):
    q = [rng.gauss(0, 1) for _ in range(4)]
    n = math.sqrt(sum(c * c for c in q))
    return [c / n for c in q]


class RoundTripProperty(unittest.TestCase):
    """Random transforms: Blender -> canonical -> Blender within 1e-6 (it
    is in fact exact: signed permutations), also through Blender's float32
    storage, and the hash of the read-back equals the host's hash."""

    def test_random_transforms_round_trip_and_hash_like_the_host(self):
        rng = random.Random(20261125)
        for i in range(5000):
            loc = [rng.uniform(-100, 100) for _ in range(3)]
            q = unit_quat(rng)
            quat = [q[3], q[0], q[1], q[2]]
            sc = [rng.choice([-1, 1]) * rng.uniform(0.01, 50) for _ in range(3)]
            canon = core.transform_from_blender(loc, quat, sc)
            l2, q2, s2 = core.transform_to_blender(canon)
            for a, b in zip(loc + quat + sc, l2 + q2 + s2):
                self.assertLessEqual(abs(a - b), 1e-6, f"case {i}")
            # The host's snapped value, written to Blender (float32) and
            # read back, hashes to the host's hash.
            host = {"id": f"o{i}", "name": "N", "kind": "mesh", "parent": None,
                    "transform": core.snap_transform(canon), "material": None}
            bl, bq, bs = core.transform_to_blender(host["transform"])
            stored = [f32(v) for v in bl], [f32(v) for v in bq], [f32(v) for v in bs]
            read = dict(host, transform=core.transform_from_blender(*stored))
            self.assertEqual(core.scene_hash([read]), core.scene_hash([host]), f"case {i}: {host}")


class OpVectors(unittest.TestCase):
    def test_op_semantics_match_scene_apply_all(self):
        doc = vectors("ops.json")
        scene = core.Scene(steps=doc["quantum"])
        for t in doc["transactions"]:
            with self.subTest(t["name"]):
                exp = t["expect"]
                try:
                    scene = scene.apply_all(t["ops"])
                    self.assertTrue(exp["ok"], "expected a refusal")
                    self.assertEqual(sorted(scene.objects.values(), key=lambda o: o["id"]), exp["objects"])
                except core.OpError as e:
                    self.assertFalse(exp["ok"], f"unexpected refusal: {e}")
                    self.assertEqual((e.index, e.code), (exp["failed_op"], exp["code"]))
                self.assertEqual(scene.hash(), exp["scene_hash"])


class DiffOps(unittest.TestCase):
    def test_diff_replays_to_the_same_state(self):
        a = core.Scene().apply_all([
            {"op": "create_object", "args": {"id": "a", "name": "A", "kind": "empty"}},
            {"op": "create_object", "args": {"id": "b", "name": "B", "kind": "mesh", "parent": "a"}},
            {"op": "create_object", "args": {"id": "c", "name": "C", "kind": "mesh"}},
        ])
        b = a.apply_all([
            {"op": "delete_object", "args": {"id": "a"}},
            {"op": "create_object", "args": {"id": "d", "name": "D", "kind": "light", "parent": "c"}},
            {"op": "set_transform", "args": {"id": "c", "translation": [1, 2, 3]}},
            {"op": "set_material", "args": {"id": "c", "roughness": 0.25}},
            {"op": "rename_object", "args": {"id": "c", "name": "Crate"}},
        ])
        ops = core.diff_ops(a.objects, b.objects)
        self.assertEqual([o["op"] for o in ops].count("delete_object"), 1, ops)
        self.assertEqual(a.apply_all(ops).hash(), b.hash())
        self.assertEqual(core.diff_ops(b.objects, b.objects), [])

    def test_float32_read_back_is_not_an_edit(self):
        host = core.Scene().apply_all([
            {"op": "create_object", "args": {"id": "a", "name": "A", "kind": "mesh", "transform": {"translation": [0.1, 0.2, 0.3]}}},
            {"op": "set_material", "args": {"id": "a", "base_color": [0.2, 0.4, 0.6, 1], "roughness": 0.3, "metallic": 0.7}},
        ]).objects
        read = json.loads(json.dumps(host))
        o = read["a"]
        o["transform"] = {k: [f32(v) for v in vs] for k, vs in o["transform"].items()}
        o["material"] = {k: ([f32(v) for v in vs] if isinstance(vs, list) else f32(vs)) for k, vs in o["material"].items()}
        self.assertNotEqual(o["material"], host["a"]["material"])
        self.assertEqual(core.diff_ops(host, read), [])


class Packaging(unittest.TestCase):
    def test_zip_is_a_blender_extension(self):
        import ast
        import tempfile
        import tomllib
        import zipfile

        sys.path.insert(0, os.path.join(HERE, ".."))
        import build_zip

        out = os.path.join(tempfile.mkdtemp(), "vibesync.zip")
        names = build_zip.build(out)
        with zipfile.ZipFile(out) as z:
            manifest = tomllib.loads(z.read("blender_manifest.toml").decode())
            init = ast.parse(z.read("__init__.py").decode())
        self.assertIn("core.py", names)
        self.assertFalse([n for n in names if "__pycache__" in n])
        for key in ("schema_version", "id", "version", "name", "maintainer", "type", "blender_version_min", "license"):
            self.assertIn(key, manifest)
        self.assertEqual(manifest["type"], "add-on")
        self.assertEqual(manifest["blender_version_min"], "4.2.0")
        self.assertIn("network", manifest["permissions"])
        funcs = {n.name for n in init.body if isinstance(n, ast.FunctionDef)}
        self.assertLessEqual({"register", "unregister"}, funcs)


if __name__ == "__main__":
    unittest.main()
