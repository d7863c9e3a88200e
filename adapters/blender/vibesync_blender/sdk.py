"""ctypes binding of the adapter SDK's C ABI (``vibesync.h``).

Blender ships no Python package that speaks QUIC, so the add-on loads the
SDK ``cdylib`` (``libvibesync_adapter_sdk.so``) with ``ctypes``, which every
Blender Python has. The SDK's background thread owns the network,
heartbeats and replay checks; this module only moves JSON strings across.

Where the library is found, first match wins: the ``VIBESYNC_SDK_LIB``
environment variable, the add-on preference "SDK library", a copy bundled in
the add-on's ``lib/`` folder (``build_zip.py --sdk``).
"""

from __future__ import annotations

import ctypes
import json
import os

LIB_NAME = "libvibesync_adapter_sdk.so"


class SdkError(RuntimeError):
    """An SDK call failed; the message is the SDK's ``vs_last_error``."""


def find_library(preference=""):
    env = os.environ.get("VIBESYNC_SDK_LIB", "")
    bundled = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", LIB_NAME)
    for candidate, origin in ((env, "VIBESYNC_SDK_LIB"), (preference, "the add-on preference"), (bundled, "the add-on's lib/ folder")):
        if candidate:
            if os.path.isfile(candidate):
                return candidate
            if origin != "the add-on's lib/ folder":
                raise SdkError(f"{origin} names `{candidate}`, which is not a file: build the SDK "
                               "(`cargo build -p vibesync-adapter-sdk`) and point it at the .so")
    raise SdkError(f"adapter SDK library not found: set VIBESYNC_SDK_LIB or the add-on preference to the path of {LIB_NAME}")


def encode_replies(replies):
    """The JSON array of ``replies``. A reply that JSON cannot carry (a NaN
    or infinity read back from Blender) becomes an ``internal`` error reply
    to the same command, so the host hears about that command at once and
    the other replies of the burst still go out."""
    parts = []
    for r in replies:
        try:
            parts.append(json.dumps(r, allow_nan=False))
        except ValueError as e:
            parts.append(json.dumps({"id": r.get("id"), "ok": False, "error": {
                "code": "internal", "message": f"the reply cannot be encoded as JSON: {e}"}}))
    return "[" + ",".join(parts) + "]"


class Library:
    """The loaded C ABI. One per process (the SDK keeps sessions by engine name)."""

    _loaded = {}

    def __init__(self, path):
        lib = Library._loaded.get(path)
        if lib is None:
            lib = ctypes.CDLL(path)
            c, u64, i32, vp = ctypes.c_char_p, ctypes.c_uint64, ctypes.c_int32, ctypes.c_void_p
            for name, args, res in (
                ("vs_open", [c, c, c], u64), ("vs_find", [c], u64), ("vs_poll", [u64], vp),
                ("vs_reply", [u64, c], i32), ("vs_push_event", [u64, c], i32), ("vs_set_busy", [u64, c], i32),
                ("vs_status", [u64], vp), ("vs_close", [u64], i32), ("vs_last_error", [], c),
                ("vs_string_free", [vp], None),
            ):
                f = getattr(lib, name)
                f.argtypes, f.restype = args, res
            # Burst calls (an older library has only the one-at-a-time ones).
            for name, args, res in (("vs_poll_many", [u64, ctypes.c_uint32], vp), ("vs_reply_many", [u64, c], i32)):
                f = getattr(lib, name, None)
                if f is not None:
                    f.argtypes, f.restype = args, res
            Library._loaded[path] = lib
        self.lib = lib
        self.path = path

    def error(self, what):
        msg = self.lib.vs_last_error()
        return SdkError(f"{what}: {msg.decode('utf-8', 'replace') if msg else 'no error message'}")

    def take_string(self, ptr):
        if not ptr:
            return None
        try:
            return ctypes.string_at(ptr).decode("utf-8")
        finally:
            self.lib.vs_string_free(ptr)


class Session:
    """One engine's session: ``poll`` / ``reply`` (and ``poll_many`` /
    ``reply_many`` for bursts) / ``push_event`` / ``status``."""

    def __init__(self, library, pairing_path, engine_name, kind="blender"):
        self.library = library
        lib = library.lib
        h = lib.vs_open(pairing_path.encode(), engine_name.encode(), kind.encode())
        if not h:
            raise library.error(f"vs_open({pairing_path!r}, {engine_name!r})")
        self.handle = h
        self.engine = engine_name

    def poll(self):
        """The next command as a dict, or None. Also the main-thread pump signal."""
        s = self.library.take_string(self.library.lib.vs_poll(self.handle))
        return None if s is None else json.loads(s)

    def poll_many(self, limit):
        """Up to ``limit`` waiting commands (a list, empty when none): one
        SDK call and one JSON parse for a burst. Also the pump signal."""
        lib = self.library.lib
        if not hasattr(lib, "vs_poll_many"):
            cmd = self.poll()
            return [] if cmd is None else [cmd]
        s = self.library.take_string(lib.vs_poll_many(self.handle, limit))
        return [] if s is None else json.loads(s)

    def reply_many(self, replies):
        """Several replies, sent in order with one SDK call (all or nothing)."""
        lib = self.library.lib
        if not hasattr(lib, "vs_reply_many"):
            for r in json.loads(encode_replies(replies)):
                self.reply(r)
            return
        if lib.vs_reply_many(self.handle, encode_replies(replies).encode()) != 0:
            raise self.library.error("vs_reply_many")

    def reply(self, reply):
        if self.library.lib.vs_reply(self.handle, json.dumps(reply, allow_nan=False).encode()) != 0:
            raise self.library.error("vs_reply")

    def push_event(self, event):
        if self.library.lib.vs_push_event(self.handle, json.dumps(event, allow_nan=False).encode()) != 0:
            raise self.library.error("vs_push_event")

    def set_busy(self, reason):
        if self.library.lib.vs_set_busy(self.handle, None if reason is None else reason.encode()) != 0:
            raise self.library.error("vs_set_busy")

    def status(self):
        s = self.library.take_string(self.library.lib.vs_status(self.handle))
        if s is None:
            raise self.library.error("vs_status")
        return json.loads(s)

    def close(self):
        if self.handle:
            self.library.lib.vs_close(self.handle)
            self.handle = 0
