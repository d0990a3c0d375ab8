"""`main()` hides the traceback of an internal error unless asked: `--debug` or `SIEMFORGE_DEBUG=1` shows it."""

from __future__ import annotations

import sys

import pytest

from siemforge.cli import main as cli
from siemforge.compiler import irprint

from helpers import ROOT

RULE = ROOT / "rules" / "aws_ec2_password_data_many_instances" / "aws_ec2_password_data_many_instances.yml"


def _internal_error(*args: object) -> str:
    raise RuntimeError("deliberate failure inside a command")


def _run_broken(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *options: str) -> str:
    monkeypatch.setattr(irprint, "format_rule", _internal_error)  # `siemforge ir` fails inside the command
    monkeypatch.setattr(cli, "_debug", False)
    monkeypatch.setattr(sys, "argv", ["siemforge", *options, "ir", str(RULE)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 70
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: deliberate failure inside a command" in err
    return err


def test_no_traceback_by_default(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SIEMFORGE_DEBUG", raising=False)
    err = _run_broken(monkeypatch, capsys)
    assert "Traceback" not in err
    assert "--debug" in err and "SIEMFORGE_DEBUG=1" in err  # says how to see it


def test_debug_option_shows_the_traceback(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SIEMFORGE_DEBUG", raising=False)
    err = _run_broken(monkeypatch, capsys, "--debug")
    assert "Traceback (most recent call last)" in err
    assert "in _internal_error" in err and 'raise RuntimeError("deliberate failure inside a command")' in err


def test_debug_env_var_shows_the_traceback(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SIEMFORGE_DEBUG", "1")
    err = _run_broken(monkeypatch, capsys)
    assert "Traceback (most recent call last)" in err and "in _internal_error" in err
