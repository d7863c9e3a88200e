//! Operator control: a Unix socket `ctl.sock` in the state directory, owner
//! only, speaking line-delimited JSON; and the `vibesync ctl` client.
//!
//! Two locks keep agents and other users out: the socket file is mode 0600
//! inside a 0700 state directory, and every connection's peer credential
//! (`SO_PEERCRED`) must name the uid the host runs as ([`check_peer`]).
//! Requests reach the core as `Caller::Operator { uid }` — the only caller
//! the core lets approve, deny, lock, unlock, resume or reload.
//!
//! Protocol: one JSON object per line each way. A request is
//! `{"cmd": "approve", "tid": 7}`; a response is `{"ok": true, "result": ...}`
//! or `{"ok": false, "error": "<text>", "core_error": {...}}`. `tail` with
//! `follow` keeps the connection open and sends one response per journal
//! entry.

pub mod client;
pub mod server;

use serde::{Deserialize, Serialize};

use crate::core_api::CoreError;

/// One operator request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum CtlRequest {
    Status,
    Engines,
    /// Leave PANIC.
    Resume,
    Approve {
        tid: u64,
    },
    Deny {
        tid: u64,
        reason: String,
    },
    /// Take a human lock on an object.
    Lock {
        id: String,
    },
    Unlock {
        id: String,
    },
    Policies,
    Reload,
    /// Prometheus text.
    Metrics,
    /// Journal entries after `after_seq`; with `follow`, keep sending new ones.
    Tail {
        #[serde(default)]
        after_seq: Option<u64>,
        #[serde(default)]
        follow: bool,
    },
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CtlResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_error: Option<CoreError>,
}

impl CtlResponse {
    pub fn ok(result: serde_json::Value) -> Self {
        CtlResponse {
            ok: true,
            result: Some(result),
            error: None,
            core_error: None,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        CtlResponse {
            ok: false,
            result: None,
            error: Some(text.into()),
            core_error: None,
        }
    }

    pub fn core_error(err: CoreError) -> Self {
        CtlResponse {
            ok: false,
            result: None,
            error: Some(err.to_string()),
            core_error: Some(err),
        }
    }
}

/// The peer credential rule: only the uid the host runs as may connect.
/// Pure, so it is tested without a second user.
pub fn check_peer(peer_uid: u32, host_uid: u32) -> Result<(), String> {
    if peer_uid == host_uid {
        Ok(())
    } else {
        Err(format!(
            "refused: the control socket belongs to uid {host_uid} and this connection comes from uid {peer_uid}. \
             Remedy: run `vibesync ctl` as the user that runs `vibesync serve`"
        ))
    }
}

/// The uid this process runs as.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_passes() {
        assert!(check_peer(1000, 1000).is_ok());
        let err = check_peer(65534, 1000).unwrap_err();
        assert!(err.contains("belongs to uid 1000"), "{err}");
        assert!(err.contains("from uid 65534"), "{err}");
    }

    #[test]
    fn requests_round_trip_and_unknown_fields_are_refused() {
        let req: CtlRequest =
            serde_json::from_str(r#"{"cmd":"deny","tid":3,"reason":"no"}"#).unwrap();
        assert_eq!(
            req,
            CtlRequest::Deny {
                tid: 3,
                reason: "no".into()
            }
        );
        assert!(
            serde_json::from_str::<CtlRequest>(r#"{"cmd":"approve","tid":3,"as":"agent"}"#)
                .is_err()
        );
        let tail: CtlRequest = serde_json::from_str(r#"{"cmd":"tail"}"#).unwrap();
        assert_eq!(
            tail,
            CtlRequest::Tail {
                after_seq: None,
                follow: false
            }
        );
    }
}
