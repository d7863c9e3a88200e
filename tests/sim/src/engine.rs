//! A simulated engine: the reference engine's pure scene (the Blender-like
//! RH +Z-up or the Unity-like LH +Y-up convention, converting at the
//! boundary) behind the adapter SDK's logic, re-stated without threads.
//!
//! Mirrors `adapters/sdk/src/net.rs`: handshake, then a reader that installs
//! rekeys at once, tracks freeze/thaw and refuses new mutations while frozen
//! without bothering the main thread, and queues every other command for the
//! main-thread pump; a heartbeat every second carrying the pump's age and
//! the queue depth. Faults: the main thread hangs, the process crashes and
//! restarts empty, an undo token is lost, hashes are reported wrong.

use std::collections::VecDeque;

use serde_json::json;
use vibesync_protocol::{
    AdapterHandshake, Channel, Command, CommandBody, Direction, Heartbeat, KeyRing, Message,
    Receiver, Reply, Sender,
};
use vibesync_reference_engine::engine::{Convention, Engine};

use crate::world::{
    ENGINES, Ev, FrameId, HEARTBEAT_EVERY_MS, IDLE_TIMEOUT_MS, Packet, Stream, World, secret,
};

pub struct Conn {
    pub id: u64,
    hs: AdapterHandshake,
    established: bool,
    rx: Receiver,
    tx: Sender,
    hb: Sender,
    ring: Option<KeyRing>,
    opened_at: u64,
}

pub struct SimEngine {
    pub idx: usize,
    pub name: &'static str,
    pub kind: &'static str,
    pub alive: bool,
    pub boot: u64,
    pub engine: Engine,
    pub conn: Option<Conn>,
    queue: VecDeque<Command>,
    /// The main thread does not pump before this true time.
    pub hung_until: u64,
    /// When the current hang started (true time).
    pub hung_since: u64,
    /// A pump is scheduled.
    pump_due: bool,
    /// The SDK's PANIC flag: kept across sessions, cleared by `thaw`.
    pub frozen: bool,
    pub lose_undo: bool,
    pub wrong_hash_until: u64,
}

fn convention(kind: &str) -> Convention {
    if kind == "blender" {
        Convention::Blender
    } else {
        Convention::Unity
    }
}

impl SimEngine {
    pub fn new(idx: usize, name: &'static str, kind: &'static str) -> SimEngine {
        SimEngine {
            idx,
            name,
            kind,
            alive: false,
            boot: 0,
            engine: Engine::new(convention(kind)),
            conn: None,
            queue: VecDeque::new(),
            hung_until: 0,
            hung_since: 0,
            pump_due: false,
            frozen: false,
            lose_undo: false,
            wrong_hash_until: 0,
        }
    }
}

impl World {
    fn eclock(&self, e: usize) -> u64 {
        self.clock(e + 1)
    }

    pub fn engine_boot(&mut self, e: usize) {
        if self.engines[e].alive {
            return;
        }
        let en = &mut self.engines[e];
        en.alive = true;
        en.boot += 1;
        en.engine = Engine::new(convention(en.kind));
        en.queue.clear();
        en.frozen = false;
        en.pump_due = false;
        en.hung_until = 0;
        let boot = en.boot;
        self.log(format!("{} starts (#{boot}, empty scene)", ENGINES[e].0));
        self.after(50, Ev::EngineConnect(e));
    }

    pub fn engine_crash(&mut self, e: usize, back_in: u64) {
        if !self.engines[e].alive {
            return;
        }
        self.stats.engine_crashes += 1;
        self.engines[e].alive = false;
        if let Some(c) = self.engines[e].conn.take() {
            let t = self.rng.range(300, IDLE_TIMEOUT_MS);
            self.kill_conn(c.id, "engine process gone", t, 0);
        }
        self.after(back_in, Ev::EngineBoot(e));
    }

    pub fn engine_connect(&mut self, e: usize) {
        let en = &self.engines[e];
        if !en.alive || en.conn.is_some() {
            return;
        }
        if !self.host.up {
            let t = self.rng.range(300, 1_500);
            return self.after(t, Ev::EngineConnect(e));
        }
        let conn = self.open_conn(e);
        let nonce = self.rng.bytes32();
        let (name, kind) = ENGINES[e];
        let now = self.eclock(e);
        let mut c = Conn {
            id: conn,
            hs: AdapterHandshake::new(name, kind, secret(e), nonce),
            established: false,
            rx: Receiver::new(Channel::Control, Direction::HostToAdapter),
            tx: Sender::new(Channel::Control, Direction::AdapterToHost),
            hb: Sender::new(Channel::Heartbeat, Direction::AdapterToHost),
            ring: None,
            opened_at: self.now,
        };
        let hello = Message::Hello(c.hs.hello());
        let seq = c.tx.next_seq();
        let bytes = c.tx.seal(None, now, &hello);
        self.engines[e].conn = Some(c);
        self.engine_emit(e, conn, Channel::Control, seq, bytes, now);
        // The heartbeat timer doubles as the handshake timeout.
        self.after(HEARTBEAT_EVERY_MS, Ev::EngineHeartbeat(e, conn));
    }

    fn engine_emit(
        &mut self,
        _e: usize,
        conn: u64,
        chan: Channel,
        seq: u64,
        bytes: Vec<u8>,
        ts: u64,
    ) {
        let id = FrameId {
            stream: Stream::new(conn, Direction::AdapterToHost, chan),
            seq,
        };
        self.oracle.sent(id, ts);
        self.send(
            Packet {
                id,
                bytes,
                injected: false,
                tampered: false,
            },
            true,
        );
    }

    /// Seal on the control stream of the current connection.
    fn engine_write(&mut self, e: usize, msg: &Message) {
        let now = self.eclock(e);
        let Some(c) = self.engines[e].conn.as_mut() else {
            return;
        };
        let seq = c.tx.next_seq();
        let bytes = c.tx.seal(c.ring.as_mut(), now, msg);
        let conn = c.id;
        self.engine_emit(e, conn, Channel::Control, seq, bytes, now);
    }

    fn engine_drop_conn(&mut self, e: usize, why: &str) {
        if let Some(c) = self.engines[e].conn.take() {
            self.log(format!("{}: drops conn {} ({why})", ENGINES[e].0, c.id));
            self.kill_conn(c.id, why, 50, 0);
            let t = self.rng.range(200, 1_500);
            self.after(t, Ev::EngineConnect(e));
        }
    }

    pub fn engine_conn_down(&mut self, conn: u64, why: &str) {
        for (e, (name, _)) in ENGINES.iter().enumerate() {
            if self.engines[e].conn.as_ref().is_some_and(|c| c.id == conn) {
                self.engines[e].conn = None;
                self.log(format!("{}: connection lost ({why})", name));
                if self.engines[e].alive {
                    let t = self.rng.range(200, 1_500);
                    self.after(t, Ev::EngineConnect(e));
                }
            }
        }
    }

    pub fn engine_receive(&mut self, e: usize, p: Packet) {
        let conn = p.id.stream.conn;
        if !self.engines[e].alive || !self.conns.get(&conn).is_some_and(|c| c.alive) {
            return;
        }
        let now = self.eclock(e);
        let Some(c) = self.engines[e].conn.as_mut().filter(|c| c.id == conn) else {
            return;
        };
        let established = c.established;
        let opened = c.rx.open(&p.bytes, c.ring.as_mut(), now);
        let o = match opened {
            Ok(o) => o,
            Err(r) => {
                // As the SDK's reader: a wedged stream ends the session.
                let wedged = c.rx.is_wedged();
                self.refused(&p, ENGINES[e].0, &r.to_string());
                if !established {
                    self.engine_drop_conn(e, "handshake frame refused");
                } else if wedged {
                    self.engine_drop_conn(e, "control stream wedged");
                }
                return;
            }
        };
        self.accepted(&p, conn, o.ts_ms, now, ENGINES[e].0);
        match o.msg {
            Message::Challenge(ch) => {
                let c = self.engines[e].conn.as_mut().expect("present");
                let prove = c.hs.on_challenge(ch);
                self.engine_write(e, &Message::Prove(prove));
            }
            Message::Welcome(w) => {
                let c = self.engines[e].conn.as_mut().expect("present");
                match c.hs.on_welcome(&w) {
                    Ok(()) => {
                        c.ring = Some(KeyRing::new(w.key_id, w.key.0, now, w.rotation));
                        c.established = true;
                        // A new session: commands of the old one are void
                        // (the host failed them when it dropped).
                        self.engines[e].queue.clear();
                    }
                    Err(err) => self.engine_drop_conn(e, &format!("bad welcome: {err}")),
                }
            }
            Message::Rekey(k) => {
                if let Some(r) = self.engines[e].conn.as_mut().and_then(|c| c.ring.as_mut()) {
                    r.install(k.key_id, k.key.0, now);
                }
            }
            Message::Command(cmd) => self.engine_on_command(e, cmd),
            Message::Bye(_) => self.engine_drop_conn(e, "host said bye"),
            other => self.log(format!("{}: unexpected `{}`", ENGINES[e].0, other.kind())),
        }
    }

    /// The adapter's reader thread (`on_command`).
    fn engine_on_command(&mut self, e: usize, c: Command) {
        let en = &mut self.engines[e];
        match &c.body {
            CommandBody::Freeze { .. } => en.frozen = true,
            CommandBody::Thaw => en.frozen = false,
            _ => {}
        }
        if en.frozen && c.body.is_new_mutation() {
            let r = Reply::err(
                c.id,
                "frozen",
                "the adapter is frozen (PANIC); the host must thaw it first",
            );
            return self.engine_write(e, &Message::Reply(r));
        }
        en.queue.push_back(c);
        self.engine_schedule_pump(e);
    }

    /// The main thread idles in its event loop (a timer every frame); work
    /// is picked up at the next frame, or when a hang ends.
    fn engine_schedule_pump(&mut self, e: usize) {
        if self.engines[e].pump_due {
            return;
        }
        self.engines[e].pump_due = true;
        let t = (self.now + self.rng.range(1, 20)).max(self.engines[e].hung_until);
        let boot = self.engines[e].boot;
        self.at(t, Ev::EnginePump(e, boot));
    }

    /// The main thread's last pump on the engine's clock: a moment ago,
    /// or when the current hang began.
    fn engine_last_pump(&mut self, e: usize) -> u64 {
        let now = self.eclock(e);
        if self.now < self.engines[e].hung_until {
            now.saturating_sub(self.now - self.engines[e].hung_since)
        } else {
            now.saturating_sub(self.rng.range(0, 20))
        }
    }

    /// The engine's main thread: handle every queued command.
    pub fn engine_pump(&mut self, e: usize, boot: u64) {
        if !self.engines[e].alive || self.engines[e].boot != boot {
            return;
        }
        self.engines[e].pump_due = false;
        if self.now < self.engines[e].hung_until {
            return self.engine_schedule_pump(e);
        }
        while let Some(mut c) = self.engines[e].queue.pop_front() {
            let en = &mut self.engines[e];
            en.engine.wrong_hash = self.now < en.wrong_hash_until;
            if let CommandBody::Rollback { undo_token, .. } = &mut c.body
                && en.lose_undo
            {
                en.lose_undo = false;
                *undo_token = json!({"lost": true});
            }
            let what = match &c.body {
                CommandBody::Apply { tid, ops } => format!(
                    "apply tid {tid} {}",
                    serde_json::to_string(ops).unwrap_or_default()
                ),
                CommandBody::Rollback { tid, undo_token } => {
                    format!("rollback tid {tid} {undo_token}")
                }
                CommandBody::Resync { objects } => format!("resync to {} objects", objects.len()),
                other => other.name().to_string(),
            };
            let r = en.engine.handle(c);
            let outcome = if r.ok {
                "ok".to_string()
            } else {
                r.error.as_ref().map_or(String::new(), |e| e.code.clone())
            };
            self.log(format!("{}: {what}: {outcome}", ENGINES[e].0));
            self.engine_write(e, &Message::Reply(r));
        }
    }

    pub fn engine_heartbeat(&mut self, e: usize, conn: u64) {
        if !self.engines[e].alive {
            return;
        }
        let Some(c) = self.engines[e].conn.as_mut().filter(|c| c.id == conn) else {
            return;
        };
        if !c.established {
            if self.now >= c.opened_at + 3_000 {
                return self.engine_drop_conn(e, "no welcome within 3 s");
            }
            return self.after(500, Ev::EngineHeartbeat(e, conn));
        }
        let now = self.clock(e + 1);
        let last_pump_ms = self.engine_last_pump(e);
        let en = &self.engines[e];
        let hb = Heartbeat {
            last_pump_ms,
            pump_age_ms: now.saturating_sub(last_pump_ms),
            busy: None,
            queue_depth: en.queue.len() as u32,
            frozen: en.frozen,
        };
        let c = self.engines[e].conn.as_mut().expect("present");
        let seq = c.hb.next_seq();
        let bytes = c.hb.seal(c.ring.as_mut(), now, &Message::Heartbeat(hb));
        self.engine_emit(e, conn, Channel::Heartbeat, seq, bytes, now);
        self.after(HEARTBEAT_EVERY_MS, Ev::EngineHeartbeat(e, conn));
    }
}
