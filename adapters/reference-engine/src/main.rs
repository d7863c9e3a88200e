//! `vibesync-reference-engine`: see the library docs.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    vibesync_reference_engine::run(vibesync_reference_engine::Args::parse())
}
