"""docs/seeds.md is what tools/gen_seeds_doc.py writes now: the seeds' vendor queries beside what we emit, so the
side-by-side cannot drift from the compiler."""

from __future__ import annotations

import importlib.util
import sys

from helpers import ROOT, shared_path


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_seeds_doc", ROOT / "tools" / "gen_seeds_doc.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_seeds_doc"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_seeds_doc_is_current() -> None:
    shared_path("reference", "seeds")
    tool = _tool()
    assert (ROOT / "docs" / "seeds.md").read_text(encoding="utf-8") == tool.render(), (
        "docs/seeds.md is out of date: run python tools/gen_seeds_doc.py")


def test_ecr_raw_search_within_twice_the_seed() -> None:
    """Issue 16: the ECR rule's raw-CloudTrail search, measured as docs/seeds.md does, is at most twice the seed's."""
    shared_path("reference", "seeds")
    tool = _tool()
    v = tool.VARIANTS[1]
    vendor = len(tool.without_comments(tool.vendor_query(v)))
    ours = len(tool.without_comments(tool.emitted(v.rule, "splunk", "raw")))
    assert vendor == 514 and ours / vendor <= 2.0, (vendor, ours)
