//! The message API between the front doors (MCP, `ctl`) and the orchestrator
//! core.
//!
//! One owner per piece of state: the core task owns the transaction table,
//! the scene, the engine registry and the PANIC state. The front doors never
//! touch that state; they send a [`CoreRequest`] through a cloneable
//! [`CoreHandle`] and wait on the `oneshot` reply the request carries.
//! Everything here is plain serde data so that it can be journaled, put on
//! the `ctl` socket or shown to an agent as a structured tool result.
//!
//! Every request names its [`Caller`]. The core refuses operator actions
//! from an agent with [`ErrorCode::OperatorOnly`] ([`CoreCall::requires_operator`]
//! and [`authorize`] are the rule); the MCP layer, in addition, simply has no
//! tool for them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Caller {
    /// An AI agent through the MCP front door.
    Agent,
    /// A human operator through `vibesync ctl`; `uid` is the peer credential
    /// the control socket checked.
    Operator { uid: u32 },
}

impl Caller {
    /// A short label for journals and locks: `agent` or `operator:<uid>`.
    pub fn label(&self) -> String {
        match self {
            Caller::Agent => "agent".to_owned(),
            Caller::Operator { uid } => format!("operator:{uid}"),
        }
    }
}

/// Who authored an intent (mirrors `source` in `wit/policy.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Agent,
    EngineEdit,
    Operator,
}

/// The op names of `docs/ops.md`, in that order.
pub const OP_NAMES: [&str; 8] = [
    "create_object",
    "delete_object",
    "rename_object",
    "reparent_object",
    "set_transform",
    "set_material",
    "select",
    "run_script",
];

/// One op of an intent: `{"op": "<name>", "args": {...}}` (see `docs/ops.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OpSpec {
    /// One of `create_object`, `delete_object`, `rename_object`,
    /// `reparent_object`, `set_transform`, `set_material`, `select`,
    /// `run_script`.
    pub op: String,
    /// The op's arguments, as listed in docs/ops.md.
    pub args: serde_json::Value,
}

/// An intent as the core receives it: one or more ops applied as one atomic
/// transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntentRequest {
    pub ops: Vec<OpSpec>,
    /// Why the author wants this change. Required, must say something.
    pub rationale: String,
    /// The scene version the author last read; a stale one is refused.
    pub scene_version: u64,
    /// Retrying with the same key returns the first outcome instead of
    /// applying twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Target engines; `None` means every configured engine.
    #[serde(default)]
    pub engines: Option<Vec<String>>,
    pub source: Source,
}

/// The shortest rationale the intake accepts (after trimming).
pub const MIN_RATIONALE_CHARS: usize = 8;

impl IntentRequest {
    /// The shape checks every intake applies before anything else runs:
    /// at least one op, known op names, object arguments, a rationale that
    /// says something. Pure; the core runs it again on what it receives.
    pub fn check_intake(&self) -> Result<(), CoreError> {
        if self.ops.is_empty() {
            return Err(CoreError::new(
                ErrorCode::InvalidArgs,
                "/ops",
                "the intent has no ops",
                "send at least one op, e.g. {\"op\": \"set_transform\", \"args\": {\"id\": \"obj-1\", \"translation\": [0, 1, 0]}}",
            )
            .with_rule("host.intake"));
        }
        for (i, op) in self.ops.iter().enumerate() {
            if !OP_NAMES.contains(&op.op.as_str()) {
                return Err(CoreError::new(
                    ErrorCode::InvalidArgs,
                    format!("/ops/{i}/op"),
                    format!("unknown op `{}`", op.op),
                    format!("use one of: {}", OP_NAMES.join(", ")),
                )
                .with_rule("host.intake"));
            }
            if !op.args.is_object() {
                return Err(CoreError::new(
                    ErrorCode::InvalidArgs,
                    format!("/ops/{i}/args"),
                    format!("the arguments of `{}` must be a JSON object", op.op),
                    "pass the arguments as an object; docs/ops.md lists them per op",
                )
                .with_rule("host.intake"));
            }
        }
        check_rationale(Some(&self.rationale))
    }
}

/// Refuses a missing or empty rationale with the rule `host.rationale-required`.
pub fn check_rationale(rationale: Option<&str>) -> Result<(), CoreError> {
    let text = rationale.map(str::trim).unwrap_or("");
    if text.chars().count() < MIN_RATIONALE_CHARS {
        let what = if rationale.is_none() {
            "missing"
        } else {
            "too short"
        };
        return Err(CoreError::new(
            ErrorCode::MissingRationale,
            "/rationale",
            format!("the rationale is {what}: every change must say why (at least {MIN_RATIONALE_CHARS} characters)"),
            "add a `rationale` that explains the change to a human reviewer, e.g. \"move the lamp above the table so the scene is lit\"",
        )
        .with_rule("host.rationale-required"));
    }
    Ok(())
}

/// Refuses a missing scene version with the rule `host.scene-version-required`.
pub fn require_scene_version(scene_version: Option<u64>) -> Result<u64, CoreError> {
    scene_version.ok_or_else(|| {
        CoreError::new(
            ErrorCode::StaleSceneVersion,
            "/scene_version",
            "the scene version is missing: the agent must look before it writes",
            "call read_scene (or read_engine_state) and pass its `version` as `scene_version`",
        )
        .with_rule("host.scene-version-required")
    })
}

/// Where a transaction is in its life (`docs/` and the WAL use the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Submitted,
    Validated,
    Denied,
    /// Held for an operator's decision.
    Escalated,
    Begun,
    /// Applied on every engine, answered to the author, not yet verified.
    Provisional,
    Verified,
    Committed,
    RolledBack,
}

impl Phase {
    /// Whether nothing more will happen to the transaction.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Denied | Phase::Committed | Phase::RolledBack)
    }
}

/// One engine's acknowledgement of an applied transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EngineAck {
    pub engine: String,
    pub applied: bool,
    /// The engine's undo token, used for a rollback; shown while the
    /// transaction is in flight (once it is final the engines have dropped
    /// theirs; the WAL's `engine_ack` record keeps it).
    pub undo_token: Option<String>,
    /// Why it did not apply, when it did not.
    pub message: Option<String>,
}

/// The answer to a submitted intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntentOutcome {
    pub tid: u64,
    pub phase: Phase,
    /// The scene version after the change (pass it as `scene_version` next).
    pub scene_version: u64,
    pub acks: Vec<EngineAck>,
    /// Says where the final outcome will be, e.g. "provisionally committed;
    /// verification pending — see get_transaction".
    pub note: String,
}

/// The note every provisional answer carries.
pub const PROVISIONAL_NOTE: &str =
    "provisionally committed; verification pending — see get_transaction for the final outcome";

/// How serious a finding is (mirrors `severity` in `wit/policy.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

/// One reason behind a verdict (mirrors `finding` in `wit/policy.wit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Finding {
    /// `<policy>.<rule>`, e.g. `firewall.python-import`.
    pub rule: String,
    pub severity: Severity,
    /// JSON pointer into the intent (`/ops/0/args/code`); empty for the
    /// intent as a whole.
    pub path: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Allow,
    Deny,
    Escalate,
}

/// One policy's verdict on one op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyVerdict {
    pub policy: String,
    pub op_index: u32,
    pub verdict: VerdictKind,
    pub findings: Vec<Finding>,
    pub latency_us: u64,
}

/// The dry-run answer of `validate_intent`: nothing applied, nothing sequenced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ValidationView {
    /// The verdict of the whole intent: deny if any op is denied, else
    /// escalate if any op is escalated, else allow.
    pub verdict: VerdictKind,
    pub verdicts: Vec<PolicyVerdict>,
    pub scene_version: u64,
}

/// When a transaction reached a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseStamp {
    pub phase: Phase,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    pub detail: Option<String>,
}

/// Everything known about one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransactionView {
    pub tid: u64,
    pub source: Source,
    /// `agent` or `operator:<uid>`.
    pub author: String,
    pub rationale: String,
    pub ops: Vec<OpSpec>,
    pub engines: Vec<String>,
    pub scene_version_read: u64,
    pub phases: Vec<PhaseStamp>,
    pub verdicts: Vec<PolicyVerdict>,
    pub acks: Vec<EngineAck>,
    /// The current phase (final once `is_final`).
    pub phase: Phase,
    pub is_final: bool,
    /// Why it ended that way (denial findings, rollback reason, approver).
    pub why: Option<String>,
}

/// An engine's link and health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EngineView {
    pub name: String,
    /// `blender`, `unity`, or `reference`.
    pub kind: String,
    pub connected: bool,
    pub last_heartbeat_age_ms: Option<u64>,
    pub main_thread_lag_ms: Option<u64>,
    pub queue_depth: u32,
    /// Frozen by PANIC.
    pub frozen: bool,
}

/// A transform in the canonical frame (glTF: right-handed, +Y up, metres).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransformView {
    pub translation: [f64; 3],
    /// Unit quaternion (x, y, z, w).
    pub rotation: [f64; 4],
    pub scale: [f64; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MaterialView {
    pub base_color: [f64; 4],
    pub roughness: f64,
    pub metallic: f64,
    pub emission: [f64; 3],
    pub emission_strength: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LockView {
    /// e.g. `operator:1000`.
    pub holder: String,
    /// A human lock: no agent can lift it.
    pub human: bool,
}

/// The canonical state of one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObjectView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub parent: Option<String>,
    pub transform: TransformView,
    pub material: Option<MaterialView>,
    pub lock: Option<LockView>,
}

/// The state one engine was last verified at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EngineSceneView {
    pub engine: String,
    /// Canonical state hash (hex) read back from the engine.
    pub verified_hash: Option<String>,
    pub verified_version: Option<u64>,
}

/// The canonical scene.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SceneView {
    /// Pass this as `scene_version` in the next write.
    pub version: u64,
    /// Canonical state hash (hex).
    pub hash: String,
    pub objects: Vec<ObjectView>,
    pub engines: Vec<EngineSceneView>,
    /// Set while the cluster is in PANIC: every write is refused until an
    /// operator resumes.
    pub panic: Option<PanicView>,
}

/// One engine's answer to `verify_engine_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerificationView {
    pub engine: String,
    pub expected_hash: String,
    pub engine_hash: Option<String>,
    pub matches: bool,
    pub detail: Option<String>,
}

/// What `get_operation_journal` filters on; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JournalFilter {
    /// Only entries after this sequence number (for paging and tailing).
    #[serde(default)]
    pub after_seq: Option<u64>,
    #[serde(default)]
    pub tid: Option<u64>,
    /// Only entries touching this object id.
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub phase: Option<Phase>,
    /// At most this many entries (newest last); the core caps it.
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One line of the operation journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JournalEntry {
    pub seq: u64,
    pub tid: u64,
    pub at_ms: u64,
    pub phase: Phase,
    pub source: Source,
    pub author: String,
    pub objects: Vec<String>,
    pub summary: String,
}

/// The global PANIC state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PanicView {
    pub engine: String,
    pub reason: String,
    pub since_ms: u64,
}

/// What `vibesync ctl status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatusView {
    pub scene_version: u64,
    pub panic: Option<PanicView>,
    pub engines: Vec<EngineView>,
    /// Tids waiting for an operator's approve/deny.
    pub pending_escalations: Vec<u64>,
    pub in_flight: u32,
    pub policies: u32,
}

/// A loaded policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyView {
    pub name: String,
    pub version: String,
    /// SHA-256 of the component (hex).
    pub hash: String,
    pub rules: Vec<String>,
}

/// A progress event of one transaction, for MCP progress notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TxProgress {
    pub tid: u64,
    pub phase: Phase,
    /// Monotonic step counter, e.g. engines verified so far.
    pub progress: f64,
    pub total: Option<f64>,
    pub message: String,
}

/// The largest preview side the host asks an engine for: a CPU render of
/// that size stays well inside the engine's 5 s main-thread deadman and the
/// link's command timeout.
pub const PREVIEW_MAX_SIDE: u32 = 512;

/// What `render_preview` asks one engine to render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewRequest {
    /// The engine that renders; `None` picks the first Blender engine.
    pub engine: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Frame these objects; `None` uses the scene camera (or frames every
    /// tracked object when there is none).
    pub ids: Option<Vec<String>>,
}

/// A preview the engine rendered, checked by the host to be a PNG of the
/// size asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewImage {
    pub engine: String,
    pub width: u32,
    pub height: u32,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
    /// Engine round trip, render included.
    pub elapsed_ms: u64,
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingRationale,
    StaleSceneVersion,
    InvalidArgs,
    /// A policy denied the intent.
    Denied,
    /// A policy escalated it; it waits for an operator.
    Escalated,
    /// The cluster is in PANIC: no mutation is accepted anywhere.
    Panic,
    /// The object is locked by a human.
    Locked,
    /// Only an operator (through `vibesync ctl`) may do this.
    OperatorOnly,
    NotFound,
    /// The request does not apply in the current state (e.g. resume while
    /// not in PANIC).
    Conflict,
    /// The core is not running.
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MissingRationale => "missing_rationale",
            ErrorCode::StaleSceneVersion => "stale_scene_version",
            ErrorCode::InvalidArgs => "invalid_args",
            ErrorCode::Denied => "denied",
            ErrorCode::Escalated => "escalated",
            ErrorCode::Panic => "panic",
            ErrorCode::Locked => "locked",
            ErrorCode::OperatorOnly => "operator_only",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A refusal or failure, written for the one who has to act on it.
///
/// `Display` renders one paragraph: the code, the rule that fired, the field
/// (JSON pointer) it fired on, what is wrong, and the remedy, followed by
/// every policy finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
pub struct CoreError {
    pub code: ErrorCode,
    /// The rule that fired, e.g. `firewall.python-import` or `host.panic`.
    pub rule: Option<String>,
    /// JSON pointer of the offending field, e.g. `/ops/0/args/code`.
    pub field: Option<String>,
    pub message: String,
    /// What to do instead.
    pub remedy: String,
    /// Every policy finding behind a denial or escalation.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// The transaction the refusal belongs to, when one was opened.
    #[serde(default)]
    pub tid: Option<u64>,
}

impl CoreError {
    pub fn new(
        code: ErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        let field = field.into();
        CoreError {
            code,
            rule: None,
            field: (!field.is_empty()).then_some(field),
            message: message.into(),
            remedy: remedy.into(),
            findings: Vec::new(),
            tid: None,
        }
    }

    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    pub fn with_findings(mut self, findings: Vec<Finding>) -> Self {
        self.findings = findings;
        self
    }

    pub fn with_tid(mut self, tid: u64) -> Self {
        self.tid = Some(tid);
        self
    }

    /// A denial built from policy findings: the first error-or-worse finding
    /// (or the first finding) names the rule and field.
    pub fn denied(tid: Option<u64>, findings: Vec<Finding>) -> Self {
        Self::from_findings(
            ErrorCode::Denied,
            tid,
            findings,
            "change the op so that the rule no longer fires (see each finding's message), then submit again with a fresh scene_version",
        )
    }

    /// An escalation: the intent waits for an operator.
    pub fn escalated(tid: u64, findings: Vec<Finding>) -> Self {
        Self::from_findings(
            ErrorCode::Escalated,
            Some(tid),
            findings,
            "a human operator must approve it with `vibesync ctl approve <tid>`; poll get_transaction for the decision, or submit a change that does not need approval",
        )
    }

    fn from_findings(
        code: ErrorCode,
        tid: Option<u64>,
        findings: Vec<Finding>,
        remedy: &str,
    ) -> Self {
        let lead = findings
            .iter()
            .find(|f| matches!(f.severity, Severity::Error | Severity::Critical))
            .or(findings.first());
        let (rule, field, message) = match lead {
            Some(f) => (
                Some(f.rule.clone()),
                (!f.path.is_empty()).then(|| f.path.clone()),
                f.message.clone(),
            ),
            None => (
                None,
                None,
                "a policy refused the intent without a finding".to_owned(),
            ),
        };
        CoreError {
            code,
            rule,
            field,
            message,
            remedy: remedy.to_owned(),
            findings,
            tid,
        }
    }

    /// The cluster is in PANIC because of `engine`.
    pub fn panic(engine: &str, reason: &str) -> Self {
        CoreError::new(
            ErrorCode::Panic,
            "",
            format!("the cluster is in PANIC: engine `{engine}` {reason}; no change is accepted on any engine"),
            "wait: a human operator must bring the engine back and run `vibesync ctl resume`; read_engine_state shows when the cluster is live again. Do not retry in a loop",
        )
        .with_rule("host.panic")
    }

    /// The author read an older scene.
    pub fn stale(read: u64, current: u64) -> Self {
        CoreError::new(
            ErrorCode::StaleSceneVersion,
            "/scene_version",
            format!("scene_version {read} is stale: the scene is at version {current}"),
            "call read_scene, check that your change still makes sense, and submit again with scene_version set to its `version`",
        )
        .with_rule("host.stale-scene-version")
    }

    /// An agent attempted an operator action.
    pub fn operator_only(action: &str) -> Self {
        CoreError::new(
            ErrorCode::OperatorOnly,
            "",
            format!("`{action}` is an operator action; an agent cannot do it"),
            format!("ask the human operator to run `vibesync ctl {action}`"),
        )
        .with_rule("host.operator-only")
    }

    pub fn unavailable() -> Self {
        CoreError::new(
            ErrorCode::Unavailable,
            "",
            "the orchestrator core is not running",
            "the host is shutting down or crashed; check its log and restart `vibesync serve`",
        )
        .with_rule("host.core-unavailable")
    }
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if let Some(tid) = self.tid {
            write!(f, " (tid {tid})")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ": rule `{rule}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, " on field `{field}`")?;
        }
        write!(
            f,
            ": {}. Remedy: {}.",
            self.message.trim_end_matches('.'),
            self.remedy.trim_end_matches('.')
        )?;
        for finding in &self.findings {
            let path = if finding.path.is_empty() {
                "(intent)"
            } else {
                &finding.path
            };
            write!(
                f,
                "\n- {:?} `{}` at `{}`: {}",
                finding.severity, finding.rule, path, finding.message
            )?;
        }
        Ok(())
    }
}

/// The reply channel every call carries.
pub type Reply<T> = oneshot::Sender<Result<T, CoreError>>;

/// A request to the core: who asks, and what.
#[derive(Debug)]
pub struct CoreRequest {
    pub caller: Caller,
    pub call: CoreCall,
}

/// What can be asked of the core. Each variant carries its reply.
#[derive(Debug)]
pub enum CoreCall {
    ListEngines(Reply<Vec<EngineView>>),
    ReadScene(Reply<SceneView>),
    GetTransaction {
        tid: u64,
        reply: Reply<TransactionView>,
    },
    Journal {
        filter: JournalFilter,
        reply: Reply<Vec<JournalEntry>>,
    },
    /// Answers at provisional commit (or with the refusal).
    SubmitIntent {
        intent: IntentRequest,
        reply: Reply<IntentOutcome>,
    },
    /// A dry run through the policies: nothing applied, nothing sequenced.
    ValidateIntent {
        intent: IntentRequest,
        reply: Reply<ValidationView>,
    },
    /// Read engine state back and compare hashes; `None` means every engine.
    VerifyEngineState {
        engine: Option<String>,
        reply: Reply<Vec<VerificationView>>,
    },
    /// Progress of one transaction until it is final. The receiver ends
    /// after the final phase; a transaction already final when subscribed
    /// gets that one event.
    Subscribe {
        tid: u64,
        reply: Reply<mpsc::Receiver<TxProgress>>,
    },
    /// Render a small PNG in one engine: a read, nothing is sequenced.
    Preview {
        request: PreviewRequest,
        reply: Reply<PreviewImage>,
    },
    // Operator actions.
    Status(Reply<StatusView>),
    /// Leave PANIC (only once every engine is back and reconciled).
    Resume(Reply<StatusView>),
    ApproveEscalation {
        tid: u64,
        who: String,
        reply: Reply<TransactionView>,
    },
    DenyEscalation {
        tid: u64,
        who: String,
        reason: String,
        reply: Reply<TransactionView>,
    },
    /// Take a human lock on an object.
    Lock {
        id: String,
        who: String,
        reply: Reply<ObjectView>,
    },
    /// Lift a human lock.
    Unlock {
        id: String,
        who: String,
        reply: Reply<ObjectView>,
    },
    ListPolicies(Reply<Vec<PolicyView>>),
    ReloadPolicies(Reply<Vec<PolicyView>>),
}

impl CoreCall {
    /// The operator action this call is, if it is one (the `ctl` verb).
    pub fn operator_action(&self) -> Option<&'static str> {
        match self {
            CoreCall::Status(_) => Some("status"),
            CoreCall::Resume(_) => Some("resume"),
            CoreCall::ApproveEscalation { .. } => Some("approve"),
            CoreCall::DenyEscalation { .. } => Some("deny"),
            CoreCall::Lock { .. } => Some("lock"),
            CoreCall::Unlock { .. } => Some("unlock"),
            CoreCall::ListPolicies(_) => Some("policies"),
            CoreCall::ReloadPolicies(_) => Some("reload"),
            _ => None,
        }
    }

    pub fn requires_operator(&self) -> bool {
        self.operator_action().is_some()
    }

    /// Answers the call with `err`, whatever its reply type (for refusals
    /// decided before dispatch, such as [`authorize`]).
    pub fn refuse(self, err: CoreError) {
        fn send<T>(tx: Reply<T>, err: CoreError) {
            // The caller may have gone away; nothing to tell it then.
            let _ = tx.send(Err(err));
        }
        match self {
            CoreCall::ListEngines(tx) => send(tx, err),
            CoreCall::ReadScene(tx) => send(tx, err),
            CoreCall::GetTransaction { reply, .. } => send(reply, err),
            CoreCall::Journal { reply, .. } => send(reply, err),
            CoreCall::SubmitIntent { reply, .. } => send(reply, err),
            CoreCall::ValidateIntent { reply, .. } => send(reply, err),
            CoreCall::VerifyEngineState { reply, .. } => send(reply, err),
            CoreCall::Subscribe { reply, .. } => send(reply, err),
            CoreCall::Preview { reply, .. } => send(reply, err),
            CoreCall::Status(tx) | CoreCall::Resume(tx) => send(tx, err),
            CoreCall::ApproveEscalation { reply, .. } | CoreCall::DenyEscalation { reply, .. } => {
                send(reply, err)
            }
            CoreCall::Lock { reply, .. } | CoreCall::Unlock { reply, .. } => send(reply, err),
            CoreCall::ListPolicies(tx) | CoreCall::ReloadPolicies(tx) => send(tx, err),
        }
    }
}

/// The rule the core applies to every request: agents may not do operator
/// actions.
pub fn authorize(caller: &Caller, call: &CoreCall) -> Result<(), CoreError> {
    match (caller, call.operator_action()) {
        (Caller::Agent, Some(action)) => Err(CoreError::operator_only(action)),
        _ => Ok(()),
    }
}

/// The front doors' side of the core: cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct CoreHandle {
    tx: mpsc::Sender<CoreRequest>,
}

/// The core's side: the receiver it owns.
pub type CoreInbox = mpsc::Receiver<CoreRequest>;

/// A handle and the inbox the core task must drain. `capacity` bounds the
/// queue: a full queue makes callers wait (backpressure), never drops.
pub fn channel(capacity: usize) -> (CoreHandle, CoreInbox) {
    let (tx, rx) = mpsc::channel(capacity);
    (CoreHandle { tx }, rx)
}

impl CoreHandle {
    /// Sends one call and waits for its reply.
    pub async fn call<T>(
        &self,
        caller: Caller,
        make: impl FnOnce(Reply<T>) -> CoreCall,
    ) -> Result<T, CoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(CoreRequest {
                caller,
                call: make(reply),
            })
            .await
            .map_err(|_| CoreError::unavailable())?;
        rx.await.map_err(|_| CoreError::unavailable())?
    }

    pub async fn list_engines(&self, caller: Caller) -> Result<Vec<EngineView>, CoreError> {
        self.call(caller, CoreCall::ListEngines).await
    }

    pub async fn read_scene(&self, caller: Caller) -> Result<SceneView, CoreError> {
        self.call(caller, CoreCall::ReadScene).await
    }

    pub async fn get_transaction(
        &self,
        caller: Caller,
        tid: u64,
    ) -> Result<TransactionView, CoreError> {
        self.call(caller, |reply| CoreCall::GetTransaction { tid, reply })
            .await
    }

    pub async fn journal(
        &self,
        caller: Caller,
        filter: JournalFilter,
    ) -> Result<Vec<JournalEntry>, CoreError> {
        self.call(caller, |reply| CoreCall::Journal { filter, reply })
            .await
    }

    pub async fn submit_intent(
        &self,
        caller: Caller,
        intent: IntentRequest,
    ) -> Result<IntentOutcome, CoreError> {
        self.call(caller, |reply| CoreCall::SubmitIntent { intent, reply })
            .await
    }

    pub async fn validate_intent(
        &self,
        caller: Caller,
        intent: IntentRequest,
    ) -> Result<ValidationView, CoreError> {
        self.call(caller, |reply| CoreCall::ValidateIntent { intent, reply })
            .await
    }

    pub async fn verify_engine_state(
        &self,
        caller: Caller,
        engine: Option<String>,
    ) -> Result<Vec<VerificationView>, CoreError> {
        self.call(caller, |reply| CoreCall::VerifyEngineState {
            engine,
            reply,
        })
        .await
    }

    pub async fn subscribe(
        &self,
        caller: Caller,
        tid: u64,
    ) -> Result<mpsc::Receiver<TxProgress>, CoreError> {
        self.call(caller, |reply| CoreCall::Subscribe { tid, reply })
            .await
    }

    pub async fn preview(
        &self,
        caller: Caller,
        request: PreviewRequest,
    ) -> Result<PreviewImage, CoreError> {
        self.call(caller, |reply| CoreCall::Preview { request, reply })
            .await
    }

    pub async fn status(&self, caller: Caller) -> Result<StatusView, CoreError> {
        self.call(caller, CoreCall::Status).await
    }

    pub async fn resume(&self, caller: Caller) -> Result<StatusView, CoreError> {
        self.call(caller, CoreCall::Resume).await
    }

    pub async fn approve(&self, caller: Caller, tid: u64) -> Result<TransactionView, CoreError> {
        let who = caller.label();
        self.call(caller, |reply| CoreCall::ApproveEscalation {
            tid,
            who,
            reply,
        })
        .await
    }

    pub async fn deny(
        &self,
        caller: Caller,
        tid: u64,
        reason: String,
    ) -> Result<TransactionView, CoreError> {
        let who = caller.label();
        self.call(caller, |reply| CoreCall::DenyEscalation {
            tid,
            who,
            reason,
            reply,
        })
        .await
    }

    pub async fn lock(&self, caller: Caller, id: String) -> Result<ObjectView, CoreError> {
        let who = caller.label();
        self.call(caller, |reply| CoreCall::Lock { id, who, reply })
            .await
    }

    pub async fn unlock(&self, caller: Caller, id: String) -> Result<ObjectView, CoreError> {
        let who = caller.label();
        self.call(caller, |reply| CoreCall::Unlock { id, who, reply })
            .await
    }

    pub async fn list_policies(&self, caller: Caller) -> Result<Vec<PolicyView>, CoreError> {
        self.call(caller, CoreCall::ListPolicies).await
    }

    pub async fn reload_policies(&self, caller: Caller) -> Result<Vec<PolicyView>, CoreError> {
        self.call(caller, CoreCall::ReloadPolicies).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(ops: Vec<OpSpec>, rationale: &str) -> IntentRequest {
        IntentRequest {
            ops,
            rationale: rationale.to_owned(),
            scene_version: 1,
            idempotency_key: None,
            engines: None,
            source: Source::Agent,
        }
    }

    fn op(name: &str) -> OpSpec {
        OpSpec {
            op: name.to_owned(),
            args: serde_json::json!({"id": "obj-1"}),
        }
    }

    #[test]
    fn intake_refuses_short_rationale_naming_rule_and_field() {
        let err = intent(vec![op("delete_object")], "  x ")
            .check_intake()
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::MissingRationale);
        let text = err.to_string();
        assert!(
            text.contains("rule `host.rationale-required` on field `/rationale`"),
            "{text}"
        );
        assert!(text.contains("Remedy: add a `rationale`"), "{text}");
    }

    #[test]
    fn intake_refuses_unknown_op_and_empty_ops() {
        let err = intent(vec![op("explode")], "a fine reason")
            .check_intake()
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("/ops/0/op"));
        assert!(err.remedy.contains("set_transform"));
        let err = intent(vec![], "a fine reason").check_intake().unwrap_err();
        assert_eq!(err.field.as_deref(), Some("/ops"));
        assert!(
            intent(vec![op("select")], "a fine reason")
                .check_intake()
                .is_ok()
        );
    }

    #[test]
    fn denial_leads_with_the_first_error_finding() {
        let findings = vec![
            Finding {
                rule: "validation.note".into(),
                severity: Severity::Info,
                path: String::new(),
                message: "fyi".into(),
            },
            Finding {
                rule: "firewall.python-import".into(),
                severity: Severity::Critical,
                path: "/ops/0/args/code".into(),
                message: "imports `socket`".into(),
            },
        ];
        let err = CoreError::denied(Some(7), findings);
        assert_eq!(err.rule.as_deref(), Some("firewall.python-import"));
        let text = err.to_string();
        assert!(
            text.starts_with(
                "denied (tid 7): rule `firewall.python-import` on field `/ops/0/args/code`"
            ),
            "{text}"
        );
        assert!(
            text.contains("- Info `validation.note` at `(intent)`: fyi"),
            "{text}"
        );
    }

    #[test]
    fn panic_text_names_engine_and_reason() {
        let text = CoreError::panic("unity", "missed heartbeats for 5000 ms").to_string();
        assert!(text.contains("rule `host.panic`"));
        assert!(text.contains("engine `unity` missed heartbeats for 5000 ms"));
        assert!(text.contains("vibesync ctl resume"));
    }

    #[test]
    fn agents_cannot_do_operator_actions() {
        let (reply, _rx) = oneshot::channel();
        let call = CoreCall::Resume(reply);
        let err = authorize(&Caller::Agent, &call).unwrap_err();
        assert_eq!(err.code, ErrorCode::OperatorOnly);
        assert!(err.remedy.contains("vibesync ctl resume"));
        assert!(authorize(&Caller::Operator { uid: 0 }, &call).is_ok());
        let (reply, _rx) = oneshot::channel();
        assert!(authorize(&Caller::Agent, &CoreCall::ReadScene(reply)).is_ok());
    }

    #[tokio::test]
    async fn a_dropped_core_is_unavailable() {
        let (handle, inbox) = channel(1);
        drop(inbox);
        let err = handle.read_scene(Caller::Agent).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::Unavailable);
    }

    #[test]
    fn core_error_round_trips_as_json() {
        let err = CoreError::stale(3, 5);
        let back: CoreError = serde_json::from_str(&serde_json::to_string(&err).unwrap()).unwrap();
        assert_eq!(back, err);
    }
}
