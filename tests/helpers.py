"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a reason when this checkout has no shared/ beside it."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (the project's shared/ data beside the checkout); a user's clone has none")
    return p


def compile_rule(folder: Path, text: str):  # type: ignore[no-untyped-def]  # -> ir.RuleIR
    """Write `text` as folder/rule.yml and compile it; the test fails with the diagnostics if it does not compile."""
    from siemforge.compiler.api import compile_file

    path = folder / "rule.yml"
    path.write_text(text)
    res = compile_file(path)
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    return res.rule
