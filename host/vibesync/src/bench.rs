//! `vibesync bench load`: the whole intent path under load, with real
//! processes, and the confinement's cost measured in the same run.
//!
//! Two halves:
//! - the **load** ([`load`]): `serve --bench-submitters N` runs it in place
//!   of the MCP front door, inside the real serve process (same config,
//!   same confinement, same `orchestrator::boot::open` + `orchestrator::run`).
//!   N submitters call the core through its in-process API
//!   ([`CoreHandle`]) in a closed loop: look (read the scene version),
//!   write (one `set_transform` on the submitter's own object, through the
//!   policies, the WAL and QUIC to every engine), wait for the provisional
//!   answer, then for the final outcome, and go again. It prints one
//!   `BENCH-RESULT {json}` line.
//! - the **driver** ([`run`]): makes a throw-away project per run, starts
//!   that serve as a child, pairs and starts two reference engines (real
//!   processes, real QUIC), collects the result, and interleaves confined
//!   and `--no-sandbox` runs (ABBA order) so that the sandbox's cost is a
//!   ratio measured under the same machine load.
//!
//! The statistics ([`Latencies`], [`ratio_summary`]) are plain functions.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{EngineConfig, EngineKind};
use crate::core_api::{Caller, CoreHandle, IntentRequest, OpSpec, Phase, Source};
use crate::metrics::{Metrics, PipelineCounters};

/// The line the bench-mode serve prints once its QUIC link listens.
pub const LISTENING: &str = "BENCH-LISTENING";
/// The prefix of the bench-mode serve's result line.
pub const RESULT: &str = "BENCH-RESULT ";
/// The lines the bench-mode serve prints when the measured window opens
/// and closes: the driver reads the engines' CPU clocks there.
pub const WINDOW_OPEN: &str = "BENCH-WINDOW-OPEN";
pub const WINDOW_CLOSE: &str = "BENCH-WINDOW-CLOSE";

#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// N concurrent intent submitters through the full pipeline (policies,
    /// WAL, QUIC) against two reference engines; confined and unconfined
    /// runs interleaved.
    Load(LoadArgs),
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Concurrent submitters (each owns one object).
    #[arg(long, default_value_t = 8)]
    pub submitters: usize,
    /// Measured seconds per run (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Rounds; each round is one confined and one unconfined run, in
    /// alternating order.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Only confined runs (no `--no-sandbox` baseline).
    #[arg(long)]
    pub confined_only: bool,
    /// Which sequencer modes to run: `concurrent` (what `serve` runs),
    /// `serial` (one transaction at a time, `serve --serial-sequencer`), or
    /// `both`.
    #[arg(long, value_enum, default_value = "both")]
    pub sequencer: SequencerChoice,
    /// Ask engines for the read-back after the provisional commit instead
    /// of right behind the apply (the way before; for comparison).
    #[arg(long)]
    pub verify_after_provisional: bool,
    /// The core waits for each WAL group commit before it goes on (the
    /// way before; for comparison).
    #[arg(long)]
    pub wal_inline: bool,
    /// Every policy evaluation inside `block_in_place` (the way before;
    /// for comparison).
    #[arg(long)]
    pub policy_block_in_place: bool,
    /// One `command` frame per command to an engine (the way before
    /// batched frames; for comparison).
    #[arg(long)]
    pub single_command_frames: bool,
    /// Commit notices leave at once, alone (the way before; for
    /// comparison), not with the next command to that engine.
    #[arg(long)]
    pub commit_notices_alone: bool,
    /// Every submitter reads the scene before each intent (the loop before;
    /// for comparison) instead of passing the version the last answer gave.
    #[arg(long)]
    pub read_scene_each_intent: bool,
    /// Objects the scene holds besides the submitters' cubes (created
    /// before the warm-up, never touched by the load): how the rate depends
    /// on the size of the scene.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub scene_objects: usize,
    /// The serve's tokio worker threads (`serve --worker-threads`; for
    /// comparison with its default of one).
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<u16>,
    /// Also print every run's JSON.
    #[arg(long)]
    pub json: bool,
    /// Keep the runs' project directories (WAL, serve.log).
    #[arg(long)]
    pub keep: bool,
    /// Run the engine named `blender` as this command instead of a
    /// reference engine, e.g. headless Blender:
    /// `".venv/bin/python adapters/blender/harness.py"` (words split on
    /// spaces; `--pairing FILE` is appended; the SDK library comes from
    /// `VIBESYNC_SDK_LIB`). Its stdout (the harness's `STATS` lines: the
    /// adapter's main-thread cost) goes to `blender.out`, its stderr to
    /// `blender.log`, in the run's directory (`--keep` keeps them).
    #[arg(long, value_name = "CMD")]
    pub blender_engine: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SequencerChoice {
    Concurrent,
    Serial,
    Both,
}

/// What the bench-mode serve is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub submitters: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// Read the scene before every intent (for comparison) instead of
    /// passing the version the last answer gave, as the tools tell agents
    /// to; a refused intent is always followed by a fresh read.
    pub read_each_intent: bool,
    /// Untouched objects created before the load (`LoadArgs::scene_objects`).
    pub scene_objects: usize,
}

/// Latency percentiles of one kind of event, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latencies {
    pub n: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Latencies {
    /// Nearest-rank percentiles of `samples` (any order).
    pub fn of(samples: &[Duration]) -> Latencies {
        let mut us: Vec<u64> = samples.iter().map(|d| d.as_micros() as u64).collect();
        us.sort_unstable();
        let rank = |p: f64| -> u64 {
            if us.is_empty() {
                return 0;
            }
            let i = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
            us[i]
        };
        Latencies {
            n: us.len(),
            p50_us: rank(0.50),
            p99_us: rank(0.99),
            max_us: us.last().copied().unwrap_or(0),
        }
    }
}

/// One run's outcome, as the bench-mode serve prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    pub confined: bool,
    /// One transaction at a time (`serve --serial-sequencer`).
    pub serial: bool,
    pub submitters: usize,
    pub seconds: f64,
    /// Intents submitted in the measured window.
    pub submitted: u64,
    pub committed: u64,
    pub rolled_back: u64,
    /// Refusals and other errors, by rule (`host.stale-scene-version`, ...).
    pub refused: BTreeMap<String, u64>,
    pub submitted_per_s: f64,
    pub committed_per_s: f64,
    /// Submit → provisional answer, for intents that reached it.
    pub to_provisional: Latencies,
    /// Submit → committed, for intents that committed.
    pub to_commit: Latencies,
    /// What the pipeline did in the measured window (absent from older
    /// results).
    #[serde(default)]
    pub pipeline: Option<PipelineStats>,
    /// CPU time (user + system) of the engine processes together in the
    /// measured window, per committed intent; filled in by the driver
    /// (absent when it could not read their clocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engines_cpu_us_per_commit: Option<f64>,
    /// Share of the whole machine's CPU time (every core, every process,
    /// the kernel's too) that was busy in the measured window, 0–1; filled
    /// in by the driver from `/proc/stat`. Well below 1 means the run was
    /// bound by latency (the closed loop's waits), not by CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_busy: Option<f64>,
}

/// Counters of the serve process over the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineStats {
    /// WAL group commits (one `fdatasync` each) per committed intent.
    pub group_commits_per_commit: f64,
    pub records_per_group_commit: f64,
    /// Mean time of one group commit (encode, write, `fdatasync`).
    pub group_commit_mean_us: f64,
    /// Mean time of one run of the policy pipeline (every policy on one
    /// op), and runs per intent.
    pub policy_mean_us: f64,
    pub policy_evaluations_per_intent: f64,
    /// CPU time (user + system, every thread of the serve process, the
    /// in-process submitters included) per committed intent. Unlike
    /// latency it barely moves with other processes' load, so it is the
    /// steadier measure of what confinement costs (seccomp runs in the
    /// system time of the calls it checks).
    /// `None` when the process CPU clock could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_us_per_commit: Option<f64>,
}

impl PipelineStats {
    fn between(
        (a, cpu_a): (PipelineCounters, Option<Duration>),
        (b, cpu_b): (PipelineCounters, Option<Duration>),
        committed: u64,
        submitted: u64,
    ) -> Self {
        let d = |x: u64, y: u64| y.saturating_sub(x) as f64;
        let commits = d(a.wal_group_commits, b.wal_group_commits);
        let evals = d(a.policy_evaluations, b.policy_evaluations);
        let per = |x: f64, n: f64| if n > 0.0 { x / n } else { 0.0 };
        PipelineStats {
            group_commits_per_commit: per(commits, committed as f64),
            records_per_group_commit: per(d(a.wal_records, b.wal_records), commits),
            group_commit_mean_us: per(d(a.wal_commit_ns, b.wal_commit_ns) / 1e3, commits),
            policy_mean_us: per(d(a.policy_ns, b.policy_ns) / 1e3, evals),
            policy_evaluations_per_intent: per(evals, submitted as f64),
            cpu_us_per_commit: cpu_a
                .zip(cpu_b)
                .map(|(x, y)| per(y.saturating_sub(x).as_secs_f64() * 1e6, committed as f64)),
        }
    }
}

/// User + system CPU time of this process so far (all threads), or `None`
/// when the clock cannot be read (then the figure is left out, not zero).
/// `CLOCK_PROCESS_CPUTIME_ID` rather than `getrusage`, which the host's
/// seccomp profile refuses.
fn process_cpu() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one timespec through the pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[derive(Default)]
struct Samples {
    submitted: u64,
    committed: u64,
    rolled_back: u64,
    refused: BTreeMap<String, u64>,
    provisional: Vec<Duration>,
    commit: Vec<Duration>,
}

fn object_id(i: usize) -> String {
    format!("bench-{i}")
}

fn intent(ops: Vec<OpSpec>, rationale: &str, scene_version: u64) -> IntentRequest {
    IntentRequest {
        ops,
        rationale: rationale.into(),
        scene_version,
        idempotency_key: None,
        engines: None,
        source: Source::Agent,
    }
}

/// Waits until every configured engine is connected.
async fn engines_up(core: &CoreHandle, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let engines = core.list_engines(Caller::Agent).await?;
        if !engines.is_empty() && engines.iter().all(|e| e.connected) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("engines not connected after {limit:?}: {engines:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the final phase of `tid` (the submitter's view of "committed").
async fn final_phase(core: &CoreHandle, tid: u64) -> anyhow::Result<Phase> {
    let mut rx = core.subscribe(Caller::Agent, tid).await?;
    while let Some(p) = rx.recv().await {
        if p.phase.is_final() {
            return Ok(p.phase);
        }
    }
    // The stream ended before a final phase (the core stopped following
    // it): read the record.
    let t = core.get_transaction(Caller::Agent, tid).await?;
    if !t.is_final {
        bail!("tid {tid}: progress stream ended in phase {:?}", t.phase);
    }
    Ok(t.phase)
}

/// Submits one setup transaction (`ops`, against the current scene) and
/// waits until it committed.
async fn setup(core: &CoreHandle, ops: Vec<OpSpec>, rationale: &str) -> anyhow::Result<()> {
    let version = core.read_scene(Caller::Agent).await?.version;
    let tx = core
        .submit_intent(Caller::Agent, intent(ops, rationale, version))
        .await?;
    let phase = final_phase(core, tx.tid).await?;
    if phase != Phase::Committed {
        bail!("the setup transaction `{rationale}` ended {phase:?}");
    }
    Ok(())
}

/// The load itself, against a running core whose engines are configured.
pub async fn load(
    core: CoreHandle,
    opts: LoadOptions,
    confined: bool,
    serial: bool,
    metrics: Arc<Metrics>,
) -> anyhow::Result<LoadResult> {
    engines_up(&core, Duration::from_secs(30)).await?;
    // One object per submitter, created in one setup transaction.
    let cubes = (0..opts.submitters).map(|i| OpSpec {
        op: "create_object".into(),
        args: json!({"id": object_id(i), "name": format!("BenchCube{i}"), "kind": "mesh", "primitive": "cube"}),
    });
    setup(&core, cubes.collect(), "create one cube per load submitter").await?;
    // The rest of the scene, in transactions of at most 100 creations.
    for first in (0..opts.scene_objects).step_by(100) {
        let props = (first..opts.scene_objects.min(first + 100)).map(|i| OpSpec {
            op: "create_object".into(),
            args: json!({"id": format!("bench-prop-{i}"), "name": format!("BenchProp{i}"), "kind": "empty"}),
        });
        setup(
            &core,
            props.collect(),
            "fill the scene the load runs against",
        )
        .await?;
    }

    let samples = Arc::new(Mutex::new(Samples::default()));
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let end = measure_from + opts.measure;
    let window = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            println!("{WINDOW_OPEN}");
            let a = (metrics.counters(), process_cpu());
            tokio::time::sleep_until(end.into()).await;
            let b = (metrics.counters(), process_cpu());
            println!("{WINDOW_CLOSE}");
            (a, b)
        })
    };
    let mut tasks = Vec::new();
    let read_each_intent = opts.read_each_intent;
    for i in 0..opts.submitters {
        let core = core.clone();
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let id = object_id(i);
            let mut k = 0u64;
            let mut known = None;
            while Instant::now() < end {
                k += 1;
                let version = match known.filter(|_| !read_each_intent) {
                    Some(v) => v,
                    None => core.read_scene(Caller::Agent).await?.version,
                };
                let ops = vec![OpSpec {
                    op: "set_transform".into(),
                    args: json!({"id": id, "translation": [i as f64, (k % 1000) as f64 * 0.01, 0.0]}),
                }];
                let t0 = Instant::now();
                let measured = t0 >= measure_from && t0 < end;
                let answer = core.submit_intent(Caller::Agent, intent(ops, "nudge the load-test cube along y", version)).await;
                let t_prov = t0.elapsed();
                let (outcome, prov) = match answer {
                    Ok(o) => {
                        let phase = final_phase(&core, o.tid).await?;
                        // The version the answer named exists only if it committed.
                        known = (phase == Phase::Committed).then_some(o.scene_version);
                        (Ok(phase), Some(t_prov))
                    }
                    Err(e) => {
                        known = None;
                        (Err(e.rule.unwrap_or_else(|| e.code.as_str().to_owned())), None)
                    }
                };
                let t_final = t0.elapsed();
                if !measured {
                    continue;
                }
                let mut s = samples.lock().expect("samples");
                s.submitted += 1;
                s.provisional.extend(prov);
                match outcome {
                    Ok(Phase::Committed) => {
                        s.committed += 1;
                        s.commit.push(t_final);
                    }
                    Ok(Phase::RolledBack) => s.rolled_back += 1,
                    Ok(other) => *s.refused.entry(format!("phase-{other:?}")).or_default() += 1,
                    Err(rule) => *s.refused.entry(rule).or_default() += 1,
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let (a, b) = window.await?;
    let s = std::mem::take(&mut *samples.lock().expect("samples"));
    let secs = opts.measure.as_secs_f64();
    Ok(LoadResult {
        confined,
        serial,
        submitters: opts.submitters,
        seconds: secs,
        submitted: s.submitted,
        committed: s.committed,
        rolled_back: s.rolled_back,
        refused: s.refused,
        submitted_per_s: s.submitted as f64 / secs,
        committed_per_s: s.committed as f64 / secs,
        to_provisional: Latencies::of(&s.provisional),
        to_commit: Latencies::of(&s.commit),
        pipeline: Some(PipelineStats::between(a, b, s.committed, s.submitted)),
        engines_cpu_us_per_commit: None,
        machine_busy: None,
    })
}

/// Median and range of per-round ratios (confined / unconfined).
#[derive(Debug, Clone, PartialEq)]
pub struct RatioSummary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn ratio_summary(ratios: &[f64]) -> Option<RatioSummary> {
    let mut r: Vec<f64> = ratios.iter().copied().filter(|x| x.is_finite()).collect();
    if r.is_empty() {
        return None;
    }
    r.sort_by(f64::total_cmp);
    let mid = r.len() / 2;
    let median = if r.len() % 2 == 1 {
        r[mid]
    } else {
        (r[mid - 1] + r[mid]) / 2.0
    };
    Some(RatioSummary {
        median,
        min: r[0],
        max: r[r.len() - 1],
    })
}

// ---- the driver -------------------------------------------------------

pub fn run(cmd: BenchCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCmd::Load(args) => drive(args),
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// One run: fresh project, bench-mode serve, two reference engines.
/// `compiled` keeps the policy runtime's compile cache between runs, so
/// that start-up does not recompile the built-ins every time (not measured
/// either way).
fn one_run(
    exe: &Path,
    dir: &Path,
    compiled: &Path,
    args: &LoadArgs,
    confined: bool,
    serial: bool,
) -> anyhow::Result<LoadResult> {
    std::fs::create_dir_all(dir)?;
    let state = dir.join("state");
    let port = crate::ports::free_loopback_udp_port()?;
    let blender_kind = if args.blender_engine.is_some() {
        EngineKind::Blender
    } else {
        EngineKind::Reference
    };
    let config = dir.join("vibesync.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nproject_root = {dir:?}\n\n[link]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [log]\nfilter = \"warn\"\n\n\
             [[engines]]\nname = \"blender\"\nkind = \"{blender_kind}\"\n\n[[engines]]\nname = \"unity\"\nkind = \"reference\"\n",
            state = state.display().to_string(),
            dir = dir.display().to_string(),
            blender_kind = blender_kind.as_str(),
        ),
    )?;
    let engines = [
        EngineConfig {
            name: "blender".into(),
            kind: blender_kind,
        },
        EngineConfig {
            name: "unity".into(),
            kind: EngineKind::Reference,
        },
    ];
    crate::init::init(
        &state,
        &engines,
        format!("127.0.0.1:{port}").parse()?,
        false,
    )?;
    let cache = state.join("cache");
    if compiled.is_dir() {
        copy_dir(compiled, &cache)?;
    }
    let result = serve_and_load(exe, dir, &config, &state, args, confined, serial);
    if !compiled.is_dir() && cache.is_dir() {
        copy_dir(&cache, compiled)?;
    }
    result
}

fn serve_and_load(
    exe: &Path,
    dir: &Path,
    config: &Path,
    state: &Path,
    args: &LoadArgs,
    confined: bool,
    serial: bool,
) -> anyhow::Result<LoadResult> {
    let mut serve = Command::new(exe);
    serve
        .arg("serve")
        .arg("--config")
        .arg(config)
        .arg("--bench-submitters")
        .arg(args.submitters.to_string())
        .arg("--bench-seconds")
        .arg(args.seconds.to_string());
    if !confined {
        serve.arg("--no-sandbox");
    }
    if serial {
        serve.arg("--serial-sequencer");
    }
    if args.verify_after_provisional {
        serve.arg("--verify-after-provisional");
    }
    if args.wal_inline {
        serve.arg("--wal-inline");
    }
    if args.policy_block_in_place {
        serve.arg("--policy-block-in-place");
    }
    if args.single_command_frames {
        serve.arg("--single-command-frames");
    }
    if let Some(n) = args.worker_threads {
        serve.arg("--worker-threads").arg(n.to_string());
    }
    if args.commit_notices_alone {
        serve.arg("--commit-notices-alone");
    }
    if args.read_scene_each_intent {
        serve.arg("--bench-read-each-intent");
    }
    if args.scene_objects > 0 {
        serve
            .arg("--bench-scene-objects")
            .arg(args.scene_objects.to_string());
    }
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let mut serve = Proc(
        serve
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting serve")?,
    );
    let mut lines = BufReader::new(serve.0.stdout.take().context("serve stdout")?).lines();
    let mut next_line = || -> anyhow::Result<String> {
        match lines.next() {
            Some(l) => Ok(l?),
            None => bail!(
                "serve exited early; see {}",
                dir.join("serve.log").display()
            ),
        }
    };
    while next_line()? != LISTENING {}
    let engines: Vec<Proc> = [("blender", "blender"), ("unity", "unity")]
        .into_iter()
        .map(|(name, convention)| {
            if let (Some(cmd), "blender") = (&args.blender_engine, name) {
                return spawn_command(cmd, dir, state, name);
            }
            Command::new(exe)
                .arg("reference-engine")
                .arg("--pairing")
                .arg(crate::orchestrator::boot::pairing_path(state, name))
                .arg("--convention")
                .arg(convention)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map(Proc)
                .with_context(|| format!("starting reference engine `{name}`"))
        })
        .collect::<anyhow::Result<_>>()?;
    let pids: Vec<u32> = engines.iter().map(|p| p.0.id()).collect();
    let (mut open, mut close) = (None, None);
    let (mut machine_open, mut machine_close) = (None, None);
    loop {
        let line = next_line()?;
        if line == WINDOW_OPEN {
            open = children_cpu(&pids);
            machine_open = machine_jiffies();
        } else if line == WINDOW_CLOSE {
            close = children_cpu(&pids);
            machine_close = machine_jiffies();
        } else if let Some(json) = line.strip_prefix(RESULT) {
            let mut r: LoadResult =
                serde_json::from_str(json).context("parsing the bench result")?;
            r.engines_cpu_us_per_commit = open.zip(close).and_then(|(a, b)| {
                (r.committed > 0)
                    .then(|| b.saturating_sub(a).as_secs_f64() * 1e6 / r.committed as f64)
            });
            r.machine_busy = machine_open.zip(machine_close).and_then(|(a, b)| {
                let total = b.1.saturating_sub(a.1);
                (total > 0).then(|| b.0.saturating_sub(a.0) as f64 / total as f64)
            });
            return Ok(r);
        }
    }
}

/// Busy and total CPU time of the whole machine so far, in clock ticks
/// summed over every core (the `cpu` line of `/proc/stat`: idle and
/// iowait are not busy); `None` when it cannot be read.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8) // user nice system idle iowait irq softirq steal
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = fields.iter().sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some((total - idle, total))
}

/// User + system CPU time of these processes together (all their
/// threads), from `/proc/PID/stat`; `None` when one cannot be read.
fn children_cpu(pids: &[u32]) -> Option<Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    let mut total = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14 and stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        total += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_secs_f64(total as f64 / ticks as f64))
}

/// Starts `cmd --pairing <engine's pairing file>` as engine `name`.
fn spawn_command(cmd: &str, dir: &Path, state: &Path, name: &str) -> anyhow::Result<Proc> {
    let mut words = cmd.split_whitespace();
    let program = words
        .next()
        .context("--blender-engine is empty: give the command that starts the engine")?;
    Command::new(program)
        .args(words)
        .arg("--pairing")
        .arg(crate::orchestrator::boot::pairing_path(state, name))
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(dir.join(format!("{name}.out")))?)
        .stderr(std::fs::File::create(dir.join(format!("{name}.log")))?)
        .spawn()
        .map(Proc)
        .with_context(|| format!("starting engine `{name}` as `{cmd}`"))
}

fn drive(args: LoadArgs) -> anyhow::Result<ExitCode> {
    if args.submitters == 0 || args.seconds == 0 || args.rounds == 0 {
        bail!("--submitters, --seconds and --rounds must be at least 1");
    }
    let exe = std::env::current_exe()?;
    let root = std::env::temp_dir().join(format!("vibesync-bench-{}", std::process::id()));
    let sequencers: &[bool] = match args.sequencer {
        SequencerChoice::Concurrent => &[false],
        SequencerChoice::Serial => &[true],
        SequencerChoice::Both => &[false, true],
    };
    let mut runs: Vec<LoadResult> = Vec::new();
    let mut ratios = Vec::new();
    for round in 0..args.rounds {
        // ABBA: alternate which mode goes first so drift hits both.
        let order: Vec<bool> = match (args.confined_only, round % 2) {
            (true, _) => vec![true],
            (false, 0) => vec![true, false],
            (false, _) => vec![false, true],
        };
        for &serial in sequencers {
            let mut pair: BTreeMap<bool, LoadResult> = BTreeMap::new();
            for &confined in &order {
                let label = format!(
                    "{}-{}",
                    if serial { "serial" } else { "concurrent" },
                    if confined { "confined" } else { "unconfined" }
                );
                eprint!("round {round}, {label}: ");
                std::io::stderr().flush().ok();
                let dir = root.join(format!("round{round}-{label}"));
                let r = one_run(&exe, &dir, &root.join("compiled"), &args, confined, serial)?;
                eprintln!(
                    "{:.0} committed/s, provisional p50 {} µs p99 {} µs, commit p50 {} µs p99 {} µs, refused {:?}",
                    r.committed_per_s,
                    r.to_provisional.p50_us,
                    r.to_provisional.p99_us,
                    r.to_commit.p50_us,
                    r.to_commit.p99_us,
                    r.refused
                );
                if let Some(p) = &r.pipeline {
                    eprintln!(
                        "    {:.2} group commits per commit, {:.1} records each, {:.0} µs each; {:.1} policy pipeline runs (three policies) per intent, {:.0} µs each; serve CPU {} µs per commit",
                        p.group_commits_per_commit,
                        p.records_per_group_commit,
                        p.group_commit_mean_us,
                        p.policy_evaluations_per_intent,
                        p.policy_mean_us,
                        p.cpu_us_per_commit
                            .map_or("unreadable".into(), |c| format!("{c:.0}"))
                    );
                }
                if let Some(e) = r.engines_cpu_us_per_commit {
                    eprintln!("    engines' CPU (both together) {e:.0} µs per commit");
                }
                if let Some(b) = r.machine_busy {
                    eprintln!(
                        "    machine busy {:.0} % (all cores, every process)",
                        b * 100.0
                    );
                }
                if args.json {
                    println!("{}", serde_json::to_string(&r)?);
                }
                pair.insert(confined, r.clone());
                runs.push(r);
            }
            if let (Some(c), Some(u)) = (pair.get(&true), pair.get(&false)) {
                ratios.push(Ratio {
                    serial,
                    commit_p50: c.to_commit.p50_us as f64 / u.to_commit.p50_us as f64,
                    provisional_p50: c.to_provisional.p50_us as f64
                        / u.to_provisional.p50_us as f64,
                    committed_per_s: c.committed_per_s / u.committed_per_s,
                    // NaN when either side is missing: left out of the summary.
                    cpu_per_commit: c
                        .pipeline
                        .as_ref()
                        .and_then(|p| p.cpu_us_per_commit)
                        .zip(u.pipeline.as_ref().and_then(|p| p.cpu_us_per_commit))
                        .map_or(f64::NAN, |(c, u)| c / u),
                });
            }
        }
    }
    print!("{}", render(&args, &runs, &ratios));
    if args.keep {
        println!("runs kept in {}", root.display());
    } else {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(ExitCode::SUCCESS)
}

/// Confined / unconfined, one round, one sequencer mode.
struct Ratio {
    serial: bool,
    commit_p50: f64,
    provisional_p50: f64,
    committed_per_s: f64,
    cpu_per_commit: f64,
}

fn render(args: &LoadArgs, runs: &[LoadResult], ratios: &[Ratio]) -> String {
    let mut out = format!(
        "\nvibesync bench load: {} submitters, {} s per run, {} over QUIC\n\n\
         | run | sequencer | sandbox | submitted/s | committed/s | provisional p50 / p99 | commit p50 / p99 | refused |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
        args.submitters,
        args.seconds,
        match &args.blender_engine {
            Some(cmd) => format!("engine `blender` = `{cmd}` and a reference engine `unity`"),
            None => "two reference engines".to_owned(),
        }
    );
    for (i, r) in runs.iter().enumerate() {
        let refused: Vec<String> = r.refused.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        out += &format!(
            "| {i} | {} | {} | {:.0} | {:.0} | {:.2} / {:.2} ms | {:.2} / {:.2} ms | {} |\n",
            if r.serial { "serial" } else { "concurrent" },
            if r.confined { "on" } else { "off" },
            r.submitted_per_s,
            r.committed_per_s,
            r.to_provisional.p50_us as f64 / 1000.0,
            r.to_provisional.p99_us as f64 / 1000.0,
            r.to_commit.p50_us as f64 / 1000.0,
            r.to_commit.p99_us as f64 / 1000.0,
            if refused.is_empty() {
                "-".into()
            } else {
                refused.join(", ")
            },
        );
    }
    let show = |name: &str, xs: Vec<f64>| match ratio_summary(&xs) {
        Some(s) => format!(
            "{name}: median {:.3} (rounds: {})\n",
            s.median,
            xs.iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        None => String::new(),
    };
    for serial in [false, true] {
        let rs: Vec<&Ratio> = ratios.iter().filter(|r| r.serial == serial).collect();
        if rs.is_empty() {
            continue;
        }
        out += &format!(
            "\nconfined / unconfined, {} sequencer, per round:\n",
            if serial { "serial" } else { "concurrent" }
        );
        out += &show(
            "  commit latency p50",
            rs.iter().map(|r| r.commit_p50).collect(),
        );
        out += &show(
            "  provisional latency p50",
            rs.iter().map(|r| r.provisional_p50).collect(),
        );
        out += &show(
            "  committed/s",
            rs.iter().map(|r| r.committed_per_s).collect(),
        );
        out += &show(
            "  serve CPU per commit",
            rs.iter().map(|r| r.cpu_per_commit).collect(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let l = Latencies::of(&samples);
        assert_eq!((l.n, l.p50_us, l.p99_us, l.max_us), (100, 50, 99, 100));
        let one = Latencies::of(&[Duration::from_micros(7)]);
        assert_eq!((one.p50_us, one.p99_us, one.max_us), (7, 7, 7));
        assert_eq!(Latencies::of(&[]), Latencies::default());
    }

    #[test]
    fn the_machine_clock_counts_busy_ticks_within_all_ticks() {
        let (busy, total) = machine_jiffies().expect("/proc/stat is readable");
        assert!(total > 0 && busy <= total, "{busy} of {total}");
        std::hint::black_box((0..2_000_000u64).sum::<u64>());
        let (busy2, total2) = machine_jiffies().unwrap();
        assert!(busy2 >= busy && total2 >= total);
    }

    #[test]
    fn ratio_summary_is_median_and_range() {
        let s = ratio_summary(&[1.2, 0.9, 1.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max), (1.0, 0.9, 1.2));
        let s = ratio_summary(&[1.0, 1.1]).unwrap();
        assert!((s.median - 1.05).abs() < 1e-12);
        assert!(ratio_summary(&[f64::INFINITY]).is_none());
    }
}
