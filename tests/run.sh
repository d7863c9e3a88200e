#!/usr/bin/env bash
# The whole test suite, installing what it needs on a fresh machine.
#
#   tests/run.sh
#
# Installs what is missing: the Rust toolchain and the wasm32-unknown-unknown
# and wasm32-wasip2 targets named in rust-toolchain.toml (rustup), and Mono for the Unity adapter's core
# (Debian packages, only when running as root). Every step prints a header so
# a red run says where it broke. See docs/testing.md.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

step "toolchain (rust-toolchain.toml)"
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
for t in wasm32-unknown-unknown wasm32-wasip2; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done

step "system packages"
need_apt=()
have mcs || need_apt+=(mono-mcs)
have mono || need_apt+=(mono-runtime)
if ((${#need_apt[@]})); then
    if [[ $(id -u) == 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" libmono-system-core4.0-cil >/dev/null
    else
        echo "missing ${need_apt[*]} and not root: install them, or the Unity core tests fail" >&2
    fi
fi

step "policy toolchains (componentize-py into .venv, componentize-js into the cache)"
policies/examples/setup-toolchains.sh || echo "cannot install them: the example policy tests fail under CI and skip otherwise" >&2

step "Python venv: MCP client and bpy 5.0.1 (Blender as a module) for the Blender adapter"
host/vibesync/tests/mcp/setup-venv.sh
.venv/bin/python -c 'import bpy' 2>/dev/null || .venv/bin/python -m pip install --quiet --disable-pip-version-check 'bpy==5.0.1'
.venv/bin/python -c 'import bpy; print("bpy", bpy.app.version_string)'

step "cargo test (workspace; builds the policy components too)"
# Build first: the engine-side tests (Blender, Unity) load the SDK's cdylib
# from the same build and must not rebuild it with other features mid-run.
cargo build --workspace --locked
cargo test --workspace --locked --no-fail-fast

if [[ -x adapters/unity/Tests~/run.sh ]]; then
    step "Unity adapter core under Mono"
    adapters/unity/Tests~/run.sh
fi

step "Blender adapter: pure core and in-Blender tests (bpy)"
.venv/bin/python -m unittest discover -s adapters/blender/tests -p 'test_*.py'

step "Blender adapter on Blender 4.2 LTS (bpy 4.2.x in its own venv, outside the clone)"
bpy42="${VIBESYNC_BPY42_VENV:-$HOME/.cache/vibesync/bpy42}"
if ! "$bpy42/bin/python" -c 'import bpy' 2>/dev/null; then
    # bpy 4.2 wheels need Python 3.11, the interpreter of .venv.
    .venv/bin/python -m venv --clear "$bpy42"
    "$bpy42/bin/python" -m pip install --quiet --disable-pip-version-check 'bpy==4.2.*'
fi
"$bpy42/bin/python" -c 'import bpy; print("bpy", bpy.app.version_string)'
"$bpy42/bin/python" -m unittest discover -s adapters/blender/tests -p 'test_*.py'
VIBESYNC_BPY_PYTHON="$bpy42/bin/python" cargo test --workspace --locked --test blender
