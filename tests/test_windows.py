"""Windows event logs: the readers' shapes, the sources' record selection, and SigmaHQ's own regression cases."""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.reader import Malformed, iter_events
from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.sources import _parse_source, builtin_sources, source_for_logsource

from helpers import shared_path

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def read(path: Path) -> tuple[list[dict[str, Any]], list[Malformed]]:
    bad: list[Malformed] = []
    return list(iter_events(path, bad.append)), bad


def evtx_json(system: dict[str, Any], event_data: Any = None, user_data: Any = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
                          "System": system}
    if event_data is not None:
        ev["EventData"] = event_data
    if user_data is not None:
        ev["UserData"] = user_data
    return {"Event": ev}


def system(channel: str, eid: Any, provider: str = "Microsoft-Windows-Sysmon") -> dict[str, Any]:
    return {"Provider": {"#attributes": {"Name": provider}}, "EventID": eid, "Level": 4, "Task": 1,
            "TimeCreated": {"#attributes": {"SystemTime": "2025-10-24T23:41:48.497170Z"}}, "EventRecordID": 7,
            "Channel": channel, "Computer": "host1", "Security": {"#attributes": {"UserID": "S-1-5-18"}}}


SYSMON = "Microsoft-Windows-Sysmon/Operational"


# --- readers: the shapes of ../shared/data/windows/README.md, as small hand-made files --------------------------

def test_evtx_json_pretty_printed_and_concatenated(tmp_path: Path) -> None:
    a = evtx_json(system(SYSMON, 1), {"Image": "C:\\Windows\\cmd.exe", "ProcessId": 10048})
    b = evtx_json(system(SYSMON, 3), {"Image": "C:\\x.exe", "DestinationPort": 443})
    f = tmp_path / "two.json"
    f.write_bytes(orjson.dumps(a, option=orjson.OPT_INDENT_2) + b"\n" + orjson.dumps(b, option=orjson.OPT_INDENT_2))
    rows, bad = read(f)
    assert bad == []
    assert [r["EventID"] for r in rows] == [1, 3]
    assert rows[0] == {
        "Image": "C:\\Windows\\cmd.exe", "ProcessId": 10048, "EventID": 1, "Channel": SYSMON,
        "Provider_Name": "Microsoft-Windows-Sysmon", "Computer": "host1",
        "TimeCreated": "2025-10-24T23:41:48.497170Z", "Level": 4, "Task": 1, "EventRecordID": 7,
        "UserID": "S-1-5-18",
    }


def test_classic_event_id_text_unnamed_data_and_user_data(tmp_path: Path) -> None:
    classic = evtx_json(system("Windows PowerShell", {"#attributes": {"Qualifiers": 0}, "#text": 800}, "PowerShell"),
                        {"Data": {"#text": ["Get-Process", "\tHostApplication=powershell.exe -nop"]}})
    cleared = evtx_json(system("Security", 1102, "Microsoft-Windows-Eventlog"), user_data={
        "LogFileCleared": {"#attributes": {"xmlns": "x"}, "SubjectUserName": "alice", "SubjectLogonId": "0x3e7"}})
    f = tmp_path / "classic.ndjson"
    f.write_bytes(orjson.dumps(classic) + b"\n" + orjson.dumps(cleared) + b"\n")
    rows, bad = read(f)
    assert bad == []
    assert rows[0]["EventID"] == 800 and rows[0]["Provider_Name"] == "PowerShell"
    assert rows[0]["Data"] == "Get-Process\n\tHostApplication=powershell.exe -nop"
    assert rows[1]["EventID"] == 1102 and rows[1]["SubjectUserName"] == "alice" and "UserData" not in rows[1]


def test_flat_ndjson_otrf_shape(tmp_path: Path) -> None:
    f = tmp_path / "otrf.ndjson.gz"
    lines = [
        {"Channel": "security", "EventID": "4688", "NewProcessName": "C:\\Windows\\System32\\whoami.exe",
         "ParentProcessName": "C:\\Windows\\System32\\cmd.exe", "CommandLine": "whoami /all",
         "ProcessId": "0x1a2c", "NewProcessId": "0x2b3c", "SourceName": "Microsoft-Windows-Security-Auditing",
         "Hostname": "WKS5", "TimeCreated": "2020-10-19 12:28:44.333"},
        {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 3, "Image": "C:\\Windows\\System32\\whoami.exe"},
    ]
    f.write_bytes(gzip.compress(b"".join(orjson.dumps(x) + b"\n" for x in lines) + b"{broken\n"))
    rows, bad = read(f)
    assert [(m.file, m.line) for m in bad] == [(str(f), 3)] and "invalid JSON" in bad[0].message
    assert rows[0]["EventID"] == 4688 and rows[0]["Provider_Name"] == "Microsoft-Windows-Security-Auditing"
    assert rows[0]["Computer"] == "WKS5"


def test_a_broken_evtx_file_is_reported_not_fatal(tmp_path: Path) -> None:
    f = tmp_path / "broken.evtx"
    f.write_bytes(b"ElfFile\x00" + b"\x00" * 100)
    rows, bad = read(f)
    assert rows == [] and len(bad) >= 1 and bad[0].file == str(f)



@pytest.mark.parametrize("keep", [4096, 4096 + 65536 + 1234, 4096 + 13 * 65536])  # the header only; cut in chunks
def test_a_truncated_evtx_file_is_reported_after_its_whole_chunks(tmp_path: Path, keep: int) -> None:
    # a file cut short (a copy interrupted, an attacker's upload) read silently as fewer events before
    whole = shared_path("data", "windows", "baseline", "omerbenamram-evtx-samples", "security.evtx")
    rows_all, bad_all = read(whole)
    assert bad_all == []
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(whole.read_bytes()[:keep])
    rows, bad = read(cut)
    assert rows == rows_all[: len(rows)] and len(rows) < len(rows_all)
    chunks = (keep - 4096) // 65536
    assert [str(m) for m in bad] == [f"{cut}: skipped: truncated: its header counts 26 chunks of 64 KiB, the file "
                                     f"holds {chunks} whole; the records after them are lost"]

# --- sources: a Sigma logsource picks a Windows source; its records: section selects the rows ------------------

def test_logsource_picks_the_taxonomy_source() -> None:
    pc = source_for_logsource({"product": "windows", "category": "process_creation"})
    sec = source_for_logsource({"product": "windows", "service": "security"})
    assert pc is not None and pc.name == "windows.process_creation"
    assert sec is not None and sec.name == "windows.security"
    assert any(4688 in s.event_ids and ("NewProcessName", "Image") in s.rename for s in pc.records)


def test_every_windows_logsource_of_the_corpus_has_a_source() -> None:
    root = shared_path("data", "sigma", "rules", "windows")
    missing: set[tuple[str, str]] = set()
    for f in root.rglob("*.yml"):
        ls = (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("logsource") or {}
        key = ("category", ls["category"]) if "category" in ls else ("service", ls.get("service"))
        if key[1] is not None and source_for_logsource(ls) is None:
            missing.add(key)
    assert missing == set()


PROCESS_RULE = """
title: whoami
id: 11111111-2222-3333-4444-555555555555
logsource: {product: windows, category: process_creation}
detection:
  selection:
    Image|endswith: '\\whoami.exe'
    ParentImage|endswith: '\\cmd.exe'
  condition: selection
"""


def test_process_creation_reads_sysmon_1_and_security_4688_and_nothing_else(tmp_path: Path) -> None:
    rule_file = tmp_path / "whoami.yml"
    rule_file.write_text(PROCESS_RULE, encoding="utf-8")
    rule = compile_file(rule_file).rule
    assert rule is not None
    cmd, who = "C:\\Windows\\System32\\cmd.exe", "C:\\Windows\\System32\\whoami.exe"
    events = [
        {"Channel": SYSMON, "EventID": 1, "Image": who, "ParentImage": cmd},                # a row
        {"Channel": SYSMON, "EventID": 3, "Image": who, "ParentImage": cmd},                # network: not a row
        {"Channel": "security", "EventID": "4688", "NewProcessName": who, "ParentProcessName": cmd,
         "ProcessId": "0x10", "NewProcessId": "0x20"},                                    # a row, renamed
        {"Channel": "Security", "EventID": 4689, "NewProcessName": who, "ParentProcessName": cmd},  # not a row
        {"Channel": "System", "EventID": 1, "Image": who, "ParentImage": cmd},              # other channel
        {"Image": who, "ParentImage": cmd},                                                 # no Channel: kept
    ]
    f = tmp_path / "mixed.ndjson"
    f.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    for workers in (1, None):
        res = run_rule(rule, [f], NOW, workers=workers, parallel_min_bytes=0)
        assert [(r.get("Channel"), r.get("EventID")) for r in res.rows] == [
            (SYSMON, 1), ("security", 4688), (None, None)]
        assert res.rows[1]["ProcessId"] == "0x20" and res.rows[1]["ParentProcessId"] == "0x10"
        assert "NewProcessName" not in res.rows[1]


def test_a_bad_records_section_is_an_error_with_a_position() -> None:
    text = "name: x.y\nrecords:\n  - event_id: [1]\n"
    with pytest.raises(CompileError) as e:
        _parse_source(text, "sources/x.yml")
    d = e.value.diagnostics[0]
    assert "needs `channel:` or `provider:`" in d.message and d.span is not None and d.span.line == 3


def test_generated_sources_are_up_to_date(tmp_path: Path) -> None:
    """sources/windows_*.yml are what tools/gen_windows_sources.py writes from shared/reference/windows."""
    import subprocess
    import sys

    shared = shared_path("reference", "windows").parents[1]
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "tools" / "gen_windows_sources.py"), "--shared", str(shared),
                    "--out", str(tmp_path)], check=True)
    made = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("windows_*.yml")}
    have = {p.name: p.read_text(encoding="utf-8") for p in (root / "sources").glob("windows_*.yml")}
    assert made == have
    assert len([s for s in builtin_sources() if s.startswith("windows.")]) == len(made)


# --- proof: SigmaHQ's regression cases fire from their EVTX and from their JSON ----------------------------------

# Cases whose .json lost what the rule matches (the JSON strips trailing spaces the .evtx keeps; README): none of
# the 99 today. Each entry: case folder name -> the value the .evtx has and the .json lost.
JSON_LOST: dict[str, str] = {}

# Cases where info.yml's match_count is 1 but every one of several events in the file matches the rule (checked by
# hand: each row is a distinct event of the rule's category that satisfies its detection).
MORE_EVENTS_MATCH = {
    "file_event_win_anydesk_artefact": 3,  # user.conf.new twice, user.conf~RF….TMP once
    "registry_set_change_security_zones": 3,  # ZoneMap\Domains\bad-domain.com\bad-subdomain\{https,http,*}
    "registry_set_disable_administrative_share": 2,  # AutoShareServer and AutoShareWks set to 0
}


@cache
def _rules_by_id() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for f in shared_path("data", "sigma", "rules").rglob("*.yml"):
        m = re.search(r"^id:\s*([0-9a-fA-F-]{36})", f.read_text(encoding="utf-8"), re.M)
        if m:
            out[m.group(1).lower()] = f
    return out


def _cases() -> list[Path]:
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "windows" / "regression_data" / "rules"
    return sorted(root.rglob("info.yml")) if root.exists() else []


def test_there_are_99_regression_cases() -> None:
    shared_path("data", "windows", "regression_data", "rules")
    assert len(_cases()) == 99


@pytest.mark.parametrize("info", _cases(), ids=lambda p: p.parent.name)
def test_sigma_regression_case_fires(info: Path) -> None:
    meta = yaml.safe_load(info.read_text(encoding="utf-8"))
    rule_file = _rules_by_id()[meta["rule_metadata"][0]["id"].lower()]
    compiled = compile_file(rule_file)
    assert compiled.rule is not None, [str(d) for d in compiled.diagnostics]
    rule = compiled.rule
    src = builtin_sources()[rule.pipeline.source.name]
    assert src.records, f"{rule_file}: source {src.name} selects no Windows records"
    (evtx,) = info.parent.glob("*.evtx")
    (js,) = info.parent.glob("*.json")
    expected = MORE_EVENTS_MATCH.get(info.parent.name, meta["regression_tests_info"][0].get("match_count", 1))
    from_evtx = run_rule(rule, [evtx], NOW, workers=1)
    assert from_evtx.malformed == []
    assert len(from_evtx.rows) == expected, f"{rule_file} over {evtx}"
    for row in from_evtx.rows:  # every row is a record of the rule's source, as its records: section says
        assert any((not s.channels or row["Channel"].lower() in s.channels)
                   and (not s.event_ids or row["EventID"] in s.event_ids) for s in src.records), row
    from_json = run_rule(rule, [js], NOW, workers=1)
    assert from_json.malformed == []
    if info.parent.name in JSON_LOST:
        assert from_json.rows == []
    else:
        assert len(from_json.rows) == expected, f"{rule_file} over {js}"
        # the same events, read from the two forms: the same fields, values equal but for stripped trailing spaces
        for a, b in zip(from_evtx.rows, from_json.rows):
            assert a.keys() == b.keys()
            assert {k: v.rstrip() if isinstance(v, str) else v for k, v in a.items()} == {
                k: v.rstrip() if isinstance(v, str) else v for k, v in b.items()}
