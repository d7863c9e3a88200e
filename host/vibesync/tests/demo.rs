//! The first run as a whole-system test: `vibesync demo` starts the real,
//! confined host (`vibesync serve`), two reference engines over real QUIC,
//! and drives them through the real MCP interface. Each scripted step must
//! show its evidence in the output, so a regression anywhere in the path
//! (policies, WAL, sequencer, link, PANIC, resume) fails here.

use std::process::Command;

#[test]
fn demo_runs_every_step_end_to_end() {
    let out = Command::new(env!("CARGO_BIN_EXE_vibesync"))
        .arg("demo")
        .output()
        .expect("run vibesync demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    for evidence in [
        // A transform synced and verified on both engines.
        "blender  engine hash",
        "matches canonical: true",
        // A NaN refused by the NaN audit, naming the field.
        "rule `nan-audit.non-finite` on field `/ops/0/args/translation/1`",
        // A hostile script refused by the firewall with its finding.
        "rule `firewall.python-import` on field `/ops/0/args/code`",
        // A lying engine rolled back.
        "-> rolled_back: engine `unity` reports hash",
        // A hung engine trips PANIC and writes are refused until resume.
        "rule `host.panic`",
        "cluster live again",
        "all engines agree with the canonical scene: true",
    ] {
        assert!(
            stdout.contains(evidence),
            "missing `{evidence}` in the demo output\n{stdout}\n--- stderr\n{stderr}"
        );
    }
    assert!(!stdout.contains("matches canonical: false"), "{stdout}");
}
