#!/usr/bin/env bash
# Build and test the Unity adapter's engine-agnostic core under Mono, and
# compile the Unity glue (Editor/) against the API-surface shim in Shim/ so a
# signature break between core and glue is caught without a Unity editor.
#
#   adapters/unity/Tests~/run.sh [test-name-filter]
#   VIBESYNC_SDK_LIB=target/debug/libvibesync_adapter_sdk.so adapters/unity/Tests~/run.sh
#   adapters/unity/Tests~/run.sh --build-into DIR
#
# The second form also runs the [RealSdk] tests against the real SDK library
# (no host needed) before the main suite, whose closing line comes last.
# The third form only builds (core, glue check, tests.exe) into DIR and runs
# nothing: host/vibesync/tests/unity_live.rs uses it to run tests.exe --live
# against a real `vibesync serve`.
#
# Needs mcs and mono (Debian: mono-mcs, mono-runtime,
# libmono-system-core4.0-cil) and a C compiler (cc) for the fake SDK.
# Builds into a temporary directory; nothing is
# written into the package. The last line of output is "N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$(dirname "$here")"
root="$(cd "$pkg/../.." && pwd)"
for tool in mcs mono; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: apt-get install mono-mcs mono-runtime libmono-system-core4.0-cil" >&2; exit 2; }
done
build_only=""
if [[ "${1:-}" == "--build-into" ]]; then
    [[ -n "${2:-}" ]] || { echo "--build-into needs a directory" >&2; exit 2; }
    build_only=1
    out="$2"
    mkdir -p "$out"
else
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
# C# 7.2 is mcs's ceiling and below what Unity 2022.3 / 6 accept, so code
# that builds here builds there. Warnings are errors: the glue must stay clean.
MCS=(mcs -langversion:7.2 -warnaserror+ -nologo -r:System.Core.dll)

echo "--> core (Runtime/, no UnityEngine)"
"${MCS[@]}" -target:library -out:"$out/VibeSync.Core.dll" "$pkg"/Runtime/*.cs

echo "--> glue (Components/, Editor/) against the API-surface shim (Tests~/Shim/, never shipped)"
"${MCS[@]}" -target:library -nowarn:67,649 -out:"$out/UnityEngine.dll" "$here"/Shim/UnityEngine.cs
"${MCS[@]}" -target:library -nowarn:67,649 -out:"$out/UnityEditor.dll" -r:"$out/UnityEngine.dll" "$here"/Shim/UnityEditor.cs
# Same references as the asmdefs: Components is runtime code (UnityEngine
# only), Editor sees the core, the components and both Unity assemblies.
"${MCS[@]}" -target:library -out:"$out/VibeSync.Components.dll" -r:"$out/UnityEngine.dll" "$pkg"/Components/*.cs
"${MCS[@]}" -target:library -out:"$out/VibeSync.Editor.dll" -r:"$out/VibeSync.Core.dll" -r:"$out/VibeSync.Components.dll" \
    -r:"$out/UnityEngine.dll" -r:"$out/UnityEditor.dll" "$pkg"/Editor/*.cs

echo "--> fake SDK (Tests~/fake-sdk: the C ABI without network, for the binding tests)"
command -v cc >/dev/null 2>&1 || { echo "cc not found: the binding tests need a C compiler (the Rust toolchain's linker)" >&2; exit 2; }
mkdir -p "$out/fake"
cc -shared -fPIC -O1 -Wall -Werror -o "$out/fake/libvibesync_adapter_sdk.so" "$here/fake-sdk/fake_sdk.c"

echo "--> build tests"
"${MCS[@]}" -out:"$out/tests.exe" -r:"$out/VibeSync.Core.dll" "$here"/*.cs
if [[ -n "$build_only" ]]; then
    echo "--> built into $out (nothing run)"
    exit 0
fi
if [[ -n "${VIBESYNC_SDK_LIB:-}" ]]; then
    echo "--> [RealSdk] tests against $VIBESYNC_SDK_LIB (no host: binding and JSON shapes)"
    mkdir -p "$out/real"
    cp "$VIBESYNC_SDK_LIB" "$out/real/libvibesync_adapter_sdk.so"
    VIBESYNC_TEST_REAL_SDK=1 LD_LIBRARY_PATH="$out/real" mono --debug "$out/tests.exe" "$root" "$@"
else
    echo "--> [RealSdk] tests not run: set VIBESYNC_SDK_LIB to the built libvibesync_adapter_sdk.so"
fi
echo "--> tests (fake SDK)"
LD_LIBRARY_PATH="$out/fake" mono --debug "$out/tests.exe" "$root" "$@"
