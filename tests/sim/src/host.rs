//! The simulated host: the real [`Sequencer`] and WAL codec, driven the way
//! the async shell drives them.
//!
//! Mirrors `host/vibesync/src/orchestrator/mod.rs` (feed inputs, one group
//! commit of the step's journal, only then the effects; engine round trips
//! come back as inputs; a failed append poisons the writer and drops the
//! effects) and `host/link` (handshake, sessions keyed by connection, the
//! deadman judged every tick, PANIC with [`PanicState`], freeze/thaw,
//! `send`'s gates, `reconcile` = snapshot, compare, resync, and the
//! operator's resume = reconcile every engine, then the link's resume, then
//! the sequencer's). Those shells are async code over quinn and tokio, so
//! their control flow is re-stated here; the state machines they call
//! (sequencer, replay, frames, handshake, key ring, health judge, PANIC
//! state) are the real ones.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::Value;
use vibesync_canonical::{Quantum, Scene, SceneObject, StateHash};
use vibesync_ledger::{Answer, Config, Effect, Input, Sequencer};
use vibesync_link::{PanicState, Readiness};
use vibesync_protocol::health::{Health, Observed, judge};
use vibesync_protocol::{
    B32, Channel, Command, CommandBody, DEADMAN_MS, Direction, HostHandshake, KeyRing, Message,
    Receiver, Rekey, RotationPolicy, Sender,
};
use vibesync_wal::{AckOutcome, Record};

use crate::Plant;
use crate::disk::Writer;
use crate::world::{
    COMMAND_TIMEOUT_MS, ENGINES, Ev, FrameId, HOST_TICK_MS, Packet, Stream, World, secret,
};

/// Keys rotate often in the simulation so rotation races are exercised.
pub const ROTATION: RotationPolicy = RotationPolicy {
    rotate_after_ms: 20_000,
    rotate_after_frames: 40,
    overlap_ms: 5_000,
};

pub struct Session {
    pub engine: usize,
    rx_ctl: Receiver,
    rx_hb: Receiver,
    tx: Sender,
    ring: KeyRing,
}

struct Handshake {
    hs: HostHandshake,
    rx: Receiver,
    tx: Sender,
}

/// What the link knows about one engine (`EngineInfo`).
#[derive(Clone, Debug)]
pub struct Info {
    pub last_heartbeat_ms: u64,
    pub last_pump_ms: u64,
    pub queue_depth: u32,
    pub health: Health,
    pub sessions: u64,
    pub reconciled_at_ms: Option<u64>,
    pub reconcile_failed: bool,
    /// The adapter's last heartbeat said it is frozen (`ctl status` shows it).
    pub frozen: bool,
}

#[derive(Clone, Debug)]
enum Purpose {
    Apply { tid: u64 },
    Verify { tid: u64 },
    Undo { tid: u64 },
    Commit,
    Thaw,
    Snapshot { job: u64 },
    Resync { job: u64 },
}

#[derive(Clone, Debug)]
pub struct Pending {
    engine: usize,
    conn: u64,
    purpose: Purpose,
    deadline: u64,
}

pub struct Job {
    engine: usize,
    /// The session the reconcile talks to.
    conn: Option<u64>,
    objects: Vec<SceneObject>,
    want: String,
    for_resume: bool,
}

struct Resume {
    order: Vec<usize>,
    next: usize,
    objects: Vec<SceneObject>,
}

pub struct Host {
    pub up: bool,
    pub boot: u64,
    pub seq: Sequencer,
    writer: Option<Writer>,
    pub wal_fault: Option<String>,
    pub panic: PanicState,
    pub sessions: BTreeMap<u64, Session>,
    handshakes: BTreeMap<u64, Handshake>,
    /// The registered session (connection) of each engine.
    pub current: [Option<u64>; 2],
    pub info: [Info; 2],
    /// Mirror of the sequencer's set of connected engines.
    pub seq_up: BTreeSet<usize>,
    pub pending: BTreeMap<u64, Pending>,
    next_cmd: u64,
    pub jobs: BTreeMap<u64, Job>,
    next_job: u64,
    resume: Option<Resume>,
    pub(crate) journal: Vec<Record>,
    pub(crate) effects: Vec<Effect>,
    internal: VecDeque<Input>,
    next_session: u64,
}

fn config() -> Config {
    let mut c = Config::new(ENGINES.iter().map(|(n, _)| n.to_string()).collect());
    // Checkpoints in the middle of the log are replayed too.
    c.checkpoint_every = 7;
    c.escalation_timeout_ms = 30_000;
    c
}

fn info() -> Info {
    Info {
        last_heartbeat_ms: 0,
        last_pump_ms: 0,
        queue_depth: 0,
        health: Health::Healthy,
        sessions: 0,
        reconciled_at_ms: None,
        reconcile_failed: false,
        frozen: false,
    }
}

fn scene_of(objects: &[SceneObject]) -> Scene {
    let mut s = Scene::new(Quantum::default());
    s.objects = objects.iter().map(|o| (o.id.clone(), o.clone())).collect();
    s
}

fn engine_index(name: &str) -> usize {
    ENGINES
        .iter()
        .position(|(n, _)| *n == name)
        .expect("configured engine")
}

impl Host {
    pub fn down() -> Host {
        Host {
            up: false,
            boot: 0,
            seq: Sequencer::new(config()),
            writer: None,
            wal_fault: None,
            panic: PanicState::Normal,
            sessions: BTreeMap::new(),
            handshakes: BTreeMap::new(),
            current: [None, None],
            info: [info(), info()],
            seq_up: BTreeSet::new(),
            pending: BTreeMap::new(),
            next_cmd: 1,
            jobs: BTreeMap::new(),
            next_job: 1,
            resume: None,
            journal: Vec::new(),
            effects: Vec::new(),
            internal: VecDeque::new(),
            next_session: 1,
        }
    }

    pub fn panic_any(&self) -> bool {
        matches!(self.panic, PanicState::Panic { .. }) || self.seq.panic().is_some()
    }

    /// Connected, healthy, known to the sequencer, reconciled if it came back.
    pub fn engine_ready(&self, e: usize) -> bool {
        let i = &self.info[e];
        self.current[e].is_some()
            && i.health == Health::Healthy
            && self.seq_up.contains(&e)
            && (i.sessions <= 1 || i.reconciled_at_ms.is_some())
    }

    pub fn engine_state(&self, e: usize) -> String {
        let i = &self.info[e];
        format!(
            "session={:?} health={:?} seq_up={} reconciled={:?}",
            self.current[e],
            i.health,
            self.seq_up.contains(&e),
            i.reconciled_at_ms
        )
    }
}

impl World {
    fn hclock(&self) -> u64 {
        self.clock(0)
    }

    pub fn host_boot(&mut self) {
        if self.host.up {
            return;
        }
        let boot = self.host.boot + 1;
        let recovered = match self.disk.recover() {
            Ok(r) => r,
            Err(e) => return self.fail("wal-recovery", e),
        };
        self.check_recovery(&recovered.records);
        if self.failure.is_some() {
            return;
        }
        let (seq, step) = Sequencer::recover(config(), recovered.replay);
        self.log(format!(
            "host boots (#{boot}): {} records, torn tail {} bytes, scene v{}, next tid {}, panic {:?}, {} recovery records",
            recovered.records.len(),
            recovered.torn_bytes,
            seq.scene_version(),
            seq.next_tid(),
            seq.panic(),
            step.journal.len()
        ));
        self.host = Host::down();
        self.host.boot = boot;
        self.host.seq = seq;
        self.host.writer = Some(recovered.writer);
        self.host.up = true;
        self.host.journal = step.journal;
        self.host.effects = step.effects;
        self.flush();
        self.after(HOST_TICK_MS, Ev::HostTick(boot));
    }

    /// The host process dies; the machine loses what was not synced.
    pub fn host_crash(&mut self, back_in: u64) {
        if !self.host.up {
            return;
        }
        self.stats.host_crashes += 1;
        let (kept, of) = self.disk.crash(&mut self.rng);
        self.log(format!("host down: {kept} of {of} unsynced bytes survive"));
        self.host.up = false;
        let conns: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.alive)
            .map(|(id, _)| *id)
            .collect();
        for c in conns {
            let t = self.rng.range(100, crate::world::IDLE_TIMEOUT_MS);
            self.kill_conn(c, "host process gone", 0, t);
        }
        self.agent_host_lost();
        self.after(back_in, Ev::HostBoot);
    }

    /// `Sequencer::handle`, with the PANIC invariant: a step that starts in
    /// PANIC emits no apply. (A batch may hold a tick that starts the next
    /// transaction and then the PANIC itself: that apply was emitted before
    /// the PANIC, and the link's gate refuses it; see [`Self::host_write`].)
    pub fn seq_handle(
        &mut self,
        now: u64,
        input: Input,
    ) -> Result<vibesync_ledger::Step, vibesync_ledger::SequencerError> {
        let in_panic = self.host.seq.panic().map(str::to_owned);
        let step = self.host.seq.handle(now, input)?;
        if let Some(p) = in_panic
            && let Some(Effect::Apply { engine, tid, .. }) = step
                .effects
                .iter()
                .find(|e| matches!(e, Effect::Apply { .. }))
        {
            self.fail(
                "no-mutation-during-panic",
                format!("the sequencer, in PANIC ({p}), emitted apply of tid {tid} to {engine}"),
            );
        }
        Ok(step)
    }

    fn host_input(&mut self, input: Input) {
        let now = self.hclock();
        let (lost, back) = match &input {
            Input::EngineLost { engine, .. } => (Some(engine_index(engine)), None),
            Input::EngineBack { engine, .. } => (None, Some(engine_index(engine))),
            _ => (None, None),
        };
        match self.seq_handle(now, input) {
            Ok(step) => {
                if let Some(e) = lost {
                    self.host.seq_up.remove(&e);
                }
                if let Some(e) = back {
                    self.host.seq_up.insert(e);
                }
                self.host.journal.extend(step.journal);
                self.host.effects.extend(step.effects);
            }
            Err(e) => self.log(format!("host: sequencer ignored an input: {e}")),
        }
    }

    /// Feed an input and flush (one orchestrator loop iteration).
    pub fn host_feed(&mut self, input: Input) {
        self.host_input(input);
        self.flush();
    }

    /// Journal (one group commit), then effects; then what those effects
    /// produced at once, until nothing is left.
    pub fn flush(&mut self) {
        loop {
            if !self.host.journal.is_empty() {
                let records = std::mem::take(&mut self.host.journal);
                let at = self.hclock();
                let fault = self.next_io_fault.take();
                let Some(w) = self.host.writer.as_mut() else {
                    return;
                };
                match self.disk.append(w, at, &records, fault, &mut self.rng) {
                    Ok(()) => self.check_append(&records),
                    Err(e) => {
                        self.stats.io_errors += 1;
                        self.host.effects.clear();
                        if self.host.wal_fault.is_none() {
                            self.log(format!("host: WAL append of {} records failed: {e}; refusing all mutations; operator restarts the host", records.len()));
                            self.host.wal_fault = Some(e);
                            let t = self.rng.range(500, 3_000);
                            self.after(t, Ev::HostRestart(self.host.boot));
                        }
                        return;
                    }
                }
            }
            for effect in std::mem::take(&mut self.host.effects) {
                self.effect(effect);
                if self.failure.is_some() {
                    return;
                }
            }
            if self.host.internal.is_empty() && self.host.journal.is_empty() {
                return;
            }
            while let Some(i) = self.host.internal.pop_front() {
                self.host_input(i);
            }
        }
    }

    /// The operator restarts a host whose log writer is poisoned.
    pub fn host_restart(&mut self, boot: u64) {
        if self.host.up && self.host.boot == boot {
            self.log("operator restarts the host (poisoned WAL)".into());
            let back = self.rng.range(100, 1_000);
            self.host_crash(back);
        }
    }

    fn effect(&mut self, effect: Effect) {
        match effect {
            Effect::Apply { engine, tid, ops } => {
                let e = engine_index(&engine);
                if let Err(why) =
                    self.send_command(e, CommandBody::Apply { tid, ops }, Purpose::Apply { tid })
                {
                    self.host.internal.push_back(Input::Applied {
                        tid,
                        engine,
                        ack: AckOutcome::Failed { error: why },
                    });
                }
            }
            Effect::Verify {
                engine,
                tid,
                objects,
            } => {
                let e = engine_index(&engine);
                if let Err(why) = self.send_command(
                    e,
                    CommandBody::Verify { tid, ids: objects },
                    Purpose::Verify { tid },
                ) {
                    self.host.internal.push_back(Input::Verified {
                        tid,
                        engine,
                        observed: Err(why),
                    });
                }
            }
            Effect::Undo { engine, tid, token } => {
                if self.plant(Plant::SkipUndo) {
                    // PLANTED BUG: report the undo done without sending it.
                    self.host.internal.push_back(Input::Undone {
                        tid,
                        engine,
                        result: Ok(()),
                    });
                    return;
                }
                let e = engine_index(&engine);
                if let Err(why) = self.send_command(
                    e,
                    CommandBody::Rollback {
                        tid,
                        undo_token: std::sync::Arc::unwrap_or_clone(token),
                    },
                    Purpose::Undo { tid },
                ) {
                    self.host.internal.push_back(Input::Undone {
                        tid,
                        engine,
                        result: Err(why),
                    });
                }
            }
            Effect::Commit { engine, tid } => {
                let _ = self.send_command(
                    engine_index(&engine),
                    CommandBody::Commit { tid },
                    Purpose::Commit,
                );
            }
            Effect::Resync {
                engine,
                scene,
                scene_version,
            } => {
                let e = engine_index(&engine);
                self.log(format!("host: resync {engine} to v{scene_version}"));
                let objects = scene.objects.values().cloned().collect();
                self.start_reconcile(e, objects, false);
            }
            Effect::Answer { tid, answer, .. } => self.agent_answer(tid, answer),
        }
    }

    /// `Link::send`: the gates, then seal (rotating the key when due) and write.
    fn send_command(
        &mut self,
        e: usize,
        body: CommandBody,
        purpose: Purpose,
    ) -> Result<(), String> {
        let name = ENGINES[e].0;
        if body.is_new_mutation() && matches!(self.host.panic, PanicState::Panic { .. }) {
            return Err(format!("PANIC: no {} is sent to {name}", body.name()));
        }
        let Some(conn) = self.host.current[e] else {
            return Err(format!("engine `{name}` is not connected"));
        };
        if body.is_new_mutation()
            && self.host.info[e].sessions > 1
            && self.host.info[e].reconciled_at_ms.is_none()
        {
            return Err(format!(
                "engine `{name}` reconnected and is not reconciled yet"
            ));
        }
        let id = self.host.next_cmd;
        self.host.next_cmd += 1;
        let deadline = self.hclock() + COMMAND_TIMEOUT_MS;
        self.host.pending.insert(
            id,
            Pending {
                engine: e,
                conn,
                purpose,
                deadline,
            },
        );
        self.host_write(conn, Message::Command(Command { id, body }));
        Ok(())
    }

    /// The control-stream writer: rotate if due, seal, send. No new
    /// mutation leaves the host while the link is in PANIC.
    fn host_write(&mut self, conn: u64, msg: Message) {
        let now = self.hclock();
        if let Message::Command(c) = &msg
            && c.body.is_new_mutation()
            && let PanicState::Panic { engine, .. } = &self.host.panic
        {
            let engine = engine.clone();
            return self.fail(
                "no-mutation-during-panic",
                format!(
                    "the host sent `{}` while in PANIC ({engine})",
                    c.body.name()
                ),
            );
        }
        let mut out = Vec::new();
        let Some(s) = self.host.sessions.get_mut(&conn) else {
            return;
        };
        if s.ring.should_rotate(now) {
            let (kid, key) = (s.ring.next_id(), self.rng.bytes32());
            let seq = s.tx.next_seq();
            let bytes = s.tx.seal(
                Some(&mut s.ring),
                now,
                &Message::Rekey(Rekey {
                    key_id: kid,
                    key: B32(key),
                }),
            );
            s.ring.install(kid, key, now);
            out.push((seq, bytes));
        }
        let seq = s.tx.next_seq();
        out.push((seq, s.tx.seal(Some(&mut s.ring), now, &msg)));
        for (seq, bytes) in out {
            let id = FrameId {
                stream: Stream::new(conn, Direction::HostToAdapter, Channel::Control),
                seq,
            };
            self.oracle.sent(id, now);
            self.send(
                Packet {
                    id,
                    bytes,
                    injected: false,
                    tampered: false,
                },
                false,
            );
        }
    }

    fn host_handshake_write(&mut self, conn: u64, msg: Message) {
        let now = self.hclock();
        let Some(h) = self.host.handshakes.get_mut(&conn) else {
            return;
        };
        let seq = h.tx.next_seq();
        let bytes = h.tx.seal(None, now, &msg);
        let id = FrameId {
            stream: Stream::new(conn, Direction::HostToAdapter, Channel::Control),
            seq,
        };
        self.oracle.sent(id, now);
        self.send(
            Packet {
                id,
                bytes,
                injected: false,
                tampered: false,
            },
            false,
        );
    }

    pub fn host_receive(&mut self, p: Packet) {
        if !self.host.up || !self.conns.get(&p.id.stream.conn).is_some_and(|c| c.alive) {
            return;
        }
        let conn = p.id.stream.conn;
        let now = self.hclock();
        if !self.host.sessions.contains_key(&conn) && !self.host.handshakes.contains_key(&conn) {
            let nonce = self.rng.bytes32();
            self.host.handshakes.insert(
                conn,
                Handshake {
                    hs: HostHandshake::new(nonce),
                    rx: Receiver::new(Channel::Control, Direction::AdapterToHost),
                    tx: Sender::new(Channel::Control, Direction::HostToAdapter),
                },
            );
        }
        if let Some(h) = self.host.handshakes.get_mut(&conn) {
            let opened = h.rx.open(&p.bytes, None, now);
            let msg = match opened {
                Ok(o) => {
                    self.accepted(&p, conn, o.ts_ms, now, "host");
                    o.msg
                }
                Err(r) => {
                    self.refused(&p, "host handshake", &r.to_string());
                    // The link refuses and ends the handshake.
                    self.host.handshakes.remove(&conn);
                    self.kill_conn(conn, "handshake refused", 0, 50);
                    return;
                }
            };
            let engine = self.conns[&conn].engine;
            match msg {
                Message::Hello(hello) => {
                    let h = self.host.handshakes.get_mut(&conn).expect("present");
                    match h.hs.on_hello(hello, |name| {
                        ENGINES.iter().position(|(n, _)| *n == name).map(secret)
                    }) {
                        Ok(c) => self.host_handshake_write(conn, Message::Challenge(c)),
                        Err(e) => {
                            self.log(format!("host: handshake refused: {e}"));
                            self.kill_conn(conn, "handshake refused", 0, 50);
                        }
                    }
                }
                Message::Prove(prove) => {
                    let key = self.rng.bytes32();
                    let sid = format!("s{}", self.host.next_session);
                    self.host.next_session += 1;
                    let h = self.host.handshakes.get_mut(&conn).expect("present");
                    match h.hs.on_prove(prove, sid.clone(), 1, key, ROTATION) {
                        Ok((hello, welcome)) => {
                            self.host_handshake_write(conn, Message::Welcome(welcome));
                            let h = self.host.handshakes.remove(&conn).expect("present");
                            let e = engine_index(&hello.engine);
                            debug_assert_eq!(e, engine);
                            self.register(e, conn, sid, h, KeyRing::new(1, key, now, ROTATION));
                        }
                        Err(e) => {
                            self.log(format!("host: handshake refused: {e}"));
                            self.kill_conn(conn, "bad proof", 0, 50);
                        }
                    }
                }
                other => {
                    self.log(format!(
                        "host: unexpected `{}` during the handshake",
                        other.kind()
                    ));
                    self.kill_conn(conn, "protocol", 0, 50);
                }
            }
            return;
        }
        let s = self.host.sessions.get_mut(&conn).expect("session");
        let e = s.engine;
        let rx = if p.id.stream.chan == Channel::Heartbeat as u8 {
            &mut s.rx_hb
        } else {
            &mut s.rx_ctl
        };
        let o = match rx.open(&p.bytes, Some(&mut s.ring), now) {
            Ok(o) => o,
            Err(r) => {
                // As the link's session readers: a wedged stream ends the session.
                let wedged = rx.is_wedged();
                self.refused(&p, "host", &r.to_string());
                if wedged {
                    self.kill_conn(conn, "stream wedged", 0, 50);
                }
                return;
            }
        };
        self.accepted(&p, conn, o.ts_ms, now, "host");
        let is_current = self.host.current[e] == Some(conn);
        match o.msg {
            Message::Heartbeat(hb) => {
                if is_current {
                    let i = &mut self.host.info[e];
                    i.last_heartbeat_ms = now;
                    i.last_pump_ms = now.saturating_sub(hb.pump_age_ms);
                    i.queue_depth = hb.queue_depth;
                    i.frozen = hb.frozen;
                }
            }
            Message::Reply(r) => {
                // Each session has its own table of pending commands.
                if self.host.pending.get(&r.id).is_some_and(|p| p.conn == conn)
                    && let Some(pend) = self.host.pending.remove(&r.id)
                {
                    let result = match (r.ok, r.result, r.error) {
                        (true, Some(v), _) => Ok(v),
                        (_, _, Some(err)) => Err(format!("{}: {}", err.code, err.message)),
                        _ => Err("bad reply".into()),
                    };
                    self.complete(pend, result);
                }
            }
            other => self.log(format!(
                "host: unexpected `{}` from {}",
                other.kind(),
                ENGINES[e].0
            )),
        }
        self.flush();
    }

    /// The session is up: register it (replacing an older one), tell the
    /// sequencer, freeze it at once if the cluster is in PANIC.
    fn register(&mut self, e: usize, conn: u64, sid: String, h: Handshake, ring: KeyRing) {
        let now = self.hclock();
        self.host.sessions.insert(
            conn,
            // The control stream goes on with the handshake's receiver and sender.
            Session {
                engine: e,
                rx_ctl: h.rx,
                rx_hb: Receiver::new(Channel::Heartbeat, Direction::AdapterToHost),
                tx: h.tx,
                ring,
            },
        );
        self.host.current[e] = Some(conn);
        let i = &mut self.host.info[e];
        i.last_heartbeat_ms = now;
        i.last_pump_ms = now;
        i.sessions += 1;
        i.reconciled_at_ms = None;
        i.reconcile_failed = false;
        let n = i.sessions;
        self.log(format!(
            "host: {} connected (session {sid}, conn {conn}, #{n})",
            ENGINES[e].0
        ));
        self.host_input(Input::EngineBack {
            engine: ENGINES[e].0.into(),
            session: sid,
        });
        if matches!(self.host.panic, PanicState::Panic { .. }) {
            self.freeze_all();
        }
        self.flush();
    }

    pub fn host_conn_down(&mut self, conn: u64, why: &str) {
        if !self.host.up {
            return;
        }
        self.host.handshakes.remove(&conn);
        let Some(s) = self.host.sessions.remove(&conn) else {
            return;
        };
        let e = s.engine;
        let current = self.host.current[e] == Some(conn);
        if current {
            self.host.current[e] = None;
        }
        let dead: Vec<u64> = self
            .host
            .pending
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            let p = self.host.pending.remove(&id).expect("present");
            self.complete(p, Err(format!("engine `{}` disconnected", ENGINES[e].0)));
        }
        if !current {
            // Only the engine's current session speaks for it
            // (`session::run`): an older one ending after a reconnect is news
            // to nobody.
            self.log(format!(
                "host: an older session of {} ended ({why}) after a newer one registered",
                ENGINES[e].0
            ));
            return self.flush();
        }
        self.log(format!("host: {} disconnected ({why})", ENGINES[e].0));
        self.host_input(Input::EngineLost {
            engine: ENGINES[e].0.into(),
            reason: why.into(),
        });
        self.flush();
    }

    /// A command's reply (or its failure) arrives.
    fn complete(&mut self, p: Pending, result: Result<Value, String>) {
        let engine = ENGINES[p.engine].0.to_string();
        match p.purpose {
            Purpose::Apply { tid } => {
                let ack = match result {
                    Ok(v) => AckOutcome::Applied {
                        undo_token: v.get("undo_token").cloned().unwrap_or_default().into(),
                    },
                    Err(error) => AckOutcome::Failed { error },
                };
                self.host
                    .internal
                    .push_back(Input::Applied { tid, engine, ack });
            }
            Purpose::Verify { tid } => {
                let observed = result.and_then(|v| {
                    v.get("hash")
                        .and_then(Value::as_str)
                        .and_then(StateHash::from_hex)
                        .ok_or_else(|| "the verify reply has no valid `hash`".to_owned())
                });
                self.host.internal.push_back(Input::Verified {
                    tid,
                    engine,
                    observed,
                });
            }
            Purpose::Undo { tid } => {
                self.host.internal.push_back(Input::Undone {
                    tid,
                    engine,
                    result: result.map(|_| ()),
                });
            }
            Purpose::Commit | Purpose::Thaw => {
                if let Err(e) = result {
                    self.log(format!("host: notice to {engine} not delivered: {e}"));
                }
            }
            Purpose::Snapshot { job } => self.reconcile_snapshot(job, result),
            Purpose::Resync { job } => self.reconcile_resynced(job, result),
        }
    }

    fn start_reconcile(&mut self, e: usize, objects: Vec<SceneObject>, for_resume: bool) {
        let want = scene_of(&objects).hash().to_hex();
        let job = self.host.next_job;
        self.host.next_job += 1;
        self.host.jobs.insert(
            job,
            Job {
                engine: e,
                conn: self.host.current[e],
                objects,
                want,
                for_resume,
            },
        );
        if let Err(why) = self.send_command(e, CommandBody::Snapshot, Purpose::Snapshot { job }) {
            self.end_reconcile(job, Err(why));
        }
    }

    fn reconcile_snapshot(&mut self, job: u64, result: Result<Value, String>) {
        let Some(j) = self.host.jobs.get(&job) else {
            return;
        };
        let (e, want) = (j.engine, j.want.clone());
        let got = match result.and_then(|v| {
            v.get("hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| "no `hash`".into())
        }) {
            Ok(h) => h,
            Err(why) => return self.end_reconcile(job, Err(why)),
        };
        if got == want {
            return self.end_reconcile(job, Ok(false));
        }
        let objects = j.objects.clone();
        if let Err(why) =
            self.send_command(e, CommandBody::Resync { objects }, Purpose::Resync { job })
        {
            self.end_reconcile(job, Err(why));
        }
    }

    fn reconcile_resynced(&mut self, job: u64, result: Result<Value, String>) {
        let Some(j) = self.host.jobs.get(&job) else {
            return;
        };
        let (want, e) = (j.want.clone(), j.engine);
        let host_scene = scene_of(&j.objects);
        let r = match result.and_then(|v| {
            v.get("hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| "no `hash`".into())
        }) {
            Ok(h) if h == want => Ok(true),
            Ok(h) => {
                // For the trace: what the engine holds that the host does not.
                let engine_scene = self.engines[e].engine.canonical_scene();
                for (id, o) in &host_scene.objects {
                    let got = engine_scene.get(id);
                    if got != Some(o) {
                        self.log(format!(
                            "host: after resync {id} differs: host {o:?}, engine {got:?}"
                        ));
                    }
                }
                Err(format!(
                    "after resync the engine hash is {h}, the canonical hash is {want}"
                ))
            }
            Err(why) => Err(why),
        };
        self.end_reconcile(job, r);
    }

    fn end_reconcile(&mut self, job: u64, r: Result<bool, String>) {
        let Some(j) = self.host.jobs.remove(&job) else {
            return;
        };
        let name = ENGINES[j.engine].0;
        match &r {
            Ok(resynced) => {
                self.log(format!("host: {name} reconciled (resynced: {resynced})"));
                self.host.info[j.engine].reconciled_at_ms = Some(self.hclock());
                self.host.info[j.engine].reconcile_failed = false;
            }
            Err(why) => {
                self.log(format!("host: {name} could not be reconciled: {why}"));
                // A failure on a session that has since been replaced says
                // nothing about the engine (the new session is resynced).
                if j.conn.is_some() && j.conn == self.host.current[j.engine] {
                    self.host.info[j.engine].reconcile_failed = true;
                }
            }
        }
        if j.for_resume {
            self.resume_step(
                r.map(|_| ())
                    .map_err(|why| format!("engine `{name}` could not be reconciled: {why}")),
            );
        }
    }

    /// Every tick: the sequencer's timeouts, the link's deadman, command
    /// timeouts.
    pub fn host_tick(&mut self, boot: u64) {
        if !self.host.up || self.host.boot != boot {
            return;
        }
        self.after(HOST_TICK_MS, Ev::HostTick(boot));
        let now = self.hclock();
        self.host_input(Input::Tick);
        let mut tripped = false;
        for (e, (name, _)) in ENGINES.iter().enumerate() {
            if self.host.info[e].sessions == 0 {
                continue;
            }
            let pending = self
                .host
                .pending
                .values()
                .any(|p| p.engine == e && Some(p.conn) == self.host.current[e]);
            let i = &self.host.info[e];
            let o = Observed {
                last_heartbeat_ms: i.last_heartbeat_ms,
                last_pump_ms: i.last_pump_ms,
                pending_work: pending || i.queue_depth > 0,
            };
            let h = judge(name, o, now, DEADMAN_MS);
            if h != self.host.info[e].health {
                self.log(format!("host: {} health {:?}", name, h));
                self.host.info[e].health = h.clone();
            }
            if let Health::Tripped { engine, reason } = h {
                let reason = reason.to_string();
                if self.host.panic.trip(&engine, &reason, now) {
                    self.stats.panics += 1;
                    self.log(format!("host: PANIC: {engine}: {reason}"));
                    self.host_input(Input::Panic {
                        reason: format!("engine `{engine}`: {reason}"),
                    });
                    tripped = true;
                }
            }
        }
        if tripped {
            self.freeze_all();
        }
        let due: Vec<u64> = self
            .host
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let p = self.host.pending.remove(&id).expect("present");
            let what = format!(
                "engine `{}` did not answer within {COMMAND_TIMEOUT_MS} ms",
                ENGINES[p.engine].0
            );
            self.complete(p, Err(what));
        }
        self.flush();
    }

    fn freeze_all(&mut self) {
        let PanicState::Panic { engine, reason, .. } = &self.host.panic else {
            return;
        };
        let reason = format!("PANIC: engine `{engine}`: {reason}");
        // `freeze_all` writes without awaiting the ack: no pending slot.
        for e in 0..ENGINES.len() {
            if let Some(conn) = self.host.current[e] {
                let id = self.host.next_cmd;
                self.host.next_cmd += 1;
                let body = CommandBody::Freeze {
                    reason: reason.clone(),
                };
                self.host_write(conn, Message::Command(Command { id, body }));
            }
        }
    }

    /// The operator's `resume` (orchestrator `Core::resume`).
    pub fn start_resume(&mut self) {
        if self.host.resume.is_some() || !self.host.up {
            return;
        }
        // Only a PANIC is left by reconciling every engine first (outside
        // it the link only thaws): `Sequencer::resume_scene`.
        let (order, objects) = match self.host.seq.resume_scene() {
            Some(s) => (
                (0..ENGINES.len()).collect(),
                s.objects.values().cloned().collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        self.log(format!(
            "operator: resume ({} engines to reconcile first)",
            order.len()
        ));
        self.host.resume = Some(Resume {
            order,
            next: 0,
            objects,
        });
        self.resume_step(Ok(()));
    }

    fn resume_step(&mut self, r: Result<(), String>) {
        let Some(res) = self.host.resume.as_mut() else {
            return;
        };
        if let Err(why) = r {
            self.host.resume = None;
            self.log(format!("operator: resume refused: {why}"));
            return;
        }
        if res.next < res.order.len() {
            let e = res.order[res.next];
            res.next += 1;
            let objects = res.objects.clone();
            return self.start_reconcile(e, objects, true);
        }
        self.host.resume = None;
        let ready: BTreeMap<String, Readiness> = (0..ENGINES.len())
            .filter(|e| self.host.info[*e].sessions > 0)
            .map(|e| {
                let i = &self.host.info[e];
                (
                    ENGINES[e].0.to_string(),
                    Readiness {
                        connected: self.host.current[e].is_some(),
                        healthy: i.health == Health::Healthy,
                        reconciled_at_ms: i.reconciled_at_ms,
                    },
                )
            })
            .collect();
        // `Link::resume`: thaw every engine it knows (only the connected
        // ones when it was not in PANIC), then `Core::resume` takes
        // `NotInPanic` as ready: after a host restart the journal still
        // holds the PANIC the new link never saw, and every engine has just
        // been reconciled.
        match self.host.panic.resume(&ready) {
            Ok(()) => {
                for e in ready.keys().map(|n| engine_index(n)) {
                    let _ = self.send_command(e, CommandBody::Thaw, Purpose::Thaw);
                }
            }
            Err(vibesync_link::ResumeRefused::NotInPanic) => {
                self.stats.resume_not_in_panic += 1;
                for (n, r) in &ready {
                    if r.connected {
                        let _ =
                            self.send_command(engine_index(n), CommandBody::Thaw, Purpose::Thaw);
                    }
                }
            }
            Err(e) => {
                self.log(format!("operator: link refused resume: {e}"));
                return;
            }
        }
        let now = self.hclock();
        match self.seq_handle(
            now,
            Input::Resume {
                operator: "operator".into(),
            },
        ) {
            Ok(step) => {
                self.log("operator: resumed".into());
                self.host.journal.extend(step.journal);
                self.host.effects.extend(step.effects);
            }
            Err(e) if self.host.seq.panic().is_none() => {
                self.log(format!("operator: sequencer was not in PANIC ({e})"))
            }
            Err(e) => self.log(format!("operator: sequencer refused resume: {e}")),
        }
        self.flush();
    }

    /// What the operator does, periodically: decide escalations, restart
    /// adapters the host has lost track of, resume after PANIC.
    pub fn operator(&mut self) {
        let every = if self.settling {
            1_000
        } else {
            self.rng.range(2_000, 6_000)
        };
        self.after(every, Ev::Operator);
        if !self.host.up || self.host.wal_fault.is_some() {
            return;
        }
        for tid in self.host.seq.open_tids() {
            if self.settling || self.rng.chance(0.3) {
                let approve = self.rng.chance(0.5);
                let now = self.hclock();
                if let Ok(step) = self.seq_handle(
                    now,
                    Input::Decide {
                        tid,
                        operator: "operator".into(),
                        approve,
                        note: "simulated operator".into(),
                    },
                ) {
                    self.log(format!("operator: tid {tid} approve={approve}"));
                    self.host.journal.extend(step.journal);
                    self.host.effects.extend(step.effects);
                }
            }
        }
        self.flush();
        let mut restarted = false;
        for (e, (name, _)) in ENGINES.iter().enumerate() {
            let i = &self.host.info[e];
            let unreconciled =
                i.reconcile_failed && !self.host.jobs.values().any(|j| j.engine == e);
            if unreconciled && self.engines[e].alive {
                self.log(format!(
                    "operator: restarts the {} adapter: it could not be reconciled",
                    name
                ));
                self.host.info[e].reconcile_failed = false;
                self.engine_crash(e, 200);
                restarted = true;
            }
        }
        // The operator resumes after a PANIC, and also when `ctl status`
        // shows an adapter frozen outside PANIC (a host that crashed after
        // the link froze the engines and before the PANIC was journaled).
        let frozen =
            (0..ENGINES.len()).any(|e| self.host.current[e].is_some() && self.host.info[e].frozen);
        // After restarting an adapter the operator waits for it to be back.
        if !restarted
            && (self.host.panic_any() || frozen)
            && (self.settling || self.rng.chance(0.5))
        {
            self.start_resume();
        }
    }

    /// Scheduled answers reach the agent (`Effect::Answer`).
    fn agent_answer(&mut self, tid: u64, answer: Answer) {
        self.agent_on_answer(tid, answer);
    }
}
