"""The native executor: runs the IR over events in Python. It reads the IR only, never generated queries."""

from __future__ import annotations

from siemforge.compiler import ir

from ..registry import Target


def _compile(rule: ir.RuleIR, binding: str | None) -> str:
    from siemforge.compiler.diagnostics import CompileError, error
    from siemforge.compiler.irprint import format_rule

    if binding not in (None, "raw"):
        raise error(f"the executor has no binding {binding!r}; it reads raw records (binding 'raw')")
    from .regex import check_rule

    refused = check_rule(rule)
    if refused is not None:
        raise CompileError([refused])
    return format_rule(rule)


def target() -> Target:
    """The registry's entry point (pyproject: siemforge.targets)."""
    return Target("executor", "the native Python executor (the compiled form is the IR it runs)", "ir", ("raw",),
                  _compile)
