"""The adapter's main-thread half: one command in, one reply out
(``handle``), and the pump that feeds it from the SDK within a time budget.

Commands are those of docs/adapter-api.md. ``apply`` reads the tracked
objects, lets the pure core (``core.Scene.apply_all``) validate and compute
the result of every op (all or nothing, snapped like the host), then writes
the difference into Blender, recording an undo token of Blender-native values
first. Hashes in replies are computed from what Blender reads back, never
from what was asked.

Artist edits: a ``depsgraph_update_post`` handler only marks the scene
dirty; the pump, once the scene has been quiet for ``EDIT_DEBOUNCE_S``,
diffs the tracked objects against what the host last agreed to and pushes
the difference as a ``change`` event.
"""

from __future__ import annotations

import base64
import builtins
import collections
import os
import tempfile
import time
import uuid

import bpy
import mathutils

from . import bridge, core

EDIT_DEBOUNCE_S = 0.15
PUMP_BUDGET_S = 0.004
# Commands taken from the SDK with one call (all handled in the same tick,
# so a tick may overrun its budget by up to this many commands).
POLL_BURST = 8
# A Blender undo push snapshots the whole file (~12 ms for an empty scene in
# bpy 5.0.1): transactions finished within this window share one step.
UNDO_COALESCE_S = 0.2
# Ops that read and write only the object they name: `apply` models just
# those objects instead of reading every tracked one.
LOCAL_OPS = frozenset(("set_transform", "set_material", "rename_object"))
SCRIPT_MODULES = ("bpy", "mathutils")
SCRIPT_DROPPED_BUILTINS = ("open", "exec", "eval", "compile", "input", "breakpoint", "__loader__", "__spec__")


def ok(cid, result):
    return {"id": cid, "ok": True, "result": result}


def err(cid, code, message):
    return {"id": cid, "ok": False, "error": {"code": code, "message": message}}


class CommandFailed(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _script_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level or name.split(".")[0] not in SCRIPT_MODULES:
        raise ImportError(f"run_script may import only {' and '.join(SCRIPT_MODULES)}, not `{name}`")
    return builtins.__import__(name, globals, locals, fromlist, level)


def run_script(code):
    """Run an (already firewall-approved) script with only ``bpy`` and
    ``mathutils`` in scope and imports limited to them. Defence in depth, not
    a sandbox: ``bpy`` itself can do anything Blender can."""
    safe = {k: v for k, v in vars(builtins).items() if k not in SCRIPT_DROPPED_BUILTINS}
    safe["__import__"] = _script_import
    ns = {"__builtins__": safe, "bpy": bpy, "mathutils": mathutils, "__name__": "vibesync_script"}
    exec(compile(code, "<vibesync run_script>", "exec"), ns)  # noqa: S102 - the host's firewall allowed it


class Adapter:
    def __init__(self, session=None, steps=core.DEFAULT_QUANTUM):
        self.session = session
        self.steps = steps
        self.frozen = None
        self.tokens = {}  # tid -> undo token (until commit / rollback)
        self.known = bridge.read_all()  # what the host last agreed to
        self.ptrs = {oid: o.as_pointer() for oid, o in bridge.tracked().items()}
        self.names = {}  # id -> Blender name: bridge.lookup's cache
        self.encoded = {}  # core.object_set_hash's memo (fresh read-backs only)
        self.dirty_at = None
        self.history = collections.deque(maxlen=12)
        self.last_pump_ms = 0.0
        self.last_pump_at = 0.0
        self.status = {"state": "closed" if session is None else "connecting", "panic": False}
        self._status_at = 0.0
        self.undo_steps = 0
        self.undo_pending = []  # labels of finished transactions not yet on Blender's undo stack
        self.undo_pending_since = 0.0
        self.events_pushed = 0
        # Main-thread cost accounting (benchmarks): seconds inside `handle`
        # by command kind, and seconds of pump ticks that handled commands
        # (handle + SDK poll/reply + JSON).
        self.handle_s = collections.Counter()
        self.handled = collections.Counter()
        self.pump_busy_s = 0.0
        self.undo_s = 0.0
        self.edit_passes = 0
        self.edit_s = 0.0
        self._cpu0 = (time.process_time(), time.thread_time())

    # --- the pump -------------------------------------------------------------

    def pump(self, budget_s=PUMP_BUDGET_S):
        """Apply waiting commands, a burst at a time, until the budget is
        spent; push due artist edits. Returns how many commands were
        handled. Every call polls the SDK at least once, which is the
        main-thread liveness signal."""
        t0 = time.perf_counter()
        n = 0
        while self.session is not None:
            # A burst at a time: one SDK call and one JSON parse for up to
            # POLL_BURST commands, their replies handed back together.
            cmds = self.session.poll_many(POLL_BURST)
            if not cmds:
                break
            self.session.reply_many([self.handle(cmd) for cmd in cmds])
            n += len(cmds)
            if time.perf_counter() - t0 >= budget_s:
                break
        if self.dirty_at is not None and time.monotonic() - self.dirty_at >= EDIT_DEBOUNCE_S:
            t1 = time.perf_counter()
            self.push_edits()
            self.edit_s += time.perf_counter() - t1
            self.edit_passes += 1
        now = time.monotonic()
        if self.undo_pending and now - self.undo_pending_since >= UNDO_COALESCE_S:
            self.flush_undo()
        if self.session is not None and now - self._status_at > 0.5:
            self._status_at = now
            self.status = self.session.status()
        self.last_pump_ms = (time.perf_counter() - t0) * 1000.0
        if n:
            self.pump_busy_s += self.last_pump_ms / 1000.0
        self.last_pump_at = now
        return n

    def mark_dirty(self):
        self.dirty_at = time.monotonic()

    def push_edits(self):
        """Diff Blender against what the host knows; push it as a change event."""
        self.dirty_at = None
        for o in bridge.duplicates(self.ptrs):
            o[bridge.ID] = f"blender-{uuid.uuid4().hex[:12]}"
            mat = o.get(bridge.MAT)
            if mat is not None:  # a copy must not share the managed material
                copy = mat.copy()
                copy.name = f"VibeSync {o[bridge.ID]}"
                o[bridge.MAT] = copy
                for s in o.material_slots:
                    if s.material == mat:
                        s.link = "OBJECT"
                        s.material = copy
        current = bridge.read_all()
        self.ptrs = {oid: o.as_pointer() for oid, o in bridge.tracked().items()}
        ops = core.diff_ops(self.known, current)
        if not ops:
            return []
        self.known = current
        if self.session is not None:
            self.session.push_event({"kind": "change", "ops": ops})
        self.events_pushed += 1
        self.history.appendleft({"tid": None, "kind": "artist edit", "ok": True, "detail": f"{len(ops)} op(s)"})
        return ops

    # --- commands --------------------------------------------------------------

    def handle(self, cmd):
        cid, kind = cmd.get("id"), cmd.get("kind")
        t0 = time.perf_counter()
        try:
            fn = getattr(self, "cmd_" + str(kind), None)
            if fn is None:
                raise CommandFailed("unsupported", f"command kind `{kind}` is not known to the Blender adapter")
            reply = ok(cid, fn(cmd))
        except CommandFailed as e:
            reply = err(cid, e.code, str(e))
        except Exception as e:  # noqa: BLE001 - a bpy failure must become a reply, not kill the pump
            reply = err(cid, "internal", f"{kind}: {type(e).__name__}: {e}")
        dt = time.perf_counter() - t0
        self.handle_s[kind] += dt
        self.handled[kind] += 1
        if kind not in ("verify", "snapshot"):
            self.history.appendleft({"tid": cmd.get("tid"), "kind": kind, "ok": reply["ok"],
                                     "detail": "" if reply["ok"] else reply["error"]["code"],
                                     "ms": round(dt * 1000.0, 2)})
        return reply

    def stats(self):
        """Main-thread cost so far: commands by kind, seconds in ``handle``,
        seconds of pump ticks that handled commands, undo steps pushed, edit
        passes run (diffs of every tracked object against the host's view),
        and CPU seconds of this process (every thread: the SDK's network
        thread too) and of the calling (main) thread since the adapter
        started."""
        return {"handled": dict(self.handled), "handle_s": {k: round(v, 4) for k, v in self.handle_s.items()},
                "pump_busy_s": round(self.pump_busy_s, 4), "undo_steps": self.undo_steps,
                "undo_s": round(self.undo_s, 4), "edit_passes": self.edit_passes,
                "edit_s": round(self.edit_s, 4), "cpu_process_s": round(time.process_time() - self._cpu0[0], 4),
                "cpu_main_s": round(time.thread_time() - self._cpu0[1], 4)}

    def _hash_of(self, ids, by_id=None):
        by_id = bridge.tracked() if by_id is None else by_id
        return core.object_set_hash(ids, lambda i: bridge.read(by_id[i]) if i in by_id else None, self.steps,
                                    self.encoded)

    def cmd_apply(self, cmd):
        if self.frozen is not None:
            raise CommandFailed("frozen", f"engine is frozen: {self.frozen}")
        tid, ops = cmd["tid"], cmd.get("ops") or []
        if all(op.get("op") in LOCAL_OPS for op in ops):
            # Each op reads and writes only its own object: the objects it
            # names are all the model needs (same verdicts as the full scene).
            ids = {(op.get("args") or {}).get("id") for op in ops if isinstance(op.get("args"), dict)}
            by_id = bridge.lookup([i for i in ids if isinstance(i, str)], self.names)
        else:
            by_id = bridge.tracked()
        before = {oid: bridge.read(o) for oid, o in by_id.items()}
        # Shallow copies: Scene.apply replaces nested dicts, never mutates them.
        scene = core.Scene([dict(o) for o in before.values()], self.steps, owned=True)
        touched, primitives, scripts, selects = [], {}, [], []
        try:
            for i, op in enumerate(ops):
                for t in scene.touched_by(op):
                    if t not in touched:
                        touched.append(t)
                if op.get("op") == "create_object":
                    primitives[op["args"].get("id")] = op["args"].get("primitive")
                if op.get("op") == "select":
                    selects.append(op["args"])
                if op.get("op") == "run_script":
                    if (op["args"].get("language") or "python") != "python":
                        raise core.OpError("unsupported", f"Blender runs python scripts, not `{op['args'].get('language')}`", i)
                    scripts.append(op["args"]["code"])
                try:
                    scene.apply(op)
                except core.OpError as e:
                    e.index = i
                    raise
        except core.OpError as e:
            name = ops[e.index].get("op") if e.index is not None else "?"
            raise CommandFailed(e.code, f"op {e.index} ({name}): {e.message}") from None
        after = scene.objects
        # Objects a script may touch are unknown in advance: record them all.
        recorded = list(by_id) if scripts else [t for t in touched if t in by_id]
        token = {"tid": tid, "before": [{"id": i, "native": bridge.native(by_id[i])} for i in recorded],
                 "created": [], "deleted": []}
        self.tokens[tid] = token
        try:
            for t in touched:
                if t not in before and t in after:
                    o = bridge.create(dict(after[t], parent=None, material=None), primitives.get(t))
                    token["created"].append(t)
                    by_id[t] = o
            for t in touched:
                if t in after:
                    bridge.write(by_id[t], after[t], by_id, before.get(t))
            for t in touched:
                if t in before and t not in after:
                    token["deleted"].append(bridge.soft_delete(by_id.pop(t)))
            for sel in selects:
                select(sel.get("ids") or [], bool(sel.get("frame")))
            for i, code in enumerate(scripts):
                try:
                    run_script(code)
                except Exception as e:  # noqa: BLE001
                    raise CommandFailed("script-error", f"run_script {i}: {type(e).__name__}: {e}") from None
        except Exception:
            self._restore(token)
            self.tokens.pop(tid, None)
            raise
        # The host now believes `after`; what a script changed beyond it is
        # found by the edit pass and reported as an engine edit.
        for t in touched:
            if t in after:
                self.known[t] = after[t]
                if t in by_id:
                    self.names[t] = by_id[t].name
            else:
                self.known.pop(t, None)
        if scripts:
            self.ptrs = {oid: o.as_pointer() for oid, o in bridge.tracked().items()}
            self.mark_dirty()
            by_id = None  # a script may have changed anything
        elif token["created"] or token["deleted"]:
            self.ptrs = {oid: o.as_pointer() for oid, o in by_id.items()}
        return {"undo_token": token, "hash": self._hash_of(touched, by_id), "touched": touched}

    def cmd_verify(self, cmd):
        ids = cmd.get("ids") or []
        by_id = bridge.lookup(ids, self.names)
        reads = {i: bridge.read(by_id[i]) for i in ids if i in by_id}
        return {"hash": core.object_set_hash(ids, reads.get, self.steps, self.encoded),
                "objects": [reads[i] for i in ids if i in reads]}

    def _restore(self, token):
        """Undo a transaction from its token. Raises CommandFailed when a
        datablock the token needs is gone (e.g. Blender restarted)."""
        by_id = bridge.tracked()
        for t in token.get("created", []):
            if t in by_id:
                bridge.remove_created(by_id.pop(t))
        for entry in token.get("deleted", []):
            if not bridge.undelete(entry):
                raise CommandFailed("undo-token-lost", f"deleted object `{entry.get('blender_name')}` is no longer kept by Blender")
        by_id = bridge.tracked()
        for b in token.get("before", []):
            if b["id"] in by_id:
                bridge.restore_name(by_id[b["id"]], b["native"])
        for b in token.get("before", []):
            o = by_id.get(b["id"])
            if o is None or not bridge.restore(o, b["native"]):
                raise CommandFailed("undo-token-lost", f"object `{b['id']}` cannot be restored: its datablock is gone")

    def cmd_rollback(self, cmd):
        tid, token = cmd["tid"], cmd.get("undo_token")
        # Only an apply this adapter still remembers can be undone from its
        # token: a resync (or a restart) since then replaced the scene, and
        # the token's `before` may hold what a later-rolled-back apply left
        # behind. The host resyncs on `undo-token-lost`.
        if tid not in self.tokens:
            raise CommandFailed(
                "undo-token-lost",
                f"no undo record for tid {tid} here (the engine was resynced or restarted since it applied); "
                "resync this engine from the host")
        if not isinstance(token, dict) or "before" not in token:
            raise CommandFailed("undo-token-lost", f"undo token of tid {tid} has no `before` list")
        self._restore(token)
        self.tokens.pop(tid, None)
        self.known = bridge.read_all()
        self.ptrs = {oid: o.as_pointer() for oid, o in bridge.tracked().items()}
        self._undo_push(f"rollback tid {tid}")
        return {}

    def cmd_commit(self, cmd):
        if self.frozen is not None:
            raise CommandFailed("frozen", f"engine is frozen: {self.frozen}")
        token = self.tokens.pop(cmd["tid"], None)
        for entry in (token or {}).get("deleted", []):
            bridge.purge(entry)
        self._undo_push(f"tid {cmd['tid']}")
        return {}

    def _undo_push(self, label):
        """Queue a finished transaction for Blender's undo stack; the pump
        pushes it (with any others finished in the same window) as one step."""
        if not self.undo_pending:
            self.undo_pending_since = time.monotonic()
        self.undo_pending.append(label)

    def flush_undo(self):
        labels, self.undo_pending = self.undo_pending, []
        if labels and bpy.ops.ed.undo_push.poll():
            msg = labels[0] if len(labels) == 1 else f"{labels[0]} .. {labels[-1]} ({len(labels)} transactions)"
            t0 = time.perf_counter()
            bpy.ops.ed.undo_push(message=f"VibeSync {msg}")
            self.undo_s += time.perf_counter() - t0
            self.undo_steps += 1

    def cmd_snapshot(self, cmd):
        objs = bridge.read_all()
        self.known = objs
        return {"hash": core.scene_hash(objs.values(), self.steps), "objects": list(objs.values())}

    def cmd_resync(self, cmd):
        want = {}
        for o in cmd.get("objects") or []:
            o = dict(o, transform=core.snap_transform(o["transform"], self.steps))
            if o.get("material") is not None:
                o["material"] = core.snap_material(o["material"], self.steps)
            want[o["id"]] = o
        by_id = bridge.tracked()
        for oid in [i for i in by_id if i not in want]:
            bridge.remove_created(by_id.pop(oid))
        bridge.purge_all_deleted()
        for oid, o in want.items():
            if oid not in by_id:
                by_id[oid] = bridge.create(dict(o, parent=None, material=None), None)
        for oid, o in want.items():
            bridge.write(by_id[oid], o, by_id)
        self.tokens.clear()
        self.known = bridge.read_all()
        self.ptrs = {oid: o.as_pointer() for oid, o in bridge.tracked().items()}
        return {"hash": core.scene_hash(self.known.values(), self.steps)}

    def cmd_freeze(self, cmd):
        self.frozen = cmd.get("reason") or "PANIC"
        return {}

    def cmd_thaw(self, cmd):
        self.frozen = None
        return {}

    def cmd_preview(self, cmd):
        w, h = int(cmd.get("width") or 160), int(cmd.get("height") or 120)
        if not (1 <= w <= 1024 and 1 <= h <= 1024):
            raise CommandFailed("malformed", f"preview size {w}x{h} is outside 1..1024; ask for a small preview")
        return {"png_base64": base64.b64encode(render_preview(w, h, cmd.get("ids"))).decode("ascii")}


def select(ids, frame):
    """Selection and framing (op ``select``, not tracked state). Framing
    needs a 3D viewport; headless Blender has none, so it is skipped there."""
    by_id = bridge.tracked()
    bpy.context.view_layer.update()  # objects linked this tick get their bases
    for o in bpy.context.view_layer.objects:
        o.select_set(o.get(bridge.ID) in ids)
    if ids and ids[0] in by_id:
        bpy.context.view_layer.objects.active = by_id[ids[0]]
    if frame and bpy.context.window_manager.windows:
        for win in bpy.context.window_manager.windows:
            for area in win.screen.areas:
                if area.type == "VIEW_3D":
                    region = next(r for r in area.regions if r.type == "WINDOW")
                    with bpy.context.temp_override(window=win, area=area, region=region):
                        bpy.ops.view3d.view_selected()
                    return True
    return False


def render_preview(width, height, ids=None):
    """A small PNG: Cycles on the CPU at 8 samples, from the active camera,
    or from a temporary camera framing ``ids`` (or every tracked object)."""
    import addon_utils

    addon_utils.enable("cycles", default_set=False)
    scene = bpy.context.scene
    r = scene.render
    saved = (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
             r.image_settings.file_format, scene.camera)
    temp_cam = None
    path = os.path.join(tempfile.mkdtemp(prefix="vibesync-preview-"), "preview.png")
    try:
        r.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = 8
        scene.cycles.use_denoising = False
        r.resolution_x, r.resolution_y, r.resolution_percentage = width, height, 100
        r.image_settings.file_format = "PNG"
        r.filepath = path
        if ids or scene.camera is None:
            temp_cam = _framing_camera(ids)
            scene.camera = temp_cam
        bpy.ops.render.render(write_still=True)
        with open(path, "rb") as f:
            return f.read()
    finally:
        (r.engine, r.resolution_x, r.resolution_y, r.resolution_percentage, r.filepath,
         r.image_settings.file_format, scene.camera) = saved
        if temp_cam is not None:
            data = temp_cam.data
            bpy.data.objects.remove(temp_cam, do_unlink=True)
            bpy.data.cameras.remove(data)
        if os.path.exists(path):
            os.remove(path)
        os.rmdir(os.path.dirname(path))


def _framing_camera(ids):
    by_id = bridge.tracked()
    objs = [by_id[i] for i in (ids or by_id) if i in by_id] or list(bpy.context.scene.objects)
    pts = [o.matrix_world @ mathutils.Vector(c) for o in objs for c in (o.bound_box if o.type == "MESH" else [(0, 0, 0)])]
    lo = mathutils.Vector([min(p[i] for p in pts) for i in range(3)]) if pts else mathutils.Vector()
    hi = mathutils.Vector([max(p[i] for p in pts) for i in range(3)]) if pts else mathutils.Vector()
    center, radius = (lo + hi) / 2, max((hi - lo).length / 2, 0.5)
    cam = bpy.data.objects.new("VibeSync preview camera", bpy.data.cameras.new("VibeSync preview camera"))
    bpy.context.scene.collection.objects.link(cam)
    direction = mathutils.Vector((1.0, -1.0, 0.7)).normalized()
    cam.location = center + direction * radius * 3.2
    cam.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    bpy.context.view_layer.update()
    return cam
