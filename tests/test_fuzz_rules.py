"""The rule loader under generated hostile input (a quick, deterministic profile; benchmarks/fuzz_rules.py runs
≥ 10,000 cases per kind): YAML text, pipeline-language text and Sigma detections each give a rule or a
positioned CompileError, never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rule_strategies import RULE_TEXTS, check_rule_text, make_folder

QUICK = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("kind", sorted(RULE_TEXTS))
@QUICK
@given(data=st.data())
def test_rule_text_gives_a_rule_or_a_positioned_error(folder: Path, kind: str, data: st.DataObject) -> None:
    assert check_rule_text(data.draw(RULE_TEXTS[kind], label=f"{kind} rule text"), folder) in ("result", "error")
