//! `vibesync`: the host orchestrator's command line.
//!
//! Each subcommand group lives in its own module under `cli/`; this file
//! only parses arguments and dispatches. Errors reach the user through
//! `anyhow` here, at the binary's edge, and nowhere else.

mod cli;

/// mimalloc instead of glibc's allocator for the whole process (serve and
/// the reference engines): under `bench load` the serve spent ~11 % of its
/// CPU in `malloc`/`free` and the engines waited on glibc's arena locks;
/// with mimalloc, CPU per committed intent is 0.88× for both and the rate
/// 1.11× (`docs/PERFORMANCE.md`, Load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "vibesync",
    version,
    about = "Let AI agents change live Blender and Unity scenes, safely."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect, lock, evaluate, test and diff policy components.
    #[command(subcommand)]
    Policy(cli::policy::PolicyCmd),
    /// Verify, show and export the write-ahead log.
    #[command(subcommand)]
    Wal(cli::wal::WalCmd),
    /// Show the confinement profile and what this kernel enforces.
    #[command(subcommand)]
    Sandbox(cli::sandbox::SandboxCmd),
    /// Run the host: MCP for the agent, ctl socket for the operator.
    Serve(vibesync::serve::ServeArgs),
    /// Create the state directory, host certificate and pairing files.
    Init(vibesync::init::InitArgs),
    /// Operator control of a running host (status, resume, approve, ...).
    Ctl(vibesync::ctl::client::CtlArgs),
    /// A first run: host, two reference engines and a scripted agent session.
    Demo(vibesync::demo::DemoArgs),
    /// Load runs through the real pipeline (see docs/PERFORMANCE.md).
    #[command(subcommand)]
    Bench(vibesync::bench::BenchCmd),
    /// Run a headless reference engine (demos, load and fault tests).
    #[command(hide = true)]
    ReferenceEngine(vibesync_reference_engine::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(cmd) => cli::policy::run(cmd),
        Command::Wal(cmd) => cli::wal::run(cmd),
        Command::Sandbox(cmd) => cli::sandbox::run(cmd),
        Command::Serve(args) => vibesync::serve::run(args),
        Command::Init(args) => vibesync::init::run(args),
        Command::Ctl(args) => vibesync::ctl::client::run(args),
        Command::Demo(args) => vibesync::demo::run(args),
        Command::Bench(cmd) => vibesync::bench::run(cmd),
        Command::ReferenceEngine(args) => {
            vibesync_reference_engine::run(args).map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
