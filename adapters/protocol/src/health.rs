//! The deadman: is an engine alive, as a pure function of times the caller
//! observed on the host's clock.
//!
//! An engine trips when no heartbeat arrived for the deadman period, or when
//! its main thread has not pumped for the deadman period while work is
//! pending (commands in flight or queued). An idle engine whose main thread
//! sleeps is healthy: nothing is waiting on it.

/// The protocol's deadman period.
pub const DEADMAN_MS: u64 = 5_000;

/// What the host last observed about one engine, on the host clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// When the last heartbeat (or, before the first one, the session) arrived.
    pub last_heartbeat_ms: u64,
    /// The last main-thread pump, placed on the host clock
    /// (heartbeat arrival − `pump_age_ms`).
    pub last_pump_ms: u64,
    /// Commands sent and not answered, or queued in the adapter.
    pub pending_work: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TripReason {
    HeartbeatSilent { silent_ms: u64 },
    MainThreadSilent { silent_ms: u64 },
}

impl std::fmt::Display for TripReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TripReason::HeartbeatSilent { silent_ms } => write!(
                f,
                "no heartbeat for {silent_ms} ms (deadman {DEADMAN_MS} ms)"
            ),
            TripReason::MainThreadSilent { silent_ms } => {
                write!(
                    f,
                    "main thread has not pumped for {silent_ms} ms with work pending (deadman {DEADMAN_MS} ms)"
                )
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Tripped { engine: String, reason: TripReason },
}

/// Judges one engine at `now_ms` with a deadman of `deadman_ms`.
pub fn judge(engine: &str, o: Observed, now_ms: u64, deadman_ms: u64) -> Health {
    let hb_silent = now_ms.saturating_sub(o.last_heartbeat_ms);
    if hb_silent >= deadman_ms {
        return Health::Tripped {
            engine: engine.into(),
            reason: TripReason::HeartbeatSilent {
                silent_ms: hb_silent,
            },
        };
    }
    let pump_silent = now_ms.saturating_sub(o.last_pump_ms);
    if o.pending_work && pump_silent >= deadman_ms {
        return Health::Tripped {
            engine: engine.into(),
            reason: TripReason::MainThreadSilent {
                silent_ms: pump_silent,
            },
        };
    }
    Health::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadman_edges() {
        let o = Observed {
            last_heartbeat_ms: 1000,
            last_pump_ms: 1000,
            pending_work: false,
        };
        assert_eq!(judge("e", o, 5999, DEADMAN_MS), Health::Healthy);
        assert!(matches!(
            judge("e", o, 6000, DEADMAN_MS),
            Health::Tripped {
                reason: TripReason::HeartbeatSilent { silent_ms: 5000 },
                ..
            }
        ));
        // Heartbeats fine, main thread asleep and idle: healthy.
        let idle = Observed {
            last_heartbeat_ms: 9000,
            last_pump_ms: 1000,
            pending_work: false,
        };
        assert_eq!(judge("e", idle, 9500, DEADMAN_MS), Health::Healthy);
        // Same with work pending: tripped, naming the engine.
        let busy = Observed {
            pending_work: true,
            ..idle
        };
        match judge("unity-1", busy, 9500, DEADMAN_MS) {
            Health::Tripped {
                engine,
                reason: TripReason::MainThreadSilent { silent_ms },
            } => {
                assert_eq!((engine.as_str(), silent_ms), ("unity-1", 8500));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            judge(
                "e",
                Observed {
                    last_pump_ms: 4501,
                    ..busy
                },
                9500,
                DEADMAN_MS
            ),
            Health::Healthy
        );
    }
}
