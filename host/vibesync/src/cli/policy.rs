//! `vibesync policy ...`: the policy author's and the reviewer's tools.
//!
//! Thin: every subcommand parses its arguments, calls
//! `vibesync-policy-runtime` (inspect, lock, testing, review), and prints.
//! The one piece of logic that lives here, the decision log read back from
//! the WAL ([`decision_log`]), is a pure function over journal records.
//! `bench` (first call, warm p50/p99, cold vs cached start-up) is in
//! [`bench`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use vibesync_policy_runtime::{
    Lockfile, Pipeline, Policy, PolicyConfigs, Runtime, RuntimeConfig, inspect, lock, module_name,
    review, testing,
};
use vibesync_policy_types as t;
use vibesync_wal::Record;

pub mod bench;

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
    /// Approve every `*.wasm` in DIR: write DIR/policies.lock. Modules whose
    /// hash did not change keep their original reviewer and timestamp.
    Lock {
        dir: PathBuf,
        /// Who reviewed the modules (recorded in the lock with the time).
        #[arg(long)]
        reviewer: String,
    },
    /// Approve one module, DIR/MODULE.wasm, into DIR/policies.lock; every
    /// other entry stays as it was.
    Approve {
        dir: PathBuf,
        /// Module name (the file stem, e.g. `team-naming`).
        module: String,
        /// Who reviewed it (recorded in the lock with the time).
        #[arg(long)]
        reviewer: String,
    },
    /// Compare two versions of a module: hash, size, imports (with what this
    /// host grants them) and exports, and with `--fixtures`, which cases
    /// change verdict. Exits 1 if any verdict changed.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// Fixture files (`*.json`) to run against both versions.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The decision log: which module (by hash) decided what for which tid,
    /// and every policy swap, read from the write-ahead log.
    Decisions {
        /// The WAL directory.
        #[arg(long, default_value = ".vibesync/wal")]
        wal: PathBuf,
        /// Only decisions by modules whose SHA-256 starts with this.
        #[arg(long)]
        module: Option<String>,
        /// Only this transaction.
        #[arg(long)]
        tid: Option<u64>,
        /// Only this policy (module name).
        #[arg(long)]
        policy: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Measure evaluation latency (first call, warm p50/p99) and start-up
    /// (cold compile vs precompiled cache) of the built-ins and MODULES.
    Bench(bench::BenchArgs),
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
    /// Run fixture files (`*.json`) in each DIR through the built-in
    /// policies and the modules given; print a pass/fail table; exit 1 if any
    /// case fails.
    Test {
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Load every approved module of this directory too.
        #[arg(long)]
        modules: Option<PathBuf>,
        /// Load this module too (approved by the policies.lock beside it,
        /// unless `--unlocked`). Repeatable.
        #[arg(long = "module")]
        module_files: Vec<PathBuf>,
        /// Load `--module` files without checking a lock (an author testing a
        /// build before review).
        #[arg(long)]
        unlocked: bool,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: PolicyCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCmd::Inspect { file, json } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let report = inspect::inspect(&runtime()?, &bytes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render(&file.display().to_string()));
            }
            Ok(if report.world_mismatch.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        PolicyCmd::Lock { dir, reviewer } => {
            let lock = Lockfile::approve_dir(&dir, &reviewer)?;
            for (name, e) in &lock.modules {
                println!(
                    "{name:<24} {}  {:>9} bytes  {}  {}",
                    e.sha256, e.size, e.reviewer, e.approved_at
                );
            }
            println!(
                "wrote {} ({} modules)",
                dir.join(lock::LOCK_FILE).display(),
                lock.modules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Approve {
            dir,
            module,
            reviewer,
        } => {
            let lock = Lockfile::approve_module(&dir, &module, &reviewer)?;
            let e = &lock.modules[&module];
            println!(
                "{module:<24} {}  {:>9} bytes  {}  {}",
                e.sha256, e.size, e.reviewer, e.approved_at
            );
            println!(
                "wrote {} ({} modules)",
                dir.join(lock::LOCK_FILE).display(),
                lock.modules.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Diff {
            old,
            new,
            fixtures,
            json,
        } => {
            let rt = runtime()?;
            let (old_bytes, new_bytes) = (read_file(&old)?, read_file(&new)?);
            let (old_report, new_report) = (
                inspect::inspect(&rt, &old_bytes)?,
                inspect::inspect(&rt, &new_bytes)?,
            );
            let tests = match &fixtures {
                Some(dir) => {
                    let run = |file: &Path, bytes: &[u8]| -> anyhow::Result<testing::TestReport> {
                        let p = rt.load_for_review(&module_name(file), bytes)?;
                        Ok(testing::run_dir(&rt, &|_: &str| Some(&p), dir)?)
                    };
                    Some((run(&old, &old_bytes)?, run(&new, &new_bytes)?))
                }
                None => None,
            };
            let d = review::diff(
                &old_report,
                &new_report,
                tests.as_ref().map(|(o, n)| (o, n)),
            );
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!(
                    "{}",
                    d.render(&old.display().to_string(), &new.display().to_string())
                );
            }
            Ok(if d.verdict_changes.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PolicyCmd::Decisions {
            wal,
            module,
            tid,
            policy,
            json,
        } => {
            if vibesync_wal::segments(&wal)?.is_empty() {
                anyhow::bail!(
                    "no WAL segments (*.wal) in {}; pass the journal directory with --wal",
                    wal.display()
                );
            }
            let mut records = Vec::new();
            vibesync_wal::read_all(&wal, |_, e| {
                records.push((e.seq, e.at_ms, e.record.clone()))
            })?;
            let filter = DecisionFilter {
                module,
                tid,
                policy,
            };
            let log = decision_log(records.iter().map(|(s, a, r)| (*s, *a, r)), &filter);
            if json {
                println!("{}", serde_json::to_string_pretty(&log)?);
            } else {
                print!("{}", render_decisions(&log));
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Bench(args) => bench::run(args, runtime_config()),
        PolicyCmd::Eval {
            file,
            intent,
            context,
            config,
            unlocked,
            json,
        } => {
            let rt = runtime()?;
            let policy = if unlocked {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                eprintln!(
                    "warning: --unlocked: {} is evaluated without checking policies.lock",
                    file.display()
                );
                rt.load_for_review(&module_name(&file), &bytes)?
            } else {
                rt.load_file(&file)?
            };
            let intent = read_intent(&intent)?;
            let ctx = match context {
                Some(p) => serde_json::from_value(read_json(&p)?)
                    .with_context(|| format!("{} is not a context", p.display()))?,
                None => t::Context {
                    project_root: t::fixture::DEFAULT_PROJECT_ROOT.into(),
                    ..Default::default()
                },
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
                    println!(
                        "  {:?} {} {}: {}",
                        f.severity,
                        f.rule,
                        if f.path.is_empty() { "-" } else { &f.path },
                        f.message
                    );
                }
            }
            Ok(if decision.verdict.is_deny() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        PolicyCmd::Test {
            dirs,
            modules,
            module_files,
            unlocked,
            json,
        } => {
            let rt = runtime()?;
            let builtins = vibesync_policies::BUILTINS
                .iter()
                .map(|b| (b.name, b.wasm, b.sha256));
            let mut policies: Vec<Policy> = vibesync_policy_runtime::load_builtins(&rt, builtins)?;
            if let Some(m) = modules {
                let lock = Lockfile::read_dir(&m)?;
                for (_, path) in lock::wasm_files(&m)? {
                    policies.push(rt.load_file_with(&path, &lock, &m.join(lock::LOCK_FILE))?);
                }
            }
            for file in &module_files {
                policies.push(if unlocked {
                    eprintln!(
                        "warning: --unlocked: {} is tested without checking policies.lock",
                        file.display()
                    );
                    rt.load_for_review(&module_name(file), &read_file(file)?)?
                } else {
                    rt.load_file(file)?
                });
            }
            // A module's own `metadata().name` is what fixture files name.
            let lookup = |name: &str| {
                policies
                    .iter()
                    .rev()
                    .find(|p| p.info().name == name || p.name() == name)
            };
            let mut report = testing::TestReport::default();
            for dir in &dirs {
                report
                    .results
                    .extend(testing::run_dir(&rt, &lookup, dir)?.results);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            Ok(if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

fn runtime_config() -> RuntimeConfig {
    RuntimeConfig {
        cache_dir: Some(cache_dir()),
        ..Default::default()
    }
}

fn runtime() -> anyhow::Result<Runtime> {
    Ok(Runtime::new(runtime_config())?)
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Which journal records `policy decisions` shows.
#[derive(Debug, Default)]
pub struct DecisionFilter {
    /// Hex prefix of the module's SHA-256 (case-insensitive).
    pub module: Option<String>,
    pub tid: Option<u64>,
    pub policy: Option<String>,
}

/// One line of the decision log.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LogLine {
    /// A policy's verdict on a transaction.
    Decision {
        seq: u64,
        at: String,
        tid: u64,
        policy: String,
        module_sha256: String,
        verdict: String,
        /// The rules of its findings, in order.
        rules: Vec<String>,
        /// How the transaction ended, if the journal says so yet.
        outcome: Option<String>,
    },
    /// A module was added, replaced or removed while serving.
    Swap {
        seq: u64,
        at: String,
        policy: String,
        old_sha256: Option<String>,
        new_sha256: String,
        operator: String,
    },
}

/// The decision log of a journal: every policy verdict and every swap that
/// passes `filter`, in journal order, each verdict with its transaction's
/// final outcome. Pure.
pub fn decision_log<'a>(
    records: impl Iterator<Item = (u64, u64, &'a Record)> + Clone,
    filter: &DecisionFilter,
) -> Vec<LogLine> {
    let module = filter.module.as_ref().map(|m| m.to_ascii_lowercase());
    let module_ok = |hash: &str| module.as_ref().is_none_or(|m| hash.starts_with(m.as_str()));
    let policy_ok = |p: &str| filter.policy.as_ref().is_none_or(|f| f == p);
    let mut outcomes = std::collections::HashMap::new();
    for (_, _, r) in records.clone() {
        let (tid, outcome) = match r {
            Record::Commit {
                tid, scene_version, ..
            } => (*tid, format!("committed v{scene_version}")),
            Record::Rollback { tid, .. } => (*tid, "rolled back".to_owned()),
            Record::Denied { tid, .. } => (*tid, "denied".to_owned()),
            Record::Refused { tid, rule, .. } => (*tid, format!("refused ({rule})")),
            Record::Escalated { tid, .. } => (*tid, "escalated".to_owned()),
            Record::OperatorDecision {
                tid,
                operator,
                approve,
                ..
            } => (
                *tid,
                format!(
                    "{} by {operator}",
                    if *approve { "approved" } else { "denied" }
                ),
            ),
            _ => continue,
        };
        outcomes.insert(tid, outcome);
    }
    let at =
        |ms: u64| lock::rfc3339_utc(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    records
        .filter_map(|(seq, at_ms, r)| match r {
            Record::Policy(p)
                if filter.tid.is_none_or(|t| t == p.tid)
                    && module_ok(&p.module_hash)
                    && policy_ok(&p.policy) =>
            {
                Some(LogLine::Decision {
                    seq,
                    at: at(at_ms),
                    tid: p.tid,
                    policy: p.policy.clone(),
                    module_sha256: p.module_hash.clone(),
                    verdict: p.verdict.clone(),
                    rules: rules_of(&p.findings),
                    outcome: outcomes.get(&p.tid).cloned(),
                })
            }
            Record::PolicySwap {
                policy,
                old_hash,
                new_hash,
                operator,
            } if filter.tid.is_none()
                && policy_ok(policy)
                && (module_ok(new_hash) || old_hash.as_deref().is_some_and(&module_ok)) =>
            {
                Some(LogLine::Swap {
                    seq,
                    at: at(at_ms),
                    policy: policy.clone(),
                    old_sha256: old_hash.clone(),
                    new_sha256: new_hash.clone(),
                    operator: operator.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The `rule` of every finding in a policy record's evidence (an object with
/// a `findings` list, or a bare list).
fn rules_of(evidence: &serde_json::Value) -> Vec<String> {
    let list = evidence.get("findings").unwrap_or(evidence);
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.get("rule")?.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn render_decisions(log: &[LogLine]) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{:>6}  {:<20}  {:>6}  {:<14}  {:<12}  {:<8}  {:<22}  rules\n",
        "seq", "at", "tid", "policy", "module", "verdict", "outcome"
    );
    let short = |h: &str| h.chars().take(12).collect::<String>();
    for l in log {
        match l {
            LogLine::Decision {
                seq,
                at,
                tid,
                policy,
                module_sha256,
                verdict,
                rules,
                outcome,
            } => {
                let _ = writeln!(
                    s,
                    "{seq:>6}  {at:<20}  {tid:>6}  {policy:<14}  {:<12}  {verdict:<8}  {:<22}  {}",
                    short(module_sha256),
                    outcome.as_deref().unwrap_or("-"),
                    if rules.is_empty() {
                        "-".to_owned()
                    } else {
                        rules.join(", ")
                    }
                );
            }
            LogLine::Swap {
                seq,
                at,
                policy,
                old_sha256,
                new_sha256,
                operator,
            } => {
                let _ = writeln!(
                    s,
                    "{seq:>6}  {at:<20}  {:>6}  {policy:<14}  swap {} -> {} by {operator}",
                    "-",
                    old_sha256.as_deref().map_or("none".to_owned(), short),
                    short(new_sha256)
                );
            }
        }
    }
    let decisions = log
        .iter()
        .filter(|l| matches!(l, LogLine::Decision { .. }))
        .count();
    let _ = writeln!(
        s,
        "\n{decisions} decisions, {} swaps",
        log.len() - decisions
    );
    s
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
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    t::json::parse_lenient(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn read_configs(path: &Path) -> anyhow::Result<PolicyConfigs> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
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
        format!(
            "{} is not an intent (expected {{\"op\": NAME, \"args\": {{...}}}})",
            path.display()
        )
    })?;
    Ok(t::Intent::for_op(
        f.tid,
        f.source,
        &f.op,
        &f.args,
        0,
        1,
        f.engines.unwrap_or_else(|| {
            t::fixture::FIXTURE_ENGINES
                .iter()
                .map(|s| s.to_string())
                .collect()
        }),
        f.objects,
        f.rationale
            .unwrap_or_else(|| t::fixture::DEFAULT_RATIONALE.into()),
        f.scene_version,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_wal::PolicyRecord;

    const A: &str = "aaaa1111";
    const B: &str = "bbbb2222";

    fn policy(tid: u64, name: &str, hash: &str, verdict: &str, rules: &[&str]) -> Record {
        let findings: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| serde_json::json!({"rule": r, "message": "m"}))
            .collect();
        Record::Policy(PolicyRecord {
            tid,
            policy: name.into(),
            module_hash: hash.into(),
            verdict: verdict.into(),
            findings: serde_json::json!({"op_index": 0, "findings": findings, "duration_ns": 5}),
        })
    }

    fn journal() -> Vec<(u64, u64, Record)> {
        vec![
            (1, 0, policy(1, "team", A, "allow", &[])),
            (
                2,
                1000,
                Record::Denied {
                    tid: 2,
                    reason: "r".into(),
                },
            ),
            (
                3,
                2000,
                policy(2, "team", A, "deny", &["team.prefix", "team.budget"]),
            ),
            (
                4,
                3000,
                Record::PolicySwap {
                    policy: "team".into(),
                    old_hash: Some(A.into()),
                    new_hash: B.into(),
                    operator: "ctl".into(),
                },
            ),
            (5, 4000, policy(3, "team", B, "allow", &[])),
            (6, 4000, policy(3, "firewall", "cccc", "allow", &[])),
        ]
    }

    fn run(filter: DecisionFilter) -> Vec<LogLine> {
        let j = journal();
        decision_log(j.iter().map(|(s, a, r)| (*s, *a, r)), &filter)
    }

    fn seqs(log: &[LogLine]) -> Vec<u64> {
        log.iter()
            .map(|l| match l {
                LogLine::Decision { seq, .. } | LogLine::Swap { seq, .. } => *seq,
            })
            .collect()
    }

    #[test]
    fn every_verdict_and_swap_in_journal_order() {
        let log = run(DecisionFilter::default());
        assert_eq!(seqs(&log), [1, 3, 4, 5, 6]);
        let LogLine::Decision {
            tid,
            rules,
            outcome,
            at,
            ..
        } = &log[1]
        else {
            panic!("{log:?}")
        };
        assert_eq!(
            (*tid, rules.clone(), outcome.as_deref()),
            (
                2,
                vec!["team.prefix".to_owned(), "team.budget".to_owned()],
                Some("denied")
            )
        );
        assert_eq!(at, "1970-01-01T00:00:02Z");
        let text = render_decisions(&log);
        assert!(text.contains("swap aaaa1111 -> bbbb2222 by ctl"), "{text}");
        assert!(text.contains("4 decisions, 1 swaps"), "{text}");
    }

    #[test]
    fn filters_by_module_prefix_tid_and_policy() {
        assert_eq!(
            seqs(&run(DecisionFilter {
                module: Some("AAAA".into()),
                ..Default::default()
            })),
            [1, 3, 4]
        );
        assert_eq!(
            seqs(&run(DecisionFilter {
                module: Some(B.into()),
                ..Default::default()
            })),
            [4, 5]
        );
        assert_eq!(
            seqs(&run(DecisionFilter {
                tid: Some(3),
                ..Default::default()
            })),
            [5, 6]
        );
        assert_eq!(
            seqs(&run(DecisionFilter {
                tid: Some(3),
                policy: Some("firewall".into()),
                ..Default::default()
            })),
            [6]
        );
        assert!(
            run(DecisionFilter {
                module: Some("ffff".into()),
                ..Default::default()
            })
            .is_empty()
        );
    }
}
