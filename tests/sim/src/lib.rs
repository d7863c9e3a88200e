//! Deterministic simulation of a whole VibeSync cluster, FoundationDB /
//! TigerBeetle-VOPR style: the real cores (sequencer, WAL codec and replay,
//! wire protocol with HMAC and the replay window, handshake and key
//! rotation, deadman, PANIC state, policy pipeline with the built-in
//! components, the reference engine's scene in two native conventions) run
//! against a simulated network, disk and clocks; one seed chooses every
//! delay, fault and agent action; invariants are checked as the run goes
//! and at quiescence; a failing seed replays exactly.
//!
//! - [`world`]: time, event queue, network, clocks, faults, the run loop;
//! - [`host`]: the orchestrator and link shells re-stated over the cores;
//! - [`engine`]: the adapter SDK's logic around the reference engine;
//! - [`agent`], [`policy`]: the agent and the intake through the real policies;
//! - [`disk`]: the WAL's bytes with torn and lost writes and I/O errors;
//! - [`check`]: the invariants. See `docs/RELIABILITY.md`.

pub mod agent;
pub mod check;
pub mod disk;
pub mod engine;
pub mod host;
pub mod policy;
pub mod rng;
pub mod world;

pub use world::Stats;

/// A deliberately planted bug, for proving that the invariants bite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plant {
    /// The driver reports every undo as done without sending it.
    SkipUndo,
}

impl std::str::FromStr for Plant {
    type Err = String;
    fn from_str(s: &str) -> Result<Plant, String> {
        match s {
            "skip-undo" => Ok(Plant::SkipUndo),
            other => Err(format!("unknown planted bug `{other}`; known: skip-undo")),
        }
    }
}

/// What one run does.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// Simulated ms of faults and new intents.
    pub active_ms: u64,
    /// Simulated ms the cluster gets to settle afterwards.
    pub settle_ms: u64,
    pub plant: Option<Plant>,
}

impl Options {
    /// The full schedule: 20 simulated seconds of faults (the soak's).
    pub fn new(seed: u64) -> Options {
        Options {
            seed,
            active_ms: 20_000,
            settle_ms: 90_000,
            plant: None,
        }
    }

    /// The CI schedule: [`CI_ACTIVE_MS`] of faults. Every fault kind still
    /// fits (the longest, a 9 s hang, a 6 s partition, an 8 s clock jump,
    /// overlap the end of the active phase and are then cut short); a seed
    /// costs about half as much, so the CI budget holds more seeds.
    pub fn ci(seed: u64) -> Options {
        Options {
            active_ms: CI_ACTIVE_MS,
            ..Options::new(seed)
        }
    }
}

/// Simulated ms of faults per CI seed (see [`Options::ci`]).
pub const CI_ACTIVE_MS: u64 = 10_000;

/// The invariant that broke.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub invariant: &'static str,
    pub detail: String,
    pub at_ms: u64,
}

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub trace: Vec<String>,
    pub failure: Option<Failure>,
    pub stats: Stats,
}

impl Outcome {
    /// The failure with the seed and the last `tail` lines of the trace.
    pub fn report(&self, tail: usize) -> String {
        let Some(f) = &self.failure else {
            return format!("seed {}: ok", self.seed);
        };
        let from = self.trace.len().saturating_sub(tail);
        format!(
            "seed {} FAILED invariant `{}` at t={} ms: {}\nreplay: vibesync-sim --seed {} --trace\n--- last {} trace lines ---\n{}",
            self.seed,
            f.invariant,
            f.at_ms,
            f.detail,
            self.seed,
            self.trace.len() - from,
            self.trace[from..].join("\n")
        )
    }
}

/// Run one seed.
pub fn run(opts: Options) -> Outcome {
    world::World::new(opts).run()
}
