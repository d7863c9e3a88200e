//! One engine session on the host: handshake, then the control stream
//! (commands out, replies and events in), the heartbeat stream, bulk reply
//! streams, and key rotation. One task per session plus one per inbound
//! unidirectional stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use vibesync_protocol::{
    B32, Budget, Channel, Command, Direction, Health, HostHandshake, KeyRing, Message, Receiver,
    RefusalCounts, Refused, Rekey, Reply, Sender, pack_commands,
};

use crate::wire::{self, Read};
use crate::{EngineInfo, Entry, Inner, LinkEvent, Outgoing, SessionHandle, now_ms};

/// First byte of every unidirectional stream an adapter opens.
pub const STREAM_HEARTBEAT: u8 = 1;
pub const STREAM_BULK: u8 = 2;

pub async fn run(inner: Arc<Inner>, incoming: quinn::Incoming) {
    let conn = match incoming.await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "QUIC/TLS handshake failed");
            inner.count_handshake_failure("tls");
            return;
        }
    };
    let Ok(Ok((mut send, mut recv))) =
        tokio::time::timeout(Duration::from_secs(5), conn.accept_bi()).await
    else {
        inner.count_handshake_failure("protocol");
        conn.close(1u32.into(), b"no control stream within 5 s");
        return;
    };
    let mut rx = Receiver::new(Channel::Control, Direction::AdapterToHost);
    let mut tx = Sender::new(Channel::Control, Direction::HostToAdapter);
    let mut buf = Vec::new();

    let refuse = |inner: &Inner,
                  code: &str,
                  message: String,
                  tx: &mut Sender,
                  send: &mut quinn::SendStream| {
        inner.count_handshake_failure(code);
        tracing::warn!(%code, %message, "handshake refused");
        let rec = tx.seal(
            None,
            now_ms(),
            &Message::Refused(Refused {
                code: code.into(),
                message,
            }),
        );
        let _ = futures_write(send, rec);
    };

    // hello
    let hello = match wire::read(&mut recv, &mut rx, None, &mut buf).await {
        Read::Frame(o) => o.msg,
        Read::Refused(r) => return refuse(&inner, r.code(), r.to_string(), &mut tx, &mut send),
        Read::End => return inner.count_handshake_failure("protocol"),
    };
    let Message::Hello(hello) = hello else {
        return refuse(
            &inner,
            "protocol",
            format!("expected `hello`, got `{}`", hello.kind()),
            &mut tx,
            &mut send,
        );
    };
    let mut hs = HostHandshake::new(crate::random_key());
    let challenge = match hs.on_hello(hello, |e| inner.config.engines.get(e).copied()) {
        Ok(c) => c,
        Err(e) => {
            refuse(&inner, e.code(), e.to_string(), &mut tx, &mut send);
            let _ = send.finish();
            tokio::time::sleep(Duration::from_millis(100)).await;
            return conn.close(2u32.into(), e.code().as_bytes());
        }
    };
    if wire::write(
        &mut send,
        &tx.seal(None, now_ms(), &Message::Challenge(challenge)),
    )
    .await
    .is_err()
    {
        return;
    }
    let prove = match wire::read(&mut recv, &mut rx, None, &mut buf).await {
        Read::Frame(o) => o.msg,
        Read::Refused(r) => return refuse(&inner, r.code(), r.to_string(), &mut tx, &mut send),
        Read::End => return inner.count_handshake_failure("protocol"),
    };
    let Message::Prove(prove) = prove else {
        return refuse(
            &inner,
            "protocol",
            format!("expected `prove`, got `{}`", prove.kind()),
            &mut tx,
            &mut send,
        );
    };
    let session_no = inner
        .next_session
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let session_id = format!("s{session_no}-{}", hex::encode(&crate::random_key()[..6]));
    let key = crate::random_key();
    let (hello, welcome) =
        match hs.on_prove(prove, session_id.clone(), 1, key, inner.config.rotation) {
            Ok(x) => x,
            Err(e) => {
                refuse(&inner, e.code(), e.to_string(), &mut tx, &mut send);
                let _ = send.finish();
                tokio::time::sleep(Duration::from_millis(100)).await;
                return conn.close(2u32.into(), e.code().as_bytes());
            }
        };
    if wire::write(
        &mut send,
        &tx.seal(None, now_ms(), &Message::Welcome(welcome)),
    )
    .await
    .is_err()
    {
        return;
    }
    let engine = hello.engine.clone();
    let ring = Arc::new(Mutex::new(KeyRing::new(
        1,
        key,
        now_ms(),
        inner.config.rotation,
    )));
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let pending = Arc::new(Mutex::new(HashMap::new()));
    let control = Arc::new(tokio::sync::Mutex::new(Writer {
        send,
        tx,
        ring: ring.clone(),
        inner: inner.clone(),
        engine: engine.clone(),
        batch: inner.config.batch_frames && hello.batch,
    }));

    // Register (replacing an older session of the same engine).
    let (reconnect, panicking) = {
        let mut st = inner.lock();
        let now = now_ms();
        let panicking = matches!(st.panic, crate::PanicState::Panic { .. });
        let entry = st.engines.entry(engine.clone()).or_insert_with(|| Entry {
            info: EngineInfo {
                name: engine.clone(),
                kind: hello.kind.clone(),
                session_id: String::new(),
                connected: false,
                departed: false,
                last_heartbeat_ms: now,
                last_pump_ms: now,
                main_thread_lag_ms: 0,
                queue_depth: 0,
                busy: None,
                frozen: false,
                frames_refused: RefusalCounts::default(),
                frames_accepted: 0,
                key_id: 1,
                rotations: 0,
                reconciled_at_ms: None,
                health: Health::Healthy,
                sessions: 0,
            },
            session: None,
        });
        let reconnect = entry.info.sessions > 0;
        entry.info.kind = hello.kind.clone();
        entry.info.session_id = session_id.clone();
        entry.info.connected = true;
        entry.info.departed = false;
        entry.info.last_heartbeat_ms = now;
        entry.info.last_pump_ms = now;
        entry.info.key_id = 1;
        entry.info.sessions += 1;
        entry.info.reconciled_at_ms = None;
        entry.session = Some(SessionHandle {
            id: session_id.clone(),
            out: out_tx,
            pending: pending.clone(),
            writer: control.clone(),
        });
        (reconnect, panicking)
    };
    inner.emit(LinkEvent::Connected {
        engine: engine.clone(),
        kind: hello.kind.clone(),
        session_id: session_id.clone(),
        reconnect,
    });
    if panicking {
        // A newcomer during PANIC is frozen at once.
        crate::freeze_all(&inner);
    }

    let writer = tokio::spawn(write_loop(control, out_rx));
    let uni = tokio::spawn(accept_uni(
        inner.clone(),
        engine.clone(),
        session_id.clone(),
        conn.clone(),
        ring.clone(),
        pending.clone(),
    ));

    // Control stream reader.
    let reason = loop {
        match wire::read(&mut recv, &mut rx, Some(&ring), &mut buf).await {
            Read::End => {
                break conn
                    .close_reason()
                    .map_or("control stream closed".to_string(), |r| r.to_string());
            }
            Read::Refused(r) => {
                tracing::warn!(%engine, code = r.code(), error = %r, "control frame refused");
                note_refusal(&inner, &engine, &session_id, r.code());
                if rx.is_wedged() {
                    break wedged("control", &r);
                }
            }
            Read::Frame(o) => {
                note_accepted(&inner, &engine, &session_id);
                match o.msg {
                    Message::Reply(r) => answer(&pending, [r]),
                    Message::Replies(rs) => answer(&pending, rs),
                    Message::Event(event) => inner.emit(LinkEvent::Change {
                        engine: engine.clone(),
                        event,
                    }),
                    Message::Bye(b) => {
                        if let Some(e) = inner.lock().engines.get_mut(&engine) {
                            e.info.departed = true;
                        }
                        break format!("bye: {}", b.reason);
                    }
                    Message::Refused(r) => {
                        tracing::warn!(%engine, code = %r.code, message = %r.message, "adapter refused a frame")
                    }
                    other => {
                        tracing::warn!(%engine, kind = other.kind(), "unexpected message on the control stream")
                    }
                }
            }
        }
    };
    writer.abort();
    uni.abort();
    conn.close(0u32.into(), b"session ended");
    // Only the engine's current session speaks for it: an older session that
    // ends after a newer one registered (a quick reconnect) must not mark the
    // connected engine as gone.
    let current = {
        let mut st = inner.lock();
        match st.engines.get_mut(&engine) {
            Some(e) if e.session.as_ref().is_some_and(|s| s.id == session_id) => {
                e.session = None;
                e.info.connected = false;
                true
            }
            _ => false,
        }
    };
    // Dropping `pending` wakes every waiter with "disconnected".
    pending.lock().expect("pending lock").clear();
    if current {
        inner.emit(LinkEvent::Disconnected { engine, reason });
    }
}

/// Hands replies to the commands waiting for them (an unknown id, e.g. of
/// a command that timed out, is dropped).
fn answer(pending: &Pending, replies: impl IntoIterator<Item = Reply>) {
    let mut p = pending.lock().expect("pending lock");
    for r in replies {
        if let Some(tx) = p.remove(&r.id) {
            let _ = tx.send(r);
        }
    }
}

/// The commands of a session waiting for their replies, by id.
type Pending = Mutex<HashMap<u64, tokio::sync::oneshot::Sender<Reply>>>;

/// Why a session ends when one of its strict streams can accept no more
/// frames (see `Receiver::is_wedged`).
fn wedged(stream: &str, refusal: &vibesync_protocol::Refusal) -> String {
    format!(
        "{stream} stream wedged ({refusal}, several in a row): a frame was refused at the \
         position the stream expected; the session ends so the adapter reconnects with fresh keys"
    )
}

fn futures_write(send: &mut quinn::SendStream, rec: Vec<u8>) -> Result<(), ()> {
    // Best effort, without awaiting: the refusal is a courtesy.
    send.write_chunk(rec.into()).now_or_never_ok()
}

trait NowOrNever {
    fn now_or_never_ok(self) -> Result<(), ()>;
}

impl<F: std::future::Future<Output = Result<(), quinn::WriteError>>> NowOrNever for F {
    fn now_or_never_ok(self) -> Result<(), ()> {
        let mut f = std::pin::pin!(self);
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(Ok(())) => Ok(()),
            _ => Err(()),
        }
    }
}

fn with_entry(inner: &Inner, engine: &str, session_id: &str, f: impl FnOnce(&mut EngineInfo)) {
    let mut st = inner.lock();
    if let Some(e) = st.engines.get_mut(engine)
        && e.info.session_id == session_id
    {
        f(&mut e.info);
    }
}

fn note_refusal(inner: &Inner, engine: &str, session_id: &str, code: &str) {
    with_entry(inner, engine, session_id, |i| {
        let idx = vibesync_protocol::REFUSAL_CODES
            .iter()
            .position(|c| *c == code)
            .expect("refusal codes are listed");
        i.frames_refused.0[idx] += 1;
    });
}

fn note_accepted(inner: &Inner, engine: &str, session_id: &str) {
    with_entry(inner, engine, session_id, |i| i.frames_accepted += 1);
}

/// The control stream's sending half: every frame to the adapter goes
/// through here, under one async lock, so frames leave in sequence order.
/// Rotates the key by frame count before a send.
pub struct Writer {
    send: quinn::SendStream,
    tx: Sender,
    ring: Arc<Mutex<KeyRing>>,
    inner: Arc<Inner>,
    engine: String,
    /// Commands written together go in `commands` frames (the adapter
    /// advertised `batch` and the link is configured to use it).
    batch: bool,
}

impl Writer {
    /// Seals (after a rotation, if one is due) and writes `msg`.
    pub async fn write(&mut self, msg: Option<&Message>) -> Result<(), quinn::WriteError> {
        let now = now_ms();
        let bytes = {
            let ring = self.ring.clone();
            let mut r = ring.lock().expect("key ring lock");
            let mut bytes = self.rotate_if_due(&mut r, now);
            if let Some(m) = msg {
                bytes.extend(self.tx.seal(Some(&mut r), now, m));
            }
            bytes
        };
        if bytes.is_empty() {
            return Ok(());
        }
        wire::write(&mut self.send, &bytes).await
    }

    /// Seals the commands, in order, and writes them with one stream write
    /// (one rotation check first, as [`Writer::write`] does): packed into
    /// `commands` frames within the batch limits when the session batches,
    /// else one `command` frame each.
    pub async fn write_many(&mut self, cmds: Vec<Command>) -> Result<(), quinn::WriteError> {
        if cmds.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let bytes = {
            let ring = self.ring.clone();
            let mut r = ring.lock().expect("key ring lock");
            let mut bytes = self.rotate_if_due(&mut r, now);
            if self.batch {
                for p in pack_commands(&cmds, Budget::default()) {
                    bytes.extend(self.tx.seal_packed(Some(&mut r), now, &p));
                }
            } else {
                for c in cmds {
                    bytes.extend(self.tx.seal(Some(&mut r), now, &Message::Command(c)));
                }
            }
            bytes
        };
        wire::write(&mut self.send, &bytes).await
    }

    /// The sealed `rekey` frame when the key is due for rotation (the new
    /// key is installed: everything sealed after it uses it), else nothing.
    fn rotate_if_due(&mut self, r: &mut KeyRing, now: u64) -> Vec<u8> {
        if !r.should_rotate(now) {
            return Vec::new();
        }
        let (id, key) = (r.next_id(), crate::random_key());
        let rec = self.tx.seal(
            Some(r),
            now,
            &Message::Rekey(Rekey {
                key_id: id,
                key: B32(key),
            }),
        );
        r.install(id, key, now);
        let mut st = self.inner.lock();
        if let Some(e) = st.engines.get_mut(&self.engine) {
            e.info.key_id = id;
            e.info.rotations += 1;
        }
        rec
    }
}

/// Sends queued commands (freezes) and rotates by age on a 1 s tick.
async fn write_loop(
    writer: Arc<tokio::sync::Mutex<Writer>>,
    mut out: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let msg = tokio::select! {
            m = out.recv() => match m {
                Some(Outgoing::Command(c)) => Some(Message::Command(c)),
                None => return,
            },
            _ = tick.tick() => None,
        };
        if writer.lock().await.write(msg.as_ref()).await.is_err() {
            return;
        }
    }
}

/// Accepts the adapter's unidirectional streams: one heartbeat stream and
/// any number of bulk reply streams.
async fn accept_uni(
    inner: Arc<Inner>,
    engine: String,
    session_id: String,
    conn: quinn::Connection,
    ring: Arc<Mutex<KeyRing>>,
    pending: Arc<Pending>,
) {
    let bulk_rx = Arc::new(tokio::sync::Mutex::new(Receiver::new(
        Channel::Bulk,
        Direction::AdapterToHost,
    )));
    let mut have_heartbeat = false;
    while let Ok(mut rs) = conn.accept_uni().await {
        let mut ty = [0u8; 1];
        if rs.read_exact(&mut ty).await.is_err() {
            continue;
        }
        match ty[0] {
            STREAM_HEARTBEAT if !have_heartbeat => {
                have_heartbeat = true;
                tokio::spawn(heartbeat_loop(
                    conn.clone(),
                    inner.clone(),
                    engine.clone(),
                    session_id.clone(),
                    rs,
                    ring.clone(),
                ));
            }
            STREAM_BULK => {
                let (inner, engine, session_id, ring, pending, bulk_rx) = (
                    inner.clone(),
                    engine.clone(),
                    session_id.clone(),
                    ring.clone(),
                    pending.clone(),
                    bulk_rx.clone(),
                );
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut rx = bulk_rx.lock().await;
                    match wire::read(&mut rs, &mut rx, Some(&ring), &mut buf).await {
                        Read::Frame(o) => {
                            note_accepted(&inner, &engine, &session_id);
                            if let Message::Reply(r) = o.msg {
                                answer(&pending, [r]);
                            }
                        }
                        Read::Refused(r) => note_refusal(&inner, &engine, &session_id, r.code()),
                        Read::End => {}
                    }
                });
            }
            other => {
                tracing::warn!(%engine, stream_type = other, "unknown or duplicate unidirectional stream refused");
                note_refusal(&inner, &engine, &session_id, "misrouted");
                let _ = rs.stop(1u32.into());
            }
        }
    }
}

async fn heartbeat_loop(
    conn: quinn::Connection,
    inner: Arc<Inner>,
    engine: String,
    session_id: String,
    mut rs: quinn::RecvStream,
    ring: Arc<Mutex<KeyRing>>,
) {
    let mut rx = Receiver::new(Channel::Heartbeat, Direction::AdapterToHost);
    let mut buf = Vec::new();
    loop {
        match wire::read(&mut rs, &mut rx, Some(&ring), &mut buf).await {
            Read::End => return,
            Read::Refused(r) => {
                note_refusal(&inner, &engine, &session_id, r.code());
                if rx.is_wedged() {
                    let why = wedged("heartbeat", &r);
                    tracing::warn!(%engine, "{why}");
                    conn.close(0u32.into(), why.as_bytes());
                    return;
                }
            }
            Read::Frame(o) => {
                let Message::Heartbeat(hb) = o.msg else {
                    continue;
                };
                let now = now_ms();
                with_entry(&inner, &engine, &session_id, |i| {
                    i.frames_accepted += 1;
                    i.last_heartbeat_ms = now;
                    i.last_pump_ms = now.saturating_sub(hb.pump_age_ms);
                    i.main_thread_lag_ms = hb.pump_age_ms;
                    i.queue_depth = hb.queue_depth;
                    i.busy = hb.busy.clone();
                    i.frozen = hb.frozen;
                });
            }
        }
    }
}
