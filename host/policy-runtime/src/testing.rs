//! The policy test runner: fixture files (`vibesync_policy_types::FixtureFile`)
//! evaluated through real, compiled components, reported as a pass/fail
//! table. `vibesync policy test DIR` and this crate's corpus tests use it.

use std::path::{Path, PathBuf};

use serde::Serialize;
use vibesync_policy_types::{Expect, FixtureFile};

use crate::runtime::{Policy, Runtime};

/// One case's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    pub file: String,
    pub policy: String,
    pub case: String,
    pub expected: Expect,
    /// `allow`, `deny` or `escalate`, or empty if the policy is not loaded.
    pub got: &'static str,
    pub passed: bool,
    /// Why it failed.
    pub detail: Option<String>,
    pub duration_ns: u64,
}

/// Every case of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TestReport {
    pub results: Vec<CaseResult>,
}

/// Why a fixture file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    #[error("cannot read fixture {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("fixture {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("no fixture files (*.json) in {0}")]
    Empty(PathBuf),
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// A fixed-width table, failures with their reason, and a summary line.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let w = self
            .results
            .iter()
            .map(|r| r.case.len())
            .max()
            .unwrap_or(4)
            .clamp(4, 70);
        let pw = self
            .results
            .iter()
            .map(|r| r.policy.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut s = format!(
            "{:<4}  {:<pw$}  {:<w$}  {:<8}  {:<8}  {:>8}\n",
            "", "policy", "case", "expected", "got", "µs"
        );
        for r in &self.results {
            let mark = if r.passed { "ok" } else { "FAIL" };
            let case: String = r.case.chars().take(w).collect();
            let _ = writeln!(
                s,
                "{mark:<4}  {:<pw$}  {case:<w$}  {:<8}  {:<8}  {:>8.1}",
                r.policy,
                r.expected.kind(),
                r.got,
                r.duration_ns as f64 / 1e3
            );
            if let Some(d) = &r.detail {
                let _ = writeln!(s, "      {}: {d}", r.file);
            }
        }
        let _ = writeln!(
            s,
            "\n{} passed, {} failed, {} cases",
            self.passed(),
            self.failed(),
            self.results.len()
        );
        s
    }
}

/// Run one fixture file; `lookup` finds the loaded policy a file names.
pub fn run_file<'p>(
    runtime: &Runtime,
    lookup: &dyn Fn(&str) -> Option<&'p Policy>,
    path: &Path,
) -> Result<Vec<CaseResult>, TestError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestError::Read {
        path: path.into(),
        source,
    })?;
    let file = FixtureFile::parse(&text).map_err(|e| TestError::Parse {
        path: path.into(),
        message: e.to_string(),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let policy = lookup(&file.policy);
    Ok(file
        .cases
        .iter()
        .map(|case| {
            let mut r = CaseResult {
                file: name.clone(),
                policy: file.policy.clone(),
                case: case.name.clone(),
                expected: case.expect,
                got: "",
                passed: false,
                detail: None,
                duration_ns: 0,
            };
            let Some(policy) = policy else {
                r.detail = Some(format!("no policy named `{}` is loaded", file.policy));
                return r;
            };
            let intent = case.intent();
            let run = runtime.evaluate(policy, &intent, &case.context(), &case.config_leaves());
            r.got = run.verdict.kind();
            r.duration_ns = run.duration_ns;
            match case.check(&run.verdict) {
                Ok(()) => r.passed = true,
                Err(why) => r.detail = Some(why),
            }
            r
        })
        .collect())
}

/// Run every `*.json` of `dir` (sorted by name).
pub fn run_dir<'p>(
    runtime: &Runtime,
    lookup: &dyn Fn(&str) -> Option<&'p Policy>,
    dir: &Path,
) -> Result<TestReport, TestError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| TestError::Read {
            path: dir.into(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(TestError::Empty(dir.into()));
    }
    let mut report = TestReport::default();
    for f in files {
        report.results.extend(run_file(runtime, lookup, &f)?);
    }
    Ok(report)
}
