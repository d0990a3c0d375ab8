"""The rule loader under generated hostile input (a quick, deterministic profile; benchmarks/fuzz_rules.py runs
≥ 10,000 cases per kind): YAML text, pipeline-language text and Sigma detections each give a rule or a
positioned CompileError, never another exception."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from rule_strategies import (
    check_rule_text,
    make_folder,
    pipeline_rule_text,
    pipeline_text,
    sigma_detection,
    sigma_rule_text,
    yaml_text,
)

QUICK = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("fuzz"))


@QUICK
@given(text=yaml_text)
def test_yaml_text_gives_a_rule_or_a_positioned_error(folder: Path, text: str) -> None:
    assert check_rule_text(text, folder) in ("result", "error")


@QUICK
@given(query=pipeline_text())
def test_pipeline_text_gives_a_rule_or_a_positioned_error(folder: Path, query: str) -> None:
    assert check_rule_text(pipeline_rule_text(query), folder) in ("result", "error")


@QUICK
@given(detection=sigma_detection())
def test_sigma_detections_give_a_rule_or_a_positioned_error(folder: Path, detection: dict[str, Any]) -> None:
    assert check_rule_text(sigma_rule_text(detection), folder) in ("result", "error")
