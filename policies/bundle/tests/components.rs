//! The embedded components are valid components of the policy world: they
//! validate, export `vibesync:policy/evaluator`, import nothing beyond the
//! policy package's own interfaces (no WASI at all: they are built for
//! `wasm32-unknown-unknown` and componentized by the build script, and none
//! of them calls `log`, so they import nothing), are one core module each,
//! and their recorded SHA-256 is the hash of the embedded bytes.

use sha2::{Digest, Sha256};
use vibesync_policies::BUILTINS;
use wasmparser::{Parser, Payload, Validator, WasmFeatures};

/// Top-level (component-level) import and export names.
fn interface(wasm: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports, mut depth) = (Vec::new(), Vec::new(), 0);
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("parses") {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(s) if depth == 1 => {
                imports.extend(s.into_iter().map(|i| i.expect("import").name.0.to_owned()));
            }
            Payload::ComponentExportSection(s) if depth == 1 => {
                exports.extend(s.into_iter().map(|e| e.expect("export").name.0.to_owned()));
            }
            _ => {}
        }
    }
    (imports, exports)
}

#[test]
fn builtins_are_in_pipeline_order() {
    let names: Vec<_> = BUILTINS.iter().map(|b| b.name).collect();
    assert_eq!(names, ["firewall", "nan-audit", "validation"]);
}

#[test]
fn components_validate() {
    for b in BUILTINS {
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(b.wasm)
            .unwrap_or_else(|e| panic!("{} does not validate: {e}", b.name));
        assert!(
            Parser::is_component(b.wasm),
            "{} is a core module, not a component",
            b.name
        );
    }
}

#[test]
fn components_export_the_evaluator_and_import_nothing_but_the_policy_world() {
    for b in BUILTINS {
        let (imports, exports) = interface(b.wasm);
        assert_eq!(exports, ["vibesync:policy/evaluator@0.1.0"], "{}", b.name);
        for i in &imports {
            assert!(
                i.starts_with("vibesync:policy/"),
                "{} imports {i}: a built-in must not import WASI (it is built for wasm32-unknown-unknown)",
                b.name
            );
        }
        println!("{}: {} bytes, imports {imports:?}", b.name, b.wasm.len());
    }
}

/// Core modules nested anywhere in a component.
fn core_modules(wasm: &[u8]) -> usize {
    Parser::new(0)
        .parse_all(wasm)
        .filter(|p| matches!(p, Ok(Payload::ModuleSection { .. })))
        .count()
}

#[test]
fn components_are_one_core_module_each() {
    // No WASI adapter shim/fixup modules: the instantiation cost of a
    // fresh instance per evaluation depends on it (docs/PERFORMANCE.md).
    for b in BUILTINS {
        assert_eq!(core_modules(b.wasm), 1, "{}", b.name);
    }
}

#[test]
fn recorded_hashes_match_the_bytes() {
    for b in BUILTINS {
        assert_eq!(hex::encode(Sha256::digest(b.wasm)), b.sha256, "{}", b.name);
        assert_eq!(b.sha256.len(), 64);
    }
}

#[cfg(feature = "test-fixtures")]
#[test]
fn every_fixture_crate_is_built_and_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("policies/fixtures exists") {
        let entry = entry.unwrap();
        if !entry.path().join("Cargo.toml").is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let wasm = vibesync_policies::test_fixture(&name)
            .unwrap_or_else(|| panic!("fixture {name} not embedded"));
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(wasm)
            .unwrap_or_else(|e| panic!("fixture {name} does not validate: {e}"));
        seen += 1;
    }
    assert!(seen > 0, "no fixture crates found");
    assert_eq!(vibesync_policies::test_fixture("no-such-fixture"), None);
}
