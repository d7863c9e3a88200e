//! `vibesync policy ...`

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Placeholder until this group is built.
    Todo,
}

pub fn run(cmd: PolicyCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCmd::Todo => anyhow::bail!("not built yet"),
    }
}
