"""siemforge.cli: this folder, linked into the package as src/siemforge/cli."""

if __name__ != "siemforge.cli":  # one module object per file: never also importable as top-level `cli`
    raise ImportError(f"{__name__!r}: import siemforge.cli, not cli (pip install -e . maps src/siemforge)")
