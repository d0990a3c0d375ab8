"""Generate sources/bindings/windows_*.sentinel_*.yml: Windows sources as Microsoft Sentinel stores them.

Run from the repository root, with the project's shared/ data beside it:

    python tools/gen_sentinel_bindings.py [--shared ../shared]

Two bindings per source where the table holds that source's events:
- `xdr` (the default): the Microsoft Defender XDR tables as Sentinel ingests them (DeviceProcessEvents,
  DeviceFileEvents, DeviceRegistryEvents, DeviceImageLoadEvents, DeviceNetworkEvents);
- `SecurityEvent`: the Windows Security channel as the Security Events connector stores it (the whole
  `windows.security` service, and Security 4688 as `windows.process_creation`).

Inputs: the table schemas in shared/reference/sentinel/tables/<Table>.schema.json (Azure Monitor Logs reference, the
Sentinel form with TimeGenerated; see its SOURCES.md) and the sources' own field lists (sources/windows_*.yml).
The column maps below are the decisions docs/backends/sentinel.md explains, field by field; a canonical field not
mapped here has no column, and a rule that reads it is refused with the field named. pySigma's microsoft_xdr
pipeline (AttackIQ/pySigma-backend-kusto, sigma/pipelines/microsoftxdr/mappings.py @ c83f737a) maps more fields;
where its mapping changes what a rule means it is left out here, and the doc says why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

MS = "https://learn.microsoft.com/defender-xdr/advanced-hunting-{}-table"
AZ = "https://learn.microsoft.com/azure/azure-monitor/reference/tables/{}"

# Columns every Device* table has, for the Sysmon System fields.
DEVICE_COMMON = {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated", "Computer": "DeviceName"}

# The acting process of Sysmon events other than 1 (Image = the process that did it) is the initiating process.
ACTOR = {"Image": "InitiatingProcessFolderPath", "ProcessId": "InitiatingProcessId"}

PROCESS = {
    **DEVICE_COMMON,
    "Image": "FolderPath",  # full path incl. the file name, as Sysmon's Image
    "CommandLine": "ProcessCommandLine",
    "ProcessId": "ProcessId",
    "ParentImage": "InitiatingProcessFolderPath",
    "ParentCommandLine": "InitiatingProcessCommandLine",
    "ParentProcessId": "InitiatingProcessId",
    "IntegrityLevel": "ProcessIntegrityLevel",
    "OriginalFileName": "ProcessVersionInfoOriginalFileName",
    "Description": "ProcessVersionInfoFileDescription",
    "Product": "ProcessVersionInfoProductName",
    "Company": "ProcessVersionInfoCompanyName",
}

FILE = {**DEVICE_COMMON, **ACTOR, "TargetFilename": "FolderPath"}

# Sysmon 7: Image is the process that loaded the module, ImageLoaded the module. Sysmon's OriginalFileName,
# Description, Product, Company describe the loaded module; DeviceImageLoadEvents has no version info for it (only
# for the initiating process), so they stay unmapped.
IMAGE_LOAD = {**DEVICE_COMMON, **ACTOR, "ImageLoaded": "FolderPath"}

NETWORK = {
    **DEVICE_COMMON,
    **ACTOR,
    "Protocol": "Protocol",
    "SourceIp": "LocalIP",
    "SourcePort": "LocalPort",
    "DestinationIp": "RemoteIP",
    "DestinationPort": "RemotePort",
    "DestinationHostname": "RemoteUrl",
}

REGISTRY = {**DEVICE_COMMON, **ACTOR}

# Sysmon's TargetObject is key\value name with an abbreviated hive (HKLM\…); DeviceRegistryEvents splits it into
# RegistryKey (HKEY_LOCAL_MACHINE\…, ControlSet001 for CurrentControlSet) and RegistryValueName. Sysmon's Details
# ("DWORD (0x00000001)") is RegistryValueData in Sysmon's notation. Both are computed (compiler.bindings
# COMPUTED_KINDS); value_events says which rows' last path segment is a value name (record_to_row's direction).
HIVES = [["HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001", "HKLM\\System\\CurrentControlSet"],
         ["HKEY_LOCAL_MACHINE", "HKLM"], ["HKEY_USERS", "HKU"], ["HKEY_CURRENT_USER", "HKU"]]


def registry_path(value_events: bool | list[str]) -> dict[str, Any]:
    return {"kind": "registry_path", "key": "RegistryKey", "value": "RegistryValueName", "hives": HIVES,
            "value_events": value_events}


DETAILS = {"kind": "registry_data", "data": "RegistryValueData", "type": "RegistryValueType"}
# Sysmon 12-14's EventType names the operation; DeviceRegistryEvents says it by ActionType (RegistryKeyRenamed is not
# mapped: Microsoft's pages do not list the ActionType values, and the rename's new name has no column either)
EVENT_TYPE = {"kind": "value_map", "column": "ActionType",
              "map": {"RegistryKeyCreated": "CreateKey", "RegistryKeyDeleted": "DeleteKey",
                      "RegistryValueSet": "SetValue", "RegistryValueDeleted": "DeleteValue"}}


def account(prefix: str) -> dict[str, Any]:
    """Sysmon's `DOMAIN\\user` from a table's `<prefix>AccountDomain` and `<prefix>AccountName`."""
    return {"kind": "account", "domain": f"{prefix}AccountDomain", "name": f"{prefix}AccountName"}


# Sysmon's Hashes from the table's hash columns of the same file; Defender records no import hash, so a rule value
# naming IMPHASH is refused (it could never match), and the rest keeps Sysmon's contains-semantics
HASHES = {"kind": "hashes", "algorithms": [["SHA1", "SHA1"], ["MD5", "MD5"], ["SHA256", "SHA256"]],
          "lacks": ["IMPHASH"], "contains_only": True}
ACTOR_USER = {"User": account("InitiatingProcess")}
# DeviceEvents rows keep an action's details in the dynamic AdditionalFields column
PIPE_NAME = {"kind": "member", "column": "AdditionalFields", "member": "PipeName",
             "strip_prefix": "\\Device\\NamedPipe"}
QUERY_NAME = {"kind": "member", "column": "AdditionalFields", "member": "DnsQueryString"}
COMPUTED: dict[str, dict[str, dict[str, Any]]] = {
    # LogonId: the new process's logon session (the table's long; Sysmon's hex text, `0x3e7`)
    "process_creation": {"User": account(""), "ParentUser": account("InitiatingProcess"), "Hashes": HASHES,
                         "LogonId": {"kind": "hex", "column": "LogonId"}},
    "file_event": ACTOR_USER,
    "file_delete": ACTOR_USER,
    "image_load": {**ACTOR_USER, "Hashes": HASHES},
    "registry_event": {"TargetObject": registry_path(["SetValue", "DeleteValue"]), "Details": DETAILS,
                       "EventType": EVENT_TYPE, **ACTOR_USER},
    "registry_add": {"TargetObject": registry_path(False), "EventType": EVENT_TYPE, **ACTOR_USER},
    "registry_delete": {"TargetObject": registry_path(["DeleteValue"]), "EventType": EVENT_TYPE, **ACTOR_USER},
    "registry_set": {"TargetObject": registry_path(True), "Details": DETAILS, "EventType": EVENT_TYPE, **ACTOR_USER},
    # Sysmon 3's Initiated: "true" when the process opened the connection; DeviceNetworkEvents says it by ActionType
    "network_connection": {"Initiated": {"kind": "value_map", "column": "ActionType",
                                         "map": {"ConnectionSuccess": "true", "InboundConnectionAccepted": "false"}},
                           **ACTOR_USER},
    "pipe_created": {"PipeName": PIPE_NAME, **ACTOR_USER},
    "dns_query": {"QueryName": QUERY_NAME, **ACTOR_USER},
    "driver_load": {"Hashes": HASHES},
    "create_remote_thread": {"SourceUser": account("InitiatingProcess")},
    "process_access": {"SourceUser": account("InitiatingProcess")},
}

# Sysmon 8 and 10: the source process is the initiating one, the target process the row's own (ProcessId, and
# FolderPath, the target's image with its file name as in the other Device* tables)
THREAD = {**DEVICE_COMMON, "SourceImage": "InitiatingProcessFolderPath", "SourceProcessId": "InitiatingProcessId",
          "TargetImage": "FolderPath", "TargetProcessId": "ProcessId"}

# xdr bindings that are not the source's default: Defender lacks what most of SigmaHQ's rules there read
# (process_access: CallTrace, GrantedAccess; create_remote_thread: StartModule, StartAddress, …; driver_load: the
# import hash), so without --binding those sources take WindowsEvent (Sysmon's own events), which has every field
NOT_DEFAULT = {"process_access", "create_remote_thread", "driver_load"}

# (source, table, column map, fixed row filter {column: [values]}, Microsoft's table page)
XDR: list[tuple[str, str, dict[str, str], dict[str, list[Any]], str]] = [
    ("process_creation", "DeviceProcessEvents", PROCESS, {}, MS.format("deviceprocessevents")),
    ("file_event", "DeviceFileEvents", FILE, {"ActionType": ["FileCreated"]}, MS.format("devicefileevents")),
    ("file_delete", "DeviceFileEvents", FILE, {"ActionType": ["FileDeleted"]}, MS.format("devicefileevents")),
    ("image_load", "DeviceImageLoadEvents", IMAGE_LOAD, {}, MS.format("deviceimageloadevents")),
    ("network_connection", "DeviceNetworkEvents", NETWORK,
     {"ActionType": ["ConnectionSuccess", "InboundConnectionAccepted"]}, MS.format("devicenetworkevents")),
    ("registry_event", "DeviceRegistryEvents", REGISTRY, {}, MS.format("deviceregistryevents")),
    ("registry_add", "DeviceRegistryEvents", REGISTRY, {"ActionType": ["RegistryKeyCreated"]},
     MS.format("deviceregistryevents")),
    ("registry_delete", "DeviceRegistryEvents", REGISTRY,
     {"ActionType": ["RegistryKeyDeleted", "RegistryValueDeleted"]}, MS.format("deviceregistryevents")),
    ("registry_set", "DeviceRegistryEvents", REGISTRY, {"ActionType": ["RegistryValueSet"]},
     MS.format("deviceregistryevents")),
    # DeviceEvents: one table of many actions, each source its ActionType's rows
    ("pipe_created", "DeviceEvents", {**DEVICE_COMMON, **ACTOR}, {"ActionType": ["NamedPipeEvent"]},
     MS.format("deviceevents")),
    ("dns_query", "DeviceEvents", {**DEVICE_COMMON, **ACTOR}, {"ActionType": ["DnsQueryResponse"]},
     MS.format("deviceevents")),
    ("driver_load", "DeviceEvents", {**DEVICE_COMMON, "ImageLoaded": "FolderPath"}, {"ActionType": ["DriverLoad"]},
     MS.format("deviceevents")),
    ("create_remote_thread", "DeviceEvents", THREAD, {"ActionType": ["CreateRemoteThreadApiCall"]},
     MS.format("deviceevents")),
    ("process_access", "DeviceEvents", THREAD, {"ActionType": ["OpenProcessApiCall"]}, MS.format("deviceevents")),
]

# SecurityEvent: Security-Auditing's EventData names are SecurityEvent's own column names (the connector parses
# them out of EventData), so a field of the same name and a compatible type maps to itself.
# System fields SecurityEvent stores in another form, and Log Analytics' own columns (Type is the table's name there)
SECURITY_SAME_NAME_EXCEPT = {"Data", "Level", "Task", "Keywords", "Version", "Type", "TenantId", "SourceSystem",
                             "ManagementGroupName", "TimeGenerated"}
# Security 4688 as process_creation: the source renames 4688's fields to Sigma's (sources/windows_process_creation.yml
# `records:`); SecurityEvent keeps 4688's own names, so the rename is undone here. ProcessId/ParentProcessId stay
# unmapped: SecurityEvent stores 4688's ids as hex text ("0x1a2c"), the source as numbers.
SECURITY_4688 = {
    "Image": "NewProcessName",
    "ParentImage": "ParentProcessName",
    "LogonId": "SubjectLogonId",
}

# Security 4657 ("A registry value was modified", with a SACL auditing Set Value) as registry_set and registry_event:
# ObjectName is the key in the kernel's form (\REGISTRY\MACHINE\…), ObjectValueName the value, OperationType and
# NewValueType message codes (%%1904 value created, %%1905 modified, %%1906 deleted; %%1876 REG_DWORD, …) as the
# event's XML has them. Codes: Microsoft's ASIM registry schema (docs/backends/sentinel.md); sample: OSSEM-DD 4657.
SECURITY_HIVES = [["\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001", "HKLM\\System\\CurrentControlSet"],
                  ["\\REGISTRY\\MACHINE", "HKLM"], ["\\REGISTRY\\USER", "HKU"]]
SECURITY_4657 = {"Image": "ProcessName"}
SECURITY_DETAILS = {"kind": "registry_data", "data": "NewValue", "type": "NewValueType",
                    "types": {"Dword": "%%1876", "Qword": "%%1883", "Binary": "%%1875", "String": "%%1873"}}


def security_registry(value_ops: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {"TargetObject": {"kind": "registry_path", "key": "ObjectName", "value": "ObjectValueName",
                             "hives": SECURITY_HIVES, "value_events": True},
            "Details": SECURITY_DETAILS,
            "EventType": {"kind": "value_map", "column": "OperationType", "map": value_ops},
            "User": {"kind": "account", "domain": "SubjectDomainName", "name": "SubjectUserName"}}


SET_OPS = {"%%1904": "SetValue", "%%1905": "SetValue"}
SECURITY_COMPUTED: dict[str, dict[str, dict[str, Any]]] = {
    "registry_set": security_registry(SET_OPS),
    "registry_event": security_registry({**SET_OPS, "%%1906": "DeleteValue"}),
}
# (source, OperationType codes of its rows)
SECURITY_REGISTRY = [("registry_set", ["%%1904", "%%1905"]), ("registry_event", ["%%1904", "%%1905", "%%1906"])]

# ASIM: the Advanced Security Information Model's unifying parsers (imProcessCreate, imFileEvent, imRegistry, imDns),
# KQL functions whose output columns are the ASim*Logs tables' (Microsoft's normalization schema pages). Kusto.Language
# checks a query over the function as over a table of its columns. The acting process (the one that did it) is
# Sysmon's Image; in process creation it is the parent, the target the new process. *ProcessId columns are text in
# ASIM (Sysmon's are numbers) and stay unmapped; registry Details (RegistryValueData's notation for DWORDs is not
# fixed by the schema) and DestinationHostname too.
ASIM_DOC = "https://learn.microsoft.com/azure/sentinel/normalization-schema-{}"
ASIM_ACTOR = {"Image": "ActingProcessName"}
ASIM_PROCESS = {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated", "Image": "TargetProcessName",
                "CommandLine": "TargetProcessCommandLine", "CurrentDirectory": "TargetProcessCurrentDirectory",
                "IntegrityLevel": "TargetProcessIntegrityLevel", "OriginalFileName": "TargetProcessFileOriginalName",
                "Description": "TargetProcessFileDescription", "Product": "TargetProcessFileProduct",
                "Company": "TargetProcessFileCompany", "FileVersion": "TargetProcessFileVersion",
                "User": "TargetUsername", "ParentImage": "ActingProcessName",
                "ParentCommandLine": "ActingProcessCommandLine", "ParentUser": "ActorUsername"}
ASIM_HASHES = {"kind": "hashes", "algorithms": [["SHA1", "TargetProcessSHA1"], ["MD5", "TargetProcessMD5"],
                                                ["SHA256", "TargetProcessSHA256"], ["IMPHASH", "TargetProcessIMPHASH"]],
               "contains_only": True}
ASIM_FILE = {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated", **ASIM_ACTOR, "User": "ActorUsername",
             "TargetFilename": "TargetFilePath"}
ASIM_REGISTRY = {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated", **ASIM_ACTOR, "User": "ActorUsername"}
ASIM_REGISTRY_PATH = {**registry_path(False), "value": "RegistryValue"}
ASIM_EVENT_TYPE = {**EVENT_TYPE, "column": "EventType"}


def asim_registry(value_events: bool | list[str]) -> dict[str, dict[str, Any]]:
    return {"TargetObject": {**ASIM_REGISTRY_PATH, "value_events": value_events}, "EventType": ASIM_EVENT_TYPE}


# (source, parser function, table of its columns, column map, rows, computed fields, schema page)
ASIM: list[tuple[str, str, str, dict[str, str], dict[str, list[Any]], dict[str, dict[str, Any]], str]] = [
    ("process_creation", "imProcessCreate", "ASimProcessEventLogs", ASIM_PROCESS, {"EventType": ["ProcessCreated"]},
     {"Hashes": ASIM_HASHES}, ASIM_DOC.format("process-event")),
    ("file_event", "imFileEvent", "ASimFileEventLogs", ASIM_FILE, {"EventType": ["FileCreated"]}, {},
     ASIM_DOC.format("file-event")),
    ("file_delete", "imFileEvent", "ASimFileEventLogs", ASIM_FILE, {"EventType": ["FileDeleted"]}, {},
     ASIM_DOC.format("file-event")),
    ("registry_event", "imRegistry", "ASimRegistryEventLogs", ASIM_REGISTRY, {},
     asim_registry(["SetValue", "DeleteValue"]), ASIM_DOC.format("registry-event")),
    ("registry_add", "imRegistry", "ASimRegistryEventLogs", ASIM_REGISTRY, {"EventType": ["RegistryKeyCreated"]},
     asim_registry(False), ASIM_DOC.format("registry-event")),
    ("registry_delete", "imRegistry", "ASimRegistryEventLogs", ASIM_REGISTRY,
     {"EventType": ["RegistryKeyDeleted", "RegistryValueDeleted"]}, asim_registry(["DeleteValue"]),
     ASIM_DOC.format("registry-event")),
    ("registry_set", "imRegistry", "ASimRegistryEventLogs", ASIM_REGISTRY, {"EventType": ["RegistryValueSet"]},
     asim_registry(True), ASIM_DOC.format("registry-event")),
    ("dns_query", "imDns", "ASimDnsActivityLogs", {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated",
     "QueryName": "DnsQuery", "Image": "SrcProcessName", "User": "SrcUsername"}, {}, {}, ASIM_DOC.format("dns")),
]


# WindowsEvent (the Azure Monitor Agent's Windows event table): the System fields are columns, every named EventData
# field a member of the dynamic EventData column under its own name. Classic events' unnamed data (`Data`, the
# readers' joined text) has no member there, nor has EventRecordID a column of its type (EventRecordId is text).
WINDOWS_EVENT = {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated", "EventID": "EventID", "Channel": "Channel",
                 "Computer": "Computer", "Provider_Name": "Provider", "Level": "EventLevel", "Task": "Task",
                 "Version": "Version", "Keywords": "Keywords"}
NOT_MEMBERS = ["Data", "EventRecordID"]


def table_schema(shared: Path, table: str) -> dict[str, str]:
    doc = json.loads((shared / "reference" / "sentinel" / "tables" / f"{table}.schema.json").read_text())
    return {c["name"]: c["type"] for c in doc["columns"]}


def source_doc(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load(Path("sources", f"windows_{name.replace('-', '_')}.yml").read_text()))


def source_fields(name: str) -> dict[str, str]:
    """The source's fields and types; an untyped source (no field dictionary) has the System fields."""
    fields = source_doc(name).get("fields")
    if fields is None:
        return {k: "any" for k in WINDOWS_EVENT}
    return {str(k): str(v) for k, v in fields.items()}


def compatible(canonical: str, physical: str) -> bool:
    numbers = {"int", "long", "real"}
    return canonical == physical or (canonical in numbers and physical in numbers) or (
        canonical == "string" and physical == "string")


def write(out: Path, source: str, name: str, table: str, columns: dict[str, str], rows: dict[str, list[Any]],
          schema: dict[str, str], doc: str, connector: str, default: bool, note: str,
          members: tuple[str, list[str]] | None = None,
          computed_fields: dict[str, dict[str, Any]] | None = None) -> None:
    fields = source_fields(source)
    unknown = sorted(k for k in columns if k not in fields and not k.startswith("_"))
    if unknown:
        raise SystemExit(f"windows.{source}: {unknown} are not fields of the source")
    derived = (COMPUTED if name == "xdr" else SECURITY_COMPUTED if name == "SecurityEvent" else {}).get(source, {})
    if computed_fields is not None:
        derived = computed_fields
    unknown = sorted(k for k in derived if k not in fields)
    if unknown:
        raise SystemExit(f"windows.{source}: computed {unknown} are not fields of the source")
    from_columns = [str(v) for spec in derived.values() for k, v in spec.items() if k in ("column", "key", "value",
                    "data", "type", "domain", "name")]
    from_columns += [str(c) for spec in derived.values() for _, c in spec.get("algorithms", [])]
    missing = sorted(c for c in [*columns.values(), *rows, *from_columns] if c not in schema)
    if missing:
        raise SystemExit(f"{table}: no columns {missing}")
    lines = [
        "# Generated by tools/gen_sentinel_bindings.py: edit that script, not this file.",
        f"# windows.{source} as Microsoft Sentinel stores it in the {table} table. {note}",
        f"# {doc}",
        "# Read forwards by the KQL backend (canonical field -> column) and backwards by the executor.",
        f"source: windows.{source}",
        f"name: {name}",
        "target: sentinel",
        f"table: {table}",
        "time_column: TimeGenerated",
    ]
    if default:
        lines.append("default: true")
    lines += [
        "# Kusto strings are never null: an absent string field is stored as an empty string (docs/semantics.md).",
        "empty_is_missing: true",
    ]
    if derived:
        lines.append("# canonical fields computed from columns (docs/backends/sentinel.md, Windows: computed fields)")
        lines.append("computed:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in derived.items()]
    if members is not None:
        lines.append("# every field not in columns: is the member of this dynamic column of the same name (but these)")
        lines.append(f"members_of: {members[0]}")
        lines.append(f"not_members: {json.dumps(members[1])}")
    if rows:
        lines.append("# which rows of the table are rows of the source: column -> allowed values")
        lines.append("rows:")
        lines += [f"  {c}: {json.dumps(v)}" for c, v in rows.items()]
    lines.append("columns:")
    lines += [f"  {k}: {v}" for k, v in columns.items()]
    lines.append(f"# the table's columns and KQL types ({AZ.format(table.lower())})")
    lines.append("schema:")
    lines += [f"  {c}: {t}" for c, t in schema.items()]
    if connector:  # none for a parser function (ASIM), which reads whatever feeds it
        lines.append(f"connector: {connector}")
    out.joinpath(f"windows_{source.replace('-', '_')}.sentinel_{name.lower()}.yml").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared", type=Path)
    args = ap.parse_args()
    out = Path("sources", "bindings")
    for source, table, columns, rows, doc in XDR:
        write(out, source, "xdr", table, columns, rows, table_schema(args.shared, table), doc,
              "MicrosoftThreatProtection", source not in NOT_DEFAULT, "Microsoft Defender XDR connector.")
    se = table_schema(args.shared, "SecurityEvent")
    sec_fields = source_fields("security")
    same = {f: f for f, t in sec_fields.items()
            if f in se and f not in SECURITY_SAME_NAME_EXCEPT and compatible(t, se[f])}
    write(out, "security", "SecurityEvent", "SecurityEvent", {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated",
          **same}, {}, se, AZ.format("securityevent"), "SecurityEvents", False,
          "Windows Security Events connector.")
    pc_fields = source_fields("process_creation")
    same = {f: f for f, t in pc_fields.items()
            if f in se and f not in SECURITY_SAME_NAME_EXCEPT and f not in SECURITY_4688 and f not in
            ("ProcessId", "ParentProcessId") and compatible(t, se[f])}
    write(out, "process_creation", "SecurityEvent", "SecurityEvent",
          {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated", **same, **SECURITY_4688}, {"EventID": [4688]}, se,
          AZ.format("securityevent"), "SecurityEvents", False, "Security 4688 (process creation).")
    for source, ops in SECURITY_REGISTRY:
        write(out, source, "SecurityEvent", "SecurityEvent", {"_time": "TimeGenerated", "TimeCreated": "TimeGenerated",
              "Computer": "Computer", **SECURITY_4657}, {"EventID": [4657], "OperationType": ops}, se,
              AZ.format("securityevent"), "SecurityEvents", False, "Security 4657 (a registry value was modified).")
    for source, function, schema_table, columns, rows, fields, doc in ASIM:
        write(out, source, "asim", function, columns, rows, table_schema(args.shared, schema_table), doc,
              "", False, f"ASIM: the {function} parser's output ({schema_table}'s columns).",
              computed_fields=fields)
    windows_event(out, args.shared)


def windows_event(out: Path, shared: Path) -> None:
    """A WindowsEvent binding for every Windows source whose rows are one channel set and EventID set, as written."""
    schema = table_schema(shared, "WindowsEvent")
    for path in sorted(Path("sources").glob("windows_*.yml")):
        doc = yaml.safe_load(path.read_text())
        # the shapes whose fields are the source's own names (process_creation: Sysmon 1; Security 4688's renamed
        # fields are SecurityEvent's binding), by channel (not an ETW provider)
        records = [r for r in doc.get("records") or [] if not r.get("rename")]
        if len(records) != 1 or not records[0].get("channel") or records[0].get("provider"):
            continue
        source = str(doc["name"]).removeprefix("windows.")
        fields = source_fields(source)
        columns = {k: v for k, v in WINDOWS_EVENT.items() if k.startswith("_") or k in fields}
        rows: dict[str, list[Any]] = {"Channel": list(records[0]["channel"])}
        if records[0].get("event_id"):
            rows["EventID"] = list(records[0]["event_id"])
        write(out, source, "WindowsEvent", "WindowsEvent", columns, rows, schema, AZ.format("windowsevent"),
              "WindowsForwardedEvents", False, "Windows events collected by the Azure Monitor Agent.",
              (("EventData", NOT_MEMBERS)))


if __name__ == "__main__":
    main()
