//! The session handshake, as two pure state machines.
//!
//! ```text
//! adapter                                   host
//!   hello {engine, kind, nonce_a}  ───────▶
//!                                  ◀───────  challenge {nonce_h}
//!   prove {HMAC(secret, "vibesync/1 adapter" ‖ nonce_h ‖ nonce_a ‖ engine)} ──▶
//!                                  ◀───────  welcome {HMAC(secret, "vibesync/1 host" ‖ ...),
//!                                                     session_id, key_id, key, rotation}
//! ```
//!
//! All four frames are unsigned (key id 0) and travel inside TLS 1.3 with the
//! host certificate pinned, so the session key is never in the clear. The
//! per-engine bootstrap secret only keys these two proofs and nothing else;
//! everything after `welcome` is signed with the random session key, which
//! the host rotates. Randomness and time come from the caller.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::RotationPolicy;
use crate::msg::{B32, Challenge, Hello, Prove, Welcome};
use crate::{Key, PROTOCOL};

/// Why a handshake failed. `code()` is sent to the peer in `refused`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "unknown-engine: engine `{0}` is not paired with this host; run `vibesync init` for it"
    )]
    UnknownEngine(String),
    #[error(
        "bad-proof: the adapter's proof does not match the bootstrap secret of `{0}`; re-pair the engine"
    )]
    BadAdapterProof(String),
    #[error(
        "bad-host-proof: the host's proof does not match the bootstrap secret; the pairing file belongs to another host"
    )]
    BadHostProof,
    #[error("protocol: expected `{expected}` during the handshake, got `{got}`")]
    Unexpected { expected: &'static str, got: String },
    #[error("protocol: adapter speaks `{0}`, this host speaks `{PROTOCOL}`")]
    Version(String),
}

impl HandshakeError {
    pub fn code(&self) -> &'static str {
        match self {
            HandshakeError::UnknownEngine(_) => "unknown-engine",
            HandshakeError::BadAdapterProof(_) => "bad-proof",
            HandshakeError::BadHostProof => "bad-host-proof",
            HandshakeError::Unexpected { .. } | HandshakeError::Version(_) => "protocol",
        }
    }
}

fn proof(secret: &Key, role: &[u8], nonce_h: &B32, nonce_a: &B32, engine: &str) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(role);
    m.update(&nonce_h.0);
    m.update(&nonce_a.0);
    m.update(engine.as_bytes());
    m
}

const ADAPTER_ROLE: &[u8] = b"vibesync/1 adapter";
const HOST_ROLE: &[u8] = b"vibesync/1 host";

/// The adapter's proof (exposed for other-language test vectors).
pub fn adapter_proof(secret: &Key, nonce_h: &B32, nonce_a: &B32, engine: &str) -> B32 {
    B32(proof(secret, ADAPTER_ROLE, nonce_h, nonce_a, engine)
        .finalize()
        .into_bytes()
        .into())
}

/// The host's proof.
pub fn host_proof(secret: &Key, nonce_h: &B32, nonce_a: &B32, engine: &str) -> B32 {
    B32(proof(secret, HOST_ROLE, nonce_h, nonce_a, engine)
        .finalize()
        .into_bytes()
        .into())
}

/// Host side: `hello` → `challenge`, then `prove` → `welcome`.
#[derive(Debug)]
pub struct HostHandshake {
    nonce_h: B32,
    hello: Option<(Hello, Key)>,
}

impl HostHandshake {
    pub fn new(nonce_h: [u8; 32]) -> Self {
        HostHandshake {
            nonce_h: B32(nonce_h),
            hello: None,
        }
    }

    /// Takes the adapter's hello; `secret_of` finds the engine's bootstrap secret.
    pub fn on_hello(
        &mut self,
        hello: Hello,
        secret_of: impl FnOnce(&str) -> Option<Key>,
    ) -> Result<Challenge, HandshakeError> {
        if hello.protocol != PROTOCOL {
            return Err(HandshakeError::Version(hello.protocol));
        }
        let secret = secret_of(&hello.engine)
            .ok_or_else(|| HandshakeError::UnknownEngine(hello.engine.clone()))?;
        self.hello = Some((hello, secret));
        Ok(Challenge {
            nonce: self.nonce_h,
        })
    }

    /// Verifies the proof (constant time) and issues the first session key.
    pub fn on_prove(
        &mut self,
        p: Prove,
        session_id: String,
        key_id: u32,
        key: Key,
        rotation: RotationPolicy,
    ) -> Result<(Hello, Welcome), HandshakeError> {
        let (hello, secret) = self.hello.take().ok_or(HandshakeError::Unexpected {
            expected: "hello",
            got: "prove".into(),
        })?;
        proof(
            &secret,
            ADAPTER_ROLE,
            &self.nonce_h,
            &hello.nonce,
            &hello.engine,
        )
        .verify_slice(&p.proof.0)
        .map_err(|_| HandshakeError::BadAdapterProof(hello.engine.clone()))?;
        let w = Welcome {
            proof: host_proof(&secret, &self.nonce_h, &hello.nonce, &hello.engine),
            session_id,
            key_id,
            key: B32(key),
            rotation,
        };
        Ok((hello, w))
    }
}

/// Adapter side: `hello`, then `challenge` → `prove`, then `welcome`.
#[derive(Debug)]
pub struct AdapterHandshake {
    engine: String,
    kind: String,
    nonce_a: B32,
    secret: Key,
    nonce_h: Option<B32>,
}

impl AdapterHandshake {
    pub fn new(engine: &str, kind: &str, secret: Key, nonce_a: [u8; 32]) -> Self {
        AdapterHandshake {
            engine: engine.into(),
            kind: kind.into(),
            nonce_a: B32(nonce_a),
            secret,
            nonce_h: None,
        }
    }

    pub fn hello(&self) -> Hello {
        Hello {
            protocol: PROTOCOL.into(),
            engine: self.engine.clone(),
            kind: self.kind.clone(),
            nonce: self.nonce_a,
            batch: true,
        }
    }

    pub fn on_challenge(&mut self, c: Challenge) -> Prove {
        self.nonce_h = Some(c.nonce);
        Prove {
            proof: adapter_proof(&self.secret, &c.nonce, &self.nonce_a, &self.engine),
        }
    }

    /// Checks the host's proof (constant time); on success the welcome's key
    /// is the session key.
    pub fn on_welcome(&mut self, w: &Welcome) -> Result<(), HandshakeError> {
        let nonce_h = self.nonce_h.ok_or(HandshakeError::Unexpected {
            expected: "challenge",
            got: "welcome".into(),
        })?;
        proof(
            &self.secret,
            HOST_ROLE,
            &nonce_h,
            &self.nonce_a,
            &self.engine,
        )
        .verify_slice(&w.proof.0)
        .map_err(|_| HandshakeError::BadHostProof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honest_handshake_and_wrong_secrets() {
        let secret = [7u8; 32];
        let mut a = AdapterHandshake::new("blender-1", "blender", secret, [1; 32]);
        let mut h = HostHandshake::new([2; 32]);
        let ch = h
            .on_hello(a.hello(), |e| (e == "blender-1").then_some(secret))
            .unwrap();
        let p = a.on_challenge(ch);
        let (hello, w) = h
            .on_prove(p, "s1".into(), 1, [9; 32], RotationPolicy::default())
            .unwrap();
        assert_eq!(hello.engine, "blender-1");
        a.on_welcome(&w).unwrap();

        // Wrong adapter secret.
        let mut bad = AdapterHandshake::new("blender-1", "blender", [8; 32], [1; 32]);
        let mut h = HostHandshake::new([3; 32]);
        let ch = h.on_hello(bad.hello(), |_| Some(secret)).unwrap();
        let err = h
            .on_prove(
                bad.on_challenge(ch),
                "s2".into(),
                1,
                [9; 32],
                RotationPolicy::default(),
            )
            .unwrap_err();
        assert_eq!(err.code(), "bad-proof");

        // A host that does not know the secret cannot forge its proof.
        let mut a = AdapterHandshake::new("blender-1", "blender", secret, [1; 32]);
        let _ = a.on_challenge(Challenge {
            nonce: B32([4; 32]),
        });
        let forged = Welcome {
            proof: host_proof(&[0; 32], &B32([4; 32]), &B32([1; 32]), "blender-1"),
            session_id: "x".into(),
            key_id: 1,
            key: B32([0; 32]),
            rotation: RotationPolicy::default(),
        };
        assert_eq!(
            a.on_welcome(&forged).unwrap_err(),
            HandshakeError::BadHostProof
        );

        // Unknown engine.
        let mut h = HostHandshake::new([2; 32]);
        assert_eq!(
            h.on_hello(a.hello(), |_| None).unwrap_err().code(),
            "unknown-engine"
        );
    }

    #[test]
    fn proofs_bind_role_nonces_and_engine() {
        let s = [1u8; 32];
        let (n1, n2) = (B32([1; 32]), B32([2; 32]));
        let base = adapter_proof(&s, &n1, &n2, "e");
        assert_ne!(base, host_proof(&s, &n1, &n2, "e"));
        assert_ne!(base, adapter_proof(&s, &n2, &n1, "e"));
        assert_ne!(base, adapter_proof(&s, &n1, &n2, "f"));
    }
}
