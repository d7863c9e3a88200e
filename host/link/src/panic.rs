//! The global PANIC state, as plain data.
//!
//! Entered when any engine trips the deadman. While in PANIC every new
//! mutation is refused with a message naming the engine and the reason.
//! Leaving needs, for every engine the host knows: connected, healthy and
//! reconciled *after* the trip (its snapshot hash equal to the canonical one,
//! or resynced to it) — and then an explicit operator [`PanicState::resume`].
//! Nothing resumes on its own.

use std::collections::BTreeMap;

/// Why a mutation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationRefused {
    #[error(
        "PANIC: engine `{engine}` tripped the circuit breaker ({reason}); no mutation is accepted until the engine is back, reconciled, and an operator runs `vibesync resume`"
    )]
    Panic { engine: String, reason: String },
}

/// Why `resume` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeRefused {
    #[error("not in PANIC: nothing to resume")]
    NotInPanic,
    #[error("cannot resume: engine `{engine}` is {why}; bring it back and reconcile it first")]
    EngineNotReady { engine: String, why: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanicState {
    Normal,
    Panic {
        engine: String,
        reason: String,
        since_ms: u64,
    },
}

/// What resume needs to know about one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub connected: bool,
    pub healthy: bool,
    /// Host time of the last successful reconciliation, if any.
    pub reconciled_at_ms: Option<u64>,
}

impl PanicState {
    pub fn check_mutation(&self) -> Result<(), MutationRefused> {
        match self {
            PanicState::Normal => Ok(()),
            PanicState::Panic { engine, reason, .. } => Err(MutationRefused::Panic {
                engine: engine.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Enters PANIC; returns false if already in PANIC (the first cause stays).
    pub fn trip(&mut self, engine: &str, reason: &str, now_ms: u64) -> bool {
        if matches!(self, PanicState::Panic { .. }) {
            return false;
        }
        *self = PanicState::Panic {
            engine: engine.into(),
            reason: reason.into(),
            since_ms: now_ms,
        };
        true
    }

    /// The operator's resume: succeeds only if every engine is ready.
    pub fn resume(&mut self, engines: &BTreeMap<String, Readiness>) -> Result<(), ResumeRefused> {
        let PanicState::Panic {
            since_ms,
            engine: tripped,
            ..
        } = self
        else {
            return Err(ResumeRefused::NotInPanic);
        };
        if !engines.contains_key(tripped.as_str()) {
            return Err(ResumeRefused::EngineNotReady {
                engine: tripped.clone(),
                why: "not registered".into(),
            });
        }
        for (name, r) in engines {
            let why = if !r.connected {
                "not connected"
            } else if !r.healthy {
                "not healthy (heartbeat or main thread still silent)"
            } else if r.reconciled_at_ms.is_none_or(|t| t < *since_ms) {
                "not reconciled since the PANIC"
            } else {
                continue;
            };
            return Err(ResumeRefused::EngineNotReady {
                engine: name.clone(),
                why: why.into(),
            });
        }
        *self = PanicState::Normal;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_refuses_mutations_and_resume_needs_every_engine_ready() {
        let mut p = PanicState::Normal;
        p.check_mutation().unwrap();
        assert!(p.trip("unity-1", "main thread silent", 1000));
        assert!(
            !p.trip("blender-1", "later", 2000),
            "the first cause is kept"
        );
        let err = p.check_mutation().unwrap_err().to_string();
        assert!(
            err.contains("unity-1") && err.contains("main thread silent"),
            "{err}"
        );

        let ready = Readiness {
            connected: true,
            healthy: true,
            reconciled_at_ms: Some(1500),
        };
        let mut engines = BTreeMap::from([
            (
                "unity-1".to_string(),
                Readiness {
                    reconciled_at_ms: Some(900),
                    ..ready
                },
            ),
            ("blender-1".to_string(), ready),
        ]);
        let err = p.resume(&engines).unwrap_err();
        assert!(err.to_string().contains("not reconciled since"), "{err}");
        engines.get_mut("unity-1").unwrap().healthy = false;
        engines.get_mut("unity-1").unwrap().reconciled_at_ms = Some(1200);
        assert!(
            p.resume(&engines)
                .unwrap_err()
                .to_string()
                .contains("not healthy")
        );
        engines.get_mut("unity-1").unwrap().healthy = true;
        p.resume(&engines).unwrap();
        assert_eq!(p, PanicState::Normal);
        assert_eq!(p.resume(&engines).unwrap_err(), ResumeRefused::NotInPanic);
    }
}
