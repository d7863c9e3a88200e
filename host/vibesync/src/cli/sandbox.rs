//! `vibesync sandbox ...`: shows the confinement profile `serve` applies and
//! what this kernel enforces of it. Read-only: nothing is applied here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use vibesync_sandbox::{HostPaths, NetRules, Profile, Report};

#[derive(Subcommand)]
pub enum SandboxCmd {
    /// Print the Landlock and seccomp profile `serve` would apply and what
    /// this kernel enforces (Landlock ABI, rules per path and port, every
    /// system call with its action), for a security reviewer.
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// Machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 when this kernel cannot enforce the full profile
    /// (what `serve --require-sandbox` would refuse).
    #[arg(long)]
    check: bool,
    /// Take the paths and network rules from this host config (TOML), as
    /// `serve --config FILE` would; the path and port options below are
    /// then not used.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cache_dir", "udp_listen", "tcp_bind", "tcp_connect"])]
    config: Option<PathBuf>,
    /// The host's state directory (read-write in the profile). Must exist.
    #[arg(long, env = "VIBESYNC_STATE_DIR", default_value = ".vibesync")]
    state_dir: PathBuf,
    /// The policy directory (read-only in the profile). Must exist.
    #[arg(long, env = "VIBESYNC_POLICY_DIR", default_value = "policies")]
    policy_dir: PathBuf,
    /// The compiled-module cache (read-only in the profile).
    #[arg(long, env = "VIBESYNC_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The QUIC listen address (shown; Landlock cannot restrict UDP).
    #[arg(long)]
    udp_listen: Option<SocketAddr>,
    /// A TCP port the host may bind (repeatable).
    #[arg(long)]
    tcp_bind: Vec<u16>,
    /// A TCP port the host may connect to (repeatable).
    #[arg(long)]
    tcp_connect: Vec<u16>,
}

pub fn run(cmd: SandboxCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCmd::Report(args) => report(args),
    }
}

fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let (paths, net) = match &a.config {
        Some(file) => vibesync::serve::sandbox_inputs(&vibesync::config::Config::load(Some(file))?),
        None => (
            HostPaths {
                state_dir: a.state_dir,
                policy_dir: a.policy_dir,
                cache_dir: a.cache_dir,
                extra_read_only: vec![],
            },
            NetRules {
                udp_listen: a.udp_listen,
                tcp_bind: a.tcp_bind,
                tcp_connect: a.tcp_connect,
            },
        ),
    };
    let report = Report::plan(&Profile::for_host(&paths, &net)?);
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
    Ok(if a.check && !report.not_enforced.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
