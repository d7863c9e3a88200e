//! Typed, allocation-free views over the packed leaves a policy receives.
//!
//! [`Args`] reads an op's arguments by JSON pointer, [`Config`] the policy's
//! configuration table, [`Findings`] collects findings and turns them into a
//! verdict (any error or critical finding denies).

use vibesync_policy_types::{
    Finding, Intent, Leaf, LeafRef, Leaves, PolicyInfo, RuleInfo, ScalarRef, Severity, Verdict,
};

/// Whether `path` is `prefix` or lies under it (`/a/0` is under `/a`, `/ab` is not).
///
/// A byte loop rather than `strip_prefix`: rules test every leaf against a
/// few pointers, most differ within two bytes, and in wasm `strip_prefix`
/// is a call to a byte-at-a-time `memcmp`.
fn is_under(path: &str, prefix: &str) -> bool {
    let (p, q) = (path.as_bytes(), prefix.as_bytes());
    p.len() >= q.len()
        && p.iter().zip(q).all(|(a, b)| a == b)
        && p.get(q.len()).is_none_or(|&c| c == b'/')
}

/// A list index token (decimal digits), without `str::parse`'s generality.
fn index(token: &str) -> Option<usize> {
    if token.is_empty() {
        return None;
    }
    token.bytes().try_fold(0usize, |n, b| {
        b.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(usize::from(b - b'0')))?
    })
}

/// Read-only pointer access to leaves (an op's args or a config).
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    leaves: &'a Leaves,
}

impl<'a> Args<'a> {
    /// The arguments of `intent`.
    pub fn of(intent: &'a Intent) -> Args<'a> {
        Args::new(&intent.leaves)
    }

    /// A view over any leaves.
    pub fn new(leaves: &'a Leaves) -> Args<'a> {
        Args { leaves }
    }

    /// Every leaf, in document order.
    pub fn leaves(&self) -> impl Iterator<Item = LeafRef<'a>> + 'a {
        self.leaves.iter()
    }

    /// Every text leaf as `(path, text)`.
    pub fn texts(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.leaves()
            .filter_map(|l| Some((l.path(), l.value().as_str()?)))
    }

    /// The scalar at exactly `pointer` (not a container).
    pub fn get(&self, pointer: &str) -> Option<ScalarRef<'a>> {
        self.leaves.get(pointer)
    }

    /// The text at `pointer`, if it is text.
    pub fn str(&self, pointer: &str) -> Option<&'a str> {
        self.get(pointer)?.as_str()
    }

    /// The number at `pointer` as `f64`, if it is a number.
    pub fn f64(&self, pointer: &str) -> Option<f64> {
        self.get(pointer)?.as_f64()
    }

    /// The bool at `pointer`, if it is one.
    pub fn bool(&self, pointer: &str) -> Option<bool> {
        self.get(pointer)?.as_bool()
    }

    /// Whether anything (a scalar or a container) is at `pointer`.
    pub fn has(&self, pointer: &str) -> bool {
        self.leaves.paths().any(|p| is_under(p, pointer))
    }

    /// Every leaf at or under `pointer`.
    pub fn under(&self, pointer: &'a str) -> impl Iterator<Item = LeafRef<'a>> + 'a {
        self.leaves().filter(move |l| is_under(l.path(), pointer))
    }

    /// The distinct top-level keys (first pointer tokens), in document order.
    pub fn top_level_keys(&self) -> Vec<&'a str> {
        let mut keys: Vec<&str> = Vec::new();
        for l in self.leaves() {
            let Some(rest) = l.path().strip_prefix('/') else {
                continue;
            };
            let key = rest.split('/').next().unwrap_or(rest);
            if keys.last() != Some(&key) && !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// The elements of a list of scalars at `pointer` (`/p/0`, `/p/1`, ...)
    /// in order, or `None` if `pointer` is not such a list (a scalar, a map,
    /// nested lists). An empty list gives `Some(vec![])`.
    pub fn list(&self, pointer: &str) -> Option<Vec<ScalarRef<'a>>> {
        let mut items = Vec::new();
        let mut seen = false;
        for l in self.leaves() {
            let path = l.path();
            if !is_under(path, pointer) {
                continue;
            }
            seen = true;
            let rest = &path[pointer.len()..];
            if rest.is_empty() {
                // The container itself: only an empty list/map leaves a null here.
                return if l.value() == ScalarRef::Null {
                    Some(items)
                } else {
                    None
                };
            }
            if index(&rest[1..])? != items.len() {
                return None;
            }
            items.push(l.value());
        }
        seen.then_some(items)
    }

    /// A list of exactly `N` numbers at `pointer`.
    pub fn vector<const N: usize>(&self, pointer: &str) -> Option<[f64; N]> {
        let items = self.list(pointer)?;
        if items.len() != N {
            return None;
        }
        let mut out = [0.0; N];
        for (slot, item) in out.iter_mut().zip(items) {
            *slot = item.as_f64()?;
        }
        Some(out)
    }
}

/// A policy's configuration table (the operator's TOML/JSON, flattened).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    leaves: Leaves,
}

impl Config {
    pub fn new(leaves: Vec<Leaf>) -> Config {
        Config {
            leaves: leaves.iter().collect(),
        }
    }

    /// No configuration: every rule uses its defaults.
    pub fn empty() -> Config {
        Config::default()
    }

    pub fn args(&self) -> Args<'_> {
        Args::new(&self.leaves)
    }

    /// The number at `pointer`, or `default` when absent or not a number.
    pub fn f64_or(&self, pointer: &str, default: f64) -> f64 {
        self.args().f64(pointer).unwrap_or(default)
    }

    /// The bool at `pointer`, or `default`.
    pub fn bool_or(&self, pointer: &str, default: bool) -> bool {
        self.args().bool(pointer).unwrap_or(default)
    }
}

/// Collects findings; [`Findings::verdict`] denies if any is an error or critical.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    list: Vec<Finding>,
    escalate: bool,
}

impl Findings {
    pub fn new() -> Findings {
        Findings::default()
    }

    /// Add a finding.
    pub fn push(&mut self, finding: Finding) {
        self.list.push(finding);
    }

    /// Add an error finding.
    pub fn error(&mut self, rule: &str, path: impl Into<String>, message: impl Into<String>) {
        self.push(Finding::error(rule, path, message));
    }

    /// Add a critical finding.
    pub fn critical(&mut self, rule: &str, path: impl Into<String>, message: impl Into<String>) {
        self.push(Finding::critical(rule, path, message));
    }

    /// Add a finding that holds the op for a human (escalate unless something denies).
    pub fn escalate(&mut self, rule: &str, path: impl Into<String>, message: impl Into<String>) {
        self.escalate = true;
        self.push(Finding::warning(rule, path, message));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn as_slice(&self) -> &[Finding] {
        &self.list
    }

    /// Deny if any finding is an error or critical, else escalate if any
    /// finding asked for it, else allow (info/warning findings alone allow).
    pub fn verdict(self) -> Verdict {
        if self.list.iter().any(|f| f.severity >= Severity::Error) {
            Verdict::Deny(self.list)
        } else if self.escalate {
            Verdict::Escalate(self.list)
        } else {
            Verdict::Allow
        }
    }
}

/// Build a [`PolicyInfo`] from `(rule id, description)` pairs.
pub fn policy_info(
    name: &str,
    version: &str,
    description: &str,
    rules: &[(&str, &str)],
) -> PolicyInfo {
    PolicyInfo {
        name: name.to_owned(),
        version: version.to_owned(),
        description: description.to_owned(),
        rules: rules
            .iter()
            .map(|(id, d)| RuleInfo {
                id: (*id).to_owned(),
                description: (*d).to_owned(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vibesync_policy_types::{flatten, flatten_packed};

    fn leaves(v: serde_json::Value) -> Leaves {
        flatten_packed(&v)
    }

    #[test]
    fn pointer_reads() {
        let l = leaves(
            serde_json::json!({"id": "obj-1", "translation": [1, 2.5, 3], "frame": true, "ab": 1}),
        );
        let a = Args::new(&l);
        assert_eq!(a.str("/id"), Some("obj-1"));
        assert_eq!(a.vector::<3>("/translation"), Some([1.0, 2.5, 3.0]));
        assert_eq!(a.vector::<4>("/translation"), None);
        assert_eq!(a.bool("/frame"), Some(true));
        assert!(a.has("/translation"));
        assert!(!a.has("/a"), "/ab must not count as under /a");
        assert_eq!(a.under("/translation").count(), 3);
        assert_eq!(a.top_level_keys(), ["ab", "id", "frame", "translation"]);
    }

    #[test]
    fn lists() {
        let l = leaves(serde_json::json!({"ids": [], "m": {"x": 1}, "n": [[1]], "s": 4}));
        let a = Args::new(&l);
        assert_eq!(a.list("/ids"), Some(vec![]));
        assert_eq!(a.list("/m"), None);
        assert_eq!(a.list("/n"), None);
        assert_eq!(a.list("/s"), None);
        assert_eq!(a.list("/absent"), None);
    }

    #[test]
    fn findings_verdicts() {
        let mut f = Findings::new();
        assert_eq!(f.clone().verdict(), Verdict::Allow);
        f.escalate("p.lock", "", "held");
        assert!(matches!(f.clone().verdict(), Verdict::Escalate(_)));
        f.error("p.bad", "/x", "bad");
        assert!(matches!(f.verdict(), Verdict::Deny(v) if v.len() == 2));
    }

    #[test]
    fn config_defaults() {
        let c = Config::new(flatten(&serde_json::json!({"max": 5})));
        assert_eq!(c.f64_or("/max", 1.0), 5.0);
        assert_eq!(c.f64_or("/min", 1.0), 1.0);
        assert!(Config::empty().bool_or("/x", true));
    }
}
