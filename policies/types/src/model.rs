//! The records of `wit/policy.wit`'s `types` interface as plain Rust values.
//!
//! Field names and variants follow the WIT file (snake_case here, kebab-case
//! there). Serde derives give the JSON spelling used by fixture files and the
//! `vibesync policy eval --intent` input: enums in kebab-case, [`Verdict`] as
//! `{"verdict": "deny", "findings": [...]}`.

use serde::{Deserialize, Serialize};

use crate::{Leaves, ScalarRef, StringList, canonical_cbor, flatten_packed};

/// Who authored an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// An AI agent, through the MCP front door.
    #[default]
    Agent,
    /// An artist's edit made inside an engine and reported by its adapter.
    EngineEdit,
    /// A human operator, through `vibesync ctl`.
    Operator,
}

/// One scalar at a leaf of a payload or configuration tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    /// May be NaN or infinite: that is what `nan-audit` is for.
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Scalar {
    /// The value as a float if it is a number (integers widen).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Scalar::Int(i) => Some(i as f64),
            Scalar::Float(f) => Some(f),
            _ => None,
        }
    }

    /// The value as text if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Scalar::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// A short name of the scalar's type, for messages (`"float"`, `"text"`...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "bool",
            Scalar::Int(_) => "integer",
            Scalar::Float(_) => "float",
            Scalar::Text(_) => "text",
            Scalar::Bytes(_) => "bytes",
        }
    }
}

/// A leaf of a tree, addressed by an RFC 6901 JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leaf {
    pub path: String,
    pub value: Scalar,
}

/// One op of an intent, as the author wrote it, in the policy's view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub tid: u64,
    pub source: Source,
    pub op: String,
    pub op_index: u32,
    pub op_count: u32,
    pub engines: StringList,
    pub objects: StringList,
    pub rationale: String,
    pub scene_version: u64,
    /// The op's arguments as canonical CBOR (see [`canonical_cbor`]).
    pub payload_cbor: Vec<u8>,
    /// The op's arguments flattened (see [`flatten`]), packed.
    pub leaves: Leaves,
}

impl Intent {
    /// Build the policy view of one op: fills `payload_cbor` and `leaves` from `args`.
    #[allow(clippy::too_many_arguments)] // mirrors the WIT record field by field
    pub fn for_op(
        tid: u64,
        source: Source,
        op: &str,
        args: &serde_json::Value,
        op_index: u32,
        op_count: u32,
        engines: Vec<String>,
        objects: Vec<String>,
        rationale: String,
        scene_version: u64,
    ) -> Intent {
        Intent {
            tid,
            source,
            op: op.to_owned(),
            op_index,
            op_count,
            engines: engines.into(),
            objects: objects.into(),
            rationale,
            scene_version,
            payload_cbor: canonical_cbor(args),
            leaves: flatten_packed(args),
        }
    }

    /// The leaf at exactly `path`, if any.
    pub fn leaf(&self, path: &str) -> Option<ScalarRef<'_>> {
        self.leaves.get(path)
    }
}

/// A transform in the canonical frame (glTF: right-handed, +Y up, metres).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Transform {
    pub translation: [f64; 3],
    /// Unit quaternion (x, y, z, w).
    pub rotation: [f64; 4],
    pub scale: [f64; 3],
}

impl Default for Transform {
    /// The identity transform.
    fn default() -> Self {
        Transform {
            translation: [0.0; 3],
            rotation: [0.0, 0.0, 0.0, 1.0],
            scale: [1.0; 3],
        }
    }
}

/// Material properties in the canonical model (linear RGB).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Material {
    pub base_color: [f64; 4],
    pub roughness: f64,
    pub metallic: f64,
    pub emission: [f64; 3],
    pub emission_strength: f64,
}

impl Default for Material {
    /// White, half rough, dielectric, no emission.
    fn default() -> Self {
        Material {
            base_color: [1.0; 4],
            roughness: 0.5,
            metallic: 0.0,
            emission: [0.0; 3],
            emission_strength: 0.0,
        }
    }
}

/// Who holds a lock on an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    /// Who took it, e.g. `operator:alice` or `agent`.
    pub holder: String,
    /// A lock taken by a human: an agent can never lift it.
    pub human: bool,
}

/// The host's canonical state of one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectState {
    pub id: String,
    pub name: String,
    /// `mesh`, `empty`, `camera` or `light`.
    pub kind: String,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub transform: Transform,
    #[serde(default)]
    pub material: Option<Material>,
    #[serde(default)]
    pub lock: Option<ObjectLock>,
}

/// What the host knows around the intent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// The current state of every touched object that exists.
    pub objects: Vec<ObjectState>,
    /// Ids in `intent.objects` that do not exist in the canonical scene.
    pub missing: Vec<String>,
    pub scene_object_count: u32,
    pub scene_version: u64,
    /// The project's root directory; paths outside it are suspicious.
    pub project_root: String,
}

impl Context {
    /// The state of object `id`, if the host sent it.
    pub fn object(&self, id: &str) -> Option<&ObjectState> {
        self.objects.iter().find(|o| o.id == id)
    }

    /// Whether the host reported `id` as not existing.
    pub fn is_missing(&self, id: &str) -> bool {
        self.missing.iter().any(|m| m == id)
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

/// One reason behind a verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `<policy>.<rule>`, e.g. `firewall.python-import`.
    pub rule: String,
    pub severity: Severity,
    /// JSON pointer into the op's arguments; empty for the intent as a whole.
    pub path: String,
    /// What is wrong and what to do instead.
    pub message: String,
}

impl Finding {
    /// A finding with the given severity.
    pub fn new(
        rule: impl Into<String>,
        severity: Severity,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            path: path.into(),
            message: message.into(),
        }
    }

    /// An [`Severity::Error`] finding.
    pub fn error(
        rule: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(rule, Severity::Error, path, message)
    }

    /// A [`Severity::Critical`] finding.
    pub fn critical(
        rule: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(rule, Severity::Critical, path, message)
    }

    /// A [`Severity::Warning`] finding.
    pub fn warning(
        rule: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding::new(rule, Severity::Warning, path, message)
    }
}

/// A policy's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", content = "findings", rename_all = "kebab-case")]
pub enum Verdict {
    Allow,
    Deny(Vec<Finding>),
    Escalate(Vec<Finding>),
}

impl Verdict {
    /// The findings behind the verdict (empty for allow).
    pub fn findings(&self) -> &[Finding] {
        match self {
            Verdict::Allow => &[],
            Verdict::Deny(f) | Verdict::Escalate(f) => f,
        }
    }

    /// `"allow"`, `"deny"` or `"escalate"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny(_) => "deny",
            Verdict::Escalate(_) => "escalate",
        }
    }

    pub fn is_deny(&self) -> bool {
        matches!(self, Verdict::Deny(_))
    }
}

/// Describes a rule a policy can report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub description: String,
}

/// Describes the policy itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub rules: Vec<RuleInfo>,
}
