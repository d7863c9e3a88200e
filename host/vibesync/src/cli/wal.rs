//! `vibesync wal ...`: verify, read and export the write-ahead log.
//!
//! Read-only: nothing here modifies the journal (recovery, which cuts a torn
//! tail, runs only when the host starts).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use vibesync_wal::{AckOutcome, Entry, Record, UndoOutcome, read_all, segments, verify};

const DEFAULT_DIR: &str = ".vibesync/wal";

#[derive(Subcommand)]
pub enum WalCmd {
    /// Check framing, checksums and the hash chain of every segment. Exits
    /// non-zero on corruption; a torn tail (a crash mid-write) is reported
    /// and is cut by the next host start.
    Verify {
        #[arg(default_value = DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// The journal, readable: who, what, why, verdicts, outcome.
    Show {
        #[arg(default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// Only this transaction.
        #[arg(long)]
        tid: Option<u64>,
        /// Keep printing new records as they are appended.
        #[arg(long)]
        follow: bool,
    },
    /// Every record as one JSON object per line.
    Export {
        #[arg(default_value = DEFAULT_DIR)]
        dir: PathBuf,
        /// JSON lines (the only format).
        #[arg(long, required = true)]
        json: bool,
    },
}

pub fn run(cmd: WalCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        WalCmd::Verify { dir } => verify_cmd(&dir),
        WalCmd::Show { dir, tid, follow } => show(&dir, tid, follow),
        WalCmd::Export { dir, json: _ } => export(&dir),
    }
}

fn verify_cmd(dir: &Path) -> anyhow::Result<ExitCode> {
    if segments(dir)?.is_empty() {
        anyhow::bail!(
            "no WAL segments (*.wal) in {}; pass the journal directory",
            dir.display()
        );
    }
    let r = verify(dir)?;
    for s in &r.segments {
        println!(
            "segment {}  first seq {}  {} records  {} bytes",
            s.path.display(),
            s.first_seq,
            s.records,
            s.bytes
        );
    }
    println!("records   {}", r.records);
    for (kind, n) in &r.kinds {
        println!("  {kind:<18} {n}");
    }
    println!(
        "head      seq {}  hash {}",
        r.head.next_seq.saturating_sub(1),
        r.head.head
    );
    if let Some(t) = &r.torn_tail {
        println!(
            "torn tail {} at byte {}: {} bytes ({}); the next host start cuts them",
            t.segment.display(),
            t.offset,
            t.bytes,
            t.fault
        );
    }
    if let Some((seg, fault)) = &r.corruption {
        println!(
            "CORRUPT   {} at byte {}: {fault}",
            seg.display(),
            fault.offset()
        );
    }
    if let Some((seg, what)) = &r.layout {
        println!("CORRUPT   {}: {what}", seg.display());
    }
    if r.is_intact() {
        println!("chain     intact");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("chain     BROKEN: the host refuses to start on this log");
        Ok(ExitCode::FAILURE)
    }
}

fn describe(r: &Record) -> String {
    match r {
        Record::Intent(i) => {
            let ops: Vec<&str> = i.ops.iter().map(|o| o.name()).collect();
            format!(
                "{} `{}` asks {:?} on {:?} (read v{}){}: \"{}\"",
                i.source.as_str(),
                i.author,
                ops,
                i.engines,
                i.scene_version_read,
                i.idempotency_key
                    .as_ref()
                    .map(|k| format!(" key {k}"))
                    .unwrap_or_default(),
                i.rationale
            )
        }
        Record::Policy(p) => format!(
            "policy {} ({}…) says {} {}",
            p.policy,
            p.module_hash.get(..12).unwrap_or(&p.module_hash),
            p.verdict,
            p.findings
        ),
        Record::Refused { rule, message, .. } => format!("REFUSED [{rule}] {message}"),
        Record::Denied { reason, .. } => format!("DENIED {reason}"),
        Record::Escalated {
            reason,
            deadline_ms,
            ..
        } => format!("escalated to an operator (until {deadline_ms}): {reason}"),
        Record::OperatorDecision {
            operator,
            approve,
            note,
            ..
        } => {
            format!(
                "operator `{operator}` {}: {note}",
                if *approve { "approved" } else { "denied" }
            )
        }
        Record::Begin {
            touched,
            engines,
            expected,
            ..
        } => format!(
            "begin on {engines:?}, touches {touched:?}, expects {}",
            &expected.to_hex()[..16]
        ),
        Record::EngineAck {
            engine,
            ack: AckOutcome::Applied { .. },
            ..
        } => format!("{engine} applied"),
        Record::EngineAck {
            engine,
            ack: AckOutcome::Failed { error },
            ..
        } => format!("{engine} FAILED to apply: {error}"),
        Record::Provisional { .. } => "provisional: author answered, verifying".into(),
        Record::Verification {
            engine,
            expected,
            observed,
            error,
            ..
        } => match (observed, error) {
            (Some(o), _) if o == expected => format!("{engine} verified {}", &o.to_hex()[..16]),
            (Some(o), _) => format!(
                "{engine} MISMATCH: observed {}, expected {}",
                &o.to_hex()[..16],
                &expected.to_hex()[..16]
            ),
            (None, e) => format!("{engine} could not verify: {}", e.as_deref().unwrap_or("?")),
        },
        Record::Commit {
            scene_version,
            scene_hash,
            ..
        } => match scene_hash {
            Some(h) => format!("COMMITTED scene v{scene_version} ({})", &h.to_hex()[..16]),
            None => format!("COMMITTED scene v{scene_version}"),
        },
        Record::Rollback { reason, .. } => format!("ROLLED BACK: {reason}"),
        Record::Undo {
            engine,
            undo: UndoOutcome::Undone,
            ..
        } => format!("{engine} undone"),
        Record::Undo {
            engine,
            undo: UndoOutcome::Resync { why },
            ..
        } => format!("{engine} resync instead of undo: {why}"),
        Record::Panic { reason } => format!("PANIC: {reason}"),
        Record::Resume { operator } => format!("resumed by `{operator}`"),
        Record::PolicySwap {
            policy,
            old_hash,
            new_hash,
            operator,
        } => {
            format!(
                "policy {policy} swapped by `{operator}`: {} -> {new_hash}",
                old_hash.as_deref().unwrap_or("none")
            )
        }
        Record::EngineSession { engine, session } => format!("{engine} session {session:?}"),
        Record::Lock(l) => format!(
            "`{}` locks {}{}",
            l.holder,
            l.object,
            if l.human { " (human)" } else { "" }
        ),
        Record::Unlock { object, by } => format!("`{by}` unlocks {object}"),
        Record::Resync {
            engine,
            reason,
            scene_hash,
        } => format!(
            "resync {engine} to {}: {reason}",
            &scene_hash.to_hex()[..16]
        ),
        Record::Checkpoint(c) => format!(
            "checkpoint: scene v{}, {} objects, next tid {}",
            c.scene_version,
            c.scene.objects.len(),
            c.next_tid
        ),
    }
}

fn print_entry(e: &Entry, tid: Option<u64>) {
    if tid.is_some() && e.record.tid() != tid {
        return;
    }
    let t = e
        .record
        .tid()
        .map(|t| format!("tid {t:>6}"))
        .unwrap_or_else(|| " ".repeat(10));
    println!(
        "{:>8}  {}  {t}  {:<17} {}",
        e.seq,
        e.at_ms,
        e.record.kind(),
        describe(&e.record)
    );
}

fn show(dir: &Path, tid: Option<u64>, follow: bool) -> anyhow::Result<ExitCode> {
    let mut next = 0u64;
    loop {
        read_all(dir, |_, e| {
            if e.seq >= next {
                print_entry(e, tid);
                next = e.seq + 1;
            }
        })?;
        if !follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn export(dir: &Path) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut err = None;
    read_all(dir, |seg, e| {
        if err.is_some() {
            return;
        }
        let line = serde_json::json!({
            "seq": e.seq,
            "at_ms": e.at_ms,
            "hash": e.hash.to_hex(),
            "prev": e.prev.to_hex(),
            "segment": seg.file_name().map(|n| n.to_string_lossy().into_owned()),
            "offset": e.offset,
            "kind": e.record.kind(),
            "record": e.record,
        });
        if let Err(x) = writeln!(out, "{line}") {
            err = Some(x);
        }
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
