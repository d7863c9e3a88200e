//! The agent's front door: a Model Context Protocol server (the official
//! Rust SDK, `rmcp`) over stdio, or streamable HTTP on loopback.
//!
//! Every tool is a thin translation: typed arguments (schemas in
//! [`params`]) → one [`CoreHandle`] call with `Caller::Agent` → a structured
//! result, or a tool error (`is_error: true`) whose text is the
//! [`CoreError`](crate::core_api::CoreError) rendering (rule, field, remedy).
//! There is deliberately no tool for approve/deny, lock/unlock, resume or
//! policy reload: those are `vibesync ctl` only, and the core refuses them
//! from an agent anyway.
//!
//! Writes answer at provisional commit. When the client sent a progress
//! token, the call stays open up to `mcp.progress_wait_ms` and forwards the
//! core's verification progress as `notifications/progress`; the answer then
//! carries the phase reached (committed or rolled back when verification
//! finished in time, provisional otherwise).

pub mod params;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, RequestMetaObject,
    ServerCapabilities, ServerConfig,
};
use rmcp::{Peer, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Serialize;

use crate::core_api::{
    Caller, CoreError, CoreHandle, IntentOutcome, IntentRequest, OpSpec, PreviewRequest, SceneView,
    Source, TransactionView, ValidationView, check_rationale, require_scene_version,
};
use params::*;

/// A refusal as a tool error (`is_error: true`) with the core's text.
/// Signatures spell out `Result<Json<T>, CallToolResult>` because the
/// `#[tool]` macro derives the output schema from that literal shape.
fn tool_error(err: CoreError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(err.to_string())])
}

/// Builds the intent a write tool submits, refusing a missing rationale or
/// scene version with the host's rules before the core is asked.
pub fn build_intent(ops: Vec<OpSpec>, meta: IntentMeta) -> Result<IntentRequest, CoreError> {
    check_rationale(meta.rationale.as_deref())?;
    let scene_version = require_scene_version(meta.scene_version)?;
    let intent = IntentRequest {
        ops,
        rationale: meta.rationale.unwrap_or_default(),
        scene_version,
        idempotency_key: meta.idempotency_key,
        engines: meta.engines,
        source: Source::Agent,
    };
    intent.check_intake()?;
    Ok(intent)
}

fn op<T: Serialize>(name: &str, args: &T) -> Vec<OpSpec> {
    vec![OpSpec {
        op: name.to_owned(),
        args: serde_json::to_value(args).expect("tool args serialize"),
    }]
}

/// The MCP server: one per session, all sharing the core handle.
#[derive(Clone)]
pub struct VibeSyncMcp {
    core: CoreHandle,
    progress_wait: Duration,
    tool_router: ToolRouter<Self>,
}

const INSTRUCTIONS: &str = "VibeSync lets you change live Blender and Unity scenes safely. \
Read first (read_scene or read_engine_state), then write with the `version` you read as \
`scene_version` and a `rationale` saying why. Every write is checked by policies; a refusal \
names the rule, the field and what to do instead. A write answers at provisional commit; \
the final outcome (committed, or rolled back on every engine, with why) is in get_transaction. \
Approvals, locks and PANIC resume belong to the human operator.";

impl VibeSyncMcp {
    pub fn new(core: CoreHandle, progress_wait: Duration) -> Self {
        VibeSyncMcp {
            core,
            progress_wait,
            tool_router: Self::tool_router(),
        }
    }

    /// The tools this server offers (for docs and tests).
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    async fn write(
        &self,
        ops: Vec<OpSpec>,
        meta: IntentMeta,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        let intent = build_intent(ops, meta).map_err(tool_error)?;
        let mut outcome = self
            .core
            .submit_intent(Caller::Agent, intent)
            .await
            .map_err(tool_error)?;
        if let Some(token) = rmeta.get_progress_token() {
            self.follow(&mut outcome, token, &peer).await;
        }
        Ok(Json(outcome))
    }

    /// Forwards verification progress until the transaction is final or the
    /// wait runs out, then updates `outcome` with the phase reached.
    async fn follow(
        &self,
        outcome: &mut IntentOutcome,
        token: rmcp::model::ProgressToken,
        peer: &Peer<RoleServer>,
    ) {
        let Ok(mut events) = self.core.subscribe(Caller::Agent, outcome.tid).await else {
            return;
        };
        let first = ProgressNotificationParam::new(token.clone(), 0.0).with_message(format!(
            "tid {}: provisionally committed; verifying on every engine",
            outcome.tid
        ));
        let _ = peer.notify_progress(first).await;
        let deadline = tokio::time::sleep(self.progress_wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    let mut note = ProgressNotificationParam::new(token.clone(), event.progress).with_message(event.message);
                    if let Some(total) = event.total {
                        note = note.with_total(total);
                    }
                    let _ = peer.notify_progress(note).await;
                    if event.phase.is_final() {
                        break;
                    }
                }
                _ = &mut deadline => break,
            }
        }
        if let Ok(tx) = self.core.get_transaction(Caller::Agent, outcome.tid).await
            && tx.is_final
        {
            outcome.phase = tx.phase;
            outcome.note = format!(
                "final: {:?}{}",
                tx.phase,
                tx.why.map(|w| format!(" — {w}")).unwrap_or_default()
            );
        }
    }
}

#[tool_router]
impl VibeSyncMcp {
    /// The canonical scene and every engine's health: the one read to do
    /// before a write (pass `scene.version` as `scene_version`).
    #[tool(annotations(
        title = "Read engine state",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn read_engine_state(&self) -> Result<Json<EngineStateResult>, CallToolResult> {
        let scene = self
            .core
            .read_scene(Caller::Agent)
            .await
            .map_err(tool_error)?;
        let engines = self
            .core
            .list_engines(Caller::Agent)
            .await
            .map_err(tool_error)?;
        Ok(Json(EngineStateResult { scene, engines }))
    }

    /// The canonical scene: version, hash, every object, and the state each
    /// engine was last verified at.
    #[tool(annotations(title = "Read scene", read_only_hint = true, open_world_hint = false))]
    async fn read_scene(&self) -> Result<Json<SceneView>, CallToolResult> {
        self.core
            .read_scene(Caller::Agent)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Engines and their health: connected, heartbeat age, main-thread lag,
    /// queue depth, frozen by PANIC.
    #[tool(annotations(title = "List engines", read_only_hint = true, open_world_hint = false))]
    async fn list_engines(&self) -> Result<Json<EnginesResult>, CallToolResult> {
        let engines = self
            .core
            .list_engines(Caller::Agent)
            .await
            .map_err(tool_error)?;
        Ok(Json(EnginesResult { engines }))
    }

    /// One transaction: every phase with its time, every policy verdict with
    /// findings, the engines' acks, and the final outcome with why.
    #[tool(annotations(
        title = "Get transaction",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn get_transaction(
        &self,
        Parameters(TidArgs { tid }): Parameters<TidArgs>,
    ) -> Result<Json<TransactionView>, CallToolResult> {
        self.core
            .get_transaction(Caller::Agent, tid)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// The operation journal, oldest first, filtered by tid, object, source
    /// or phase; page with `after_seq`.
    #[tool(annotations(
        title = "Operation journal",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn get_operation_journal(
        &self,
        Parameters(filter): Parameters<JournalArgs>,
    ) -> Result<Json<JournalResult>, CallToolResult> {
        let entries = self
            .core
            .journal(Caller::Agent, filter)
            .await
            .map_err(tool_error)?;
        Ok(Json(JournalResult { entries }))
    }

    /// Read every engine's state back now and compare its canonical hash
    /// with the host's.
    #[tool(annotations(
        title = "Verify engine state",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn verify_engine_state(
        &self,
        Parameters(EngineArg { engine }): Parameters<EngineArg>,
    ) -> Result<Json<VerificationResult>, CallToolResult> {
        let engines = self
            .core
            .verify_engine_state(Caller::Agent, engine)
            .await
            .map_err(tool_error)?;
        let all_match = engines.iter().all(|e| e.matches);
        Ok(Json(VerificationResult { engines, all_match }))
    }

    /// Look at the scene: a small PNG rendered in an engine (Blender: Cycles
    /// on the CPU, 8 samples) from the scene camera, or framing `ids`.
    /// Returned as MCP image content. A read: nothing is changed.
    #[tool(annotations(
        title = "Render preview",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn render_preview(
        &self,
        Parameters(a): Parameters<PreviewArgs>,
    ) -> Result<CallToolResult, CallToolResult> {
        use base64::Engine as _;
        let objects = a.ids.as_ref().map(Vec::len);
        let image = self
            .core
            .preview(
                Caller::Agent,
                PreviewRequest {
                    engine: a.engine,
                    width: a.width,
                    height: a.height,
                    ids: a.ids,
                },
            )
            .await
            .map_err(tool_error)?;
        let what = match objects {
            Some(n) => format!("framing {n} object(s)"),
            None => "from the scene camera".to_owned(),
        };
        Ok(CallToolResult::success(vec![
            ContentBlock::image(
                base64::engine::general_purpose::STANDARD.encode(&image.png),
                "image/png",
            ),
            ContentBlock::text(format!(
                "{} x {} px PNG ({} bytes) rendered by engine `{}` {what} in {} ms",
                image.width,
                image.height,
                image.png.len(),
                image.engine,
                image.elapsed_ms
            )),
        ]))
    }

    /// A dry run of an intent through the policies: nothing applied, nothing
    /// sequenced. Returns every verdict with its findings.
    #[tool(annotations(
        title = "Validate intent",
        read_only_hint = true,
        open_world_hint = false
    ))]
    async fn validate_intent(
        &self,
        Parameters(args): Parameters<SubmitIntentArgs>,
    ) -> Result<Json<ValidationView>, CallToolResult> {
        let intent = build_intent(args.ops, args.meta).map_err(tool_error)?;
        self.core
            .validate_intent(Caller::Agent, intent)
            .await
            .map(Json)
            .map_err(tool_error)
    }

    /// Submit one op, or several as one atomic transaction (applied on every
    /// engine or on none). Answers at provisional commit; the final outcome
    /// is in get_transaction.
    #[tool(annotations(
        title = "Submit intent",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn submit_intent(
        &self,
        Parameters(args): Parameters<SubmitIntentArgs>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(args.ops, args.meta, rmeta, peer).await
    }

    /// Create an object (mesh, empty, camera or light) on every engine.
    #[tool(annotations(
        title = "Create object",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn create_object(
        &self,
        Parameters(a): Parameters<OpArgs<CreateObjectOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("create_object", &a.op), a.meta, rmeta, peer)
            .await
    }

    /// Delete an object and its descendants on every engine.
    #[tool(annotations(
        title = "Delete object",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn delete_object(
        &self,
        Parameters(a): Parameters<OpArgs<IdOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("delete_object", &a.op), a.meta, rmeta, peer)
            .await
    }

    /// Rename an object on every engine.
    #[tool(annotations(
        title = "Rename object",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn rename_object(
        &self,
        Parameters(a): Parameters<OpArgs<RenameOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("rename_object", &a.op), a.meta, rmeta, peer)
            .await
    }

    /// Reparent an object (keeps its local transform; cycles are refused).
    #[tool(annotations(
        title = "Reparent object",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn reparent_object(
        &self,
        Parameters(a): Parameters<OpArgs<ReparentOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("reparent_object", &a.op), a.meta, rmeta, peer)
            .await
    }

    /// Set any of translation, rotation (unit quaternion), scale (non-zero)
    /// in the canonical frame (glTF: right-handed, +Y up, metres).
    #[tool(annotations(
        title = "Set transform",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn set_transform(
        &self,
        Parameters(a): Parameters<OpArgs<SetTransformOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("set_transform", &a.op), a.meta, rmeta, peer)
            .await
    }

    /// Set material properties (base colour, roughness, metallic, emission).
    #[tool(annotations(
        title = "Set material",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn set_material(
        &self,
        Parameters(a): Parameters<OpArgs<SetMaterialOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("set_material", &a.op), a.meta, rmeta, peer)
            .await
    }

    /// Select objects (and optionally frame them) in every engine.
    #[tool(annotations(
        title = "Select objects",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn select_objects(
        &self,
        Parameters(a): Parameters<OpArgs<SelectOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("select", &a.op), a.meta, rmeta, peer).await
    }

    /// Run an engine script: Python in Blender, C# in Unity. The firewall
    /// policy decides whether it may run; a refusal names the finding.
    #[tool(annotations(
        title = "Run engine script",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn run_script(
        &self,
        Parameters(a): Parameters<OpArgs<RunScriptOp>>,
        rmeta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<Json<IntentOutcome>, CallToolResult> {
        self.write(op("run_script", &a.op), a.meta, rmeta, peer)
            .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for VibeSyncMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("vibesync", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Serves one MCP session on stdin/stdout until the client closes it.
pub async fn serve_stdio(server: VibeSyncMcp) -> anyhow::Result<()> {
    let running = server.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// Serves MCP over streamable HTTP at `http://<addr>/` (any path; loopback
/// only, checked by the caller's config) until the task is dropped.
pub async fn serve_http(
    server: VibeSyncMcp,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    let service = Arc::new(StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    ));
    loop {
        let (stream, _) = listener.accept().await?;
        let service = service.clone();
        tokio::spawn(async move {
            let handler =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let service = service.clone();
                    async move { Ok::<_, std::convert::Infallible>(service.handle(req).await) }
                });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, handler)
                .await;
        });
    }
}

/// Binds the MCP HTTP listener.
pub async fn bind_http(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
