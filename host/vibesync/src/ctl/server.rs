//! The control socket's server side: accept, check the peer, dispatch each
//! request line to the core as the operator, answer one line.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{CtlRequest, CtlResponse, check_peer, current_uid};
use crate::core_api::{Caller, CoreError, CoreHandle, JournalFilter};
use crate::metrics::Metrics;

/// How often `tail --follow` polls the journal.
const TAIL_POLL: Duration = Duration::from_millis(200);

/// Binds `path` with mode 0600. A stale socket file (no server answering) is
/// replaced; a live one is an error: two hosts must not share a state dir.
/// Called before the host confines itself (a confined host may not `chmod`),
/// so it returns a std listener that [`serve`] adopts.
pub fn bind(path: &Path) -> anyhow::Result<std::os::unix::net::UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{} is in use by another running `vibesync serve`; stop it or use another --state-dir",
                path.display()
            );
        }
        std::fs::remove_file(path)?;
    }
    // The state dir is 0700, so nobody else can reach the socket in the
    // moment between bind and chmod.
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves the control socket until the task is dropped.
pub async fn serve(
    listener: std::os::unix::net::UnixListener,
    core: CoreHandle,
    metrics: Arc<Metrics>,
    path: PathBuf,
) {
    let listener = match UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "control socket unusable");
            return;
        }
    };
    let host_uid = current_uid();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                tracing::warn!(socket = %path.display(), %err, "ctl accept failed");
                continue;
            }
        };
        let core = core.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if let Err(err) = connection(stream, host_uid, core, metrics).await {
                tracing::debug!(%err, "ctl connection ended");
            }
        });
    }
}

async fn send(
    stream: &mut (impl AsyncWriteExt + Unpin),
    response: &CtlResponse,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).expect("responses serialize");
    line.push(b'\n');
    stream.write_all(&line).await
}

async fn connection(
    stream: UnixStream,
    host_uid: u32,
    core: CoreHandle,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let peer_uid = stream.peer_cred()?.uid();
    let (read, mut write) = stream.into_split();
    if let Err(refusal) = check_peer(peer_uid, host_uid) {
        tracing::warn!(peer_uid, "ctl connection refused: not the owner");
        return send(&mut write, &CtlResponse::error(refusal)).await;
    }
    let caller = Caller::Operator { uid: peer_uid };
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let request: CtlRequest = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(err) => {
                send(&mut write, &CtlResponse::error(format!("bad request: {err}. Remedy: send one JSON object per line, e.g. {{\"cmd\":\"status\"}}"))).await?;
                continue;
            }
        };
        tracing::info!(?request, peer_uid, "ctl request");
        if let CtlRequest::Tail { after_seq, follow } = request {
            return tail(&mut write, &core, &caller, after_seq, follow).await;
        }
        let response = dispatch(request, &core, &caller, &metrics).await;
        send(&mut write, &response).await?;
    }
    Ok(())
}

fn json<T: Serialize>(result: Result<T, CoreError>) -> CtlResponse {
    match result {
        Ok(value) => CtlResponse::ok(serde_json::to_value(value).expect("views serialize")),
        Err(err) => CtlResponse::core_error(err),
    }
}

/// Runs one non-streaming request as the operator.
pub async fn dispatch(
    request: CtlRequest,
    core: &CoreHandle,
    caller: &Caller,
    metrics: &Metrics,
) -> CtlResponse {
    let c = caller.clone();
    match request {
        CtlRequest::Status => json(core.status(c).await),
        CtlRequest::Engines => json(core.list_engines(c).await),
        CtlRequest::Resume => json(core.resume(c).await),
        CtlRequest::Approve { tid } => json(core.approve(c, tid).await),
        CtlRequest::Deny { tid, reason } => json(core.deny(c, tid, reason).await),
        CtlRequest::Lock { id } => json(core.lock(c, id).await),
        CtlRequest::Unlock { id } => json(core.unlock(c, id).await),
        CtlRequest::Policies => json(core.list_policies(c).await),
        CtlRequest::Reload => json(core.reload_policies(c).await),
        CtlRequest::Metrics => CtlResponse::ok(serde_json::Value::String(metrics.render())),
        CtlRequest::Tail { .. } => CtlResponse::error("tail is streamed, not dispatched"),
    }
}

async fn tail(
    write: &mut (impl AsyncWriteExt + Unpin),
    core: &CoreHandle,
    caller: &Caller,
    mut after_seq: Option<u64>,
    follow: bool,
) -> std::io::Result<()> {
    loop {
        let filter = JournalFilter {
            after_seq,
            limit: Some(1000),
            ..JournalFilter::default()
        };
        match core.journal(caller.clone(), filter).await {
            Ok(entries) => {
                for entry in entries {
                    after_seq = Some(entry.seq);
                    send(write, &json(Ok::<_, CoreError>(entry))).await?;
                }
            }
            Err(err) => return send(write, &CtlResponse::core_error(err)).await,
        }
        if !follow {
            return send(write, &CtlResponse::ok(serde_json::json!({"end": true}))).await;
        }
        tokio::time::sleep(TAIL_POLL).await;
    }
}
