//! The host's configuration: one TOML file, every key optional.
//!
//! `Config::default()` is the embedded default, so `vibesync serve` works
//! with no file at all; `vibesync.example.toml` at the repository root
//! documents every key with its default (a test keeps the two equal).
//! Unknown keys are refused with their name — a misspelt budget must not be
//! silently ignored. The HTTP listeners (MCP, metrics) must be loopback.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors loading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}. Remedy: {remedy}")]
    Invalid {
        key: &'static str,
        message: String,
        remedy: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the WAL, the certificate, pairing files and `ctl.sock` live.
    pub state_dir: PathBuf,
    /// The project's root directory (policies see it as `project-root`).
    pub project_root: PathBuf,
    pub link: LinkConfig,
    pub engines: Vec<EngineConfig>,
    pub policies: PoliciesConfig,
    pub health: HealthConfig,
    pub canonical: CanonicalConfig,
    pub mcp: McpConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// QUIC listen address for engine adapters.
    pub listen: SocketAddr,
    /// Frames older than this, or replayed, are refused.
    pub replay_window_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The engine's name in intents, pairing files and logs.
    pub name: String,
    /// `blender`, `unity` or `reference`.
    pub kind: EngineKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    Blender,
    Unity,
    Reference,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Blender => "blender",
            EngineKind::Unity => "unity",
            EngineKind::Reference => "reference",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoliciesConfig {
    /// Extra policy components (`*.wasm`) loaded after the built-ins.
    pub dir: PathBuf,
    /// Evaluation order of the built-ins and any extra policies by name.
    pub order: Vec<String>,
    pub budgets: Budgets,
    /// How long an escalated intent waits for an operator before it is denied.
    pub escalation_timeout_ms: u64,
    /// Per-policy configuration tables: `[policies.config.<name>]`, handed to
    /// the policy as leaves.
    pub config: BTreeMap<String, toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budgets {
    /// Wasmtime fuel per evaluation.
    pub fuel: u64,
    /// Linear memory cap per instance, bytes.
    pub memory_bytes: u64,
    /// Wall-clock deadline per evaluation, ms.
    pub deadline_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// An engine silent (heartbeat or main-thread pump) this long trips PANIC.
    pub deadman_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Deferred verification must finish within this, or the transaction
    /// rolls back.
    pub verify_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanonicalConfig {
    /// Float quantum of the canonical state hash.
    pub quantum: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// Also serve MCP over streamable HTTP on this loopback address.
    pub http: Option<SocketAddr>,
    /// With a progress token, how long a write tool waits for verification
    /// (sending progress notifications) before it answers.
    pub progress_wait_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus text on `http://<addr>/metrics` (loopback only).
    pub http: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from(".vibesync"),
            project_root: PathBuf::from("."),
            link: LinkConfig::default(),
            engines: vec![
                EngineConfig {
                    name: "blender".into(),
                    kind: EngineKind::Blender,
                },
                EngineConfig {
                    name: "unity".into(),
                    kind: EngineKind::Unity,
                },
            ],
            policies: PoliciesConfig::default(),
            health: HealthConfig::default(),
            canonical: CanonicalConfig::default(),
            mcp: McpConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            replay_window_ms: 5000,
        }
    }
}

impl Default for PoliciesConfig {
    fn default() -> Self {
        PoliciesConfig {
            dir: PathBuf::from("policies.d"),
            order: vec!["firewall".into(), "nan-audit".into(), "validation".into()],
            budgets: Budgets::default(),
            escalation_timeout_ms: 300_000,
            config: BTreeMap::new(),
        }
    }
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            fuel: 50_000_000,
            memory_bytes: 64 * 1024 * 1024,
            deadline_ms: 50,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            deadman_ms: 5000,
            heartbeat_interval_ms: 500,
            verify_timeout_ms: 2000,
        }
    }
}

impl Default for CanonicalConfig {
    fn default() -> Self {
        CanonicalConfig { quantum: 1e-5 }
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            http: None,
            progress_wait_ms: 3000,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

impl Config {
    /// Parses and checks a TOML document. `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_owned(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Loads `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            None => Ok(Config::default()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::from_toml(&text, path)
            }
        }
    }

    /// The checks serde cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (key, addr) in [
            ("mcp.http", self.mcp.http),
            ("metrics.http", self.metrics.http),
        ] {
            if let Some(addr) = addr {
                check_loopback(key, addr)?;
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for engine in &self.engines {
            if engine.name.is_empty()
                || engine.name.len() > 32
                || !engine
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid {
                    key: "engines.name",
                    message: format!("`{}` is not a valid engine name", engine.name),
                    remedy: "use 1-32 characters of [A-Za-z0-9_-]; the name is used in file names",
                });
            }
            if !names.insert(engine.name.as_str()) {
                return Err(ConfigError::Invalid {
                    key: "engines.name",
                    message: format!("engine `{}` is listed twice", engine.name),
                    remedy: "give every engine a distinct name",
                });
            }
        }
        if !(self.canonical.quantum > 0.0 && self.canonical.quantum.is_finite()) {
            return Err(ConfigError::Invalid {
                key: "canonical.quantum",
                message: format!("{} is not a positive finite number", self.canonical.quantum),
                remedy: "use a small positive number such as 1e-5",
            });
        }
        for (key, value) in [
            ("health.deadman_ms", self.health.deadman_ms),
            ("link.replay_window_ms", self.link.replay_window_ms),
            (
                "policies.budgets.deadline_ms",
                self.policies.budgets.deadline_ms,
            ),
            ("policies.budgets.fuel", self.policies.budgets.fuel),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "0 disables a safety limit".into(),
                    remedy: "use a positive value (see vibesync.example.toml for the default)",
                });
            }
        }
        Ok(())
    }

    /// The directory of extra policy components (relative to the project root).
    pub fn policy_dir(&self) -> PathBuf {
        if self.policies.dir.is_absolute() {
            self.policies.dir.clone()
        } else {
            self.project_root.join(&self.policies.dir)
        }
    }

    /// The control socket's path.
    pub fn ctl_socket(&self) -> PathBuf {
        self.state_dir.join("ctl.sock")
    }
}

/// Refuses a non-loopback listener: the HTTP doors have no authentication.
pub fn check_loopback(key: &'static str, addr: SocketAddr) -> Result<(), ConfigError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            key,
            message: format!(
                "{addr} is not a loopback address; this listener has no authentication"
            ),
            remedy: "listen on 127.0.0.1 or [::1] and put an authenticating proxy in front if you need remote access",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../vibesync.example.toml");

    #[test]
    fn example_file_is_the_embedded_default() {
        let parsed = Config::from_toml(EXAMPLE, Path::new("vibesync.example.toml")).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(
            Config::from_toml("", Path::new("x")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err =
            Config::from_toml("[health]\ndeadmen_ms = 10\n", Path::new("v.toml")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("deadmen_ms"), "{text}");
        assert!(text.contains("v.toml"), "{text}");
        let err = Config::from_toml("sate_dir = \"x\"\n", Path::new("v.toml")).unwrap_err();
        assert!(err.to_string().contains("sate_dir"));
    }

    #[test]
    fn per_policy_tables_and_overrides_parse() {
        let config = Config::from_toml(
            "state_dir = \"/tmp/s\"\n[health]\ndeadman_ms = 2000\n[policies.config.validation]\nname_prefix = \"SM_\"\n",
            Path::new("v.toml"),
        )
        .unwrap();
        assert_eq!(config.health.deadman_ms, 2000);
        assert_eq!(
            config.health.verify_timeout_ms,
            HealthConfig::default().verify_timeout_ms
        );
        assert_eq!(
            config.policies.config["validation"]["name_prefix"].as_str(),
            Some("SM_")
        );
    }

    #[test]
    fn http_listeners_must_be_loopback() {
        let err = Config::from_toml("[metrics]\nhttp = \"0.0.0.0:9100\"\n", Path::new("v.toml"))
            .unwrap_err();
        assert!(err.to_string().contains("`metrics.http`"), "{err}");
        assert!(
            Config::from_toml("[mcp]\nhttp = \"127.0.0.1:8080\"\n", Path::new("v.toml")).is_ok()
        );
    }

    #[test]
    fn zero_limits_and_duplicate_engines_are_refused() {
        let err = Config::from_toml("[health]\ndeadman_ms = 0\n", Path::new("v.toml")).unwrap_err();
        assert!(err.to_string().contains("health.deadman_ms"));
        let err = Config::from_toml(
            "[[engines]]\nname = \"a\"\nkind = \"blender\"\n[[engines]]\nname = \"a\"\nkind = \"unity\"\n",
            Path::new("v.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("listed twice"));
    }
}
