//! Logging to the host (`vibesync:policy/host.log`).
//!
//! On wasm32 each call is one host import call; the host attributes it to the
//! module hash and tid and caps size and count. Natively (unit tests,
//! benches) messages are discarded so the rules stay pure and fast.

/// Log at debug level.
pub fn debug(message: &str) {
    emit(Level::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    emit(Level::Info, message);
}

/// Log at warn level.
pub fn warn(message: &str) {
    emit(Level::Warn, message);
}

#[derive(Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warn,
}

#[cfg(target_arch = "wasm32")]
fn emit(level: Level, message: &str) {
    use crate::bindings::vibesync::policy::host::{LogLevel, log};
    let level = match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
    };
    log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn emit(_level: Level, _message: &str) {}
