"""Microsoft Sentinel: KQL over the bound table, analytic-rule YAML and ARM templates."""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    from .lower import compile_kql

    return compile_kql(rule, binding)


def _binding_of(rule: ir.RuleIR, binding: str | None) -> str:
    from siemforge.compiler.lowering import branch_rules

    from .lower import sentinel_binding

    return "+".join(dict.fromkeys(sentinel_binding(b, binding).name for b in branch_rules(rule)))


def _bindings() -> tuple[str, ...]:
    from siemforge.compiler.bindings import builtin_bindings

    names = sorted({b.name for b in builtin_bindings().values() if b.target == "sentinel"},
                   key=lambda n: (n != "sentinel", n.lower()))
    return tuple(names)


def target() -> Target:
    """The registry's entry point (pyproject: siemforge.targets); reads the binding files, so called on first use."""
    return Target("sentinel", "Microsoft Sentinel KQL (AWSCloudTrail via `sentinel`; Windows via `xdr`, the Defender "
                  "XDR Device* tables, the default, `SecurityEvent` or `WindowsEvent`; Entra ID, Azure Activity and "
                  "Microsoft 365 via `sentinel`: SigninLogs, AuditLogs, AzureActivity, OfficeActivity, …)", "kql",
                  _bindings(), _compile, _binding_of)
