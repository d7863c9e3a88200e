//! `vibesync policy diff OLD NEW`: what a reviewer needs to see before
//! approving a new version of a policy module.
//!
//! Pure: it compares two [`inspect::Report`]s (hash, size, world, imports
//! with what this host grants them, exports) and, when fixtures were run
//! against both versions, two [`TestReport`]s case by case, and lists the
//! cases whose verdict changed. Loading and running are the caller's job.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::hash::Sha256;
use crate::inspect::{Item, Report, Status, grant};
use crate::testing::TestReport;

/// One side of the comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    pub sha256: Sha256,
    pub size: u64,
    /// `None` if it implements the policy world; else why not.
    pub world_mismatch: Option<String>,
}

/// An import or export present on one side only, or on both with other
/// functions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// For an import: what this host grants it.
    pub status: Option<Status>,
    /// For `changed`: the functions before and after.
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// A fixture case whose outcome differs between the versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictChange {
    pub file: String,
    pub case: String,
    pub expected: &'static str,
    pub old: &'static str,
    pub new: &'static str,
    pub old_passed: bool,
    pub new_passed: bool,
}

/// The whole diff.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleDiff {
    pub old: Side,
    pub new: Side,
    pub imports: Vec<ItemChange>,
    pub exports: Vec<ItemChange>,
    /// Cases run against both versions (0 when no fixtures were given).
    pub cases: usize,
    pub verdict_changes: Vec<VerdictChange>,
}

impl ModuleDiff {
    /// Whether the two modules are byte-identical.
    pub fn identical(&self) -> bool {
        self.old.sha256 == self.new.sha256
    }
}

/// Compare item lists by name, then by functions. Pure.
fn compare(old: &[Item], new: &[Item], imports: bool) -> Vec<ItemChange> {
    let o: BTreeMap<&str, &Item> = old.iter().map(|i| (i.name.as_str(), i)).collect();
    let n: BTreeMap<&str, &Item> = new.iter().map(|i| (i.name.as_str(), i)).collect();
    let status = |name: &str| imports.then(|| grant(name).0);
    let mut out = Vec::new();
    for (name, i) in &o {
        match n.get(name) {
            None => out.push(ItemChange {
                name: name.to_string(),
                change: "removed",
                status: status(name),
                before: i.functions.clone(),
                after: vec![],
            }),
            Some(j) if j.functions != i.functions || j.kind != i.kind => out.push(ItemChange {
                name: name.to_string(),
                change: "changed",
                status: status(name),
                before: i.functions.clone(),
                after: j.functions.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, j) in n.iter().filter(|(name, _)| !o.contains_key(*name)) {
        out.push(ItemChange {
            name: name.to_string(),
            change: "added",
            status: status(name),
            before: vec![],
            after: j.functions.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Cases of `new` whose verdict or pass/fail differs from the same
/// (file, case) in `old`. Pure.
pub fn verdict_changes(old: &TestReport, new: &TestReport) -> Vec<VerdictChange> {
    let before: BTreeMap<(&str, &str), _> = old
        .results
        .iter()
        .map(|r| ((r.file.as_str(), r.case.as_str()), r))
        .collect();
    new.results
        .iter()
        .filter_map(|n| {
            let o = before.get(&(n.file.as_str(), n.case.as_str()))?;
            (o.got != n.got || o.passed != n.passed).then(|| VerdictChange {
                file: n.file.clone(),
                case: n.case.clone(),
                expected: n.expected.kind(),
                old: o.got,
                new: n.got,
                old_passed: o.passed,
                new_passed: n.passed,
            })
        })
        .collect()
}

/// Diff two inspected modules and, optionally, their fixture runs. Pure.
pub fn diff(old: &Report, new: &Report, tests: Option<(&TestReport, &TestReport)>) -> ModuleDiff {
    let side = |r: &Report| Side {
        sha256: r.sha256.clone(),
        size: r.size,
        world_mismatch: r.world_mismatch.clone(),
    };
    ModuleDiff {
        old: side(old),
        new: side(new),
        imports: compare(&old.imports, &new.imports, true),
        exports: compare(&old.exports, &new.exports, false),
        cases: tests.map_or(0, |(_, n)| n.results.len()),
        verdict_changes: tests
            .map(|(o, n)| verdict_changes(o, n))
            .unwrap_or_default(),
    }
}

impl ModuleDiff {
    /// Human-readable rendering.
    pub fn render(&self, old_file: &str, new_file: &str) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let world = |w: &Option<String>| {
            w.as_ref()
                .map_or("implements the policy world".to_owned(), |m| {
                    format!("does NOT implement the policy world: {m}")
                })
        };
        let _ = writeln!(
            s,
            "old  {old_file}\n     sha256 {}  {} bytes  {}",
            self.old.sha256,
            self.old.size,
            world(&self.old.world_mismatch)
        );
        let _ = writeln!(
            s,
            "new  {new_file}\n     sha256 {}  {} bytes  {}",
            self.new.sha256,
            self.new.size,
            world(&self.new.world_mismatch)
        );
        if self.identical() {
            let _ = writeln!(s, "\nidentical: the same bytes");
            return s;
        }
        let delta = self.new.size as i64 - self.old.size as i64;
        let _ = writeln!(s, "size {delta:+} bytes");
        for (title, list) in [("imports", &self.imports), ("exports", &self.exports)] {
            if list.is_empty() {
                let _ = writeln!(s, "\n{title}: unchanged");
                continue;
            }
            let _ = writeln!(s, "\n{title}: {} changed", list.len());
            for c in list {
                let mark = match c.change {
                    "added" => "+",
                    "removed" => "-",
                    _ => "~",
                };
                let status = c
                    .status
                    .map(|st| format!("  [{}]", st.marker()))
                    .unwrap_or_default();
                let _ = writeln!(s, "  {mark} {}{status}", c.name);
                if c.change == "changed" {
                    for f in c.before.iter().filter(|f| !c.after.contains(f)) {
                        let _ = writeln!(s, "      - {f}");
                    }
                    for f in c.after.iter().filter(|f| !c.before.contains(f)) {
                        let _ = writeln!(s, "      + {f}");
                    }
                }
            }
        }
        if self.cases == 0 {
            let _ = writeln!(
                s,
                "\nfixtures: none given (pass --fixtures DIR to see which verdicts change)"
            );
        } else if self.verdict_changes.is_empty() {
            let _ = writeln!(s, "\nfixtures: {} cases, no verdict changed", self.cases);
        } else {
            let _ = writeln!(
                s,
                "\nfixtures: {} cases, {} changed verdict:",
                self.cases,
                self.verdict_changes.len()
            );
            let pass = |p: bool| if p { "pass" } else { "FAIL" };
            for c in &self.verdict_changes {
                let _ = writeln!(
                    s,
                    "  {} / {}: {} ({}) -> {} ({}), expected {}",
                    c.file,
                    c.case,
                    c.old,
                    pass(c.old_passed),
                    c.new,
                    pass(c.new_passed),
                    c.expected
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::Capability;
    use crate::testing::CaseResult;
    use vibesync_policy_types::Expect;

    fn item(name: &str, functions: &[&str]) -> Item {
        Item {
            name: name.into(),
            kind: "instance",
            functions: functions.iter().map(|f| f.to_string()).collect(),
        }
    }
    fn report(bytes: &[u8], imports: Vec<Item>, exports: Vec<Item>) -> Report {
        let capabilities = imports
            .iter()
            .map(|i| {
                let (status, grant) = grant(&i.name);
                Capability {
                    interface: i.name.clone(),
                    status,
                    grant,
                }
            })
            .collect();
        Report {
            sha256: Sha256::of(bytes),
            size: bytes.len() as u64,
            world: crate::inspect::POLICY_WORLD,
            world_mismatch: None,
            imports,
            exports,
            capabilities,
        }
    }
    fn case(file: &str, name: &str, expected: Expect, got: &'static str) -> CaseResult {
        CaseResult {
            file: file.into(),
            policy: "p".into(),
            case: name.into(),
            expected,
            got,
            passed: expected.kind() == got,
            detail: None,
            duration_ns: 1,
        }
    }

    #[test]
    fn imports_and_exports_changes_are_listed_with_grants() {
        let host = item("vibesync:policy/host@0.1.0", &["log(level, message)"]);
        let eval = item(
            "vibesync:policy/evaluator@0.1.0",
            &["metadata()", "evaluate(intent, context, config)"],
        );
        let old = report(
            b"old",
            vec![
                host.clone(),
                item("wasi:cli/stdout@0.2.3", &["get-stdout()"]),
            ],
            vec![eval.clone()],
        );
        let new = report(
            b"newer",
            vec![
                host,
                item("wasi:filesystem/preopens@0.2.3", &["get-directories()"]),
            ],
            vec![item(
                "vibesync:policy/evaluator@0.1.0",
                &["metadata()", "evaluate(intent, context)"],
            )],
        );
        let d = diff(&old, &new, None);
        assert!(!d.identical());
        let names: Vec<(&str, &str)> = d
            .imports
            .iter()
            .map(|c| (c.name.as_str(), c.change))
            .collect();
        assert_eq!(
            names,
            [
                ("wasi:cli/stdout@0.2.3", "removed"),
                ("wasi:filesystem/preopens@0.2.3", "added")
            ]
        );
        assert_eq!(d.imports[1].status, Some(Status::NotGranted));
        assert_eq!(d.exports.len(), 1);
        assert_eq!(d.exports[0].change, "changed");
        assert_eq!(d.exports[0].status, None);
        let text = d.render("old.wasm", "new.wasm");
        for needle in [
            "size +2 bytes",
            "+ wasi:filesystem/preopens@0.2.3  [NOT GRANTED]",
            "- evaluate(intent, context, config)",
            "+ evaluate(intent, context)",
            "fixtures: none given",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn identical_modules_say_so() {
        let r = report(b"same", vec![], vec![]);
        let d = diff(&r, &r, None);
        assert!(d.identical() && d.imports.is_empty() && d.exports.is_empty());
        assert!(d.render("a", "b").contains("identical"));
    }

    #[test]
    fn only_cases_whose_outcome_changed_are_listed() {
        let old = TestReport {
            results: vec![
                case("a.json", "same", Expect::Allow, "allow"),
                case("a.json", "flips", Expect::Deny, "deny"),
                case("b.json", "fixed", Expect::Deny, "allow"),
                case("b.json", "only in old", Expect::Allow, "allow"),
            ],
        };
        let new = TestReport {
            results: vec![
                case("a.json", "same", Expect::Allow, "allow"),
                case("a.json", "flips", Expect::Deny, "allow"),
                case("b.json", "fixed", Expect::Deny, "deny"),
                case("b.json", "only in new", Expect::Allow, "allow"),
            ],
        };
        let changes = verdict_changes(&old, &new);
        let got: Vec<(&str, &str, &str, bool)> = changes
            .iter()
            .map(|c| (c.case.as_str(), c.old, c.new, c.new_passed))
            .collect();
        assert_eq!(
            got,
            [
                ("flips", "deny", "allow", false),
                ("fixed", "allow", "deny", true)
            ]
        );
        let r = report(b"x", vec![], vec![]);
        let text = diff(&r, &report(b"y", vec![], vec![]), Some((&old, &new))).render("o", "n");
        assert!(text.contains("4 cases, 2 changed verdict"), "{text}");
        assert!(
            text.contains("a.json / flips: deny (pass) -> allow (FAIL), expected deny"),
            "{text}"
        );
    }
}
