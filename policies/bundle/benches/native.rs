//! The three built-in rule sets compiled natively, on the same inputs the
//! wasm pipeline bench uses (`vibesync_policies::native::inputs`): a typical
//! `set_transform` and a 1000-leaf `select`. Baseline for the wasm figures.
//!
//! `cargo bench -p vibesync-policies --features native --bench native`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vibesync_policies::native::{PIPELINE, inputs, native_pipeline};
use vibesync_policy_sdk::Config;

fn bench(c: &mut Criterion) {
    let ctx = inputs::context();
    let config = Config::empty();
    for (label, intent) in [
        ("transform", inputs::transform_intent()),
        ("1000-leaf", inputs::wide_intent(1000)),
    ] {
        assert!(
            native_pipeline(&intent, &ctx) == vibesync_policy_types::Verdict::Allow,
            "{label} input must be allowed"
        );
        c.bench_function(&format!("native/pipeline/{label}"), |b| {
            b.iter(|| native_pipeline(black_box(&intent), black_box(&ctx)))
        });
        for (name, evaluate) in PIPELINE {
            c.bench_function(&format!("native/{name}/{label}"), |b| {
                b.iter(|| evaluate(black_box(&intent), black_box(&ctx), black_box(&config)))
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
