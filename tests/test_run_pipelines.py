"""Many rules over the same events in one pass per source (engine.run_pipelines, windows.RecordIndex): each rule's
rows must be exactly those it gets run alone (engine.run_pipeline over freshly read events). And Sigma keyword lists
tested in one walk over the event (compile._keywords), as each keyword alone."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from siemforge.backends.executor.compile import Context, compile_expr
from siemforge.backends.executor.engine import run_pipeline, run_pipelines
from siemforge.backends.executor.reader import iter_events
from siemforge.backends.executor.windows import RecordIndex, select_records
from siemforge.compiler import ir
from siemforge.compiler.api import compile_file
from siemforge.compiler.sources import builtin_sources
from siemforge.compiler.types import Type

from helpers import compile_rule, shared_path

NOW = datetime(2024, 1, 1, tzinfo=UTC)

EVENTS: list[dict[str, Any]] = [
    {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\Windows\\cmd.exe",
     "CommandLine": "cmd /c whoami", "TimeCreated": "2024-01-01T00:00:00Z"},
    {"Channel": "security", "EventID": 4688, "NewProcessName": "C:\\Windows\\whoami.exe",
     "CommandLine": "whoami /all", "ParentProcessName": "C:\\Windows\\cmd.exe", "TimeCreated": "2024-01-01T00:00:01Z"},
    {"Channel": "Security", "EventID": 4624, "TargetUserName": "bob", "TimeCreated": "2024-01-01T00:00:02Z"},
    {"Image": "C:\\Windows\\whoami.exe", "CommandLine": "hand-made, no Channel"},  # kept by every source
    {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": ["1"], "Image": "odd EventID"},
    {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\Windows\\whoami.exe",
     "CommandLine": "whoami", "TimeCreated": "2024-01-01T00:00:03Z"},
]

WHOAMI = """title: whoami
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\\\whoami.exe'}
  condition: sel
"""

# writes to its rows (extend, rename): the rules after it must not see that
WRITER = """title: writer
source: windows.process_creation
query: |
  extend Image = "overwritten" | rename cmd = CommandLine
"""

COUNTER = """title: counter
source: windows.process_creation
query: |
  summarize n = count() by Image
"""

LOGONS = """title: logons
logsource: {product: windows, service: security}
detection:
  sel: {EventID: 4624}
  condition: sel
"""


def _alone(rule: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows, _ = run_pipeline(rule.pipeline, copy.deepcopy(events), NOW, {})
    return list(rows)


@pytest.mark.parametrize("name", ["windows.process_creation", "windows.security", "windows.image_load"])
def test_the_index_selects_what_select_records_selects(name: str) -> None:
    src = builtin_sources()[name]
    assert RecordIndex(EVENTS).rows_of(src) == list(select_records(src, EVENTS))


def test_4688_rows_are_renamed_and_in_order() -> None:
    rows = RecordIndex(EVENTS).rows_of(builtin_sources()["windows.process_creation"])
    assert [r.get("Image") for r in rows] == ["C:\\Windows\\cmd.exe", "C:\\Windows\\whoami.exe",
                                              "C:\\Windows\\whoami.exe", "C:\\Windows\\whoami.exe"]
    assert "NewProcessName" not in rows[1] and "NewProcessName" in EVENTS[1]  # the event itself is untouched


def test_each_rule_gets_its_own_rows(tmp_path: Path) -> None:
    rules = []
    for i, text in enumerate([WHOAMI, WRITER, WHOAMI, COUNTER, LOGONS]):
        (tmp_path / str(i)).mkdir()
        rules.append(compile_rule(tmp_path / str(i), text))
    events = copy.deepcopy(EVENTS)
    together = run_pipelines(rules, events, NOW)
    assert together == [_alone(r, EVENTS) for r in rules]
    assert [len(rows) for rows in together] == [3, 4, 3, 2, 1]
    assert together[1][0]["Image"] == "overwritten" and together[2][0]["Image"] == "C:\\Windows\\whoami.exe"
    assert events == EVENTS  # the events read are not written to


@pytest.mark.slow
def test_sigma_windows_rules_over_otrf_give_the_same_rows_together_as_alone() -> None:
    """A seventh of SigmaHQ's Windows rules over three OTRF datasets (Sysmon, Security, PowerShell records)."""
    rules_dir = shared_path("data", "sigma", "rules", "windows")
    logs = shared_path("data", "windows", "otrf-security-datasets")
    files = sorted(rules_dir.rglob("*.yml"))[::7]
    rules = [r for r in (compile_file(f, root=f.parent).rule for f in files) if r is not None]
    events: list[dict[str, Any]] = []
    for name in ("lateral_movement/schtask_create", "credential_access/cmd_sam_copy_esentutl",
                 "defense_evasion/psh_cmstp_execution_bypassuac"):
        events.extend(iter_events(logs / f"{name}.ndjson.gz", lambda m: None))
    together = run_pipelines(rules, events, NOW)
    alone = [_alone(r, events) for r in rules]
    assert together == alone
    assert sum(1 for rows in together if rows) >= 3  # the comparison covers rules that fire


def test_a_record_whose_eventid_is_a_list_is_no_sources_row() -> None:
    """A malformed record (EventID a list) is skipped by the selection, not a crash (it was: TypeError)."""
    src = builtin_sources()["windows.process_creation"]
    odd = [{"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": [1], "Image": "x"}]
    assert list(select_records(src, odd)) == [] == RecordIndex(odd).rows_of(src)


KEYWORDS = [  # (pattern, case-sensitive)
    (("mimikatz",), False), ((ir.Wild.ANY, "Invoke-Mimi", ir.Wild.ANY), False), (("a", ir.Wild.ONE, "c"), False),
    ((ir.Wild.ANY, "SeDebug", ir.Wild.ANY), True), ((ir.Wild.ANY, "İSTANBUL"), False), (("12",), False),
    ((ir.Wild.ANY, "straße", ir.Wild.ANY), False), ((ir.Wild.ANY, "x", ir.Wild.ANY, "y"), False),
]
ROWS = [
    {"CommandLine": "MIMIKATZ"}, {"a": {"b": ["x", "powershell invoke-mimikatz"]}}, {"v": "abc"}, {"v": "ABC"},
    {"p": "has sedebug"}, {"p": "has SeDebugPrivilege"}, {"city": "i̇stanbul"}, {"city": "istanbul"}, {"n": 12},
    {"n": 12.0}, {"t": "STRASSE"}, {"t": "Große Straße 1"}, {"t": "xaay"}, {"t": "yx"}, {}, {"t": None},
]


@pytest.mark.parametrize("row", ROWS, ids=[str(r) for r in ROWS])
def test_keywords_in_one_walk_match_as_each_keyword_alone(row: dict[str, Any]) -> None:
    """An `or` of Sigma keywords is evaluated in one walk over the event (compile._keywords): for every subset of
    the patterns, the same verdict as each keyword compiled and tested on its own."""
    ctx = Context(NOW, None, None)
    for n in range(2, len(KEYWORDS) + 1):
        for start in range(len(KEYWORDS) - n + 1):
            kws = [ir.Keyword(p, cs) for p, cs in KEYWORDS[start:start + n]]
            alone = any(compile_expr(k, ctx)(row) for k in kws)
            assert compile_expr(ir.Or(tuple(kws)), ctx)(row) is alone, (row, kws)
    mixed = ir.Or((ir.Keyword(("nomatch",)), ir.Keyword(("zzz",)),
                   ir.Compare(ir.CmpOp.EQ, ir.Column("v", (), Type.STRING), ir.Literal("abc", Type.STRING))))
    assert compile_expr(mixed, ctx)(row) is (row.get("v") == "abc")
