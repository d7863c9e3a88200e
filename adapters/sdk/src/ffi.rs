//! The C ABI (`include/vibesync.h`) over [`Session`](crate::Session).
//!
//! Handles are non-zero `u64`s into a process-wide table, so a handle is
//! never a dangling pointer; `vs_open` of an engine that already has a live
//! session returns that session's handle (Unity domain reload keeps the
//! native library loaded but forgets managed state). Every entry point
//! catches panics; errors are kept per calling thread for `vs_last_error`.
//! Strings returned by the SDK are freed with `vs_string_free`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::Session;

struct Registry {
    by_handle: HashMap<u64, Arc<Session>>,
    by_engine: HashMap<String, u64>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        Mutex::new(Registry {
            by_handle: HashMap::new(),
            by_engine: HashMap::new(),
        })
    })
}

static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_error(msg: String) {
    let c = CString::new(msg.replace('\0', " ")).expect("NULs removed");
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(c));
}

/// Runs `f`, turning `Err` and panics into the thread's last error and `fail`.
fn guard<T>(fail: T, f: impl FnOnce() -> Result<T, String>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_error(e);
            fail
        }
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!(
                "internal error in the VibeSync SDK (please report): {what}"
            ));
            fail
        }
    }
}

unsafe fn text<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("`{what}` is NULL"));
    }
    // SAFETY: the caller passes a NUL-terminated string (header contract).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| format!("`{what}` is not UTF-8"))
}

fn session(handle: u64) -> Result<Arc<Session>, String> {
    registry()
        .lock()
        .expect("registry lock")
        .by_handle
        .get(&handle)
        .cloned()
        .ok_or_else(|| format!("no open session with handle {handle}; call vs_open"))
}

fn out_string(s: String) -> *mut c_char {
    CString::new(s.replace('\0', " "))
        .expect("NULs removed")
        .into_raw()
}

/// # Safety
/// Arguments are NUL-terminated UTF-8 strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_open(
    pairing_path: *const c_char,
    engine_name: *const c_char,
    kind: *const c_char,
) -> u64 {
    guard(0, || {
        let path = unsafe { text(pairing_path, "pairing_path") }?;
        let engine = unsafe { text(engine_name, "engine_name") }?;
        let kind = unsafe { text(kind, "kind") }?;
        let mut reg = registry().lock().expect("registry lock");
        if let Some(h) = reg.by_engine.get(engine) {
            return Ok(*h);
        }
        let s =
            Session::open(std::path::Path::new(path), engine, kind).map_err(|e| e.to_string())?;
        let h = NEXT.fetch_add(1, Ordering::Relaxed);
        reg.by_handle.insert(h, Arc::new(s));
        reg.by_engine.insert(engine.to_string(), h);
        Ok(h)
    })
}

/// # Safety
/// `engine_name` is a NUL-terminated UTF-8 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_find(engine_name: *const c_char) -> u64 {
    guard(0, || {
        let engine = unsafe { text(engine_name, "engine_name") }?;
        registry()
            .lock()
            .expect("registry lock")
            .by_engine
            .get(engine)
            .copied()
            .ok_or_else(|| format!("no session for engine `{engine}`"))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn vs_poll(handle: u64) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        Ok(session(handle)?
            .poll_json()
            .map_or(std::ptr::null_mut(), out_string))
    })
}

/// Up to `max` waiting commands as one JSON array, or NULL when none is
/// waiting (`vs_poll` for a burst: one call instead of one per command).
#[unsafe(no_mangle)]
pub extern "C" fn vs_poll_many(handle: u64, max: u32) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        Ok(session(handle)?
            .poll_many_json(max.max(1) as usize)
            .map_or(std::ptr::null_mut(), out_string))
    })
}

/// # Safety
/// `replies_json` is a NUL-terminated UTF-8 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_reply_many(handle: u64, replies_json: *const c_char) -> i32 {
    guard(-1, || {
        let json = unsafe { text(replies_json, "replies_json") }?;
        session(handle)?
            .reply_many_json(json)
            .map_err(|e| e.to_string())?;
        Ok(0)
    })
}

/// # Safety
/// `reply_json` is a NUL-terminated UTF-8 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_reply(handle: u64, reply_json: *const c_char) -> i32 {
    guard(-1, || {
        let json = unsafe { text(reply_json, "reply_json") }?;
        session(handle)?
            .reply_json(json)
            .map_err(|e| e.to_string())?;
        Ok(0)
    })
}

/// # Safety
/// `event_json` is a NUL-terminated UTF-8 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_push_event(handle: u64, event_json: *const c_char) -> i32 {
    guard(-1, || {
        let json = unsafe { text(event_json, "event_json") }?;
        session(handle)?
            .push_event_json(json)
            .map_err(|e| e.to_string())?;
        Ok(0)
    })
}

/// # Safety
/// `reason_or_null` is NULL or a NUL-terminated UTF-8 string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_set_busy(handle: u64, reason_or_null: *const c_char) -> i32 {
    guard(-1, || {
        let reason = if reason_or_null.is_null() {
            None
        } else {
            Some(unsafe { text(reason_or_null, "reason") }?)
        };
        session(handle)?.set_busy(reason);
        Ok(0)
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn vs_status(handle: u64) -> *mut c_char {
    guard(std::ptr::null_mut(), || {
        let st = session(handle)?.status();
        Ok(out_string(
            serde_json::to_string(&st).expect("status serializes"),
        ))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn vs_close(handle: u64) -> i32 {
    guard(-1, || {
        let s = {
            let mut reg = registry().lock().expect("registry lock");
            let s = reg
                .by_handle
                .remove(&handle)
                .ok_or_else(|| format!("no open session with handle {handle}"))?;
            reg.by_engine.retain(|_, h| *h != handle);
            s
        };
        s.close();
        Ok(0)
    })
}

/// The calling thread's last error, or NULL. Valid until the next SDK call
/// on this thread; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn vs_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |c| c.as_ptr()))
}

/// # Safety
/// `s` is NULL or a string returned by `vs_poll`, `vs_poll_many` or
/// `vs_status`, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn vs_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: produced by CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_text_and_nothing_unwinds() {
        assert_eq!(
            unsafe { vs_open(std::ptr::null(), c"e".as_ptr(), c"reference".as_ptr()) },
            0
        );
        let e = unsafe { CStr::from_ptr(vs_last_error()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(e.contains("pairing_path"), "{e}");
        assert_eq!(
            unsafe {
                vs_open(
                    c"/nonexistent/pairing.json".as_ptr(),
                    c"e".as_ptr(),
                    c"reference".as_ptr(),
                )
            },
            0
        );
        let e = unsafe { CStr::from_ptr(vs_last_error()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(e.contains("cannot read pairing file"), "{e}");
        assert!(vs_poll(999).is_null());
        assert!(vs_poll_many(999, 8).is_null());
        assert_eq!(unsafe { vs_reply(999, c"{}".as_ptr()) }, -1);
        assert_eq!(unsafe { vs_reply_many(999, c"[]".as_ptr()) }, -1);
        assert_eq!(vs_close(999), -1);
        assert_eq!(guard(7, || panic!("boom")), 7);
        let e = unsafe { CStr::from_ptr(vs_last_error()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(e.contains("boom"), "{e}");
        unsafe { vs_string_free(std::ptr::null_mut()) };
    }

    #[test]
    fn open_reattaches_by_engine_name_and_close_forgets() {
        let dir = std::env::temp_dir().join(format!("vs-ffi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pairing.json");
        // Nothing listens there: the session stays `connecting`.
        let p = vibesync_protocol::Pairing::new(
            "127.0.0.1:9",
            "vibesync-host",
            [1; 32],
            "unity-main",
            "unity",
            [2; 32],
        );
        std::fs::write(&path, p.to_json()).unwrap();
        let cpath = CString::new(path.to_str().unwrap()).unwrap();
        let h = unsafe { vs_open(cpath.as_ptr(), c"unity-main".as_ptr(), c"unity".as_ptr()) };
        assert_ne!(h, 0);
        let again = unsafe { vs_open(cpath.as_ptr(), c"unity-main".as_ptr(), c"unity".as_ptr()) };
        assert_eq!(again, h, "a domain reload gets the same session back");
        assert_eq!(unsafe { vs_find(c"unity-main".as_ptr()) }, h);
        assert!(vs_poll(h).is_null());
        let st = vs_status(h);
        let json: serde_json::Value =
            serde_json::from_str(unsafe { CStr::from_ptr(st) }.to_str().unwrap()).unwrap();
        unsafe { vs_string_free(st) };
        assert_eq!(json["engine"], "unity-main");
        assert_eq!(json["state"], "connecting");
        assert_eq!(unsafe { vs_set_busy(h, c"compiling".as_ptr()) }, 0);
        assert_eq!(
            unsafe { vs_reply(h, c"{\"id\": 1, \"ok\": true}".as_ptr()) },
            -1,
            "ok without result is refused"
        );
        assert!(vs_poll_many(h, 16).is_null(), "nothing waiting");
        assert_eq!(
            unsafe {
                vs_reply_many(
                    h,
                    c"[{\"id\": 1, \"ok\": true, \"result\": {}}, {\"id\": 2, \"ok\": true}]"
                        .as_ptr(),
                )
            },
            -1,
            "one malformed reply refuses the whole array"
        );
        let e = unsafe { CStr::from_ptr(vs_last_error()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(e.contains("never both"), "{e}");
        assert_eq!(
            unsafe { vs_reply_many(h, c"{\"id\": 1, \"ok\": true, \"result\": {}}".as_ptr()) },
            -1,
            "an object is not an array"
        );
        assert_eq!(
            unsafe {
                vs_reply_many(
                    h,
                    c"[{\"id\": 1, \"ok\": true, \"result\": {}}, {\"id\": 2, \"ok\": false, \"error\": {\"code\": \"busy\", \"message\": \"m\"}}]"
                        .as_ptr(),
                )
            },
            0
        );
        assert_eq!(vs_close(h), 0);
        assert_eq!(unsafe { vs_find(c"unity-main".as_ptr()) }, 0);
        // Another engine name with this pairing file is refused.
        assert_eq!(
            unsafe {
                vs_open(
                    cpath.as_ptr(),
                    c"blender-main".as_ptr(),
                    c"blender".as_ptr(),
                )
            },
            0
        );
        let e = unsafe { CStr::from_ptr(vs_last_error()) }
            .to_str()
            .unwrap()
            .to_string();
        assert!(e.contains("does not match"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
