//! This policy's shadow stack (wasm32): 128 KiB instead of rustc's 1 MiB.
//!
//! Its rules walk the flat leaf table without recursion, so a small stack is
//! plenty; the stack sits at the bottom of linear memory, and every byte of
//! it is memory the host resets (scans) after each evaluation
//! (`docs/PERFORMANCE.md`, round 8).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=131072");
    }
}
