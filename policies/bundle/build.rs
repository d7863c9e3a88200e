//! Builds the built-in policies (and, with `test-fixtures`, the hostile test
//! policies) to WebAssembly components as part of the normal build.
//!
//! The built-ins are compiled to `wasm32-unknown-unknown` core modules and
//! turned into components here with `wit-component`, so each component
//! imports only what its code calls from the policy world (the built-ins
//! call nothing: no import at all) and is a single core module. Built for
//! `wasm32-wasip2`, Rust's `std` made every one of them import about thirty
//! WASI functions and added two adapter core modules (a shim and a fixup)
//! that the host had to link and instantiate on every evaluation, as part of
//! the fixed cost of a fresh instance (`docs/PERFORMANCE.md`, round 3). The
//! hostile fixtures stay `wasm32-wasip2`: some of them exist to call WASI.
//!
//! A nested `cargo build --target <target>` runs on the workspace
//! manifest with its own target directory next to the outer one (derived
//! from `OUT_DIR`, shared by every outer profile), so it neither waits on the
//! outer build's lock nor starts from scratch each time. The environment
//! cargo gives a build script (RUSTFLAGS for the host, CARGO_TARGET_DIR,
//! CARGO_BUILD_TARGET, profile settings, clippy's wrapper...) is cleared; only
//! what locates the toolchain, the registry cache and the jobserver is kept.
//! The components are copied into `OUT_DIR`, hashed, and embedded by
//! `src/lib.rs` through a generated `builtins.rs`.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Target of the built-ins (core modules, componentized below).
const BUILTIN_TARGET: &str = "wasm32-unknown-unknown";
/// Target of the test fixtures (components straight from rustc; some call WASI).
const FIXTURE_TARGET: &str = "wasm32-wasip2";
/// Built-in policies in pipeline order: (name, crate directory, package).
const BUILTINS: &[(&str, &str, &str)] = &[
    ("firewall", "firewall", "vibesync-policy-firewall"),
    ("nan-audit", "nan-audit", "vibesync-policy-nan-audit"),
    ("validation", "validation", "vibesync-policy-validation"),
];
/// Sources the components depend on, relative to `policies/`.
const WATCHED: &[&str] = &[
    "types",
    "sdk",
    "firewall/src",
    "firewall/Cargo.toml",
    "firewall/build.rs",
    "nan-audit/src",
    "nan-audit/Cargo.toml",
    "nan-audit/build.rs",
    "validation/src",
    "validation/Cargo.toml",
    "validation/build.rs",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let policies = manifest_dir
        .parent()
        .expect("policies/bundle has a parent")
        .to_path_buf();
    let root = policies
        .parent()
        .expect("policies/ has a parent")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    // Watched paths are relative to this package: a build cache shared by
    // several clones of the repository (CI keeps one outside the clone)
    // must watch the sources of the clone being built, not of the clone
    // that happened to run this script first.
    for p in WATCHED {
        println!("cargo:rerun-if-changed=../{p}");
    }
    for p in ["wit", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml"] {
        println!("cargo:rerun-if-changed=../../{p}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    check_target_installed(BUILTIN_TARGET);
    // <target>/<profile>/build/<pkg>/out -> <target>/policy-wasm
    let base = out_dir.ancestors().nth(4).unwrap_or(&out_dir).to_path_buf();

    let target_dir = base.join("policy-wasm");
    let mut args: Vec<String> = vec!["--profile".into(), "policy".into()];
    for (_, _, package) in BUILTINS {
        args.extend(["-p".into(), (*package).to_owned()]);
    }
    nested_build(&root.join("Cargo.toml"), BUILTIN_TARGET, &target_dir, &args);
    let built = target_dir.join(BUILTIN_TARGET).join("policy");

    let mut code = String::from(
        "/// The built-in policies, in pipeline order.\npub const BUILTINS: &[Builtin] = &[\n",
    );
    for (name, _, package) in BUILTINS {
        let (path, sha) = stage(&built, package, &out_dir, componentize);
        writeln!(
            code,
            "    Builtin {{ name: {name:?}, wasm: include_bytes!({path:?}), sha256: {sha:?} }},",
            path = path.display()
        )
        .unwrap();
    }
    code.push_str("];\n");

    let fixtures = policies.join("fixtures");
    if env::var_os("CARGO_FEATURE_TEST_FIXTURES").is_some() {
        for p in ["Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed=../fixtures/{p}");
        }
        let crates = fixture_crates(&fixtures);
        for (dir, _) in &crates {
            println!("cargo:rerun-if-changed=../fixtures/{dir}");
        }
        let target_dir = base.join("policy-fixtures-wasm");
        if !crates.is_empty() {
            check_target_installed(FIXTURE_TARGET);
            nested_build(
                &fixtures.join("Cargo.toml"),
                FIXTURE_TARGET,
                &target_dir,
                &["--release".into(), "--workspace".into()],
            );
        }
        code.push_str(
            "/// The compiled component of test fixture crate `policies/fixtures/<name>`.\n\
             pub fn test_fixture(name: &str) -> Option<&'static [u8]> {\n    match name {\n",
        );
        for (dir, package) in &crates {
            let (path, _) = stage(
                &target_dir.join(FIXTURE_TARGET).join("release"),
                package,
                &out_dir,
                |_, bytes| bytes,
            );
            writeln!(
                code,
                "        {dir:?} => Some(include_bytes!({:?})),",
                path.display()
            )
            .unwrap();
        }
        code.push_str("        _ => None,\n    }\n}\n");
    }
    std::fs::write(out_dir.join("builtins.rs"), code).expect("write builtins.rs");
}

/// Fail with the remedy if the standard library for a wasm target is absent.
fn check_target_installed(target: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let Some(sysroot) = sysroot else {
        panic!("could not ask `{rustc} --print sysroot` where the standard libraries are");
    };
    if !sysroot.join("lib/rustlib").join(target).is_dir() {
        panic!(
            "\n\nThe policy components are compiled for {target}, but this toolchain \
             ({}) has no {target} standard library.\nInstall it with:\n\n    rustup target add {target}\n\n",
            sysroot.display()
        );
    }
}

/// `cargo build --target <target> <args>` on `manifest`, in a clean environment.
fn nested_build(manifest: &Path, target: &str, target_dir: &Path, args: &[String]) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .args(["--target", target])
        .arg("--target-dir")
        .arg(target_dir)
        .args(args)
        .env_clear();
    for (key, value) in env::vars_os() {
        let k = key.to_string_lossy();
        let keep = matches!(
            k.as_ref(),
            "PATH"
                | "HOME"
                | "USER"
                | "TMPDIR"
                | "LANG"
                | "TERM"
                | "CARGO_HOME"
                | "RUSTUP_HOME"
                | "RUSTUP_TOOLCHAIN"
                | "RUSTC"
                | "CARGO_MAKEFLAGS"
                | "SSL_CERT_FILE"
                | "SSL_CERT_DIR"
                | "http_proxy"
                | "https_proxy"
                | "HTTP_PROXY"
                | "HTTPS_PROXY"
                | "no_proxy"
                | "NO_PROXY"
        ) || k.starts_with("CARGO_NET_")
            || k.starts_with("CARGO_HTTP_")
            || k.starts_with("CARGO_REGISTRIES_")
            || k.starts_with("CARGO_REGISTRY_");
        if keep {
            cmd.env(key, value);
        }
    }
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run cargo for the policy components: {e}"));
    if !output.status.success() {
        panic!(
            "building the policy components failed (`cargo build --manifest-path {} --target {target} {}`):\n{}",
            manifest.display(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Copy `<built>/<package>.wasm`, passed through `transform`, into `OUT_DIR`
/// and hash it.
fn stage(
    built: &Path,
    package: &str,
    out_dir: &Path,
    transform: impl FnOnce(&str, Vec<u8>) -> Vec<u8>,
) -> (PathBuf, String) {
    let file = format!("{}.wasm", package.replace('-', "_"));
    let bytes = std::fs::read(built.join(&file)).unwrap_or_else(|e| {
        panic!(
            "the nested build did not produce {}: {e}",
            built.join(&file).display()
        )
    });
    let bytes = transform(package, bytes);
    let staged = out_dir.join(&file);
    std::fs::write(&staged, &bytes).expect("copy component into OUT_DIR");
    (staged, hex::encode(Sha256::digest(&bytes)))
}

/// Turn a built-in's core module into a component of the policy world.
///
/// `wit-bindgen` embedded the world in the module (a `component-type`
/// custom section); the encoder reads it, checks the module's imports and
/// exports against it, and wraps the module. Only functions the module
/// really imports become component imports, so a policy that never logs
/// imports nothing and needs no adapter modules.
fn componentize(package: &str, module: Vec<u8>) -> Vec<u8> {
    wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .unwrap_or_else(|e| {
            panic!("cannot turn the {BUILTIN_TARGET} module of {package} into a component: {e:#}")
        })
}

/// `(directory name, package name)` of every crate in the fixtures workspace.
fn fixture_crates(fixtures: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(fixtures) else {
        return Vec::new();
    };
    let mut crates: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path().join("Cargo.toml")).ok()?;
            let manifest: toml::Table = text.parse().ok()?;
            let name = manifest.get("package")?.get("name")?.as_str()?.to_owned();
            Some((e.file_name().to_string_lossy().into_owned(), name))
        })
        .collect();
    crates.sort();
    crates
}
