#!/usr/bin/env bash
# The whole test suite, installing what it needs on a fresh machine.
#
#   tests/run.sh            everything
#
# Installs: the Rust toolchain + wasm32-wasip2 target named in
# rust-toolchain.toml (rustup), and later the Python venv with bpy, Mono and
# the policy toolchains (see docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n==> %s\n' "$*"; }

step "toolchain (rust-toolchain.toml)"
rustup toolchain install >/dev/null 2>&1 || rustup show active-toolchain
rustup target list --installed | grep -q wasm32-wasip2 || rustup target add wasm32-wasip2

step "cargo test (workspace)"
cargo test --workspace --locked
