"""The target registry: every backend registers one Target; the CLI knows targets only through here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from siemforge.compiler import ir


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    description: str
    extension: str  # file extension of compiled queries written with -o
    bindings: tuple[str, ...]  # physical schemas this target can read; the first is the default
    compile: Callable[[ir.RuleIR, str | None], str]  # (rule, binding) -> query text; raises CompileError


_TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    if target.name in _TARGETS:
        raise ValueError(f"target {target.name!r} registered twice")
    _TARGETS[target.name] = target
    return target


def targets() -> dict[str, Target]:
    _load_builtin()
    return dict(_TARGETS)


def get_target(name: str) -> Target | None:
    return targets().get(name)


def _load_builtin() -> None:
    # importing a backend package registers it
    from siemforge.backends import (
        executor,  # noqa: F401
        kql,  # noqa: F401
        spl,  # noqa: F401
    )
