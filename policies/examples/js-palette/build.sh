#!/usr/bin/env bash
# Builds the team-palette policy (palette.js) into a WebAssembly component
# with @bytecodealliance/componentize-js, offline.
#
#   policies/examples/js-palette/build.sh OUT.wasm
#
# componentize-js is looked up in $COMPONENTIZE_JS_DIR (a node_modules
# directory), else in the cache directory policies/examples/setup-toolchains.sh
# installs it into. Exit status 3 means the toolchain is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT.wasm}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vibesync/componentize-js"
modules="${COMPONENTIZE_JS_DIR:-$cache/node_modules}"
if ! command -v node >/dev/null 2>&1; then
    echo "node is not installed: install Node.js 18 or later" >&2
    exit 3
fi
if [[ ! -f "$modules/@bytecodealliance/componentize-js/package.json" ]]; then
    echo "@bytecodealliance/componentize-js is not installed in $modules: run policies/examples/setup-toolchains.sh" >&2
    exit 3
fi
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
COMPONENTIZE_JS_DIR="$modules" node "$here/build.mjs" "$out"
