"""Microsoft Sentinel: KQL over the bound table, analytic-rule YAML and ARM templates."""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target, register
from .lower import compile_kql


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    return compile_kql(rule, binding)


TARGET = register(
    Target("sentinel", "Microsoft Sentinel KQL (table bindings: sentinel)", "kql", ("sentinel",), _compile)
)
