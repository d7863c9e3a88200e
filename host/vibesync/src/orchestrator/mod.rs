//! The orchestrator core: the one task that owns the sequencer and the
//! journal views, and the thin shell around them.
//!
//! Everything that decides is elsewhere and pure: the transaction state
//! machine is `vibesync_ledger::Sequencer`, policy verdicts come from
//! `vibesync_policy_runtime::Pipeline`, the translations are [`intake`], the
//! read models are [`views`] and the durable state (`vibesync_wal::Replay`
//! fed with durable records). This module only moves messages and time into
//! them and carries out what they say, in the order the WAL contract needs:
//!
//! 1. take every message that is ready (front-door calls, engine replies,
//!    link events, the tick, the WAL writer's reports) and feed each to the
//!    sequencer;
//! 2. hand every record those steps produced to the WAL writer thread
//!    ([`journal`]), which appends whatever is waiting with ONE group
//!    commit; the core goes on meanwhile;
//! 3. only when the writer reports a batch durable, perform its effects
//!    (send to engines, answer authors), in batch order.
//!
//! Reads answer from the durable state, so they never show what the
//! journal could still lose and never wait for an `fdatasync`. Engine
//! commands leave through one outbox per engine, in the sequencer's order,
//! written back to back; replies come back as messages, so a slow engine
//! never stalls the loop. Policy evaluation runs inline: it is bounded by
//! the runtime's fuel, memory and wall-clock budgets, and doing it here
//! gives the policies the exact tid and the exact context the sequencer
//! will judge (it overlaps the writer's `fdatasync`).

pub mod boot;
pub mod intake;
pub mod journal;
pub mod preview;
pub mod views;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{broadcast, mpsc};
use vibesync_canonical::{Quantum, StateHash};
use vibesync_ledger::{Answer, Effect, Input, Sequencer, Step};
use vibesync_link::{Link, LinkError, LinkEvent};
use vibesync_policy_runtime::{Decision, Pipeline};
use vibesync_protocol::CommandBody;
use vibesync_wal::{AckOutcome, Outcome, Record, Replay, Tid, Wal};

use crate::core_api::{
    Caller, CoreCall, CoreError, CoreInbox, CoreRequest, EngineSceneView, EngineView, ErrorCode,
    IntentOutcome, IntentRequest, PROVISIONAL_NOTE, PanicView, Phase, PolicyView, Reply, SceneView,
    Source, StatusView, TxProgress, VerificationView, authorize,
};
use crate::metrics::{IntentOutcomeLabel, Metrics};
use views::Views;

/// Everything the core needs, opened by `serve` before it starts the core.
pub struct Parts {
    pub wal: Wal,
    pub sequencer: Sequencer,
    /// Records the recovery produced (in-doubt transactions resolved);
    /// journaled before anything else.
    pub recovery: Step,
    pub pipeline: Arc<Pipeline>,
    pub link: Link,
    pub quantum: Quantum,
    pub engines: Vec<(String, String)>,
    pub project_root: PathBuf,
    pub metrics: Arc<Metrics>,
    /// For comparison only (`serve --wal-inline`): the core waits for each
    /// group commit before it goes on, as it did before the writer thread.
    pub wal_inline: bool,
    /// For comparison only (`serve --policy-block-in-place`): every policy
    /// evaluation runs inside `tokio::task::block_in_place`, as it did
    /// before, instead of only the long ones (see [`Core::evaluate`]).
    pub policy_block_in_place: bool,
    /// Commit notices wait in the outbox (up to [`NOTICE_HOLD`]) to leave
    /// with the next command to that engine instead of alone (see
    /// [`outbox`]); `false`, for comparison only, sends them at once.
    pub hold_commit_notices: bool,
}

/// Messages the core sends itself from the tasks it spawns.
enum Internal {
    Input(Input),
    /// The link let the cluster out of PANIC; the sequencer follows.
    Resumed {
        operator: String,
        reply: Reply<StatusView>,
    },
    /// The WAL writer made these batches durable (or failed).
    Written(journal::Written),
}

/// Something to do once the records staged before it are durable; told
/// the WAL's error if they could not be made durable.
type Deferred = Box<dyn FnOnce(&mut Core, Option<&str>) + Send>;

/// A batch handed to the WAL writer, with what waits for it.
struct InFlight {
    id: u64,
    effects: Vec<Effect>,
    deferred: Vec<Deferred>,
}

/// A submit waiting for its provisional (or final) answer.
struct Waiter {
    reply: Reply<IntentOutcome>,
    findings: Vec<crate::core_api::Finding>,
    read_version: u64,
}

struct Core {
    seq: Sequencer,
    writer: journal::Writer,
    wal_fault: Option<String>,
    /// Batches handed to the writer, oldest first.
    in_flight: VecDeque<InFlight>,
    next_batch: u64,
    /// `Parts::wal_inline`: the writer's reports come here, and the core
    /// waits for each one.
    inline: Option<mpsc::UnboundedReceiver<Internal>>,
    /// `Parts::policy_block_in_place`.
    policy_block_in_place: bool,
    /// `Parts::hold_commit_notices`.
    hold_commit_notices: bool,
    /// The state the durable journal describes (scene, version, locks,
    /// PANIC): what reads answer from. The sequencer's own state may be
    /// ahead of it by the batches in flight.
    durable: Replay,
    views: Views,
    pipeline: Arc<Pipeline>,
    link: Link,
    quantum: Quantum,
    engines: Vec<(String, String)>,
    project_root: String,
    metrics: Arc<Metrics>,
    waiting: HashMap<Tid, Vec<Waiter>>,
    subscribers: HashMap<Tid, Vec<mpsc::Sender<TxProgress>>>,
    internal: mpsc::UnboundedSender<Internal>,
    /// One queue per engine: commands leave in the order the sequencer
    /// produced them (see [`outbox`]).
    outboxes: HashMap<String, mpsc::UnboundedSender<Vec<Outgoing>>>,
    /// Records, effects and deferred work of the batch being staged.
    journal: Vec<Record>,
    effects: Vec<Effect>,
    deferred: Vec<Deferred>,
}

/// What turns an engine's reply into sequencer inputs (`None`: the reply
/// is only logged when it is an error).
type ToInput = Box<dyn FnOnce(Result<serde_json::Value, LinkError>) -> Vec<Input> + Send>;

/// One command for an engine's outbox.
struct Outgoing {
    body: CommandBody,
    to_input: Option<ToInput>,
}

/// Longest a commit notice waits in an outbox for a command to leave with.
const NOTICE_HOLD: Duration = Duration::from_millis(5);

/// An engine's outbox: writes each batch of commands back to back with
/// one stream write ([`Link::send_many`]), in queue order, without waiting
/// for replies; the replies of a batch are awaited, in order, by a task of
/// their own and come back to the core as inputs. So an `apply` and the
/// `verify` behind it are on the wire together, and commands to one engine
/// never overtake each other.
///
/// With `hold_notices`, a batch of nothing but commit notices (no reply
/// awaited: the engine only drops its undo token) is held until the next
/// command to that engine or [`NOTICE_HOLD`], whichever comes first, and
/// then leaves first in that write: under load the notice rides in the
/// next intent's frame instead of costing a round trip of its own.
async fn outbox(
    link: Link,
    engine: String,
    mut rx: mpsc::UnboundedReceiver<Vec<Outgoing>>,
    internal: mpsc::UnboundedSender<Internal>,
    hold_notices: bool,
) {
    let mut held: Vec<Outgoing> = Vec::new();
    let mut held_until = tokio::time::Instant::now();
    loop {
        let next = if held.is_empty() {
            rx.recv().await
        } else {
            tokio::select! {
                b = rx.recv() => b,
                _ = tokio::time::sleep_until(held_until) => Some(Vec::new()),
            }
        };
        // The core is gone: notices still held leave now, so the engines
        // can drop their undo tokens, and the outbox ends.
        let (mut batch, closing) = match next {
            Some(batch) => (batch, false),
            None if held.is_empty() => break,
            None => (Vec::new(), true),
        };
        while let Ok(more) = rx.try_recv() {
            batch.extend(more);
        }
        if hold_notices && !batch.is_empty() && batch.iter().all(|o| o.to_input.is_none()) {
            if held.is_empty() {
                held_until = tokio::time::Instant::now() + NOTICE_HOLD;
            }
            held.extend(batch);
            continue;
        }
        // Held notices are older: they go first.
        held.extend(batch);
        let batch = std::mem::take(&mut held);
        let (bodies, inputs): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|o| (o.body, o.to_input)).unzip();
        let sent = link.send_many(&engine, bodies).await;
        let internal = internal.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            for (pending, to_input) in sent.into_iter().zip(inputs) {
                let r = match pending {
                    Ok(p) => p.wait().await,
                    Err(e) => Err(e),
                };
                match to_input {
                    Some(f) => {
                        for input in f(r) {
                            let _ = internal.send(Internal::Input(input));
                        }
                    }
                    None => {
                        if let Err(e) = r {
                            tracing::warn!(%engine, error = %e, "commit notice not delivered; the engine keeps its undo token");
                        }
                    }
                }
            }
        });
        if closing {
            break;
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Most messages folded into one group commit.
const BATCH: usize = 256;

/// Intents with at most this many ops are evaluated on the core's worker
/// directly; longer ones inside `block_in_place` (worst case: ops ×
/// policies × the per-evaluation wall-clock deadline).
const DIRECT_POLICY_OPS: usize = 4;

/// Runs the core until every [`crate::core_api::CoreHandle`] is dropped.
pub async fn run(parts: Parts, mut inbox: CoreInbox) -> anyhow::Result<()> {
    let (internal, mut internal_rx) = mpsc::unbounded_channel();
    let mut link_events = parts.link.subscribe();
    // The recovery's records are durable before anything else happens.
    let mut wal = parts.wal;
    let mut views = Views::default();
    let recovery = parts.recovery;
    if !recovery.journal.is_empty() {
        let at = now_ms();
        tokio::task::block_in_place(|| wal.append_batch(recovery.journal.iter().map(|r| (at, r))))
            .context("journaling the recovery of in-doubt transactions")?;
        for r in &recovery.journal {
            views.apply(at, r.clone());
        }
    }
    let seq = parts.sequencer;
    let durable = Replay {
        scene: seq.scene().clone(),
        scene_version: seq.scene_version(),
        next_tid: seq.next_tid(),
        locks: seq.locks().map(|l| (l.object.clone(), l.clone())).collect(),
        panic: seq.panic().map(str::to_owned),
        ..Replay::default()
    };
    let (inline_tx, inline_rx) = mpsc::unbounded_channel();
    let reports = if parts.wal_inline {
        inline_tx
    } else {
        internal.clone()
    };
    let writer = journal::Writer::start(wal, parts.metrics.clone(), reports, Internal::Written)
        .context("starting the WAL writer thread")?;
    let mut core = Core {
        seq,
        writer,
        wal_fault: None,
        in_flight: VecDeque::new(),
        next_batch: 0,
        inline: parts.wal_inline.then_some(inline_rx),
        policy_block_in_place: parts.policy_block_in_place,
        hold_commit_notices: parts.hold_commit_notices,
        durable,
        views,
        pipeline: parts.pipeline,
        link: parts.link,
        quantum: parts.quantum,
        engines: parts.engines,
        project_root: parts.project_root.display().to_string(),
        metrics: parts.metrics,
        waiting: HashMap::new(),
        subscribers: HashMap::new(),
        internal,
        outboxes: HashMap::new(),
        journal: Vec::new(),
        effects: Vec::new(),
        deferred: Vec::new(),
    };
    core.effects = recovery.effects;
    core.flush();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            req = inbox.recv() => match req {
                Some(req) => core.request(req),
                None => break,
            },
            Some(msg) = internal_rx.recv() => core.internal(msg),
            ev = link_events.recv() => match ev {
                Ok(ev) => core.link_event(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "link events lagged"),
                Err(broadcast::error::RecvError::Closed) => anyhow::bail!("the QUIC link stopped"),
            },
            _ = tick.tick() => core.input(Input::Tick),
        }
        // Group commit: fold whatever else is ready into the same batch.
        for _ in 0..BATCH {
            if let Ok(msg) = internal_rx.try_recv() {
                core.internal(msg);
            } else if let Ok(req) = inbox.try_recv() {
                core.request(req);
            } else {
                break;
            }
        }
        core.flush();
    }
    // Let the batches in flight finish (their effects are carried out, as
    // they would have been), so that a clean stop leaves no record behind
    // that the next start would have to resolve.
    while !core.in_flight.is_empty() {
        match internal_rx.recv().await {
            Some(Internal::Written(w)) => core.written(w),
            Some(_) => {}
            None => break,
        }
    }
    Ok(())
}

impl Core {
    /// Hand the staged records to the WAL writer; their effects (and
    /// everything deferred behind them) wait for its report. Effects
    /// without records of their own still wait for the batches before
    /// them, so nothing overtakes a record it may depend on.
    fn flush(&mut self) {
        let effects = std::mem::take(&mut self.effects);
        let deferred = std::mem::take(&mut self.deferred);
        if !self.journal.is_empty() {
            let id = self.next_batch;
            self.next_batch += 1;
            let batch = journal::Batch {
                id,
                at_ms: now_ms(),
                records: std::mem::take(&mut self.journal),
            };
            self.in_flight.push_back(InFlight {
                id,
                effects,
                deferred,
            });
            if self.writer.write(batch) {
                if let Some(rx) = &mut self.inline {
                    let report = tokio::task::block_in_place(|| rx.blocking_recv());
                    if let Some(Internal::Written(w)) = report {
                        self.written(w);
                    }
                }
            } else {
                // Nothing in flight will be reported: fail it all, closed.
                let batches = self
                    .in_flight
                    .iter()
                    .map(|f| journal::Batch {
                        id: f.id,
                        at_ms: 0,
                        records: Vec::new(),
                    })
                    .collect();
                self.written(journal::Written {
                    batches,
                    error: Some("the WAL writer thread stopped".into()),
                });
            }
        } else if let Some(last) = self.in_flight.back_mut() {
            last.effects.extend(effects);
            last.deferred.extend(deferred);
        } else {
            self.perform(effects, deferred, None);
        }
    }

    /// The writer's report: fold the durable records into the read models,
    /// then carry out what waited for them, batch by batch.
    fn written(&mut self, written: journal::Written) {
        for batch in written.batches {
            let Some(flight) = self.in_flight.pop_front() else {
                tracing::error!(
                    batch = batch.id,
                    "the WAL writer reported a batch that is not in flight"
                );
                continue;
            };
            debug_assert_eq!(flight.id, batch.id, "batches come back in order");
            match &written.error {
                None => {
                    for r in batch.records {
                        if let Err(e) = self.durable.apply(0, &r) {
                            tracing::error!(error = %e, "the durable read model disagrees with the journal");
                        }
                        let tid = r.tid();
                        self.views.apply(batch.at_ms, r);
                        if let Some(tid) = tid {
                            self.progress(tid);
                        }
                    }
                    self.perform(flight.effects, flight.deferred, None);
                }
                Some(e) => {
                    // Fail closed: nothing whose record is not durable happens.
                    if self.wal_fault.is_none() {
                        tracing::error!(error = %e, "WAL append failed; refusing every further mutation");
                        self.wal_fault = Some(e.clone());
                    }
                    self.fail_waiters(e);
                    self.perform(Vec::new(), flight.deferred, Some(e));
                }
            }
        }
    }

    /// Carry out durable effects (engine commands go out per engine, in
    /// order), then the deferred work.
    fn perform(&mut self, effects: Vec<Effect>, deferred: Vec<Deferred>, error: Option<&str>) {
        let mut commands: Vec<(String, Vec<Outgoing>)> = Vec::new();
        for effect in effects {
            // The read-back asked for right behind an apply of this batch
            // is that apply's own reply (see [`read_back_with_apply`]).
            if let Effect::Verify {
                engine,
                tid,
                objects,
            } = &effect
                && let Some(apply) = commands
                    .iter_mut()
                    .find(|(e, _)| e == engine)
                    .and_then(|(_, v)| v.last_mut())
                    .filter(|o| matches!(o.body, CommandBody::Apply { tid: t, .. } if t == *tid))
            {
                read_back_with_apply(apply, engine, *tid, objects);
                continue;
            }
            if let Some((engine, out)) = self.effect(effect) {
                match commands.iter_mut().find(|(e, _)| *e == engine) {
                    Some((_, v)) => v.push(out),
                    None => commands.push((engine, vec![out])),
                }
            }
        }
        for (engine, batch) in commands {
            self.enqueue(engine, batch);
        }
        for d in deferred {
            d(self, error);
        }
    }

    /// Hand commands to `engine`'s outbox (started on first use).
    fn enqueue(&mut self, engine: String, batch: Vec<Outgoing>) {
        let tx = self.outboxes.entry(engine.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(outbox(
                self.link.clone(),
                engine.clone(),
                rx,
                self.internal.clone(),
                self.hold_commit_notices,
            ));
            tx
        });
        if let Err(mpsc::error::SendError(batch)) = tx.send(batch) {
            // Cannot happen while the core runs; fail as a lost reply would.
            for o in batch {
                if let Some(f) = o.to_input {
                    for input in f(Err(LinkError::Disconnected(engine.clone()))) {
                        let _ = self.internal.send(Internal::Input(input));
                    }
                }
            }
        }
    }

    fn fail_waiters(&mut self, why: &str) {
        for (_, waiters) in self.waiting.drain() {
            for w in waiters {
                let _ = w.reply.send(Err(wal_error(why)));
            }
        }
    }

    fn input(&mut self, input: Input) {
        match self.seq.handle(now_ms(), input) {
            Ok(step) => self.stage(step),
            Err(e) => tracing::debug!(error = %e, "sequencer ignored an input"),
        }
    }

    fn stage(&mut self, step: Step) {
        self.effects.extend(step.effects);
        vibesync_ledger::settle_provisional_answers(&mut self.effects, &step.journal);
        self.journal.extend(step.journal);
    }

    /// Run `f` once everything staged so far is durable (at once when
    /// nothing is staged or in flight).
    fn defer(&mut self, f: impl FnOnce(&mut Core, Option<&str>) + Send + 'static) {
        self.deferred.push(Box::new(f));
    }

    fn internal(&mut self, msg: Internal) {
        match msg {
            Internal::Written(w) => self.written(w),
            Internal::Input(input) => self.input(input),
            Internal::Resumed { operator, reply } => {
                let result = match self.seq.handle(now_ms(), Input::Resume { operator }) {
                    Ok(step) => {
                        self.stage(step);
                        // Answered once the resume record is durable.
                        self.defer(move |core, error| {
                            let _ = reply.send(match error {
                                Some(e) => Err(wal_error(e)),
                                None => Ok(core.status()),
                            });
                        });
                        return;
                    }
                    // The link may be out of PANIC while the sequencer never
                    // entered it (a trip between two batches): nothing to do.
                    Err(vibesync_ledger::SequencerError::CannotResume(why))
                        if self.seq.panic().is_none() =>
                    {
                        tracing::debug!(%why, "sequencer was not in PANIC");
                        Ok(())
                    }
                    Err(e) => Err(CoreError::new(
                        ErrorCode::Conflict,
                        "",
                        e.to_string(),
                        "see `vibesync ctl status`",
                    )
                    .with_rule("host.resume")),
                };
                let _ = reply.send(result.map(|()| self.status()));
            }
        }
    }

    fn link_event(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Connected {
                engine, session_id, ..
            } => {
                self.metrics.set_engines_connected(
                    self.link.engines().iter().filter(|e| e.connected).count() as u64,
                );
                self.input(Input::EngineBack {
                    engine,
                    session: session_id,
                });
            }
            LinkEvent::Disconnected { engine, reason } => {
                self.metrics.set_engines_connected(
                    self.link.engines().iter().filter(|e| e.connected).count() as u64,
                );
                self.input(Input::EngineLost { engine, reason });
            }
            LinkEvent::Panic { engine, reason, .. } => {
                self.metrics.inc_panic();
                self.input(Input::Panic {
                    reason: format!("engine `{engine}`: {reason}"),
                });
            }
            LinkEvent::Change { engine, event } => self.engine_edit(engine, event),
            LinkEvent::Health { .. } | LinkEvent::Resumed => {}
        }
    }

    /// An artist's edit in one engine: an intent (source `engine-edit`) that
    /// goes through the same policies and is applied to the other engines.
    fn engine_edit(&mut self, engine: String, event: vibesync_protocol::Event) {
        let vibesync_protocol::Event::Change { ops } = event;
        let others: Vec<String> = self
            .engines
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| *n != engine)
            .collect();
        let specs = ops
            .iter()
            .map(|op| {
                let v = serde_json::to_value(op).unwrap_or_default();
                crate::core_api::OpSpec {
                    op: op.name().to_owned(),
                    args: v.get("args").cloned().unwrap_or_default(),
                }
            })
            .collect();
        let req = IntentRequest {
            ops: specs,
            rationale: format!("artist edit made in `{engine}`, mirrored to the other engines"),
            scene_version: self.seq.scene_version(),
            idempotency_key: None,
            engines: Some(others),
            source: Source::EngineEdit,
        };
        let (tx, _rx) = tokio::sync::oneshot::channel();
        self.submit(format!("engine:{engine}"), req, tx);
    }

    fn request(&mut self, CoreRequest { caller, call }: CoreRequest) {
        if let Err(e) = authorize(&caller, &call) {
            return call.refuse(e);
        }
        match call {
            CoreCall::ListEngines(reply) => {
                let _ = reply.send(Ok(self.engine_views()));
            }
            CoreCall::ReadScene(reply) => {
                let _ = reply.send(Ok(self.scene_view()));
            }
            CoreCall::GetTransaction { tid, reply } => {
                let _ = reply.send(
                    self.views
                        .transaction(tid)
                        .ok_or_else(|| not_found_tid(tid)),
                );
            }
            CoreCall::Journal { filter, reply } => {
                let _ = reply.send(Ok(self.views.journal(&filter)));
            }
            CoreCall::SubmitIntent { intent, reply } => self.submit(caller.label(), intent, reply),
            CoreCall::ValidateIntent { mut intent, reply } => {
                mark_non_finite(&mut intent);
                let result = intent.check_intake().map(|()| {
                    let decisions = self.evaluate(&intent, 0);
                    intake::validation_view(&decisions, self.durable.scene_version)
                });
                let _ = reply.send(result);
            }
            CoreCall::VerifyEngineState { engine, reply } => self.verify_engines(engine, reply),
            CoreCall::Preview { request, reply } => {
                preview::start(&self.link, &self.engines, self.seq.scene(), request, reply)
            }
            CoreCall::Subscribe { tid, reply } => {
                let (tx, rx) = mpsc::channel(32);
                match self.views.progress(tid) {
                    None => {
                        let _ = reply.send(Err(not_found_tid(tid)));
                    }
                    Some((last, true)) => {
                        // Already final: the one event left is the last.
                        let _ = tx.try_send(last);
                        let _ = reply.send(Ok(rx));
                    }
                    Some(_) => {
                        self.subscribers.entry(tid).or_default().push(tx);
                        let _ = reply.send(Ok(rx));
                    }
                }
            }
            CoreCall::Status(reply) => {
                let _ = reply.send(Ok(self.status()));
            }
            CoreCall::Resume(reply) => self.resume(caller, reply),
            CoreCall::ApproveEscalation { tid, who, reply } => {
                self.decide(tid, who, true, "approved by the operator".into(), reply)
            }
            CoreCall::DenyEscalation {
                tid,
                who,
                reason,
                reply,
            } => self.decide(tid, who, false, reason, reply),
            CoreCall::Lock { id, who, reply } => {
                let r = self.seq.handle(
                    now_ms(),
                    Input::Lock {
                        object: id.clone(),
                        holder: who,
                        human: true,
                    },
                );
                self.lock_reply(id, r, reply);
            }
            CoreCall::Unlock { id, who, reply } => {
                let r = self.seq.handle(
                    now_ms(),
                    Input::Unlock {
                        object: id.clone(),
                        by: who,
                        source: vibesync_wal::Source::Operator,
                    },
                );
                self.lock_reply(id, r, reply);
            }
            CoreCall::ListPolicies(reply) => {
                let _ = reply.send(Ok(self.policy_views()));
            }
            CoreCall::ReloadPolicies(reply) => {
                let result = match self.pipeline.reload() {
                    Ok(swaps) => {
                        for s in swaps {
                            self.journal.push(Record::PolicySwap {
                                policy: s.policy.clone(),
                                old_hash: s.old_sha256.map(|h| h.to_string()),
                                new_hash: s.new_sha256.map(|h| h.to_string()).unwrap_or_else(|| "removed".into()),
                                operator: caller.label(),
                            });
                        }
                        // Answered once the swap records are durable.
                        self.defer(move |core, error| {
                            let _ = reply.send(match error {
                                Some(e) => Err(wal_error(e)),
                                None => Ok(core.policy_views()),
                            });
                        });
                        return;
                    }
                    Err(e) => Err(CoreError::new(
                        ErrorCode::Conflict,
                        "",
                        format!("policy reload refused, the previous set keeps running: {e}"),
                        "fix or approve the module (`vibesync policy lock DIR --reviewer NAME`) and reload again",
                    )
                    .with_rule("host.policy-reload")),
                };
                let _ = reply.send(result);
            }
        }
    }

    /// Run the pipeline on every op of `req`, as transaction `tid`.
    fn evaluate(&self, req: &IntentRequest, tid: u64) -> Vec<Decision> {
        let locks = self
            .seq
            .locks()
            .map(|l| (l.object.clone(), l.clone()))
            .collect();
        let engines = req
            .engines
            .clone()
            .unwrap_or_else(|| self.engines.iter().map(|(n, _)| n.clone()).collect());
        let input = intake::policy_input(
            req,
            tid,
            self.seq.scene(),
            self.seq.scene_version(),
            &locks,
            &engines,
            &self.project_root,
        );
        let run = || {
            input
                .intents
                .iter()
                .zip(&input.contexts)
                .map(|(i, c)| {
                    let d = self.pipeline.evaluate(i, c);
                    self.metrics
                        .observe_policy_latency(Duration::from_nanos(d.duration_ns));
                    d
                })
                .collect()
        };
        // A pipeline run takes ~0.2 ms: like the rest of a core turn, it
        // runs on the worker. `block_in_place` hands the worker's other
        // tasks to a blocking-pool thread first — a thread hand-off (and
        // its wake-ups) per intent, measured as more CPU per intent than
        // it saves (docs/PERFORMANCE.md, "Load"). Only an intent with
        // many ops, whose evaluation could take many wall-clock budgets
        // in the worst case, still steps out of the worker that way.
        if self.policy_block_in_place || input.intents.len() > DIRECT_POLICY_OPS {
            tokio::task::block_in_place(run)
        } else {
            run()
        }
    }

    fn submit(&mut self, author: String, mut req: IntentRequest, reply: Reply<IntentOutcome>) {
        mark_non_finite(&mut req);
        if let Some(why) = &self.wal_fault {
            let _ = reply.send(Err(wal_error(why)));
            return;
        }
        if let Err(e) = req.check_intake() {
            self.metrics.record_intent(IntentOutcomeLabel::Refused);
            let _ = reply.send(Err(e));
            return;
        }
        if let Err(refused) = self.link.check_mutation_allowed() {
            self.metrics.record_intent(IntentOutcomeLabel::Refused);
            let (engine, reason) = match self.link.panic_state() {
                vibesync_link::PanicState::Panic { engine, reason, .. } => (engine, reason),
                _ => ("?".into(), refused.to_string()),
            };
            let _ = reply.send(Err(CoreError::panic(&engine, &reason)));
            return;
        }
        let decisions = self.evaluate(&req, self.seq.next_tid());
        let (_, findings) = intake::overall(&decisions);
        let sub = match intake::submission(&req, author, &decisions) {
            Ok(sub) => sub,
            Err(e) => {
                self.metrics.record_intent(IntentOutcomeLabel::Refused);
                let _ = reply.send(Err(e));
                return;
            }
        };
        let step = match self.seq.handle(now_ms(), Input::Submit(sub)) {
            Ok(step) => step,
            Err(e) => {
                let _ = reply.send(Err(CoreError::new(
                    ErrorCode::Internal,
                    "",
                    e.to_string(),
                    "report this; the intent was not applied",
                )));
                return;
            }
        };
        if let Some(tid) = step.tid {
            self.waiting.entry(tid).or_default().push(Waiter {
                reply,
                findings,
                read_version: req.scene_version,
            });
        }
        self.stage(step);
    }

    /// Carry out one effect; a command for an engine is returned, to go
    /// out with the others of the batch through that engine's outbox.
    fn effect(&mut self, effect: Effect) -> Option<(String, Outgoing)> {
        let command = |body, to_input: ToInput| Outgoing {
            body,
            to_input: Some(to_input),
        };
        match effect {
            Effect::Apply { engine, tid, ops } => {
                let e = engine.clone();
                Some((
                    engine,
                    command(
                        CommandBody::Apply { tid, ops },
                        Box::new(move |r| {
                            let ack = match r {
                                Ok(mut v) => AckOutcome::Applied {
                                    undo_token: v
                                        .get_mut("undo_token")
                                        .map(serde_json::Value::take)
                                        .unwrap_or_default()
                                        .into(),
                                },
                                Err(e) => AckOutcome::Failed {
                                    error: e.to_string(),
                                },
                            };
                            vec![Input::Applied {
                                tid,
                                engine: e,
                                ack,
                            }]
                        }),
                    ),
                ))
            }
            Effect::Verify {
                engine,
                tid,
                objects,
            } => {
                let e = engine.clone();
                Some((
                    engine,
                    command(
                        CommandBody::Verify { tid, ids: objects },
                        Box::new(move |r| {
                            let observed = r
                                .map_err(|e| e.to_string())
                                .and_then(|v| reply_hash(&v, "verify"));
                            vec![Input::Verified {
                                tid,
                                engine: e,
                                observed,
                            }]
                        }),
                    ),
                ))
            }
            Effect::Undo { engine, tid, token } => {
                let e = engine.clone();
                Some((
                    engine,
                    command(
                        CommandBody::Rollback {
                            tid,
                            undo_token: Arc::unwrap_or_clone(token),
                        },
                        Box::new(move |r| {
                            vec![Input::Undone {
                                tid,
                                engine: e,
                                result: r.map(|_| ()).map_err(|e| e.to_string()),
                            }]
                        }),
                    ),
                ))
            }
            Effect::Commit { engine, tid } => Some((
                engine,
                Outgoing {
                    body: CommandBody::Commit { tid },
                    to_input: None,
                },
            )),
            Effect::Resync { engine, scene, .. } => {
                let link = self.link.clone();
                let objects: Vec<_> = scene.objects.values().cloned().collect();
                let quantum = self.quantum;
                tokio::spawn(async move {
                    match link.reconcile(&engine, &objects, quantum).await {
                        Ok(r) => {
                            tracing::info!(%engine, resynced = r.resynced, hash = %r.hash, "engine reconciled")
                        }
                        Err(e) => {
                            tracing::warn!(%engine, error = %e, "engine could not be reconciled; it stays unreconciled")
                        }
                    }
                });
                None
            }
            Effect::Answer { tid, answer, .. } => {
                self.answer(tid, answer);
                None
            }
        }
    }

    fn answer(&mut self, tid: Tid, answer: Answer) {
        let outcome = |phase, scene_version, note: &str, acks| IntentOutcome {
            tid,
            phase,
            scene_version,
            acks,
            note: note.to_owned(),
        };
        match answer {
            Answer::Queued { .. } | Answer::InProgress => {}
            Answer::Provisional { scene_version } => {
                self.metrics.record_intent(IntentOutcomeLabel::Provisional);
                let acks = self.views.acks(tid);
                for w in self.waiting.remove(&tid).unwrap_or_default() {
                    let _ = w.reply.send(Ok(outcome(
                        Phase::Provisional,
                        scene_version,
                        PROVISIONAL_NOTE,
                        acks.clone(),
                    )));
                }
            }
            Answer::Escalated { .. } => {
                self.metrics.record_intent(IntentOutcomeLabel::Escalated);
                for w in self.waiting.remove(&tid).unwrap_or_default() {
                    let _ = w.reply.send(Err(CoreError::escalated(tid, w.findings)));
                }
            }
            Answer::Final(o) => {
                self.metrics.record_intent(match &o {
                    Outcome::Committed { .. } => IntentOutcomeLabel::Committed,
                    Outcome::RolledBack { .. } => IntentOutcomeLabel::RolledBack,
                    Outcome::Denied { .. } => IntentOutcomeLabel::Denied,
                    Outcome::Refused { .. } => IntentOutcomeLabel::Refused,
                });
                if matches!(o, Outcome::RolledBack { .. }) {
                    self.metrics.inc_verification_failure();
                }
                let acks = self.views.acks(tid);
                for w in self.waiting.remove(&tid).unwrap_or_default() {
                    let r = match &o {
                        Outcome::Committed { scene_version } => Ok(outcome(
                            Phase::Committed,
                            *scene_version,
                            "committed and verified on every engine",
                            acks.clone(),
                        )),
                        other => Err(intake::refusal(
                            tid,
                            other,
                            w.findings,
                            self.durable.scene_version,
                            w.read_version,
                        )),
                    };
                    let _ = w.reply.send(r);
                }
            }
        }
    }

    /// Tell subscribers of a transaction about its journaled progress.
    fn progress(&mut self, tid: Tid) {
        let Some(subs) = self.subscribers.get_mut(&tid) else {
            return;
        };
        let Some((msg, is_final)) = self.views.progress(tid) else {
            return;
        };
        subs.retain(|s| s.try_send(msg.clone()).is_ok());
        if is_final {
            self.subscribers.remove(&tid);
        }
    }

    fn decide(
        &mut self,
        tid: u64,
        operator: String,
        approve: bool,
        note: String,
        reply: Reply<crate::core_api::TransactionView>,
    ) {
        match self.seq.handle(
            now_ms(),
            Input::Decide {
                tid,
                operator,
                approve,
                note,
            },
        ) {
            Ok(step) => {
                self.stage(step);
                // Answered once the decision is durable.
                self.defer(move |core, error| {
                    let _ = reply.send(match error {
                        Some(e) => Err(wal_error(e)),
                        None => core
                            .views
                            .transaction(tid)
                            .ok_or_else(|| not_found_tid(tid)),
                    });
                });
            }
            Err(e) => {
                let _ = reply.send(Err(CoreError::new(
                    ErrorCode::Conflict,
                    "/tid",
                    e.to_string(),
                    "`vibesync ctl status` lists the transactions waiting for a decision",
                )));
            }
        }
    }

    fn lock_reply(
        &mut self,
        id: String,
        r: Result<Step, vibesync_ledger::SequencerError>,
        reply: Reply<crate::core_api::ObjectView>,
    ) {
        match r {
            Ok(step) => {
                self.stage(step);
                // Answered once the lock record is durable, from the
                // durable state.
                self.defer(move |core, error| {
                    if let Some(e) = error {
                        let _ = reply.send(Err(wal_error(e)));
                        return;
                    }
                    let lock = core.durable.locks.get(&id).cloned();
                    let view = core
                        .durable
                        .scene
                        .get(&id)
                        .map(|o| intake::object_view(o, lock.as_ref()));
                    let _ = reply.send(view.ok_or_else(|| {
                        CoreError::new(
                            ErrorCode::NotFound,
                            "/id",
                            format!("no object `{id}` in the canonical scene"),
                            "`read_scene` lists the objects",
                        )
                    }));
                });
            }
            Err(e) => {
                let _ = reply.send(Err(CoreError::new(
                    ErrorCode::Conflict,
                    "/id",
                    e.to_string(),
                    "see `vibesync ctl status`",
                )
                .with_rule("host.lock")));
            }
        }
    }

    fn resume(&mut self, caller: Caller, reply: Reply<StatusView>) {
        let link = self.link.clone();
        let tx = self.internal.clone();
        let names: Vec<String> = self.engines.iter().map(|(n, _)| n.clone()).collect();
        let canonical: Option<Vec<_>> = self
            .seq
            .resume_scene()
            .map(|s| s.objects.values().cloned().collect());
        let quantum = self.quantum;
        // In PANIC every engine is brought to the canonical scene (snapshot,
        // compare, resync on mismatch); the link then checks that all are
        // back, healthy and reconciled; only then does the sequencer leave
        // PANIC (journaled). Outside PANIC the link only thaws.
        tokio::spawn(async move {
            if let Some(canonical) = &canonical {
                for name in &names {
                    if let Err(e) = link.reconcile(name, canonical, quantum).await {
                        let _ = reply.send(Err(resume_refused(format!(
                            "engine `{name}` could not be reconciled: {e}"
                        ))));
                        return;
                    }
                }
            }
            match link.resume().await {
                // The link is not in PANIC when the host restarted while the
                // journal was: the journal's PANIC still stands, and every
                // engine has just been reconciled, so the sequencer may leave.
                Ok(()) | Err(vibesync_link::ResumeRefused::NotInPanic) => {
                    let _ = tx.send(Internal::Resumed {
                        operator: caller.label(),
                        reply,
                    });
                }
                Err(e) => {
                    let _ = reply.send(Err(resume_refused(e.to_string())));
                }
            }
        });
    }

    fn verify_engines(&self, engine: Option<String>, reply: Reply<Vec<VerificationView>>) {
        let names: Vec<String> = match engine {
            Some(e) if self.engines.iter().any(|(n, _)| *n == e) => vec![e],
            Some(e) => {
                let _ = reply.send(Err(CoreError::new(
                    ErrorCode::NotFound,
                    "/engine",
                    format!("no engine `{e}`"),
                    "list_engines shows the configured engines",
                )));
                return;
            }
            None => self.engines.iter().map(|(n, _)| n.clone()).collect(),
        };
        let expected = self.seq.scene().hash().to_hex();
        let link = self.link.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            for name in names {
                let got = link.send(&name, CommandBody::Snapshot).await;
                let (engine_hash, detail) = match got {
                    Ok(v) => (
                        v.get("hash").and_then(|h| h.as_str()).map(str::to_owned),
                        None,
                    ),
                    Err(e) => (None, Some(e.to_string())),
                };
                out.push(VerificationView {
                    matches: engine_hash.as_deref() == Some(expected.as_str()),
                    engine: name,
                    expected_hash: expected.clone(),
                    engine_hash,
                    detail,
                });
            }
            let _ = reply.send(Ok(out));
        });
    }

    fn engine_views(&self) -> Vec<EngineView> {
        let live = self.link.engines();
        self.engines
            .iter()
            .map(|(name, kind)| match live.iter().find(|e| e.name == *name) {
                Some(e) => engine_view(e),
                None => EngineView {
                    name: name.clone(),
                    kind: kind.clone(),
                    connected: false,
                    last_heartbeat_age_ms: None,
                    main_thread_lag_ms: None,
                    queue_depth: 0,
                    frozen: false,
                },
            })
            .collect()
    }

    fn scene_view(&self) -> SceneView {
        // The durable state only: a read never shows what the journal
        // could still lose.
        let locks = &self.durable.locks;
        SceneView {
            version: self.durable.scene_version,
            hash: self.durable.scene.hash().to_hex(),
            objects: self
                .durable
                .scene
                .objects
                .values()
                .map(|o| intake::object_view(o, locks.get(&o.id)))
                .collect(),
            engines: self
                .engines
                .iter()
                .map(|(name, _)| {
                    let v = self.views.verified().get(name);
                    EngineSceneView {
                        engine: name.clone(),
                        verified_hash: v.map(|(h, _)| h.to_hex()),
                        verified_version: v.map(|(_, n)| *n),
                    }
                })
                .collect(),
            panic: self.panic_view(),
        }
    }

    /// PANIC as the link (which trips it) or the sequencer (which journals
    /// it, and remembers it across a restart) knows it.
    fn panic_view(&self) -> Option<PanicView> {
        match self.link.panic_state() {
            vibesync_link::PanicState::Panic {
                engine,
                reason,
                since_ms,
            } => Some(PanicView {
                engine,
                reason,
                since_ms,
            }),
            _ => self.durable.panic.as_deref().map(|r| PanicView {
                engine: String::new(),
                reason: r.to_owned(),
                since_ms: 0,
            }),
        }
    }

    fn status(&self) -> StatusView {
        StatusView {
            scene_version: self.durable.scene_version,
            panic: self.panic_view(),
            engines: self.engine_views(),
            pending_escalations: self.views.pending_escalations(),
            in_flight: self.seq.open_tids().len() as u32,
            policies: self.pipeline.current().policies().count() as u32,
        }
    }

    fn policy_views(&self) -> Vec<PolicyView> {
        self.pipeline
            .current()
            .policies()
            .map(|p| PolicyView {
                name: p.name().to_owned(),
                version: p.info().version.clone(),
                hash: p.hash().to_string(),
                rules: p.info().rules.iter().map(|r| r.id.clone()).collect(),
            })
            .collect()
    }
}

/// The `hash` of an engine's `apply` or `verify` reply.
fn reply_hash(reply: &serde_json::Value, command: &str) -> Result<StateHash, String> {
    reply
        .get("hash")
        .and_then(|h| h.as_str())
        .and_then(StateHash::from_hex)
        .ok_or_else(|| format!("the engine's {command} reply has no valid `hash`"))
}

/// Make `apply`'s reply also the read-back of `objects` that the sequencer
/// asked for right behind it (`verify_with_apply`), instead of sending a
/// `verify` command.
///
/// An engine computes the `hash` of its `apply` reply the way it answers
/// `verify`: by reading the touched objects back from the engine on the
/// main thread, after applying (`docs/adapter-api.md`). A `verify` right
/// behind it in the same frame runs in the same main-thread turn and
/// reads the same state again, so its command, its reply and its decoding
/// bought nothing but a second copy of the hash. The sequencer still gets
/// the same inputs (the ack, then the read-back) and journals the same
/// records. The reply's `touched` must be the ids the host would have
/// named: if the engine hashed another set, the read-back is an error and
/// the transaction rolls back.
fn read_back_with_apply(apply: &mut Outgoing, engine: &str, tid: Tid, objects: &[String]) {
    let Some(applied) = apply.to_input.take() else {
        return;
    };
    let engine = engine.to_owned();
    let mut want: Vec<String> = objects.to_vec();
    want.sort();
    want.dedup();
    apply.to_input = Some(Box::new(move |r| {
        let observed = r.as_ref().ok().map(|v| {
            let mut touched: Vec<String> = v
                .get("touched")
                .and_then(|t| <Vec<String> as serde::Deserialize>::deserialize(t).ok())
                .ok_or("the engine's apply reply has no `touched` list")?;
            touched.sort();
            touched.dedup();
            if touched != want {
                return Err(format!(
                    "the engine hashed objects {touched:?} after applying, the host expected {want:?}"
                ));
            }
            reply_hash(v, "apply")
        });
        let mut inputs = applied(r);
        // A failed apply is rolled back by its ack: nothing to read back.
        if let Some(observed) = observed {
            inputs.push(Input::Verified {
                tid,
                engine,
                observed,
            });
        }
        inputs
    }));
}

fn engine_view(e: &vibesync_link::EngineInfo) -> EngineView {
    let now = now_ms();
    EngineView {
        name: e.name.clone(),
        kind: e.kind.clone(),
        connected: e.connected,
        last_heartbeat_age_ms: (e.last_heartbeat_ms > 0)
            .then(|| now.saturating_sub(e.last_heartbeat_ms)),
        main_thread_lag_ms: Some(e.main_thread_lag_ms),
        queue_depth: e.queue_depth,
        frozen: e.frozen,
    }
}

/// JSON cannot carry NaN or infinity; agents and engines that produce them
/// write the strings "NaN", "Infinity", "-Infinity". Intake reads those as
/// the non-finite floats they stand for, so the NaN audit sees them.
fn mark_non_finite(req: &mut IntentRequest) {
    for op in &mut req.ops {
        vibesync_policy_types::json::mark_non_finite(&mut op.args);
    }
}

fn resume_refused(why: String) -> CoreError {
    CoreError::new(
        ErrorCode::Conflict,
        "",
        format!("cannot leave PANIC yet: {why}"),
        "bring the engine back (restart its adapter), wait until `vibesync ctl engines` shows it connected, then resume again",
    )
    .with_rule("host.resume")
}

fn not_found_tid(tid: u64) -> CoreError {
    CoreError::new(
        ErrorCode::NotFound,
        "/tid",
        format!("no transaction {tid} in memory"),
        "use a tid from submit_intent or get_operation_journal; older ones are in the WAL (`vibesync wal show --tid N`)",
    )
}

fn wal_error(why: &str) -> CoreError {
    CoreError::new(
        ErrorCode::Internal,
        "",
        format!("the write-ahead log cannot be written ({why}); nothing is applied without a durable record"),
        "the operator must check the state directory's disk and restart `vibesync serve`",
    )
    .with_rule("host.wal-unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An outgoing `apply` for tid 7 whose reply becomes an ack, merged with
    /// the read-back of `objects`.
    fn merged(objects: &[&str]) -> ToInput {
        let mut apply = Outgoing {
            body: CommandBody::Apply {
                tid: 7,
                ops: vec![],
            },
            to_input: Some(Box::new(|r| {
                vec![Input::Applied {
                    tid: 7,
                    engine: "blender".into(),
                    ack: match r {
                        Ok(_) => AckOutcome::Applied {
                            undo_token: Default::default(),
                        },
                        Err(e) => AckOutcome::Failed {
                            error: e.to_string(),
                        },
                    },
                }]
            })),
        };
        let objects: Vec<String> = objects.iter().map(|s| s.to_string()).collect();
        read_back_with_apply(&mut apply, "blender", 7, &objects);
        apply.to_input.unwrap()
    }

    fn observed(inputs: &[Input]) -> Option<&Result<StateHash, String>> {
        inputs.iter().find_map(|i| match i {
            Input::Verified { observed, .. } => Some(observed),
            _ => None,
        })
    }

    #[test]
    fn an_apply_reply_is_the_read_back_of_exactly_the_objects_it_touched() {
        let hash = StateHash([3; 32]);
        let reply = json!({"undo_token": {}, "hash": hash.to_hex(), "touched": ["b", "a"]});
        let inputs = merged(&["a", "b"])(Ok(reply));
        assert!(matches!(inputs[0], Input::Applied { .. }), "the ack first");
        assert_eq!(observed(&inputs), Some(&Ok(hash)));

        // Another set hashed than the host would have named: an error, so
        // the transaction rolls back.
        let reply = json!({"undo_token": {}, "hash": hash.to_hex(), "touched": ["a"]});
        let inputs = merged(&["a", "b"])(Ok(reply));
        let err = observed(&inputs).unwrap().as_ref().unwrap_err();
        assert!(err.contains("expected [\"a\", \"b\"]"), "{err}");

        // No hash, or no touched list: an error too.
        for reply in [json!({"touched": ["a"]}), json!({"hash": hash.to_hex()})] {
            assert!(observed(&merged(&["a"])(Ok(reply))).unwrap().is_err());
        }

        // A failed apply is rolled back by its ack alone.
        let inputs = merged(&["a"])(Err(LinkError::Disconnected("blender".into())));
        assert_eq!(inputs.len(), 1);
        assert!(matches!(
            inputs[0],
            Input::Applied {
                ack: AckOutcome::Failed { .. },
                ..
            }
        ));
    }
}
