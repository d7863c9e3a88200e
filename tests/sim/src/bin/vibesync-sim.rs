//! `vibesync-sim --seed N [--trace]` replays one schedule exactly (repeat
//! `--seed` for a list); `vibesync-sim --seeds A..B` runs a range and prints every failing seed
//! with its trace, then a summary with the rate in seeds per second.

use std::process::ExitCode;
use std::time::Instant;

use vibesync_sim::{Options, Plant, run};

const USAGE: &str = "usage: vibesync-sim (--seed N ... | --seeds A..B) [--trace] [--plant skip-undo] [--active-ms MS]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut seeds, mut trace, mut plant, mut active) = (Vec::new(), false, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        let r: Result<(), String> = (|| {
            match a.as_str() {
                "--seed" => {
                    let n: u64 = val()?.parse().map_err(|e| format!("--seed: {e}"))?;
                    seeds.push(n);
                }
                "--seeds" => {
                    let v = val()?;
                    let (a, b) = v
                        .split_once("..")
                        .ok_or_else(|| format!("--seeds wants A..B, got `{v}`"))?;
                    let a: u64 = a.parse().map_err(|e| format!("--seeds: {e}"))?;
                    let b: u64 = b.parse().map_err(|e| format!("--seeds: {e}"))?;
                    seeds.extend(a..b);
                }
                "--trace" => trace = true,
                "--plant" => plant = Some(val()?.parse::<Plant>()?),
                "--active-ms" => {
                    active = Some(
                        val()?
                            .parse::<u64>()
                            .map_err(|e| format!("--active-ms: {e}"))?,
                    )
                }
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
            Ok(())
        })();
        if let Err(e) = r {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    if seeds.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    // Compile the policies before timing.
    vibesync_sim::policy::pipeline();
    let start = Instant::now();
    let (mut failed, mut total) = (0u64, 0u64);
    let mut stats = vibesync_sim::Stats::default();
    for seed in seeds {
        let mut o = Options::new(seed);
        o.plant = plant;
        if let Some(a) = active {
            o.active_ms = a;
        }
        let out = run(o);
        total += 1;
        if trace {
            println!("{}", out.trace.join("\n"));
        }
        if out.failure.is_some() {
            failed += 1;
            println!("{}", out.report(if trace { 0 } else { 60 }));
        }
        let s = &out.stats;
        stats.intents += s.intents;
        stats.committed += s.committed;
        stats.rolled_back += s.rolled_back;
        stats.panics += s.panics;
        stats.host_crashes += s.host_crashes;
        stats.engine_crashes += s.engine_crashes;
        stats.frames_refused += s.frames_refused;
        stats.injected_refused += s.injected_refused;
        stats.io_errors += s.io_errors;
        stats.torn_tails += s.torn_tails;
        stats.resume_not_in_panic += s.resume_not_in_panic;
        stats.events += s.events;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{total} seeds, {failed} failed, {:.1} s, {:.1} seeds/s; totals: {stats:?}",
        secs,
        total as f64 / secs.max(1e-9)
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
