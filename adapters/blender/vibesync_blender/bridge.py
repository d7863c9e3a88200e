"""The bpy glue: reads Blender objects as canonical SceneObjects and writes
canonical state back, with exact undo tokens.

Conventions this module owns (docs/blender-adapter.md explains why):

* A tracked object carries its VibeSync id in the custom property
  ``vibesync_id`` (saved in the .blend; a duplicate that copies it is given a
  fresh id by the adapter).
* Managed objects use ``rotation_mode = 'QUATERNION'`` and an identity
  ``matrix_parent_inverse``, so ``location / rotation_quaternion / scale``
  are the canonical local transform in Blender's frame.
* The canonical name is kept in ``vibesync_name`` next to the name Blender
  gave the object (``vibesync_bname``; Blender makes names unique and caps
  them at 63 bytes). A Blender name that differs from ``vibesync_bname`` is
  an artist's rename.
* The managed material is an ID property ``vibesync_material`` (and, for
  meshes, the object-linked material slot 0) using a Principled BSDF.
* ``delete_object`` unlinks the object and keeps it (fake user) until the
  transaction commits, so a rollback restores the very same datablock
  (mesh, modifiers and all), not a look-alike.
"""

from __future__ import annotations

import math

import bpy
import bmesh
import mathutils

from . import core

ID = "vibesync_id"
NAME = "vibesync_name"
BNAME = "vibesync_bname"
MAT = "vibesync_material"
DELETED = "vibesync_deleted_id"

KIND_OF_TYPE = {"MESH": "mesh", "EMPTY": "empty", "CAMERA": "camera", "LIGHT": "light"}


def _f(v):
    return [float(c) for c in v]


# --- reading -----------------------------------------------------------------

def tracked():
    """``{id: object}`` of every live tracked object (first one per id)."""
    out = {}
    for o in bpy.data.objects:
        oid = o.get(ID)
        if isinstance(oid, str) and oid not in out:
            out[oid] = o
    return out


def lookup(ids, names):
    """``{id: object}`` for those of ``ids`` that are tracked, found through
    ``names`` (id -> Blender name, a cache the caller keeps; refreshed in
    place): a name lookup per id instead of a scan of every object. Nothing
    is held across calls but names, so Blender's own undo (which frees and
    reallocates datablocks) cannot leave a dangling reference here. A name
    that is gone or now carries another id (renamed, deleted, undone) falls
    back to one ``tracked()`` scan, which also refreshes ``names``."""
    objects, out = bpy.data.objects, {}
    for i in ids:
        n = names.get(i)
        o = objects.get(n) if n is not None else None
        if o is None or o.get(ID) != i:
            break
        out[i] = o
    else:
        return out
    by_id = tracked()
    names.clear()
    names.update((k, o.name) for k, o in by_id.items())
    return {i: by_id[i] for i in ids if i in by_id}


def duplicates(known_ptrs):
    """Objects that share an id with another one and are not the object the
    adapter knows under that id (``known_ptrs``: id -> as_pointer()): copies
    an artist made with Shift+D / Alt+D."""
    seen, dups = {}, []
    for o in bpy.data.objects:
        oid = o.get(ID)
        if isinstance(oid, str):
            seen.setdefault(oid, []).append(o)
    for oid, objs in seen.items():
        if len(objs) > 1:
            keep = next((o for o in objs if o.as_pointer() == known_ptrs.get(oid)), objs[0])
            dups.extend(o for o in objs if o is not keep)
    return dups


def _principled(mat):
    if mat is None or mat.node_tree is None:
        return None
    for n in mat.node_tree.nodes:
        if n.type == "BSDF_PRINCIPLED":
            return n
    return None


def _emission_input(node):
    return node.inputs.get("Emission Color") or node.inputs.get("Emission")


def read_material(mat):
    n = _principled(mat)
    if n is None:
        return core.default_material()
    return {"base_color": _f(n.inputs["Base Color"].default_value), "roughness": float(n.inputs["Roughness"].default_value),
            "metallic": float(n.inputs["Metallic"].default_value),
            "emission": _f(_emission_input(n).default_value)[:3],
            "emission_strength": float(n.inputs["Emission Strength"].default_value)}


def canonical_name(o):
    if o.get(NAME) is not None and o.name == o.get(BNAME):
        return o[NAME]
    return o.name


def rotation_wxyz(o):
    if o.rotation_mode == "QUATERNION":
        return _f(o.rotation_quaternion)
    if o.rotation_mode == "AXIS_ANGLE":
        a = o.rotation_axis_angle
        return _f(mathutils.Quaternion(mathutils.Vector(a[1:]), a[0]))
    return _f(o.rotation_euler.to_quaternion())


def read(o):
    """The canonical SceneObject of a tracked Blender object."""
    p = o.parent
    mat = o.get(MAT)
    return {"id": o[ID], "name": canonical_name(o), "kind": KIND_OF_TYPE.get(o.type, "empty"),
            "parent": p.get(ID) if p is not None and isinstance(p.get(ID), str) else None,
            "transform": core.transform_from_blender(_f(o.location), rotation_wxyz(o), _f(o.scale)),
            "material": None if mat is None else read_material(mat)}


def read_all():
    return {oid: read(o) for oid, o in tracked().items()}


# --- writing -----------------------------------------------------------------

def _scene_collection():
    return bpy.context.scene.collection


def _torus_mesh(name, major=1.0, minor=0.25, seg=48, ring=12):
    me = bpy.data.meshes.new(name)
    verts, faces = [], []
    for i in range(seg):
        u = 2 * math.pi * i / seg
        for j in range(ring):
            v = 2 * math.pi * j / ring
            r = major + minor * math.cos(v)
            verts.append((r * math.cos(u), r * math.sin(u), minor * math.sin(v)))
    for i in range(seg):
        for j in range(ring):
            a, b = i * ring + j, ((i + 1) % seg) * ring + j
            c, d = ((i + 1) % seg) * ring + (j + 1) % ring, i * ring + (j + 1) % ring
            faces.append((a, b, c, d))
    me.from_pydata(verts, [], faces)
    return me


def _mesh(name, primitive):
    if primitive == "torus":
        return _torus_mesh(name)
    bm = bmesh.new()
    if primitive in (None, "cube"):
        bmesh.ops.create_cube(bm, size=2.0)
    elif primitive == "uv_sphere":
        bmesh.ops.create_uvsphere(bm, u_segments=32, v_segments=16, radius=1.0)
    elif primitive == "plane":
        bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=1.0)
    elif primitive == "cylinder":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=1.0, radius2=1.0, depth=2.0)
    elif primitive == "cone":
        bmesh.ops.create_cone(bm, cap_ends=True, segments=32, radius1=1.0, radius2=0.0, depth=2.0)
    me = bpy.data.meshes.new(name)
    bm.to_mesh(me)
    bm.free()
    return me


def _data_for(kind, primitive, name):
    if kind == "mesh":
        return _mesh(name, primitive)
    if kind == "camera":
        return bpy.data.cameras.new(name)
    if kind == "light":
        return bpy.data.lights.new(name, type=(primitive or "point").upper())
    return None


def create(state, primitive):
    """A new Blender object for a canonical ``create_object`` result."""
    data = _data_for(state["kind"], primitive, state["name"])
    o = bpy.data.objects.new(state["name"], data)
    _scene_collection().objects.link(o)
    o[ID] = state["id"]
    o.rotation_mode = "QUATERNION"
    write(o, state)
    return o


def set_name(o, name):
    o.name = name
    o[NAME] = name
    o[BNAME] = o.name


def write_transform(o, t):
    loc, quat, sc = core.transform_to_blender(t)
    if o.rotation_mode != "QUATERNION":
        o.rotation_mode = "QUATERNION"
    o.location = loc
    o.rotation_quaternion = quat
    o.scale = sc


def _new_material(o):
    mat = bpy.data.materials.new(f"VibeSync {o[ID]}")
    if mat.node_tree is None:  # Blender < 5.0 makes node-less materials
        mat.use_nodes = True
    return mat


def write_material(o, m):
    mat = o.get(MAT)
    if m is None:
        if mat is not None:
            clear_material(o)
        return
    if mat is None:
        mat = _new_material(o)
        o[MAT] = mat
        if o.type == "MESH":
            if not o.material_slots:
                o.data.materials.append(None)
            o.material_slots[0].link = "OBJECT"
            o.material_slots[0].material = mat
    n = _principled(mat)
    n.inputs["Base Color"].default_value = m["base_color"]
    n.inputs["Roughness"].default_value = m["roughness"]
    n.inputs["Metallic"].default_value = m["metallic"]
    _emission_input(n).default_value = list(m["emission"]) + [1.0]
    n.inputs["Emission Strength"].default_value = m["emission_strength"]
    mat.diffuse_color = m["base_color"]  # what the solid viewport shows


def clear_material(o):
    mat = o.get(MAT)
    del o[MAT]
    if o.type == "MESH":
        for s in o.material_slots:
            if s.material == mat:
                s.material = None
    if mat is not None and mat.users == 0:
        bpy.data.materials.remove(mat)


def write(o, state, by_id=None, current=None):
    """Make ``o`` show the canonical ``state`` (name, parent, transform,
    material). ``current``: what ``read(o)`` returned just before, if known;
    a material equal to it is not rewritten (six socket writes saved on a
    transform-only change)."""
    if canonical_name(o) != state["name"] or o.get(NAME) is None:
        set_name(o, state["name"])
    pid, parent = state.get("parent"), o.parent
    if pid is None:
        parent = None
    elif parent is None or parent.get(ID) != pid:  # unchanged: no search
        parent = (by_id or tracked()).get(pid)
    if o.parent != parent:
        o.parent = parent
    if parent is not None or o.matrix_parent_inverse != mathutils.Matrix.Identity(4):
        o.matrix_parent_inverse = mathutils.Matrix.Identity(4)
    write_transform(o, state["transform"])
    if current is None or current.get("material") != state.get("material") or state.get("material") is None:
        write_material(o, state.get("material"))


def soft_delete(o):
    """Unlink ``o`` and keep it alive for a rollback; returns its token entry."""
    cols = [c.name for c in o.users_collection]
    entry = {"blender_name": o.name, "collections": cols, "scene_root": any(c == _scene_collection() for c in o.users_collection)}
    o[DELETED] = o[ID]
    del o[ID]
    o.use_fake_user = True
    for c in list(o.users_collection):
        c.objects.unlink(o)
    return entry


def undelete(entry):
    o = bpy.data.objects.get(entry["blender_name"])
    if o is None or o.get(DELETED) is None:
        return False
    for name in entry["collections"]:
        c = bpy.data.collections.get(name)
        if c is not None and o.name not in c.objects:
            c.objects.link(o)
    if entry.get("scene_root") and o.name not in _scene_collection().objects:
        _scene_collection().objects.link(o)
    o[ID] = o[DELETED]
    del o[DELETED]
    o.use_fake_user = False
    return True


def purge(entry):
    """Remove a soft-deleted object for good (its transaction committed)."""
    o = bpy.data.objects.get(entry["blender_name"])
    if o is not None and o.get(DELETED) is not None:
        data = o.data
        bpy.data.objects.remove(o, do_unlink=True)
        _drop_orphan(data)


def purge_all_deleted():
    for o in [o for o in bpy.data.objects if o.get(DELETED) is not None]:
        data = o.data
        bpy.data.objects.remove(o, do_unlink=True)
        _drop_orphan(data)


def _drop_orphan(data):
    """Remove object data nobody uses any more (ours: meshes, cameras, lights)."""
    if data is None or data.users:
        return
    for typ, coll in ((bpy.types.Mesh, bpy.data.meshes), (bpy.types.Camera, bpy.data.cameras), (bpy.types.Light, bpy.data.lights)):
        if isinstance(data, typ):
            coll.remove(data)
            return


def remove_created(o):
    """Undo a creation: remove the object, its data and managed material."""
    mat = o.get(MAT)
    data = o.data
    bpy.data.objects.remove(o, do_unlink=True)
    _drop_orphan(data)
    if mat is not None and mat.users == 0:
        bpy.data.materials.remove(mat)


# --- exact prior state ---------------------------------------------------------

def native(o):
    """Everything ``restore`` needs to put ``o`` back exactly: Blender-native
    values (float32 read as double, so JSON round-trips them bit for bit)."""
    mat = o.get(MAT)
    n = _principled(mat)
    return {
        "blender_name": o.name, "vs_name": o.get(NAME), "vs_bname": o.get(BNAME),
        "parent": o.parent.name if o.parent is not None else None,
        "matrix_parent_inverse": [_f(r) for r in o.matrix_parent_inverse],
        "rotation_mode": o.rotation_mode, "location": _f(o.location),
        "rotation_quaternion": _f(o.rotation_quaternion), "rotation_euler": _f(o.rotation_euler),
        "rotation_axis_angle": _f(o.rotation_axis_angle), "scale": _f(o.scale),
        "slots": [s.material.name if s.material else None for s in o.material_slots],
        "slot_links": [s.link for s in o.material_slots],
        "material": None if mat is None else {
            "name": mat.name, "diffuse_color": _f(mat.diffuse_color),
            "inputs": {} if n is None else {i.name: (_f(i.default_value) if hasattr(i.default_value, "__len__") else float(i.default_value))
                                            for i in n.inputs if i.name in ("Base Color", "Roughness", "Metallic", "Emission Color", "Emission", "Emission Strength")},
        },
    }


def restore_name(o, nat):
    """First pass of a restore: names (parents are found by name)."""
    if o.name != nat["blender_name"]:
        o.name = nat["blender_name"]
    for key, val in ((NAME, nat["vs_name"]), (BNAME, nat["vs_bname"])):
        if val is None:
            if key in o:
                del o[key]
        else:
            o[key] = val


def restore(o, nat):
    """Put ``o`` back to ``native(o)`` as recorded (after ``restore_name``
    of every object in the token)."""
    parent = bpy.data.objects.get(nat["parent"]) if nat["parent"] else None
    if o.parent != parent:
        o.parent = parent
    o.matrix_parent_inverse = mathutils.Matrix(nat["matrix_parent_inverse"])
    o.rotation_mode = nat["rotation_mode"]
    o.location = nat["location"]
    o.rotation_quaternion = nat["rotation_quaternion"]
    o.rotation_euler = nat["rotation_euler"]
    o.rotation_axis_angle = nat["rotation_axis_angle"]
    o.scale = nat["scale"]
    m = nat["material"]
    cur = o.get(MAT)
    if m is None:
        if cur is not None:
            clear_material(o)
    else:
        mat = bpy.data.materials.get(m["name"])
        if mat is None:
            return False
        o[MAT] = mat
        n = _principled(mat)
        for name, v in m["inputs"].items():
            n.inputs[name].default_value = v
        mat.diffuse_color = m["diffuse_color"]
    if o.type == "MESH":
        for i, (name, link) in enumerate(zip(nat["slots"], nat["slot_links"])):
            if i >= len(o.material_slots):
                o.data.materials.append(None)
            o.material_slots[i].link = link
            o.material_slots[i].material = bpy.data.materials.get(name) if name else None
        while len(o.material_slots) > len(nat["slots"]):
            o.data.materials.pop()
    return True


def dump(o):
    """Every plain RNA property of the object, its data and its managed
    material (with node inputs), plus its custom properties: what the tests
    compare to prove a rollback restored the datablocks, not just the hash."""
    def props(idb):
        out = {}
        for p in idb.bl_rna.properties:
            if p.identifier in ("rna_type", "session_uid", "is_evaluated", "original", "users", "use_fake_user", "is_runtime_data"):
                continue
            if p.type in ("BOOLEAN", "INT", "FLOAT", "STRING", "ENUM"):
                try:
                    v = getattr(idb, p.identifier)
                except AttributeError:
                    continue
                if p.type == "ENUM" and isinstance(v, set):
                    v = sorted(v)
                elif hasattr(v, "__len__") and not isinstance(v, str):
                    try:
                        v = [list(r) if hasattr(r, "__len__") else r for r in v]
                    except TypeError:
                        v = str(v)
                out[p.identifier] = v
            elif p.type == "POINTER":
                v = getattr(idb, p.identifier, None)
                if isinstance(v, bpy.types.ID):
                    out[p.identifier] = "ID:" + v.name
        return out

    def plain(v):
        # ID pointers by name; ID property groups and arrays (Blender 4.2
        # keeps Cycles' per-object settings in a `cycles` group) by value.
        if isinstance(v, bpy.types.ID):
            return v.name
        if hasattr(v, "to_dict"):
            return v.to_dict()
        if hasattr(v, "to_list"):
            return v.to_list()
        return v

    d = {"object": props(o), "custom": {k: plain(v) for k, v in o.items()},
         "collections": sorted(c.name for c in o.users_collection),
         "slots": [(s.link, s.material.name if s.material else None) for s in o.material_slots]}
    if o.data is not None:
        d["data"] = props(o.data)
        if o.type == "MESH":
            d["mesh"] = {"vertices": len(o.data.vertices), "polygons": len(o.data.polygons)}
    mat = o.get(MAT)
    if mat is not None:
        d["material"] = props(mat)
        n = _principled(mat)
        d["material_inputs"] = {i.name: (_f(i.default_value) if hasattr(i.default_value, "__len__") else i.default_value)
                                for i in n.inputs if hasattr(i, "default_value")}
    return d
