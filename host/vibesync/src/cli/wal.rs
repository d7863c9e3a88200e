//! `vibesync wal ...`

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum WalCmd {
    /// Placeholder until this group is built.
    Todo,
}

pub fn run(cmd: WalCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        WalCmd::Todo => anyhow::bail!("not built yet"),
    }
}
