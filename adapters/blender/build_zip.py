"""Builds the installable extension zip of the Blender add-on.

    python3 adapters/blender/build_zip.py [--sdk PATH/libvibesync_adapter_sdk.so] [-o vibesync-blender.zip]

Blender 4.2+ installs an extension from a zip whose root holds
``blender_manifest.toml`` and the package's ``__init__.py``; that is what this
writes (Blender's own ``blender --command extension build`` makes the same
shape, but needs a Blender binary). ``--sdk`` bundles the SDK library under
``lib/`` so the add-on finds it without configuration.
"""

import argparse
import os
import sys
import zipfile

PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vibesync_blender")


def build(out, sdk=None):
    names = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(PKG):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for f in sorted(files):
                if f.endswith(".pyc"):
                    continue
                path = os.path.join(root, f)
                name = os.path.relpath(path, PKG)
                z.write(path, name)
                names.append(name)
        if sdk:
            z.write(sdk, "lib/libvibesync_adapter_sdk.so")
            names.append("lib/libvibesync_adapter_sdk.so")
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default="vibesync-blender.zip")
    ap.add_argument("--sdk", help="libvibesync_adapter_sdk.so to bundle")
    a = ap.parse_args()
    names = build(a.out, a.sdk)
    for required in ("blender_manifest.toml", "__init__.py"):
        if required not in names:
            sys.exit(f"{required} missing from the zip")
    print(f"{a.out}: {len(names)} files")


if __name__ == "__main__":
    main()
