"""The target registry: the CLI knows targets only through here.

Targets are declared as entry points in the group `siemforge.targets` (pyproject.toml; another installed package can add
its own), each naming a function that returns a `Target`. They are loaded the first time something asks for targets,
so that importing the CLI, or `siemforge --help`, does no backend work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from siemforge.compiler import ir

GROUP = "siemforge.targets"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    description: str
    extension: str  # file extension of compiled queries written with -o
    bindings: tuple[str, ...]  # physical schemas this target can read; the first is the default
    compile: Callable[[ir.RuleIR, str | None], str]  # (rule, binding) -> query text; raises CompileError
    # (rule, binding asked for) -> the binding the rule is compiled on (a source's default differs per source);
    # None: the one asked for, else the first of `bindings`
    binding_of: Callable[[ir.RuleIR, str | None], str] | None = None

    def binding_name(self, rule: ir.RuleIR, name: str | None) -> str:
        """The binding `compile(rule, name)` reads, by name (call after a successful compile)."""
        if self.binding_of is None:
            return name or self.bindings[0]
        return self.binding_of(rule, name)


class RegistryError(Exception):
    """A declared target is broken (its entry point does not load, or does not return a Target)."""


_TARGETS: dict[str, Target] = {}
_loaded = False


def register(target: Target) -> Target:
    if target.name in _TARGETS:
        raise ValueError(f"target {target.name!r} registered twice")
    _TARGETS[target.name] = target
    return target


def targets() -> dict[str, Target]:
    _load_entry_points()
    return dict(_TARGETS)


def get_target(name: str) -> Target | None:
    return targets().get(name)


def declared() -> dict[str, EntryPoint]:
    """The entry points of the group, by name, from every installed distribution.

    Not `entry_points(group=...)`: that reads only the first metadata directory found for a distribution name, and a
    stale `siemforge.egg-info` from an older install (in the checkout, on sys.path as the current directory under
    `python -m`) would hide the installed metadata and with it every target."""
    from importlib.metadata import distributions

    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == GROUP:
                found.setdefault(ep.name, ep)
    return dict(sorted(found.items()))


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    found = declared()
    if not found:
        raise RegistryError(f"no targets: the entry-point group {GROUP!r} is empty (is siemforge installed? "
                            "pip install -e . from a checkout)")
    for ep in found.values():
        factory = ep.load()
        target = factory() if callable(factory) else factory
        if not isinstance(target, Target) or target.name != ep.name:
            raise RegistryError(f"entry point {ep.name} = {ep.value} in {GROUP!r} did not give Target {ep.name!r}")
        if target.name not in _TARGETS:
            register(target)
    _loaded = True  # only once every target loaded: a broken one is reported again on the next call
