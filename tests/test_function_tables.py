"""Every function of compiler/functions.py has an entry on every target: a lowering, the target's own function of the
same name and meaning (generic), or an explicit refusal with its reason — never a silent gap."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.backends.executor import compile as executor_compile
from siemforge.backends.executor.functions import IMPLEMENTATIONS
from siemforge.backends.kql import lower as kql
from siemforge.backends.registry import targets
from siemforge.backends.spl import lower as spl
from siemforge.backends.sql import lower as sql
from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.functions import FUNCTIONS
from siemforge.compiler.types import Type

# registered target -> (lowerings, generic names, unsupported name -> reason)
TABLES: dict[str, tuple[set[str], set[str], dict[str, str]]] = {
    "executor": (set(IMPLEMENTATIONS) | set(executor_compile.CLOCK), set(), {}),
    "sentinel": (set(kql.FUNCTIONS), set(kql.GENERIC), kql.UNSUPPORTED),
    "splunk": (set(spl.FUNCTIONS), set(spl.GENERIC), spl.UNSUPPORTED),
    "sql": (set(sql.FUNCTIONS), set(), sql.UNSUPPORTED),
}


def test_every_registered_target_has_a_function_table() -> None:
    assert set(TABLES) == set(targets()), "a target with no function table here is not checked"


@pytest.mark.parametrize("target", sorted(TABLES))
def test_every_function_has_exactly_one_entry_on_every_target(target: str) -> None:
    lowered, generic, unsupported = TABLES[target]
    entries = [lowered, generic, set(unsupported)]
    listed = set().union(*entries)
    assert set(FUNCTIONS) - listed == set(), "functions with no entry"
    assert listed - set(FUNCTIONS) == set(), "entries for functions compiler/functions.py does not declare"
    assert sum(len(x) for x in entries) == len(listed), "a function both lowered and generic or unsupported"


ARGS = {Type.STRING: "eventName", Type.INT: "1", Type.REAL: "1.5", Type.BOOL: "true", Type.DATETIME: "_time",
        Type.TIMESPAN: "1h", Type.DYNAMIC: "resources", Type.ANY: "eventName"}


# where the argument types alone do not make a call every target can run (partial support is in the backend tables)
EXAMPLES = {"bin": "bin(_time, 1h)", "replace_string": 'replace_string(eventName, "Run", "Stop")',
            "todatetime": "todatetime(_time)", "indexof": 'indexof(eventName, ":")',
            "bag_pack": 'bag_pack("n", eventName, "t", _time)'}


def call_text(name: str) -> str:
    if name in EXAMPLES:
        return EXAMPLES[name]
    sig = FUNCTIONS[name]
    args = [ARGS[t] for t in sig.params]
    for i in sig.literal_params:
        args[i] = {Type.STRING: '"hour"' if name == "datetime_diff" else '@"(x)"', Type.INT: "1"}[sig.params[i]]
    return f"{name}({', '.join(args)})"


REFUSED = [(target, name, why) for target, (_, _, unsupported) in sorted(TABLES.items())
           for name, why in sorted(unsupported.items())]


@pytest.mark.parametrize("target,name,why", REFUSED, ids=[f"{t}:{n}" for t, n, _ in REFUSED])
def test_an_unsupported_function_is_refused_with_its_reason(target: str, name: str, why: str, tmp_path: Path) -> None:
    p = tmp_path / "rule.yml"
    p.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\n"
                 f"query: |\n  extend v = {call_text(name)}\n")
    rule = compile_file(p).rule
    assert rule is not None
    with pytest.raises(CompileError) as exc:
        targets()[target].compile(rule, None)
    assert why in str(exc.value)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_supported_function_compiles_on_sentinel_and_splunk(name: str, tmp_path: Path) -> None:
    p = tmp_path / "rule.yml"
    p.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\n"
                 f"query: |\n  extend v = {call_text(name)}\n")
    rule = compile_file(p).rule
    assert rule is not None, name
    for target in ("sentinel", "splunk"):
        if name not in TABLES[target][2]:
            assert targets()[target].compile(rule, None)
