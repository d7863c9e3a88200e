//! The pairing file: what an adapter needs to find and trust its host.
//!
//! JSON, written by `vibesync init` with mode 0600 (it holds the engine's
//! bootstrap secret):
//!
//! ```json
//! {"version": 1, "endpoint": "127.0.0.1:7878", "server_name": "vibesync-host",
//!  "cert_sha256": "<64 hex>", "engine": "blender-main", "kind": "blender",
//!  "bootstrap_secret": "<64 hex>"}
//! ```
//!
//! JSON because Python (`json`) and C# (`System.Text.Json`) read it without a
//! dependency. This module only formats and parses; files are written by the
//! host (`vibesync_link::write_pairing`) and read by the SDK.

use serde::{Deserialize, Serialize};

use crate::Key;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pairing {
    pub version: u32,
    /// `host:port` of the host's QUIC endpoint.
    pub endpoint: String,
    /// TLS server name the certificate was issued for.
    pub server_name: String,
    /// SHA-256 of the host certificate (DER), lowercase hex.
    pub cert_sha256: String,
    pub engine: String,
    pub kind: String,
    /// 32 random bytes, lowercase hex; proves the engine in the handshake only.
    pub bootstrap_secret: String,
}

impl std::fmt::Debug for Pairing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pairing")
            .field("endpoint", &self.endpoint)
            .field("engine", &self.engine)
            .field("kind", &self.kind)
            .field("cert_sha256", &self.cert_sha256)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("pairing file is not valid JSON of the pairing format: {0}; re-run `vibesync init`")]
    Format(String),
    #[error("pairing field `{field}` is invalid: {reason}; re-run `vibesync init`")]
    Field { field: &'static str, reason: String },
}

fn hex32(field: &'static str, s: &str) -> Result<[u8; 32], PairingError> {
    let v = hex::decode(s).map_err(|e| PairingError::Field {
        field,
        reason: e.to_string(),
    })?;
    <[u8; 32]>::try_from(v.as_slice()).map_err(|_| PairingError::Field {
        field,
        reason: format!("{} bytes, expected 32", v.len()),
    })
}

impl Pairing {
    pub fn new(
        endpoint: &str,
        server_name: &str,
        cert_sha256: [u8; 32],
        engine: &str,
        kind: &str,
        secret: Key,
    ) -> Self {
        Pairing {
            version: 1,
            endpoint: endpoint.into(),
            server_name: server_name.into(),
            cert_sha256: hex::encode(cert_sha256),
            engine: engine.into(),
            kind: kind.into(),
            bootstrap_secret: hex::encode(secret),
        }
    }

    pub fn parse(text: &str) -> Result<Self, PairingError> {
        let p: Pairing =
            serde_json::from_str(text).map_err(|e| PairingError::Format(e.to_string()))?;
        if p.version != 1 {
            return Err(PairingError::Field {
                field: "version",
                reason: format!("{} is not 1", p.version),
            });
        }
        p.fingerprint()?;
        p.secret()?;
        if p.engine.is_empty() {
            return Err(PairingError::Field {
                field: "engine",
                reason: "empty".into(),
            });
        }
        Ok(p)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("pairing serializes")
    }

    pub fn fingerprint(&self) -> Result<[u8; 32], PairingError> {
        hex32("cert_sha256", &self.cert_sha256)
    }

    pub fn secret(&self) -> Result<Key, PairingError> {
        hex32("bootstrap_secret", &self.bootstrap_secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_field_errors() {
        let p = Pairing::new(
            "127.0.0.1:1",
            "vibesync-host",
            [3; 32],
            "e",
            "reference",
            [4; 32],
        );
        let back = Pairing::parse(&p.to_json()).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.secret().unwrap(), [4; 32]);
        assert!(
            !format!("{p:?}").contains("0404"),
            "Debug never prints the secret"
        );
        let bad = p.to_json().replace(&"04".repeat(32), "0404");
        let err = Pairing::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("bootstrap_secret"), "{err}");
    }
}
