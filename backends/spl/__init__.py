"""Splunk: SPL over a bound sourcetype (raw CloudTrail through the `cloudtrail` macro)."""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target, register
from .lower import compile_spl


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    return compile_spl(rule, binding)


TARGET = register(Target("splunk", "Splunk SPL (bindings: raw CloudTrail via the `cloudtrail` macro; asis for "
                         "undeclared sources)", "spl", ("raw", "asis"), _compile))
