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
