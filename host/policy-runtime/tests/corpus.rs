//! Every built-in policy's fixture corpus (`policies/*/fixtures/*.json`) run
//! through the REAL compiled components with this crate's test runner.

mod common;

use std::path::Path;

use vibesync_policy_runtime::{Budgets, load_builtins, testing};

#[test]
fn builtin_corpora_pass_through_the_components() {
    let rt = common::runtime(Budgets::default());
    let builtins = vibesync_policies::BUILTINS
        .iter()
        .map(|b| (b.name, b.wasm, b.sha256));
    let policies = load_builtins(&rt, builtins)
        .expect("the built-ins load and match their compile-time hashes");
    assert_eq!(
        policies
            .iter()
            .map(|p| p.info().name.as_str())
            .collect::<Vec<_>>(),
        ["firewall", "nan-audit", "validation"]
    );
    let lookup = |name: &str| policies.iter().find(|p| p.info().name == name);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut total = 0;
    let mut failures = Vec::new();
    for policy in ["firewall", "nan-audit", "validation"] {
        let dir = root.join(policy).join("fixtures");
        let report = testing::run_dir(&rt, &lookup, &dir).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{policy}:\n{}", report.render());
        assert!(
            report.results.iter().all(|r| r.policy == policy),
            "{dir:?} holds cases for another policy"
        );
        assert!(
            report.results.len() >= 60,
            "{policy}: only {} cases",
            report.results.len()
        );
        total += report.results.len();
        failures.extend(report.results.into_iter().filter(|r| !r.passed));
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed: {failures:#?}",
        failures.len()
    );
}

/// Nested code through the firewall's parser and AST walk: a Python
/// expression nested up to 200 deep (CPython's own parser refuses 201) is
/// judged like any other script (allowed);
/// one nested far deeper than code anyone writes overflows the stack and is
/// denied as a stack fault, never allowed.
#[test]
fn deeply_nested_scripts_are_judged_or_fail_closed() {
    let rt = common::runtime(Budgets::default());
    let b = vibesync_policies::BUILTINS
        .iter()
        .find(|b| b.name == "firewall")
        .expect("firewall is a built-in");
    let firewall = rt.load_for_review(b.name, b.wasm).expect("firewall loads");
    let run = |depth: usize| {
        let code = format!(
            "import bpy\nx = {}1{}\nbpy.context.object.location.x = len(x)\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let args = serde_json::json!({ "language": "python", "code": code });
        let intent = vibesync_policy_types::Intent::for_op(
            1,
            vibesync_policy_types::Source::Agent,
            "run_script",
            &args,
            0,
            1,
            vec!["blender".into()],
            vec![],
            "Nudge the selected object along x by one unit".into(),
            7,
        );
        rt.evaluate(&firewall, &intent, &common::empty_context(), &[])
    };
    for depth in [10, 100, 200] {
        let r = run(depth);
        assert_eq!(
            r.verdict,
            vibesync_policy_types::Verdict::Allow,
            "depth {depth}: {r:#?}"
        );
    }
    let r = run(5000);
    assert!(r.verdict.is_deny(), "{r:#?}");
    assert_eq!(
        r.fault,
        Some(vibesync_policy_runtime::FaultKind::StackOverflow),
        "{r:#?}"
    );
}
