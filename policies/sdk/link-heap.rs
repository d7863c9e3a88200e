//! Build script shared by the built-in policies (`build = "../sdk/link-heap.rs"`):
//! links the `wasm32-unknown-unknown` component with a larger initial heap.
//!
//! The SDK's arena hands out the free initial memory (`__heap_base` to the
//! end of the initial memory) before it calls `memory.grow`. A grown memory
//! costs the host two `mprotect`s per instance (grow the pool slot, shrink it
//! back on reuse), which were a fifth of a 1000-leaf evaluation. With
//! [`INITIAL_HEAP`] free from the start, payloads of that size never grow.
//! Pages the evaluation does not touch cost nothing: the pool maps the
//! module's memory image copy-on-write and resets only dirtied pages.

/// Free heap in the initial memory, in bytes (a multiple of 64 KiB).
const INITIAL_HEAP: u32 = 1 << 20;

fn main() {
    println!("cargo:rerun-if-changed=../sdk/link-heap.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target == "wasm32-unknown-unknown" {
        println!("cargo:rustc-link-arg-cdylib=--initial-heap={INITIAL_HEAP}");
    }
}
