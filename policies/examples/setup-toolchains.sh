#!/usr/bin/env bash
# Installs the toolchains that build the example policies in other languages,
# from the package registries, with their ordinary clients:
#
#   - componentize-py (PyPI) into the repository's .venv;
#   - @bytecodealliance/componentize-js (npm) into a cache directory outside
#     the clone, ${XDG_CACHE_HOME:-$HOME/.cache}/vibesync/componentize-js.
#
#   policies/examples/setup-toolchains.sh
#
# Idempotent and quick when both are present. Versions are pinned here and
# nowhere else. Exit status 3: a client (python3 -m venv, npm) is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0

venv="$root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" || exit 3
fi
if [[ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/vibesync/componentize-js"
pkg="$cache/node_modules/@bytecodealliance/componentize-js/package.json"
if ! grep -q "\"version\": \"$COMPONENTIZE_JS_VERSION\"" "$pkg" 2>/dev/null; then
    command -v npm >/dev/null 2>&1 || { echo "npm is not installed: install Node.js 18 or later" >&2; exit 3; }
    mkdir -p "$cache"
    [[ -f "$cache/package.json" ]] || echo '{"private": true}' > "$cache/package.json"
    npm install --prefix "$cache" --no-audit --no-fund --silent "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION"
fi
echo "$("$venv/bin/componentize-py" --version); componentize-js $COMPONENTIZE_JS_VERSION in $cache"
