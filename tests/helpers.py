"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from siemforge.compiler import ir

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


def bundled_cases(raw_only: bool = False, source: str | tuple[str, ...] | None = None) -> list[object]:
    """Every test case of the bundled rules (rules/) as a pytest param (rule file, case), named folder:case;
    `raw_only`: the cases whose logs are raw records (no `binding:`); `source`: the rules whose base source's name
    starts with it, or with one of them (`aws.`, `windows.`)."""
    from siemforge.compiler.api import compile_file, discover_rules
    from siemforge.compiler.lowering import base_source

    out: list[object] = []
    for f in discover_rules([ROOT / "rules"]):
        res = compile_file(f)
        assert res.doc is not None, [str(d) for d in res.diagnostics]
        if source is not None and (res.rule is None or not base_source(res.rule.pipeline.source).startswith(source)):
            continue
        out.extend(pytest.param(f, case, id=f"{f.parent.name}:{case.name}") for case in res.doc.tests
                   if not raw_only or case.binding is None)
    return out


def ci_tool(name: str, venv: str, env_var: str) -> str:
    """A Splunk tool CI installs in its own venv (.ci/run), `env_var` or on PATH; else skip the test."""
    exe = os.environ.get(env_var) or str(ROOT / ".ci-venvs" / venv / "bin" / name)
    found = exe if Path(exe).exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (CI installs it: .ci/run)")
    return found


def corpus_spl(root: Path, parse: Callable[[str], object], skip: Path | None = None) -> Iterator[
        tuple[Path, ir.RuleIR | None, str | None]]:
    """Every rule under `root` (but those under `skip`) compiled to SPL on its default binding and parsed by `parse`:
    (file, rule, search), the search None where the backend refused the rule, the rule None too where it does not
    load."""
    from siemforge.backends.spl.lower import compile_spl
    from siemforge.compiler.api import compile_file, discover_rules
    from siemforge.compiler.diagnostics import CompileError

    for f in discover_rules([root]):
        if skip is not None and f.is_relative_to(skip):
            continue
        rule = compile_file(f).rule
        if rule is None:  # refused when it loads (a Sigma field no field of its source holds: docs/sources/azure.md)
            yield f, None, None
            continue
        try:
            spl = compile_spl(rule, None)
        except CompileError:
            yield f, rule, None
            continue
        parse(spl)
        yield f, rule, spl
