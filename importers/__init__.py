"""siemforge.importers: this folder, linked into the package as src/siemforge/importers."""

if __name__ != "siemforge.importers":  # one module object per file: never also importable as top-level `importers`
    raise ImportError(f"{__name__!r}: import siemforge.importers, not importers (pip install -e . maps src/siemforge)")
