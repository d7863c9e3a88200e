//! Native corpus runner: every case of every `*.json` fixture file in a
//! directory through a policy's native rules (native targets only).
//!
//! The same files run through the compiled components in the host's tests,
//! so a rule and its wasm build are held to one corpus.

use std::path::Path;

use vibesync_policy_types::{Context, Expect, FixtureFile, Intent, Verdict};

use crate::Config;

/// What a corpus run found.
#[derive(Debug, Default)]
pub struct CorpusReport {
    /// Cases expecting deny or escalate.
    pub hostile: usize,
    /// Cases expecting allow.
    pub benign: usize,
    /// One explanation per case that did not get its expected verdict.
    pub failures: Vec<String>,
}

/// Run every case in `dir/*.json` (files must name `policy`) through `evaluate`.
///
/// Panics with the file name on an unreadable or malformed file: a corpus
/// that cannot be read is a failing test, not a skipped one.
pub fn run_corpus(
    dir: &Path,
    policy: &str,
    evaluate: impl Fn(&Intent, &Context, &Config) -> Verdict,
) -> CorpusReport {
    let mut report = CorpusReport::default();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = FixtureFile::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            file.policy,
            policy,
            "{} is for another policy",
            path.display()
        );
        for case in &file.cases {
            match case.expect {
                Expect::Allow => report.benign += 1,
                Expect::Deny | Expect::Escalate => report.hostile += 1,
            }
            let verdict = evaluate(
                &case.intent(),
                &case.context(),
                &Config::new(case.config_leaves()),
            );
            if let Err(e) = case.check(&verdict) {
                report.failures.push(format!(
                    "{}: {e}",
                    path.file_name().unwrap_or_default().display()
                ));
            }
        }
    }
    report
}

impl CorpusReport {
    /// Panic unless every case passed and the corpus has at least `min` hostile and `min` benign cases.
    pub fn assert_passed(&self, min: usize) {
        assert!(
            self.failures.is_empty(),
            "{} case(s) failed:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(
            self.hostile >= min && self.benign >= min,
            "corpus too small: {} hostile, {} benign (need {min} each)",
            self.hostile,
            self.benign
        );
    }
}
