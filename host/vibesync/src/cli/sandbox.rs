//! `vibesync sandbox ...`

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum SandboxCmd {
    /// Placeholder until this group is built.
    Todo,
}

pub fn run(cmd: SandboxCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        SandboxCmd::Todo => anyhow::bail!("not built yet"),
    }
}
