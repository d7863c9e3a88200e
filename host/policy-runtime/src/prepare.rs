//! Instances prepared ahead of evaluations, and stores torn down after them,
//! off the caller's thread.
//!
//! Every evaluation still runs in a fresh instance that is used exactly once
//! (see [`crate::runtime`]); what changes is *when* that instance is made and
//! destroyed. Instantiating a component (store, pool slot, memory image,
//! tables) and dropping it again (resetting the slot) is the larger part of
//! the fixed cost of an evaluation. Neither depends on the intent, so a
//! background thread, the *preparer*, does both:
//!
//! - each [`Shelf`] (one per loaded policy) keeps up to `depth` instances
//!   that were instantiated into their own new `Store` under the full
//!   budgets and never called. An evaluation takes one, re-arms the
//!   wall-clock deadline from that moment, stamps its tid on the log sink,
//!   calls `evaluate` once and hands the store back for destruction; taking
//!   one asks the preparer for a replacement;
//! - a used store is sent to the preparer to be dropped (which resets its
//!   pool slot to the module's image) unless too many are already waiting,
//!   in which case the caller drops it itself.
//!
//! Isolation is unchanged: no instance is ever called by two evaluations,
//! nothing is reset in place, budgets are per store as before (the fuel of
//! a prepared store is what instantiation left of the budget, exactly as
//! when instantiating inline; the deadline starts when the evaluation does).
//! When the shelf is empty — the preparer is behind, the policy has never
//! been evaluated, or preparing failed — the evaluation instantiates inline
//! exactly as before, so a module whose instantiation faults is still
//! reported by the evaluation that needed it (the preparer discards
//! failures silently).
//!
//! What it costs: the same CPU per evaluation, moved to another thread, and
//! up to `depth` idle instances (pool slots, resident memory) per loaded
//! policy; the total shelved across a runtime is capped at a quarter of the
//! instance pool so that prepared instances can never starve evaluations of
//! slots. It helps latency only when a core is free for the preparer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};

use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

use crate::bindings::EvaluateExport;
use crate::runtime::{StoreData, StoreFactory};

/// One instance prepared for exactly one future evaluation.
pub(crate) struct Ready {
    /// Always `Some` until [`Ready::into_parts`] takes it.
    parts: Option<(Store<StoreData>, Instance)>,
    /// The runtime-wide count of shelved instances, decremented on drop.
    shelved: Arc<AtomicUsize>,
}

impl Ready {
    /// The store and the never-called instance in it.
    pub(crate) fn into_parts(mut self) -> (Store<StoreData>, Instance) {
        self.parts.take().expect("a shelved instance has its parts")
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        self.shelved.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A loaded policy's pre-linked component and its prepared instances.
pub(crate) struct Shelf {
    pub(crate) pre: InstancePre<StoreData>,
    /// Its `evaluate` export (the component was type-checked at load).
    pub(crate) evaluate: EvaluateExport,
    /// `name` and the short hash, shared by every evaluation's log sink.
    pub(crate) log_ids: (Arc<str>, Arc<str>),
    ready: Mutex<Vec<Ready>>,
    /// Preparations requested and not finished yet.
    in_flight: AtomicUsize,
}

impl Shelf {
    pub(crate) fn new(
        pre: InstancePre<StoreData>,
        evaluate: EvaluateExport,
        log_ids: (Arc<str>, Arc<str>),
    ) -> Self {
        Self {
            pre,
            evaluate,
            log_ids,
            ready: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn take(&self) -> Option<Ready> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn len(&self) -> usize {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

enum Job {
    /// Instantiate one more instance for this shelf (if it still exists).
    Prepare(Weak<Shelf>),
    /// Drop a used store (resets its pool slot).
    Retire(Store<StoreData>),
}

/// Most used stores waiting for the preparer to drop them; past it the
/// evaluating thread drops its own (so a starved preparer cannot hold pool
/// slots hostage).
const MAX_RETIRING: usize = 16;

/// The runtime's handle on its preparer thread.
pub(crate) struct Preparer {
    jobs: Sender<Job>,
    depth: usize,
    /// Instances shelved or being prepared, across every shelf of the runtime.
    shelved: Arc<AtomicUsize>,
    max_shelved: usize,
    retiring: Arc<AtomicUsize>,
}

impl Preparer {
    /// Start the thread. `depth` instances are kept per policy; `max_shelved`
    /// bounds them all together.
    pub(crate) fn start(
        factory: StoreFactory,
        depth: usize,
        max_shelved: usize,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let shelved = Arc::new(AtomicUsize::new(0));
        let retiring = Arc::new(AtomicUsize::new(0));
        let (s, r) = (shelved.clone(), retiring.clone());
        std::thread::Builder::new()
            .name("vibesync-policy-prepare".into())
            .spawn(move || work(rx, factory, s, r))?;
        Ok(Self {
            jobs: tx,
            depth,
            shelved,
            max_shelved,
            retiring,
        })
    }

    fn send(&self, job: Job) -> Result<(), Job> {
        self.jobs.send(job).map_err(|e| e.0)
    }

    /// A prepared instance of `shelf`'s policy, if one is ready; asks for
    /// replacements either way.
    pub(crate) fn take(&self, shelf: &Arc<Shelf>) -> Option<Ready> {
        let ready = shelf.take();
        let have = shelf.len() + shelf.in_flight.load(Ordering::Relaxed);
        for _ in have..self.depth {
            if self.shelved.fetch_add(1, Ordering::Relaxed) >= self.max_shelved {
                self.shelved.fetch_sub(1, Ordering::Relaxed);
                break;
            }
            shelf.in_flight.fetch_add(1, Ordering::Relaxed);
            if self.send(Job::Prepare(Arc::downgrade(shelf))).is_err() {
                shelf.in_flight.fetch_sub(1, Ordering::Relaxed);
                self.shelved.fetch_sub(1, Ordering::Relaxed);
                break;
            }
        }
        ready
    }

    /// Drop a used store, on the preparer's thread if it is keeping up.
    pub(crate) fn retire(&self, store: Store<StoreData>) {
        if self.retiring.fetch_add(1, Ordering::Relaxed) >= MAX_RETIRING {
            self.retiring.fetch_sub(1, Ordering::Relaxed);
            drop(store);
            return;
        }
        if let Err(job) = self.send(Job::Retire(store)) {
            self.retiring.fetch_sub(1, Ordering::Relaxed);
            drop(job);
        }
    }
}

/// The preparer thread: runs until the runtime (the only sender) is dropped.
fn work(
    jobs: Receiver<Job>,
    factory: StoreFactory,
    shelved: Arc<AtomicUsize>,
    retiring: Arc<AtomicUsize>,
) {
    for job in jobs {
        match job {
            Job::Retire(store) => {
                drop(store);
                retiring.fetch_sub(1, Ordering::Relaxed);
            }
            Job::Prepare(shelf) => {
                let Some(shelf) = shelf.upgrade() else {
                    shelved.fetch_sub(1, Ordering::Relaxed);
                    continue;
                };
                let mut store = factory.store(shelf.log_ids.clone(), 0);
                match shelf.pre.instantiate(&mut store) {
                    Ok(instance) => {
                        // From here `Ready`'s drop gives the count back.
                        let ready = Ready {
                            parts: Some((store, instance)),
                            shelved: shelved.clone(),
                        };
                        shelf
                            .ready
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(ready);
                    }
                    // The evaluation that finds the shelf empty instantiates
                    // inline and reports the fault itself.
                    Err(_) => {
                        shelved.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                shelf.in_flight.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
