//! Deliberately malicious components (built from `policies/fixtures/*`): each
//! is a deny with the right `host.policy-fault` kind within its budget, and
//! the same runtime evaluates an honest policy correctly right after.

mod common;

use common::*;
use vibesync_policy_runtime::{
    FAULT_RULE, FaultKind, LoadError, Pipeline, PolicyConfigs, PolicyRun, Runtime, inspect,
};
use vibesync_policy_types::Verdict;

/// The run is a deny carrying exactly one fault finding of `kind`.
fn assert_fault(run: &PolicyRun, kind: FaultKind) {
    assert_eq!(run.fault, Some(kind), "{run:#?}");
    let Verdict::Deny(f) = &run.verdict else {
        panic!("expected a deny: {run:#?}")
    };
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, FAULT_RULE);
    assert!(
        f[0].message.contains(&format!("[{kind}:")),
        "{}",
        f[0].message
    );
}

/// The runtime still serves: the counter fixture allows on a fresh instance.
fn assert_still_serving(rt: &Runtime) {
    let honest = load(rt, "counter");
    for tid in 100..103 {
        let run = eval(rt, &honest, tid);
        assert_eq!(run.verdict, Verdict::Allow, "{run:#?}");
        assert_eq!(run.fault, None);
    }
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let rt = runtime(budgets(20_000_000, 10_000));
    let run = eval(&rt, &load(&rt, "infinite-loop"), 1);
    assert_fault(&run, FaultKind::Fuel);
    assert_eq!(
        run.fuel_used, 20_000_000,
        "stopped exactly at the fuel budget"
    );
    assert!(run.duration_ns < 10_000_000_000);
    assert_still_serving(&rt);
}

#[test]
fn infinite_loop_with_ample_fuel_meets_the_deadline() {
    let rt = runtime(budgets(u64::MAX / 2, 50));
    let run = eval(&rt, &load(&rt, "infinite-loop"), 1);
    assert_fault(&run, FaultKind::Deadline);
    // The deadline is 50 ms, checked on 5 ms epoch ticks; allow scheduling slack.
    assert!(
        run.duration_ns < 1_000_000_000,
        "took {} ns",
        run.duration_ns
    );
    assert!(
        run.duration_ns >= 50_000_000,
        "stopped before the deadline: {} ns",
        run.duration_ns
    );
    assert_still_serving(&rt);
}

#[test]
fn slow_but_legal_policy_allows_within_budget_and_denies_past_the_deadline() {
    let rt = runtime(budgets(u64::MAX / 2, 30));
    let slow = load(&rt, "slow");
    let quick = eval_with(&rt, &slow, 1, serde_json::json!({"rounds": 10}));
    assert_eq!(quick.verdict, Verdict::Allow, "{quick:#?}");
    let run = eval_with(
        &rt,
        &slow,
        2,
        serde_json::json!({"rounds": 1_000_000_000_000i64}),
    );
    assert_fault(&run, FaultKind::Deadline);
    assert!(
        run.fuel_used < u64::MAX / 2,
        "the deadline, not fuel, stopped it"
    );
    assert!(
        run.logs_dropped > 0,
        "log calls past the cap are dropped and counted"
    );
    assert!(
        run.duration_ns < 1_000_000_000,
        "took {} ns",
        run.duration_ns
    );
    assert_still_serving(&rt);
}

#[test]
fn memory_bomb_is_refused_memory() {
    let mut b = budgets(1_000_000_000, 10_000);
    b.memory_bytes = 16 << 20;
    let rt = runtime(b);
    let run = eval(&rt, &load(&rt, "memory-bomb"), 1);
    assert_fault(&run, FaultKind::Memory);
    assert_still_serving(&rt);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let rt = runtime(budgets(1_000_000_000, 10_000));
    let run = eval(&rt, &load(&rt, "deep-recursion"), 1);
    assert_fault(&run, FaultKind::StackOverflow);
    assert_still_serving(&rt);
}

#[test]
fn panic_is_a_trap() {
    let rt = runtime(budgets(100_000_000, 10_000));
    let run = eval(&rt, &load(&rt, "trap"), 1);
    assert_fault(&run, FaultKind::Trap);
    assert_still_serving(&rt);
}

#[test]
fn deny_without_findings_is_malformed() {
    let rt = runtime(budgets(100_000_000, 10_000));
    let run = eval(&rt, &load(&rt, "empty-deny"), 1);
    assert_fault(&run, FaultKind::MalformedVerdict);
    assert_still_serving(&rt);
}

#[test]
fn wrong_result_type_is_refused_at_load() {
    let rt = runtime(budgets(100_000_000, 10_000));
    let err = rt
        .load_for_review("wrong-result", fixture("wrong-result"))
        .unwrap_err();
    assert!(matches!(err, LoadError::World { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("vibesync:policy/policy@0.1.0") && msg.contains("policy inspect"),
        "{msg}"
    );
    let report = inspect::inspect(&rt, fixture("wrong-result")).unwrap();
    assert!(report.world_mismatch.is_some());
    assert_still_serving(&rt);
}

/// The fixture imports `wasi:<family>/...`, so the attempt is real.
fn assert_imports(rt: &Runtime, name: &str, family: &str) {
    let report = inspect::inspect(rt, fixture(name)).unwrap();
    let hits: Vec<_> = report
        .capabilities
        .iter()
        .filter(|c| c.interface.starts_with(family))
        .collect();
    assert!(
        !hits.is_empty(),
        "{name} does not import {family}: {:#?}",
        report.imports
    );
    assert!(
        hits.iter().all(|c| c.status == inspect::Status::NotGranted),
        "{hits:#?}"
    );
}

#[test]
fn wasi_file_access_is_not_granted() {
    let rt = runtime(budgets(100_000_000, 10_000));
    assert_imports(&rt, "wasi-file", "wasi:filesystem/");
    let run = eval(&rt, &load(&rt, "wasi-file"), 1);
    // The fixture panics when both the read and the write are refused and
    // returns a `fixture.escaped` deny if either succeeds.
    assert_fault(&run, FaultKind::Trap);
    assert!(!std::path::Path::new("/tmp/vibesync-fixture-escape").exists());
    assert_still_serving(&rt);
}

#[test]
fn wasi_socket_access_is_not_granted() {
    let rt = runtime(budgets(100_000_000, 10_000));
    assert_imports(&rt, "wasi-socket", "wasi:sockets/");
    let run = eval(&rt, &load(&rt, "wasi-socket"), 1);
    assert_fault(&run, FaultKind::Trap);
    assert_still_serving(&rt);
}

#[test]
fn globals_do_not_survive_an_evaluation() {
    // `counter` denies from its second evaluation in the same instance on.
    let rt = runtime(budgets(100_000_000, 10_000));
    let counter = load(&rt, "counter");
    for tid in 1..=50 {
        assert_eq!(
            eval(&rt, &counter, tid).verdict,
            Verdict::Allow,
            "state leaked into evaluation {tid}"
        );
    }
}

/// A pipeline evaluation instantiates all its policies into one store it
/// owns: the second `counter` still gets a fresh instance (it allows), and
/// the second `slow` gets a whole fuel budget again, not what the policies
/// before it left (the budget is under twice what one `slow` needs).
#[test]
fn policies_of_one_evaluation_share_no_state_or_budget() {
    let config = serde_json::json!({"rounds": 2000});
    let probe = runtime(budgets(u64::MAX / 2, 10_000));
    let one = eval_with(&probe, &load(&probe, "slow"), 1, config.clone()).fuel_used;

    let rt = runtime(budgets(one + one / 2, 10_000));
    let policies = ["counter", "counter", "slow", "slow"].map(|name| load(&rt, name));
    let configs = PolicyConfigs::from_json(&serde_json::json!({ "slow": config }).to_string())
        .expect("a valid configuration");
    let pipeline = Pipeline::new(rt.clone(), policies.into(), configs);
    for tid in 1..=20 {
        let d = pipeline.evaluate(&transform_intent(tid), &empty_context());
        let verdicts: Vec<_> = d.runs.iter().map(|r| &r.verdict).collect();
        assert_eq!(verdicts, [&Verdict::Allow; 4], "{d:#?}");
        assert_eq!(d.runs[3].fuel_used, one, "{d:#?}");
    }
    assert_still_serving(&rt);
}

/// The same isolation with instances prepared ahead by the background
/// thread (`prepared_per_policy`): each prepared instance serves exactly one
/// evaluation, and faults still deny within budget.
#[test]
fn prepared_instances_are_fresh_and_budgeted() {
    let rt = Runtime::new(vibesync_policy_runtime::RuntimeConfig {
        budgets: budgets(1_000_000, 10_000),
        cache_dir: Some(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-cache")),
        prepared_per_policy: 2,
        ..Default::default()
    })
    .expect("runtime starts");
    let counter = load(&rt, "counter");
    let looping = load(&rt, "infinite-loop");
    for tid in 1..=50 {
        assert_eq!(
            eval(&rt, &counter, tid).verdict,
            Verdict::Allow,
            "state leaked into evaluation {tid}"
        );
        assert_eq!(eval(&rt, &looping, tid).fault, Some(FaultKind::Fuel));
        if tid % 10 == 0 {
            // Give the preparer time to fill the shelves, so that both paths run.
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    assert_still_serving(&rt);
}

#[test]
fn faults_do_not_exhaust_the_instance_pool() {
    // Every faulting evaluation must give its pool slot back.
    let rt = runtime(budgets(1_000_000, 10_000));
    let looping = load(&rt, "infinite-loop");
    for tid in 0..300 {
        assert_eq!(eval(&rt, &looping, tid).fault, Some(FaultKind::Fuel));
    }
    assert_still_serving(&rt);
}
