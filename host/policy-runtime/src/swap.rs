//! Hot swap: replacing policy modules while the pipeline serves.
//!
//! [`Pipeline::reload`] re-reads the policy directory and its lock, compiles
//! what changed (on the caller's thread, never on an evaluation's), and swaps
//! the whole new set in with one atomic store. Evaluations already running
//! keep the `Arc` of the old set and finish on it. If anything in the new
//! directory is refused (not approved, not a component, wrong world, faulting
//! `metadata()`), nothing is swapped and the old set keeps serving. Every
//! swap is logged with the old and new hash and returned as [`SwapEvent`]s the
//! orchestrator journals. [`DirWatcher`] calls `reload` when the directory
//! changes on disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use notify::Watcher;
use serde::{Deserialize, Serialize};

use crate::hash::Sha256;
use crate::lock::{LOCK_FILE, Lockfile, rfc3339_utc, wasm_files};
use crate::pipeline::{Pipeline, PolicySet};
use crate::runtime::{LoadError, Policy, Runtime};

/// One module changed in a swap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapEvent {
    /// Module name.
    pub policy: String,
    /// Hash before the swap; `None` if the module was added.
    pub old_sha256: Option<Sha256>,
    /// Hash after the swap; `None` if the module was removed.
    pub new_sha256: Option<Sha256>,
    /// Generation of the set that took effect.
    pub generation: u64,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// Why a reload was refused (the old set keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("this pipeline has no policy directory to reload from")]
    NoDirectory,
    #[error("reload refused, the previous policy set keeps serving: {0}")]
    Load(#[from] LoadError),
    #[error("reload refused, the previous policy set keeps serving: cannot list {dir}: {source}")]
    List {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Load every approved `*.wasm` of `dir` in file-name order. A module whose
/// name and hash match one in `reuse` is taken from there instead of being
/// loaded again.
pub(crate) fn load_dir(
    runtime: &Runtime,
    dir: &Path,
    reuse: Option<&HashMap<(String, Sha256), Arc<Policy>>>,
) -> Result<Vec<Arc<Policy>>, LoadError> {
    let files = wasm_files(dir).map_err(|source| LoadError::Read {
        path: dir.to_owned(),
        source,
    })?;
    if files.is_empty() {
        // No team modules yet: nothing to approve, so no lock is needed.
        return Ok(Vec::new());
    }
    let lock_path = dir.join(LOCK_FILE);
    let lock = Lockfile::read_dir(dir)?;
    let mut out = Vec::with_capacity(files.len());
    for (name, path) in files {
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let hash = Sha256::of(&bytes);
        lock.check(&name, &path, &hash, &lock_path)?;
        if let Some(p) = reuse.and_then(|r| r.get(&(name.clone(), hash.clone()))) {
            out.push(p.clone());
            continue;
        }
        out.push(Arc::new(runtime.load_file_with(&path, &lock, &lock_path)?));
    }
    Ok(out)
}

impl Pipeline {
    /// Re-read the policy directory; swap in what changed. Returns one event
    /// per module added, replaced or removed (empty: nothing changed, no swap).
    pub fn reload(&self) -> Result<Vec<SwapEvent>, ReloadError> {
        let dir = self.dir.as_ref().ok_or(ReloadError::NoDirectory)?;
        let _guard = self.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current.load_full();
        let reuse: HashMap<(String, Sha256), Arc<Policy>> = old
            .policies()
            .map(|p| ((p.name().to_owned(), p.hash().clone()), p.clone()))
            .collect();
        let team = match load_dir(&self.runtime, dir, Some(&reuse)) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "policy reload refused; previous set keeps serving");
                return Err(e.into());
            }
        };
        let mut all = self.builtins.clone();
        all.extend(team);
        Ok(self.install(&old, all))
    }

    /// Replace (or add, at the end) the module named `policy.name()`.
    pub fn replace(&self, policy: Policy) -> SwapEvent {
        let _guard = self.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.current.load_full();
        let new = Arc::new(policy);
        let mut all: Vec<Arc<Policy>> = old.policies().cloned().collect();
        match all.iter_mut().find(|p| p.name() == new.name()) {
            Some(slot) => *slot = new.clone(),
            None => all.push(new.clone()),
        }
        let events = self.install(&old, all);
        events.into_iter().next().unwrap_or_else(|| SwapEvent {
            policy: new.name().to_owned(),
            old_sha256: Some(new.hash().clone()),
            new_sha256: Some(new.hash().clone()),
            generation: old.generation(),
            at: rfc3339_utc(SystemTime::now()),
        })
    }

    /// Diff `old` against `all`, store the new set if anything changed, log
    /// and return the events. Caller holds `swap_lock`.
    fn install(&self, old: &PolicySet, all: Vec<Arc<Policy>>) -> Vec<SwapEvent> {
        let generation = old.generation() + 1;
        let at = rfc3339_utc(SystemTime::now());
        let mut events = Vec::new();
        for p in &all {
            let before = old.get(p.name()).map(|o| o.hash().clone());
            if before.as_ref() != Some(p.hash()) {
                events.push(SwapEvent {
                    policy: p.name().to_owned(),
                    old_sha256: before,
                    new_sha256: Some(p.hash().clone()),
                    generation,
                    at: at.clone(),
                });
            }
        }
        for o in old
            .policies()
            .filter(|o| !all.iter().any(|p| p.name() == o.name()))
        {
            events.push(SwapEvent {
                policy: o.name().to_owned(),
                old_sha256: Some(o.hash().clone()),
                new_sha256: None,
                generation,
                at: at.clone(),
            });
        }
        if events.is_empty() {
            return events;
        }
        self.current
            .store(Arc::new(PolicySet::new(all, &self.configs, generation)));
        for e in &events {
            let old = e
                .old_sha256
                .as_ref()
                .map_or("none".into(), |h| h.to_string());
            let new = e
                .new_sha256
                .as_ref()
                .map_or("none".into(), |h| h.to_string());
            tracing::info!(policy = %e.policy, old_sha256 = %old, new_sha256 = %new, generation, "policy swapped");
        }
        events
    }
}

/// Watches a pipeline's directory and reloads it after changes settle.
/// Dropping it stops the watch.
pub struct DirWatcher {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<JoinHandle<()>>,
}

impl DirWatcher {
    /// Start watching `pipeline`'s directory. `on_reload` receives the
    /// outcome of every reload the watcher triggers (on the watcher's thread).
    pub fn start(
        pipeline: Arc<Pipeline>,
        settle: Duration,
        on_reload: impl Fn(Result<Vec<SwapEvent>, ReloadError>) + Send + 'static,
    ) -> Result<Self, notify::Error> {
        let dir = pipeline
            .dir
            .clone()
            .ok_or_else(|| notify::Error::generic("the pipeline has no policy directory"))?;
        let (tx, rx) = mpsc::channel::<()>();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok_and(|e| !e.kind.is_access()) {
                let _ = tx.send(());
            }
        })?;
        watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
        let thread = std::thread::Builder::new()
            .name("vibesync-policy-watch".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    // Let a burst of writes (file, then lock) settle.
                    while rx.recv_timeout(settle).is_ok() {}
                    on_reload(pipeline.reload());
                }
            })
            .map_err(notify::Error::io)?;
        Ok(Self {
            watcher: Some(watcher),
            thread: Some(thread),
        })
    }
}

impl Drop for DirWatcher {
    fn drop(&mut self) {
        // Dropping the watcher drops the channel's sender; the thread ends.
        self.watcher.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
