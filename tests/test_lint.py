"""House habits, checked with the tests: ruff and mypy over the package code."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from helpers import ROOT

CODE = ["compiler", "cli", "backends", "benchmarks"]


def tool(name: str) -> list[str]:
    if shutil.which(name) is None and subprocess.run([sys.executable, "-m", name, "--version"],
                                                     capture_output=True).returncode != 0:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [sys.executable, "-m", name]


def test_ruff() -> None:
    proc = subprocess.run([*tool("ruff"), "check", *CODE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_mypy() -> None:
    proc = subprocess.run([*tool("mypy"), "compiler", "cli", "backends"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:]
