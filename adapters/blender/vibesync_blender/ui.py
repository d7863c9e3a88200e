"""Add-on preferences, the connect/disconnect operators and the sidebar
panel (View3D > Sidebar > VibeSync): connection state, engine health, the
PANIC banner and the last transactions."""

from __future__ import annotations

import bpy

from . import runtime


class VIBESYNC_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    pairing_path: bpy.props.StringProperty(name="Pairing file", subtype="FILE_PATH",
                                           description="Written by `vibesync init` for this engine")
    engine_name: bpy.props.StringProperty(name="Engine name", default="blender")
    sdk_library: bpy.props.StringProperty(name="SDK library", subtype="FILE_PATH",
                                          description="libvibesync_adapter_sdk.so (empty: VIBESYNC_SDK_LIB or the bundled copy)")
    auto_connect: bpy.props.BoolProperty(name="Connect when Blender starts", default=True)

    def draw(self, context):
        for p in ("pairing_path", "engine_name", "sdk_library", "auto_connect"):
            self.layout.prop(self, p)


def prefs():
    addon = bpy.context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


class VIBESYNC_OT_connect(bpy.types.Operator):
    bl_idname = "vibesync.connect"
    bl_label = "Connect to VibeSync"

    def execute(self, context):
        p = prefs()
        try:
            runtime.connect(p.pairing_path, p.engine_name, p.sdk_library)
        except Exception as e:  # noqa: BLE001
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        return {"FINISHED"}


class VIBESYNC_OT_disconnect(bpy.types.Operator):
    bl_idname = "vibesync.disconnect"
    bl_label = "Disconnect"

    def execute(self, context):
        runtime.disconnect()
        return {"FINISHED"}


def draw_status(layout, a, error):
    """The panel body, separate from the Panel class so it is easy to read."""
    if a is None:
        layout.label(text="Not connected", icon="UNLINKED")
        if error:
            layout.label(text=error[:120], icon="ERROR")
        layout.operator("vibesync.connect")
        return
    st = a.status
    if st.get("panic") or a.frozen:
        box = layout.box()
        box.alert = True
        box.label(text="PANIC: cluster frozen", icon="CANCEL")
        box.label(text=(st.get("panic_reason") or a.frozen or "")[:120])
    layout.label(text=f"{st.get('engine', '')}: {st.get('state', '?')}",
                 icon="LINKED" if st.get("state") == "connected" else "UNLINKED")
    col = layout.column(align=True)
    col.label(text=f"pump {a.last_pump_ms:.2f} ms, queue {st.get('queue_depth', 0)}")
    col.label(text=f"frames refused {st.get('frames_refused', 0)}, key {st.get('key_id', '-')}")
    if st.get("last_error"):
        col.label(text=str(st["last_error"])[:120], icon="ERROR")
    layout.label(text="Last transactions")
    box = layout.box()
    for h in list(a.history)[:8]:
        tid = "-" if h["tid"] is None else h["tid"]
        box.label(text=f"{tid} {h['kind']} {'ok' if h['ok'] else h['detail']}", icon="CHECKMARK" if h["ok"] else "ERROR")
    layout.operator("vibesync.disconnect")


class VIBESYNC_PT_panel(bpy.types.Panel):
    bl_label = "VibeSync"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "VibeSync"

    def draw(self, context):
        draw_status(self.layout, runtime.adapter(), runtime.last_error())


CLASSES = (VIBESYNC_AP_preferences, VIBESYNC_OT_connect, VIBESYNC_OT_disconnect, VIBESYNC_PT_panel)


def register():
    for c in CLASSES:
        bpy.utils.register_class(c)


def unregister():
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
