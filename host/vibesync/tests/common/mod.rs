//! Helpers shared by the front-door tests: the real `vibesync` binary run
//! against the fake core, and the Python MCP client's venv.
#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vibesync");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The venv's python with `mcp` importable, creating it with
/// `tests/mcp/setup-venv.sh` if needed. `None` (after a loud message) only
/// when it cannot be created outside CI; in CI that is a failure.
pub fn mcp_python() -> Option<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    let imports = |p: &Path| {
        Command::new(p)
            .args(["-c", "import mcp"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && imports(&python) {
        return Some(python);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/setup-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run setup-venv.sh");
    if out.status.success() && imports(&python) {
        return Some(python);
    }
    let why = format!(
        "cannot create the Python MCP client venv with {}: {}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("\n!!!!! SKIPPING the MCP end-to-end test: {why}\n");
    None
}

/// The venv's python with `bpy` (Blender as a Python module) importable,
/// installing `bpy==5.0.1` into the venv if needed. `None` (after a loud
/// message) only outside CI; under `CI` a missing `bpy` fails the test.
///
/// `VIBESYNC_BPY_PYTHON` names another interpreter instead (e.g. a venv
/// with `bpy` 4.2 LTS, see tests/run.sh); it must import `bpy`, or the test
/// fails.
pub fn bpy_python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("VIBESYNC_BPY_PYTHON") {
        let python = PathBuf::from(python);
        let ok = Command::new(&python)
            .args(["-c", "import bpy"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "VIBESYNC_BPY_PYTHON={} cannot `import bpy`: install bpy into that venv or unset the variable",
            python.display()
        );
        return Some(python);
    }
    let python = mcp_python()?;
    let imports = || {
        Command::new(&python)
            .args(["-c", "import bpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if imports() {
        return Some(python);
    }
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "bpy==5.0.1",
        ])
        .output()
        .expect("run pip");
    if out.status.success() && imports() {
        return Some(python);
    }
    let why = format!(
        "cannot install `bpy==5.0.1` into the venv: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("\n!!!!! SKIPPING the real-Blender test: {why}\n");
    None
}

/// The adapter SDK's C ABI library next to the `vibesync` binary, built
/// with `cargo build -p vibesync-adapter-sdk` when it is not there yet.
pub fn sdk_cdylib() -> PathBuf {
    let profile_dir = Path::new(BIN).parent().expect("binary dir");
    let lib = profile_dir.join("libvibesync_adapter_sdk.so");
    if !lib.exists() {
        let target = profile_dir.parent().expect("target dir");
        let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args(["build", "-p", "vibesync-adapter-sdk"])
            .env("CARGO_TARGET_DIR", target)
            .current_dir(repo_root())
            .status()
            .expect("run cargo build -p vibesync-adapter-sdk");
        assert!(status.success(), "building the adapter SDK cdylib failed");
    }
    assert!(
        lib.exists(),
        "{} missing after building the SDK",
        lib.display()
    );
    lib
}

/// `vibesync serve --fake-core` with stdin held open (the MCP stdio session
/// lives as long as the child), waiting until its ctl socket exists.
pub struct Host {
    pub child: Child,
    pub state_dir: PathBuf,
}

impl Host {
    pub fn start(state_dir: &Path, extra: &[&str]) -> Host {
        let child = Command::new(BIN)
            .args(["serve", "--fake-core", "--state-dir"])
            .arg(state_dir)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vibesync serve");
        let socket = state_dir.join("ctl.sock");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "ctl.sock did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Host {
            child,
            state_dir: state_dir.to_owned(),
        }
    }

    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("ctl")
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(args)
            .output()
            .expect("run ctl")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
