#!/usr/bin/env bash
# Creates `.venv` at the repository root with the Python MCP SDK, the real
# MCP client the vibesync end-to-end tests drive the server with.
#
#   host/vibesync/tests/mcp/setup-venv.sh
#
# Idempotent: does nothing when the venv already imports `mcp`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
venv="$root/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import mcp' 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'mcp>=1.10,<2'
fi
"$venv/bin/python" -c 'import mcp, importlib.metadata as m; print("mcp", m.version("mcp"))'
