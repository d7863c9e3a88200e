//! Payload-wide text rules: URLs to non-loopback hosts, path traversal, and
//! absolute paths outside the project root.
//!
//! Text is split into tokens at whitespace and quoting/bracketing
//! punctuation; a token is a URL if it has `scheme://`, a path if it has a
//! separator. Words are never matched as substrings of longer words.

/// Rule ids (also listed in `metadata()`).
pub const URL: &str = "firewall.url";
pub const TRAVERSAL: &str = "firewall.path-traversal";
pub const ABSOLUTE: &str = "firewall.absolute-path";

/// One problem found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub rule: &'static str,
    pub message: String,
}

fn tokens(text: &str) -> impl Iterator<Item = &str> {
    // Brackets are trimmed, not split on, so `http://[::1]:80/` stays whole.
    text.split(|c: char| c.is_whitespace() || "\"'`(){}<>,;=|*!".contains(c))
        .map(|t| t.trim_matches(['[', ']']))
        .filter(|t| !t.is_empty())
}

/// Whether `host` is a loopback host (`localhost`, `127.0.0.0/8`, `::1`).
pub fn is_loopback(host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" {
        return true;
    }
    let octets: Vec<&str> = host.split('.').collect();
    octets.len() == 4 && octets[0] == "127" && octets.iter().all(|o| o.parse::<u8>().is_ok())
}

/// The host of the first URL in `text` (`scheme://[user@]host[:port]/...`),
/// or `text` itself if it looks like a bare host name or address.
pub fn host_of(text: &str) -> Option<String> {
    for token in tokens(text) {
        if let Some((_, rest)) = split_url(token) {
            return Some(authority_host(rest));
        }
    }
    let t = text.trim();
    let bare_host = !t.is_empty()
        && !t.contains(char::is_whitespace)
        && (t == "localhost" || t.contains('.') || t.contains(':'))
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        && t.chars().any(|c| c.is_ascii_alphanumeric());
    bare_host.then(|| t.to_owned())
}

/// `("scheme", "rest after ://")` if `token` is a URL.
fn split_url(token: &str) -> Option<(&str, &str)> {
    let idx = token.find("://")?;
    let scheme_start = token[..idx]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
        .map_or(0, |i| i + 1);
    let scheme = &token[scheme_start..idx];
    (!scheme.is_empty() && scheme.starts_with(|c: char| c.is_ascii_alphabetic()))
        .then(|| (scheme, &token[idx + 3..]))
}

fn authority_host(rest: &str) -> String {
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.to_ascii_lowercase()
}

/// Normalise `.` segments and repeated separators; `\` counts as `/`.
fn normalise(path: &str) -> String {
    let unified = path.replace('\\', "/");
    let absolute = unified.starts_with('/');
    let parts: Vec<&str> = unified
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

fn inside(path: &str, root: &str) -> bool {
    let (path, root) = (normalise(path), normalise(root));
    let windows = root.chars().nth(1) == Some(':');
    let (path, root) = if windows {
        (path.to_ascii_lowercase(), root.to_ascii_lowercase())
    } else {
        (path, root)
    };
    !root.is_empty()
        && (path == root || path.starts_with(&format!("{}/", root.trim_end_matches('/'))))
}

/// Whether `token` is an absolute path: `/x`, `~/x`, `C:\x`, `C:/x`, `\\server\x`.
fn absolute_path(token: &str) -> bool {
    let b = token.as_bytes();
    let path_char = |c: u8| c.is_ascii_alphanumeric() || b"._~-".contains(&c);
    (b.len() >= 2 && b[0] == b'/' && path_char(b[1]))
        || token.starts_with("~/")
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && (b[2] == b'\\' || b[2] == b'/'))
        || (token.starts_with("\\\\") && b.len() > 2 && path_char(b[2]))
}

/// Check one text for URLs and paths.
pub fn scan(text: &str, project_root: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    // Every URL (`://`), traversal and absolute path has a separator; most
    // leaves (ids, names) have none and need no tokenising.
    if !text.bytes().any(|b| b == b'/' || b == b'\\') {
        return issues;
    }
    for token in tokens(text) {
        if let Some((scheme, rest)) = split_url(token) {
            let host = authority_host(rest);
            if scheme.eq_ignore_ascii_case("file") {
                let path = rest
                    .get(rest.find('/').unwrap_or(rest.len())..)
                    .unwrap_or("");
                check_path(path, token, project_root, &mut issues);
            } else if !is_loopback(&host) {
                issues.push(Issue {
                    rule: URL,
                    message: format!("URL {token:?} points at {host:?}, outside this machine; only loopback hosts may be named"),
                });
            }
            continue;
        }
        check_path(token, token, project_root, &mut issues);
    }
    issues
}

fn check_path(path: &str, shown: &str, project_root: &str, issues: &mut Vec<Issue>) {
    if path.contains(['/', '\\']) && path.split(['/', '\\']).any(|s| s == "..") {
        issues.push(Issue {
            rule: TRAVERSAL,
            message: format!("path {shown:?} climbs out with `..`; name the file relative to the project without `..`"),
        });
    } else if absolute_path(path) && !inside(path, project_root) {
        issues.push(Issue {
            rule: ABSOLUTE,
            message: format!(
                "absolute path {shown:?} is outside the project root {project_root:?}; use a path inside the project"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<&'static str> {
        scan(text, "/project").into_iter().map(|i| i.rule).collect()
    }

    #[test]
    fn urls() {
        assert_eq!(rules("see https://evil.example.com/x"), [URL]);
        assert_eq!(rules("http://user@10.0.0.1:8080/"), [URL]);
        assert!(rules("http://127.0.0.1:9000/a http://localhost/x http://[::1]:80/").is_empty());
        assert_eq!(rules("http://localhost.evil.com/"), [URL]);
    }

    #[test]
    fn paths() {
        assert_eq!(rules("textures/../../etc/passwd"), [TRAVERSAL]);
        assert_eq!(rules("..\\..\\Windows"), [TRAVERSAL]);
        assert_eq!(rules("/etc/passwd"), [ABSOLUTE]);
        assert_eq!(rules("C:\\Windows\\system32"), [ABSOLUTE]);
        assert_eq!(rules("~/.ssh/id_rsa"), [ABSOLUTE]);
        assert_eq!(rules("file:///etc/shadow"), [ABSOLUTE]);
        assert_eq!(rules("/projectx/a"), [ABSOLUTE]);
        assert!(rules("/project/textures/wood.png and /project").is_empty());
        assert!(
            rules("Wait... 1/2 and/or m/s x // y a / b import test.fbx //textures/a.png")
                .is_empty()
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("http://a.b:1/x").as_deref(), Some("a.b"));
        assert_eq!(host_of("hello world"), None);
        assert!(is_loopback("127.1.2.3") && !is_loopback("128.0.0.1"));
    }
}
