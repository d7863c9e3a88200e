/*
 * vibesync.h - C ABI of the VibeSync adapter SDK (libvibesync_adapter_sdk).
 *
 * The engine-side contract is docs/adapter-api.md; the wire underneath is
 * docs/protocol.md. An adapter never touches QUIC, TLS, HMAC or heartbeats:
 * the SDK's background thread owns them. The engine's main thread calls
 * vs_poll() from its own loop (bpy.app.timers, EditorApplication.update),
 * applies the command within its time budget and answers with vs_reply().
 *
 * Every function is thread-safe and never unwinds across this boundary.
 * Status-returning functions return 0 on success and a negative value on
 * error; handle-returning functions return 0 on error. After an error,
 * vs_last_error() returns the message for the calling thread.
 * Strings are UTF-8, NUL-terminated. Strings returned by vs_poll,
 * vs_poll_many and vs_status are owned by the caller and released with
 * vs_string_free.
 */
#ifndef VIBESYNC_H
#define VIBESYNC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Open (or re-attach to) the session for `engine_name`. `pairing_path` is
   the pairing file written by `vibesync init`; its `engine` must equal
   `engine_name`. `kind` is "blender", "unity" or "reference". If a session
   for `engine_name` already exists in this process (e.g. after a Unity
   domain reload) its handle is returned and nothing is reconnected.
   Returns immediately; the SDK connects (and reconnects) in the background. */
uint64_t vs_open(const char *pairing_path, const char *engine_name, const char *kind);

/* Handle of the live session for `engine_name`, or 0. */
uint64_t vs_find(const char *engine_name);

/* Next command for the main thread as JSON, or NULL if none is waiting
   (NULL with vs_last_error() set on a bad handle). Never blocks. Calling it
   is the main-thread pump signal: heartbeats carry the time of the last
   call, and a main thread silent for 5000 ms with work pending trips PANIC. */
char *vs_poll(uint64_t session);

/* Up to `max` waiting commands as one JSON array (oldest first), or NULL
   if none is waiting. vs_poll for a burst: one call, one string, one JSON
   parse for several commands. Also the pump signal. Handle every command
   it returned, in order, before polling again. */
char *vs_poll_many(uint64_t session, uint32_t max);

/* Reply to a command: {"id": n, "ok": true, "result": {...}} or
   {"id": n, "ok": false, "error": {"code": "...", "message": "..."}}. */
int32_t vs_reply(uint64_t session, const char *reply_json);

/* Several replies as one JSON array, sent in array order (usually with one
   write). All or nothing: if one reply is malformed, none is sent. */
int32_t vs_reply_many(uint64_t session, const char *replies_json);

/* Push an engine-side edit: {"kind": "change", "ops": [...]} (canonical frame). */
int32_t vs_push_event(uint64_t session, const char *event_json);

/* The engine cannot mutate right now (reason, e.g. "compiling") or can
   again (NULL). Carried in heartbeats. */
int32_t vs_set_busy(uint64_t session, const char *reason_or_null);

/* Connection state as JSON: {"state": "connecting|connected|frozen|closed",
   "panic": bool, "panic_reason": str|null, "engine": str,
   "session_id": str|null, "last_error": str|null, "frames_refused": n,
   "queue_depth": n, "sessions": n, "key_id": n}. */
char *vs_status(uint64_t session);

/* Say goodbye to the host, stop the session's thread, forget the handle. */
int32_t vs_close(uint64_t session);

/* The calling thread's last error, or NULL. Valid until the next SDK call
   on this thread; do not free. */
const char *vs_last_error(void);

/* Release a string returned by vs_poll, vs_poll_many or vs_status. NULL is
   allowed. */
void vs_string_free(char *s);

#ifdef __cplusplus
}
#endif

#endif /* VIBESYNC_H */
