//! The simulated world: one clock of true time, an event queue ordered by
//! (time, sequence number), the network between host and engines, the
//! per-node clocks, the fault schedule, and the run loop with its two
//! phases (faults, then settle) and its final checks.
//!
//! The host and engine logic is in [`crate::host`] and [`crate::engine`];
//! the agent in [`crate::agent`]; the invariants in [`crate::check`].

use std::collections::{BTreeMap, BTreeSet};

use vibesync_protocol::{Channel, Direction};

use crate::check::Oracle;
use crate::disk::{Disk, IoFault};
use crate::engine::SimEngine;
use crate::host::Host;
use crate::rng::Rng;
use crate::{Failure, Options, Plant};

/// Unix ms at true time 0 (the protocol checks timestamps against clocks).
pub const EPOCH_MS: u64 = 1_700_000_000_000;
/// A QUIC connection silent this long is closed by both ends.
pub const IDLE_TIMEOUT_MS: u64 = 4_000;
/// The link's command timeout (`LinkConfig::command_timeout`).
pub const COMMAND_TIMEOUT_MS: u64 = 10_000;
/// The link's deadman judge period and the orchestrator's tick.
pub const HOST_TICK_MS: u64 = 100;
pub const HEARTBEAT_EVERY_MS: u64 = 1_000;
pub const ENGINES: [(&str, &str); 2] = [("blender-1", "blender"), ("unity-1", "unity")];
/// The bootstrap secret of each engine (`pairing`).
pub fn secret(engine: usize) -> [u8; 32] {
    [0x40 + engine as u8; 32]
}

/// Which way a frame travels, with its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stream {
    pub conn: u64,
    pub dir: u8,
    pub chan: u8,
}

impl Stream {
    pub fn new(conn: u64, dir: Direction, chan: Channel) -> Stream {
        Stream {
            conn,
            dir: dir as u8,
            chan: chan as u8,
        }
    }
}

/// The identity of one sealed frame (what the oracle tracks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FrameId {
    pub stream: Stream,
    pub seq: u64,
}

/// One record on the wire, with what the oracle knows about it.
#[derive(Clone, Debug)]
pub struct Packet {
    pub id: FrameId,
    pub bytes: Vec<u8>,
    /// A copy an on-path attacker injected (replayed or tampered).
    pub injected: bool,
    pub tampered: bool,
}

#[derive(Clone, Debug)]
pub enum Ev {
    ToHost(Packet),
    ToEngine(usize, Packet),
    /// One side learns that a connection is gone.
    ConnDown {
        conn: u64,
        to_host: bool,
        why: String,
    },
    HostTick(u64),
    HostBoot,
    /// The operator restarts the host of this boot (poisoned WAL).
    HostRestart(u64),
    EngineBoot(usize),
    EngineConnect(usize),
    EnginePump(usize, u64),
    EngineHeartbeat(usize, u64),
    Agent,
    Fault,
    Operator,
    EndOfFaults,
}

/// A connection between the host and one engine.
#[derive(Clone, Debug)]
pub struct Conn {
    pub engine: usize,
    pub alive: bool,
    /// Frames are held until this true time (a partition).
    pub held_until: u64,
    /// Last scheduled delivery per stream: streams deliver in order.
    pub last: BTreeMap<(u8, u8), u64>,
}

/// A node's clock: true time plus an offset that drifts and jumps.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    pub offset_ms: i64,
    pub drift_ppm: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub intents: u64,
    pub committed: u64,
    pub rolled_back: u64,
    pub denied: u64,
    pub refused: u64,
    pub panics: u64,
    pub host_crashes: u64,
    pub engine_crashes: u64,
    pub frames_refused: u64,
    pub injected_refused: u64,
    pub io_errors: u64,
    pub torn_tails: u64,
    /// Resumes after a host restart (the link was not in PANIC, the journal was).
    pub resume_not_in_panic: u64,
}

pub struct World {
    pub opts: Options,
    pub now: u64,
    pub rng: Rng,
    queue: BTreeMap<(u64, u64), Ev>,
    next_ev: u64,
    pub next_conn: u64,
    pub conns: BTreeMap<u64, Conn>,
    /// 0 is the host, 1 + i is engine i.
    pub clocks: [Clock; 3],
    pub disk: Disk,
    pub next_io_fault: Option<IoFault>,
    pub host: Host,
    pub engines: Vec<SimEngine>,
    pub agent: crate::agent::Agent,
    pub oracle: Oracle,
    pub trace: Vec<String>,
    pub stats: Stats,
    /// Faults are over; the cluster is settling.
    pub settling: bool,
    pub failure: Option<Failure>,
}

impl World {
    pub fn new(opts: Options) -> World {
        let mut rng = Rng::new(opts.seed);
        let mut clocks = [Clock::default(); 3];
        for c in clocks.iter_mut().skip(1) {
            c.offset_ms = rng.range(0, 600) as i64 - 300;
            c.drift_ppm = rng.range(0, 200) as i64 - 100;
        }
        World {
            opts,
            now: 0,
            rng,
            queue: BTreeMap::new(),
            next_ev: 0,
            next_conn: 1,
            conns: BTreeMap::new(),
            clocks,
            disk: Disk::default(),
            next_io_fault: None,
            host: Host::down(),
            engines: ENGINES
                .iter()
                .enumerate()
                .map(|(i, (n, k))| SimEngine::new(i, n, k))
                .collect(),
            agent: crate::agent::Agent::default(),
            oracle: Oracle::default(),
            trace: Vec::new(),
            stats: Stats::default(),
            settling: false,
            failure: None,
        }
    }

    pub fn plant(&self, p: Plant) -> bool {
        self.opts.plant == Some(p)
    }

    pub fn at(&mut self, t: u64, ev: Ev) {
        self.next_ev += 1;
        self.queue.insert((t.max(self.now), self.next_ev), ev);
    }

    pub fn after(&mut self, dt: u64, ev: Ev) {
        self.at(self.now + dt, ev);
    }

    /// Node `n`'s clock in unix ms.
    pub fn clock(&self, n: usize) -> u64 {
        let c = self.clocks[n];
        let t = EPOCH_MS as i64
            + self.now as i64
            + c.offset_ms
            + self.now as i64 * c.drift_ppm / 1_000_000;
        t.max(0) as u64
    }

    pub fn log(&mut self, line: String) {
        self.trace.push(format!("{:>7} {line}", self.now));
    }

    /// Record an invariant violation (the first one ends the run).
    pub fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.failure.is_none() {
            self.log(format!("INVARIANT VIOLATED [{invariant}]: {detail}"));
            self.failure = Some(Failure {
                invariant,
                detail,
                at_ms: self.now,
            });
        }
    }

    /// Open a connection for engine `e`.
    pub fn open_conn(&mut self, e: usize) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                engine: e,
                alive: true,
                held_until: 0,
                last: BTreeMap::new(),
            },
        );
        id
    }

    /// Close a connection; each side learns it after its own delay.
    pub fn kill_conn(&mut self, conn: u64, why: &str, host_after: u64, engine_after: u64) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.alive {
            return;
        }
        c.alive = false;
        self.after(
            host_after,
            Ev::ConnDown {
                conn,
                to_host: true,
                why: why.into(),
            },
        );
        self.after(
            engine_after,
            Ev::ConnDown {
                conn,
                to_host: false,
                why: why.into(),
            },
        );
    }

    /// Put a sealed record on the wire. Streams are ordered and reliable
    /// (QUIC): loss shows up as retransmission delay, a partition holds
    /// frames back. Reordering happens between streams. An on-path attacker
    /// sometimes replays or tampers with a copy.
    pub fn send(&mut self, mut p: Packet, to_host: bool) {
        // `seal` returns the record with its 4-byte length prefix; the
        // stream reader (`wire::read`) strips it before `Receiver::open`.
        p.bytes.drain(..4.min(p.bytes.len()));
        let Some(c) = self.conns.get(&p.id.stream.conn) else {
            return;
        };
        if !c.alive {
            return;
        }
        let engine = c.engine;
        let mut delay = self.rng.range(1, 30);
        if self.rng.chance(0.05) {
            delay += self.rng.range(50, 400); // loss and retransmission
        }
        let key = (p.id.stream.dir, p.id.stream.chan);
        let c = self.conns.get_mut(&p.id.stream.conn).expect("present");
        let t = (self.now + delay)
            .max(c.held_until + delay / 2)
            .max(c.last.get(&key).copied().unwrap_or(0));
        c.last.insert(key, t);
        let mk = |p: Packet| {
            if to_host {
                Ev::ToHost(p)
            } else {
                Ev::ToEngine(engine, p)
            }
        };
        if !self.settling && self.rng.chance(0.02) {
            let later = self.rng.range(0, 7_000);
            self.at(
                t + later,
                mk(Packet {
                    injected: true,
                    ..p.clone()
                }),
            );
        }
        if !self.settling && self.rng.chance(0.01) {
            let mut bytes = p.bytes.clone();
            let i = self.rng.range(0, bytes.len() as u64 - 1) as usize;
            bytes[i] ^= 1 << self.rng.range(0, 7);
            self.at(
                t + 1,
                mk(Packet {
                    bytes,
                    injected: true,
                    tampered: true,
                    ..p.clone()
                }),
            );
        }
        if !self.settling && self.rng.chance(0.005) {
            // A frame of this engine replayed into its newest connection.
            let newest = self
                .conns
                .iter()
                .rev()
                .find(|(_, c)| c.engine == engine && c.alive)
                .map(|(id, _)| *id);
            if let Some(newest) = newest
                && newest != p.id.stream.conn
            {
                let mut q = p.clone();
                q.injected = true;
                q.id.stream.conn = newest;
                q.id.seq = u64::MAX - q.id.seq; // never a genuine id of that stream
                self.at(t + 5, mk(q));
            }
        }
        self.at(t, mk(p));
    }

    pub fn run(mut self) -> crate::Outcome {
        crate::policy::pipeline();
        self.log(format!(
            "seed {} engines {:?} clocks {:?}",
            self.opts.seed,
            ENGINES,
            self.clocks
                .iter()
                .map(|c| (c.offset_ms, c.drift_ppm))
                .collect::<Vec<_>>()
        ));
        self.at(0, Ev::HostBoot);
        for e in 0..self.engines.len() {
            let t = self.rng.range(0, 300);
            self.at(t, Ev::EngineBoot(e));
        }
        self.at(500, Ev::Agent);
        self.at(2_000, Ev::Operator);
        let first_fault = self.rng.range(1_000, 3_000);
        self.at(first_fault, Ev::Fault);
        self.at(self.opts.active_ms, Ev::EndOfFaults);
        let deadline = self.opts.active_ms + self.opts.settle_ms;
        let mut quiet_since = None;
        while self.failure.is_none() {
            let Some(((t, _), ev)) = self.queue.pop_first() else {
                break;
            };
            if t > deadline {
                break;
            }
            self.now = t;
            self.stats.events += 1;
            self.dispatch(ev);
            if self.failure.is_some() {
                break;
            }
            if self.settling {
                if self.quiescent() {
                    let since = *quiet_since.get_or_insert(self.now);
                    if self.now >= since + 2_000 {
                        self.final_checks();
                        return self.finish(true);
                    }
                } else {
                    quiet_since = None;
                }
            }
        }
        if self.failure.is_none() {
            let why = self.not_quiescent_because();
            self.fail(
                "liveness",
                format!(
                    "the cluster did not settle within {} ms after the faults stopped: {why}",
                    self.opts.settle_ms
                ),
            );
        }
        self.finish(false)
    }

    fn finish(mut self, settled: bool) -> crate::Outcome {
        self.stats.torn_tails = self.disk.torn_tails;
        self.log(format!("end settled={settled} stats={:?}", self.stats));
        crate::Outcome {
            seed: self.opts.seed,
            trace: self.trace,
            failure: self.failure,
            stats: self.stats,
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::ToHost(p) => self.host_receive(p),
            Ev::ToEngine(e, p) => self.engine_receive(e, p),
            Ev::ConnDown {
                conn,
                to_host: true,
                why,
            } => self.host_conn_down(conn, &why),
            Ev::ConnDown {
                conn,
                to_host: false,
                why,
            } => self.engine_conn_down(conn, &why),
            Ev::HostTick(b) => self.host_tick(b),
            Ev::HostRestart(b) => self.host_restart(b),
            Ev::HostBoot => self.host_boot(),
            Ev::EngineBoot(e) => self.engine_boot(e),
            Ev::EngineConnect(e) => self.engine_connect(e),
            Ev::EnginePump(e, b) => self.engine_pump(e, b),
            Ev::EngineHeartbeat(e, conn) => self.engine_heartbeat(e, conn),
            Ev::Agent => self.agent_act(),
            Ev::Fault => self.inject_fault(),
            Ev::Operator => self.operator(),
            Ev::EndOfFaults => self.end_faults(),
        }
    }

    /// Pick and inject one fault.
    fn inject_fault(&mut self) {
        if self.settling {
            return;
        }
        let next = self.rng.range(500, 3_500);
        self.after(next, Ev::Fault);
        let e = self.rng.range(0, self.engines.len() as u64 - 1) as usize;
        let name = ENGINES[e].0;
        match self.rng.range(0, 99) {
            0..=14 => {
                let ms = self.rng.range(200, 6_000);
                let conns: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.alive && c.engine == e)
                    .map(|(id, _)| *id)
                    .collect();
                self.log(format!(
                    "FAULT partition {name} for {ms} ms (conns {conns:?})"
                ));
                for id in conns {
                    if ms >= IDLE_TIMEOUT_MS {
                        self.kill_conn(
                            id,
                            "idle timeout during a partition",
                            IDLE_TIMEOUT_MS,
                            IDLE_TIMEOUT_MS,
                        );
                    } else if let Some(c) = self.conns.get_mut(&id) {
                        c.held_until = self.now + ms;
                    }
                }
            }
            15..=29 => {
                let ms = self.rng.range(500, 9_000);
                self.log(format!("FAULT {name} main thread hangs for {ms} ms"));
                if self.now >= self.engines[e].hung_until {
                    self.engines[e].hung_since = self.now;
                }
                self.engines[e].hung_until = self.now + ms;
            }
            30..=39 => {
                let back = self.rng.range(300, 5_000);
                self.log(format!("FAULT {name} crashes (restarts in {back} ms)"));
                self.engine_crash(e, back);
            }
            40..=47 => {
                self.log(format!("FAULT {name} will lose its undo tokens"));
                self.engines[e].lose_undo = true;
            }
            48..=55 => {
                let ms = self.rng.range(200, 5_000);
                self.log(format!("FAULT {name} reports wrong hashes for {ms} ms"));
                self.engines[e].wrong_hash_until = self.now + ms;
            }
            56..=65 => {
                let back = self.rng.range(200, 3_000);
                self.log(format!("FAULT host crashes (restarts in {back} ms)"));
                self.host_crash(back);
            }
            66..=73 => {
                let f = if self.rng.chance(0.5) {
                    IoFault::Write
                } else {
                    IoFault::Sync
                };
                self.log(format!("FAULT next WAL append fails: {f:?}"));
                self.next_io_fault = Some(f);
            }
            74..=89 => {
                let node = self.rng.range(0, 2) as usize;
                let big = self.rng.chance(0.2);
                let mag = if big {
                    self.rng.range(1_500, 8_000)
                } else {
                    self.rng.range(10, 900)
                } as i64;
                let jump = if self.rng.chance(0.5) { mag } else { -mag };
                self.clocks[node].offset_ms += jump;
                let who = if node == 0 {
                    "host"
                } else {
                    ENGINES[node - 1].0
                };
                self.log(format!("FAULT clock of {who} jumps {jump:+} ms"));
            }
            _ => {
                let drift = self.rng.range(0, 2_000) as i64 - 1_000;
                let node = self.rng.range(0, 2) as usize;
                // Re-base so the drift change does not itself jump the clock.
                let c = &mut self.clocks[node];
                c.offset_ms += self.now as i64 * (c.drift_ppm - drift) / 1_000_000;
                c.drift_ppm = drift;
                self.log(format!(
                    "FAULT clock drift of node {node} is now {drift} ppm"
                ));
            }
        }
    }

    /// Faults stop: heal partitions, wake hung engines, clear fault flags,
    /// restart whatever is down. The operator starts doing their job.
    fn end_faults(&mut self) {
        self.settling = true;
        self.log("faults end; the cluster settles".into());
        for c in self.conns.values_mut() {
            c.held_until = c.held_until.min(self.now);
        }
        self.next_io_fault = None;
        // NTP brings the clocks back within the protocol's 1 s skew: a
        // permanent skew beyond it refuses every handshake (by design).
        for n in 0..self.clocks.len() {
            let (off, drift) = (
                self.rng.range(0, 600) as i64 - 300,
                self.rng.range(0, 200) as i64 - 100,
            );
            let c = &mut self.clocks[n];
            c.offset_ms = off - self.now as i64 * drift / 1_000_000;
            c.drift_ppm = drift;
        }
        for e in 0..self.engines.len() {
            let en = &mut self.engines[e];
            en.hung_until = en.hung_until.min(self.now);
            en.wrong_hash_until = 0;
            en.lose_undo = false;
        }
    }

    /// Everything is done: no work anywhere, every engine connected and
    /// healthy, no PANIC, the agent has its answers.
    fn quiescent(&self) -> bool {
        self.not_quiescent_because().is_empty()
    }

    pub fn not_quiescent_because(&self) -> String {
        let mut why = Vec::new();
        if !self.host.up {
            why.push("host down".to_string());
        }
        if self.host.wal_fault.is_some() {
            why.push("WAL writer poisoned".into());
        }
        if self.host.up {
            if self.host.panic_any() {
                why.push("PANIC".into());
            }
            let open = self.host.seq.open_tids();
            if !open.is_empty() {
                why.push(format!("open tids {open:?}"));
            }
            if !self.host.pending.is_empty() {
                why.push(format!("{} commands in flight", self.host.pending.len()));
            }
            if !self.host.jobs.is_empty() {
                why.push("reconcile running".into());
            }
            for (i, (name, _)) in ENGINES.iter().enumerate() {
                let en = &self.engines[i];
                if !self.host.engine_ready(i) {
                    why.push(format!("{name} not ready ({})", self.host.engine_state(i)));
                } else if self.host.info[i].reconcile_failed {
                    // The operator restarts it.
                    why.push(format!("{name} could not be reconciled"));
                } else if !en.alive || en.conn.as_ref().map(|c| c.id) != self.host.current[i] {
                    // The host has not noticed yet that the session is gone.
                    why.push(format!("{name} is not on the session the host holds"));
                } else if self.engines[i].frozen && !self.host.panic_any() {
                    // It would refuse every mutation with no PANIC to resume.
                    why.push(format!("{name} still frozen outside PANIC"));
                }
            }
        }
        if !self.agent.outstanding.is_empty() {
            why.push(format!(
                "agent waits on {:?}",
                self.agent.outstanding.keys().collect::<Vec<_>>()
            ));
        }
        why.join(", ")
    }

    /// Engines the oracle compares at the end: all of them must be healthy
    /// then (or the run failed liveness).
    fn final_checks(&mut self) {
        let host_scene = self.host.seq.scene().clone();
        let want = host_scene.hash();
        self.log(format!(
            "quiescent: scene v{} hash {}",
            self.host.seq.scene_version(),
            want.to_hex()
        ));
        // Every transaction in the log is final.
        let recovered = {
            let mut d = std::mem::take(&mut self.disk);
            let r = d.recover();
            self.disk = d;
            r
        };
        match recovered {
            Err(e) => self.fail("wal-readable", e),
            Ok(r) => {
                let open: Vec<u64> = r.replay.open.keys().copied().collect();
                if !open.is_empty() {
                    self.fail(
                        "every-transaction-final",
                        format!("the log leaves tids {open:?} without a final state"),
                    );
                }
                if r.replay.scene.hash() != want {
                    self.fail(
                        "wal-matches-host",
                        "the scene replayed from the log differs from the host's".into(),
                    );
                }
                let rolled_back: BTreeSet<u64> = r
                    .records
                    .iter()
                    .filter_map(|rec| match rec {
                        vibesync_wal::Record::Rollback { tid, .. } => Some(*tid),
                        _ => None,
                    })
                    .collect();
                let touched: Vec<(u64, Vec<String>)> = r
                    .records
                    .iter()
                    .filter_map(|rec| match rec {
                        vibesync_wal::Record::Begin { tid, touched, .. }
                            if rolled_back.contains(tid) =>
                        {
                            Some((*tid, touched.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                for (e, (name, _)) in ENGINES.iter().enumerate() {
                    let scene = self.engines[e].engine.canonical_scene();
                    let got = scene.hash();
                    if got == want {
                        continue;
                    }
                    for id in scene.objects.keys().chain(host_scene.objects.keys()) {
                        if scene.get(id) != host_scene.get(id) {
                            self.log(format!(
                                "{} differs on {id}: host {:?}, engine {:?}",
                                name,
                                host_scene.get(id),
                                scene.get(id)
                            ));
                        }
                    }
                    // Name a rolled-back change if that is what differs.
                    for (tid, ids) in touched.iter().rev() {
                        if scene.hash_of(ids.iter()) != host_scene.hash_of(ids.iter()) {
                            self.fail(
                                "rolled-back-change-absent",
                                format!("{} still differs from the canonical scene on {:?}, which rolled-back tid {tid} touched", name, ids),
                            );
                            break;
                        }
                    }
                    let diff: Vec<&String> = scene
                        .objects
                        .keys()
                        .chain(host_scene.objects.keys())
                        .filter(|id| scene.get(id) != host_scene.get(id))
                        .collect();
                    self.fail(
                        "converged-hashes",
                        format!(
                            "{} hash {} != host {} after quiescence (objects differing: {diff:?})",
                            ENGINES[e].0,
                            got.to_hex(),
                            want.to_hex()
                        ),
                    );
                }
            }
        }
    }
}
