"""Headless Blender engine for whole-system tests: the real add-on code in
``bpy`` module mode, connected through the real SDK over QUIC.

    VIBESYNC_SDK_LIB=.../libvibesync_adapter_sdk.so \\
    .venv/bin/python adapters/blender/harness.py --pairing PATH [--engine blender] [--profile FILE]

``bpy`` module mode has no event loop, so ``bpy.app.timers`` never fire:
this loop calls the same ``runtime.pump()`` the add-on's timer calls.
Stdout lines tests follow: ``BLENDER_VERSION x.y.z``, ``READY session=..``,
``HANG``, ``RESUMED``, ``DUMP {json}``, ``EDITED``, ``EVENT pushed=n``
(an artist edit went to the host), ``STATUS {json}``, and every 2 s while
commands arrive ``STATS {json}`` (the adapter's main-thread cost so far,
``Adapter.stats``: what a benchmark divides by the intents it applied).
``--profile FILE`` runs the loop under ``cProfile`` and rewrites FILE (``pstats``
format) with every ``STATS`` line, so a run that is killed still leaves it.
Control lines on stdin: ``hang <ms>`` (stall the main thread), ``move <id>
<x> <y> <z>`` (an artist moves an object, Blender coordinates), ``dump``
(every tracked object's full datablock dump), ``status``, ``quit``.
"""

import argparse
import cProfile
import json
import os
import queue
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402

from vibesync_blender import bridge, runtime  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairing", required=True)
    ap.add_argument("--engine", default="blender")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the loop; FILE is rewritten every 2 s")
    args = ap.parse_args()
    profile = cProfile.Profile() if args.profile else None
    print(f"BLENDER_VERSION {bpy.app.version_string}", flush=True)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    a = runtime.connect(args.pairing, args.engine, register_timer=False)

    lines = queue.Queue()

    def reader():
        for line in sys.stdin:
            lines.put(line.strip())
        lines.put("quit")

    threading.Thread(target=reader, daemon=True).start()
    last_session, events = None, 0
    stats_at, stats_seen = time.monotonic(), 0
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            line = None
        if line:
            w = line.split()
            if w[0] == "quit":
                print("STATS " + json.dumps(a.stats()), flush=True)
                if profile:
                    profile.dump_stats(args.profile)
                runtime.disconnect()
                return
            if w[0] == "hang":
                print("HANG", flush=True)
                time.sleep(int(w[1]) / 1000.0)
                print("RESUMED", flush=True)
            elif w[0] == "move":
                bridge.tracked()[w[1]].location = [float(v) for v in w[2:5]]
                bpy.context.view_layer.update()  # fires depsgraph_update_post
                print("EDITED", flush=True)
            elif w[0] == "dump":
                dumps = {oid: bridge.dump(o) for oid, o in bridge.tracked().items()}
                print("DUMP " + json.dumps(dumps, sort_keys=True, default=str), flush=True)
            elif w[0] == "status":
                print("STATUS " + json.dumps(a.session.status()), flush=True)
        if profile:
            profile.enable()
        handled = runtime.pump()
        if profile:
            profile.disable()
        if a.events_pushed != events:
            events = a.events_pushed
            print(f"EVENT pushed={events}", flush=True)
        st = a.status
        if st.get("session_id") and st.get("session_id") != last_session:
            print(f"READY session={st['session_id']} reconnect={last_session is not None}", flush=True)
            last_session = st["session_id"]
        now = time.monotonic()
        if now - stats_at >= 2.0:
            stats_at = now
            total = sum(a.handled.values())
            if total != stats_seen:
                stats_seen = total
                print("STATS " + json.dumps(a.stats()), flush=True)
                if profile:
                    profile.dump_stats(args.profile)
        if not handled:
            time.sleep(0.001)


if __name__ == "__main__":
    main()
