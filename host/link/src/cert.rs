//! The host's TLS identity: a self-signed certificate generated on first run,
//! kept in the state directory, pinned by adapters through its SHA-256
//! fingerprint (written into every pairing file).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::LinkError;

/// The name the certificate is issued for (and adapters connect to).
pub const SERVER_NAME: &str = "vibesync-host";

pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub fingerprint: [u8; 32],
}

/// Loads `host-cert.der` / `host-key.der` from `dir`, generating them first
/// if absent. The key file is created with mode 0600.
pub fn load_or_create(dir: &Path) -> Result<Identity, LinkError> {
    let io = |what: &str, e: std::io::Error| {
        LinkError::State(format!("{what} in {}: {e}", dir.display()))
    };
    fs::create_dir_all(dir).map_err(|e| io("cannot create the state directory", e))?;
    let cert_path = dir.join("host-cert.der");
    let key_path = dir.join("host-key.der");
    if !cert_path.exists() || !key_path.exists() {
        let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])
            .map_err(|e| LinkError::State(format!("cannot generate the host certificate: {e}")))?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&key_path)
            .map_err(|e| io("cannot write host-key.der", e))?;
        f.write_all(&ck.signing_key.serialize_der())
            .map_err(|e| io("cannot write host-key.der", e))?;
        fs::write(&cert_path, ck.cert.der().as_ref())
            .map_err(|e| io("cannot write host-cert.der", e))?;
    }
    let cert = fs::read(&cert_path).map_err(|e| io("cannot read host-cert.der", e))?;
    let key = fs::read(&key_path).map_err(|e| io("cannot read host-key.der", e))?;
    let fingerprint = Sha256::digest(&cert).into();
    Ok(Identity {
        cert: CertificateDer::from(cert),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        fingerprint,
    })
}
