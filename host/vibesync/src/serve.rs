//! `vibesync serve`: config → logs → metrics → control socket → MCP, around
//! a core reached only through a [`CoreHandle`].
//!
//! This module starts the front doors and nothing else; the orchestrator
//! core (WAL, policies, sequencer, link) is handed in as a handle by the
//! caller. The hidden `--fake-core` flag runs the doors against
//! [`crate::fake_core`] so that they are tested end to end through the real
//! binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::config::{Config, LogFormat, check_loopback};
use crate::core_api::CoreHandle;
use crate::metrics::Metrics;
use crate::{ctl, fake_core, init, logging, mcp, metrics};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML); without it the built-in defaults apply.
    #[arg(long, env = "VIBESYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override `state_dir`.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Serve MCP over streamable HTTP on this loopback address instead of
    /// stdio (overrides `mcp.http`).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Serve Prometheus metrics on http://ADDR/metrics (loopback only;
    /// overrides `metrics.http`).
    #[arg(long, value_name = "ADDR")]
    pub metrics_http: Option<SocketAddr>,
    /// Log format on stderr (overrides `log.format`).
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Run without Landlock and seccomp (debugging only; logged as an error).
    #[arg(long)]
    pub no_sandbox: bool,
    /// Refuse to start unless the whole confinement profile is enforced
    /// (`--require-sandbox=false`: enforce what this kernel supports and log
    /// what is not).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub require_sandbox: bool,
    /// Test only: run the front doors against the in-memory fake core.
    #[arg(long, hide = true)]
    pub fake_core: bool,
    /// Test only: start the fake core in PANIC, as `ENGINE:REASON`.
    #[arg(
        long,
        hide = true,
        requires = "fake_core",
        value_name = "ENGINE:REASON"
    )]
    pub fake_panic: Option<String>,
    /// Test only: the fake core's time per engine verification.
    #[arg(long, hide = true, default_value_t = 150)]
    pub fake_verify_step_ms: u64,
    /// Bench only (`vibesync bench load`): instead of MCP, run this many
    /// in-process intent submitters against the real core and print the
    /// result on stdout.
    #[arg(long, hide = true, conflicts_with = "fake_core", value_name = "N")]
    pub bench_submitters: Option<usize>,
    /// One transaction at a time, where any commit makes an older scene
    /// version stale, and the read-back after the provisional commit,
    /// instead of the default (concurrent transactions on disjoint objects,
    /// per-object staleness, read-back right behind the apply). For
    /// comparison only (`vibesync bench load --sequencer serial`).
    #[arg(long, hide = true)]
    pub serial_sequencer: bool,
    /// Accepted for older scripts: the concurrent sequencer is the default.
    #[arg(long, hide = true, conflicts_with = "serial_sequencer")]
    pub concurrent_sequencer: bool,
    /// For comparison only: ask engines for the read-back after the
    /// provisional commit (one more round trip and group commit per
    /// transaction) instead of right behind the apply.
    #[arg(long, hide = true)]
    pub verify_after_provisional: bool,
    /// For comparison only: the core waits for each WAL group commit
    /// before it goes on (as before the writer thread), instead of
    /// staging the next batch meanwhile.
    #[arg(long, hide = true)]
    pub wal_inline: bool,
    /// For comparison only: run every policy evaluation inside
    /// `tokio::task::block_in_place` (as before), not only long intents'.
    #[arg(long, hide = true)]
    pub policy_block_in_place: bool,
    /// For comparison only: one `command` frame per command to an engine
    /// (as before batched frames), not one `commands` frame for the
    /// commands queued together.
    #[arg(long, hide = true)]
    pub single_command_frames: bool,
    /// For comparison only: commit notices leave at once, alone, instead
    /// of waiting (up to 5 ms) to ride with the next command to the engine.
    #[arg(long, hide = true)]
    pub commit_notices_alone: bool,
    /// Tokio worker threads (MCP, ctl, the core's task, the QUIC link).
    /// The core is one task, and the WAL writer and the policy epoch ticker
    /// have threads of their own, so one is the default: on a 2-core
    /// machine shared with the engines a second worker measured 0.87× the
    /// committed intents per second, through cross-thread wake-ups
    /// (`docs/PERFORMANCE.md`, Load). Long policy evaluations still leave
    /// the worker (`block_in_place`).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub worker_threads: u16,
    /// Bench only: measured seconds of the load.
    #[arg(long, hide = true, default_value_t = 10)]
    pub bench_seconds: u64,
    /// Bench only: every submitter reads the scene before each intent
    /// (`bench::LoadOptions::read_each_intent`).
    #[arg(long, hide = true)]
    pub bench_read_each_intent: bool,
    /// Bench only: untouched objects created before the load
    /// (`bench::LoadOptions::scene_objects`).
    #[arg(long, hide = true, default_value_t = 0)]
    pub bench_scene_objects: usize,
}

/// The configuration with the command-line overrides applied and checked.
pub fn effective_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(dir) = &args.state_dir {
        config.state_dir = dir.clone();
    }
    if let Some(addr) = args.http {
        check_loopback("--http", addr)?;
        config.mcp.http = Some(addr);
    }
    if let Some(addr) = args.metrics_http {
        check_loopback("--metrics-http", addr)?;
        config.metrics.http = Some(addr);
    }
    if let Some(format) = args.log_format {
        config.log.format = format;
    }
    Ok(config)
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = effective_config(&args)?;
    logging::init(config.log.format, &config.log.filter);
    // Confinement first, while this is the only thread (Landlock binds the
    // calling thread and the threads it starts later).
    init::create_private_dir(&config.state_dir)?;
    let ctl_listener = ctl::server::bind(&config.ctl_socket())?;
    if !args.fake_core {
        confine(&config, &args)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.worker_threads))
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let metrics = Metrics::new();
        let core = if args.fake_core {
            let panic = args
                .fake_panic
                .as_deref()
                .map(|spec| {
                    spec.split_once(':')
                        .map(|(e, r)| (e.to_owned(), r.to_owned()))
                        .ok_or_else(|| anyhow::anyhow!("--fake-panic wants ENGINE:REASON"))
                })
                .transpose()?;
            fake_core::spawn(fake_core::FakeCoreOptions {
                engines: config
                    .engines
                    .iter()
                    .map(|e| (e.name.clone(), e.kind.as_str().to_owned()))
                    .collect(),
                panic,
                verify_step: Duration::from_millis(args.fake_verify_step_ms),
                metrics: metrics.clone(),
            })
        } else {
            use crate::orchestrator::boot::{self, Sequencing};
            let mut sequencing = if args.serial_sequencer {
                Sequencing::SERIAL
            } else {
                Sequencing::CONCURRENT
            };
            if args.verify_after_provisional {
                sequencing.verify_with_apply = false;
            }
            sequencing.wal_inline = args.wal_inline;
            sequencing.policy_block_in_place = args.policy_block_in_place;
            sequencing.batch_frames = !args.single_command_frames;
            sequencing.hold_commit_notices = !args.commit_notices_alone;
            let parts = boot::open(&config, metrics.clone(), sequencing).await?;
            let (handle, inbox) = crate::core_api::channel(1024);
            tokio::spawn(async move {
                if let Err(e) = crate::orchestrator::run(parts, inbox).await {
                    tracing::error!(error = %e, "the orchestrator core stopped");
                }
            });
            handle
        };
        if let Some(submitters) = args.bench_submitters {
            // The load replaces the front doors; everything behind them
            // (confinement, WAL, policies, sequencer, link) is serve's own.
            println!("{}", crate::bench::LISTENING);
            let opts = crate::bench::LoadOptions {
                submitters,
                warmup: Duration::from_secs(1),
                measure: Duration::from_secs(args.bench_seconds),
                read_each_intent: args.bench_read_each_intent,
                scene_objects: args.bench_scene_objects,
            };
            let result = crate::bench::load(
                core,
                opts,
                !args.no_sandbox,
                args.serial_sequencer,
                metrics.clone(),
            )
            .await?;
            println!(
                "{}{}",
                crate::bench::RESULT,
                serde_json::to_string(&result)?
            );
            return Ok(());
        }
        serve(config, core, metrics, ctl_listener).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The paths and network rules of the confinement profile for `config`:
/// what `serve` applies and what `vibesync sandbox report --config` shows.
pub fn sandbox_inputs(
    config: &Config,
) -> (vibesync_sandbox::HostPaths, vibesync_sandbox::NetRules) {
    let tcp_bind = [config.mcp.http, config.metrics.http]
        .into_iter()
        .flatten()
        .map(|a| a.port())
        .collect();
    (
        vibesync_sandbox::HostPaths {
            state_dir: config.state_dir.clone(),
            policy_dir: config.policy_dir(),
            cache_dir: None,
            extra_read_only: Vec::new(),
        },
        vibesync_sandbox::NetRules {
            udp_listen: Some(config.link.listen),
            tcp_bind,
            tcp_connect: Vec::new(),
        },
    )
}

/// Applies the host's Landlock + seccomp profile (see `docs/sandbox.md`).
fn confine(config: &Config, args: &ServeArgs) -> anyhow::Result<()> {
    use vibesync_sandbox::{Mode, Profile, Report};
    std::fs::create_dir_all(config.policy_dir())?;
    let (paths, net) = sandbox_inputs(config);
    let profile = Profile::for_host(&paths, &net)?;
    if args.no_sandbox {
        tracing::error!(
            "--no-sandbox: the host runs UNCONFINED. {}",
            Report::disabled(&profile).summary()
        );
        return Ok(());
    }
    let mode = if args.require_sandbox {
        Mode::Require
    } else {
        Mode::BestEffort
    };
    let report = profile.apply(mode)?;
    tracing::info!("{}", report.summary());
    Ok(())
}

/// Runs the front doors until the MCP session ends (stdio) or the process
/// is interrupted (HTTP).
pub async fn serve(
    config: Config,
    core: CoreHandle,
    metrics: Arc<Metrics>,
    listener: std::os::unix::net::UnixListener,
) -> anyhow::Result<()> {
    let socket = config.ctl_socket();
    tracing::info!(socket = %socket.display(), "operator control socket ready");
    let ctl_task = tokio::spawn(ctl::server::serve(
        listener,
        core.clone(),
        metrics.clone(),
        socket.clone(),
    ));
    let metrics_task = match config.metrics.http {
        Some(addr) => {
            let listener = metrics::bind(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "metrics on http://{}/metrics", listener.local_addr()?);
            Some(tokio::spawn(metrics::serve_http(listener, metrics.clone())))
        }
        None => None,
    };
    let server = mcp::VibeSyncMcp::new(core, Duration::from_millis(config.mcp.progress_wait_ms));
    let result = match config.mcp.http {
        Some(addr) => {
            let listener = mcp::bind_http(addr).await?;
            tracing::info!(addr = %listener.local_addr()?, "MCP over streamable HTTP");
            tokio::select! {
                r = mcp::serve_http(server, listener) => r,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
        None => {
            tracing::info!("MCP on stdio");
            mcp::serve_stdio(server).await
        }
    };
    ctl_task.abort();
    if let Some(task) = metrics_task {
        task.abort();
    }
    let _ = std::fs::remove_file(&socket);
    result
}
