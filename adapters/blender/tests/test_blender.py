"""The adapter inside real Blender (the ``bpy`` module), without a network:
commands go straight to ``Adapter.handle``. Proves the op semantics against
docs/test-vectors/ops.json in Blender, exact rollback (full datablock dumps),
ids across save/reload and duplication, the script namespace, artist-edit
diffs and the preview PNG.

    .venv/bin/python -m unittest discover -s adapters/blender/tests -p 'test_blender.py'
"""

import base64
import json
import os
import struct
import sys
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))

import bpy  # noqa: E402

from vibesync_blender import bridge, core  # noqa: E402
from vibesync_blender.adapter import Adapter  # noqa: E402

print("bpy.app.version", bpy.app.version_string, file=sys.stderr)


def fresh():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return Adapter()


class Driver:
    def __init__(self, adapter):
        self.a = adapter
        self.n = 0
        self.tid = 0

    def cmd(self, kind, **body):
        self.n += 1
        return self.a.handle(dict(body, id=self.n, kind=kind))

    def apply(self, ops):
        self.tid += 1
        return self.tid, self.cmd("apply", tid=self.tid, ops=ops)


def op(_name, **args):
    return {"op": _name, "args": args}


def dump_all():
    return {o.name: bridge.dump(o) for o in bpy.data.objects}


def png_pixels(data):
    """Decode an 8-bit RGB/RGBA PNG (no filters beyond the standard five)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif typ == b"IDAT":
            idat += body
        pos += 12 + ln
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


class OpVectorsInBlender(unittest.TestCase):
    def test_ops_json_through_blender(self):
        d = Driver(fresh())
        with open(os.path.join(ROOT, "docs", "test-vectors", "ops.json")) as f:
            doc = json.load(f)
        for t in doc["transactions"]:
            with self.subTest(t["name"]):
                _, r = d.apply(t["ops"])
                exp = t["expect"]
                self.assertEqual(r["ok"], exp["ok"], r)
                if not exp["ok"]:
                    self.assertEqual(r["error"]["code"], exp["code"])
                    self.assertTrue(r["error"]["message"].startswith(f"op {exp['failed_op']} "), r)
                else:
                    d.cmd("commit", tid=d.tid)
                snap = d.cmd("snapshot")["result"]
                self.assertEqual(snap["hash"], exp["scene_hash"], snap["objects"])


class EveryOp(unittest.TestCase):
    def test_every_kind_and_primitive_is_created_and_verifies(self):
        d = Driver(fresh())
        ops = [op("create_object", id=f"m-{p}", name=p, kind="mesh", primitive=p) for p in core.MESH_PRIMITIVES]
        ops += [op("create_object", id=f"l-{p}", name=f"L{p}", kind="light", primitive=p) for p in core.LIGHT_PRIMITIVES]
        ops += [op("create_object", id="cam", name="Cam", kind="camera"), op("create_object", id="e", name="E", kind="empty")]
        ops += [op("set_transform", id="m-cube", translation=[1, 2, 3], rotation=[0, 0.38268343, 0, 0.92387953], scale=[1, 2, 3]),
                op("set_material", id="m-cube", base_color=[0.1, 0.2, 0.3, 1], roughness=0.3, metallic=0.9, emission=[1, 0.5, 0], emission_strength=2.5),
                op("rename_object", id="e", name="Rig"), op("reparent_object", id="cam", parent="e"),
                op("select", ids=["m-cube"], frame=True)]
        tid, r = d.apply(ops)
        self.assertTrue(r["ok"], r)
        model = core.Scene().apply_all(ops)
        self.assertEqual(r["result"]["hash"], model.hash_of(r["result"]["touched"]))
        v = d.cmd("verify", tid=tid, ids=list(model.objects))["result"]
        self.assertEqual(v["hash"], model.hash_of(list(model.objects)))
        cube = bridge.tracked()["m-cube"]
        self.assertEqual([round(c, 6) for c in cube.location], [1, -3, 2], "canonical +Y up is Blender +Z up")
        self.assertTrue(cube.select_get())
        self.assertEqual(bridge.tracked()["cam"].parent.name, "Rig")
        self.assertEqual(bridge.tracked()["l-spot"].data.type, "SPOT")
        self.assertEqual(len(bridge.tracked()["m-torus"].data.polygons), 48 * 12)
        n = bridge._principled(cube[bridge.MAT])
        self.assertAlmostEqual(n.inputs["Metallic"].default_value, 0.9, places=6)
        d.cmd("commit", tid=tid)
        self.assertEqual(d.a.undo_pending, [f"tid {tid}"])
        d.a.flush_undo()
        self.assertEqual((d.a.undo_steps, d.a.undo_pending), (1, []), "the commit became one Blender undo step")


class LocalOps(unittest.TestCase):
    def test_transform_material_rename_model_only_their_objects_with_the_same_verdicts(self):
        """``apply`` of set_transform / set_material / rename_object reads
        only the objects it names; the results must equal the pure model run
        on the whole scene, and no other object may change."""
        d = Driver(fresh())
        setup = [op("create_object", id=f"o{i}", name=f"O{i}", kind="mesh", primitive="cube") for i in range(6)]
        setup += [op("set_material", id="o1", roughness=0.2), op("reparent_object", id="o2", parent="o1")]
        tid, r = d.apply(setup)
        self.assertTrue(r["ok"], r)
        d.cmd("commit", tid=tid)
        model = core.Scene().apply_all(setup)
        bystanders = {n: bridge.dump(bpy.data.objects[n]) for n in ("O0", "O3", "O4", "O5")}
        ops = [op("set_transform", id="o2", translation=[1, 2, 3]), op("set_material", id="o1", metallic=0.5),
               op("rename_object", id="o1", name="Lamp"), op("set_transform", id="o1", scale=[2, 2, 2])]
        tid, r = d.apply(ops)
        self.assertTrue(r["ok"], r)
        model = model.apply_all(ops)
        self.assertEqual(sorted(r["result"]["touched"]), ["o1", "o2"])
        self.assertEqual(r["result"]["hash"], model.hash_of(["o1", "o2"]))
        self.assertEqual(d.cmd("snapshot")["result"]["hash"], model.hash_of(list(model.objects)))
        self.assertEqual({n: bridge.dump(bpy.data.objects[n]) for n in bystanders}, bystanders)
        self.assertAlmostEqual(bridge.read(bridge.tracked()["o1"])["material"]["roughness"], 0.2, places=6, msg="an untouched socket kept its value")
        d.cmd("commit", tid=tid)
        # A missing object is refused with the op's index, nothing written.
        before = dump_all()
        _, r = d.apply([op("set_transform", id="o3", translation=[9, 9, 9]), op("set_material", id="ghost", metallic=1.0)])
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["error"]["code"], "no-such-object")
        self.assertTrue(r["error"]["message"].startswith("op 1 (set_material)"), r)
        _, r = d.apply([op("set_transform", id="o3", translation="up")])
        self.assertEqual((r["ok"], r.get("error", {}).get("code")), (False, "malformed"), r)
        self.assertEqual(dump_all(), before)


    def test_ids_are_found_after_renames_deletes_and_name_swaps(self):
        """``apply`` and ``verify`` of local ops find objects through cached
        Blender names; a cached name that now names another object, or
        nothing, must not be trusted."""
        d = Driver(fresh())
        tid, r = d.apply([op("create_object", id=f"o{i}", name=f"O{i}", kind="mesh", primitive="cube") for i in range(3)])
        d.cmd("commit", tid=tid)
        move = lambda oid, x: d.apply([op("set_transform", id=oid, translation=[x, 0, 0])])[1]  # noqa: E731
        for oid in ("o0", "o1", "o2"):
            self.assertTrue(move(oid, 1)["ok"])  # every name is now cached
        bpy.data.objects["O0"].name = "Artist"  # an artist renames o0
        bpy.data.objects["O1"].name = "O0"  # and gives o1 o0's old name
        bpy.data.objects.remove(bpy.data.objects["O2"])  # and deletes o2
        self.assertTrue(move("o0", 2)["ok"])
        self.assertTrue(move("o1", 3)["ok"])
        self.assertEqual(round(bpy.data.objects["Artist"].location.x, 6), 2)
        self.assertEqual(round(bpy.data.objects["O0"].location.x, 6), 3)
        r = move("o2", 4)
        self.assertEqual((r["ok"], r.get("error", {}).get("code")), (False, "no-such-object"), r)
        bpy.data.objects.new("O2", None)  # an untracked object takes the name
        self.assertEqual(move("o2", 5)["error"]["code"], "no-such-object")
        v = d.cmd("verify", tid=0, ids=["o0", "o1", "o2"])["result"]
        self.assertEqual([o["transform"]["translation"][0] for o in v["objects"]], [2, 3])
        self.assertEqual(v["hash"], core.object_set_hash(["o0", "o1", "o2"], {o["id"]: o for o in v["objects"]}.get))


class FakeSession:
    """The SDK session as the pump sees it: a queue of commands in, the
    replies out, and how many SDK calls it took."""

    def __init__(self, commands, bursts=True):
        self.commands = list(commands)
        self.replies = []
        self.calls = {"poll": 0, "reply": 0}
        if not bursts:  # as sdk.Session answers with a library older than vs_poll_many
            self.poll_many = lambda limit: [c for c in [self.poll()] if c is not None]
            self.reply_many = lambda replies: [self.reply(r) for r in replies]

    def poll(self):
        self.calls["poll"] += 1
        return self.commands.pop(0) if self.commands else None

    def reply(self, reply):
        self.calls["reply"] += 1
        self.replies.append(reply)

    def poll_many(self, limit):
        self.calls["poll"] += 1
        taken, self.commands = self.commands[:limit], self.commands[limit:]
        return taken

    def reply_many(self, replies):
        self.calls["reply"] += 1
        self.replies.extend(replies)

    def status(self):
        return {"state": "connected", "panic": False}


class Pump(unittest.TestCase):
    def commands(self, n):
        """Create o0, then n apply + verify pairs moving it."""
        cmds = [{"id": 1, "kind": "apply", "tid": 1, "ops": [op("create_object", id="o0", name="O0", kind="mesh")]},
                {"id": 2, "kind": "commit", "tid": 1}]
        for i in range(n):
            tid = 2 + i
            cmds.append({"id": 3 + 2 * i, "kind": "apply", "tid": tid,
                         "ops": [op("set_transform", id="o0", translation=[float(i), 0.0, 0.0])]})
            cmds.append({"id": 4 + 2 * i, "kind": "verify", "tid": tid, "ids": ["o0"]})
        return cmds

    def test_commands_are_taken_and_answered_a_burst_at_a_time_in_order(self):
        for bursts in (True, False):
            fresh()
            cmds = self.commands(20)
            s = FakeSession(cmds, bursts=bursts)
            a = Adapter(s)
            handled = 0
            while s.commands:
                handled += a.pump(budget_s=10.0)
            self.assertEqual(handled, len(cmds))
            self.assertEqual([r["id"] for r in s.replies], [c["id"] for c in cmds], f"bursts={bursts}")
            self.assertTrue(all(r["ok"] for r in s.replies), s.replies)
            # Each verify read back what the apply right before it wrote.
            for ack, ver in zip(s.replies[2::2], s.replies[3::2]):
                self.assertEqual(ack["result"]["hash"], ver["result"]["hash"])
            from vibesync_blender.adapter import POLL_BURST
            want = -(-len(cmds) // POLL_BURST) if bursts else len(cmds)
            self.assertEqual(s.calls["reply"], want, f"bursts={bursts}")

    def test_a_reply_json_cannot_carry_becomes_an_error_reply_and_the_burst_goes_out(self):
        from vibesync_blender import sdk
        good = {"id": 1, "ok": True, "result": {"hash": "ab"}}
        bad = {"id": 2, "ok": True, "result": {"objects": [{"transform": {"translation": [float("nan"), 0, 0]}}]}}
        out = json.loads(sdk.encode_replies([good, bad, dict(good, id=3)]))
        self.assertEqual([r["id"] for r in out], [1, 2, 3])
        self.assertEqual(out[0], good)
        self.assertEqual((out[1]["ok"], out[1]["error"]["code"]), (False, "internal"))
        self.assertNotIn("result", out[1])

    def test_a_spent_budget_ends_the_tick_after_the_current_burst(self):
        fresh()
        from vibesync_blender.adapter import POLL_BURST
        s = FakeSession(self.commands(20))
        a = Adapter(s)
        self.assertEqual(a.pump(budget_s=0.0), POLL_BURST)
        self.assertEqual(len(s.replies), POLL_BURST)


class Rollback(unittest.TestCase):
    def test_rollback_restores_every_datablock_property(self):
        d = Driver(fresh())
        _, r = d.apply([
            op("create_object", id="root", name="Root", kind="empty"),
            op("create_object", id="box", name="Box", kind="mesh", primitive="cube", parent="root",
               transform={"translation": [0.5, 1, 0], "rotation": [0, 0, 0, 1], "scale": [1, 1, 1]}),
            op("create_object", id="lamp", name="Lamp", kind="light", primitive="area", parent="box"),
            op("create_object", id="ball", name="Ball", kind="mesh", primitive="uv_sphere"),
            op("set_material", id="box", base_color=[0.2, 0.4, 0.6, 1], roughness=0.25),
        ])
        self.assertTrue(r["ok"], r)
        d.cmd("commit", tid=d.tid)
        # An artist's detail the canonical model does not track: must survive too.
        bridge.tracked()["ball"].modifiers.new("Sub", "SUBSURF")
        before, before_hash = dump_all(), d.cmd("snapshot")["result"]["hash"]
        tid, r = d.apply([
            op("set_transform", id="box", translation=[9, 8, 7], rotation=[0.5, 0.5, 0.5, 0.5], scale=[2, 2, 2]),
            op("set_material", id="box", metallic=1, emission=[1, 1, 1], emission_strength=3),
            op("set_material", id="ball", roughness=0.9),
            op("rename_object", id="root", name="Renamed"),
            op("reparent_object", id="lamp", parent=None),
            op("delete_object", id="ball"),
            op("create_object", id="new", name="New", kind="camera", parent="root"),
        ])
        self.assertTrue(r["ok"], r)
        self.assertNotEqual(dump_all(), before)
        json.dumps(r["result"]["undo_token"])  # the token is plain JSON
        rb = d.cmd("rollback", tid=tid, undo_token=json.loads(json.dumps(r["result"]["undo_token"])))
        self.assertTrue(rb["ok"], rb)
        after = dump_all()
        self.assertEqual(sorted(after), sorted(before))
        for name in before:
            self.assertEqual(after[name], before[name], f"object {name} differs after rollback")
        self.assertEqual(d.cmd("snapshot")["result"]["hash"], before_hash)
        self.assertNotIn("VibeSync ball", bpy.data.materials, "a material created by the rolled-back tx is gone")

    def test_rollback_after_a_resync_is_refused_not_replayed(self):
        # A resync since the apply replaced the scene, so the token's `before`
        # may hold values of a change the host rolled back (the reference
        # engine's case, simulator seed 387): refused, and the resynced
        # scene stands until the host resyncs again.
        d = Driver(fresh())
        _, r = d.apply([op("create_object", id="box", name="Box", kind="mesh", primitive="cube")])
        self.assertTrue(r["ok"], r)
        d.cmd("commit", tid=d.tid)
        tid, r = d.apply([op("set_transform", id="box", translation=[1, 1, 1])])
        self.assertTrue(r["ok"], r)
        token = json.loads(json.dumps(r["result"]["undo_token"]))
        snap = d.cmd("snapshot")["result"]
        self.assertTrue(d.cmd("resync", objects=snap["objects"])["ok"])
        rb = d.cmd("rollback", tid=tid, undo_token=token)
        self.assertFalse(rb["ok"], rb)
        self.assertEqual(rb["error"]["code"], "undo-token-lost")
        self.assertIn("resync", rb["error"]["message"])
        self.assertEqual(d.cmd("snapshot")["result"]["hash"], snap["hash"], "the resynced scene stands")

    def test_failing_op_leaves_blender_untouched_and_script_errors_roll_back(self):
        d = Driver(fresh())
        d.apply([op("create_object", id="a", name="A", kind="mesh")])
        before = dump_all()
        _, r = d.apply([op("set_transform", id="a", translation=[1, 1, 1]), op("delete_object", id="zz")])
        self.assertEqual(r["error"]["code"], "no-such-object")
        self.assertEqual(dump_all(), before)
        _, r = d.apply([op("set_transform", id="a", translation=[1, 1, 1]),
                        op("run_script", language="python", code="import os\nos.getcwd()")])
        self.assertEqual(r["error"]["code"], "script-error", r)
        self.assertIn("may import only bpy and mathutils", r["error"]["message"])
        self.assertEqual(dump_all(), before)
        _, r = d.apply([op("run_script", language="python", code="open('/etc/passwd')")])
        self.assertEqual(r["error"]["code"], "script-error", r)
        _, r = d.apply([op("run_script", language="python",
                           code="import mathutils\nbpy.data.objects['A'].location = mathutils.Vector((0, 0, 5))")])
        self.assertTrue(r["ok"], r)
        self.assertEqual(bridge.tracked()["a"].location.z, 5)
        ops = d.a.push_edits()
        self.assertEqual(ops, [op("set_transform", id="a", translation=[0.0, 5.0, -0.0], rotation=[0.0, 0.0, -0.0, 1.0], scale=[1.0, 1.0, 1.0])],
                         "a script's change is reported like an edit")


class IdsAndEdits(unittest.TestCase):
    def test_id_survives_save_and_reload_and_duplicate_gets_a_new_id(self):
        d = Driver(fresh())
        d.apply([op("create_object", id="keep", name="Keep", kind="mesh"), op("set_material", id="keep", roughness=0.1)])
        path = os.path.join(tempfile.mkdtemp(), "scene.blend")
        bpy.ops.wm.save_as_mainfile(filepath=path)
        bpy.ops.wm.open_mainfile(filepath=path)
        a = Adapter()
        self.assertEqual(list(bridge.tracked()), ["keep"])
        self.assertAlmostEqual(bridge.read(bridge.tracked()["keep"])["material"]["roughness"], 0.1, places=6)
        o = bridge.tracked()["keep"]
        dup = o.copy()
        bpy.context.scene.collection.objects.link(dup)
        ops = a.push_edits()
        self.assertEqual(len(bridge.tracked()), 2)
        new_id = dup[bridge.ID]
        self.assertNotEqual(new_id, "keep")
        self.assertNotEqual(dup[bridge.MAT], o[bridge.MAT], "the copy owns its material")
        self.assertEqual([x["op"] for x in ops], ["create_object", "set_material"])
        self.assertEqual(ops[0]["args"]["id"], new_id)

    def test_artist_edit_becomes_canonical_change_ops(self):
        d = Driver(fresh())
        d.apply([op("create_object", id="c", name="C", kind="mesh")])
        o = bridge.tracked()["c"]
        o.location = (1.0, 2.0, 3.0)
        o.name = "Crate"
        bpy.context.view_layer.update()
        ops = d.a.push_edits()
        self.assertEqual(ops, [op("rename_object", id="c", name="Crate"),
                               op("set_transform", id="c", translation=[1.0, 3.0, -2.0], rotation=[0.0, 0.0, -0.0, 1.0], scale=[1.0, 1.0, 1.0])])
        self.assertEqual(d.a.push_edits(), [], "an edit is reported once")


INSTALL_SCRIPT = """
import sys, bpy, addon_utils
r = bpy.ops.extensions.package_install_files(filepath=sys.argv[-1], repo="user_default", enable_on_install=True)
assert r == {"FINISHED"}, r
assert "bl_ext.user_default.vibesync" in bpy.context.preferences.addons.keys()
assert hasattr(bpy.types, "VIBESYNC_PT_panel") and hasattr(bpy.ops.vibesync, "connect")
addon_utils.disable("bl_ext.user_default.vibesync")
assert not hasattr(bpy.types, "VIBESYNC_PT_panel"), "unregister removes the panel"
print("INSTALLED-AND-REMOVED")
"""


class Extension(unittest.TestCase):
    def test_zip_installs_registers_and_unregisters_through_blenders_extension_system(self):
        import subprocess

        sys.path.insert(0, os.path.join(HERE, ".."))
        import build_zip

        tmp = tempfile.mkdtemp()
        zpath = os.path.join(tmp, "vibesync.zip")
        build_zip.build(zpath)
        env = dict(os.environ, BLENDER_USER_RESOURCES=os.path.join(tmp, "user"))
        env.pop("VIBESYNC_PAIRING", None)
        out = subprocess.run([sys.executable, "-c", INSTALL_SCRIPT, zpath], env=env, capture_output=True, text=True, timeout=300)
        self.assertIn("INSTALLED-AND-REMOVED", out.stdout, out.stdout + out.stderr)


class Preview(unittest.TestCase):
    def test_preview_is_a_png_that_is_not_blank(self):
        d = Driver(fresh())
        d.apply([op("create_object", id="c", name="C", kind="mesh", primitive="uv_sphere"),
                 op("set_material", id="c", base_color=[0.9, 0.2, 0.1, 1], emission=[0.9, 0.2, 0.1], emission_strength=4)])
        r = d.cmd("preview", width=64, height=48, ids=["c"])
        self.assertTrue(r["ok"], r)
        w, h, bpp, rows = png_pixels(base64.b64decode(r["result"]["png_base64"]))
        self.assertEqual((w, h), (64, 48))
        values = {row[i:i + 3] for row in rows for i in range(0, len(row), bpp)}
        self.assertGreater(len(values), 20, "a blank render has (nearly) one colour")
        self.assertEqual([o.name for o in bpy.data.objects], ["C"], "the framing camera is removed")


if __name__ == "__main__":
    unittest.main()
