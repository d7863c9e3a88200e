//! A stand-in orchestrator core for testing the front doors, reached only
//! through the hidden `vibesync serve --fake-core` flag.
//!
//! It owns an in-memory scene and transaction table and answers every
//! [`CoreCall`] the way the real core must (same errors, same phases, same
//! operator-only rule), but it has no WAL, no WASM policies and no engines:
//! its "policies" are the fixed rules below, and "verification" is a timer.
//! Its rules, so tests can trigger each path:
//!
//! | rule | fires on | verdict |
//! |---|---|---|
//! | `firewall.python-import` | `run_script` whose `code` mentions `socket` or `subprocess` | deny |
//! | `validation.zero-scale` | `set_transform` with a 0 in `scale` | deny |
//! | `fake.delete-needs-approval` | `delete_object` | escalate |
//! | `host.human-lock` | any op on an object a human locked | refused (`locked`) |
//!
//! The real core replaces this module; it is not a reference for policy
//! behaviour.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::core_api::*;
use crate::metrics::{IntentOutcomeLabel, Metrics};

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct FakeCoreOptions {
    /// `(engine, kind)` pairs.
    pub engines: Vec<(String, String)>,
    /// Start in PANIC, blamed on this engine with this reason.
    pub panic: Option<(String, String)>,
    /// Time from provisional commit to each engine's verification.
    pub verify_step: Duration,
    pub metrics: Arc<Metrics>,
}

/// Starts the fake core on the current tokio runtime.
pub fn spawn(options: FakeCoreOptions) -> CoreHandle {
    let (handle, inbox) = channel(64);
    let (timer_tx, timer_rx) = mpsc::channel(64);
    let now = now_ms();
    let panic = options.panic.clone().map(|(engine, reason)| PanicView {
        engine,
        reason,
        since_ms: now,
    });
    if panic.is_some() {
        options.metrics.inc_panic();
    }
    options
        .metrics
        .set_engines_connected(options.engines.len() as u64);
    let fake = Fake {
        engines: options.engines,
        verify_step: options.verify_step,
        metrics: options.metrics,
        panic,
        version: 1,
        objects: BTreeMap::new(),
        next_object: 1,
        next_tid: 1,
        txs: BTreeMap::new(),
        subscribers: HashMap::new(),
        idempotency: HashMap::new(),
        journal: Vec::new(),
        timer_tx,
    };
    tokio::spawn(fake.run(inbox, timer_rx));
    handle
}

/// A verification step that came due.
struct Verified {
    tid: u64,
    engines_done: usize,
}

struct Fake {
    engines: Vec<(String, String)>,
    verify_step: Duration,
    metrics: Arc<Metrics>,
    panic: Option<PanicView>,
    version: u64,
    objects: BTreeMap<String, ObjectView>,
    next_object: u64,
    next_tid: u64,
    txs: BTreeMap<u64, TransactionView>,
    subscribers: HashMap<u64, Vec<mpsc::Sender<TxProgress>>>,
    idempotency: HashMap<String, IntentOutcome>,
    journal: Vec<JournalEntry>,
    timer_tx: mpsc::Sender<Verified>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn reply<T>(tx: Reply<T>, value: Result<T, CoreError>) {
    // The caller may have gone away (client disconnected); nothing to do.
    let _ = tx.send(value);
}

impl Fake {
    async fn run(mut self, mut inbox: CoreInbox, mut timers: mpsc::Receiver<Verified>) {
        loop {
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(request) => self.handle(request),
                    None => return,
                },
                Some(step) = timers.recv() => self.verification_step(step),
            }
        }
    }

    fn handle(&mut self, CoreRequest { caller, call }: CoreRequest) {
        if let Err(err) = authorize(&caller, &call) {
            return call.refuse(err);
        }
        match call {
            CoreCall::ListEngines(tx) => reply(tx, Ok(self.engine_views())),
            CoreCall::ReadScene(tx) => reply(tx, Ok(self.scene())),
            CoreCall::GetTransaction { tid, reply: tx } => reply(tx, self.tx(tid).cloned()),
            CoreCall::Journal { filter, reply: tx } => reply(tx, Ok(self.journal(&filter))),
            CoreCall::SubmitIntent { intent, reply: tx } => {
                let result = self.submit(&caller, intent);
                reply(tx, result)
            }
            CoreCall::ValidateIntent { intent, reply: tx } => reply(tx, self.validate(intent)),
            CoreCall::VerifyEngineState { engine, reply: tx } => reply(tx, self.verify(engine)),
            CoreCall::Subscribe { tid, reply: tx } => reply(tx, self.subscribe(tid)),
            CoreCall::Preview { reply: tx, .. } => reply(
                tx,
                Err(CoreError::new(
                    ErrorCode::Conflict,
                    "/engine",
                    "the fake core has no engine that renders",
                    "run `vibesync serve` without --fake-core, with a Blender engine connected",
                )
                .with_rule("host.preview")),
            ),
            CoreCall::Status(tx) => reply(tx, Ok(self.status())),
            CoreCall::Resume(tx) => reply(tx, self.resume()),
            CoreCall::ApproveEscalation {
                tid,
                who,
                reply: tx,
            } => reply(tx, self.approve(tid, &who)),
            CoreCall::DenyEscalation {
                tid,
                who,
                reason,
                reply: tx,
            } => reply(tx, self.deny(tid, &who, &reason)),
            CoreCall::Lock { id, who, reply: tx } => reply(tx, self.set_lock(&id, Some(who))),
            CoreCall::Unlock { id, reply: tx, .. } => reply(tx, self.set_lock(&id, None)),
            CoreCall::ListPolicies(tx) | CoreCall::ReloadPolicies(tx) => {
                reply(tx, Ok(fake_policies()))
            }
        }
    }

    fn engine_views(&self) -> Vec<EngineView> {
        self.engines
            .iter()
            .map(|(name, kind)| EngineView {
                name: name.clone(),
                kind: kind.clone(),
                connected: true,
                last_heartbeat_age_ms: Some(100),
                main_thread_lag_ms: Some(2),
                queue_depth: 0,
                frozen: self.panic.is_some(),
            })
            .collect()
    }

    fn hash(&self) -> String {
        // FNV-1a over the JSON of the objects: a stand-in for the canonical hash.
        let text = serde_json::to_string(&self.objects).unwrap_or_default();
        let mut h: u64 = 0xcbf29ce484222325;
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }

    fn scene(&self) -> SceneView {
        let hash = self.hash();
        SceneView {
            version: self.version,
            hash: hash.clone(),
            objects: self.objects.values().cloned().collect(),
            engines: self
                .engines
                .iter()
                .map(|(name, _)| EngineSceneView {
                    engine: name.clone(),
                    verified_hash: Some(hash.clone()),
                    verified_version: Some(self.version),
                })
                .collect(),
            panic: self.panic.clone(),
        }
    }

    fn tx(&self, tid: u64) -> Result<&TransactionView, CoreError> {
        self.txs.get(&tid).ok_or_else(|| {
            CoreError::new(
                ErrorCode::NotFound,
                "/tid",
                format!("no transaction {tid}"),
                "use a tid returned by submit_intent or listed by get_operation_journal",
            )
        })
    }

    fn journal(&self, f: &JournalFilter) -> Vec<JournalEntry> {
        let limit = f.limit.unwrap_or(100).min(1000) as usize;
        let matching: Vec<_> = self
            .journal
            .iter()
            .filter(|e| f.after_seq.is_none_or(|s| e.seq > s))
            .filter(|e| f.tid.is_none_or(|t| e.tid == t))
            .filter(|e| f.source.is_none_or(|s| e.source == s))
            .filter(|e| f.phase.is_none_or(|p| e.phase == p))
            .filter(|e| f.object.as_ref().is_none_or(|o| e.objects.contains(o)))
            .cloned()
            .collect();
        let skip = matching.len().saturating_sub(limit);
        matching.into_iter().skip(skip).collect()
    }

    /// The fixed fake rules; returns every verdict.
    fn evaluate(&self, intent: &IntentRequest) -> Result<Vec<PolicyVerdict>, CoreError> {
        let mut verdicts = Vec::new();
        for (i, op) in intent.ops.iter().enumerate() {
            if let Some(id) = op.args.get("id").and_then(Value::as_str) {
                if let Some(lock) = self.objects.get(id).and_then(|o| o.lock.as_ref()) {
                    return Err(CoreError::new(
                        ErrorCode::Locked,
                        format!("/ops/{i}/args/id"),
                        format!("object `{id}` is locked by {}", lock.holder),
                        "leave this object alone or ask the human who locked it; an agent cannot lift a human lock",
                    )
                    .with_rule("host.human-lock"));
                }
                if op.op != "create_object" && !self.objects.contains_key(id) {
                    return Err(CoreError::new(
                        ErrorCode::NotFound,
                        format!("/ops/{i}/args/id"),
                        format!("no object `{id}` in the scene"),
                        "read_scene lists the ids that exist",
                    )
                    .with_rule("host.unknown-object"));
                }
            }
            let mut push = |policy: &str, verdict, finding: Option<Finding>| {
                verdicts.push(PolicyVerdict {
                    policy: policy.into(),
                    op_index: i as u32,
                    verdict,
                    findings: finding.into_iter().collect(),
                    latency_us: 40,
                });
            };
            let code = op.args.get("code").and_then(Value::as_str).unwrap_or("");
            if op.op == "run_script" && (code.contains("socket") || code.contains("subprocess")) {
                push("firewall", VerdictKind::Deny, Some(Finding {
                    rule: "firewall.python-import".into(),
                    severity: Severity::Critical,
                    path: format!("/ops/{i}/args/code"),
                    message: "the script reaches for the network or a subprocess; scripts may only touch the scene (use bpy / UnityEditor APIs)".into(),
                }));
            } else {
                push("firewall", VerdictKind::Allow, None);
            }
            let zero = (op.op == "set_transform")
                .then(|| op.args.get("scale"))
                .flatten()
                .and_then(Value::as_array)
                .and_then(|s| s.iter().position(|v| v.as_f64() == Some(0.0)));
            match zero {
                Some(k) => push("validation", VerdictKind::Deny, Some(Finding {
                    rule: "validation.zero-scale".into(),
                    severity: Severity::Error,
                    path: format!("/ops/{i}/args/scale/{k}"),
                    message: "a zero scale collapses the object and cannot be undone by scaling; use a small positive value".into(),
                })),
                None => push("validation", VerdictKind::Allow, None),
            }
            if op.op == "delete_object" {
                push(
                    "fake",
                    VerdictKind::Escalate,
                    Some(Finding {
                        rule: "fake.delete-needs-approval".into(),
                        severity: Severity::Warning,
                        path: format!("/ops/{i}/args/id"),
                        message: "deleting needs a human's approval".into(),
                    }),
                );
            }
        }
        for v in &verdicts {
            self.metrics
                .observe_policy_latency(Duration::from_micros(v.latency_us));
        }
        Ok(verdicts)
    }

    fn gate(&self, intent: &IntentRequest) -> Result<(), CoreError> {
        intent.check_intake()?;
        if let Some(panic) = &self.panic {
            return Err(CoreError::panic(&panic.engine, &panic.reason));
        }
        if intent.scene_version != self.version {
            return Err(CoreError::stale(intent.scene_version, self.version));
        }
        Ok(())
    }

    fn validate(&self, intent: IntentRequest) -> Result<ValidationView, CoreError> {
        self.gate(&intent)?;
        let verdicts = self.evaluate(&intent)?;
        Ok(ValidationView {
            verdict: overall(&verdicts),
            verdicts,
            scene_version: self.version,
        })
    }

    fn submit(
        &mut self,
        caller: &Caller,
        intent: IntentRequest,
    ) -> Result<IntentOutcome, CoreError> {
        if let Some(key) = &intent.idempotency_key
            && let Some(first) = self.idempotency.get(key)
        {
            return Ok(first.clone());
        }
        let gated = self.gate(&intent).and_then(|()| self.evaluate(&intent));
        let verdicts = match gated {
            Ok(v) => v,
            Err(err) => {
                self.metrics.record_intent(IntentOutcomeLabel::Refused);
                return Err(err);
            }
        };
        let tid = self.next_tid;
        self.next_tid += 1;
        let engines = intent
            .engines
            .clone()
            .unwrap_or_else(|| self.engines.iter().map(|(n, _)| n.clone()).collect());
        let view = TransactionView {
            tid,
            source: intent.source,
            author: caller.label(),
            rationale: intent.rationale.clone(),
            ops: intent.ops.clone(),
            engines,
            scene_version_read: intent.scene_version,
            phases: vec![PhaseStamp {
                phase: Phase::Submitted,
                at_ms: now_ms(),
                detail: None,
            }],
            verdicts: verdicts.clone(),
            acks: Vec::new(),
            phase: Phase::Submitted,
            is_final: false,
            why: None,
        };
        self.txs.insert(tid, view);
        let findings = |kind| {
            verdicts
                .iter()
                .filter(|v| v.verdict == kind)
                .flat_map(|v| v.findings.clone())
                .collect::<Vec<_>>()
        };
        match overall(&verdicts) {
            VerdictKind::Deny => {
                let findings = findings(VerdictKind::Deny);
                let why = CoreError::denied(Some(tid), findings.clone()).to_string();
                self.advance(tid, Phase::Denied, Some(why));
                self.metrics.record_intent(IntentOutcomeLabel::Denied);
                Err(CoreError::denied(Some(tid), findings))
            }
            VerdictKind::Escalate => {
                self.advance(
                    tid,
                    Phase::Escalated,
                    Some("waiting for an operator".into()),
                );
                self.metrics.record_intent(IntentOutcomeLabel::Escalated);
                Err(CoreError::escalated(tid, findings(VerdictKind::Escalate)))
            }
            VerdictKind::Allow => {
                let outcome = self.apply(tid);
                if let Some(key) = intent.idempotency_key {
                    self.idempotency.insert(key, outcome.clone());
                }
                Ok(outcome)
            }
        }
    }

    /// Validated → begun → provisional; schedules verification.
    fn apply(&mut self, tid: u64) -> IntentOutcome {
        self.advance(tid, Phase::Validated, None);
        self.advance(tid, Phase::Begun, None);
        let ops = self.txs[&tid].ops.clone();
        for op in &ops {
            self.apply_op(op);
        }
        self.version += 1;
        let acks: Vec<EngineAck> = self.txs[&tid]
            .engines
            .iter()
            .map(|e| EngineAck {
                engine: e.clone(),
                applied: true,
                undo_token: Some(format!("undo-{e}-{tid}")),
                message: None,
            })
            .collect();
        self.txs.get_mut(&tid).expect("tx exists").acks = acks.clone();
        self.advance(tid, Phase::Provisional, None);
        self.metrics.record_intent(IntentOutcomeLabel::Provisional);
        self.schedule(Verified {
            tid,
            engines_done: 0,
        });
        IntentOutcome {
            tid,
            phase: Phase::Provisional,
            scene_version: self.version,
            acks,
            note: PROVISIONAL_NOTE.into(),
        }
    }

    fn schedule(&self, step: Verified) {
        let timer_tx = self.timer_tx.clone();
        let delay = self.verify_step;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = timer_tx.send(step).await;
        });
    }

    fn verification_step(&mut self, Verified { tid, engines_done }: Verified) {
        let Some(tx) = self.txs.get(&tid) else { return };
        let total = tx.engines.len();
        let done = engines_done + 1;
        let engine = tx.engines.get(engines_done).cloned().unwrap_or_default();
        self.notify(
            tid,
            TxProgress {
                tid,
                phase: Phase::Provisional,
                progress: done as f64,
                total: Some(total as f64 + 1.0),
                message: format!("verified {engine}: canonical hash matches ({done}/{total})"),
            },
        );
        if done < total {
            self.schedule(Verified {
                tid,
                engines_done: done,
            });
        } else {
            self.advance(tid, Phase::Verified, None);
            self.advance(
                tid,
                Phase::Committed,
                Some("every engine read back the expected canonical hash".into()),
            );
            self.metrics.record_intent(IntentOutcomeLabel::Committed);
        }
    }

    fn apply_op(&mut self, op: &OpSpec) {
        let a = &op.args;
        let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
        let arr = |k: &str| {
            a.get(k)
                .and_then(|v| serde_json::from_value::<Vec<f64>>(v.clone()).ok())
        };
        match op.op.as_str() {
            "create_object" => {
                let id = s("id").unwrap_or_else(|| {
                    let id = format!("obj-{}", self.next_object);
                    self.next_object += 1;
                    id
                });
                let object = ObjectView {
                    id: id.clone(),
                    name: s("name").unwrap_or_else(|| id.clone()),
                    kind: s("kind").unwrap_or_else(|| "empty".into()),
                    parent: s("parent"),
                    transform: TransformView {
                        translation: [0.0; 3],
                        rotation: [0.0, 0.0, 0.0, 1.0],
                        scale: [1.0; 3],
                    },
                    material: None,
                    lock: None,
                };
                self.objects.insert(id, object);
            }
            "delete_object" => {
                if let Some(id) = s("id") {
                    self.objects.remove(&id);
                }
            }
            _ => {
                let Some(object) = s("id").and_then(|id| self.objects.get_mut(&id)) else {
                    return;
                };
                match op.op.as_str() {
                    "rename_object" => {
                        object.name = s("name").unwrap_or_else(|| object.name.clone())
                    }
                    "reparent_object" => object.parent = s("parent"),
                    "set_transform" => {
                        if let Some(t) = arr("translation").and_then(|v| v.try_into().ok()) {
                            object.transform.translation = t;
                        }
                        if let Some(r) = arr("rotation").and_then(|v| v.try_into().ok()) {
                            object.transform.rotation = r;
                        }
                        if let Some(sc) = arr("scale").and_then(|v| v.try_into().ok()) {
                            object.transform.scale = sc;
                        }
                    }
                    "set_material" => {
                        let m = object.material.get_or_insert(MaterialView {
                            base_color: [0.8, 0.8, 0.8, 1.0],
                            roughness: 0.5,
                            metallic: 0.0,
                            emission: [0.0; 3],
                            emission_strength: 0.0,
                        });
                        if let Some(c) = arr("base_color").and_then(|v| v.try_into().ok()) {
                            m.base_color = c;
                        }
                        if let Some(r) = a.get("roughness").and_then(Value::as_f64) {
                            m.roughness = r;
                        }
                        if let Some(r) = a.get("metallic").and_then(Value::as_f64) {
                            m.metallic = r;
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn advance(&mut self, tid: u64, phase: Phase, why: Option<String>) {
        let Some(tx) = self.txs.get_mut(&tid) else {
            return;
        };
        tx.phase = phase;
        tx.is_final = phase.is_final();
        tx.phases.push(PhaseStamp {
            phase,
            at_ms: now_ms(),
            detail: why.clone(),
        });
        if why.is_some() {
            tx.why = why;
        }
        let objects = tx
            .ops
            .iter()
            .filter_map(|o| o.args.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let entry = JournalEntry {
            seq: self.journal.len() as u64 + 1,
            tid,
            at_ms: now_ms(),
            phase,
            source: tx.source,
            author: tx.author.clone(),
            objects,
            summary: format!("{} op(s): {}", tx.ops.len(), tx.rationale),
        };
        self.journal.push(entry);
        let total = tx.engines.len() as f64 + 1.0;
        let done = phase.is_final();
        self.notify(
            tid,
            TxProgress {
                tid,
                phase,
                progress: if done { total } else { 0.0 },
                total: Some(total),
                message: format!("transaction {tid} is {phase:?}"),
            },
        );
        if done {
            self.subscribers.remove(&tid);
        }
    }

    fn notify(&mut self, tid: u64, event: TxProgress) {
        if let Some(subs) = self.subscribers.get_mut(&tid) {
            subs.retain(|s| s.try_send(event.clone()).is_ok());
        }
    }

    fn subscribe(&mut self, tid: u64) -> Result<mpsc::Receiver<TxProgress>, CoreError> {
        let (phase, total) = {
            let tx = self.tx(tid)?;
            (tx.phase, tx.engines.len() as f64 + 1.0)
        };
        let (tx, rx) = mpsc::channel(16);
        if phase.is_final() {
            let _ = tx.try_send(TxProgress {
                tid,
                phase,
                progress: total,
                total: Some(total),
                message: format!("transaction {tid} is {phase:?}"),
            });
        } else {
            self.subscribers.entry(tid).or_default().push(tx);
        }
        Ok(rx)
    }

    fn verify(&self, engine: Option<String>) -> Result<Vec<VerificationView>, CoreError> {
        if let Some(name) = &engine
            && !self.engines.iter().any(|(n, _)| n == name)
        {
            return Err(CoreError::new(
                ErrorCode::NotFound,
                "/engine",
                format!("no engine `{name}`"),
                "list_engines shows the engine names",
            ));
        }
        let hash = self.hash();
        Ok(self
            .engines
            .iter()
            .filter(|(n, _)| engine.as_ref().is_none_or(|e| e == n))
            .map(|(n, _)| VerificationView {
                engine: n.clone(),
                expected_hash: hash.clone(),
                engine_hash: Some(hash.clone()),
                matches: true,
                detail: None,
            })
            .collect())
    }

    fn status(&self) -> StatusView {
        StatusView {
            scene_version: self.version,
            panic: self.panic.clone(),
            engines: self.engine_views(),
            pending_escalations: self
                .txs
                .values()
                .filter(|t| t.phase == Phase::Escalated)
                .map(|t| t.tid)
                .collect(),
            in_flight: self
                .txs
                .values()
                .filter(|t| !t.is_final && t.phase != Phase::Escalated)
                .count() as u32,
            policies: fake_policies().len() as u32,
        }
    }

    fn resume(&mut self) -> Result<StatusView, CoreError> {
        if self.panic.take().is_none() {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                "",
                "the cluster is not in PANIC",
                "nothing to resume",
            ));
        }
        Ok(self.status())
    }

    fn escalated(&self, tid: u64) -> Result<(), CoreError> {
        let tx = self.tx(tid)?;
        if tx.phase != Phase::Escalated {
            return Err(CoreError::new(
                ErrorCode::Conflict,
                "/tid",
                format!("transaction {tid} is {:?}, not escalated", tx.phase),
                "`vibesync ctl status` lists the pending escalations",
            ));
        }
        Ok(())
    }

    fn approve(&mut self, tid: u64, who: &str) -> Result<TransactionView, CoreError> {
        self.escalated(tid)?;
        if let Some(panic) = &self.panic {
            return Err(CoreError::panic(&panic.engine, &panic.reason));
        }
        self.txs
            .get_mut(&tid)
            .expect("checked")
            .phases
            .push(PhaseStamp {
                phase: Phase::Escalated,
                at_ms: now_ms(),
                detail: Some(format!("approved by {who}")),
            });
        self.apply(tid);
        self.tx(tid).cloned()
    }

    fn deny(&mut self, tid: u64, who: &str, reason: &str) -> Result<TransactionView, CoreError> {
        self.escalated(tid)?;
        self.advance(
            tid,
            Phase::Denied,
            Some(format!("denied by {who}: {reason}")),
        );
        self.metrics.record_intent(IntentOutcomeLabel::Denied);
        self.tx(tid).cloned()
    }

    fn set_lock(&mut self, id: &str, who: Option<String>) -> Result<ObjectView, CoreError> {
        let object = self.objects.get_mut(id).ok_or_else(|| {
            CoreError::new(
                ErrorCode::NotFound,
                "/id",
                format!("no object `{id}`"),
                "`vibesync ctl` status and read_scene list the ids",
            )
        })?;
        object.lock = who.map(|holder| LockView {
            holder,
            human: true,
        });
        Ok(object.clone())
    }
}

fn overall(verdicts: &[PolicyVerdict]) -> VerdictKind {
    if verdicts.iter().any(|v| v.verdict == VerdictKind::Deny) {
        VerdictKind::Deny
    } else if verdicts.iter().any(|v| v.verdict == VerdictKind::Escalate) {
        VerdictKind::Escalate
    } else {
        VerdictKind::Allow
    }
}

fn fake_policies() -> Vec<PolicyView> {
    [
        ("firewall", "firewall.python-import"),
        ("validation", "validation.zero-scale"),
        ("fake", "fake.delete-needs-approval"),
    ]
    .into_iter()
    .map(|(name, rule)| PolicyView {
        name: name.into(),
        version: "0.0.0-fake".into(),
        hash: "0".repeat(64),
        rules: vec![rule.into()],
    })
    .collect()
}
