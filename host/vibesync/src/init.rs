//! `vibesync init`: a project's state directory, the host's certificate and
//! one pairing file per engine, with safe permissions.
//!
//! Layout (all inside the state dir, which is mode 0700):
//!
//! | file | mode | what |
//! |---|---|---|
//! | `host-cert.der` | 0644 | the host's self-signed certificate, DER (adapters pin its SHA-256) |
//! | `host-key.der` | 0600 | its private key, PKCS#8 DER |
//!
//! The certificate and pairing files are made by the link crate
//! (`vibesync_link::load_or_create_identity`, `write_pairing`), so the
//! certificate pinned in the pairing files is the one the link presents.
//! | `pairing/<engine>.json` | 0600 | endpoint, certificate fingerprint, bootstrap secret |
//!
//! Existing files are never overwritten without `--force`: a new certificate
//! or secret unpairs every engine.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use vibesync_protocol::Pairing;

use crate::config::{Config, EngineConfig, EngineKind};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Config file (its state dir, engines and link address are used).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// State directory to create (default: the config's, `./.vibesync`).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// An engine to pair, as `NAME` (kind inferred from the name: blender,
    /// unity, reference) or `NAME=KIND`. Repeatable; default: the config's.
    #[arg(long = "engine", value_name = "NAME[=KIND]")]
    pub engines: Vec<String>,
    /// The endpoint written into pairing files (default: the config's
    /// `link.listen`).
    #[arg(long)]
    pub endpoint: Option<SocketAddr>,
    /// Replace an existing certificate and pairing files (unpairs engines).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} already exists. Remedy: keep it (engines stay paired), or pass --force to replace it and re-pair every engine"
    )]
    Exists { path: PathBuf },
    #[error(
        "--engine `{spec}`: {reason}. Remedy: use NAME or NAME=KIND with KIND one of blender, unity, reference"
    )]
    BadEngine { spec: String, reason: String },
    #[error("cannot generate the host certificate: {0}")]
    Cert(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Parses `NAME` or `NAME=KIND`.
pub fn parse_engine(spec: &str) -> Result<EngineConfig, InitError> {
    let (name, kind) = match spec.split_once('=') {
        Some((name, kind)) => (name, kind),
        None => (spec, spec),
    };
    let kind = match kind {
        "blender" => EngineKind::Blender,
        "unity" => EngineKind::Unity,
        "reference" => EngineKind::Reference,
        other => {
            return Err(InitError::BadEngine {
                spec: spec.into(),
                reason: format!("unknown kind `{other}`"),
            });
        }
    };
    if name.is_empty()
        || name.len() > 32
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(InitError::BadEngine {
            spec: spec.into(),
            reason: "the name must be 1-32 characters of [A-Za-z0-9_-]".into(),
        });
    }
    Ok(EngineConfig {
        name: name.into(),
        kind,
    })
}

/// The certificate files the link creates (see `vibesync_link::Identity`).
const CERT_FILE: &str = "host-cert.der";
const KEY_FILE: &str = "host-key.der";

/// What `init` wrote.
#[derive(Debug)]
pub struct InitReport {
    pub state_dir: PathBuf,
    pub cert_sha256: String,
    pub pairing_files: Vec<PathBuf>,
}

/// Creates `dir` (and parents) and sets it to 0700.
/// Only changes the mode when it differs: a confined host may not `chmod`.
pub fn create_private_dir(dir: &Path) -> Result<(), InitError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    if fs::metadata(dir).map_err(io(dir))?.permissions().mode() & 0o777 == 0o700 {
        return Ok(());
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io(dir))
}

/// Does the work of `vibesync init`. The certificate and the pairing files
/// come from the link crate, so host and adapters agree on one format.
pub fn init(
    state_dir: &Path,
    engines: &[EngineConfig],
    endpoint: SocketAddr,
    force: bool,
) -> Result<InitReport, InitError> {
    create_private_dir(state_dir)?;
    let pairing_dir = state_dir.join("pairing");
    let mut targets = vec![state_dir.join(CERT_FILE), state_dir.join(KEY_FILE)];
    targets.extend(
        engines
            .iter()
            .map(|e| pairing_dir.join(format!("{}.json", e.name))),
    );
    for path in &targets {
        if path.exists() {
            if !force {
                return Err(InitError::Exists { path: path.clone() });
            }
            fs::remove_file(path).map_err(io(path))?;
        }
    }
    let identity = vibesync_link::load_or_create_identity(state_dir)
        .map_err(|e| InitError::Cert(e.to_string()))?;
    create_private_dir(&pairing_dir)?;
    let mut pairing_files = Vec::new();
    for (engine, path) in engines.iter().zip(&targets[2..]) {
        let pairing = Pairing::new(
            &endpoint.to_string(),
            vibesync_link::SERVER_NAME,
            identity.fingerprint,
            &engine.name,
            engine.kind.as_str(),
            vibesync_link::random_key(),
        );
        vibesync_link::write_pairing(path, &pairing).map_err(io(path))?;
        pairing_files.push(path.clone());
    }
    Ok(InitReport {
        state_dir: state_dir.to_owned(),
        cert_sha256: hex::encode(identity.fingerprint),
        pairing_files,
    })
}

pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.as_deref())?;
    let state_dir = args.state_dir.unwrap_or(config.state_dir);
    let engines = if args.engines.is_empty() {
        config.engines
    } else {
        args.engines
            .iter()
            .map(|s| parse_engine(s))
            .collect::<Result<_, _>>()?
    };
    let endpoint = args.endpoint.unwrap_or(config.link.listen);
    let report = init(&state_dir, &engines, endpoint, args.force)?;
    println!("state dir    {} (0700)", report.state_dir.display());
    println!("certificate  sha256 {}", report.cert_sha256);
    for path in &report.pairing_files {
        println!(
            "pairing      {} (0600): give it to that engine's add-on",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn creates_private_dir_cert_and_pairing_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let engines = [
            parse_engine("blender").unwrap(),
            parse_engine("u1=unity").unwrap(),
        ];
        let report = init(&dir, &engines, "127.0.0.1:7878".parse().unwrap(), false).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("host-key.der")), 0o600);
        assert_eq!(report.pairing_files.len(), 2);
        let text = fs::read_to_string(dir.join("pairing/u1.json")).unwrap();
        assert_eq!(mode(&dir.join("pairing/u1.json")), 0o600);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["kind"], "unity");
        assert_eq!(v["endpoint"], "127.0.0.1:7878");
        assert_eq!(v["cert_sha256"], report.cert_sha256.as_str());
        assert_eq!(v["bootstrap_secret"].as_str().unwrap().len(), 64);
        let b: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("pairing/blender.json")).unwrap())
                .unwrap();
        assert_ne!(
            b["bootstrap_secret"], v["bootstrap_secret"],
            "each engine gets its own secret"
        );
    }

    #[test]
    fn refuses_to_overwrite_without_force() {
        let tmp = tempfile::tempdir().unwrap();
        let engines = [parse_engine("blender").unwrap()];
        let addr = "127.0.0.1:7878".parse().unwrap();
        let first = init(tmp.path(), &engines, addr, false).unwrap();
        let err = init(tmp.path(), &engines, addr, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        let second = init(tmp.path(), &engines, addr, true).unwrap();
        assert_ne!(first.cert_sha256, second.cert_sha256);
    }

    #[test]
    fn bad_engine_specs_name_the_remedy() {
        let err = parse_engine("x=unreal").unwrap_err().to_string();
        assert!(
            err.contains("unknown kind `unreal`") && err.contains("blender, unity, reference"),
            "{err}"
        );
        assert!(parse_engine("a/b=unity").is_err());
    }
}
