//! `vibesync ctl …`: a small blocking client for the control socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CtlRequest, CtlResponse};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The host's state directory (its `ctl.sock` is used).
    #[arg(long, env = "VIBESYNC_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The config file, to find its state directory.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print raw JSON responses.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// PANIC state, engines, pending escalations.
    Status,
    /// Engines and their health.
    Engines,
    /// Leave PANIC once every engine is back.
    Resume,
    /// Approve an escalated intent.
    Approve { tid: u64 },
    /// Deny an escalated intent.
    Deny {
        tid: u64,
        #[arg(long)]
        reason: String,
    },
    /// Take a human lock on an object (no agent can lift it).
    Lock { id: String },
    /// Lift a human lock.
    Unlock { id: String },
    /// The loaded policies.
    Policies,
    /// Reload the policy set.
    Reload,
    /// Prometheus metrics.
    Metrics,
    /// Print the journal; `--follow` keeps printing new entries.
    Tail {
        #[arg(long, short)]
        follow: bool,
        /// Start after this journal sequence number.
        #[arg(long)]
        after: Option<u64>,
    },
}

impl CtlCommand {
    fn request(&self) -> CtlRequest {
        match self {
            CtlCommand::Status => CtlRequest::Status,
            CtlCommand::Engines => CtlRequest::Engines,
            CtlCommand::Resume => CtlRequest::Resume,
            CtlCommand::Approve { tid } => CtlRequest::Approve { tid: *tid },
            CtlCommand::Deny { tid, reason } => CtlRequest::Deny {
                tid: *tid,
                reason: reason.clone(),
            },
            CtlCommand::Lock { id } => CtlRequest::Lock { id: id.clone() },
            CtlCommand::Unlock { id } => CtlRequest::Unlock { id: id.clone() },
            CtlCommand::Policies => CtlRequest::Policies,
            CtlCommand::Reload => CtlRequest::Reload,
            CtlCommand::Metrics => CtlRequest::Metrics,
            CtlCommand::Tail { follow, after } => CtlRequest::Tail {
                after_seq: *after,
                follow: *follow,
            },
        }
    }
}

/// Runs one `vibesync ctl` command; exit code 1 when the host refused it.
pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let state_dir = match (&args.state_dir, &args.config) {
        (Some(dir), _) => dir.clone(),
        (None, config) => Config::load(config.as_deref())?.state_dir,
    };
    let path = state_dir.join("ctl.sock");
    let mut stream = UnixStream::connect(&path).map_err(|err| {
        anyhow::anyhow!(
            "cannot connect to {}: {err}. Remedy: start `vibesync serve` with this state dir, and run ctl as the user that runs it",
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(&args.command.request())?;
    line.push(b'\n');
    // A refused peer is answered and closed before it writes; the refusal
    // is still there to read, so a broken pipe here is not the error to show.
    if let Err(err) = stream.write_all(&line)
        && err.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(err.into());
    }
    stream.shutdown(std::net::Shutdown::Write).ok();
    let mut failed = false;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        let response: CtlResponse = serde_json::from_str(&line)?;
        if args.json {
            println!("{line}");
        } else if let Some(error) = &response.error {
            eprintln!("error: {error}");
        } else if let Some(result) = &response.result {
            match result {
                serde_json::Value::String(text) => print!("{text}"),
                value if matches!(args.command, CtlCommand::Tail { .. }) => println!("{value}"),
                value => println!("{}", serde_json::to_string_pretty(value)?),
            }
        }
        failed |= !response.ok;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
