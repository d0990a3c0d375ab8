"""Splunk: SPL over a bound sourcetype (raw CloudTrail through the `cloudtrail` macro)."""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    from .lower import compile_spl

    return compile_spl(rule, binding)


def _binding_of(rule: ir.RuleIR, binding: str | None) -> str:
    from siemforge.compiler.lowering import branch_rules

    from .lower import splunk_binding

    names = []
    for b in branch_rules(rule):
        bound = splunk_binding(b, binding)
        names.append(bound.name if bound is not None else "asis")  # an undeclared source, searched as written
    return "+".join(dict.fromkeys(names))


def _bindings() -> tuple[str, ...]:
    from siemforge.compiler.bindings import builtin_bindings

    names = sorted({b.name for b in builtin_bindings().values() if b.target == "splunk"}, key=lambda n: n != "raw")
    return (*names, "asis")


def target() -> Target:
    """The registry's entry point (pyproject: siemforge.targets); reads the binding files, so called on first use."""
    return Target("splunk", "Splunk SPL (raw CloudTrail via `cloudtrail`, Amazon Security Lake via "
                  "`amazon_security_lake`, the CIM Change data model via tstats; Entra ID and Azure Activity via "
                  "`mscs`, Microsoft 365 via `o365`; asis for undeclared sources)",
                  "spl", _bindings(), _compile, _binding_of)
