//! A headless reference engine: speaks the real protocol through the adapter
//! SDK's Rust API and keeps an in-memory scene in a native convention
//! (`--convention blender`: RH +Z up, `unity`: LH +Y up), converting at the
//! boundary exactly as a real adapter must. It is the engine of demos, load
//! tests and fault tests, so it has fault switches: flags at start-up and the
//! same as lines on stdin (`hang <ms>`, `crash`, `delay <ms>`,
//! `wrong-hash on|off`, `drop`, `attack <name>`, `status`, `quit`).
//!
//! It prints one line per notable moment on stdout (`READY`, `HANG
//! last_pump_ms=..`, `RESUMED`, `STATUS {..}`) so tests can follow it.

pub mod engine;

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use vibesync_adapter_sdk::{Attack, Session};

use engine::{Convention, Engine};

#[derive(clap::Parser, Debug)]
#[command(
    name = "vibesync-reference-engine",
    about = "Headless VibeSync reference engine with fault switches"
)]
pub struct Args {
    /// Pairing file written by `vibesync init`.
    #[arg(long)]
    pairing: PathBuf,
    /// Engine name (defaults to the pairing file's).
    #[arg(long)]
    engine: Option<String>,
    /// Native convention of the in-memory scene.
    #[arg(long, value_enum, default_value = "blender")]
    convention: Convention,
    /// Stop pumping the main thread after this many ms...
    #[arg(long)]
    hang_after_ms: Option<u64>,
    /// ...for this long.
    #[arg(long, default_value = "8000")]
    hang_for_ms: u64,
    /// Abort the process on receiving the Nth command.
    #[arg(long)]
    crash_after: Option<u64>,
    /// Wait this long before every reply.
    #[arg(long, default_value = "0")]
    delay_ms: u64,
    /// Report a wrong hash in every apply/verify/snapshot reply.
    #[arg(long)]
    wrong_hash: bool,
    /// Drop the connection (no `bye`) after this many ms; the SDK reconnects.
    #[arg(long)]
    drop_after_ms: Option<u64>,
    /// Hold replies and send them together: every command that arrives
    /// within this many ms of the first held one is handled, then all their
    /// replies go to the SDK at once (an engine that answers once per frame
    /// or pump tick, as the Blender add-on does). 0: reply per command.
    /// `--delay-ms` then delays each burst; `--crash-after` counts bursts.
    #[arg(long, default_value = "0")]
    reply_burst_ms: u64,
}

fn attack(name: &str) -> Option<Attack> {
    Some(match name {
        "replay" => Attack::Replay,
        "stale" => Attack::Stale,
        "future" => Attack::Future,
        "reorder" => Attack::Reorder,
        "bad-tag" => Attack::BadTag,
        "oversize" => Attack::Oversize,
        "deep" => Attack::DeepNesting,
        "garbage" => Attack::Garbage,
        "bad-batch" => Attack::BadBatch,
        _ => return None,
    })
}

/// Runs the engine until `quit` on stdin (or a fault switch ends it).
pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.pairing)
        .with_context(|| format!("reading {}", args.pairing.display()))?;
    let pairing = vibesync_adapter_sdk::Pairing::parse(&text)?;
    let name = args
        .engine
        .clone()
        .unwrap_or_else(|| pairing.engine.clone());
    let session = Session::open_pairing(pairing, &name, "reference")?;
    let mut engine = Engine::new(args.convention);
    engine.wrong_hash = args.wrong_hash;
    let mut delay = Duration::from_millis(args.delay_ms);

    let (ctl_tx, ctl_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if ctl_tx.send(line).is_err() {
                return;
            }
        }
    });

    let start = Instant::now();
    let mut hang_at = args
        .hang_after_ms
        .map(|ms| start + Duration::from_millis(ms));
    let mut hang_for = Duration::from_millis(args.hang_for_ms);
    let mut drop_at = args
        .drop_after_ms
        .map(|ms| start + Duration::from_millis(ms));
    let mut ready = false;
    let mut commands = 0u64;
    let mut last_session = None;
    loop {
        while let Ok(line) = ctl_rx.try_recv() {
            let mut w = line.split_whitespace();
            match (w.next(), w.next()) {
                (Some("hang"), Some(ms)) => {
                    hang_for = Duration::from_millis(ms.parse().unwrap_or(8000));
                    hang_at = Some(Instant::now());
                }
                (Some("crash"), _) => std::process::abort(),
                (Some("delay"), Some(ms)) => delay = Duration::from_millis(ms.parse().unwrap_or(0)),
                (Some("wrong-hash"), v) => engine.wrong_hash = v != Some("off"),
                (Some("drop"), _) => session.drop_connection()?,
                (Some("attack"), Some(a)) => match attack(a) {
                    Some(a) => session.inject(a)?,
                    None => eprintln!("unknown attack `{a}`"),
                },
                (Some("status"), _) => {
                    println!("STATUS {}", serde_json::to_string(&session.status())?)
                }
                (Some("quit"), _) => {
                    session.close();
                    return Ok(());
                }
                _ => eprintln!("unknown control line `{line}`"),
            }
        }
        if hang_at.is_some_and(|t| Instant::now() >= t) {
            hang_at = None;
            // The last pump was the last poll: report it, then stop pumping.
            let last = session.poll_wait(Duration::ZERO);
            let pumped = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis();
            println!("HANG last_pump_ms={pumped}");
            std::thread::sleep(hang_for);
            println!("RESUMED");
            if let Some(c) = last {
                handle(&session, &mut engine, c, delay)?;
            }
        }
        if drop_at.is_some_and(|t| Instant::now() >= t) {
            drop_at = None;
            session.drop_connection()?;
        }
        let st = session.status();
        if st.session_id.is_some() && st.session_id != last_session {
            last_session = st.session_id.clone();
            println!(
                "READY session={} reconnect={}",
                st.session_id.as_deref().unwrap_or(""),
                ready
            );
            ready = true;
        }
        if let Some(c) = session.poll_wait(Duration::from_millis(20)) {
            commands += 1;
            if args.crash_after.is_some_and(|n| commands >= n) {
                std::process::abort();
            }
            if args.reply_burst_ms == 0 && delay.is_zero() {
                // What is already waiting (a batch frame's commands arrive
                // together) is handled in order and answered back to back,
                // so the network thread wakes once for the replies, not
                // once per reply.
                let mut replies = vec![engine.handle(c)];
                for c in session.poll_many(usize::MAX) {
                    commands += 1;
                    if args.crash_after.is_some_and(|n| commands >= n) {
                        std::process::abort();
                    }
                    replies.push(engine.handle(c));
                }
                for r in replies {
                    session.reply(r)?;
                }
                continue;
            }
            if args.reply_burst_ms == 0 {
                handle(&session, &mut engine, c, delay)?;
                continue;
            }
            // One burst: everything that arrives within the window.
            let until = Instant::now() + Duration::from_millis(args.reply_burst_ms);
            let mut replies = vec![engine.handle(c)];
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                match session.poll_wait(left) {
                    Some(c) => replies.push(engine.handle(c)),
                    None => break,
                }
            }
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            for r in replies {
                session.reply(r)?;
            }
        }
    }
}

fn handle(
    session: &Session,
    engine: &mut Engine,
    c: vibesync_adapter_sdk::Command,
    delay: Duration,
) -> anyhow::Result<()> {
    let reply = engine.handle(c);
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    session.reply(reply)?;
    Ok(())
}
