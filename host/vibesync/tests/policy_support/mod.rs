//! Helpers shared by the policy CLI tests: the real `vibesync` binary with a
//! private compile cache, and the example policies built from source with
//! their real toolchains (cargo for Rust, componentize-py, componentize-js).
#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::SystemTime;

pub const BIN: &str = env!("CARGO_BIN_EXE_vibesync");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Where built example components and the compile cache live: the test
/// target's scratch directory, shared by every test binary.
pub fn scratch() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("policy-examples");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `vibesync ARGS` with a compile cache of its own; waits for the exit.
pub fn vibesync(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(BIN)
        .args(args.iter().map(|a| a.as_ref()))
        .env("VIBESYNC_CACHE_DIR", scratch().join("cache"))
        .output()
        .expect("run vibesync")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both streams, for assertion messages.
pub fn both(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        stdout(o),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The example policies of `policies/examples`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Example {
    /// `rust-template`: team-protect, built with cargo.
    Rust,
    /// `python-naming`: team-naming, built with componentize-py.
    Python,
    /// `js-palette`: team-palette, built with componentize-js.
    Js,
}

impl Example {
    pub fn dir(self) -> PathBuf {
        repo_root().join("policies/examples").join(match self {
            Example::Rust => "rust-template",
            Example::Python => "python-naming",
            Example::Js => "js-palette",
        })
    }
    /// The policy's name: its `metadata().name` and its module file stem.
    pub fn name(self) -> &'static str {
        match self {
            Example::Rust => "team-protect",
            Example::Python => "team-naming",
            Example::Js => "team-palette",
        }
    }
    pub fn fixtures(self) -> PathBuf {
        self.dir().join("fixtures")
    }
}

static BUILD: Mutex<()> = Mutex::new(());

fn newest_mtime(paths: &[PathBuf]) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for p in paths {
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        if meta.is_dir() {
            let children: Vec<PathBuf> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            newest = newest.max(newest_mtime(&children));
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
    }
    newest
}

/// The example's component, built from source (again only when a source is
/// newer than the last build). `None` (after a loud message) only when its
/// toolchain is missing and cannot be installed outside CI; under `CI` that
/// is a failure.
pub fn example(e: Example) -> Option<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let out = scratch().join(format!("{}.wasm", e.name()));
    if e == Example::Rust {
        return Some(build_rust(&e.dir(), &out, "rust-target"));
    }
    let inputs = [e.dir(), repo_root().join("wit")];
    let fresh = std::fs::metadata(&out)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built > newest_mtime(&inputs));
    if fresh {
        return Some(out);
    }
    let script = e.dir().join("build.sh");
    let tmp = out.with_extension(format!("tmp{}.wasm", std::process::id()));
    let build = || {
        Command::new("bash")
            .arg(&script)
            .arg(&tmp)
            .output()
            .expect("run the example's build.sh")
    };
    let mut o = build();
    if o.status.code() == Some(3) {
        // Toolchain missing: install it the way tests/run.sh does, then retry.
        let setup = repo_root().join("policies/examples/setup-toolchains.sh");
        let s = Command::new("bash")
            .arg(&setup)
            .output()
            .expect("run setup-toolchains.sh");
        eprintln!("{}", both(&s));
        o = build();
    }
    if o.status.code() == Some(3) {
        let why = format!("the {e:?} toolchain is missing: {}", both(&o));
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        eprintln!("\n!!!!! SKIPPING the {e:?} example policy: {why}\n");
        return None;
    }
    assert!(
        o.status.success(),
        "building the {e:?} example failed: {}",
        both(&o)
    );
    std::fs::rename(&tmp, &out).unwrap();
    Some(out)
}

/// Build a copy of the Rust template (or the template itself) with cargo,
/// in `target_dir` under the scratch directory. Copies and the template need
/// different target directories: they build a file of the same name, and
/// cargo does not copy an up-to-date artifact out again.
pub fn build_rust(crate_dir: &Path, out: &Path, target_dir: &str) -> PathBuf {
    let target = scratch().join(target_dir);
    let o = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("run cargo");
    assert!(
        o.status.success(),
        "building {} failed: {}",
        crate_dir.display(),
        both(&o)
    );
    // Copy, then rename into place: other tests of this binary may be
    // reading `out` (a plain copy truncates it first, and a reader then
    // saw an empty module).
    let tmp = out.with_extension(format!("tmp{}.wasm", std::process::id()));
    std::fs::copy(target.join("wasm32-wasip2/release/team_protect.wasm"), &tmp).unwrap();
    std::fs::rename(&tmp, out).unwrap();
    out.to_owned()
}

/// A copy of the Rust template in `dest` whose protected prefix default is
/// `prefix` instead of `HERO_`: "version 2" of a team policy.
pub fn rust_template_variant(dest: &Path, prefix: &str) -> PathBuf {
    let src = Example::Rust.dir();
    std::fs::create_dir_all(dest.join("src")).unwrap();
    let sdk = repo_root().join("policies/sdk");
    let manifest = std::fs::read_to_string(src.join("Cargo.toml"))
        .unwrap()
        .replace(
            "path = \"../../sdk\"",
            &format!("path = {:?}", sdk.display().to_string()),
        );
    std::fs::write(dest.join("Cargo.toml"), manifest).unwrap();
    let _ = std::fs::copy(src.join("Cargo.lock"), dest.join("Cargo.lock"));
    let lib = std::fs::read_to_string(src.join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("\"HERO_\""),
        "the template's default prefix moved; update this helper"
    );
    std::fs::write(
        dest.join("src/lib.rs"),
        lib.replace("\"HERO_\"", &format!("{prefix:?}")),
    )
    .unwrap();
    let out = dest.join("team-protect.wasm");
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    build_rust(dest, &out, "rust-target-variant")
}

/// A directory holding `modules` (copied under their given file names) and
/// a lock approving them as `reviewer`.
pub fn locked_dir(dir: &Path, modules: &[(&Path, &str)], reviewer: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for (src, name) in modules {
        std::fs::copy(src, dir.join(name)).unwrap();
    }
    let o = vibesync(&[&"policy", &"lock", &dir, &"--reviewer", &reviewer]);
    assert!(o.status.success(), "{}", both(&o));
    dir.to_owned()
}
