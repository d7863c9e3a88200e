//! The built-in pipeline (firewall → nan-audit → validation) as wasm
//! components through the runtime, beside the same three rule sets compiled
//! natively, on the same inputs in the same run; plus cold vs warm load of
//! the three components (compile vs on-disk cache). `wasm-pipeline` has
//! instances prepared ahead by a background thread (`prepared_per_policy:
//! 2`); `wasm-pipeline-inline` makes and drops every instance on the
//! evaluating thread (`prepared_per_policy: 0`, the default).
//!
//! `cargo bench -p vibesync-policy-runtime --bench pipeline`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use vibesync_policies::native::inputs;
use vibesync_policy_runtime::{Pipeline, PolicyConfigs, Runtime, RuntimeConfig, load_builtins};

fn builtins() -> impl Iterator<Item = (&'static str, &'static [u8], &'static str)> {
    vibesync_policies::BUILTINS
        .iter()
        .map(|b| (b.name, b.wasm, b.sha256))
}

fn pipeline(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let new_pipeline = |prepared_per_policy| {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().into()),
            prepared_per_policy,
            ..Default::default()
        })
        .unwrap();
        Pipeline::new(
            rt.clone(),
            load_builtins(&rt, builtins()).unwrap(),
            PolicyConfigs::default(),
        )
    };
    // Instances prepared ahead by a background thread.
    let p = new_pipeline(2);
    // Every instance made and torn down on the evaluating thread (the default).
    let inline = new_pipeline(0);
    let before = before_pipeline(cache.path());
    let ctx = inputs::context();
    for (label, intent) in [
        ("transform", inputs::transform_intent()),
        ("1000-leaf", inputs::wide_intent(1000)),
    ] {
        // Both sides must agree, and must run all three policies.
        let d = p.evaluate(&intent, &ctx);
        assert_eq!(d.runs.len(), 3, "{d:#?}");
        assert_eq!(
            d.verdict,
            vibesync_policies::native_pipeline(&intent, &ctx),
            "{label}: wasm and native disagree"
        );
        assert!(
            !d.verdict.is_deny(),
            "{label}: the bench input must pass every policy: {d:#?}"
        );

        assert_eq!(inline.evaluate(&intent, &ctx).verdict, d.verdict);

        // CPU per op, all threads of the process (the preparer's included),
        // which the load of a shared machine disturbs far less than wall time.
        let mut variants: Vec<(&str, &Pipeline)> =
            vec![("wasm-pipeline", &p), ("wasm-pipeline-inline", &inline)];
        if let Some(before) = &before {
            variants.push(("wasm-pipeline-before", before));
        }
        for (name, pipeline) in variants {
            let n = if label == "transform" { 3000 } else { 300 };
            let cpu0 = process_cpu_ns();
            for _ in 0..n {
                black_box(pipeline.evaluate(black_box(&intent), &ctx));
            }
            // Let the preparer finish what this loop asked of it.
            std::thread::sleep(std::time::Duration::from_millis(50));
            let cpu = (process_cpu_ns() - cpu0) as f64 / n as f64 / 1000.0;
            println!("cpu-per-op {label}/{name}: {cpu:.1} µs");
        }
        let cpu0 = process_cpu_ns();
        let n = if label == "transform" { 30_000 } else { 3000 };
        for _ in 0..n {
            black_box(vibesync_policies::native_pipeline(black_box(&intent), &ctx));
        }
        let cpu = (process_cpu_ns() - cpu0) as f64 / n as f64 / 1000.0;
        println!("cpu-per-op {label}/native: {cpu:.2} µs");

        let mut g = c.benchmark_group(label);
        g.bench_function("wasm-pipeline", |b| {
            b.iter(|| black_box(p.evaluate(black_box(&intent), &ctx)))
        });
        g.bench_function("wasm-pipeline-inline", |b| {
            b.iter(|| black_box(inline.evaluate(black_box(&intent), &ctx)))
        });
        if let Some(before) = &before {
            assert_eq!(before.evaluate(&intent, &ctx).verdict, d.verdict);
            g.bench_function("wasm-pipeline-before", |b| {
                b.iter(|| black_box(before.evaluate(black_box(&intent), &ctx)))
            });
        }
        // Per-evaluation latency. Criterion's estimates are means of
        // batches, which a few slow evaluations pull up; the goals are p50s.
        // Back to back, and with a pause (PACE) before each: closer to
        // `serve`, where intents arrive apart and the preparer has the gap
        // to restock its shelf, but where caches are colder too. The
        // variants take turns in rounds, so a noisy neighbour hits them alike.
        let wasm = |pipeline: &Pipeline| {
            black_box(pipeline.evaluate(black_box(&intent), &ctx));
        };
        let native = || {
            black_box(vibesync_policies::native_pipeline(black_box(&intent), &ctx));
        };
        // `native` third: the ratios below read its samples by position.
        let runs: [(&str, bool, &dyn Fn()); 5] = [
            ("wasm-pipeline", false, &|| wasm(&p)),
            ("wasm-pipeline-inline", false, &|| wasm(&inline)),
            ("native", false, &native),
            ("wasm-pipeline", true, &|| wasm(&p)),
            ("wasm-pipeline-inline", true, &|| wasm(&inline)),
        ];
        let mut samples = vec![Vec::new(); runs.len()];
        let per_round = if label == "transform" { 400 } else { 60 };
        for _round in 0..10 {
            for ((_, pause, f), samples) in runs.iter().zip(&mut samples) {
                for _ in 0..per_round {
                    if *pause {
                        std::thread::sleep(PACE);
                    }
                    let start = std::time::Instant::now();
                    f();
                    samples.push(start.elapsed().as_nanos() as u64);
                }
            }
        }
        let pct = |samples: &[u64], q: f64| {
            samples[((q * samples.len() as f64) as usize).min(samples.len() - 1)] as f64 / 1000.0
        };
        for s in &mut samples {
            s.sort_unstable();
        }
        let native_p50 = pct(&samples[2], 0.5);
        for ((name, pause, _), samples) in runs.iter().zip(&samples) {
            let (p50, p99) = (pct(samples, 0.50), pct(samples, 0.99));
            let (how, ratio) = match pause {
                false => (
                    "back to back".to_owned(),
                    format!(", {:.2}x native", p50 / native_p50),
                ),
                true => (
                    format!("{} µs pause before each", PACE.as_micros()),
                    String::new(),
                ),
            };
            println!("latency {label}/{name} ({how}): p50 {p50:.1} µs, p99 {p99:.1} µs{ratio}");
        }
        g.bench_function("native", |b| {
            b.iter(|| black_box(vibesync_policies::native_pipeline(black_box(&intent), &ctx)))
        });
        g.finish();
    }
}

/// Pause before each paced evaluation.
const PACE: std::time::Duration = std::time::Duration::from_micros(200);

/// CPU time used so far by every thread of this process, in nanoseconds
/// (`/proc/self/task/*/schedstat`, first field; 0 where unavailable). The
/// epoch ticker's 1 ms wake-ups are included (well under 1 % of a core).
fn process_cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// For a before/after comparison in one run: the same three policies built
/// some other way (e.g. the former `wasm32-wasip2` components), read from
/// `$VIBESYNC_BENCH_BEFORE_DIR/vibesync_policy_{firewall,nan_audit,validation}.wasm`
/// and evaluated inline (`prepared_per_policy: 0`), as the runtime did
/// before instances were prepared ahead. Unset: not measured.
fn before_pipeline(cache: &std::path::Path) -> Option<Pipeline> {
    let dir = std::path::PathBuf::from(std::env::var_os("VIBESYNC_BENCH_BEFORE_DIR")?);
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.into()),
        prepared_per_policy: 0,
        ..Default::default()
    })
    .unwrap();
    let policies = vibesync_policies::BUILTINS
        .iter()
        .map(|b| {
            let file = dir.join(format!("vibesync_policy_{}.wasm", b.name.replace('-', "_")));
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            rt.load_for_review(b.name, &bytes).unwrap()
        })
        .collect();
    Some(Pipeline::new(rt, policies, PolicyConfigs::default()))
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("load-3-builtins");
    g.sample_size(10);
    g.bench_function(BenchmarkId::new("cold", "compile"), |b| {
        b.iter_with_setup(
            || tempfile::tempdir().unwrap(),
            |dir| {
                let rt = Runtime::new(RuntimeConfig {
                    cache_dir: Some(dir.path().into()),
                    ..Default::default()
                })
                .unwrap();
                black_box(load_builtins(&rt, builtins()).unwrap());
                dir
            },
        )
    });
    let warm = tempfile::tempdir().unwrap();
    {
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(warm.path().into()),
            ..Default::default()
        })
        .unwrap();
        load_builtins(&rt, builtins()).unwrap();
    }
    g.bench_function(BenchmarkId::new("warm", "cache-hit"), |b| {
        b.iter(|| {
            let rt = Runtime::new(RuntimeConfig {
                cache_dir: Some(warm.path().into()),
                ..Default::default()
            })
            .unwrap();
            let loaded = load_builtins(&rt, builtins()).unwrap();
            assert!(
                loaded
                    .iter()
                    .all(|p| p.cache_outcome() == vibesync_policy_runtime::CacheOutcome::Hit)
            );
            black_box(loaded)
        })
    });
    g.finish();
}

criterion_group!(benches, pipeline, load);
criterion_main!(benches);
