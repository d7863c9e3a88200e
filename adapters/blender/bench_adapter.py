"""In-process cost of one transform transaction inside Blender: apply +
verify + commit through ``Adapter.handle`` (no network), against the pure
core doing the same op on its own model (the baseline, same run).

    .venv/bin/python adapters/blender/bench_adapter.py [N] [OBJECTS]

OBJECTS (default 1) cubes are created first; transaction i moves cube
i % OBJECTS, so the cost of reading a bigger scene shows.

This is the engine's ceiling: the whole-system number (MCP, policies, WAL,
QUIC, verification) is ``blender_transform_throughput`` in
host/vibesync/tests/blender.rs. Both are recorded in docs/PERFORMANCE.md.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402

from vibesync_blender import core  # noqa: E402
from vibesync_blender.adapter import Adapter  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[round((len(xs) - 1) * p)]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    objects = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    bpy.ops.wm.read_factory_settings(use_empty=True)
    a = Adapter()
    create = [{"op": "create_object", "args": {"id": f"b{k}", "name": f"B{k}", "kind": "mesh", "primitive": "cube"}}
              for k in range(objects)]
    a.handle({"id": 0, "kind": "apply", "tid": 0, "ops": create})
    a.handle({"id": 0, "kind": "commit", "tid": 0})
    scene = core.Scene().apply_all(create)

    def oid(i):
        return f"b{i % objects}"

    def op(i):
        return {"op": "set_transform", "args": {"id": oid(i), "translation": [i % 100 / 10, 1.0, -1.0]}}

    blender, base = [], []
    for i in range(1, n + 1):
        t0 = time.perf_counter()
        r = a.handle({"id": 3 * i, "kind": "apply", "tid": i, "ops": [op(i)]})
        v = a.handle({"id": 3 * i + 1, "kind": "verify", "tid": i, "ids": [oid(i)]})
        a.handle({"id": 3 * i + 2, "kind": "commit", "tid": i})
        a.pump()  # a tick: pushes the undo step once the coalescing window has passed
        blender.append(time.perf_counter() - t0)
        assert r["ok"] and v["result"]["hash"] == r["result"]["hash"], (r, v)
        t0 = time.perf_counter()
        scene = scene.apply_all([op(i)])
        scene.hash_of([oid(i)])
        base.append(time.perf_counter() - t0)
    print(f"bpy {bpy.app.version_string}: {n} transform transactions (apply+verify+commit) in Blender, {objects} object(s)")
    print(f"  blender  p50 {pct(blender, .5) * 1e3:.3f} ms  p99 {pct(blender, .99) * 1e3:.3f} ms  "
          f"{n / sum(blender):.0f} tx/s  (undo steps pushed: {a.undo_steps})")
    print(f"  core     p50 {pct(base, .5) * 1e3:.3f} ms  p99 {pct(base, .99) * 1e3:.3f} ms  {n / sum(base):.0f} tx/s")
    print(f"  ratio blender/core (median): {statistics.median(blender) / statistics.median(base):.1f}x")


if __name__ == "__main__":
    main()
