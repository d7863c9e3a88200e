//! `vibesync policy inspect | lock | approve | eval | test | diff` from the
//! outside: the built binary, real components (the built-ins and the Rust
//! template built with cargo), exit codes and the text a person reads.

mod policy_support;

use std::path::Path;

use policy_support::{
    Example, both, example, locked_dir, repo_root, rust_template_variant, stdout, vibesync,
};

#[test]
fn builtin_fixtures_run_through_policy_test() {
    let root = repo_root();
    let dirs: Vec<_> = ["firewall", "nan-audit", "validation"]
        .iter()
        .map(|p| root.join("policies").join(p).join("fixtures"))
        .collect();
    let o = vibesync(&[&"policy", &"test", &dirs[0], &dirs[1], &dirs[2]]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", both(&o));
    for p in ["firewall", "nan-audit", "validation"] {
        assert!(
            out.lines().any(|l| l.starts_with("ok ") && l.contains(p)),
            "{p} missing: {out}"
        );
    }
    let n = out.lines().filter(|l| l.starts_with("ok ")).count();
    assert!(n > 30, "{out}");
    assert!(
        out.contains(&format!("{n} passed, 0 failed, {n} cases")),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn a_failing_case_is_a_fail_row_with_its_reason_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("wrong.json"),
        r#"{"policy": "validation", "cases": [
            {"name": "good rename", "op": "rename_object", "args": {"id": "obj-1", "name": "Crate"},
             "context": {"objects": [{"id": "obj-1", "name": "Box", "kind": "mesh"}]}, "expect": "allow"},
            {"name": "claims an unknown op is fine", "op": "teleport_object", "args": {"id": "obj-1"}, "expect": "allow"}
        ]}"#,
    )
    .unwrap();
    let o = vibesync(&[&"policy", &"test", &tmp.path()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        fail.contains("claims an unknown op is fine")
            && fail.contains("allow")
            && fail.contains("deny"),
        "{fail}"
    );
    assert!(
        out.contains("wrong.json: case \"claims an unknown op is fine\": expected allow, got deny"),
        "{out}"
    );
    assert!(
        out.contains("validation.unknown-op"),
        "the reason names the rule that fired: {out}"
    );
    assert!(out.contains("1 passed, 1 failed, 2 cases"), "{out}");
}

#[test]
fn a_fixture_for_a_policy_that_is_not_loaded_fails() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("ghost.json"),
        r#"{"policy": "ghost", "cases": [{"name": "x", "op": "select", "args": {"ids": []}, "expect": "allow"}]}"#,
    )
    .unwrap();
    let o = vibesync(&[&"policy", &"test", &tmp.path()]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        stdout(&o).contains("no policy named `ghost` is loaded"),
        "{}",
        both(&o)
    );
}

#[test]
fn inspect_of_the_rust_template() {
    let wasm = example(Example::Rust).unwrap();
    let o = vibesync(&[&"policy", &"inspect", &wasm]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", both(&o));
    let sha = sha256_hex(&std::fs::read(&wasm).unwrap());
    assert!(out.contains(&format!("sha256  {sha}")), "{out}");
    assert!(
        out.contains("world   vibesync:policy/policy@0.1.0 (implemented)"),
        "{out}"
    );
    assert!(
        out.contains("[granted] vibesync:policy/types@0.1.0"),
        "{out}"
    );
    assert!(out.contains("[NOT GRANTED] wasi:"), "{out}");
    assert!(out.contains("evaluate(intent, context, config)"), "{out}");
    let o = vibesync(&[&"policy", &"inspect", &wasm, &"--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["sha256"], sha);
    assert!(
        v["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "granted"
                || (c["status"] == "not-granted"
                    && c["interface"].as_str().unwrap().starts_with("wasi:")))
    );
}

#[test]
fn inspect_of_something_that_is_not_a_component_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("junk.wasm");
    std::fs::write(&f, b"\0asm not really").unwrap();
    let o = vibesync(&[&"policy", &"inspect", &f]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a valid WebAssembly component"),
        "{}",
        both(&o)
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn write_intent(dir: &Path, json: &str) -> std::path::PathBuf {
    let p = dir.join("intent.json");
    std::fs::write(&p, json).unwrap();
    p
}

const DELETE_HERO: &str =
    r#"{"op": "delete_object", "args": {"id": "obj-1"}, "objects": ["obj-1"]}"#;
const HERO_CONTEXT: &str = r#"{"objects": [{"id": "obj-1", "name": "HERO_Robot", "kind": "mesh"}], "scene_object_count": 1}"#;

#[test]
fn lock_approve_and_eval_refuse_what_is_not_approved() {
    let wasm = example(Example::Rust).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("team");
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join("team-protect.wasm");
    std::fs::copy(&wasm, &module).unwrap();
    let intent = write_intent(tmp.path(), DELETE_HERO);
    let ctx = tmp.path().join("ctx.json");
    std::fs::write(&ctx, HERO_CONTEXT).unwrap();
    let eval = || {
        vibesync(&[
            &"policy",
            &"eval",
            &module,
            &"--intent",
            &intent,
            &"--context",
            &ctx,
        ])
    };

    // Not approved: refused, with the remedy.
    let o = eval();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("policies.lock") && err.contains("vibesync policy lock DIR --reviewer NAME"),
        "{}",
        both(&o)
    );

    // Approved by alice: the lock names her and the time; eval decides.
    let o = vibesync(&[&"policy", &"lock", &dir, &"--reviewer", &"alice"]);
    assert!(o.status.success(), "{}", both(&o));
    let lock = std::fs::read_to_string(dir.join("policies.lock")).unwrap();
    let sha = sha256_hex(&std::fs::read(&module).unwrap());
    assert!(
        lock.contains("reviewer = \"alice\"")
            && lock.contains(&sha)
            && lock.contains("approved-at = \"20"),
        "{lock}"
    );
    let o = eval();
    assert_eq!(o.status.code(), Some(2), "a deny exits 2: {}", both(&o));
    let out = stdout(&o);
    assert!(
        out.contains("verdict: deny")
            && out.contains("team-protect.protected")
            && out.contains("HERO_Robot"),
        "{out}"
    );

    // The module changes: refused again until bob approves this one module.
    let v2 = rust_template_variant(&tmp.path().join("v2"), "KEEP_");
    std::fs::copy(&v2, &module).unwrap();
    let o = eval();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("was changed since it was approved") && err.contains("approved by alice"),
        "{}",
        both(&o)
    );
    let o = vibesync(&[
        &"policy",
        &"approve",
        &dir,
        &"team-protect",
        &"--reviewer",
        &"bob",
    ]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(stdout(&o).contains("bob"), "{}", both(&o));
    let o = eval();
    assert!(
        o.status.success(),
        "v2 protects KEEP_, not HERO_: {}",
        both(&o)
    );
    assert!(stdout(&o).contains("verdict: allow"), "{}", both(&o));

    // Approving a module that is not there names it.
    let o = vibesync(&[&"policy", &"approve", &dir, &"nope", &"--reviewer", &"bob"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no module `nope`"),
        "{}",
        both(&o)
    );
}

#[test]
fn diff_shows_hash_size_and_the_cases_whose_verdict_changes() {
    let v1 = example(Example::Rust).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let v2 = rust_template_variant(&tmp.path().join("v2"), "KEEP_");
    let fixtures = Example::Rust.fixtures();
    let o = vibesync(&[&"policy", &"diff", &v1, &v2, &"--fixtures", &fixtures]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "verdicts changed: exit 1: {}",
        both(&o)
    );
    assert!(
        out.contains(&sha256_hex(&std::fs::read(&v1).unwrap())),
        "{out}"
    );
    assert!(
        out.contains(&sha256_hex(&std::fs::read(&v2).unwrap())),
        "{out}"
    );
    assert!(
        out.contains("imports: unchanged") && out.contains("exports: unchanged"),
        "{out}"
    );
    // HERO_ objects are no longer protected by default in v2.
    assert!(
        out.contains(
            "protect.json / agent deletes a hero object: deny (pass) -> allow (FAIL), expected deny"
        ),
        "{out}"
    );
    assert!(
        out.contains("protect.json / agent renames a hero object: deny (pass) -> allow (FAIL)"),
        "{out}"
    );
    assert!(
        !out.contains("configured prefix:"),
        "cases with an explicit prefix do not change: {out}"
    );

    let o = vibesync(&[&"policy", &"diff", &v1, &v1]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(stdout(&o).contains("identical"), "{}", both(&o));

    let o = vibesync(&[&"policy", &"diff", &v1, &v2, &"--json"]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["cases"], 0);
    assert_eq!(d["imports"].as_array().unwrap().len(), 0);
}

#[test]
fn test_with_an_unlocked_module_file() {
    let wasm = example(Example::Rust).unwrap();
    let o = vibesync(&[
        &"policy",
        &"test",
        &Example::Rust.fixtures(),
        &"--module",
        &wasm,
        &"--unlocked",
    ]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("without checking policies.lock"),
        "{}",
        both(&o)
    );
    // Without --unlocked the lock beside the file is required.
    let o = vibesync(&[
        &"policy",
        &"test",
        &Example::Rust.fixtures(),
        &"--module",
        &wasm,
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("policies.lock"),
        "{}",
        both(&o)
    );
}

#[test]
fn a_locked_directory_of_the_template_and_its_fixtures() {
    let wasm = example(Example::Rust).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = locked_dir(
        &tmp.path().join("p"),
        &[(wasm.as_path(), "team-protect.wasm")],
        "carol",
    );
    let o = vibesync(&[
        &"policy",
        &"test",
        &Example::Rust.fixtures(),
        &"--modules",
        &dir,
        &"--json",
    ]);
    assert!(o.status.success(), "{}", both(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    assert!(
        results
            .iter()
            .all(|c| c["passed"] == true && c["policy"] == "team-protect")
    );
}

#[test]
fn bench_measures_every_builtin_with_its_ratio_to_the_baseline() {
    let o = vibesync(&[
        &"policy",
        &"bench",
        &"--iterations",
        &"20",
        &"--startup-samples",
        &"1",
        &"--json",
    ]);
    assert!(o.status.success(), "{}", both(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).expect("JSON rows");
    let names: Vec<&str> = rows.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(names, ["firewall", "nan-audit", "validation"], "{rows:?}");
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
        // Every figure was measured (a real, positive duration), a cold
        // start-up (compiling) costs more than a cached one (deserialising),
        // and p99 is never below p50.
        for k in [
            "startup_cold_us",
            "startup_cached_us",
            "first_call_us",
            "warm_p50_us",
        ] {
            assert!(f(k) > 0.0, "{k} in {r}");
        }
        assert!(f("startup_cold_us") > f("startup_cached_us"), "{r}");
        assert!(f("warm_p99_us") >= f("warm_p50_us"), "{r}");
        assert!(r["size"].as_u64().unwrap() > 1000, "{r}");
    }
}
