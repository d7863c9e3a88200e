//! The adapter SDK: what an engine links to talk to the VibeSync host.
//!
//! Split-thread design. [`Session::open`] starts a background thread with
//! its own current-thread tokio runtime; that thread owns QUIC, the
//! handshake, key rotation, replay checks and a heartbeat every second. The
//! engine's main thread never blocks on the network: it calls
//! [`Session::poll`] from its own loop (`bpy.app.timers`,
//! `EditorApplication.update`), applies the command within its time budget
//! and answers with [`Session::reply`]. Each `poll` is the main-thread pump
//! signal the heartbeats carry, so a hung main thread is visible to the host
//! even though the network thread is fine.
//!
//! The same API is exported as a C ABI (`ffi`, header
//! `include/vibesync.h`) for Python `ctypes` and C# `DllImport`.

mod batch;
mod ffi;
mod net;
mod verify;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
pub use vibesync_protocol::{Command, CommandBody, Event, Pairing, Reply, ReplyError};

/// Unix time in ms.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error("cannot read pairing file {path}: {reason}")]
    PairingFile { path: String, reason: String },
    #[error(transparent)]
    Pairing(#[from] vibesync_protocol::PairingError),
    #[error(
        "engine name `{asked}` does not match the pairing file's engine `{paired}`; use the pairing file made for this engine"
    )]
    EngineMismatch { asked: String, paired: String },
    #[error("cannot start the network thread: {0}")]
    Start(String),
    #[error("malformed {what} JSON: {reason}; see docs/adapter-api.md")]
    Json { what: &'static str, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("session is closed")]
    Closed,
}

/// Connection state, as `vs_status` reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    /// `connecting`, `connected`, `frozen` or `closed`.
    pub state: String,
    pub panic: bool,
    pub panic_reason: Option<String>,
    pub engine: String,
    pub session_id: Option<String>,
    pub last_error: Option<String>,
    /// Frames from the host this adapter refused, all codes.
    pub frames_refused: u64,
    /// Commands received and not yet polled.
    pub queue_depth: usize,
    /// Sessions established so far (reconnects + 1).
    pub sessions: u64,
    pub key_id: u32,
}

/// Hostile frames a test client can send (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// Resend the last control frame byte for byte.
    Replay,
    /// A correctly signed frame stamped 6 s in the past.
    Stale,
    /// A correctly signed frame stamped 5 s in the future.
    Future,
    /// A correctly signed frame that skips one sequence number.
    Reorder,
    /// A frame whose tag is wrong in one bit.
    BadTag,
    /// A 2 MiB frame on the control stream (limit 1 MiB).
    Oversize,
    /// A signed body nested 40 levels deep (limit 32).
    DeepNesting,
    /// 64 random bytes as a frame.
    Garbage,
    /// A correctly signed `replies` frame whose two replies share an id
    /// (the honest sender skips the sequence number it uses up).
    BadBatch,
}

pub(crate) enum Outbound {
    /// The ids of a `commands` frame, queued by the reader before the
    /// commands reach the engine, so their replies are held for one
    /// `replies` frame (`batch`).
    Batch(Vec<u64>),
    Reply(Reply),
    Event(Event),
    #[cfg(feature = "fault-injection")]
    Attack(Attack),
    /// Abandon the connection without `bye` and reconnect.
    #[cfg(feature = "fault-injection")]
    Drop,
}

pub(crate) struct Shared {
    pub engine: String,
    pub kind: String,
    pub inbox: Mutex<VecDeque<Command>>,
    pub inbox_cv: Condvar,
    pub last_poll_ms: AtomicU64,
    pub busy: Mutex<Option<String>>,
    pub status: Mutex<Status>,
    pub closing: AtomicBool,
    pub wake: tokio::sync::Notify,
}

impl Shared {
    pub fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().expect("status lock")
    }
}

/// One engine's session with the host.
pub struct Session {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Outbound>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Session {
    /// Reads the pairing file and starts connecting in the background.
    pub fn open(pairing_path: &Path, engine: &str, kind: &str) -> Result<Session, SdkError> {
        let text = std::fs::read_to_string(pairing_path).map_err(|e| SdkError::PairingFile {
            path: pairing_path.display().to_string(),
            reason: e.to_string(),
        })?;
        Session::open_pairing(Pairing::parse(&text)?, engine, kind)
    }

    pub fn open_pairing(pairing: Pairing, engine: &str, kind: &str) -> Result<Session, SdkError> {
        if pairing.engine != engine {
            return Err(SdkError::EngineMismatch {
                asked: engine.into(),
                paired: pairing.engine.clone(),
            });
        }
        let shared = Arc::new(Shared {
            engine: engine.into(),
            kind: kind.into(),
            inbox: Mutex::new(VecDeque::new()),
            inbox_cv: Condvar::new(),
            last_poll_ms: AtomicU64::new(now_ms()),
            busy: Mutex::new(None),
            status: Mutex::new(Status {
                state: "connecting".into(),
                engine: engine.into(),
                ..Status::default()
            }),
            closing: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        });
        let (out, out_rx) = mpsc::unbounded_channel();
        let (s, self_tx) = (shared.clone(), out.clone());
        let thread = std::thread::Builder::new()
            .name(format!("vibesync-{engine}"))
            .spawn(move || net::run(s, pairing, self_tx, out_rx))
            .map_err(|e| SdkError::Start(e.to_string()))?;
        Ok(Session {
            shared,
            out,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn engine(&self) -> &str {
        &self.shared.engine
    }

    fn pump(&self) {
        self.shared.last_poll_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The next command, if one is waiting. Never blocks. Also the
    /// main-thread pump signal.
    pub fn poll(&self) -> Option<Command> {
        self.pump();
        self.shared.inbox.lock().expect("inbox lock").pop_front()
    }

    /// Like [`poll`](Self::poll) but waits up to `timeout` (for engines
    /// without their own loop, such as the reference engine).
    pub fn poll_wait(&self, timeout: Duration) -> Option<Command> {
        self.pump();
        let q = self.shared.inbox.lock().expect("inbox lock");
        let (mut q, _) = self
            .shared
            .inbox_cv
            .wait_timeout_while(q, timeout, |q| {
                q.is_empty() && !self.shared.closing.load(Ordering::Relaxed)
            })
            .expect("inbox lock");
        self.pump();
        q.pop_front()
    }

    /// [`poll`](Self::poll) as the JSON of docs/adapter-api.md.
    pub fn poll_json(&self) -> Option<String> {
        self.poll()
            .map(|c| serde_json::to_string(&c).expect("commands serialize"))
    }

    /// Up to `max` waiting commands at once, oldest first (empty when none
    /// is waiting). Never blocks; the pump signal, as [`poll`](Self::poll).
    /// Handle them all, in order, before polling again.
    pub fn poll_many(&self, max: usize) -> Vec<Command> {
        self.pump();
        let mut q = self.shared.inbox.lock().expect("inbox lock");
        let n = q.len().min(max);
        q.drain(..n).collect()
    }

    /// [`poll_many`](Self::poll_many) as a JSON array, or `None` when no
    /// command is waiting.
    pub fn poll_many_json(&self, max: usize) -> Option<String> {
        let cmds = self.poll_many(max);
        (!cmds.is_empty()).then(|| serde_json::to_string(&cmds).expect("commands serialize"))
    }

    pub fn reply(&self, reply: Reply) -> Result<(), SdkError> {
        reply.validate().map_err(SdkError::Invalid)?;
        self.send(Outbound::Reply(reply))
    }

    pub fn reply_json(&self, json: &str) -> Result<(), SdkError> {
        let r: Reply = serde_json::from_str(json).map_err(|e| SdkError::Json {
            what: "reply",
            reason: e.to_string(),
        })?;
        self.reply(r)
    }

    /// Several replies at once (a JSON array of replies), sent in array
    /// order, usually in one write. All or nothing: if any reply is
    /// malformed, none is sent.
    pub fn reply_many_json(&self, json: &str) -> Result<(), SdkError> {
        let replies: Vec<Reply> = serde_json::from_str(json).map_err(|e| SdkError::Json {
            what: "reply array",
            reason: e.to_string(),
        })?;
        for r in &replies {
            r.validate().map_err(SdkError::Invalid)?;
        }
        for r in replies {
            self.send(Outbound::Reply(r))?;
        }
        Ok(())
    }

    pub fn push_event(&self, event: Event) -> Result<(), SdkError> {
        self.send(Outbound::Event(event))
    }

    pub fn push_event_json(&self, json: &str) -> Result<(), SdkError> {
        let e: Event = serde_json::from_str(json).map_err(|e| SdkError::Json {
            what: "event",
            reason: e.to_string(),
        })?;
        self.push_event(e)
    }

    /// The engine cannot mutate now (`Some(reason)`) or can again (`None`).
    pub fn set_busy(&self, reason: Option<&str>) {
        *self.shared.busy.lock().expect("busy lock") = reason.map(str::to_string);
    }

    pub fn status(&self) -> Status {
        let mut s = self.shared.status().clone();
        s.queue_depth = self.shared.inbox.lock().expect("inbox lock").len();
        s
    }

    /// Sends a crafted hostile frame (tests only).
    #[cfg(feature = "fault-injection")]
    pub fn inject(&self, attack: Attack) -> Result<(), SdkError> {
        self.send(Outbound::Attack(attack))
    }

    /// Drops the QUIC connection without `bye`, as a network loss would;
    /// the SDK reconnects (tests only).
    #[cfg(feature = "fault-injection")]
    pub fn drop_connection(&self) -> Result<(), SdkError> {
        self.send(Outbound::Drop)
    }

    fn send(&self, o: Outbound) -> Result<(), SdkError> {
        if self.shared.closing.load(Ordering::Relaxed) {
            return Err(SdkError::Closed);
        }
        // The channel wakes the network thread's serve loop by itself; a
        // second wake through `wake` would only cost an extra loop turn.
        self.out.send(o).map_err(|_| SdkError::Closed)
    }

    /// Says `bye` to the host and stops the network thread.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        self.shared.inbox_cv.notify_all();
        if let Some(t) = self.thread.lock().expect("thread lock").take() {
            let _ = t.join();
        }
        self.shared.status().state = "closed".into();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.close();
    }
}
