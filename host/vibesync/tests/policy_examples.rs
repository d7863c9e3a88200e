//! The example policies in three languages, built from source with their
//! real toolchains, through the real `vibesync` binary: each loads
//! unchanged, passes its own fixture suite with `vibesync policy test`, and
//! `vibesync policy inspect` lays its imports bare — with every WASI import
//! marked NOT GRANTED, which the sandbox fixtures prove by making the policy
//! try the clock, the filesystem, the environment and randomness.

mod policy_support;

use policy_support::{Example, both, example, locked_dir, stdout, vibesync};

/// `policy test` of the example's fixtures with the module approved in a
/// locked directory: every case passes, and the table says so.
fn passes_its_fixtures(e: Example) {
    let Some(wasm) = example(e) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let file = format!("{}.wasm", e.name());
    let dir = locked_dir(
        &tmp.path().join("policies"),
        &[(wasm.as_path(), file.as_str())],
        "ci",
    );
    let o = vibesync(&[&"policy", &"test", &e.fixtures(), &"--modules", &dir]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", both(&o));
    let cases = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(cases >= 5, "{}", both(&o));
    assert!(
        out.contains(&format!("{cases} passed, 0 failed, {cases} cases")),
        "{out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("ok "))
            .all(|l| l.contains(e.name())),
        "{out}"
    );
}

#[test]
fn rust_template_passes_its_fixtures() {
    passes_its_fixtures(Example::Rust);
}

#[test]
fn python_policy_passes_its_fixtures() {
    passes_its_fixtures(Example::Python);
}

#[test]
fn javascript_policy_passes_its_fixtures() {
    passes_its_fixtures(Example::Js);
}

/// The marked import lines of `policy inspect`: (marker, interface).
fn imports(e: Example) -> Option<Vec<(String, String)>> {
    let wasm = example(e)?;
    let o = vibesync(&[&"policy", &"inspect", &wasm]);
    assert!(o.status.success(), "{}", both(&o));
    let out = stdout(&o);
    assert!(
        out.contains("vibesync:policy/policy@0.1.0 (implemented)"),
        "{out}"
    );
    Some(
        out.lines()
            .filter_map(|l| {
                let l = l.trim_start().strip_prefix('[')?;
                let (marker, rest) = l.split_once("] ")?;
                Some((
                    marker.to_owned(),
                    rest.split_whitespace().next()?.to_owned(),
                ))
            })
            .collect(),
    )
}

#[test]
fn inspect_marks_every_wasi_import_of_every_language_as_not_granted() {
    let mut wasi_counts = Vec::new();
    for e in [Example::Rust, Example::Python, Example::Js] {
        let Some(list) = imports(e) else { continue };
        for (marker, interface) in &list {
            let expected = if interface.starts_with("wasi:") {
                "NOT GRANTED"
            } else {
                "granted"
            };
            assert_eq!(marker, expected, "{e:?}: {interface}");
        }
        assert!(
            list.iter().any(|(_, i)| i.starts_with("vibesync:policy/")),
            "{e:?}: {list:?}"
        );
        assert!(
            !list.iter().any(|(m, _)| m.starts_with("UNKNOWN")),
            "{e:?} would not load: {list:?}"
        );
        // componentize-py's runtime imports `wasi:sockets`; like every WASI
        // import it is linked to nothing (checked above). The Rust SDK's
        // policies do not even import it.
        if e == Example::Rust {
            assert!(
                !list
                    .iter()
                    .any(|(_, i)| i.starts_with("wasi:sockets") || i.starts_with("wasi:http")),
                "{list:?}"
            );
        }
        wasi_counts.push((
            e,
            list.iter().filter(|(_, i)| i.starts_with("wasi:")).count(),
        ));
    }
    // Interpreted languages bring their runtime's WASI imports with them.
    let rust = wasi_counts
        .iter()
        .find(|(e, _)| *e == Example::Rust)
        .map(|(_, n)| *n)
        .unwrap();
    for (e, n) in &wasi_counts {
        if *e != Example::Rust {
            assert!(
                *n >= rust,
                "{e:?} imports {n} WASI interfaces, the Rust template {rust}"
            );
        }
    }
}

#[test]
fn python_inspect_shows_the_filesystem_and_clock_imports_it_does_not_get() {
    let Some(list) = imports(Example::Python) else {
        return;
    };
    for wanted in [
        "wasi:filesystem/preopens",
        "wasi:clocks/wall-clock",
        "wasi:random/random",
        "wasi:cli/environment",
    ] {
        assert!(
            list.iter()
                .any(|(m, i)| i.starts_with(wanted) && m == "NOT GRANTED"),
            "{wanted} not listed as NOT GRANTED: {list:?}"
        );
    }
}

/// `policy eval` of a probe, twice, in two processes: the same bytes both
/// times, so randomness is a fixed stream, not entropy.
fn random_probe_is_deterministic(e: Example) {
    let Some(wasm) = example(e) else { return };
    let tmp = tempfile::tempdir().unwrap();
    let intent = tmp.path().join("intent.json");
    std::fs::write(&intent, r#"{"op": "select", "args": {"ids": []}}"#).unwrap();
    let config = tmp.path().join("config.json");
    std::fs::write(
        &config,
        format!(r#"{{"{}": {{"probe": "random"}}}}"#, e.name()),
    )
    .unwrap();
    let run = || {
        let o = vibesync(&[
            &"policy",
            &"eval",
            &wasm,
            &"--unlocked",
            &"--intent",
            &intent,
            &"--config",
            &config,
            &"--json",
        ]);
        assert!(o.status.success(), "{}", both(&o));
        let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let finding = &d["verdict"]["findings"][0];
        assert_eq!(d["verdict"]["verdict"], "escalate", "{d}");
        assert_eq!(
            finding["rule"],
            format!("{}.probe-observed", e.name()),
            "{d}"
        );
        finding["message"].as_str().unwrap().to_owned()
    };
    let (first, second) = (run(), run());
    assert_eq!(first, second, "randomness differs between evaluations");
    assert!(first.contains("random:"), "{first}");
}

#[test]
fn python_randomness_is_the_same_in_every_evaluation() {
    random_probe_is_deterministic(Example::Python);
}

#[test]
fn javascript_randomness_is_the_same_in_every_evaluation() {
    random_probe_is_deterministic(Example::Js);
}
