"""Importers: other SIEMs' detections (Splunk ESCU/savedsearches, Sentinel analytic rules) become siemforge rules."""

if __name__ != "siemforge.importers":  # one module object per file: never also importable as top-level `importers`
    raise ImportError(f"{__name__!r}: import siemforge.importers, not importers (pip install -e . maps src/siemforge)")
