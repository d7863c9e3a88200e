//! The policy test corpus format (`vibesync policy test DIR`, the built-in
//! policies' `fixtures/*.json`).
//!
//! One file holds many cases for one policy. A case names an op and its
//! arguments, optionally the author, rationale, touched objects, context and
//! the policy's configuration, and the verdict it must get. Files are read
//! with [`crate::json::parse_lenient`] so `"NaN"`, `"Infinity"` and
//! `"-Infinity"` in `args` and `config` are real non-finite floats.
//!
//! Defaults, so a case only spells what it is about: source `agent`, a
//! substantive rationale ([`DEFAULT_RATIONALE`]), objects = the ids named by
//! `args.id` / `args.ids`, an empty scene at version 0 with project root
//! `/project`, no configuration.

use serde::{Deserialize, Serialize};

use crate::{Context, Intent, Leaf, Source, Verdict, flatten, json::parse_lenient};

/// The rationale a case gets when it does not give one.
pub const DEFAULT_RATIONALE: &str =
    "Move the crates next to the loading dock so the opening shot reads clearly";
/// The project root a case's context gets when it does not give one.
pub const DEFAULT_PROJECT_ROOT: &str = "/project";
/// The engines every fixture intent targets.
pub const FIXTURE_ENGINES: [&str; 2] = ["blender", "unity"];

/// Why a fixture file could not be read.
#[derive(Debug)]
pub enum FixtureError {
    /// Not JSON, or not the fixture shape.
    Parse(serde_json::Error),
}

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixtureError::Parse(e) => write!(
                f,
                "fixture file is not valid (expected {{\"policy\": NAME, \"cases\": [...]}}): {e}"
            ),
        }
    }
}

impl std::error::Error for FixtureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FixtureError::Parse(e) => Some(e),
        }
    }
}

/// One fixture file: many cases for one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    /// The policy the cases are for (its `metadata().name`).
    pub policy: String,
    pub cases: Vec<FixtureCase>,
}

impl FixtureFile {
    /// Read a fixture file's text (lenient JSON, see the module docs).
    pub fn parse(text: &str) -> Result<FixtureFile, FixtureError> {
        let value = parse_lenient(text).map_err(FixtureError::Parse)?;
        serde_json::from_value(value).map_err(FixtureError::Parse)
    }
}

/// The verdict a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Allow,
    Deny,
    Escalate,
}

impl Expect {
    /// `"allow"`, `"deny"` or `"escalate"`, as [`Verdict::kind`] spells them.
    pub fn kind(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
            Expect::Escalate => "escalate",
        }
    }
}

/// One case of a fixture file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureCase {
    pub name: String,
    pub op: String,
    pub args: serde_json::Value,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub rationale: Option<String>,
    #[serde(default)]
    pub objects: Option<Vec<String>>,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    pub expect: Expect,
    /// Rule ids that must appear among the verdict's findings.
    #[serde(default)]
    pub rules: Vec<String>,
}

impl FixtureCase {
    /// The intent the case describes (tid 1, op 0 of 1, both engines).
    pub fn intent(&self) -> Intent {
        let context = self.context();
        Intent::for_op(
            1,
            self.source,
            &self.op,
            &self.args,
            0,
            1,
            FIXTURE_ENGINES.iter().map(|e| (*e).to_owned()).collect(),
            self.objects
                .clone()
                .unwrap_or_else(|| ids_in_args(&self.args)),
            self.rationale
                .clone()
                .unwrap_or_else(|| DEFAULT_RATIONALE.to_owned()),
            context.scene_version,
        )
    }

    /// The context the case describes, with defaults filled in.
    pub fn context(&self) -> Context {
        let mut context = self.context.clone().unwrap_or_default();
        if context.project_root.is_empty() {
            context.project_root = DEFAULT_PROJECT_ROOT.to_owned();
        }
        context
    }

    /// The policy configuration flattened to leaves (none when absent).
    pub fn config_leaves(&self) -> Vec<Leaf> {
        self.config.as_ref().map(flatten).unwrap_or_default()
    }

    /// Whether `v` is what the case expects; the error explains the mismatch.
    pub fn check(&self, v: &Verdict) -> Result<(), String> {
        let findings = v.findings();
        let listed = || {
            if findings.is_empty() {
                "no findings".to_owned()
            } else {
                findings
                    .iter()
                    .map(|f| format!("{} at {:?}: {}", f.rule, f.path, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        };
        if v.kind() != self.expect.kind() {
            return Err(format!(
                "case {:?}: expected {}, got {} ({})",
                self.name,
                self.expect.kind(),
                v.kind(),
                listed()
            ));
        }
        let missing: Vec<&str> = self
            .rules
            .iter()
            .filter(|r| !findings.iter().any(|f| &f.rule == *r))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "case {:?}: got {} as expected but rule(s) {} did not fire ({})",
                self.name,
                v.kind(),
                missing.join(", "),
                listed()
            ));
        }
        Ok(())
    }
}

/// The object ids an op's arguments name (`id` and `ids`), the default `objects`.
fn ids_in_args(args: &serde_json::Value) -> Vec<String> {
    let mut ids = Vec::new();
    if let Some(id) = args.get("id").and_then(|v| v.as_str()) {
        ids.push(id.to_owned());
    }
    if let Some(list) = args.get("ids").and_then(|v| v.as_array()) {
        ids.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_owned));
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, Scalar};

    const FILE: &str = r#"{
        "policy": "nan-audit",
        "cases": [
            { "name": "nan translation", "op": "set_transform",
              "args": {"id": "obj-1", "translation": [0.0, "NaN", 1.0]},
              "expect": "deny", "rules": ["nan-audit.non-finite"] },
            { "name": "with context", "op": "select", "args": {"ids": ["a", "b"], "frame": true},
              "source": "operator", "rationale": "look", "objects": ["z"],
              "context": {"scene_version": 9, "missing": ["z"]},
              "config": {"max_translation": 10}, "expect": "allow" }
        ]}"#;

    #[test]
    fn parses_with_defaults() {
        let file = FixtureFile::parse(FILE).unwrap();
        assert_eq!(file.policy, "nan-audit");
        let case = &file.cases[0];
        let intent = case.intent();
        assert_eq!(intent.source, Source::Agent);
        assert_eq!(intent.rationale, DEFAULT_RATIONALE);
        assert_eq!(intent.objects, ["obj-1"]);
        assert_eq!(intent.op_count, 1);
        assert!(
            intent
                .leaf("/translation/1")
                .unwrap()
                .as_f64()
                .unwrap()
                .is_nan()
        );
        assert_eq!(case.context().project_root, "/project");
        assert!(case.config_leaves().is_empty());
    }

    #[test]
    fn explicit_fields_win() {
        let file = FixtureFile::parse(FILE).unwrap();
        let case = &file.cases[1];
        let intent = case.intent();
        assert_eq!(intent.source, Source::Operator);
        assert_eq!(intent.objects, ["z"]);
        assert_eq!(intent.scene_version, 9);
        assert_eq!(case.context().missing, ["z"]);
        assert_eq!(
            case.config_leaves(),
            vec![Leaf {
                path: "/max_translation".into(),
                value: Scalar::Int(10)
            }]
        );
    }

    #[test]
    fn check_messages_name_the_mismatch() {
        let file = FixtureFile::parse(FILE).unwrap();
        let case = &file.cases[0];
        let err = case.check(&Verdict::Allow).unwrap_err();
        assert_eq!(
            err,
            "case \"nan translation\": expected deny, got allow (no findings)"
        );

        let wrong_rule = Verdict::Deny(vec![Finding::error(
            "nan-audit.scale-zero",
            "/scale/0",
            "zero",
        )]);
        let err = case.check(&wrong_rule).unwrap_err();
        assert_eq!(
            err,
            "case \"nan translation\": got deny as expected but rule(s) nan-audit.non-finite did not fire \
             (nan-audit.scale-zero at \"/scale/0\": zero)"
        );

        let right = Verdict::Deny(vec![Finding::error(
            "nan-audit.non-finite",
            "/translation/1",
            "NaN",
        )]);
        assert_eq!(case.check(&right), Ok(()));
        let escalate = Verdict::Escalate(right.findings().to_vec());
        assert!(
            case.check(&escalate)
                .unwrap_err()
                .contains("expected deny, got escalate")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let bad = r#"{"policy": "x", "cases": [{"name": "n", "op": "select", "args": {}, "expect": "allow", "expcet": 1}]}"#;
        let err = FixtureFile::parse(bad).unwrap_err().to_string();
        assert!(err.contains("expcet"), "{err}");
    }

    #[test]
    fn verdict_json_shape() {
        let v = Verdict::Deny(vec![Finding::error("a.b", "/x", "m")]);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"verdict":"deny","findings":[{"rule":"a.b","severity":"error","path":"/x","message":"m"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&Verdict::Allow).unwrap(),
            r#"{"verdict":"allow"}"#
        );
    }
}
