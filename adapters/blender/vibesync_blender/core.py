"""Engine-agnostic core of the Blender adapter: no ``bpy`` here.

It owns the three things that must agree byte for byte with the host
(``adapters/canonical`` is the Rust reference, ``docs/canonical-state.md`` the
spec): the canonical state hash, the Blender <-> canonical frame conversion,
and the op semantics of ``Scene::apply_all`` (validation, snapping,
all-or-nothing). The bpy glue (``bridge.py``) reads Blender into canonical
``SceneObject`` dicts, lets this module decide what the scene must become,
and writes the result back, so everything that can be checked without
Blender is checked without Blender (``tests/test_core.py``).

A SceneObject is the JSON dict of docs/adapter-api.md:
``{"id", "name", "kind", "parent", "transform": {"translation", "rotation",
"scale"}, "material": None | {...}}``.
"""

from __future__ import annotations

import copy
import hashlib
import math
import struct

DOMAIN = b"vibesync/state/v1"
DEFAULT_QUANTUM = 100000
I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)
KINDS = ("mesh", "empty", "camera", "light")
MESH_PRIMITIVES = ("cube", "uv_sphere", "plane", "cylinder", "cone", "torus")
LIGHT_PRIMITIVES = ("point", "sun", "spot", "area")


def identity_transform():
    return {"translation": [0.0, 0.0, 0.0], "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]}


def default_material():
    return {"base_color": [0.8, 0.8, 0.8, 1.0], "roughness": 0.5, "metallic": 0.0,
            "emission": [0.0, 0.0, 0.0], "emission_strength": 0.0}


# --- numbers -------------------------------------------------------------

def _num(v):
    """JSON number or the strings the test vectors use for non-finite values."""
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


def _round_half_away(p):
    """``f64::round``: halves away from zero, on the double itself."""
    a = abs(p)
    if a == math.inf:  # a finite value times the quantum can overflow; Rust keeps inf
        return p
    f = math.floor(a)
    if a - f >= 0.5:  # exact: a - floor(a) has no rounding error for doubles
        f += 1.0
    return -f if p < 0 else f


# Below this magnitude a scaled value's rounded step fits an i64; comparisons
# with NaN are false, so NaN and the infinities take the general path.
_FAST_LIMIT = 9.0e18


def quantize(v, steps=DEFAULT_QUANTUM):
    """The i64 step of ``v`` (docs/canonical-state.md, Quantisation)."""
    if type(v) is float:
        # The hot path (every hashed number): the general path below, inlined
        # for a finite double whose step fits an i64. Same arithmetic:
        # math.floor of a double is exact, so is ``a - f``.
        p = v * steps
        if -_FAST_LIMIT < p < _FAST_LIMIT:
            a = -p if p < 0 else p
            f = math.floor(a)
            if a - f >= 0.5:
                f += 1
            return -f if p < 0 else f
    v = _num(v)
    if math.isnan(v):
        return I64_MIN
    if v == math.inf:
        return I64_MAX
    if v == -math.inf:
        return I64_MIN + 1
    r = _round_half_away(v * float(steps))
    if r >= 9223372036854775808.0:
        return I64_MAX
    if r < -9223372036854775808.0:
        return I64_MIN
    return int(r)


def snap(v, steps=DEFAULT_QUANTUM):
    """Snap to the grid the host stores (``Quantum::snap``)."""
    if type(v) is float:
        # Hot path (every op's numbers), inlined like ``quantize``'s: the
        # same arithmetic as ``_round_half_away(v * steps) / steps``.
        p = v * steps
        if -_FAST_LIMIT < p < _FAST_LIMIT:
            a = -p if p < 0 else p
            f = math.floor(a)
            if a - f >= 0.5:
                f += 1
            return float(-f if p < 0 else f) / float(steps)
    v = _num(v)
    if not math.isfinite(v):
        return v
    return _round_half_away(v * float(steps)) / float(steps)


def snap_transform(t, steps=DEFAULT_QUANTUM):
    """``hash::snap_transform``: idempotent; a rotation whose snapped norm is
    within one grid step of 1 is kept as snapped, else it is normalised."""
    r = [_num(c) for c in t["rotation"]]
    s = [snap(c, steps) for c in r]
    ns = math.sqrt(sum(c * c for c in s))
    n = math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + r[3] * r[3])
    if abs(ns - 1.0) > (1.0 / float(steps)) * (1.0 + 1e-9) and math.isfinite(n) and n > 0.0:
        r = [c / n for c in r]
    return {"translation": [snap(c, steps) for c in t["translation"]],
            "rotation": [snap(c, steps) for c in r],
            "scale": [snap(c, steps) for c in t["scale"]]}


def snap_material(m, steps=DEFAULT_QUANTUM):
    return {"base_color": [snap(c, steps) for c in m["base_color"]],
            "roughness": snap(m["roughness"], steps), "metallic": snap(m["metallic"], steps),
            "emission": [snap(c, steps) for c in m["emission"]],
            "emission_strength": snap(m["emission_strength"], steps)}


# --- the state hash --------------------------------------------------------

def _wrap_neg(i):
    """Two's-complement negation: -i64::MIN stays i64::MIN."""
    return I64_MIN if i == I64_MIN else -i


def _str(s):
    b = s.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def _ints(vs):
    return struct.pack(">%dq" % len(vs), *vs)


def present_encoding(o, steps=DEFAULT_QUANTUM):
    """The bytes of one present object in a state encoding."""
    parts = [b"\x01"]
    for s in (o["id"], o["name"], o["kind"], o.get("parent") or ""):
        parts.append(_str(s))
    t = o["transform"]
    q = lambda vs: [quantize(v, steps) for v in vs]  # noqa: E731
    parts.append(_ints(q(t["translation"])))
    r = q(t["rotation"])
    x, y, z, w = r
    first = next((c for c in (x, y, z) if c != 0), 0)
    if w < 0 or (w == 0 and first < 0):
        r = [_wrap_neg(c) for c in r]
    parts.append(_ints(r))
    parts.append(_ints(q(t["scale"])))
    m = o.get("material")
    if m is None:
        parts.append(b"\x00")
    else:
        parts.append(b"\x01")
        parts.append(_ints(q(list(m["base_color"]) + [m["roughness"], m["metallic"]]
                             + list(m["emission"]) + [m["emission_strength"]])))
    return b"".join(parts)


def _header(steps, entries):
    return DOMAIN + struct.pack(">II", steps, entries)


def _sort_key(oid):
    return oid.encode("utf-8")


def scene_encoding(objects, steps=DEFAULT_QUANTUM):
    by_id = {o["id"]: o for o in objects}
    parts = [_header(steps, len(by_id))]
    for oid in sorted(by_id, key=_sort_key):
        parts.append(present_encoding(by_id[oid], steps))
    return b"".join(parts)


# ``object_set_encoding``'s memo keeps at most this many objects.
MEMO_LIMIT = 4096


def object_set_encoding(ids, lookup, steps=DEFAULT_QUANTUM, memo=None):
    """``lookup(id)`` returns the SceneObject or None (absent). ``memo``
    (id -> (object, bytes), kept by the caller) reuses an object's bytes
    when the object it is given equals the one they were computed from:
    a verify that reads back what the apply read back encodes nothing.
    Objects handed to a memo must not be mutated afterwards."""
    uniq = sorted(set(ids), key=_sort_key)
    parts = [_header(steps, len(uniq))]
    for oid in uniq:
        o = lookup(oid)
        if o is None:
            parts.append(b"\x00" + _str(oid))
            continue
        hit = memo.get(oid) if memo is not None else None
        if hit is not None and hit[0] == o:
            parts.append(hit[1])
            continue
        b = present_encoding(o, steps)
        if memo is not None:
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[oid] = (o, b)
        parts.append(b)
    return b"".join(parts)


def scene_hash(objects, steps=DEFAULT_QUANTUM):
    return hashlib.sha256(scene_encoding(objects, steps)).hexdigest()


def object_set_hash(ids, lookup, steps=DEFAULT_QUANTUM, memo=None):
    return hashlib.sha256(object_set_encoding(ids, lookup, steps, memo)).hexdigest()


# --- frames ------------------------------------------------------------------
# Blender is the canonical frame rotated +90 deg about X: signed permutations,
# so positions and scales convert exactly and a round trip is bit-exact.

def pos_to_blender(v):
    x, y, z = v
    return [x, -z, y]


def pos_from_blender(v):
    x, y, z = v
    return [x, z, -y]


def rot_to_blender(q):
    """Canonical (x, y, z, w) -> Blender's mathutils order (w, x, y, z)."""
    x, y, z, w = q
    return [w, x, -z, y]


def rot_from_blender(q):
    """Blender (w, x, y, z) -> canonical (x, y, z, w)."""
    w, x, y, z = q
    return [x, z, -y, w]


def scale_to_blender(s):
    return [s[0], s[2], s[1]]


def scale_from_blender(s):
    return [s[0], s[2], s[1]]


def transform_to_blender(t):
    """Canonical transform -> (location, rotation_quaternion wxyz, scale)."""
    return pos_to_blender(t["translation"]), rot_to_blender(t["rotation"]), scale_to_blender(t["scale"])


def transform_from_blender(location, quat_wxyz, scale):
    return {"translation": pos_from_blender(list(location)), "rotation": rot_from_blender(list(quat_wxyz)),
            "scale": scale_from_blender(list(scale))}


# --- op semantics (Scene::apply_all) ------------------------------------------

class OpError(Exception):
    """An op the scene refuses; ``code`` is the wire error code."""

    def __init__(self, code, message, index=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.index = index


def _vec(args, key, n, op):
    v = args.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != n:
        raise OpError("malformed", f"malformed `{op}` arguments: `{key}` must be an array of {n} numbers")
    try:
        return [_num(c) for c in v]
    except (TypeError, ValueError, KeyError):
        raise OpError("malformed", f"malformed `{op}` arguments: `{key}` must hold numbers") from None


def _scalar(args, key, op):
    v = args.get(key)
    if v is None:
        return None
    try:
        return _num(v)
    except (TypeError, ValueError, KeyError):
        raise OpError("malformed", f"malformed `{op}` arguments: `{key}` must be a number") from None


def _need_str(args, key, op):
    v = args.get(key)
    if not isinstance(v, str):
        raise OpError("malformed", f"malformed `{op}` arguments: missing string `{key}`")
    return v


class Scene:
    """Tracked objects by id, in the canonical frame (the host's model)."""

    def __init__(self, objects=(), steps=DEFAULT_QUANTUM, owned=False):
        """``owned``: the caller hands over ``objects`` (fresh dicts nobody
        else mutates), so they are not deep-copied; ``apply`` replaces the
        nested transform and material dicts rather than mutating them."""
        self.steps = steps
        self.objects = {o["id"]: (o if owned else copy.deepcopy(o)) for o in objects}

    def get(self, oid):
        return self.objects.get(oid)

    def descendants(self, oid):
        out, frontier = [], [oid]
        while frontier:
            p = frontier.pop()
            for o in self.objects.values():
                if o.get("parent") == p:
                    out.append(o["id"])
                    frontier.append(o["id"])
        return out

    def touched_by(self, op):
        name, args = op.get("op"), op.get("args") or {}
        if name in ("select", "run_script"):
            return []
        oid = args.get("id")
        if not isinstance(oid, str):
            return []
        ids = [oid]
        if name == "delete_object":
            ids += self.descendants(oid)
        return ids

    def _need(self, oid):
        if oid not in self.objects:
            raise OpError("no-such-object", f"object `{oid}` does not exist; read the scene and use an existing id")

    def _check_parent(self, oid, parent):
        if parent is None:
            return
        if parent not in self.objects:
            raise OpError("no-such-object", f"parent `{parent}` of `{oid}` does not exist")
        cur = parent
        while cur is not None:
            if cur == oid:
                raise OpError("cycle", f"reparenting `{oid}` under `{parent}` would create a cycle")
            cur = (self.objects.get(cur) or {}).get("parent")

    def apply(self, op):
        name, args = op.get("op"), op.get("args")
        if not isinstance(args, dict):
            raise OpError("malformed", f"op `{name}` has no `args` object")
        s = self.steps
        if name == "create_object":
            oid = args.get("id")
            if not isinstance(oid, str):
                raise OpError("malformed", "`create_object` needs an id before it can be applied (the host assigns one)")
            kind = args.get("kind")
            if kind not in KINDS:
                raise OpError("malformed", f"malformed `create_object` arguments: `kind` must be one of {', '.join(KINDS)}")
            prim = args.get("primitive")
            allowed = MESH_PRIMITIVES if kind == "mesh" else LIGHT_PRIMITIVES if kind == "light" else ()
            if prim is not None and prim not in allowed:
                raise OpError("malformed", f"malformed `create_object` arguments: primitive `{prim}` is not one of {allowed} for kind `{kind}`")
            nm = _need_str(args, "name", "create_object")
            if oid in self.objects:
                raise OpError("already-exists", f"object `{oid}` already exists; choose a new id or omit it to let the host assign one")
            parent = args.get("parent")
            self._check_parent(oid, parent)
            t = args.get("transform") or identity_transform()
            t = {"translation": _vec(t, "translation", 3, name) or [0.0, 0.0, 0.0],
                 "rotation": _vec(t, "rotation", 4, name) or [0.0, 0.0, 0.0, 1.0],
                 "scale": _vec(t, "scale", 3, name) or [1.0, 1.0, 1.0]}
            self.objects[oid] = {"id": oid, "name": nm, "kind": kind, "parent": parent,
                                 "transform": snap_transform(t, s), "material": None}
        elif name == "delete_object":
            oid = _need_str(args, "id", name)
            self._need(oid)
            for d in self.descendants(oid):
                del self.objects[d]
            del self.objects[oid]
        elif name == "rename_object":
            oid = _need_str(args, "id", name)
            nm = _need_str(args, "name", name)
            self._need(oid)
            self.objects[oid]["name"] = nm
        elif name == "reparent_object":
            oid = _need_str(args, "id", name)
            parent = args.get("parent")
            self._need(oid)
            self._check_parent(oid, parent)
            self.objects[oid]["parent"] = parent
        elif name == "set_transform":
            oid = _need_str(args, "id", name)
            tr, ro, sc = _vec(args, "translation", 3, name), _vec(args, "rotation", 4, name), _vec(args, "scale", 3, name)
            self._need(oid)
            t = dict(self.objects[oid]["transform"])
            if tr is not None:
                t["translation"] = tr
            if ro is not None:
                t["rotation"] = ro
            if sc is not None:
                t["scale"] = sc
            self.objects[oid]["transform"] = snap_transform(t, s)
        elif name == "set_material":
            oid = _need_str(args, "id", name)
            vals = {"base_color": _vec(args, "base_color", 4, name), "roughness": _scalar(args, "roughness", name),
                    "metallic": _scalar(args, "metallic", name), "emission": _vec(args, "emission", 3, name),
                    "emission_strength": _scalar(args, "emission_strength", name)}
            self._need(oid)
            m = dict(self.objects[oid].get("material") or default_material())
            m.update({k: v for k, v in vals.items() if v is not None})
            self.objects[oid]["material"] = snap_material(m, s)
        elif name == "select":
            ids = args.get("ids")
            if not isinstance(ids, list):
                raise OpError("malformed", "malformed `select` arguments: `ids` must be an array of ids")
            for oid in ids:
                self._need(oid)
        elif name == "run_script":
            _need_str(args, "code", name)
        else:
            raise OpError("malformed", f"unknown op `{name}`")

    def apply_all(self, ops):
        """All or nothing: a new Scene, or OpError with ``index`` set."""
        nxt = Scene(self.objects.values(), self.steps)
        for i, op in enumerate(ops):
            try:
                nxt.apply(op)
            except OpError as e:
                e.index = i
                raise
        return nxt

    def hash(self):
        return scene_hash(self.objects.values(), self.steps)

    def hash_of(self, ids):
        return object_set_hash(ids, self.objects.get, self.steps)


def _material_steps(m):
    """A material as the hash sees it (float32 read-backs compare equal)."""
    if m is None:
        return None
    return [quantize(v) for v in list(m["base_color"]) + [m["roughness"], m["metallic"]] + list(m["emission"]) + [m["emission_strength"]]]


def diff_ops(before, after):
    """Canonical ops that turn tracked state ``before`` into ``after`` (both
    ``{id: SceneObject}``): what an artist's edit looks like to the host.
    Creations come parents first, deletions only for roots of deleted trees."""
    ops = []
    created = [oid for oid in after if oid not in before]
    done = set(before)
    while created:
        progressed = False
        for oid in list(created):
            p = after[oid].get("parent")
            if p is None or p in done:
                o = after[oid]
                args = {"id": oid, "name": o["name"], "kind": o["kind"], "transform": o["transform"]}
                if p is not None:
                    args["parent"] = p
                ops.append({"op": "create_object", "args": args})
                if o.get("material") is not None:
                    ops.append({"op": "set_material", "args": dict(o["material"], id=oid)})
                done.add(oid)
                created.remove(oid)
                progressed = True
        if not progressed:
            break
    for oid, b in before.items():
        a = after.get(oid)
        if a is None:
            if b.get("parent") is None or b["parent"] in after:
                ops.append({"op": "delete_object", "args": {"id": oid}})
            continue
        if a["name"] != b["name"]:
            ops.append({"op": "rename_object", "args": {"id": oid, "name": a["name"]}})
        if a.get("parent") != b.get("parent"):
            ops.append({"op": "reparent_object", "args": {"id": oid, "parent": a.get("parent")}})
        ta, tb = a["transform"], b["transform"]
        if any([quantize(v) for v in ta[k]] != [quantize(v) for v in tb[k]] for k in ("translation", "rotation", "scale")):
            # The whole transform, not only the changed parts: the host
            # re-serialises an engine's op with absent fields as `null`,
            # which its validation policy refuses (see docs/blender-adapter.md).
            ops.append({"op": "set_transform", "args": dict(ta, id=oid)})
        if a.get("material") is not None and _material_steps(a["material"]) != _material_steps(b.get("material")):
            ops.append({"op": "set_material", "args": dict(a["material"], id=oid)})
    return ops
