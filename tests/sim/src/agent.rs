//! The simulated AI agent: reads the scene, writes intents (mostly sound,
//! some against a stale scene version, some hostile), retries with its
//! idempotency key when an answer does not come (the host crashed, the
//! answer was lost), and takes and lifts bot locks so that escalations
//! happen. Its requests go through the real policy pipeline
//! ([`crate::policy::intake`]) before the sequencer.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vibesync_ledger::{Answer, Input};
use vibesync_wal::{Outcome, Source};

use crate::policy::{OpSpec, Request};
use crate::world::{Ev, World};

pub struct Pending {
    req: Request,
    attempts: u32,
    last_try: u64,
}

#[derive(Default)]
pub struct Agent {
    /// Requests without a final answer, by idempotency key.
    pub outstanding: BTreeMap<String, Pending>,
    next: u64,
    by_tid: BTreeMap<u64, String>,
}

const RATIONALES: [&str; 4] = [
    "Arrange the props so the hero shot reads clearly from the main camera",
    "Adjust the lighting rig and materials for the evening review pass",
    "Block out the courtyard layout requested by the art director",
    "Tidy up the scene hierarchy before handing it to the animators",
];

fn op(name: &str, args: Value) -> OpSpec {
    OpSpec {
        op: name.into(),
        args,
    }
}

impl World {
    pub fn agent_act(&mut self) {
        let every = if self.settling {
            1_000
        } else {
            self.rng.range(150, 1_200)
        };
        self.after(every, Ev::Agent);
        // Retry what has waited too long (same key: the host answers a retry
        // with the first outcome, never a second application).
        let stale: Option<String> = self
            .agent
            .outstanding
            .iter()
            .find(|(_, p)| self.now >= p.last_try + 3_000)
            .map(|(k, _)| k.clone());
        if let Some(key) = stale {
            let p = self.agent.outstanding.get_mut(&key).expect("present");
            if p.attempts >= 10 {
                self.log(format!("agent: gives up on {key}"));
                self.agent.outstanding.remove(&key);
            } else {
                p.attempts += 1;
                p.last_try = self.now;
                let (req, n) = (p.req.clone(), p.attempts);
                self.log(format!("agent: retries {key} (attempt {n})"));
                self.agent_submit(req);
            }
            return;
        }
        if self.settling || !self.host.up {
            return;
        }
        if self.rng.chance(0.04) {
            return self.agent_lock();
        }
        let req = self.agent_request();
        let key = req
            .idempotency_key
            .clone()
            .expect("agent requests carry a key");
        self.agent.outstanding.insert(
            key,
            Pending {
                req: req.clone(),
                attempts: 1,
                last_try: self.now,
            },
        );
        self.agent_submit(req);
    }

    fn agent_lock(&mut self) {
        let ids: Vec<String> = self.host.seq.scene().objects.keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let object = self.rng.pick(&ids).clone();
        let held = self.host.seq.locks().any(|l| l.object == object);
        let input = if held {
            Input::Unlock {
                object: object.clone(),
                by: "bot-b".into(),
                source: Source::Agent,
            }
        } else {
            Input::Lock {
                object: object.clone(),
                holder: "bot-b".into(),
                human: false,
            }
        };
        self.log(format!(
            "agent: bot-b {} {object}",
            if held { "unlocks" } else { "locks" }
        ));
        if self.host.wal_fault.is_none() {
            self.host_feed(input);
        }
    }

    fn agent_request(&mut self) -> Request {
        let n = self.agent.next;
        self.agent.next += 1;
        let scene = self.host.seq.scene();
        let ids: Vec<String> = scene.objects.keys().cloned().collect();
        let mut version = self.host.seq.scene_version();
        if self.rng.chance(0.08) {
            version = version.saturating_sub(self.rng.range(1, 3));
        }
        let mut ops = Vec::new();
        let count = if self.rng.chance(0.15) {
            self.rng.range(2, 3)
        } else {
            1
        };
        for k in 0..count {
            let pick = |w: &mut World| {
                if ids.is_empty() {
                    None
                } else {
                    Some(w.rng.pick(&ids).clone())
                }
            };
            let roll = self.rng.range(0, 99);
            let target = pick(self);
            let spec = match (roll, target) {
                (_, None) | (0..=24, _) => {
                    let mut args = json!({
                        "name": format!("Prop{n}x{k}"),
                        "kind": "mesh",
                        "primitive": "cube",
                        "transform": {"translation": [self.rng.coord(20.0), self.rng.coord(5.0), self.rng.coord(20.0)], "rotation": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0]},
                    });
                    if self.rng.chance(0.3) {
                        args["id"] = json!(format!("a{n}-{k}"));
                    }
                    op("create_object", args)
                }
                (25..=59, Some(id)) => {
                    let (a, b) = (self.rng.coord(1.0), self.rng.coord(1.0));
                    let norm = (a * a + b * b + 1.0f64).sqrt();
                    op(
                        "set_transform",
                        json!({"id": id, "translation": [self.rng.coord(20.0), self.rng.coord(5.0), self.rng.coord(20.0)], "rotation": [a / norm, b / norm, 0.0, 1.0 / norm]}),
                    )
                }
                (60..=74, Some(id)) => op(
                    "set_material",
                    json!({"id": id, "base_color": [self.rng.coord(1.0).abs(), 0.5, 0.25, 1.0], "roughness": self.rng.coord(1.0).abs()}),
                ),
                (75..=84, Some(id)) => op(
                    "rename_object",
                    json!({"id": id, "name": format!("Renamed{n}")}),
                ),
                (85..=91, Some(id)) => op("delete_object", json!({"id": id})),
                (_, Some(id)) => {
                    let parent = pick(self).filter(|p| *p != id);
                    op("reparent_object", json!({"id": id, "parent": parent}))
                }
            };
            ops.push(spec);
        }
        let mut rationale = self.rng.pick(&RATIONALES).to_string();
        if self.rng.chance(0.15) {
            let id = ids.first().cloned().unwrap_or_else(|| "obj-1-0".into());
            let hostile = match self.rng.range(0, 7) {
                0 => op(
                    "run_script",
                    json!({"language": "python", "code": "import socket\nsocket.create_connection(('198.51.100.7', 80))"}),
                ),
                1 => op(
                    "set_transform",
                    json!({"id": id, "translation": ["NaN", 0.0, 1.0]}),
                ),
                2 => op("set_transform", json!({"id": id, "scale": [1e9, 1.0, 1.0]})),
                3 => op(
                    "create_object",
                    json!({"name": "../../../etc/passwd", "kind": "mesh"}),
                ),
                4 => op(
                    "set_transform",
                    json!({"id": id, "rotaton": [0.0, 0.0, 0.0, 1.0]}),
                ),
                5 => op(
                    "set_transform",
                    json!({"id": "ghost-object", "translation": [1.0, 2.0, 3.0]}),
                ),
                6 => op(
                    "run_script",
                    json!({"language": "python", "code": "import bpy\nbpy.app.timers.register(lambda: None)"}),
                ),
                _ => {
                    rationale = "asdf asdf".into();
                    op("set_material", json!({"id": id, "roughness": 0.5}))
                }
            };
            let at = self.rng.range(0, ops.len() as u64 - 1) as usize;
            ops[at] = hostile;
        }
        Request {
            ops,
            rationale,
            scene_version: version,
            idempotency_key: Some(format!("k{n}")),
        }
    }

    /// The front door: `submit_intent` as the orchestrator handles it.
    fn agent_submit(&mut self, req: Request) {
        let key = req.idempotency_key.clone().expect("keyed");
        if !self.host.up {
            return self.log(format!("agent: {key}: host unreachable"));
        }
        if let Some(why) = &self.host.wal_fault {
            let why = why.clone();
            return self.log(format!("agent: {key}: refused, WAL unavailable ({why})"));
        }
        if let vibesync_link::PanicState::Panic { engine, .. } = &self.host.panic {
            let engine = engine.clone();
            self.agent.outstanding.remove(&key);
            self.stats.refused += 1;
            return self.log(format!("agent: {key}: refused, PANIC ({engine})"));
        }
        let locks: BTreeMap<_, _> = self
            .host
            .seq
            .locks()
            .map(|l| (l.object.clone(), l.clone()))
            .collect();
        let engines: Vec<String> = crate::world::ENGINES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        let tid = self.host.seq.next_tid();
        let sub = crate::policy::intake(
            &req,
            tid,
            self.host.seq.scene(),
            self.host.seq.scene_version(),
            &locks,
            &engines,
        );
        let sub = match sub {
            Ok(s) => s,
            Err(e) => {
                self.agent.outstanding.remove(&key);
                self.stats.refused += 1;
                return self.log(format!("agent: {key}: intake refused: {e}"));
            }
        };
        self.stats.intents += 1;
        let ops: Vec<&str> = req.ops.iter().map(|o| o.op.as_str()).collect();
        self.log(format!(
            "agent: submits {key} {ops:?} at v{} ({:?})",
            req.scene_version, sub.decision
        ));
        let now = self.clock(0);
        match self.seq_handle(now, Input::Submit(sub)) {
            Ok(step) => {
                if let Some(tid) = step.tid {
                    self.agent.by_tid.insert(tid, key);
                }
                self.host.journal.extend(step.journal);
                self.host.effects.extend(step.effects);
                self.flush();
            }
            Err(e) => self.fail(
                "submit-accepted",
                format!("the sequencer refused a submission as an error: {e}"),
            ),
        }
    }

    /// The host's answer reaches the agent.
    pub fn agent_on_answer(&mut self, tid: u64, answer: Answer) {
        let Some(key) = self.agent.by_tid.get(&tid).cloned() else {
            return;
        };
        let Answer::Final(outcome) = answer else {
            return;
        };
        self.log(format!(
            "agent: {key} (tid {tid}) final: {}",
            short(&outcome)
        ));
        if let Outcome::Committed { scene_version } = &outcome {
            self.oracle.acked_commits.insert(tid, *scene_version);
        }
        if let Some((t0, o0)) = self.oracle.outcomes.get(&key)
            && *t0 != tid
            && o0.is_committed()
            && outcome.is_committed()
        {
            return self.fail(
                "idempotent-commit",
                format!("key {key} committed as tid {t0} and again as tid {tid}"),
            );
        }
        if self.agent.outstanding.remove(&key).is_some() {
            match &outcome {
                Outcome::Committed { .. } => self.stats.committed += 1,
                Outcome::RolledBack { .. } => self.stats.rolled_back += 1,
                Outcome::Denied { .. } => self.stats.denied += 1,
                Outcome::Refused { .. } => self.stats.refused += 1,
            }
        }
        self.oracle.outcomes.entry(key).or_insert((tid, outcome));
    }

    /// The host went away: answers in flight are lost; the agent retries.
    pub fn agent_host_lost(&mut self) {
        for p in self.agent.outstanding.values_mut() {
            p.last_try = p.last_try.min(self.now.saturating_sub(2_000));
        }
    }
}

fn short(o: &Outcome) -> String {
    match o {
        Outcome::Committed { scene_version } => format!("committed v{scene_version}"),
        Outcome::RolledBack { reason } => format!("rolled back: {reason}"),
        Outcome::Denied { reason } => format!("denied: {reason}"),
        Outcome::Refused { rule, .. } => format!("refused: {rule}"),
    }
}
