"""The add-on's process-wide state: the SDK session, the ``Adapter``, the
``bpy.app.timers`` pump and the ``depsgraph_update_post`` handler.

In a real Blender the timer runs the pump on the main thread every
``TICK_S`` (sooner while commands keep arriving). In ``bpy`` module mode
(the PyPI wheel, used by the tests) Blender has no event loop and timers
never fire: the headless harness calls ``pump()`` in its own loop instead;
everything else is the same code.
"""

from __future__ import annotations

import os

import bpy
from bpy.app.handlers import persistent

from . import sdk
from .adapter import Adapter

TICK_S = 0.01

_state = {"adapter": None, "library": None, "error": None}


def adapter():
    return _state["adapter"]


def last_error():
    return _state["error"]


def connect(pairing_path, engine_name, library_path="", register_timer=True):
    """Open the session (the SDK connects and reconnects in the background)
    and start pumping. Returns the Adapter."""
    disconnect()
    try:
        lib = sdk.Library(sdk.find_library(library_path))
        if not os.path.isfile(pairing_path):
            raise sdk.SdkError(f"pairing file `{pairing_path}` not found: run `vibesync init` and point the add-on at the engine's pairing file")
        session = sdk.Session(lib, pairing_path, engine_name, "blender")
    except sdk.SdkError as e:
        _state["error"] = str(e)
        raise
    _state.update(adapter=Adapter(session), library=lib, error=None)
    if _on_depsgraph not in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.append(_on_depsgraph)
    if register_timer and not bpy.app.timers.is_registered(_tick):
        bpy.app.timers.register(_tick, first_interval=0.0, persistent=True)
    return _state["adapter"]


def disconnect():
    a = _state["adapter"]
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    if _on_depsgraph in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.remove(_on_depsgraph)
    if a is not None and a.session is not None:
        a.session.close()
    _state["adapter"] = None


def pump(budget_s=None):
    a = _state["adapter"]
    if a is None:
        return 0
    return a.pump() if budget_s is None else a.pump(budget_s)


def _tick():
    a = _state["adapter"]
    if a is None:
        return None
    try:
        handled = a.pump()
    except Exception as e:  # noqa: BLE001 - keep the timer alive, show it in the panel
        _state["error"] = f"pump: {type(e).__name__}: {e}"
        return 0.25
    _redraw_panels()
    return 0.0 if handled else TICK_S


def _redraw_panels():
    wm = bpy.context.window_manager
    for win in getattr(wm, "windows", []):
        for area in win.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


@persistent
def _on_depsgraph(scene, depsgraph):
    a = _state["adapter"]
    if a is not None:
        a.mark_dirty()
