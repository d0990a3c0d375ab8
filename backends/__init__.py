"""siemforge.backends: this folder, linked into the package as src/siemforge/backends."""

if __name__ != "siemforge.backends":  # one module object per file: never also importable as top-level `backends`
    raise ImportError(f"{__name__!r}: import siemforge.backends, not backends (pip install -e . maps src/siemforge)")
