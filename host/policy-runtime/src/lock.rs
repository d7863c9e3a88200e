//! `policies.lock`: the reviewer's approval of policy modules, by SHA-256.
//!
//! A policy directory holds `*.wasm` components and one `policies.lock`. A
//! module loads only if the lock lists its name with the SHA-256 of the exact
//! bytes on disk; anything else is refused with an error that names the file,
//! both hashes and the command that approves it. This module is pure data:
//! parsing, rendering and checking, no file system access beyond the two
//! helpers at the bottom that read and write the whole file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::hash::Sha256;

/// File name of the lock inside a policy directory.
pub const LOCK_FILE: &str = "policies.lock";
/// Format version written into new lock files.
pub const LOCK_VERSION: u32 = 1;

/// One approved module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LockEntry {
    /// File name inside the policy directory, e.g. `team-naming.wasm`.
    pub file: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: Sha256,
    /// Size in bytes, for the reviewer's eye (the hash is what is checked).
    pub size: u64,
    /// Who approved it.
    pub reviewer: String,
    /// When, as an RFC 3339 UTC timestamp.
    pub approved_at: String,
}

/// The parsed lock file: module name (file stem) → approval.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    pub version: u32,
    #[serde(default)]
    pub modules: BTreeMap<String, LockEntry>,
}

/// Why a lock file could not be read or a module is not approved.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "cannot read lock file {path}: {source}; approve the directory with `vibesync policy lock DIR --reviewer NAME`"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "lock file {path} is malformed: {source}; regenerate it with `vibesync policy lock DIR --reviewer NAME`"
    )]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error(
        "lock file {path} has version {found}, this host reads version {LOCK_VERSION}; regenerate it with `vibesync policy lock DIR --reviewer NAME`"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write lock file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "an approval needs a reviewer: pass `--reviewer NAME` (the name is recorded in policies.lock)"
    )]
    NoReviewer,
    #[error(
        "there is no module `{name}` ({name}.wasm) in {dir} to approve; copy the component there first"
    )]
    NoSuchModule { name: String, dir: PathBuf },
    #[error(
        "policy module {file} (sha256 {found}) is not approved: {lock} has no entry `{name}`; \
         review it with `vibesync policy inspect {file}` and approve it with `vibesync policy lock DIR --reviewer NAME`"
    )]
    NotListed {
        name: String,
        file: PathBuf,
        found: Sha256,
        lock: PathBuf,
    },
    #[error(
        "policy module {} was changed since it was approved: sha256 found {}, expected {} \
         (approved by {} at {} in {}); review it with `vibesync policy inspect {}` \
         and re-approve it with `vibesync policy lock DIR --reviewer NAME`",
        .0.file.display(), .0.found, .0.expected, .0.reviewer, .0.approved_at, .0.lock.display(), .0.file.display()
    )]
    HashMismatch(Box<HashMismatch>),
}

/// The details of [`LockError::HashMismatch`] (boxed: they would make every
/// `Result` that can carry a `LockError` four times larger).
#[derive(Debug)]
pub struct HashMismatch {
    pub file: PathBuf,
    pub found: Sha256,
    pub expected: Sha256,
    pub reviewer: String,
    pub approved_at: String,
    pub lock: PathBuf,
}

impl Lockfile {
    /// Parse the TOML text of a lock file; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LockError> {
        let lock: Lockfile = toml::from_str(text).map_err(|source| LockError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version {
                path: path.to_owned(),
                found: lock.version,
            });
        }
        Ok(lock)
    }

    /// Render as TOML with a header telling the reader what the file is.
    pub fn render(&self) -> String {
        let body = toml::to_string_pretty(self).expect("a lock file always serializes to TOML");
        format!(
            "# Approved VibeSync policy modules. A module loads only if its SHA-256 is listed here.\n\
             # Regenerate with `vibesync policy lock DIR --reviewer NAME` after reviewing\n\
             # each module with `vibesync policy inspect FILE`.\n\n{body}"
        )
    }

    /// Check that module `name`, read from `file` with hash `found`, is
    /// approved. `lock_path` is only used in errors.
    pub fn check(
        &self,
        name: &str,
        file: &Path,
        found: &Sha256,
        lock_path: &Path,
    ) -> Result<&LockEntry, LockError> {
        let entry = self.modules.get(name).ok_or_else(|| LockError::NotListed {
            name: name.to_owned(),
            file: file.to_owned(),
            found: found.clone(),
            lock: lock_path.to_owned(),
        })?;
        if &entry.sha256 != found {
            return Err(LockError::HashMismatch(Box::new(HashMismatch {
                file: file.to_owned(),
                found: found.clone(),
                expected: entry.sha256.clone(),
                reviewer: entry.reviewer.clone(),
                approved_at: entry.approved_at.clone(),
                lock: lock_path.to_owned(),
            })));
        }
        Ok(entry)
    }

    /// Read `dir/policies.lock`.
    pub fn read_dir(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| LockError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&text, &path)
    }

    /// Approve every `*.wasm` in `dir` as `reviewer`, now, and write
    /// `dir/policies.lock`. Entries whose hash did not change keep their
    /// original reviewer and timestamp. Returns the lock written.
    pub fn approve_dir(dir: &Path, reviewer: &str) -> Result<Self, LockError> {
        Self::approve(dir, reviewer, None)
    }

    /// Approve only module `name` (file `dir/<name>.wasm`) as `reviewer`,
    /// now; every other entry of `dir/policies.lock` stays exactly as it was
    /// (a module that changed without approval stays refused). Returns the
    /// lock written.
    pub fn approve_module(dir: &Path, name: &str, reviewer: &str) -> Result<Self, LockError> {
        Self::approve(dir, reviewer, Some(name))
    }

    fn approve(dir: &Path, reviewer: &str, only: Option<&str>) -> Result<Self, LockError> {
        if reviewer.trim().is_empty() {
            return Err(LockError::NoReviewer);
        }
        let path = dir.join(LOCK_FILE);
        let previous = match std::fs::read_to_string(&path) {
            Ok(text) => Some(Self::parse(&text, &path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(LockError::Read { path, source }),
        };
        let now = rfc3339_utc(SystemTime::now());
        let files = wasm_files(dir).map_err(|source| LockError::Read {
            path: dir.to_owned(),
            source,
        })?;
        if let Some(name) = only.filter(|n| !files.iter().any(|(f, _)| f.as_str() == *n)) {
            return Err(LockError::NoSuchModule {
                name: name.to_owned(),
                dir: dir.to_owned(),
            });
        }
        let mut lock = match (&previous, only) {
            (Some(p), Some(_)) => p.clone(),
            _ => Lockfile {
                version: LOCK_VERSION,
                modules: BTreeMap::new(),
            },
        };
        for (name, file) in files
            .into_iter()
            .filter(|(n, _)| only.is_none_or(|o| o == n.as_str()))
        {
            let bytes = std::fs::read(&file).map_err(|source| LockError::Read {
                path: file.clone(),
                source,
            })?;
            let entry = approval(&name, &file, &bytes, previous.as_ref(), reviewer, &now);
            lock.modules.insert(name, entry);
        }
        std::fs::write(&path, lock.render()).map_err(|source| LockError::Write { path, source })?;
        Ok(lock)
    }
}

/// The lock entry for module `name` with `bytes`: the previous approval if
/// the hash did not change, else a new one by `reviewer` at `now`. Pure.
fn approval(
    name: &str,
    file: &Path,
    bytes: &[u8],
    previous: Option<&Lockfile>,
    reviewer: &str,
    now: &str,
) -> LockEntry {
    let sha256 = Sha256::of(bytes);
    match previous
        .and_then(|p| p.modules.get(name))
        .filter(|e| e.sha256 == sha256)
    {
        Some(e) => e.clone(),
        None => LockEntry {
            file: file
                .file_name()
                .expect("wasm_files yields files")
                .to_string_lossy()
                .into_owned(),
            sha256,
            size: bytes.len() as u64,
            reviewer: reviewer.to_owned(),
            approved_at: now.to_owned(),
        },
    }
}

/// The `*.wasm` files of `dir` as (module name = file stem, path), sorted by
/// file name: that order is the pipeline order of a policy directory.
pub fn wasm_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "wasm") {
            let name = path
                .file_stem()
                .expect("a file with an extension has a stem")
                .to_string_lossy()
                .into_owned();
            out.push((name, path));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// RFC 3339 UTC timestamp with second precision (no date crate needed for
/// one format).
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(sha: &Sha256) -> LockEntry {
        LockEntry {
            file: "a.wasm".into(),
            sha256: sha.clone(),
            size: 3,
            reviewer: "alice".into(),
            approved_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_723)),
            "2000-02-29T01:02:03Z"
        );
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "2026-12-31T23:59:59Z"
        );
    }

    #[test]
    fn render_parse_round_trip() {
        let mut lock = Lockfile {
            version: LOCK_VERSION,
            modules: BTreeMap::new(),
        };
        lock.modules.insert("a".into(), entry(&Sha256::of(b"abc")));
        let text = lock.render();
        assert!(text.contains("approved-at"), "{text}");
        assert_eq!(Lockfile::parse(&text, Path::new("x")).unwrap(), lock);
    }

    #[test]
    fn check_names_file_hashes_and_remedy() {
        let good = Sha256::of(b"abc");
        let bad = Sha256::of(b"abd");
        let mut lock = Lockfile {
            version: LOCK_VERSION,
            modules: BTreeMap::new(),
        };
        lock.modules.insert("a".into(), entry(&good));
        let (file, lp) = (Path::new("dir/a.wasm"), Path::new("dir/policies.lock"));
        assert!(lock.check("a", file, &good, lp).is_ok());
        let msg = lock.check("a", file, &bad, lp).unwrap_err().to_string();
        for needle in [
            "dir/a.wasm",
            &bad.to_string(),
            &good.to_string(),
            "vibesync policy lock DIR --reviewer NAME",
        ] {
            assert!(msg.contains(needle), "{needle} missing from: {msg}");
        }
        let msg = lock
            .check("b", Path::new("dir/b.wasm"), &bad, lp)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("dir/b.wasm")
                && msg.contains(&bad.to_string())
                && msg.contains("policy lock"),
            "{msg}"
        );
    }

    /// A lock file as the first release of the host wrote it: it must keep
    /// loading unchanged.
    const V1_LOCK: &str =
        "# Approved VibeSync policy modules. A module loads only if its SHA-256 is listed here.
# Regenerate with `vibesync policy lock DIR --reviewer NAME` after reviewing
# each module with `vibesync policy inspect FILE`.

version = 1

[modules.team-naming]
file = \"team-naming.wasm\"
sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"
size = 3
reviewer = \"alice\"
approved-at = \"2026-01-01T00:00:00Z\"
";

    #[test]
    fn first_release_lock_files_still_load() {
        let lock = Lockfile::parse(V1_LOCK, Path::new("policies.lock")).unwrap();
        let e = &lock.modules["team-naming"];
        assert_eq!(e.sha256, Sha256::of(b"abc"));
        assert_eq!(
            (e.reviewer.as_str(), e.approved_at.as_str()),
            ("alice", "2026-01-01T00:00:00Z")
        );
        assert_eq!(
            Lockfile::parse(&lock.render(), Path::new("p")).unwrap(),
            lock
        );
    }

    #[test]
    fn approval_keeps_the_first_reviewer_of_an_unchanged_module() {
        let mut prev = Lockfile {
            version: LOCK_VERSION,
            modules: BTreeMap::new(),
        };
        prev.modules.insert("a".into(), entry(&Sha256::of(b"abc")));
        let file = Path::new("d/a.wasm");
        let same = approval(
            "a",
            file,
            b"abc",
            Some(&prev),
            "bob",
            "2026-02-02T00:00:00Z",
        );
        assert_eq!(
            (same.reviewer.as_str(), same.approved_at.as_str()),
            ("alice", "2026-01-01T00:00:00Z")
        );
        let changed = approval(
            "a",
            file,
            b"abd",
            Some(&prev),
            "bob",
            "2026-02-02T00:00:00Z",
        );
        assert_eq!(
            (changed.reviewer.as_str(), changed.approved_at.as_str()),
            ("bob", "2026-02-02T00:00:00Z")
        );
        assert_eq!(
            (changed.sha256, changed.size, changed.file.as_str()),
            (Sha256::of(b"abd"), 3, "a.wasm")
        );
    }

    #[test]
    fn approving_one_module_leaves_the_others_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("a.wasm"), b"one").unwrap();
        std::fs::write(dir.join("b.wasm"), b"two").unwrap();
        Lockfile::approve_dir(dir, "alice").unwrap();
        std::fs::write(dir.join("a.wasm"), b"one, changed").unwrap();
        std::fs::write(dir.join("b.wasm"), b"two, changed").unwrap();
        let lock = Lockfile::approve_module(dir, "a", "bob").unwrap();
        assert_eq!(lock.modules["a"].sha256, Sha256::of(b"one, changed"));
        assert_eq!(lock.modules["a"].reviewer, "bob");
        assert_eq!(
            lock.modules["b"].sha256,
            Sha256::of(b"two"),
            "b changed without approval: still the old hash"
        );
        assert_eq!(Lockfile::read_dir(dir).unwrap(), lock);
        assert!(matches!(
            Lockfile::approve_module(dir, "c", "bob"),
            Err(LockError::NoSuchModule { .. })
        ));
        assert!(matches!(
            Lockfile::approve_dir(dir, " "),
            Err(LockError::NoReviewer)
        ));
    }

    #[test]
    fn wrong_version_is_refused() {
        let err = Lockfile::parse("version = 7\n", Path::new("p.lock")).unwrap_err();
        assert!(matches!(err, LockError::Version { found: 7, .. }));
    }
}
