//! What a script analyser (Python or C#) reports, shared by both so the
//! policy treats every language the same way.

/// One problem found in the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub rule: &'static str,
    /// 1-based line of the offending code (0 for the whole script).
    pub line: usize,
    pub message: String,
}

/// What the analysis found: the issues, and every string literal (for the
/// payload-wide URL and path rules).
#[derive(Debug, Default)]
pub struct Report {
    pub issues: Vec<Issue>,
    pub strings: Vec<String>,
}
