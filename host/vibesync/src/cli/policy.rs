//! `vibesync policy ...`: the reviewer's tools. Thin: every subcommand parses
//! its arguments, calls `vibesync-policy-runtime`, and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use vibesync_policy_runtime::{
    Lockfile, Pipeline, Policy, PolicyConfigs, Runtime, RuntimeConfig, inspect, lock, module_name, testing,
};
use vibesync_policy_types as t;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Show a module's hash, size, world, imports and exports, and what this
    /// host grants each import.
    Inspect {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Approve every `*.wasm` in DIR: write DIR/policies.lock.
    Lock {
        dir: PathBuf,
        /// Who reviewed the modules.
        #[arg(long)]
        reviewer: String,
    },
    /// Evaluate one module on one intent and print the decision.
    Eval {
        file: PathBuf,
        /// The intent: `{"op": ..., "args": {...}}` plus optional `tid`,
        /// `source`, `rationale`, `objects`, `scene_version`, `engines`.
        #[arg(long)]
        intent: PathBuf,
        /// The context JSON (default: an empty scene, project root `/project`).
        #[arg(long)]
        context: Option<PathBuf>,
        /// Policy configuration: TOML (`[name] ...`) or JSON (`{"name": {...}}`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Evaluate a module that DIR/policies.lock does not approve (review only).
        #[arg(long)]
        unlocked: bool,
        /// Print the decision record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run fixture files (`*.json`) in DIR through the built-in policies and,
    /// with `--modules`, the approved modules of another directory.
    Test {
        dir: PathBuf,
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: PolicyCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCmd::Inspect { file, json } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let report = inspect::inspect(&runtime()?, &bytes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render(&file.display().to_string()));
            }
            Ok(if report.world_mismatch.is_some() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        PolicyCmd::Lock { dir, reviewer } => {
            let lock = Lockfile::approve_dir(&dir, &reviewer)?;
            for (name, e) in &lock.modules {
                println!("{name:<24} {}  {:>9} bytes  {}  {}", e.sha256, e.size, e.reviewer, e.approved_at);
            }
            println!("wrote {} ({} modules)", dir.join(lock::LOCK_FILE).display(), lock.modules.len());
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Eval { file, intent, context, config, unlocked, json } => {
            let rt = runtime()?;
            let policy = if unlocked {
                let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
                eprintln!("warning: --unlocked: {} is evaluated without checking policies.lock", file.display());
                rt.load_for_review(&module_name(&file), &bytes)?
            } else {
                rt.load_file(&file)?
            };
            let intent = read_intent(&intent)?;
            let ctx = match context {
                Some(p) => serde_json::from_value(read_json(&p)?).with_context(|| format!("{} is not a context", p.display()))?,
                None => t::Context { project_root: t::fixture::DEFAULT_PROJECT_ROOT.into(), ..Default::default() },
            };
            let configs = match config {
                Some(p) => read_configs(&p)?,
                None => PolicyConfigs::default(),
            };
            let decision = Pipeline::new(rt, vec![policy], configs).evaluate(&intent, &ctx);
            if json {
                println!("{}", serde_json::to_string_pretty(&decision)?);
            } else {
                for r in &decision.runs {
                    println!(
                        "{} (sha256 {}): {}  [{:.1} µs, {} fuel{}]",
                        r.policy,
                        r.module_sha256.short(),
                        r.verdict.kind(),
                        r.duration_ns as f64 / 1e3,
                        r.fuel_used,
                        r.fault.map(|f| format!(", fault: {f}")).unwrap_or_default()
                    );
                }
                println!("verdict: {}", decision.verdict.kind());
                for f in decision.verdict.findings() {
                    println!("  {:?} {} {}: {}", f.severity, f.rule, if f.path.is_empty() { "-" } else { &f.path }, f.message);
                }
            }
            Ok(if decision.verdict.is_deny() { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        PolicyCmd::Test { dir, modules, json } => {
            let rt = runtime()?;
            let builtins = vibesync_policies::BUILTINS.iter().map(|b| (b.name, b.wasm, b.sha256));
            let mut policies: Vec<Policy> = vibesync_policy_runtime::load_builtins(&rt, builtins)?;
            if let Some(m) = modules {
                let lock = Lockfile::read_dir(&m)?;
                for (_, path) in lock::wasm_files(&m)? {
                    policies.push(rt.load_file_with(&path, &lock, &m.join(lock::LOCK_FILE))?);
                }
            }
            // A module's own `metadata().name` is what fixture files name.
            let lookup = |name: &str| policies.iter().rev().find(|p| p.info().name == name || p.name() == name);
            let report = testing::run_dir(&rt, &lookup, &dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
    }
}

fn runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig { cache_dir: Some(cache_dir()), ..Default::default() })?)
}

/// `$VIBESYNC_CACHE_DIR`, else `$XDG_CACHE_HOME/vibesync/policies`, else
/// `$HOME/.cache/vibesync/policies`, else a temporary directory.
fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VIBESYNC_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("vibesync").join("policies")
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    t::json::parse_lenient(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn read_configs(path: &Path) -> anyhow::Result<PolicyConfigs> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "toml") {
        PolicyConfigs::from_toml(&text)
    } else {
        PolicyConfigs::from_json(&text)
    };
    parsed.with_context(|| format!("in {}", path.display()))
}

/// An intent file: `{"op", "args", ...}` with defaults like a fixture case.
fn read_intent(path: &Path) -> anyhow::Result<t::Intent> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct IntentFile {
        op: String,
        args: serde_json::Value,
        #[serde(default)]
        tid: u64,
        #[serde(default)]
        source: t::Source,
        rationale: Option<String>,
        #[serde(default)]
        objects: Vec<String>,
        #[serde(default)]
        scene_version: u64,
        engines: Option<Vec<String>>,
    }
    let f: IntentFile = serde_json::from_value(read_json(path)?).with_context(|| {
        format!("{} is not an intent (expected {{\"op\": NAME, \"args\": {{...}}}})", path.display())
    })?;
    Ok(t::Intent::for_op(
        f.tid,
        f.source,
        &f.op,
        &f.args,
        0,
        1,
        f.engines.unwrap_or_else(|| t::fixture::FIXTURE_ENGINES.iter().map(|s| s.to_string()).collect()),
        f.objects,
        f.rationale.unwrap_or_else(|| t::fixture::DEFAULT_RATIONALE.into()),
        f.scene_version,
    ))
}
