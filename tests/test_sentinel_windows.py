"""Windows sources on Sentinel: the Defender XDR Device* bindings (default) and SecurityEvent (`--binding`).

A table of rules and the KQL each gives per table; what a table cannot say is refused with the field named; every
query passes Kusto.Language against the table schemas; and SigmaHQ's regression events, converted into the table's
rows through the binding, give the executor the same rows back through the binding read backwards.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.reader import iter_events
from siemforge.backends.executor.shapes import record_to_row, row_selected, row_to_record
from siemforge.backends.executor.windows import select_records
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.compiler.api import compile_file
from siemforge.compiler.bindings import builtin_bindings, members_column
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.sources import builtin_sources

from helpers import compile_rule, shared_path

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def rule(logsource: str, *selection: str) -> str:
    return (f"title: t\nlogsource: {{product: windows, {logsource}}}\ndetection:\n  sel:\n"
            + "".join(f"    {s}\n" for s in selection) + "  condition: sel\n")


# (rule, binding, expected KQL): one row or more per table
CASES: list[tuple[str, str | None, str]] = [
    (rule("category: process_creation", r"Image|endswith: '\rundll32.exe'", r"ParentImage|endswith: '\winword.exe'",
          "CommandLine|contains: ',#'", "OriginalFileName: RUNDLL32.EXE", "IntegrityLevel: System"), None,
     'DeviceProcessEvents\n| where (FolderPath endswith "\\\\rundll32.exe" and InitiatingProcessFolderPath endswith '
     '"\\\\winword.exe" and ProcessCommandLine contains ",#" and ProcessVersionInfoOriginalFileName =~ "RUNDLL32.EXE" '
     'and ProcessIntegrityLevel =~ "System")'),
    (rule("category: process_creation", "ParentCommandLine|contains: ' /c '", "Company: Microsoft Corporation",
          "Computer|startswith: dc"), None,
     'DeviceProcessEvents\n| where (InitiatingProcessCommandLine contains " /c " and ProcessVersionInfoCompanyName =~ '
     '"Microsoft Corporation" and DeviceName startswith "dc")'),
    (rule("category: file_event", "TargetFilename|endswith: '.lnk'", r"Image|contains: '\Temp\'"), None,
     'DeviceFileEvents\n| where ActionType == "FileCreated"\n| where (FolderPath endswith ".lnk" and '
     'InitiatingProcessFolderPath contains "\\\\Temp\\\\")'),
    (rule("category: file_delete", r"TargetFilename|contains: '\Prefetch\'"), None,
     'DeviceFileEvents\n| where ActionType == "FileDeleted"\n| where FolderPath contains "\\\\Prefetch\\\\"'),
    (rule("category: image_load", r"ImageLoaded|endswith: '\dbghelp.dll'", r"Image|endswith: '\procdump.exe'"), None,
     'DeviceImageLoadEvents\n| where (FolderPath endswith "\\\\dbghelp.dll" and InitiatingProcessFolderPath endswith '
     '"\\\\procdump.exe")'),
    (rule("category: network_connection", "DestinationIp: 10.1.2.3", "SourcePort: 445",
          "DestinationHostname|endswith: .onion"), None,
     'DeviceNetworkEvents\n| where ActionType in ("ConnectionSuccess", "InboundConnectionAccepted")\n'
     '| where (RemoteIP =~ "10.1.2.3" and todouble(LocalPort) == 445 and RemoteUrl endswith '
     '".onion")'),
    (rule("category: registry_set", r"Image|endswith: '\reg.exe'"), None,
     'DeviceRegistryEvents\n| where ActionType == "RegistryValueSet"\n| where InitiatingProcessFolderPath endswith '
     '"\\\\reg.exe"'),
    # computed fields: Sysmon's registry path and data, and Initiated, from the table's columns
    (rule("category: network_connection", "Initiated: 'true'"), None,
     'DeviceNetworkEvents\n| where ActionType in ("ConnectionSuccess", "InboundConnectionAccepted")\n'
     '| extend Initiated = case(ActionType == "ConnectionSuccess", "true", ActionType == "InboundConnectionAccepted", '
     '"false", "")\n| where Initiated =~ "true"'),
    (rule("category: registry_add", r"TargetObject|startswith: 'HKLM\System\CurrentControlSet\Services\'"), None,
     'DeviceRegistryEvents\n| where ActionType == "RegistryKeyCreated"\n| extend TargetObject = strcat(case('
     'RegistryKey startswith "HKEY_LOCAL_MACHINE\\\\SYSTEM\\\\ControlSet001", strcat("HKLM\\\\System\\\\CurrentControlSet", '
     'substring(RegistryKey, 39)), RegistryKey startswith "HKEY_LOCAL_MACHINE", strcat("HKLM", substring(RegistryKey, '
     '18)), RegistryKey startswith "HKEY_USERS", strcat("HKU", substring(RegistryKey, 10)), RegistryKey startswith '
     '"HKEY_CURRENT_USER", strcat("HKU", substring(RegistryKey, 17)), RegistryKey), iff(isempty(RegistryValueName), '
     '"", strcat("\\\\", RegistryValueName)))\n'
     '| where TargetObject startswith "HKLM\\\\System\\\\CurrentControlSet\\\\Services\\\\"'),
    (rule("category: registry_event", "EventType: SetValue", r"Image|endswith: '\reg.exe'"), None,
     'DeviceRegistryEvents\n| extend EventType = case(ActionType == "RegistryKeyCreated", "CreateKey", ActionType == '
     '"RegistryKeyDeleted", "DeleteKey", ActionType == "RegistryValueSet", "SetValue", ActionType == '
     '"RegistryValueDeleted", "DeleteValue", "")\n| where (EventType =~ "SetValue" and InitiatingProcessFolderPath '
     'endswith "\\\\reg.exe")'),
    # Sysmon's User (DOMAIN\user) and Hashes (SHA1=…,MD5=…,SHA256=…) from the table's columns
    (rule("category: process_creation", "User|contains: AUTHORI", "Hashes|contains: 'SHA256=AB12'"), None,
     'DeviceProcessEvents\n| extend Hashes = trim_end(",", strcat(iff(isempty(SHA1), "", strcat("SHA1=", toupper(SHA1), '
     '",")), iff(isempty(MD5), "", strcat("MD5=", toupper(MD5), ",")), iff(isempty(SHA256), "", strcat("SHA256=", '
     'toupper(SHA256), ",")))), User = iff(isempty(AccountDomain) or isempty(AccountName), AccountName, '
     'strcat(AccountDomain, "\\\\", AccountName))\n| where (User contains "AUTHORI" and Hashes contains "SHA256=AB12")'),
    (rule("category: process_creation", "LogonId: '0x3e7'"), None,
     'DeviceProcessEvents\n| extend LogonId = iff(isnull(LogonId), "", strcat("0x", tohex(LogonId)))\n'
     '| where LogonId =~ "0x3e7"'),
    # DeviceEvents: each source its ActionType's rows, fields inside AdditionalFields as members
    (rule("category: pipe_created", r"PipeName|startswith: '\msagent_'", r"Image|endswith: '\rundll32.exe'"), None,
     'DeviceEvents\n| where ActionType == "NamedPipeEvent"\n| extend PipeName = iff(tostring(AdditionalFields.PipeName) '
     'startswith "\\\\Device\\\\NamedPipe", substring(tostring(AdditionalFields.PipeName), 17), '
     'tostring(AdditionalFields.PipeName))\n| where (PipeName startswith "\\\\msagent_" and InitiatingProcessFolderPath '
     'endswith "\\\\rundll32.exe")'),
    (rule("category: dns_query", "QueryName|endswith: .onion"), None,
     'DeviceEvents\n| where ActionType == "DnsQueryResponse"\n| extend QueryName = '
     'tostring(AdditionalFields.DnsQueryString)\n| where QueryName endswith ".onion"'),
    (rule("category: driver_load", r"ImageLoaded|endswith: '\evil.sys'"), "xdr",
     'DeviceEvents\n| where ActionType == "DriverLoad"\n| where FolderPath endswith "\\\\evil.sys"'),
    (rule("category: create_remote_thread", r"SourceImage|endswith: '\rundll32.exe'",
          r"TargetImage|endswith: '\lsass.exe'"), "xdr",
     'DeviceEvents\n| where ActionType == "CreateRemoteThreadApiCall"\n| where (InitiatingProcessFolderPath endswith '
     '"\\\\rundll32.exe" and FolderPath endswith "\\\\lsass.exe")'),
    (rule("category: process_access", r"TargetImage|endswith: '\lsass.exe'", "SourceUser|startswith: 'NT AUTHORITY'"),
     "xdr",
     'DeviceEvents\n| where ActionType == "OpenProcessApiCall"\n| extend SourceUser = '
     'iff(isempty(InitiatingProcessAccountDomain) or isempty(InitiatingProcessAccountName), '
     'InitiatingProcessAccountName, strcat(InitiatingProcessAccountDomain, "\\\\", InitiatingProcessAccountName))\n'
     '| where (FolderPath endswith "\\\\lsass.exe" and SourceUser startswith "NT AUTHORITY")'),
    # without --binding, a source whose rules Defender mostly cannot say (process_access: GrantedAccess, CallTrace)
    # takes Sysmon's own events in WindowsEvent
    (rule("category: process_access", "GrantedAccess: '0x1010'"), None,
     'WindowsEvent\n| where Channel == "Microsoft-Windows-Sysmon/Operational"\n| where EventID == 10\n'
     '| extend EventDataJson = parse_json(EventData)\n| where tostring(EventDataJson.GrantedAccess) =~ "0x1010"\n'
     '| project-away EventDataJson'),
    (rule("category: registry_delete", "ProcessId: 4"), None,
     'DeviceRegistryEvents\n| where ActionType in ("RegistryKeyDeleted", "RegistryValueDeleted")\n'
     '| where InitiatingProcessId == 4'),
    # SecurityEvent: the Security service as it is, and 4688 as process creation with 4688's own column names
    (rule("service: security", "EventID: 4624", "LogonType: 10", "TargetUserName|endswith: $"), None,
     'SecurityEvent\n| where (todouble(EventID) == 4624 and todouble(LogonType) == 10 and TargetUserName endswith "$")'),
    # Security 4657 as registry_set: Sysmon's path, data and operation from the event's kernel path and message codes
    (rule("category: registry_set", r"TargetObject|endswith: '\Audit\ProcessCreationIncludeCmdLine_Enabled'",
          "Details: 'DWORD (0x00000000)'", r"Image|endswith: '\reg.exe'"), "SecurityEvent",
     'SecurityEvent\n| where EventID == 4657\n| where OperationType in ("%%1904", "%%1905")\n| extend Details = '
     'case(NewValueType =~ "%%1876", strcat("DWORD (0x", tohex(tolong(NewValue), 8), ")"), NewValueType =~ "%%1883", '
     'strcat("QWORD (0x", tohex(binary_shift_right(tolong(NewValue), 32), 8), "-0x", tohex(binary_and(tolong(NewValue), '
     '4294967295), 8), ")"), NewValueType =~ "%%1875", "Binary Data", NewValue), TargetObject = strcat(case(ObjectName '
     'startswith "\\\\REGISTRY\\\\MACHINE\\\\SYSTEM\\\\ControlSet001", strcat("HKLM\\\\System\\\\CurrentControlSet", '
     'substring(ObjectName, 38)), ObjectName startswith "\\\\REGISTRY\\\\MACHINE", strcat("HKLM", substring(ObjectName, '
     '17)), ObjectName startswith "\\\\REGISTRY\\\\USER", strcat("HKU", substring(ObjectName, 14)), ObjectName), '
     'iff(isempty(ObjectValueName), "", strcat("\\\\", ObjectValueName)))\n| where (TargetObject endswith '
     '"\\\\Audit\\\\ProcessCreationIncludeCmdLine_Enabled" and Details =~ "DWORD (0x00000000)" and ProcessName endswith '
     '"\\\\reg.exe")'),
    # ASIM: the unifying parsers' normalised columns; the acting process is the parent in process creation, and the
    # import hash has a column there
    (rule("category: process_creation", r"Image|endswith: '\rundll32.exe'", r"ParentImage|endswith: '\winword.exe'",
          "User|contains: AUTHORI", "Hashes|contains: 'IMPHASH=AB12'"), "asim",
     'imProcessCreate\n| where EventType == "ProcessCreated"\n| extend Hashes = trim_end(",", strcat(iff(isempty('
     'TargetProcessSHA1), "", strcat("SHA1=", toupper(TargetProcessSHA1), ",")), iff(isempty(TargetProcessMD5), "", '
     'strcat("MD5=", toupper(TargetProcessMD5), ",")), iff(isempty(TargetProcessSHA256), "", strcat("SHA256=", '
     'toupper(TargetProcessSHA256), ",")), iff(isempty(TargetProcessIMPHASH), "", strcat("IMPHASH=", '
     'toupper(TargetProcessIMPHASH), ","))))\n| where (TargetProcessName endswith "\\\\rundll32.exe" and '
     'ActingProcessName endswith "\\\\winword.exe" and TargetUsername contains "AUTHORI" and Hashes contains '
     '"IMPHASH=AB12")'),
    (rule("category: dns_query", "QueryName|endswith: .onion", r"Image|endswith: '\powershell.exe'"), "asim",
     'imDns\n| where (DnsQuery endswith ".onion" and SrcProcessName endswith "\\\\powershell.exe")'),
    # WindowsEvent: System fields are columns, EventData's named fields members of its dynamic EventData
    (rule("category: ps_script", "ScriptBlockText|contains: Invoke-Mimikatz", "Computer: dc1"), None,
     'WindowsEvent\n| where Channel in ("Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational")\n'
     '| where EventID == 4104\n| extend EventDataJson = parse_json(EventData)\n'
     '| where (tostring(EventDataJson.ScriptBlockText) contains "Invoke-Mimikatz" and Computer =~ "dc1")\n'
     '| project-away EventDataJson'),
    (rule("category: process_creation", r"Image|endswith: '\rundll32.exe'", r"ParentImage|endswith: '\winword.exe'",
          "CommandLine|contains: ',#'", "MandatoryLabel: S-1-16-16384"), "SecurityEvent",
     'SecurityEvent\n| where EventID == 4688\n| where (NewProcessName endswith "\\\\rundll32.exe" and '
     'ParentProcessName endswith "\\\\winword.exe" and CommandLine contains ",#" and MandatoryLabel =~ "S-1-16-16384")'),
]


@pytest.mark.parametrize("text,binding,expected", CASES)
def test_windows_rule_to_kql(text: str, binding: str | None, expected: str, tmp_path: Path) -> None:
    assert compile_kql(compile_rule(tmp_path, text), binding) == expected


@pytest.mark.parametrize("text,binding,message", [
    # Defender records no import hash: a value naming one could never match, wherever it sits in the rule
    (rule("category: process_creation", "Hashes|contains: 'IMPHASH=AB'"), None,
     "field 'Hashes' compared with \"IMPHASH=AB\": the DeviceProcessEvents table has no IMPHASH"),
    (rule("category: driver_load", "Hashes|contains: ['SHA256=AB', 'IMPHASH=CD']"), "xdr",
     "field 'Hashes' compared with \"IMPHASH=CD\": the DeviceEvents table has no IMPHASH"),
    (rule("category: image_load", "Hashes|contains: 'imphash=cd'"), None,
     "the DeviceImageLoadEvents table has no IMPHASH"),
    # which hashes Sysmon lists, and their order, are its configuration's: only a substring match keeps its meaning
    (rule("category: process_creation", "Hashes|endswith: 'SHA256=AB'"), None,
     "field 'Hashes' can only be matched with contains on the DeviceProcessEvents table"),
    (rule("category: process_creation", "Hashes: 'MD5=AB'"), "asim",
     "field 'Hashes' can only be matched with contains on the imProcessCreate table"),
    # under `not` too: the filter could never hold, so the rule would fire on every row it meant to exclude
    ("title: t\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    Image|endswith: "
     "'\\x.exe'\n  filter:\n    Hashes|contains: 'IMPHASH=AB'\n  condition: sel and not filter\n", None,
     "field 'Hashes' compared with \"IMPHASH=AB\""),
    # Sysmon 10's GrantedAccess is what the handle got, Defender's DesiredAccess what was asked; no call trace
    (rule("category: process_access", "GrantedAccess: '0x1010'"), "xdr",
     "field 'GrantedAccess' has no column in the DeviceEvents table"),
    (rule("category: process_access", "CallTrace|contains: UNKNOWN"), "xdr",
     "field 'CallTrace' has no column in the DeviceEvents table"),
    (rule("category: create_remote_thread", "StartModule|endswith: '.dll'"), "xdr",
     "field 'StartModule' has no column in the DeviceEvents table"),
    (rule("category: ps_script", "ScriptBlockText|contains: x"), "xdr",
     "source 'windows.ps_script' has no Sentinel binding 'xdr'"),
    (rule("category: registry_event", "NewName: x"), None,
     "field 'NewName' has no column in the DeviceRegistryEvents table"),
    (rule("category: network_connection", "SourceHostname: x"), None,
     "field 'SourceHostname' has no column in the DeviceNetworkEvents table"),
    (rule("category: image_load", "OriginalFileName: x.dll"), None,
     "field 'OriginalFileName' has no column in the DeviceImageLoadEvents table"),
    (rule("category: process_creation", "OriginalFileName: x.exe"), "SecurityEvent",
     "field 'OriginalFileName' has no column in the SecurityEvent table"),
    (rule("category: file_event", "TargetFilename: x"), "SecurityEvent",
     "source 'windows.file_event' has no Sentinel binding 'SecurityEvent'"),
    (rule("service: security", "EventID: 4624"), "xdr", "source 'windows.security' has no Sentinel binding 'xdr'"),
    # ASIM fixes no notation for a DWORD's data, and its process ids are text
    (rule("category: registry_set", "Details: 'DWORD (0x00000001)'"), "asim",
     "field 'Details' has no column in the imRegistry table"),
    (rule("category: process_creation", "ProcessId: 4"), "asim",
     "field 'ProcessId' has no column in the imProcessCreate table"),
    (rule("service: system", "Data|contains: x"), None, "field 'Data' has no column in the WindowsEvent table"),
])
def test_what_a_table_cannot_say_is_refused_by_name(text: str, binding: str | None, message: str,
                                                    tmp_path: Path) -> None:
    with pytest.raises(CompileError) as exc:
        compile_kql(compile_rule(tmp_path, text), binding)
    assert message in str(exc.value)


def test_windows_queries_pass_kusto_language() -> None:
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")
    results = check_queries([(f"case {i}", q) for i, (_, _, q) in enumerate(CASES)], [])
    assert [[d.message for d in r] for r in results] == [[] for _ in CASES]
    # a misspelt column is caught, so the check can fail
    (bad,) = check_queries([("bad", "DeviceProcessEvents\n| where FolderPat endswith 'x'")], [])
    assert any(d.code == "KS142" for d in bad)


def test_generated_bindings_are_up_to_date(tmp_path: Path) -> None:
    """sources/bindings/windows_*.sentinel_*.yml are what tools/gen_sentinel_bindings.py writes."""
    import subprocess
    import sys

    shared = shared_path("reference", "sentinel", "tables").parents[2]
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "sources" / "bindings").mkdir(parents=True)
    for p in (root / "sources").glob("windows_*.yml"):
        (tmp_path / "sources" / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([sys.executable, str(root / "tools" / "gen_sentinel_bindings.py"), "--shared", str(shared)],
                   check=True, cwd=tmp_path)
    made = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "sources" / "bindings").glob("*.yml")}
    have = {p.name: p.read_text(encoding="utf-8") for p in (root / "sources" / "bindings").glob("windows_*.sentinel_*.yml")}
    assert made == have and len(made) > 80


def test_a_row_outside_the_binding_filter_is_not_a_row_of_the_source() -> None:
    b = builtin_bindings()[("windows.process_creation", "SecurityEvent")]
    assert row_selected({"EventID": 4688}, b) and row_selected({"EventID": "4688"}, b)
    assert not row_selected({"EventID": 4624}, b) and not row_selected({}, b)
    row = record_to_row({"Image": r"C:\x.exe", "ParentImage": r"C:\p.exe", "TimeCreated": "2024-01-02T03:04:05Z"}, b)
    assert row["EventID"] == 4688 and row["NewProcessName"] == r"C:\x.exe" and row["ParentProcessName"] == r"C:\p.exe"
    assert row_to_record(row, b) == {"EventID": 4688, "Image": r"C:\x.exe", "ParentImage": r"C:\p.exe",
                                     "TimeCreated": "2024-01-02T03:04:05Z"}


# computed fields read backwards (a table row -> Sysmon's value) and forwards (Sysmon's value -> the row's columns)
COMPUTED_ROWS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("windows.process_creation", "User", {"AccountDomain": "NT AUTHORITY", "AccountName": "SYSTEM"},
     {"User": "NT AUTHORITY\\SYSTEM"}),
    ("windows.process_creation", "User", {"AccountDomain": "", "AccountName": "bob"}, {"User": "bob"}),
    ("windows.process_creation", "Hashes", {"SHA1": "", "MD5": "ab12", "SHA256": "cd34"},
     {"Hashes": "MD5=AB12,SHA256=CD34"}),
    ("windows.pipe_created", "PipeName", {"AdditionalFields": {"PipeName": "\\Device\\NamedPipe\\msagent_1"}},
     {"PipeName": "\\msagent_1"}),
    ("windows.dns_query", "QueryName", {"AdditionalFields": {"DnsQueryString": "x.onion"}}, {"QueryName": "x.onion"}),
    ("windows.registry_event", "EventType", {"ActionType": "RegistryValueSet"}, {"EventType": "SetValue"}),
    ("windows.process_creation", "LogonId", {"LogonId": 999}, {"LogonId": "0x3e7"}),
]


# (source, binding, field, the table's columns, Sysmon's value): 4657's data types are message codes
COMPUTED_SECURITY: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("windows.registry_set", "Details", {"NewValue": "1089", "NewValueType": "%%1876"},
     {"Details": "DWORD (0x00000441)"}),
    ("windows.registry_set", "Details", {"NewValue": "C:\\x.exe", "NewValueType": "%%1873"}, {"Details": "C:\\x.exe"}),
    ("windows.registry_set", "TargetObject", {"ObjectName": "\\REGISTRY\\MACHINE\\SOFTWARE\\Run",
                                              "ObjectValueName": "x"}, {"TargetObject": "HKLM\\SOFTWARE\\Run\\x"}),
    ("windows.registry_event", "EventType", {"OperationType": "%%1906"}, {"EventType": "DeleteValue"}),
    ("windows.registry_set", "User", {"SubjectDomainName": "CORP", "SubjectUserName": "bob"}, {"User": "CORP\\bob"}),
]


@pytest.mark.parametrize("source,binding,field,columns,record",
                         [(s, "xdr", f, c, r) for s, f, c, r in COMPUTED_ROWS]
                         + [(s, "SecurityEvent", f, c, r) for s, f, c, r in COMPUTED_SECURITY])
def test_computed_fields_read_both_ways(source: str, binding: str, field: str, columns: dict[str, Any],
                                        record: dict[str, Any]) -> None:
    b = builtin_bindings()[(source, binding)]
    assert {k: v for k, v in row_to_record(columns, b).items() if k == field} == record
    row = record_to_row(record, b)
    assert {k: row[k] for k in columns} == columns  # Defender's hashes in lower case, as the table writes them


# --- proof: regression events as table rows give the executor the same rows ----------------------------------------

def _cases() -> list[Path]:
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "windows" / "regression_data" / "rules"
    return sorted(root.rglob("info.yml")) if root.exists() else []


def _rule_file(rule_id: str) -> Path:
    for f in shared_path("data", "sigma", "rules", "windows").rglob("*.yml"):
        if re.search(rf"^id:\s*{rule_id}\s*$", f.read_text(encoding="utf-8"), re.M | re.I):
            return f
    raise AssertionError(rule_id)


def _mapped(rows: list[dict[str, Any]], fields: list[str]) -> list[str]:
    return sorted(orjson.dumps({k: r.get(k) for k in fields}, option=orjson.OPT_SORT_KEYS).decode() for r in rows)


@pytest.mark.parametrize("binding", ["xdr", "SecurityEvent", "WindowsEvent", "asim"])
def test_regression_events_as_table_rows_give_the_same_rows(binding: str, tmp_path: Path) -> None:
    """Every regression case whose rule the binding can say: its EVTX's records of the rule's source, written as
    the table's rows (forwards), read by the executor through the binding (backwards): the same rows, with the same
    values in every field the binding maps."""
    shared_path("data", "windows", "regression_data")
    ran = 0
    for info in _cases():
        meta = yaml.safe_load(info.read_text(encoding="utf-8"))
        rule_ir = compile_file(_rule_file(meta["rule_metadata"][0]["id"].lower())).rule
        assert rule_ir is not None
        try:
            compile_kql(rule_ir, binding)
        except CompileError:
            continue  # the table cannot say this rule (refused by name; counted in docs/backends/sentinel.md)
        b = builtin_bindings()[(rule_ir.pipeline.source.name, binding)]
        (evtx,) = info.parent.glob("*.evtx")
        src = builtin_sources()[b.source]
        # the EVTX's records the table holds (SecurityEvent: the Security channel's only), as the table's rows
        kept, rows = [], []
        for rec in iter_events(evtx, lambda m: None):
            for canonical in select_records(src, [rec]):
                row = record_to_row(canonical, b)
                if row_selected(row, b):
                    kept.append(rec)
                    rows.append(row)
        if not kept:
            continue
        raw_file, rows_file = tmp_path / f"{info.parent.name}.raw.ndjson", tmp_path / f"{info.parent.name}.ndjson"
        raw_file.write_bytes(b"".join(orjson.dumps(r, default=str) + b"\n" for r in kept))
        rows_file.write_bytes(b"".join(orjson.dumps(r, default=str) + b"\n" for r in rows))
        raw = run_rule(rule_ir, [raw_file], NOW, workers=1)
        shaped = run_rule(rule_ir, [rows_file], NOW, workers=1, binding=b)
        fields = [k for k in b.columns if not k.startswith("_") and k != "TimeCreated"]
        if members_column(b) is not None:  # WindowsEvent: every other field of the event is a member of EventData
            skip = {"TimeCreated", *b.extra.get("not_members", ())}
            fields += sorted({k for r in raw.rows for k in r if k not in b.columns and k not in skip})
        assert _mapped(shaped.rows, fields) == _mapped(raw.rows, fields), info.parent.name
        ran += bool(raw.rows)
    assert ran >= {"asim": 80, "xdr": 91, "SecurityEvent": 15, "WindowsEvent": 99}[binding]  # of 99; others refused or no rows  # of the 99 cases (the others: refused by name, or no rows there)


# --- a second engine: duckdb-kql runs the computed fields' KQL over the table rows and must give the executor's rows -

def _sysmon(event_id: int, computer: str, **fields: str) -> dict[str, Any]:
    return {"EventID": event_id, "Channel": "Microsoft-Windows-Sysmon/Operational",
            "TimeCreated": "2024-05-01T10:00:00Z", "Computer": computer, **fields}


# (rule, binding, Sysmon records: each its own Computer, which is the row's DeviceName)
SECOND_ENGINE: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("title: t\nlogsource: {product: windows, category: process_creation}\ndetection:\n  a:\n"
     "    Hashes|contains: 'MD5=BB22'\n  b:\n    User|contains: AUTHORI\n  c:\n    Hashes|contains: 'SHA256=CC33'\n"
     "  condition: (a and not b) or c\n", "xdr",
     [_sysmon(1, "h1", Image="C:\\x.exe", User="NT AUTHORITY\\SYSTEM",
              Hashes="SHA1=AA11,MD5=BB22,SHA256=CC33,IMPHASH=DD44"),
      _sysmon(1, "h2", Image="C:\\y.exe", User="CORP\\bob", Hashes="MD5=BB22"),
      _sysmon(1, "h3", Image="C:\\z.exe", User="NT AUTHORITY\\SYSTEM", Hashes="MD5=BB22"),
      _sysmon(1, "h4", Image="C:\\w.exe", User="bob")]),
    (rule("category: pipe_created", r"PipeName|startswith: '\msagent_'", "User|contains: AUTHORI"), "xdr",
     [_sysmon(17, "h1", Image="C:\\r.exe", PipeName="\\msagent_12", User="NT AUTHORITY\\SYSTEM"),
      _sysmon(17, "h2", Image="C:\\x.exe", PipeName="\\other", User="NT AUTHORITY\\SYSTEM"),
      _sysmon(18, "h3", Image="C:\\y.exe", PipeName="\\msagent_99", User="CORP\\ann")]),
    (rule("category: dns_query", "QueryName|endswith: .onion"), "xdr",
     [_sysmon(22, "h1", Image="C:\\x.exe", QueryName="abc.onion"), _sysmon(22, "h2", QueryName="example.com")]),
    (rule("category: registry_event", "EventType: DeleteValue", r"TargetObject|contains: '\Run\'"), "xdr",
     [_sysmon(12, "h1", EventType="DeleteValue", TargetObject="HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\x"),
      _sysmon(13, "h2", EventType="SetValue", TargetObject="HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\y",
              Details="C:\\y.exe"),
      _sysmon(12, "h3", EventType="CreateKey", TargetObject="HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run")]),
]


@pytest.mark.parametrize("text,binding,records", SECOND_ENGINE)
def test_computed_fields_give_duckdb_kql_the_executors_rows(text: str, binding: str, records: list[dict[str, Any]],
                                                            tmp_path: Path) -> None:
    import kql_engine

    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    rule_ir = compile_rule(tmp_path, text)
    b = builtin_bindings()[(rule_ir.pipeline.source.name, binding)]
    logs = tmp_path / "events.ndjson"
    logs.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    expected = sorted(r["Computer"] for r in run_rule(rule_ir, [logs], NOW, workers=1).rows)
    con = kql_engine.connect(b, [logs], {})
    got = sorted(r["DeviceName"] for r in kql_engine.run(con, kql_engine.portable(compile_kql(rule_ir, binding)), NOW))
    assert got == expected and expected  # every case fires on some rows and not on others
    assert len(expected) < len(records)
