#!/usr/bin/env bash
# Builds the team-naming policy (app.py) into a WebAssembly component with
# componentize-py, offline: componentize-py ships CPython and its standard
# library inside its wheel.
#
#   policies/examples/python-naming/build.sh OUT.wasm
#
# Uses the componentize-py of the repository's .venv (tests/run.sh and
# policies/examples/setup-toolchains.sh install it there). Exit status 3 means
# the toolchain is missing, anything else non-zero is a build failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:?usage: build.sh OUT.wasm}"
tool="$root/.venv/bin/componentize-py"
if [[ ! -x "$tool" ]]; then
    echo "componentize-py is not installed in $root/.venv: run policies/examples/setup-toolchains.sh" >&2
    exit 3
fi
mkdir -p "$(dirname "$out")"
# Generated bindings go to a scratch directory, never into the source tree.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"
"$tool" -d "$root/wit" -w policy componentize -p "$here" app -o "$out" >&2
