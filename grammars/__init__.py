"""siemforge.grammars: this folder, linked into the package as src/siemforge/grammars."""

if __name__ != "siemforge.grammars":  # one module object per file: never also importable as top-level `grammars`
    raise ImportError(f"{__name__!r}: import siemforge.grammars, not grammars (pip install -e . maps src/siemforge)")
