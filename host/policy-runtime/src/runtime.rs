//! The wasmtime engine every policy runs in, and one budgeted evaluation.
//!
//! One [`Runtime`] owns one `wasmtime::Engine` configured for isolation and
//! speed: the component model, fuel metering, epoch interruption driven by a
//! background ticker thread, and the pooling instance allocator so that a
//! fresh instance per evaluation costs microseconds (memory slots are reused
//! and reset copy-on-write from the module's memory image). It compiles
//! components through an on-disk cache keyed by the module's SHA-256 and the
//! engine's compatibility hash, so a restart does not recompile.
//!
//! Slot reuse: when the kernel offers the `PAGEMAP_SCAN` ioctl (Linux 6.7+),
//! the pool keeps up to [`KEEP_RESIDENT_BYTES`] of each memory and table
//! resident and resets exactly the pages the last instance dirtied with
//! `memcpy` from the module's image, instead of `madvise` + a page fault per
//! touched page on the next instance. That halves the CPU of an evaluation of
//! the built-ins. The reset is still complete: the next instance sees the
//! module's initial memory (the `counter` fixture test proves a global does
//! not survive).
//!
//! Instantiation and teardown can happen off the caller's thread: with
//! [`RuntimeConfig::prepared_per_policy`] > 0 a background thread keeps
//! instances prepared (each used by exactly one evaluation) and drops used
//! stores; see [`crate::prepare`] for why that keeps isolation intact.
//!
//! A pipeline evaluation instantiates its policies, one fresh instance each,
//! into one new `Store` that it owns and drops at the end, with the store's
//! data and budgets renewed before each policy
//! ([`Runtime::evaluate_in_order`]); [`Runtime::evaluate`] makes a store for
//! its one policy.
//!
//! Each policy's store data holds a WASI context that grants nothing: no preopened directories, no network (TCP, UDP and name lookup
//! off, every address denied), no environment or arguments, no stdio,
//! clocks frozen at the Unix epoch and randomness that is a fixed stream.
//! Components built for `wasm32-wasip2` import WASI interfaces even when
//! they never use them; linking them this
//! way lets such components load while every call that would reach outside
//! fails. The context is only built if the guest actually calls a WASI
//! function (the built-ins never do), which keeps it off the common path. A
//! fault of any kind becomes a [`PolicyRun`] with a deny verdict and
//! a `host.policy-fault` finding (see [`crate::fault`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::Digest;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use vibesync_policy_types as t;

use crate::bindings::{self, LogLevel, PolicyPre, wit};
use crate::fault;
use crate::hash::{Sha256, Sha256Hasher};
use crate::pipeline::PolicyRun;
use crate::prepare::{Preparer, Shelf};

/// Per-evaluation limits. Defaults suit the built-in policies with a wide
/// margin; an operator may tighten them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Budgets {
    /// Wasm fuel (roughly one unit per instruction) per evaluation.
    pub fuel: u64,
    /// Largest linear memory a policy may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline per evaluation (enforced by epoch interruption).
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// Largest wasm stack, in bytes (deeper recursion traps).
    pub max_stack_bytes: usize,
    /// `log` calls kept per evaluation; further calls are counted and dropped.
    pub log_max_messages: u32,
    /// Bytes of one `log` message kept; the rest is cut.
    pub log_max_message_bytes: usize,
    /// Findings a verdict may carry before it counts as malformed.
    pub max_findings: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            fuel: 200_000_000,
            memory_bytes: 64 << 20,
            deadline: Duration::from_millis(250),
            max_stack_bytes: 512 << 10,
            log_max_messages: 32,
            log_max_message_bytes: 1024,
            max_findings: 1000,
        }
    }
}

mod millis {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        <u64 as serde::Deserialize>::deserialize(d).map(Duration::from_millis)
    }
}

/// How a [`Runtime`] is built.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub budgets: Budgets,
    /// Directory of compiled artifacts (`<module sha256>-<engine key>.cwasm`).
    /// `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Period of the epoch ticker. A deadline is enforced to within one
    /// tick after it: a run is stopped after more than `deadline` and at
    /// most `deadline + epoch_tick`.
    pub epoch_tick: Duration,
    /// Instance slots of the pooling allocator: the most instances alive at
    /// the same moment, across every thread. A pipeline evaluation holds one
    /// per policy it has run until it ends; prepared instances take slots
    /// too, at most a quarter of them.
    pub max_concurrent_instances: u32,
    /// Fresh instances kept prepared per policy by a background thread, so
    /// that instantiation and teardown are off the evaluation's path (each
    /// is still used for exactly one evaluation; see `prepare.rs`). 0 turns
    /// it off (the default): every evaluation instantiates and tears down
    /// inline.
    pub prepared_per_policy: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            budgets: Budgets::default(),
            cache_dir: None,
            // Every tick wakes a thread that takes a core from the serve
            // for a moment; 5 ms keeps a 250 ms deadline within 2 %.
            epoch_tick: Duration::from_millis(5),
            max_concurrent_instances: 256,
            // Off by default: on the shared 2-core machine it measured slower
            // and costs CPU (docs/PERFORMANCE.md, "Round 3"); turn it on
            // where a core is free for the preparer.
            prepared_per_policy: 0,
        }
    }
}

/// Whether a load used the compile cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// Deserialized a previously compiled artifact: no compilation.
    Hit,
    /// Compiled and wrote the artifact.
    Miss,
    /// No cache directory configured: compiled.
    Disabled,
}

/// Why a runtime could not start or a module could not load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot configure the wasmtime engine: {0:#}")]
    Engine(wasmtime::Error),
    #[error("cannot start the epoch ticker thread: {0}")]
    Ticker(std::io::Error),
    #[error("cannot start the instance preparer thread: {0}")]
    Preparer(std::io::Error),
    #[error("cannot read policy module {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error(
        "built-in policy `{name}` has sha256 {found} but was compiled in as {expected}; the binary is corrupt, rebuild it"
    )]
    BuiltinHash {
        name: String,
        found: Sha256,
        expected: Sha256,
    },
    #[error(
        "policy module `{name}` (sha256 {hash}) is not a valid WebAssembly component: {error:#}"
    )]
    Compile {
        name: String,
        hash: Sha256,
        error: wasmtime::Error,
    },
    #[error(
        "policy module `{name}` (sha256 {hash}) does not implement the world vibesync:policy/policy@0.1.0: {error:#}; \
         run `vibesync policy inspect` on it and rebuild it against wit/policy.wit"
    )]
    World {
        name: String,
        hash: Sha256,
        error: wasmtime::Error,
    },
    #[error("policy module `{name}` (sha256 {hash}) faulted in `metadata()`: {message}")]
    Metadata {
        name: String,
        hash: Sha256,
        message: String,
    },
    #[error("cannot write the compile cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where a module came from, for errors and decision records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Embedded in the binary, trusted by its compile-time hash.
    Builtin,
    /// Read from this file and checked against the lock beside it.
    File(PathBuf),
    /// Loaded for review without a trust check.
    Unreviewed,
}

/// A loaded, approved, type-checked policy, ready to evaluate. Cheap to
/// share: evaluations only read it.
pub struct Policy {
    name: String,
    hash: Sha256,
    size: u64,
    origin: Origin,
    info: t::PolicyInfo,
    cache: CacheOutcome,
    component: Component,
    /// The pre-linked component and the instances prepared ahead for it.
    shelf: Arc<Shelf>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("origin", &self.origin)
            .finish()
    }
}

impl Policy {
    /// The module's name (file stem, or the built-in's name).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// SHA-256 of the component's bytes.
    pub fn hash(&self) -> &Sha256 {
        &self.hash
    }
    /// Size of the component in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
    /// What the policy says about itself (`metadata()`, called once at load).
    pub fn info(&self) -> &t::PolicyInfo {
        &self.info
    }
    /// Whether loading it hit the compile cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }
    /// The compiled component (for inspection).
    pub fn component(&self) -> &Component {
        &self.component
    }
}

/// Per-evaluation store state: the empty WASI context (built on first use),
/// memory accounting and the log cap.
pub(crate) struct StoreData {
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    limits: Limits,
    log: LogSink,
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self.wasi.get_or_insert_with(empty_wasi);
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// Memory bound with a record of whether it refused a growth, so that the
/// trap that usually follows (an allocator abort) is reported as memory.
struct Limits {
    memory_bytes: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }
    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The `log` import: attributed to the module and tid, capped per evaluation.
struct LogSink {
    policy: Arc<str>,
    module: Arc<str>,
    tid: u64,
    kept: u32,
    dropped: u32,
    max_messages: u32,
    max_bytes: usize,
}

impl bindings::vibesync::policy::host::Host for StoreData {
    fn log(&mut self, level: LogLevel, message: String) {
        let l = &mut self.log;
        if l.kept >= l.max_messages {
            l.dropped += 1;
            return;
        }
        l.kept += 1;
        let mut cut = l.max_bytes.min(message.len());
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = &message[..cut];
        let truncated = cut < message.len();
        let (policy, module, tid) = (&*l.policy, &*l.module, l.tid);
        match level {
            LogLevel::Debug => {
                tracing::debug!(target: "vibesync::policy", policy, module, tid, truncated, "{text}")
            }
            LogLevel::Info => {
                tracing::info!(target: "vibesync::policy", policy, module, tid, truncated, "{text}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "vibesync::policy", policy, module, tid, truncated, "{text}")
            }
        }
    }
}

impl bindings::vibesync::policy::types::Host for StoreData {}

/// What `wasi:random` returns to a policy, cycled: a fixed, public stream.
const NO_ENTROPY: [u8; 16] = *b"vibesync-no-rand";

/// The WASI context of an evaluation that calls WASI: no preopens, no
/// sockets, no name lookup, no environment, arguments or stdio, frozen
/// clocks, fixed randomness.
fn empty_wasi() -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenWallClock)
        .monotonic_clock(FrozenMonotonicClock)
        // No entropy either: the same fixed stream in every evaluation,
        // so a verdict is reproducible from its inputs.
        .secure_random(wasmtime_wasi::random::Deterministic::new(
            NO_ENTROPY.to_vec(),
        ))
        .insecure_random(wasmtime_wasi::random::Deterministic::new(
            NO_ENTROPY.to_vec(),
        ))
        .insecure_random_seed(0)
        .build()
}

/// Bytes of each linear memory and table the pool keeps resident between
/// instances when `PAGEMAP_SCAN` is available (only pages an instance
/// dirtied are reset, by copy). Larger working sets are decommitted as
/// before. Bounds the pool's idle resident memory to this per used slot.
pub const KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Set (to anything) to have the engine write a `perf` map of the compiled
/// policy code, so `perf report` names the guest's functions.
pub const PERFMAP_ENV: &str = "VIBESYNC_POLICY_PERFMAP";

/// Frozen clocks: a policy is a pure function and gets no real time.
struct FrozenWallClock;
impl wasmtime_wasi::HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}
struct FrozenMonotonicClock;
impl wasmtime_wasi::HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Increments the engine's epoch every tick until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vibesync-policy-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes the per-evaluation stores: budgets armed, WASI context unbuilt.
#[derive(Clone)]
pub(crate) struct StoreFactory {
    engine: Engine,
    budgets: Budgets,
    deadline_ticks: u64,
}

impl StoreFactory {
    pub(crate) fn store(&self, ids: (Arc<str>, Arc<str>), tid: u64) -> Store<StoreData> {
        let mut store = Store::new(&self.engine, self.data(ids, tid));
        store.limiter(|d| &mut d.limits);
        self.arm(&mut store);
        store
    }

    /// Give `store` to the next policy of the same evaluation: new data
    /// (WASI context, resource table, limits, log sink) and full budgets, as
    /// a new store would have. Instances already in it stay there, unused,
    /// until it is dropped.
    pub(crate) fn rearm(&self, store: &mut Store<StoreData>, ids: (Arc<str>, Arc<str>), tid: u64) {
        *store.data_mut() = self.data(ids, tid);
        self.arm(store);
    }

    fn data(&self, (policy, module): (Arc<str>, Arc<str>), tid: u64) -> StoreData {
        let b = &self.budgets;
        StoreData {
            wasi: None,
            table: ResourceTable::new(),
            limits: Limits {
                memory_bytes: b.memory_bytes,
                refused: None,
            },
            log: LogSink {
                policy,
                module,
                tid,
                kept: 0,
                dropped: 0,
                max_messages: b.log_max_messages,
                max_bytes: b.log_max_message_bytes,
            },
        }
    }

    fn arm(&self, store: &mut Store<StoreData>) {
        store
            .set_fuel(self.budgets.fuel)
            .expect("fuel is enabled on this engine");
        store.set_epoch_deadline(self.deadline_ticks);
        store.epoch_deadline_trap();
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreData>,
    budgets: Budgets,
    deadline_ticks: u64,
    cache_dir: Option<PathBuf>,
    engine_key: String,
    factory: StoreFactory,
    /// `None` when `prepared_per_policy` is 0.
    preparer: Option<Preparer>,
    _ticker: EpochTicker,
}

/// The policy engine. Cheap to clone; every clone shares the engine, the
/// linker, the instance pool and the epoch ticker.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// Build the engine, link the host imports and start the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let b = &config.budgets;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(config.max_concurrent_instances)
            .total_core_instances(config.max_concurrent_instances.saturating_mul(4))
            .total_memories(config.max_concurrent_instances.saturating_mul(2))
            .total_tables(config.max_concurrent_instances.saturating_mul(4))
            .max_memory_size(b.memory_bytes);
        // Without the ioctl, keep-resident would memset the first N bytes of
        // every slot on every reuse whether dirtied or not: no faster than
        // madvise for these modules (measured), so only with it.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
                .table_keep_resident(KEEP_RESIDENT_BYTES);
        } else {
            tracing::info!("PAGEMAP_SCAN unavailable: policy memory slots are reset with madvise");
        }
        let mut c = Config::new();
        c.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(b.max_stack_bytes)
            .memory_init_cow(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // For policy authors profiling their module with `perf`: names the
        // compiled wasm functions in `/tmp/perf-<pid>.map`. Off by default
        // (it writes a file per process).
        if std::env::var_os(PERFMAP_ENV).is_some() {
            c.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&c).map_err(LoadError::Engine)?;

        let mut linker = Linker::<StoreData>::new(&engine);
        bindings::Policy::add_to_linker::<StoreData, HasSelf<StoreData>>(&mut linker, |s| s)
            .map_err(LoadError::Engine)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(LoadError::Engine)?;

        let mut h = Sha256Hasher(sha2::Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut h);
        // The budgets that shape generated code are part of the key too.
        std::hash::Hash::hash(&(b.max_stack_bytes, b.memory_bytes), &mut h);
        let engine_key = hex::encode(&h.0.finalize()[..8]);

        let tick = config.epoch_tick.max(Duration::from_micros(100));
        // The first tick comes anywhere within a period of the start, so
        // one more than the deadline's ticks: never stopped early.
        let deadline_ticks = b.deadline.as_nanos().div_ceil(tick.as_nanos()) as u64 + 1;
        let ticker = EpochTicker::start(engine.clone(), tick).map_err(LoadError::Ticker)?;
        let factory = StoreFactory {
            engine: engine.clone(),
            budgets: config.budgets.clone(),
            deadline_ticks,
        };
        let preparer = match config.prepared_per_policy {
            0 => None,
            depth => Some(
                Preparer::start(
                    factory.clone(),
                    depth,
                    (config.max_concurrent_instances / 4) as usize,
                )
                .map_err(LoadError::Preparer)?,
            ),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                budgets: config.budgets,
                deadline_ticks,
                cache_dir: config.cache_dir,
                engine_key,
                factory,
                preparer,
                _ticker: ticker,
            }),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn budgets(&self) -> &Budgets {
        &self.inner.budgets
    }

    /// Load a built-in policy. `expected` is its compile-time hash; a
    /// mismatch means the binary is corrupt.
    pub fn load_builtin(
        &self,
        name: &str,
        bytes: &[u8],
        expected: Option<&Sha256>,
    ) -> Result<Policy, LoadError> {
        let hash = Sha256::of(bytes);
        if let Some(expected) = expected.filter(|e| **e != hash) {
            return Err(LoadError::BuiltinHash {
                name: name.into(),
                found: hash,
                expected: expected.clone(),
            });
        }
        self.load_trusted(name, bytes, hash, Origin::Builtin)
    }

    /// Load `path`, which must be approved by `dir/policies.lock` where
    /// `dir` is the file's directory.
    pub fn load_file(&self, path: &Path) -> Result<Policy, LoadError> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let lock = crate::lock::Lockfile::read_dir(dir)?;
        self.load_file_with(path, &lock, &dir.join(crate::lock::LOCK_FILE))
    }

    /// Load `path`, checked against an already parsed lock.
    pub fn load_file_with(
        &self,
        path: &Path,
        lock: &crate::lock::Lockfile,
        lock_path: &Path,
    ) -> Result<Policy, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
        let name = module_name(path);
        let hash = Sha256::of(&bytes);
        lock.check(&name, path, &hash, lock_path)?;
        self.load_trusted(&name, &bytes, hash, Origin::File(path.into()))
    }

    /// Load a module WITHOUT any trust check, for a reviewer who evaluates a
    /// module before approving it (`vibesync policy eval --unlocked`). Never
    /// use this for a serving pipeline.
    pub fn load_for_review(&self, name: &str, bytes: &[u8]) -> Result<Policy, LoadError> {
        let hash = Sha256::of(bytes);
        self.load_trusted(name, bytes, hash, Origin::Unreviewed)
    }

    /// Compile (or fetch from the cache) and type-check a module, without
    /// consulting any lock. Used by `inspect` and by the loaders above after
    /// their trust check.
    pub fn compile(
        &self,
        name: &str,
        bytes: &[u8],
        hash: &Sha256,
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let compile_err = |error| LoadError::Compile {
            name: name.into(),
            hash: hash.clone(),
            error,
        };
        let Some(dir) = &self.inner.cache_dir else {
            return Ok((
                Component::new(&self.inner.engine, bytes).map_err(compile_err)?,
                CacheOutcome::Disabled,
            ));
        };
        let path = dir.join(format!("{hash}-{}.cwasm", self.inner.engine_key));
        if path.is_file() {
            // SAFETY: the artifact was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the file
            // name), renamed into place atomically, in a directory only the
            // host writes. wasmtime still checks its header.
            match unsafe { Component::deserialize_file(&self.inner.engine, &path) } {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cached artifact")
                }
            }
        }
        let artifact = self
            .inner
            .engine
            .precompile_component(bytes)
            .map_err(compile_err)?;
        let cache_err = |source| LoadError::Cache {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(cache_err)?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
        std::fs::write(&tmp, &artifact).map_err(cache_err)?;
        std::fs::rename(&tmp, &path).map_err(cache_err)?;
        // SAFETY: produced just above by this engine.
        let c = unsafe { Component::deserialize(&self.inner.engine, &artifact) }
            .map_err(compile_err)?;
        Ok((c, CacheOutcome::Miss))
    }

    /// Check that `component` implements the policy world with the imports
    /// this host links. Export types are only compared when the bindings are
    /// instantiated, so this instantiates once (under the budgets).
    pub(crate) fn typecheck(
        &self,
        component: &Component,
        name: &str,
        hash: &Sha256,
    ) -> Result<PolicyPre<StoreData>, LoadError> {
        let world_err = |error| LoadError::World {
            name: name.into(),
            hash: hash.clone(),
            error,
        };
        let pre = PolicyPre::new(
            self.inner
                .linker
                .instantiate_pre(component)
                .map_err(world_err)?,
        )
        .map_err(world_err)?;
        let mut store = self.store((Arc::from(name), Arc::from(hash.short())), 0);
        if let Err(e) = pre.instantiate(&mut store) {
            let refused = store.data().limits.refused.is_some();
            if e.downcast_ref::<wasmtime::Trap>().is_none() && !refused {
                return Err(world_err(e));
            }
            let kind = fault::classify(&e, refused);
            return Err(LoadError::Metadata {
                name: name.into(),
                hash: hash.clone(),
                message: format!("{kind}: {e:#}"),
            });
        }
        Ok(pre)
    }

    fn load_trusted(
        &self,
        name: &str,
        bytes: &[u8],
        hash: Sha256,
        origin: Origin,
    ) -> Result<Policy, LoadError> {
        let (component, cache) = self.compile(name, bytes, &hash)?;
        let pre = self.typecheck(&component, name, &hash)?;
        let mut store = self.store((Arc::from(name), Arc::from(hash.short())), 0);
        let info = pre
            .instantiate(&mut store)
            .and_then(|p| p.vibesync_policy_evaluator().call_metadata(&mut store));
        let info = match info {
            Ok(info) => bindings::policy_info(info),
            Err(e) => {
                let kind = fault::classify(&e, store.data().limits.refused.is_some());
                return Err(LoadError::Metadata {
                    name: name.into(),
                    hash,
                    message: format!("{kind}: {e:#}"),
                });
            }
        };
        let Some(evaluate) = bindings::EvaluateExport::of(&component) else {
            return Err(LoadError::World {
                name: name.into(),
                hash,
                error: wasmtime::format_err!("no `evaluate` export"),
            });
        };
        let log_ids = (Arc::from(name), Arc::from(hash.short()));
        Ok(Policy {
            name: name.into(),
            hash,
            size: bytes.len() as u64,
            origin,
            info,
            cache,
            component,
            shelf: Arc::new(Shelf::new(pre.instance_pre().clone(), evaluate, log_ids)),
        })
    }

    fn store(&self, ids: (Arc<str>, Arc<str>), tid: u64) -> Store<StoreData> {
        self.inner.factory.store(ids, tid)
    }

    /// Evaluate one policy on one op, in a fresh instance, under the budgets.
    /// Never fails: a fault is a deny with a `host.policy-fault` finding.
    pub fn evaluate(
        &self,
        policy: &Policy,
        intent: &t::Intent,
        context: &t::Context,
        config: &[t::Leaf],
    ) -> PolicyRun {
        let (i, c, l) = (
            bindings::intent(intent),
            bindings::context(context),
            bindings::leaves(config),
        );
        self.evaluate_wit(policy, intent.tid, &i, &c, &l)
    }

    /// [`Runtime::evaluate`] on arguments already in the guest's
    /// representation (the pipeline converts once for all its policies).
    pub(crate) fn evaluate_wit(
        &self,
        policy: &Policy,
        tid: u64,
        intent: &wit::Intent,
        context: &wit::Context,
        config: &[wit::Leaf],
    ) -> PolicyRun {
        let start = Instant::now();
        let (mut store, instance) = self.fresh_instance(policy, tid);
        let mut run = self.call(&mut store, instance, policy, tid, (intent, context, config));
        match &self.inner.preparer {
            Some(p) => p.retire(store),
            None => drop(store),
        }
        run.duration_ns = start.elapsed().as_nanos() as u64;
        run
    }

    /// Evaluate `policies` in order on one op, stopping after the first
    /// deny: the pipeline's loop. Without prepared instances, every policy
    /// gets a fresh instance in one store that the evaluation owns, rearmed
    /// with full budgets and new data before each policy (see
    /// [`StoreFactory::rearm`]); making and dropping one store instead of
    /// one per policy saved ~5 % of a transform (`docs/PERFORMANCE.md`,
    /// round 7). Policies still share nothing: each instance is new and has
    /// its own memory, tables and resource handles, none imports another,
    /// and a fault ends the evaluation (it is a deny), so no policy runs in
    /// a store after a trap.
    pub(crate) fn evaluate_in_order<'p>(
        &self,
        policies: impl IntoIterator<Item = (&'p Policy, &'p [wit::Leaf])>,
        tid: u64,
        intent: &wit::Intent,
        context: &wit::Context,
    ) -> Vec<PolicyRun> {
        let mut runs = Vec::new();
        let mut shared: Option<Store<StoreData>> = None;
        for (policy, config) in policies {
            let run = if self.inner.preparer.is_some() {
                self.evaluate_wit(policy, tid, intent, context, config)
            } else {
                let start = Instant::now();
                let ids = policy.shelf.log_ids.clone();
                let store = match &mut shared {
                    Some(store) => {
                        self.inner.factory.rearm(store, ids, tid);
                        store
                    }
                    None => shared.insert(self.store(ids, tid)),
                };
                let instance = policy.shelf.pre.instantiate(&mut *store);
                let mut run = self.call(store, instance, policy, tid, (intent, context, config));
                run.duration_ns = start.elapsed().as_nanos() as u64;
                run
            };
            let deny = run.verdict.is_deny();
            runs.push(run);
            if deny {
                break;
            }
        }
        runs
    }

    /// Call `evaluate` on a fresh instance and judge what came back. The
    /// caller times the run (`duration_ns` is left 0 here).
    fn call(
        &self,
        store: &mut Store<StoreData>,
        instance: wasmtime::Result<wasmtime::component::Instance>,
        policy: &Policy,
        tid: u64,
        (intent, context, config): (&wit::Intent, &wit::Context, &[wit::Leaf]),
    ) -> PolicyRun {
        let result = instance.and_then(|instance| {
            policy
                .shelf
                .evaluate
                .call(&mut *store, &instance, intent, context, config)
        });
        let outcome = match result {
            Ok(v) => fault::check_verdict(bindings::verdict(v), self.inner.budgets.max_findings),
            Err(e) => Err((
                fault::classify(&e, store.data().limits.refused.is_some()),
                format!("{e:#}"),
            )),
        };
        let (verdict, fault) = match outcome {
            Ok(v) => (v, None),
            Err((kind, detail)) => {
                let finding = fault::finding(
                    kind,
                    &policy.name,
                    &policy.hash,
                    &self.inner.budgets,
                    &detail,
                );
                tracing::warn!(policy = %policy.name, module = %policy.hash.short(), tid, fault = %kind, "{}", finding.message);
                (t::Verdict::Deny(vec![finding]), Some(kind))
            }
        };
        PolicyRun {
            policy: policy.name.clone(),
            module_sha256: policy.hash.clone(),
            verdict,
            duration_ns: 0,
            fuel_used: self.inner.budgets.fuel - store.get_fuel().unwrap_or(0),
            fault,
            logs_dropped: store.data().log.dropped,
        }
    }
}

impl Runtime {
    /// A new instance of `policy` that no evaluation has used, in its own
    /// store with fresh budgets: a prepared one if the shelf has one (its
    /// deadline re-armed from now), else instantiated here.
    fn fresh_instance(
        &self,
        policy: &Policy,
        tid: u64,
    ) -> (
        Store<StoreData>,
        wasmtime::Result<wasmtime::component::Instance>,
    ) {
        let shelf = &policy.shelf;
        if let Some(ready) = self.inner.preparer.as_ref().and_then(|p| p.take(shelf)) {
            let (mut store, instance) = ready.into_parts();
            store.data_mut().log.tid = tid;
            store.set_epoch_deadline(self.inner.deadline_ticks);
            return (store, Ok(instance));
        }
        let mut store = self.store(shelf.log_ids.clone(), tid);
        let instance = shelf.pre.instantiate(&mut store);
        (store, instance)
    }
}

/// Load embedded built-ins, in order, each checked against its compile-time
/// hash: `(name, component bytes, lower-case hex SHA-256)`, as
/// `vibesync_policies::BUILTINS` provides them.
pub fn load_builtins<'a>(
    runtime: &Runtime,
    builtins: impl IntoIterator<Item = (&'a str, &'a [u8], &'a str)>,
) -> Result<Vec<Policy>, LoadError> {
    builtins
        .into_iter()
        .map(|(name, wasm, sha256)| {
            let expected: Sha256 = sha256.parse().map_err(|_| LoadError::BuiltinHash {
                name: name.into(),
                found: Sha256::of(wasm),
                expected: Sha256([0; 32]),
            })?;
            runtime.load_builtin(name, wasm, Some(&expected))
        })
        .collect()
}

/// Module name of a policy file: its file stem.
pub fn module_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guest handed packed lists whose offsets do not fit refuses the op
    /// with the SDK's `sdk.malformed-intent` rather than read out of bounds:
    /// `Leaves::from_parts`/`StringList::from_parts`, end to end through a
    /// compiled built-in. The host never sends such lists; a host and a
    /// policy built from different WIT could.
    #[test]
    fn broken_packed_lists_are_a_deny_from_the_guest() {
        let cache = tempfile::tempdir().unwrap();
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().into()),
            ..Default::default()
        })
        .unwrap();
        let b = vibesync_policies::BUILTINS
            .iter()
            .find(|b| b.name == "nan-audit")
            .unwrap();
        let policy = rt.load_for_review(b.name, b.wasm).unwrap();
        let args = serde_json::json!({"id": "obj-1", "translation": [1.0, 2.0, 3.0]});
        let intent = t::Intent::for_op(
            1,
            t::Source::Agent,
            "set_transform",
            &args,
            0,
            1,
            vec!["blender".into()],
            vec!["obj-1".into()],
            "Move the crate next to the loading dock".into(),
            7,
        );
        let context = bindings::context(&t::Context::default());
        let honest = bindings::intent(&intent);
        let run = |i: &wit::Intent| rt.evaluate_wit(&policy, 1, i, &context, &[]);
        assert_eq!(run(&honest).verdict, t::Verdict::Allow);

        let text = honest.leaves.kinds.iter().position(|&k| k == 4).unwrap();
        type Break = fn(&mut wit::Intent, usize);
        let breakages: [(&str, Break); 4] = [
            ("a text range past its list", |i, at| {
                i.leaves.values[at] = 1 << 32 | 4096
            }),
            ("a path end past the paths", |i, _| {
                *i.leaves.paths.ends.last_mut().unwrap() += 1
            }),
            ("fewer kinds than leaves", |i, _| {
                i.leaves.kinds.pop();
            }),
            ("an object list end past its text", |i, _| {
                i.objects.ends[0] = 99
            }),
        ];
        for (what, break_it) in breakages {
            let mut broken = honest.clone();
            break_it(&mut broken, text);
            let r = run(&broken);
            let t::Verdict::Deny(findings) = &r.verdict else {
                panic!("{what}: {:?}", r.verdict)
            };
            assert!(r.fault.is_none(), "{what}: refused, not trapped: {r:?}");
            assert_eq!(findings[0].rule, "sdk.malformed-intent", "{what}");
            assert!(findings[0].message.contains("rebuild the policy"), "{what}");
        }
        // The host keeps evaluating afterwards.
        assert_eq!(run(&honest).verdict, t::Verdict::Allow);
    }
}
