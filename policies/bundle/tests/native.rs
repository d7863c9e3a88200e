//! The native pipeline: order, short-circuit on deny, and the shared bench
//! inputs are allowed (so the benches measure a full pass).
#![cfg(feature = "native")]

use vibesync_policies::native::{inputs, native_pipeline};
use vibesync_policy_types::{Intent, Source, Verdict};

#[test]
fn bench_inputs_pass_all_three() {
    let ctx = inputs::context();
    assert_eq!(
        native_pipeline(&inputs::transform_intent(), &ctx),
        Verdict::Allow
    );
    let wide = inputs::wide_intent(1000);
    assert_eq!(wide.leaves.len(), 1000);
    assert_eq!(native_pipeline(&wide, &ctx), Verdict::Allow);
}

#[test]
fn stops_at_the_first_deny() {
    // Both the firewall (import os) and validation (unknown field) object;
    // only the firewall's findings come back.
    let args = serde_json::json!({"language": "python", "code": "import os", "extra": 1});
    let intent = Intent::for_op(
        1,
        Source::Agent,
        "run_script",
        &args,
        0,
        1,
        vec![],
        vec![],
        "Clean up the scene before the review".into(),
        0,
    );
    let Verdict::Deny(findings) = native_pipeline(&intent, &inputs::context()) else {
        panic!("not denied")
    };
    assert!(
        findings.iter().all(|f| f.rule.starts_with("firewall.")),
        "{findings:?}"
    );
}
