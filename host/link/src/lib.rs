//! The host's side of the link to engine adapters: a quinn QUIC server
//! (TLS 1.3, ALPN `vibesync/1`, self-signed certificate pinned by adapters),
//! one task per engine session, the engine registry, the heartbeat deadman
//! and the global PANIC circuit breaker.
//!
//! Frames, the handshake, key rotation and the health verdict are the
//! sans-IO state machines of `vibesync-protocol`; this crate only moves
//! bytes and time into them. The orchestrator uses [`Link`]:
//! [`Link::send`] a command and await its reply, [`Link::subscribe`] to
//! change events, health changes and PANIC, [`Link::check_mutation_allowed`]
//! before starting a transaction, [`Link::reconcile`] an engine against the
//! canonical scene, and [`Link::resume`] (operator only) to leave PANIC.

mod cert;
mod panic;
mod session;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use vibesync_canonical::{Quantum, SceneObject, scene_hash};
use vibesync_protocol::{
    Command, CommandBody, Health, Key, Observed, Pairing, RefusalCounts, Reply, RotationPolicy,
};

pub use cert::{Identity, SERVER_NAME, load_or_create as load_or_create_identity};
pub use panic::{MutationRefused, PanicState, Readiness, ResumeRefused};

/// Unix time in ms: the only clock the link reads.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How the link is set up.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub listen: SocketAddr,
    /// Holds `host-cert.der` and `host-key.der` (created on first run).
    pub state_dir: PathBuf,
    /// Bootstrap secret of every paired engine, by engine name.
    pub engines: BTreeMap<String, Key>,
    pub rotation: RotationPolicy,
    pub deadman_ms: u64,
    /// How long [`Link::send`] waits for a reply.
    pub command_timeout: Duration,
    /// Send commands queued together to an engine as one `commands` frame
    /// when its adapter advertised `batch` (docs/protocol.md, section 4).
    /// `false` keeps one `command` frame per command.
    pub batch_frames: bool,
}

impl LinkConfig {
    pub fn new(listen: SocketAddr, state_dir: impl Into<PathBuf>) -> Self {
        LinkConfig {
            listen,
            state_dir: state_dir.into(),
            engines: BTreeMap::new(),
            rotation: RotationPolicy::default(),
            deadman_ms: vibesync_protocol::DEADMAN_MS,
            command_timeout: Duration::from_secs(10),
            batch_frames: true,
        }
    }
}

/// Errors of the link. Each names what to do.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("link state: {0}")]
    State(String),
    #[error("cannot start the QUIC endpoint on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("engine `{0}` is not connected; start its adapter (pairing file from `vibesync init`)")]
    NotConnected(String),
    #[error(
        "engine `{0}` reconnected and is not reconciled yet; reconcile it before sending mutations"
    )]
    NotReconciled(String),
    #[error("engine `{engine}` did not answer `{command}` within {ms} ms")]
    Timeout {
        engine: String,
        command: &'static str,
        ms: u64,
    },
    #[error("engine `{0}` disconnected before answering")]
    Disconnected(String),
    #[error("engine `{engine}` refused `{command}`: {code}: {message}")]
    Engine {
        engine: String,
        command: &'static str,
        code: String,
        message: String,
    },
    #[error(
        "engine `{engine}` answered `{command}` without a `{field}`: the adapter breaks docs/adapter-api.md"
    )]
    BadReply {
        engine: String,
        command: &'static str,
        field: &'static str,
    },
    #[error(transparent)]
    Refused(#[from] MutationRefused),
}

/// What the registry knows about one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineInfo {
    pub name: String,
    pub kind: String,
    pub session_id: String,
    pub connected: bool,
    /// Closed with `bye`: gone on purpose, does not trip the deadman.
    pub departed: bool,
    pub last_heartbeat_ms: u64,
    pub last_pump_ms: u64,
    /// Main-thread lag reported by the last heartbeat (pump age).
    pub main_thread_lag_ms: u64,
    pub queue_depth: u32,
    pub busy: Option<String>,
    pub frozen: bool,
    pub frames_refused: RefusalCounts,
    pub frames_accepted: u64,
    pub key_id: u32,
    pub rotations: u64,
    pub reconciled_at_ms: Option<u64>,
    pub health: Health,
    pub sessions: u64,
}

/// What the link tells the orchestrator.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkEvent {
    Connected {
        engine: String,
        kind: String,
        session_id: String,
        reconnect: bool,
    },
    Disconnected {
        engine: String,
        reason: String,
    },
    /// An edit made in the engine (source `engine-edit`).
    Change {
        engine: String,
        event: vibesync_protocol::Event,
    },
    Health {
        engine: String,
        health: Health,
    },
    Panic {
        engine: String,
        reason: String,
        at_ms: u64,
    },
    Resumed,
}

/// Result of [`Link::reconcile`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciled {
    pub resynced: bool,
    pub hash: String,
}

/// A command written by [`Link::send_many`], waiting for its reply.
pub struct PendingReply {
    engine: String,
    command: &'static str,
    id: u64,
    rx: oneshot::Receiver<Reply>,
    timeout: Duration,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>,
}

impl PendingReply {
    /// The reply's `result`, or why there is none (as [`Link::send`]).
    pub async fn wait(self) -> Result<Value, LinkError> {
        let PendingReply {
            engine,
            command,
            id,
            rx,
            timeout,
            pending,
        } = self;
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(LinkError::Disconnected(engine)),
            Err(_) => {
                pending.lock().expect("pending lock").remove(&id);
                return Err(LinkError::Timeout {
                    engine,
                    command,
                    ms: timeout.as_millis() as u64,
                });
            }
        };
        reply_result(engine, command, reply)
    }
}

fn reply_result(engine: String, command: &'static str, reply: Reply) -> Result<Value, LinkError> {
    match (reply.result, reply.error) {
        (Some(v), _) if reply.ok => Ok(v),
        (_, Some(e)) => Err(LinkError::Engine {
            engine,
            command,
            code: e.code,
            message: e.message,
        }),
        _ => Err(LinkError::BadReply {
            engine,
            command,
            field: "result",
        }),
    }
}

pub(crate) enum Outgoing {
    Command(Command),
}

pub(crate) struct SessionHandle {
    pub id: String,
    /// Queued sends that must not wait (freeze from the deadman ticker).
    pub out: mpsc::UnboundedSender<Outgoing>,
    /// Direct sends from [`Link::send`], without a task hop.
    pub writer: Arc<tokio::sync::Mutex<session::Writer>>,
    pub pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>,
}

pub(crate) struct Entry {
    pub info: EngineInfo,
    pub session: Option<SessionHandle>,
}

pub(crate) struct State {
    pub engines: BTreeMap<String, Entry>,
    pub panic: PanicState,
    pub handshake_failures: BTreeMap<String, u64>,
}

impl State {
    /// The session a command to `engine` goes out on, or why it may not:
    /// new mutations are refused during PANIC and to an engine that
    /// reconnected and is not reconciled.
    fn session_for(&self, engine: &str, body: &CommandBody) -> Result<&SessionHandle, LinkError> {
        if body.is_new_mutation() {
            self.panic.check_mutation()?;
        }
        let entry = self
            .engines
            .get(engine)
            .ok_or_else(|| LinkError::NotConnected(engine.into()))?;
        let s = entry
            .session
            .as_ref()
            .ok_or_else(|| LinkError::NotConnected(engine.into()))?;
        if body.is_new_mutation()
            && entry.info.sessions > 1
            && entry.info.reconciled_at_ms.is_none()
        {
            return Err(LinkError::NotReconciled(engine.into()));
        }
        Ok(s)
    }
}

pub(crate) struct Inner {
    pub config: LinkConfig,
    pub state: Mutex<State>,
    pub events: broadcast::Sender<LinkEvent>,
    pub next_id: AtomicU64,
    pub next_session: AtomicU64,
}

impl Inner {
    pub fn emit(&self, e: LinkEvent) {
        let _ = self.events.send(e);
    }
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("link state lock")
    }
    pub fn count_handshake_failure(&self, code: &str) {
        *self
            .lock()
            .handshake_failures
            .entry(code.to_string())
            .or_default() += 1;
    }
}

/// The running link. Cheap to clone.
#[derive(Clone)]
pub struct Link {
    inner: Arc<Inner>,
    endpoint: quinn::Endpoint,
    fingerprint: [u8; 32],
}

impl Link {
    /// Binds the QUIC endpoint, starts accepting engines and the deadman
    /// ticker. Must run inside a tokio runtime.
    pub async fn start(config: LinkConfig) -> Result<Link, LinkError> {
        let id = cert::load_or_create(&config.state_dir)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| LinkError::State(format!("TLS 1.3 unavailable: {e}")))?
            .with_no_client_auth()
            .with_single_cert(vec![id.cert.clone()], id.key.clone_key())
            .map_err(|e| LinkError::State(format!("host certificate rejected by rustls: {e}")))?;
        tls.alpn_protocols = vec![vibesync_protocol::PROTOCOL.as_bytes().to_vec()];
        let qtls = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|e| LinkError::State(format!("QUIC TLS config: {e}")))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(qtls));
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_secs(1)));
        transport.max_idle_timeout(Some(Duration::from_secs(30).try_into().expect("30 s fits")));
        // Fewer ACK-only packets (the same on the adapters' side, in the
        // SDK): every command is answered within milliseconds and the ACK
        // rides in the answer or the next command, while a lone ACK costs a
        // UDP send and a wake-up at both ends. 2 ms is under QUIC's default
        // 25 ms `max_ack_delay`, so loss is detected no later than before.
        let mut acks = quinn::AckFrequencyConfig::default();
        acks.ack_eliciting_threshold(quinn::VarInt::from_u32(10))
            .max_ack_delay(Some(Duration::from_millis(2)));
        transport.ack_frequency_config(Some(acks));
        server.transport_config(Arc::new(transport));
        let endpoint =
            quinn::Endpoint::server(server, config.listen).map_err(|e| LinkError::Bind {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            config,
            state: Mutex::new(State {
                engines: BTreeMap::new(),
                panic: PanicState::Normal,
                handshake_failures: BTreeMap::new(),
            }),
            events,
            next_id: AtomicU64::new(1),
            next_session: AtomicU64::new(1),
        });
        let ep = endpoint.clone();
        let acc = inner.clone();
        tokio::spawn(async move {
            while let Some(incoming) = ep.accept().await {
                tokio::spawn(session::run(acc.clone(), incoming));
            }
        });
        tokio::spawn(deadman(Arc::downgrade(&inner)));
        Ok(Link {
            inner,
            endpoint,
            fingerprint: id.fingerprint,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint
            .local_addr()
            .expect("bound endpoint has an address")
    }

    /// SHA-256 of the host certificate: goes into every pairing file.
    pub fn fingerprint(&self) -> [u8; 32] {
        self.fingerprint
    }

    /// A pairing for `engine` against this running link (the engine's secret
    /// must be in the config).
    pub fn pairing(&self, engine: &str, kind: &str) -> Option<Pairing> {
        let secret = self.inner.config.engines.get(engine)?;
        Some(Pairing::new(
            &self.local_addr().to_string(),
            SERVER_NAME,
            self.fingerprint,
            engine,
            kind,
            *secret,
        ))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LinkEvent> {
        self.inner.events.subscribe()
    }

    pub fn engines(&self) -> Vec<EngineInfo> {
        self.inner
            .lock()
            .engines
            .values()
            .map(|e| e.info.clone())
            .collect()
    }

    pub fn engine(&self, name: &str) -> Option<EngineInfo> {
        self.inner.lock().engines.get(name).map(|e| e.info.clone())
    }

    /// Handshake and TLS failures by code (`bad-proof`, `unknown-engine`,
    /// `tls`, `protocol`, refusal codes of handshake frames).
    pub fn handshake_failures(&self) -> BTreeMap<String, u64> {
        self.inner.lock().handshake_failures.clone()
    }

    pub fn panic_state(&self) -> PanicState {
        self.inner.lock().panic.clone()
    }

    /// Call before starting any transaction: refused during PANIC.
    pub fn check_mutation_allowed(&self) -> Result<(), MutationRefused> {
        self.inner.lock().panic.check_mutation()
    }

    /// Sends a command and waits for its reply (`result` on success).
    /// New mutations (`apply`, `commit`) are refused during PANIC and to an
    /// engine that reconnected and is not reconciled.
    pub async fn send(&self, engine: &str, body: CommandBody) -> Result<Value, LinkError> {
        let command = body.name();
        let (id, pending, writer, rx, body) = {
            let st = self.inner.lock();
            let s = st.session_for(engine, &body)?;
            let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = oneshot::channel();
            s.pending.lock().expect("pending lock").insert(id, tx);
            (id, s.pending.clone(), s.writer.clone(), rx, body)
        };
        let msg = vibesync_protocol::Message::Command(Command { id, body });
        if writer.lock().await.write(Some(&msg)).await.is_err() {
            pending.lock().expect("pending lock").remove(&id);
            return Err(LinkError::Disconnected(engine.into()));
        }
        let timeout = self.inner.config.command_timeout;
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(LinkError::Disconnected(engine.into())),
            Err(_) => {
                pending.lock().expect("pending lock").remove(&id);
                return Err(LinkError::Timeout {
                    engine: engine.into(),
                    command,
                    ms: timeout.as_millis() as u64,
                });
            }
        };
        reply_result(engine.into(), command, reply)
    }

    /// Sends several commands to one engine back to back, in this order,
    /// with one stream write (in one `commands` frame when the adapter takes
    /// them, see [`LinkConfig::batch_frames`]), without waiting for any
    /// reply; each returned
    /// [`PendingReply`] then waits for its own. Adapters run an engine's
    /// commands in the order received, so a `verify` written right behind
    /// an `apply` reads the applied state. Checks as [`Link::send`].
    pub async fn send_many(
        &self,
        engine: &str,
        bodies: Vec<CommandBody>,
    ) -> Vec<Result<PendingReply, LinkError>> {
        let mut out: Vec<Result<PendingReply, LinkError>> = Vec::with_capacity(bodies.len());
        let mut cmds = Vec::with_capacity(bodies.len());
        let mut ids = Vec::new();
        let mut session = None;
        {
            let st = self.inner.lock();
            for body in bodies {
                let command = body.name();
                match st.session_for(engine, &body) {
                    Err(e) => out.push(Err(e)),
                    Ok(s) => {
                        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
                        let (tx, rx) = oneshot::channel();
                        s.pending.lock().expect("pending lock").insert(id, tx);
                        session.get_or_insert_with(|| (s.pending.clone(), s.writer.clone()));
                        ids.push(id);
                        cmds.push(Command { id, body });
                        out.push(Ok(PendingReply {
                            engine: engine.into(),
                            command,
                            id,
                            rx,
                            timeout: self.inner.config.command_timeout,
                            pending: s.pending.clone(),
                        }));
                    }
                }
            }
        }
        if let Some((pending, writer)) = session
            && writer.lock().await.write_many(cmds).await.is_err()
        {
            let mut p = pending.lock().expect("pending lock");
            for id in ids {
                p.remove(&id);
            }
            // Their senders are gone: each waiter sees "disconnected".
        }
        out
    }

    /// Brings `engine` to the canonical state: snapshot, compare hashes,
    /// resync on mismatch. Marks the engine reconciled on success.
    pub async fn reconcile(
        &self,
        engine: &str,
        canonical: &[SceneObject],
        quantum: Quantum,
    ) -> Result<Reconciled, LinkError> {
        let want = scene_hash(canonical.iter(), quantum).to_hex();
        let hash_of = |v: &Value, command| {
            v.get("hash")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| LinkError::BadReply {
                    engine: engine.into(),
                    command,
                    field: "hash",
                })
        };
        let snap = self.send(engine, CommandBody::Snapshot).await?;
        let mut resynced = false;
        let mut got = hash_of(&snap, "snapshot")?;
        if got != want {
            let r = self
                .send(
                    engine,
                    CommandBody::Resync {
                        objects: canonical.to_vec(),
                    },
                )
                .await?;
            got = hash_of(&r, "resync")?;
            resynced = true;
            if got != want {
                return Err(LinkError::Engine {
                    engine: engine.into(),
                    command: "resync",
                    code: "internal".into(),
                    message: format!(
                        "after resync the engine hash is {got}, the canonical hash is {want}"
                    ),
                });
            }
        }
        if let Some(e) = self.inner.lock().engines.get_mut(engine) {
            e.info.reconciled_at_ms = Some(now_ms());
        }
        Ok(Reconciled {
            resynced,
            hash: got,
        })
    }

    /// The operator's resume: leaves PANIC only if every engine is
    /// connected, healthy and reconciled since the trip; then thaws them.
    /// Never exposed to agents.
    ///
    /// Not in PANIC, it still thaws every connected engine and then returns
    /// [`ResumeRefused::NotInPanic`]: an adapter keeps its freeze across
    /// reconnects, so after a host restart during PANIC (the journal keeps
    /// the PANIC, this link starts `Normal`) the adapters frozen by the
    /// previous process would otherwise refuse every mutation for good.
    pub async fn resume(&self) -> Result<(), ResumeRefused> {
        let mut not_in_panic = false;
        let names = {
            let mut st = self.inner.lock();
            let ready: BTreeMap<String, Readiness> = st
                .engines
                .iter()
                .filter(|(_, e)| !e.info.departed)
                .map(|(n, e)| {
                    (
                        n.clone(),
                        Readiness {
                            connected: e.session.is_some(),
                            healthy: e.info.health == Health::Healthy,
                            reconciled_at_ms: e.info.reconciled_at_ms,
                        },
                    )
                })
                .collect();
            match st.panic.resume(&ready) {
                Ok(()) => {}
                Err(ResumeRefused::NotInPanic) => not_in_panic = true,
                Err(e) => return Err(e),
            }
            ready
                .into_iter()
                .filter(|(_, r)| !not_in_panic || r.connected)
                .map(|(n, _)| n)
                .collect::<Vec<_>>()
        };
        for n in names {
            if let Err(e) = self.send(&n, CommandBody::Thaw).await {
                tracing::warn!(engine = %n, error = %e, "thaw failed after resume");
            }
        }
        if not_in_panic {
            return Err(ResumeRefused::NotInPanic);
        }
        self.inner.emit(LinkEvent::Resumed);
        Ok(())
    }

    /// Stops accepting and closes every session.
    pub fn close(&self) {
        self.endpoint.close(0u32.into(), b"host shutting down");
    }
}

/// Every 25 ms: judge each engine; the first trip enters PANIC and freezes
/// every connected engine.
async fn deadman(inner: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(25));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let now = now_ms();
        let mut events = Vec::new();
        let mut tripped = false;
        {
            let mut guard = inner.lock();
            let st = &mut *guard;
            for (name, e) in st.engines.iter_mut() {
                if e.info.departed {
                    continue;
                }
                let pending = e
                    .session
                    .as_ref()
                    .is_some_and(|s| !s.pending.lock().expect("pending lock").is_empty());
                let o = Observed {
                    last_heartbeat_ms: e.info.last_heartbeat_ms,
                    last_pump_ms: e.info.last_pump_ms,
                    pending_work: pending || e.info.queue_depth > 0,
                };
                let h = vibesync_protocol::health::judge(name, o, now, inner.config.deadman_ms);
                if h != e.info.health {
                    e.info.health = h.clone();
                    events.push(LinkEvent::Health {
                        engine: name.clone(),
                        health: h.clone(),
                    });
                }
                if let Health::Tripped { engine, reason } = h {
                    let reason = reason.to_string();
                    if st.panic.trip(&engine, &reason, now) {
                        tracing::error!(%engine, %reason, "PANIC");
                        events.push(LinkEvent::Panic {
                            engine,
                            reason,
                            at_ms: now,
                        });
                        tripped = true;
                    }
                }
            }
        }
        for e in events {
            inner.emit(e);
        }
        if tripped {
            freeze_all(&inner);
        }
    }
}

/// Sends `freeze` to every connected engine without waiting for the acks.
pub(crate) fn freeze_all(inner: &Arc<Inner>) {
    let st = inner.lock();
    let reason = match &st.panic {
        PanicState::Panic { engine, reason, .. } => format!("PANIC: engine `{engine}`: {reason}"),
        PanicState::Normal => return,
    };
    for e in st.engines.values() {
        if let Some(s) = &e.session {
            let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
            // The ack is not awaited: a hung engine gets the freeze when it
            // pumps again; its pending slot is dropped with the session.
            let _ = s.out.send(Outgoing::Command(Command {
                id,
                body: CommandBody::Freeze {
                    reason: reason.clone(),
                },
            }));
        }
    }
}

/// Writes a pairing file with mode 0600 (it holds the bootstrap secret).
/// For `vibesync init`.
pub fn write_pairing(path: &Path, pairing: &Pairing) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only on creation: tighten a pre-existing file too.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    f.write_all(pairing.to_json().as_bytes())?;
    f.write_all(b"\n")
}

/// 32 random bytes from the OS generator (bootstrap secrets, session keys, nonces).
pub fn random_key() -> Key {
    let mut k = [0u8; 32];
    rand::fill(&mut k);
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn identity_persists_and_pairing_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = cert::load_or_create(dir.path()).unwrap();
        let b = cert::load_or_create(dir.path()).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "generated once, then reused");
        let key_mode = std::fs::metadata(dir.path().join("host-key.der"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(key_mode, 0o600);

        let p = dir.path().join("pairing.json");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let pairing = Pairing::new(
            "127.0.0.1:7878",
            SERVER_NAME,
            a.fingerprint,
            "blender-main",
            "blender",
            random_key(),
        );
        write_pairing(&p, &pairing).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600,
            "tightened even if it existed"
        );
        assert_eq!(
            Pairing::parse(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            pairing
        );
    }
}
