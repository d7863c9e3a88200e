//! The counters and gauges an operator watches, in Prometheus text format.
//!
//! One `Metrics` value (behind an `Arc`) is shared by the core and the front
//! doors; every update is a relaxed atomic, so recording never blocks the
//! pipeline. `render` produces the text exposition format (version 0.0.4)
//! served by `vibesync ctl metrics` and, when configured, on a loopback
//! HTTP port (`serve_http`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Upper bounds (seconds) of the policy latency histogram buckets.
pub const POLICY_LATENCY_BUCKETS: [f64; 10] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// Intent outcomes, the label values of `vibesync_intents_total`.
pub const INTENT_OUTCOMES: [&str; 6] = [
    "committed",
    "rolled_back",
    "denied",
    "escalated",
    "refused",
    "provisional",
];

/// Reasons a frame is refused, the label values of `vibesync_frames_refused_total`.
pub const FRAME_REFUSALS: [&str; 5] = [
    "bad_tag",
    "replayed",
    "out_of_order",
    "too_old",
    "malformed",
];

#[derive(Debug, Default)]
pub struct Metrics {
    intents: [AtomicU64; INTENT_OUTCOMES.len()],
    policy_buckets: [AtomicU64; POLICY_LATENCY_BUCKETS.len()],
    policy_count: AtomicU64,
    /// Sum of observed latencies in nanoseconds.
    policy_sum_ns: AtomicU64,
    verification_failures: AtomicU64,
    panics: AtomicU64,
    frames_refused: [AtomicU64; FRAME_REFUSALS.len()],
    engines_connected: AtomicU64,
    wal_group_commits: AtomicU64,
    wal_records: AtomicU64,
    /// Time in `append_batch` (encode, write, `fdatasync`), nanoseconds.
    wal_commit_ns: AtomicU64,
}

/// A snapshot of the WAL and policy counters (for `vibesync bench load`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PipelineCounters {
    pub wal_group_commits: u64,
    pub wal_records: u64,
    pub wal_commit_ns: u64,
    pub policy_evaluations: u64,
    pub policy_ns: u64,
}

/// Which outcome to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentOutcomeLabel {
    Committed,
    RolledBack,
    Denied,
    Escalated,
    /// Refused at intake (no rationale, stale version, PANIC, lock).
    Refused,
    Provisional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRefusal {
    BadTag,
    Replayed,
    OutOfOrder,
    TooOld,
    Malformed,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    pub fn record_intent(&self, outcome: IntentOutcomeLabel) {
        self.intents[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn observe_policy_latency(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        for (bound, bucket) in POLICY_LATENCY_BUCKETS.iter().zip(&self.policy_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.policy_count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.policy_sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn inc_verification_failure(&self) {
        self.verification_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inc_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inc_frame_refused(&self, why: FrameRefusal) {
        self.frames_refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_engines_connected(&self, n: u64) {
        self.engines_connected.store(n, Ordering::Relaxed);
    }

    /// One group commit of `records` records that took `took`.
    pub fn observe_wal_commit(&self, records: usize, took: Duration) {
        self.wal_group_commits.fetch_add(1, Ordering::Relaxed);
        self.wal_records
            .fetch_add(records as u64, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.wal_commit_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn counters(&self) -> PipelineCounters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PipelineCounters {
            wal_group_commits: get(&self.wal_group_commits),
            wal_records: get(&self.wal_records),
            wal_commit_ns: get(&self.wal_commit_ns),
            policy_evaluations: get(&self.policy_count),
            policy_ns: get(&self.policy_sum_ns),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "# HELP vibesync_intents_total Intents by outcome.");
        let _ = writeln!(w, "# TYPE vibesync_intents_total counter");
        for (label, value) in INTENT_OUTCOMES.iter().zip(&self.intents) {
            let _ = writeln!(
                w,
                "vibesync_intents_total{{outcome=\"{label}\"}} {}",
                get(value)
            );
        }
        let _ = writeln!(
            w,
            "# HELP vibesync_policy_latency_seconds Time of one policy evaluation."
        );
        let _ = writeln!(w, "# TYPE vibesync_policy_latency_seconds histogram");
        for (bound, bucket) in POLICY_LATENCY_BUCKETS.iter().zip(&self.policy_buckets) {
            let _ = writeln!(
                w,
                "vibesync_policy_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.policy_count);
        let _ = writeln!(
            w,
            "vibesync_policy_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            w,
            "vibesync_policy_latency_seconds_sum {}",
            get(&self.policy_sum_ns) as f64 / 1e9
        );
        let _ = writeln!(w, "vibesync_policy_latency_seconds_count {count}");
        let _ = writeln!(
            w,
            "# HELP vibesync_verification_failures_total Deferred verifications that found a mismatch or timed out."
        );
        let _ = writeln!(w, "# TYPE vibesync_verification_failures_total counter");
        let _ = writeln!(
            w,
            "vibesync_verification_failures_total {}",
            get(&self.verification_failures)
        );
        let _ = writeln!(
            w,
            "# HELP vibesync_panics_total Times the circuit breaker tripped."
        );
        let _ = writeln!(w, "# TYPE vibesync_panics_total counter");
        let _ = writeln!(w, "vibesync_panics_total {}", get(&self.panics));
        let _ = writeln!(
            w,
            "# HELP vibesync_frames_refused_total Link frames refused, by reason."
        );
        let _ = writeln!(w, "# TYPE vibesync_frames_refused_total counter");
        for (label, value) in FRAME_REFUSALS.iter().zip(&self.frames_refused) {
            let _ = writeln!(
                w,
                "vibesync_frames_refused_total{{reason=\"{label}\"}} {}",
                get(value)
            );
        }
        let _ = writeln!(
            w,
            "# HELP vibesync_engines_connected Engines with a live link."
        );
        let _ = writeln!(w, "# TYPE vibesync_engines_connected gauge");
        let _ = writeln!(
            w,
            "vibesync_engines_connected {}",
            get(&self.engines_connected)
        );
        let _ = writeln!(
            w,
            "# HELP vibesync_wal_group_commits_total WAL group commits (one fdatasync each)."
        );
        let _ = writeln!(w, "# TYPE vibesync_wal_group_commits_total counter");
        let _ = writeln!(
            w,
            "vibesync_wal_group_commits_total {}",
            get(&self.wal_group_commits)
        );
        let _ = writeln!(w, "# HELP vibesync_wal_records_total WAL records appended.");
        let _ = writeln!(w, "# TYPE vibesync_wal_records_total counter");
        let _ = writeln!(w, "vibesync_wal_records_total {}", get(&self.wal_records));
        let _ = writeln!(
            w,
            "# HELP vibesync_wal_commit_seconds_total Time spent in WAL group commits (write and fdatasync)."
        );
        let _ = writeln!(w, "# TYPE vibesync_wal_commit_seconds_total counter");
        let _ = writeln!(
            w,
            "vibesync_wal_commit_seconds_total {}",
            get(&self.wal_commit_ns) as f64 / 1e9
        );
        out
    }
}

/// Serves `GET /metrics` on a loopback listener until the task is dropped.
/// A deliberately tiny HTTP/1.0 responder: one request per connection.
pub async fn serve_http(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let head = String::from_utf8_lossy(&buf[..n]);
            let response = if head.starts_with("GET /metrics ") {
                let body = metrics.render();
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.0 404 Not Found\r\nContent-Length: 20\r\n\r\ntry GET /metrics\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

/// Binds the metrics listener (loopback checked by the config).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_by_label_and_histogram_is_cumulative() {
        let m = Metrics::default();
        m.record_intent(IntentOutcomeLabel::Denied);
        m.record_intent(IntentOutcomeLabel::Denied);
        m.record_intent(IntentOutcomeLabel::Committed);
        m.observe_policy_latency(Duration::from_micros(300));
        m.observe_policy_latency(Duration::from_millis(20));
        m.inc_frame_refused(FrameRefusal::Replayed);
        m.inc_panic();
        m.set_engines_connected(2);
        let text = m.render();
        assert!(
            text.contains("vibesync_intents_total{outcome=\"denied\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("vibesync_intents_total{outcome=\"committed\"} 1\n"));
        assert!(text.contains("vibesync_policy_latency_seconds_bucket{le=\"0.00025\"} 0\n"));
        assert!(text.contains("vibesync_policy_latency_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("vibesync_policy_latency_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("vibesync_policy_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(
            text.contains("vibesync_policy_latency_seconds_sum 0.0203\n"),
            "{text}"
        );
        assert!(text.contains("vibesync_frames_refused_total{reason=\"replayed\"} 1\n"));
        assert!(text.contains("vibesync_panics_total 1\n"));
        assert!(text.contains("vibesync_engines_connected 2\n"));
        m.observe_wal_commit(3, Duration::from_millis(2));
        let text = m.render();
        assert!(
            text.contains("vibesync_wal_group_commits_total 1\n"),
            "{text}"
        );
        assert!(text.contains("vibesync_wal_records_total 3\n"));
        assert!(text.contains("vibesync_wal_commit_seconds_total 0.002\n"));
    }

    #[test]
    fn every_sample_line_has_a_type() {
        let text = Metrics::default().render();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "no TYPE for {name}"
            );
        }
    }
}
