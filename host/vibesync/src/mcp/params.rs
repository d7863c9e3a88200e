//! The typed arguments and results of the MCP tools. Their JSON schemas
//! (schemars) are what an agent sees in `tools/list`.
//!
//! `rationale` and `scene_version` are `Option` in Rust but *required* in the
//! schema: a client that omits them still reaches the handler, which refuses
//! with the host's rule text (`host.rationale-required`) instead of a bare
//! deserialization error.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core_api::{
    EngineView, JournalEntry, JournalFilter, OpSpec, SceneView, VerificationView,
};

/// What every write carries besides its ops.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct IntentMeta {
    /// Why you want this change, for the human who reviews the journal
    /// (at least 8 characters). Required.
    #[schemars(required)]
    pub rationale: Option<String>,
    /// The scene `version` you last read with read_scene or
    /// read_engine_state. A stale version is refused: look before you write.
    #[schemars(required)]
    pub scene_version: Option<u64>,
    /// Engines to target (default: all), e.g. ["blender"].
    #[serde(default)]
    pub engines: Option<Vec<String>>,
    /// Retrying with the same key returns the first outcome instead of
    /// applying the change twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SubmitIntentArgs {
    /// One op, or several applied as one atomic transaction (all engines or
    /// none). Each is {"op": name, "args": {...}}; docs/ops.md lists them.
    pub ops: Vec<OpSpec>,
    #[serde(flatten)]
    pub meta: IntentMeta,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TidArgs {
    /// The transaction id returned by a write.
    pub tid: u64,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct EngineArg {
    /// One engine's name (default: every engine).
    #[serde(default)]
    pub engine: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKindArg {
    Mesh,
    Empty,
    Camera,
    Light,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TransformArg {
    /// Metres, canonical frame (glTF: right-handed, +Y up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation: Option<[f64; 3]>,
    /// Unit quaternion [x, y, z, w].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<[f64; 4]>,
    /// Non-zero scale factors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<[f64; 3]>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct CreateObjectOp {
    /// Optional id; the host assigns `obj-<n>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// 1-63 characters, no control characters, no `/` or `\`.
    pub name: String,
    pub kind: ObjectKindArg,
    /// Mesh primitive (`cube`, `uv_sphere`, `plane`, `cylinder`, `cone`,
    /// `torus`) or light type (`point`, `sun`, `spot`, `area`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primitive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<TransformArg>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct IdOp {
    /// The object's VibeSync id (from read_scene).
    pub id: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RenameOp {
    pub id: String,
    /// 1-63 characters, no control characters, no `/` or `\`.
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReparentOp {
    pub id: String,
    /// The new parent's id; null makes the object a root. Keeps the local
    /// transform; cycles are refused.
    pub parent: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SetTransformOp {
    pub id: String,
    #[serde(flatten)]
    pub transform: TransformArg,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SetMaterialOp {
    pub id: String,
    /// Linear RGBA, each in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_color: Option<[f64; 4]>,
    /// In [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roughness: Option<f64>,
    /// In [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metallic: Option<f64>,
    /// Linear RGB, each >= 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emission: Option<[f64; 3]>,
    /// >= 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emission_strength: Option<f64>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SelectOp {
    /// The ids to select in every engine.
    pub ids: Vec<String>,
    /// Also frame them in the viewport.
    #[serde(default)]
    pub frame: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScriptLanguage {
    /// Runs in Blender.
    Python,
    /// Runs in Unity.
    Csharp,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RunScriptOp {
    pub language: ScriptLanguage,
    /// The script. The firewall policy decides whether it may run.
    pub code: String,
}

/// A per-op tool's arguments: the op's own fields plus the intent's.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OpArgs<T> {
    #[serde(flatten)]
    pub op: T,
    #[serde(flatten)]
    pub meta: IntentMeta,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EnginesResult {
    pub engines: Vec<EngineView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EngineStateResult {
    /// The canonical scene: pass `scene.version` as `scene_version` in writes.
    pub scene: SceneView,
    pub engines: Vec<EngineView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JournalResult {
    pub entries: Vec<JournalEntry>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VerificationResult {
    pub engines: Vec<VerificationView>,
    pub all_match: bool,
}

/// The journal filter as a tool argument.
pub type JournalArgs = JournalFilter;

fn default_preview_width() -> u32 {
    320
}

fn default_preview_height() -> u32 {
    240
}

/// What `render_preview` renders.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PreviewArgs {
    /// Width in pixels (default 320, at most 512).
    #[serde(default = "default_preview_width")]
    pub width: u32,
    /// Height in pixels (default 240, at most 512).
    #[serde(default = "default_preview_height")]
    pub height: u32,
    /// The engine that renders (default: the first Blender engine).
    #[serde(default)]
    pub engine: Option<String>,
    /// Frame these object ids from a temporary camera; without them the
    /// scene camera is used (or every tracked object is framed when the
    /// scene has no camera).
    #[serde(default)]
    pub ids: Option<Vec<String>>,
}
