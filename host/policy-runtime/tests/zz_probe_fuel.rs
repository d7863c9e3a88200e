// TEMPORARY probe, not to be committed.
use vibesync_policies::native::inputs;
use vibesync_policy_runtime::{Pipeline, PolicyConfigs, Runtime, RuntimeConfig, load_builtins};
#[test]
fn fuel() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let b = vibesync_policies::BUILTINS.iter().map(|b| (b.name, b.wasm, b.sha256));
    let p = Pipeline::new(rt.clone(), load_builtins(&rt, b).unwrap(), PolicyConfigs::default());
    for (l, i) in [("transform", inputs::transform_intent()), ("wide", inputs::wide_intent(1000))] {
        let d = p.evaluate(&i, &inputs::context());
        for r in &d.runs { eprintln!("{l} {} fuel {} verdict {:?}", r.policy, r.fuel_used, r.verdict.kind()); }
    }
}
