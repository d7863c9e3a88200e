//! Start-up of the real core: open the WAL (recovering it), load and lock
//! the policy set, bind the QUIC link with every paired engine's bootstrap
//! secret, and hand the core task its parts.
//!
//! Order matters and fails closed: a WAL that does not verify, a policy that
//! is not approved, or an engine without a pairing file stops start-up with
//! an error that says which file and what to do.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use vibesync_canonical::Quantum;
use vibesync_ledger::Sequencer;
use vibesync_link::{Link, LinkConfig};
use vibesync_policy_runtime::{Pipeline, PolicyConfigs, Runtime, RuntimeConfig, load_builtins};
use vibesync_protocol::Pairing;
use vibesync_wal::{Wal, WalOptions};

use super::Parts;
use crate::config::Config;
use crate::metrics::Metrics;

/// The WAL lives here, under the state directory.
pub fn wal_dir(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("wal")
}

/// The pairing file of `engine` (written by `vibesync init`).
pub fn pairing_path(state_dir: &Path, engine: &str) -> std::path::PathBuf {
    state_dir.join("pairing").join(format!("{engine}.json"))
}

/// The built-in policies, then the approved modules of the policy directory.
pub fn pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    let b = &config.policies.budgets;
    let runtime = Runtime::new(RuntimeConfig {
        budgets: vibesync_policy_runtime::Budgets {
            fuel: b.fuel,
            memory_bytes: b.memory_bytes as usize,
            deadline: Duration::from_millis(b.deadline_ms),
            ..Default::default()
        },
        cache_dir: Some(config.state_dir.join("cache")),
        ..Default::default()
    })
    .context("starting the policy runtime")?;
    let builtins = load_builtins(
        &runtime,
        vibesync_policies::BUILTINS
            .iter()
            .map(|b| (b.name, b.wasm, b.sha256)),
    )
    .context("loading the built-in policies")?;
    let mut configs = BTreeMap::new();
    for (name, table) in &config.policies.config {
        configs.insert(
            name.clone(),
            serde_json::to_value(table).context("policy configuration")?,
        );
    }
    let configs = PolicyConfigs(configs);
    let dir = config.policy_dir();
    if dir.is_dir() {
        Pipeline::with_dir(runtime, builtins, dir.clone(), configs).with_context(|| {
            format!(
                "loading the policies of {} (each must be approved in its policies.lock)",
                dir.display()
            )
        })
    } else {
        Ok(Pipeline::new(runtime, builtins, configs))
    }
}

/// How the sequencer orders transactions (see `docs/transactions.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequencing {
    /// Most transactions active at once (disjoint footprints only).
    pub max_active: usize,
    pub stale_rule: vibesync_ledger::StaleRule,
    /// Ask engines for the read-back right behind the apply
    /// (`vibesync_ledger::Config::verify_with_apply`).
    pub verify_with_apply: bool,
    /// For comparison only: the core waits for each group commit
    /// (`Parts::wal_inline`).
    pub wal_inline: bool,
    /// For comparison only: every policy evaluation inside
    /// `block_in_place` (`Parts::policy_block_in_place`).
    pub policy_block_in_place: bool,
    /// Commands queued together to an engine leave in one `commands` frame
    /// (`vibesync_link::LinkConfig::batch_frames`); `false`, for comparison
    /// only, sends one `command` frame each.
    pub batch_frames: bool,
    /// `Parts::hold_commit_notices`.
    pub hold_commit_notices: bool,
}

impl Sequencing {
    /// What `serve` runs: writers on different objects proceed together,
    /// and each engine's read-back is asked for right behind its apply.
    pub const CONCURRENT: Sequencing = Sequencing {
        max_active: 64,
        stale_rule: vibesync_ledger::StaleRule::Footprint,
        verify_with_apply: true,
        wal_inline: false,
        policy_block_in_place: false,
        batch_frames: true,
        hold_commit_notices: true,
    };
    /// One transaction at a time, any commit makes older reads stale,
    /// read-back after the provisional commit (the sequencer's defaults;
    /// `serve --serial-sequencer`).
    pub const SERIAL: Sequencing = Sequencing {
        max_active: 1,
        stale_rule: vibesync_ledger::StaleRule::Scene,
        verify_with_apply: false,
        wal_inline: false,
        policy_block_in_place: false,
        batch_frames: true,
        hold_commit_notices: true,
    };
}

/// Opens everything the core owns. Must run inside the tokio runtime.
pub async fn open(
    config: &Config,
    metrics: Arc<Metrics>,
    sequencing: Sequencing,
) -> anyhow::Result<Parts> {
    let state = &config.state_dir;
    if config.engines.is_empty() {
        bail!(
            "no engines are configured; add [[engines]] entries to the config (see vibesync.example.toml)"
        );
    }

    let wal_path = wal_dir(state);
    let (wal, recovered) = Wal::open(&wal_path, WalOptions::default()).with_context(|| {
        format!(
            "opening the WAL in {} (`vibesync wal verify {}` shows what is wrong)",
            wal_path.display(),
            wal_path.display()
        )
    })?;
    if let Some(t) = &recovered.torn_tail {
        tracing::warn!(segment = %t.segment.display(), offset = t.offset, "cut a torn final record (an incomplete write from a crash)");
    }
    tracing::info!(
        records = recovered.records_replayed,
        segments = recovered.segments_read,
        "WAL recovered"
    );

    let names: Vec<String> = config.engines.iter().map(|e| e.name.clone()).collect();
    let mut seq_cfg = vibesync_ledger::Config::new(names);
    seq_cfg.verify_timeout_ms = config.health.verify_timeout_ms;
    seq_cfg.escalation_timeout_ms = config.policies.escalation_timeout_ms;
    seq_cfg.max_active = sequencing.max_active;
    seq_cfg.stale_rule = sequencing.stale_rule;
    seq_cfg.verify_with_apply = sequencing.verify_with_apply;
    let (sequencer, recovery) = Sequencer::recover(seq_cfg, recovered.replay);
    if !recovery.journal.is_empty() {
        tracing::warn!(
            records = recovery.journal.len(),
            "resolving in-doubt transactions left by the last run"
        );
    }

    let pipeline = tokio::task::block_in_place(|| pipeline(config))?;

    let mut link_cfg = LinkConfig::new(config.link.listen, state);
    link_cfg.deadman_ms = config.health.deadman_ms;
    link_cfg.batch_frames = sequencing.batch_frames;
    for engine in &config.engines {
        let path = pairing_path(state, &engine.name);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading the pairing file of engine `{}` at {}; run `vibesync init` first",
                engine.name,
                path.display()
            )
        })?;
        let pairing =
            Pairing::parse(&text).with_context(|| format!("pairing file {}", path.display()))?;
        let secret = pairing
            .secret()
            .with_context(|| format!("bootstrap secret in {}", path.display()))?;
        link_cfg.engines.insert(engine.name.clone(), secret);
    }
    let link = Link::start(link_cfg)
        .await
        .context("starting the QUIC link")?;
    tracing::info!(addr = %link.local_addr(), fingerprint = %hex::encode(link.fingerprint()), "QUIC link listening for engines");

    Ok(Parts {
        wal_inline: sequencing.wal_inline,
        policy_block_in_place: sequencing.policy_block_in_place,
        hold_commit_notices: sequencing.hold_commit_notices,
        wal,
        sequencer,
        recovery,
        pipeline: Arc::new(pipeline),
        link,
        quantum: Quantum((1.0 / config.canonical.quantum).round() as u32),
        engines: config
            .engines
            .iter()
            .map(|e| (e.name.clone(), e.kind.as_str().to_owned()))
            .collect(),
        project_root: config.project_root.clone(),
        metrics,
    })
}
