//! The agent's side of the whole-system tests: calling `vibesync serve`'s
//! MCP tools through rmcp (the official Rust SDK) and reading the answers.
#![allow(dead_code)] // each test binary uses a subset

use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};

pub type Client = RunningService<RoleClient, ()>;

/// Calls `tool` with an object of arguments; a transport failure panics,
/// a tool error comes back as the result (`is_error`).
pub async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(map) = args else {
        panic!("{tool}: arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Every text content of a result, one per line.
pub fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structured result of a call that must have succeeded.
pub fn ok(r: &CallToolResult, tool: &str) -> Value {
    assert_ne!(r.is_error, Some(true), "{tool} failed: {}", text(r));
    r.structured_content
        .clone()
        .unwrap_or_else(|| panic!("{tool} returned no structured result"))
}

/// The scene version an agent reads before it writes.
pub async fn scene_version(client: &Client) -> u64 {
    ok(&call(client, "read_scene", json!({})).await, "read_scene")["version"]
        .as_u64()
        .unwrap()
}

/// Polls `get_transaction` until `tid` is final (90 s at most: real
/// Blender on a loaded 2-core machine can be slow): its phase
/// and the whole record.
pub async fn wait_final(client: &Client, tid: u64) -> (String, Value) {
    let start = Instant::now();
    loop {
        let t = ok(
            &call(client, "get_transaction", json!({"tid": tid})).await,
            "get_transaction",
        );
        if t["is_final"] == true {
            return (t["phase"].as_str().unwrap_or("?").to_owned(), t);
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "tid {tid} did not finish: {t}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
