//! `vibesync policy bench`: how fast policies are, in one run, side by side.
//!
//! For every built-in and every `--module`, on one typical op (a
//! `set_material` every policy lets through, so each one runs to the end):
//! - start-up, **cold**: load into a runtime whose compile cache is empty
//!   (compile to native code, write the artifact, type-check, `metadata()`);
//! - start-up, **cached**: the same load when the artifact is on disk
//!   (deserialize instead of compile), i.e. a host restart;
//! - the **first call** after a cached load, then `--iterations` **warm**
//!   calls, reported as p50 and p99;
//! - every number also as a ratio to the Rust built-in `validation`,
//!   measured in the same run (the baseline).
//!
//! Modules are loaded without a lock check: measuring is not serving.
//! The statistics are plain functions ([`percentile`], [`median`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use vibesync_policy_runtime::{CacheOutcome, Runtime, RuntimeConfig, module_name};
use vibesync_policy_types as t;

/// The policy every ratio is relative to.
pub const BASELINE: &str = "validation";

#[derive(clap::Args)]
pub struct BenchArgs {
    /// A module to measure beside the built-ins. Repeatable.
    #[arg(long = "module")]
    modules: Vec<PathBuf>,
    /// Warm evaluations per policy.
    #[arg(long, default_value_t = 2000)]
    iterations: u32,
    /// Cold and cached loads per policy (the median is reported).
    #[arg(long, default_value_t = 3)]
    startup_samples: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One policy's numbers, in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub policy: String,
    pub size: u64,
    pub startup_cold_us: f64,
    pub startup_cached_us: f64,
    pub first_call_us: f64,
    pub warm_p50_us: f64,
    pub warm_p99_us: f64,
}

/// The `q`-quantile (0..=1) of `sorted` by nearest rank. Pure.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of unsorted samples. Pure.
pub fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    percentile(&s, 0.5)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The op every policy is measured on: allowed by every built-in and by the
/// example policies, so each evaluates all of its rules.
fn typical_op() -> (t::Intent, t::Context) {
    let args =
        serde_json::json!({"id": "obj-1", "base_color": [0.8, 0.05, 0.05, 1.0], "roughness": 0.5});
    let intent = t::Intent::for_op(
        1,
        t::Source::Agent,
        "set_material",
        &args,
        0,
        1,
        t::fixture::FIXTURE_ENGINES
            .iter()
            .map(|e| e.to_string())
            .collect(),
        vec!["obj-1".into()],
        t::fixture::DEFAULT_RATIONALE.into(),
        3,
    );
    let ctx: t::Context = serde_json::from_value(serde_json::json!({
        "objects": [{"id": "obj-1", "name": "SM_Crate", "kind": "mesh"}],
        "scene_object_count": 1, "scene_version": 3, "project_root": t::fixture::DEFAULT_PROJECT_ROOT
    }))
    .expect("the typical context is valid");
    (intent, ctx)
}

/// A scratch compile-cache directory, removed on drop.
struct ScratchDir(PathBuf);
impl ScratchDir {
    fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!(
            "vibesync-policy-bench-{}-{tag}-{n}",
            std::process::id()
        )))
    }
}
impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn measure(
    base: &RuntimeConfig,
    name: &str,
    bytes: &[u8],
    args: &BenchArgs,
) -> anyhow::Result<Row> {
    let config = |dir: &ScratchDir| RuntimeConfig {
        cache_dir: Some(dir.0.clone()),
        ..base.clone()
    };
    let (mut cold, mut cached) = (Vec::new(), Vec::new());
    let warm_dir = ScratchDir::new("warm");
    let rt = Runtime::new(config(&warm_dir))?;
    for _ in 0..args.startup_samples.max(1) {
        let dir = ScratchDir::new("cold");
        let fresh = Runtime::new(config(&dir))?;
        let start = Instant::now();
        let p = fresh.load_for_review(name, bytes)?;
        cold.push(us(start.elapsed()));
        anyhow::ensure!(
            p.cache_outcome() == CacheOutcome::Miss,
            "{name}: a cold load hit the cache"
        );
    }
    rt.load_for_review(name, bytes)?; // fills the warm cache
    let mut policy = None;
    for _ in 0..args.startup_samples.max(1) {
        let start = Instant::now();
        let p = rt.load_for_review(name, bytes)?;
        cached.push(us(start.elapsed()));
        anyhow::ensure!(
            p.cache_outcome() == CacheOutcome::Hit,
            "{name}: a cached load missed the cache"
        );
        policy = Some(p);
    }
    let policy = policy.expect("at least one sample");
    let (intent, ctx) = typical_op();
    let start = Instant::now();
    let first = rt.evaluate(&policy, &intent, &ctx, &[]);
    let first_call_us = us(start.elapsed());
    anyhow::ensure!(
        first.fault.is_none() && !first.verdict.is_deny(),
        "{name} does not let the typical op through ({:?}); it cannot be measured on it",
        first.verdict
    );
    let mut warm = Vec::with_capacity(args.iterations as usize);
    for _ in 0..args.iterations.max(1) {
        let start = Instant::now();
        let run = rt.evaluate(&policy, &intent, &ctx, &[]);
        warm.push(us(start.elapsed()));
        std::hint::black_box(run);
    }
    warm.sort_by(f64::total_cmp);
    Ok(Row {
        policy: policy.info().name.clone(),
        size: bytes.len() as u64,
        startup_cold_us: median(&cold),
        startup_cached_us: median(&cached),
        first_call_us,
        warm_p50_us: percentile(&warm, 0.5),
        warm_p99_us: percentile(&warm, 0.99),
    })
}

/// A table with every number and its ratio to the baseline row. Pure.
pub fn render(rows: &[Row]) -> String {
    use std::fmt::Write;
    let base = rows.iter().find(|r| r.policy == BASELINE);
    // Two significant figures below 10x, so a 0.45x ratio does not print as "0x".
    let ratio = |v: f64, b: Option<f64>| {
        b.map_or(String::new(), |b| match v / b {
            r if r < 10.0 => format!(" ({r:.2}x)"),
            r => format!(" ({r:.0}x)"),
        })
    };
    let mut s = format!(
        "{:<14} {:>10}  {:>22}  {:>22}  {:>18}  {:>18}  {:>18}\n",
        "policy",
        "bytes",
        "start-up cold ms",
        "start-up cached ms",
        "first call µs",
        "warm p50 µs",
        "warm p99 µs"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<14} {:>10}  {:>22}  {:>22}  {:>18}  {:>18}  {:>18}",
            r.policy,
            r.size,
            format!(
                "{:.1}{}",
                r.startup_cold_us / 1e3,
                ratio(r.startup_cold_us, base.map(|b| b.startup_cold_us))
            ),
            format!(
                "{:.1}{}",
                r.startup_cached_us / 1e3,
                ratio(r.startup_cached_us, base.map(|b| b.startup_cached_us))
            ),
            format!(
                "{:.0}{}",
                r.first_call_us,
                ratio(r.first_call_us, base.map(|b| b.first_call_us))
            ),
            format!(
                "{:.1}{}",
                r.warm_p50_us,
                ratio(r.warm_p50_us, base.map(|b| b.warm_p50_us))
            ),
            format!(
                "{:.1}{}",
                r.warm_p99_us,
                ratio(r.warm_p99_us, base.map(|b| b.warm_p99_us))
            ),
        );
    }
    if base.is_some() {
        let _ = writeln!(
            s,
            "(Nx) = ratio to the Rust built-in `{BASELINE}` in this run"
        );
    }
    s
}

pub fn run(args: BenchArgs, base: RuntimeConfig) -> anyhow::Result<ExitCode> {
    let mut inputs: Vec<(String, Vec<u8>)> = vibesync_policies::BUILTINS
        .iter()
        .map(|b| (b.name.to_owned(), b.wasm.to_vec()))
        .collect();
    for m in &args.modules {
        let bytes = std::fs::read(m).with_context(|| format!("cannot read {}", m.display()))?;
        inputs.push((module_name(m), bytes));
    }
    let mut rows = Vec::new();
    for (name, bytes) in &inputs {
        eprintln!("measuring {name} ({} bytes)...", bytes.len());
        rows.push(measure(&base, name, bytes, &args)?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", render(&rows));
        println!(
            "{} warm calls per policy, median of {} cold and {} cached loads; typical op: set_material on one object",
            args.iterations, args.startup_samples, args.startup_samples
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.5), 50.0);
        assert_eq!(percentile(&s, 0.99), 99.0);
        assert_eq!(percentile(&s, 1.0), 100.0);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn ratios_are_to_the_baseline_row() {
        let row = |policy: &str, v: f64| Row {
            policy: policy.into(),
            size: 1,
            startup_cold_us: v * 1e3,
            startup_cached_us: v * 1e3,
            first_call_us: v,
            warm_p50_us: v,
            warm_p99_us: v,
        };
        let text = render(&[
            row(BASELINE, 10.0),
            row("team-naming", 300.0),
            row("fast", 4.5),
        ]);
        let line = |n: usize| text.lines().nth(n).unwrap();
        assert!(line(1).contains("10.0 (1.00x)"), "{text}");
        assert!(line(2).contains("300.0 (30x)"), "{text}");
        assert!(line(3).contains("4.5 (0.45x)"), "{text}");
    }
}
