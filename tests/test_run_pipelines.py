"""Many rules over the same events in one pass per source (engine.run_pipelines, windows.RecordIndex): each rule's
rows must be exactly those it gets run alone (engine.run_pipeline over freshly read events)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from siemforge.backends.executor.engine import run_pipeline, run_pipelines
from siemforge.backends.executor.reader import iter_events
from siemforge.backends.executor.windows import RecordIndex, select_records
from siemforge.compiler.api import compile_file
from siemforge.compiler.sources import builtin_sources

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
