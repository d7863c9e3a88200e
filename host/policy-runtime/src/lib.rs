//! The wasmtime host that loads, locks, budgets and evaluates policy components.
