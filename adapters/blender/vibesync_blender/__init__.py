"""VibeSync for Blender: keeps this scene in sync with the VibeSync host.

Blender 4.2+ extension (``blender_manifest.toml``). Modules: ``core`` (pure:
hash, frames, op semantics), ``sdk`` (ctypes binding of the adapter SDK),
``bridge`` (bpy reads/writes, undo tokens), ``adapter`` (commands and the
pump), ``runtime`` (session, timer, depsgraph handler), ``ui`` (preferences
and sidebar panel). ``core`` imports without ``bpy`` so it is unit-tested
outside Blender; everything else is imported only by ``register``.
"""


def register():
    import os

    from . import runtime, ui

    ui.register()
    p = ui.prefs()
    pairing = os.environ.get("VIBESYNC_PAIRING") or (p.pairing_path if p else "")
    engine = os.environ.get("VIBESYNC_ENGINE") or (p.engine_name if p else "blender")
    if pairing and (p is None or p.auto_connect or os.environ.get("VIBESYNC_PAIRING")):
        try:
            runtime.connect(pairing, engine, p.sdk_library if p else "")
        except Exception as e:  # noqa: BLE001 - shown in the panel; Blender keeps starting
            print(f"VibeSync: not connected: {e}")


def unregister():
    from . import runtime, ui

    runtime.disconnect()
    ui.unregister()
