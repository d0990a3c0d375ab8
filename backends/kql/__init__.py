"""Microsoft Sentinel: KQL over the bound table, analytic-rule YAML and ARM templates."""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    from .lower import compile_kql

    return compile_kql(rule, binding)


def target() -> Target:
    """The registry's entry point (pyproject: siemforge.targets)."""
    return Target("sentinel", "Microsoft Sentinel KQL (table bindings: sentinel)", "kql", ("sentinel",), _compile)
