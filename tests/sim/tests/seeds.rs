//! The CI entry points of the simulator: a seed budget with every
//! invariant on, exact replay of a seed, and proof that a planted bug is
//! caught within the same budget.
//!
//! `VIBESYNC_SIM_SEEDS=N` changes the budget (e.g. a longer local run);
//! CI uses [`CI_SEEDS`].

use vibesync_sim::{Options, Plant, run};

/// Seeds per CI run (each is [`Options::ci`]: 10 simulated seconds of
/// faults, then settling).
const CI_SEEDS: u64 = 300;

fn budget() -> u64 {
    std::env::var("VIBESYNC_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_SEEDS)
}

#[test]
fn ci_seed_budget_holds_every_invariant() {
    let seeds = budget();
    let mut failures = Vec::new();
    let (mut committed, mut rolled_back, mut panics, mut host_crashes) = (0, 0, 0, 0);
    let t0 = std::time::Instant::now();
    for seed in 0..seeds {
        let out = run(Options::ci(seed));
        committed += out.stats.committed;
        rolled_back += out.stats.rolled_back;
        panics += out.stats.panics;
        host_crashes += out.stats.host_crashes;
        if out.failure.is_some() {
            failures.push(out.report(80));
        }
    }
    eprintln!(
        "{seeds} seeds in {:.1} s: {committed} committed, {rolled_back} rolled back, {panics} PANICs, {host_crashes} host crashes, {} failed",
        t0.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed; first:\n{}",
        failures.len(),
        failures[0]
    );
    // The budget must exercise both ends of a transaction and the faults,
    // or it proves nothing.
    assert!(
        committed > seeds && rolled_back > seeds / 4,
        "committed {committed}, rolled back {rolled_back}"
    );
    assert!(
        panics > seeds / 10 && host_crashes > seeds / 10,
        "PANICs {panics}, host crashes {host_crashes}"
    );
}

#[test]
fn one_seed_replays_exactly() {
    for seed in [7, 1234, 987_654_321] {
        let a = run(Options::ci(seed));
        let b = run(Options::ci(seed));
        assert!(a.trace.len() > 50, "seed {seed} did something");
        assert_eq!(a.trace, b.trace, "seed {seed} is not deterministic");
        assert_eq!(a.failure, b.failure);
    }
    assert_ne!(
        run(Options::ci(1)).trace,
        run(Options::ci(2)).trace,
        "the seed matters"
    );
}

/// `Plant::SkipUndo`: the host answers every undo as done without sending
/// it. Some seed of the CI budget must catch it with an invariant that is
/// about rolled-back changes, and print the seed and its trace.
#[test]
fn planted_skip_undo_is_caught_within_the_ci_budget() {
    let seeds = budget();
    let mut caught = None;
    for seed in 0..seeds {
        let mut o = Options::ci(seed);
        o.plant = Some(Plant::SkipUndo);
        let out = run(o);
        if out.failure.is_some() {
            caught = Some(out);
            break;
        }
    }
    let out = caught.expect("the planted bug escaped every CI seed");
    let f = out.failure.as_ref().expect("failed");
    eprintln!(
        "planted skip-undo caught by seed {} of {seeds}:\n{}",
        out.seed,
        out.report(40)
    );
    assert!(
        ["rolled-back-change-absent", "converged-hashes"].contains(&f.invariant),
        "seed {} failed for another reason: {}",
        out.seed,
        out.report(80)
    );
    // The same seed without the plant holds every invariant: the plant is
    // what the invariant caught.
    let clean = run(Options::ci(out.seed));
    assert!(clean.failure.is_none(), "{}", clean.report(80));
}
