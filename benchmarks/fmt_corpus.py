"""`siemforge fmt` over a rule corpus: files per second, and what the formatting costs against its safety check.

    python benchmarks/fmt_corpus.py [FOLDER]   (default: ../shared/data/sigma/rules, the SigmaHQ corpus)

Writes nothing. For every rule file: the time of `format_text` (ruamel.yaml round trip, key order, pipeline layout,
and reading the result back with the compiler's YAML loader to check its meaning did not change), and how many files
would change. The read-back alone is timed too (two loads of the compiler's positioned YAML per file), so the share
of the check in the total is visible.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from siemforge.compiler.api import discover_rules
from siemforge.compiler.fmt import FormatError, format_text
from siemforge.compiler.yamlpos import load_yaml_all

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "sigma" / "rules"
    files = discover_rules([folder])
    if not files:
        sys.exit(f"no rule files under {folder}")
    texts = [(f, f.read_text(encoding="utf-8")) for f in files]
    size = sum(len(t.encode("utf-8")) for _, t in texts)

    started = time.perf_counter()
    changed = refused = 0
    for f, text in texts:
        try:
            changed += format_text(text, str(f)) != text
        except FormatError:
            refused += 1
    total = time.perf_counter() - started

    started = time.perf_counter()
    for f, text in texts:
        try:
            load_yaml_all(text, str(f))
            load_yaml_all(text, str(f))
        except Exception:  # noqa: BLE001 - a file the formatter refused; its cost is not the point here
            pass
    check = time.perf_counter() - started

    print(f"{len(files)} rule files, {size / 1e6:.1f} MB, under {folder}")
    print(f"format: {total:.2f} s ({len(files) / total:.0f} files/s, {total / len(files) * 1e3:.1f} ms per file); "
          f"{changed} would change, {refused} refused")
    print(f"of which the meaning check's two YAML loads: ~{check:.2f} s ({check / total:.0%})")


if __name__ == "__main__":
    main()
