"""siemforge.sources: this folder, linked into the package as src/siemforge/sources."""

if __name__ != "siemforge.sources":  # one module object per file: never also importable as top-level `sources`
    raise ImportError(f"{__name__!r}: import siemforge.sources, not sources (pip install -e . maps src/siemforge)")
