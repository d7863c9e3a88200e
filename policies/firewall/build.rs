//! The firewall's shadow stack (wasm32): 256 KiB instead of rustc's 1 MiB.
//!
//! The parser and the AST walk recurse once per nesting level; 256 KiB
//! judges code nested past CPython's own limit (200 levels, see the corpus
//! test), and deeper code is denied as a stack fault. The stack sits at the
//! bottom of linear memory, so every byte of it is memory the host resets
//! (scans) after each evaluation: a smaller stack is a cheaper instance
//! (`docs/PERFORMANCE.md`, round 8).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=262144");
    }
}
