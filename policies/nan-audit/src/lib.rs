//! Built-in policy: NaN/Inf and magnitude audit.
//!
//! Numbers that are not finite, absurdly large, or degenerate (a zero scale,
//! a rotation that is not a unit quaternion) corrupt an engine's scene in ways
//! that are hard to undo, so this policy checks every number of every op
//! before anything reaches an engine, and names the exact JSON pointer of each
//! offending value.
//!
//! Configuration (all optional, keys of this policy's table):
//! - `max_translation` (default 1e6 metres): bound on `|x|` of each
//!   translation component (`/translation/*`, `/transform/translation/*`);
//! - `max_scale` (default 1e4): bound on `|s|` of each scale component;
//! - `min_scale` (default 1e-6): scale components with `|s|` below this are
//!   treated as zero (a zero scale makes the object's matrix singular);
//! - `max_abs_value` (default 1e9): bound on every other number;
//! - `quaternion_tolerance` (default 1e-3): allowed `| |q| - 1 |` of a rotation.

use vibesync_policy_sdk::prelude::*;

/// Defaults of the configuration keys (see the module docs).
pub const DEFAULT_MAX_TRANSLATION: f64 = 1e6;
pub const DEFAULT_MAX_SCALE: f64 = 1e4;
pub const DEFAULT_MIN_SCALE: f64 = 1e-6;
pub const DEFAULT_MAX_ABS_VALUE: f64 = 1e9;
pub const DEFAULT_QUATERNION_TOLERANCE: f64 = 1e-3;

const NON_FINITE: &str = "nan-audit.non-finite";
const TRANSLATION: &str = "nan-audit.translation-bound";
const SCALE_BOUND: &str = "nan-audit.scale-bound";
const SCALE_ZERO: &str = "nan-audit.scale-zero";
const MAGNITUDE: &str = "nan-audit.magnitude";
const QUATERNION: &str = "nan-audit.quaternion-unit";

/// The policy type exported by the component.
pub struct NanAudit;

impl Policy for NanAudit {
    fn metadata() -> PolicyInfo {
        policy_info(
            "nan-audit",
            env!("CARGO_PKG_VERSION"),
            "Every number finite and within bounds; rotations unit quaternions; scales non-zero.",
            &[
                (
                    NON_FINITE,
                    "every float leaf is finite (no NaN, no infinity)",
                ),
                (
                    TRANSLATION,
                    "each translation component within max_translation (default 1e6 m)",
                ),
                (
                    SCALE_BOUND,
                    "each scale component within max_scale (default 1e4)",
                ),
                (
                    SCALE_ZERO,
                    "no scale component with |s| < min_scale (default 1e-6)",
                ),
                (
                    MAGNITUDE,
                    "every other number within max_abs_value (default 1e9)",
                ),
                (
                    QUATERNION,
                    "rotations have unit length within quaternion_tolerance (default 1e-3)",
                ),
            ],
        )
    }

    fn evaluate(intent: &Intent, ctx: &Context, config: &Config) -> Verdict {
        evaluate(intent, ctx, config)
    }
}

export_policy!(NanAudit);

/// The bounds in force for one evaluation.
struct Bounds {
    max_translation: f64,
    max_scale: f64,
    min_scale: f64,
    max_abs_value: f64,
    quaternion_tolerance: f64,
}

impl Bounds {
    fn from(config: &Config) -> Bounds {
        Bounds {
            max_translation: config.f64_or("/max_translation", DEFAULT_MAX_TRANSLATION),
            max_scale: config.f64_or("/max_scale", DEFAULT_MAX_SCALE),
            min_scale: config.f64_or("/min_scale", DEFAULT_MIN_SCALE),
            max_abs_value: config.f64_or("/max_abs_value", DEFAULT_MAX_ABS_VALUE),
            quaternion_tolerance: config
                .f64_or("/quaternion_tolerance", DEFAULT_QUATERNION_TOLERANCE),
        }
    }
}

/// What a number is, judged by where it sits in the arguments.
enum Role {
    Translation,
    Scale,
    Other,
}

fn role(path: &str) -> Role {
    let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
    match parent {
        "/translation" | "/transform/translation" => Role::Translation,
        "/scale" | "/transform/scale" => Role::Scale,
        _ => Role::Other,
    }
}

/// The rules, natively: what the component runs and what the benches call.
pub fn evaluate(intent: &Intent, _ctx: &Context, config: &Config) -> Verdict {
    let bounds = Bounds::from(config);
    let mut findings = Findings::new();
    for leaf in intent.leaves.iter() {
        let Some(x) = leaf.value().as_f64() else {
            continue;
        };
        let path = leaf.path();
        if !x.is_finite() {
            findings.critical(
                NON_FINITE,
                path,
                format!(
                    "{path} is {x}; send a finite number (NaN and infinity corrupt engine state)"
                ),
            );
            continue;
        }
        match role(path) {
            Role::Translation if x.abs() > bounds.max_translation => findings.error(
                TRANSLATION,
                path,
                format!(
                    "{path} = {x} is beyond ±{} m; place the object nearer the origin or raise nan-audit.max_translation",
                    bounds.max_translation
                ),
            ),
            Role::Scale if x.abs() < bounds.min_scale => findings.error(
                SCALE_ZERO,
                path,
                format!(
                    "{path} = {x} is (nearly) zero and would collapse the object; use a non-zero scale (|s| ≥ {})",
                    bounds.min_scale
                ),
            ),
            Role::Scale if x.abs() > bounds.max_scale => findings.error(
                SCALE_BOUND,
                path,
                format!(
                    "{path} = {x} is beyond ±{}; use a smaller scale or raise nan-audit.max_scale",
                    bounds.max_scale
                ),
            ),
            Role::Other if x.abs() > bounds.max_abs_value => findings.error(
                MAGNITUDE,
                path,
                format!(
                    "{path} = {x} is beyond ±{}; send a value of sane magnitude or raise nan-audit.max_abs_value",
                    bounds.max_abs_value
                ),
            ),
            _ => {}
        }
    }
    let args = Args::of(intent);
    for pointer in ["/rotation", "/transform/rotation"] {
        let Some(q) = args.vector::<4>(pointer) else {
            continue;
        };
        if q.iter().any(|c| !c.is_finite()) {
            continue; // already reported as non-finite
        }
        let norm = q.iter().map(|c| c * c).sum::<f64>().sqrt();
        if (norm - 1.0).abs() > bounds.quaternion_tolerance {
            findings.error(
                QUATERNION,
                pointer,
                format!(
                    "{pointer} has length {norm:.6}, not 1 (±{}); normalise the quaternion [x, y, z, w] before sending it",
                    bounds.quaternion_tolerance
                ),
            );
        }
    }
    findings.verdict()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_policy_sdk::types::json::parse_lenient;

    fn intent(args: &str) -> Intent {
        let args = parse_lenient(args).unwrap();
        Intent::for_op(
            1,
            Source::Agent,
            "set_transform",
            &args,
            0,
            1,
            vec![],
            vec![],
            String::new(),
            0,
        )
    }

    #[test]
    fn reports_each_non_finite_value_at_its_path() {
        let v = evaluate(
            &intent(r#"{"id": "a", "translation": ["NaN", 0.0, "-Infinity"]}"#),
            &Context::default(),
            &Config::empty(),
        );
        let paths: Vec<_> = v
            .findings()
            .iter()
            .map(|f| (f.rule.as_str(), f.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                (NON_FINITE, "/translation/0"),
                (NON_FINITE, "/translation/2")
            ]
        );
        assert!(v.is_deny());
    }

    #[test]
    fn config_raises_bounds() {
        let i = intent(r#"{"id": "a", "translation": [2e6, 0, 0]}"#);
        assert!(evaluate(&i, &Context::default(), &Config::empty()).is_deny());
        let cfg = Config::new(vibesync_policy_sdk::types::flatten(
            &serde_json::json!({"max_translation": 1e7}),
        ));
        assert_eq!(evaluate(&i, &Context::default(), &cfg), Verdict::Allow);
    }

    #[test]
    fn metadata_lists_every_rule_it_can_report() {
        let ids: Vec<_> = NanAudit::metadata()
            .rules
            .into_iter()
            .map(|r| r.id)
            .collect();
        for rule in [
            NON_FINITE,
            TRANSLATION,
            SCALE_BOUND,
            SCALE_ZERO,
            MAGNITUDE,
            QUATERNION,
        ] {
            assert!(ids.iter().any(|i| i == rule), "{rule}");
        }
    }

    /// Runs the whole fixture corpus through the native rules.
    #[test]
    fn corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        vibesync_policy_sdk::testing::run_corpus(&dir, "nan-audit", evaluate).assert_passed(30);
    }
}
