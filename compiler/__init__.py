"""The compiler: rule loading, the pipeline language, semantic analysis, the IR and its passes."""

if __name__ != "siemforge.compiler":  # one module object per file: never also importable as top-level `compiler`
    raise ImportError(f"{__name__!r}: import siemforge.compiler, not compiler (pip install -e . maps src/siemforge)")
