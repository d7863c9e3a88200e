//! Shared helpers for the runtime's integration tests: runtimes with chosen
//! budgets, the compiled fixture components, and an honest intent.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use vibesync_policy_runtime::{Budgets, Policy, PolicyRun, Runtime, RuntimeConfig};
use vibesync_policy_types as t;

/// The compiled component of fixture crate `policies/fixtures/<name>`.
pub fn fixture(name: &str) -> &'static [u8] {
    vibesync_policies::test_fixture(name)
        .unwrap_or_else(|| panic!("fixture `{name}` was not built"))
}

/// A runtime with `budgets`, compiling through a cache shared by the tests
/// of this crate (compiling in a debug build is slow).
pub fn runtime(budgets: Budgets) -> Runtime {
    let cache_dir = Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-cache"));
    Runtime::new(RuntimeConfig {
        budgets,
        cache_dir,
        ..Default::default()
    })
    .expect("runtime starts")
}

pub fn budgets(fuel: u64, deadline_ms: u64) -> Budgets {
    Budgets {
        fuel,
        deadline: Duration::from_millis(deadline_ms),
        ..Default::default()
    }
}

/// A fixture loaded as trusted (the tests are the reviewer).
pub fn load(rt: &Runtime, name: &str) -> Policy {
    rt.load_for_review(name, fixture(name))
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

/// A typical, honest `set_transform` intent.
pub fn transform_intent(tid: u64) -> t::Intent {
    let args = serde_json::json!({
        "id": "obj-1",
        "translation": [1.0, 2.0, 3.0],
        "rotation": [0.0, 0.0, 0.0, 1.0],
        "scale": [1.0, 1.0, 1.0],
    });
    t::Intent::for_op(
        tid,
        t::Source::Agent,
        "set_transform",
        &args,
        0,
        1,
        vec!["blender".into()],
        vec!["obj-1".into()],
        "Move the crate next to the loading dock so the opening shot reads clearly".into(),
        7,
    )
}

pub fn empty_context() -> t::Context {
    t::Context {
        project_root: "/project".into(),
        scene_version: 7,
        ..Default::default()
    }
}

/// Evaluate `policy` once on the honest intent.
pub fn eval(rt: &Runtime, policy: &Policy, tid: u64) -> PolicyRun {
    rt.evaluate(policy, &transform_intent(tid), &empty_context(), &[])
}

/// Evaluate with a configuration table.
pub fn eval_with(rt: &Runtime, policy: &Policy, tid: u64, config: serde_json::Value) -> PolicyRun {
    rt.evaluate(
        policy,
        &transform_intent(tid),
        &empty_context(),
        &t::flatten(&config),
    )
}
