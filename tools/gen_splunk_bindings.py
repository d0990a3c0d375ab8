"""Generate sources/bindings/windows_*.splunk_*.yml: Windows sources as Splunk's Windows add-ons index them.

Run from the repository root:

    python tools/gen_splunk_bindings.py

One binding per Windows source whose records are one event-log channel set (ETW-provider sources such as
file_access have none and are searched as written):
- `sysmon` for the Sysmon channel: the Splunk Add-on for Sysmon, XML rendering (source
  XmlWinEventLog:Microsoft-Windows-Sysmon/Operational), searched through ESCU's `sysmon` macro;
- `wineventlog` for every other channel: the Splunk Add-on for Microsoft Windows, XML rendering (renderXml = 1,
  source XmlWinEventLog:<channel>), the Security and System channels through ESCU's `wineventlog_security` /
  `wineventlog_system` macros, the others by their `source`;
- process_creation has both: Sysmon 1 (`sysmon`, the default) and Security 4688 (`wineventlog`, 4688's own names).

Field names: with XML rendering both add-ons extract every `<Data Name='X'>` of EventData as the field X, and the
System elements by their element names, except that the event id is `EventCode` (docs/backends/splunk.md,
"Windows"). The row filter (`rows:`) becomes base-search terms after the macro (`sysmon` EventCode=1).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"

# System fields as the add-ons extract them from the XML (element name); EventID is EventCode. Provider_Name (an
# attribute, <Provider Name=…>: read by spath, `xml_paths:`), TimeCreated (<TimeCreated SystemTime=…>: refused, use
# _time) and the unnamed Data of classic events (read by rex, `unnamed_data:`) are no add-on field.
SYSTEM = {"_time": "_time", "EventID": "EventCode", "Channel": "Channel", "Computer": "Computer",
          "EventRecordID": "EventRecordID", "Level": "Level", "Task": "Task", "Keywords": "Keywords",
          "Version": "Version"}
UNMAPPED = {"Provider_Name", "TimeCreated", "Data"}

# Security 4688 as process_creation: the source renames 4688's fields to Sigma's (sources/windows_process_creation.yml
# `records:`); the add-on keeps 4688's own names, so the rename is undone. ProcessId/ParentProcessId stay unmapped:
# 4688 carries its ids as hex text (NewProcessId "0x1a2c"), the source as numbers.
SECURITY_4688 = {"Image": "NewProcessName", "ParentImage": "ParentProcessName", "LogonId": "SubjectLogonId"}
SECURITY_4688_UNMAPPED = {"ProcessId", "ParentProcessId"}
# 4688's EventData (https://learn.microsoft.com/windows/security/threat-protection/auditing/event-4688): a Sysmon 1
# field it does not carry (OriginalFileName, Hashes, …) has no field on this binding, and a rule reading it is refused
EVENT_4688 = ["SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "NewProcessId",
              "NewProcessName", "TokenElevationType", "ProcessId", "CommandLine", "TargetUserSid", "TargetUserName",
              "TargetDomainName", "TargetLogonId", "ParentProcessName", "MandatoryLabel"]

# ESCU's macros (splunk/security_content macros/*.yml), as they are written there but restricted to the Windows
# channel (ESCU's `sysmon` also matches Linux Sysmon's syslog source).
MACROS: dict[str, tuple[str, str]] = {
    SYSMON_CHANNEL: ("sysmon", "(sourcetype=\"XmlWinEventLog:Microsoft-Windows-Sysmon/Operational\" OR "
                               "source=\"XmlWinEventLog:Microsoft-Windows-Sysmon/Operational\")"),
    "Security": ("wineventlog_security", "source=\"XmlWinEventLog:Security\""),
    "System": ("wineventlog_system", "source=\"XmlWinEventLog:System\""),
}
DESCRIPTION = ("customer specific splunk configurations(eg- index, source, sourcetype). Replace the macro "
               "definition with configurations for your Splunk Environment.")
SYSMON_DOC = "https://docs.splunk.com/Documentation/AddOns/released/MSSysmon/Sourcetypes"

# contentctl data sources (a pack's `data_sources/`), named as ESCU names them (splunk/security_content
# data_sources/*.yml: "Sysmon EventID 1", "Windows Event Log Security 4688", "Powershell Script Block Logging 4104");
# `{EventID}` is filled per rule with the EventIDs its search selects (backends/spl/contentctl.py). Channels ESCU
# has no data sources for get none, and `export contentctl` refuses their rules with that reason.
SYSMON_TA = {"name": "Splunk Add-on for Sysmon", "url": "https://splunkbase.splunk.com/app/5709", "version": "4.0.2"}
WINDOWS_TA = {"name": "Splunk Add-on for Microsoft Windows", "url": "https://splunkbase.splunk.com/app/742",
              "version": "8.9.0"}
DATA_SOURCES: dict[str, tuple[str, str, str, dict[str, str]]] = {  # channel -> name, source, separator, add-on
    SYSMON_CHANNEL: ("Sysmon EventID {EventID}", f"XmlWinEventLog:{SYSMON_CHANNEL}", "EventID", SYSMON_TA),
    "Security": ("Windows Event Log Security {EventID}", "XmlWinEventLog:Security", "EventCode", WINDOWS_TA),
    "System": ("Windows Event Log System {EventID}", "XmlWinEventLog:System", "EventCode", WINDOWS_TA),
    "Application": ("Windows Event Log Application {EventID}", "XmlWinEventLog:Application", "EventCode",
                    WINDOWS_TA),
    "Microsoft-Windows-PowerShell/Operational": (
        "Powershell Script Block Logging {EventID}", "XmlWinEventLog:Microsoft-Windows-PowerShell/Operational",
        "EventCode", WINDOWS_TA),
}
# contentctl replays a test's attack data as the add-on's input: XmlWinEventLog events (the <Event> XML). The
# fixtures are evtx-JSON or flat NDJSON; writing XML from them would be our guess at what the add-on reads.
NO_REPLAY = ("contentctl replays Windows events as the add-on's XmlWinEventLog XML, and the rule's fixtures are "
             "evtx-JSON / flat NDJSON records")


def data_source(channels: list[str], event_ids: list[int] | None) -> list[str]:
    """The binding's `data_source:` lines, or none where ESCU names no data source for the channel's events."""
    spec = DATA_SOURCES.get(channels[0])
    if spec is None or (channels[0].endswith("PowerShell/Operational") and event_ids != [4104]):
        return []
    name, source, separator, ta = spec
    return [
        "# the contentctl data source a pack built on this binding declares ({EventID}: the rule's EventIDs)",
        "data_source:",
        f"  name: {quote(name)}",
        f"  source: {quote(source)}",
        "  sourcetype: xmlwineventlog",
        f"  separator: {separator}",
        f"  supported_TA: {json.dumps(ta)}",
        "  asset_type: Endpoint",
        "  domain: endpoint",
        "  story: siemforge Windows Detections",
        f"  replay: {quote(NO_REPLAY)}",
    ]
WINDOWS_DOC = "https://docs.splunk.com/Documentation/AddOns/released/Windows/SourcetypesandCIMdatamodelinfo"


def quote(s: str) -> str:
    return json.dumps(s)


def unnamed_data_lines() -> list[str]:
    """Classic events' unnamed `<Data>` elements (PowerShell 400/600/800, many Application events), which Sigma rules
    test as `Data`: the add-on extracts only `<Data Name='…'>` (Splunk_TA_windows transforms.conf
    `[eventdata_xml_data]`, `REGEX = <(?:\\w+)\\sName='([^>]*)'…`), so the search reads them from the raw XML event
    with `rex`, joined by newlines as the executor joins them (backends/executor/windows.py)."""
    return ["# classic events' unnamed <Data> elements (no add-on field): rex reads them from the raw XML event",
            "unnamed_data: Data"]


def named_field_lines(columns: dict[str, str], fields: dict[str, str] | None) -> list[str]:
    """A field the source's dictionary does not list is the add-on's field of that name (EventData's Data Name), as
    the executor reads it from the record; fields the source has but this binding does not carry are refused."""
    not_named = UNMAPPED | set(SYSTEM) | {f for f in fields or {} if f not in columns}
    return ["# a field not in columns: is the add-on's field of that name (EventData's Data Name), but these",
            "named_fields: true",
            f"not_named: {json.dumps(sorted(not_named))}"]


def write(out: Path, source: str, name: str, channels: list[str], event_ids: list[int] | None,
          columns: dict[str, str], named_fields: bool, default: bool, note: str,
          fields: dict[str, str] | None) -> None:
    macro = MACROS.get(channels[0]) if len(channels) == 1 else None
    doc = SYSMON_DOC if channels == [SYSMON_CHANNEL] else WINDOWS_DOC
    lines = [
        "# Generated by tools/gen_splunk_bindings.py: edit that script, not this file.",
        f"# windows.{source} as the Splunk add-on indexes it (XML rendering).{' ' + note if note else ''}",
        f"# {doc}",
        f"source: windows.{source}",
        f"name: {name}",
        "target: splunk",
    ]
    if default:
        lines.append("default: true")
    lines.append("time_column: _time")
    if macro is not None:
        lines.append(f"search: \"`{macro[0]}`\"")
        lines.append("macros:")
        lines.append(f"  {macro[0]}:")
        lines.append(f"    definition: {quote(macro[1])}")
        lines.append(f"    description: {quote(DESCRIPTION)}")
    else:
        terms = " OR ".join(f'source="XmlWinEventLog:{c}"' for c in channels)
        lines.append(f"search: {quote(terms if len(channels) == 1 else '(' + terms + ')')}")
    if event_ids:
        lines.append("# which events of the source type are rows of the source (base-search terms after the macro)")
        lines.append("rows:")
        lines.append(f"  EventCode: {json.dumps(event_ids)}")
    lines += data_source(channels, event_ids)
    if "Provider_Name" in (fields or {"Provider_Name": ""}):
        lines.append("# fields the add-on does not extract, read from the XML event by spath (an attribute: {@Name})")
        lines.append("xml_paths:")
        lines.append("  Provider_Name: Event.System.Provider{@Name}")
    lines += unnamed_data_lines()
    if named_fields:
        lines += named_field_lines(columns, fields)
    lines.append("columns:")
    lines += [f"  {k}: {v}" for k, v in columns.items()]
    out.joinpath(f"windows_{source.replace('-', '_')}.splunk_{name}.yml").write_text("\n".join(lines) + "\n")


# CIM data models (Splunk_SA_CIM) as the Splunk Add-on for Sysmon fills them, queried with tstats
# (https://docs.splunk.com/Documentation/CIM/latest/User/Endpoint). What the add-on puts in each model field is read
# from its own knowledge objects: Splunk_TA_microsoft_sysmon 5.0.0 default/props.conf, transforms.conf,
# eventtypes.conf and tags.conf (docs/semantics.md, decisions 33-35). Each Sigma field maps to the model field the
# add-on computes from it unchanged (FIELDALIAS / EVAL of the same value: process_path = Image, process =
# CommandLine, registry_path = TargetObject, app = Image on Sysmon 3, …) or to an expression over model fields that
# gives its value back exactly (`computed:`); a field the model has no such field for is refused by name: User (the
# add-on's `user` is `replace(User, "(.*)\\(.+)$", "\2")`, the name without its domain), EventType (action:
# created/deleted/modified), Description/Product/Company/FileVersion (no model field), QueryResults (the add-on's
# `answer` splits it); DestinationHostname / SourceHostname are bound only for tests false of `-` and of a missing
# name (Network_Traffic has no dest_host/src_host; `dest` is the host name, or the address where there is none).
# Which rows of the dataset are the source's: the add-on's `action` for the Sysmon registry event (12 CreateKey →
# created, 12 DeleteKey/DeleteValue → deleted, 13 and 14 → modified). Filesystem takes Sysmon 11 as created or
# modified (an overwrite: UtcTime ≠ CreationUtcTime) and Sysmon 23/26 as deleted (ms-sysmon-filemod takes 2, 11, 23,
# 26-29), so file_delete is its `deleted` rows; file_event is every row, deletions included (where the rule's fields
# match them). Network_Traffic and Network_Resolution hold every device's traffic and lookups: the Sysmon source
# (the add-on's eventtypes ms-sysmon-network = its EventCode 3, ms-sysmon-dns = 22) picks the source's rows.
CIM_DOC = "https://docs.splunk.com/Documentation/CIM/latest/User/Endpoint"
ADS_NAME = r":[\w. ]+"  # what the add-on's EVAL-file_path takes out of TargetFilename (its `(:[\w\. ]+)`)
SYSMON_SOURCE = f"XmlWinEventLog:{SYSMON_CHANNEL}"
# Details: the add-on's registry_value_data is the text inside `W (…)` (the whole text when it has no such form), its
# registry_value_type `REG_W` (null otherwise): Details is the two joined again
REGISTRY_DETAILS = {"kind": "split_details", "data": "Registry.registry_value_data",
                    "type": "Registry.registry_value_type"}
# Initiated: the add-on's direction is "outbound" where Initiated is "true", else "inbound" (Sysmon writes true/false)
INITIATED = {"kind": "value_map", "column": "All_Traffic.direction", "map": {"outbound": "true", "inbound": "false"}}
# DestinationHostname / SourceHostname: the add-on's dest (src) is the host name where Sysmon wrote one other than `-`,
# else the address, and the model writes `unknown` for an empty one: the host name is dest where it is neither dest_ip
# nor `unknown`; `-`, an empty name, `unknown` and a missing name all show as missing
HOST_MISSING = ["-", "", "unknown"]
DEST_HOST = {"kind": "unless_equal", "column": "All_Traffic.dest", "other": "All_Traffic.dest_ip", "fill": "unknown",
             "missing_for": HOST_MISSING}
SRC_HOST = {"kind": "unless_equal", "column": "All_Traffic.src", "other": "All_Traffic.src_ip", "fill": "unknown",
            "missing_for": HOST_MISSING}
CIM_DATASETS: dict[str, tuple[str, dict[str, str], list[str], dict[str, dict[str, object]]]] = {
    # dataset → (data model, Sigma → model field, summary_by, computed)
    "Processes": ("Endpoint", {"Image": "process_path", "CommandLine": "process", "ParentImage": "parent_process_path",
                               "ParentCommandLine": "parent_process", "OriginalFileName": "original_file_name",
                               "CurrentDirectory": "process_current_directory",
                               "IntegrityLevel": "process_integrity_level", "Hashes": "process_hash",
                               "ProcessId": "process_id", "ParentProcessId": "parent_process_id",
                               "ProcessGuid": "process_guid", "ParentProcessGuid": "parent_process_guid",
                               "Computer": "dest"},
                  ["dest", "user", "parent_process", "process_name", "process", "process_id", "parent_process_id"], {}),
    "Filesystem": ("Endpoint", {"TargetFilename": "file_path", "Image": "process_path", "ProcessId": "process_id",
                                "ProcessGuid": "process_guid", "Computer": "dest"},
                   ["dest", "file_path", "process_id", "process_guid"], {}),
    "Registry": ("Endpoint", {"TargetObject": "registry_path", "Image": "process_path", "ProcessId": "process_id",
                              "ProcessGuid": "process_guid", "Computer": "dest"},
                 ["dest", "registry_path", "process_id", "process_guid"], {"Details": REGISTRY_DETAILS}),
    # Sysmon 3: app = Image, dest_ip/dest_port/src_ip/src_port/transport aliases, dvc = Computer, process_id and
    # process_guid = ProcessId / ProcessGuid
    "All_Traffic": ("Network_Traffic", {"Image": "app", "DestinationIp": "dest_ip", "DestinationPort": "dest_port",
                                        "SourceIp": "src_ip", "SourcePort": "src_port", "Protocol": "transport",
                                        "ProcessId": "process_id", "ProcessGuid": "process_guid", "Computer": "dvc"},
                    ["dvc", "src_ip", "src_port", "dest_ip", "dest_port", "process_guid"],
                    {"Initiated": INITIATED, "DestinationHostname": DEST_HOST, "SourceHostname": SRC_HOST}),
    # Sysmon 22: query = QueryName, reply_code_id = QueryStatus (aliases)
    "DNS": ("Network_Resolution", {"QueryName": "query", "QueryStatus": "reply_code_id"},
            ["src", "query"], {}),
}
CIM_SOURCES: dict[str, tuple[str, dict[str, list[str]]]] = {  # source → (dataset, rows: model field → values)
    "process_creation": ("Processes", {}),
    "file_event": ("Filesystem", {}),
    "file_delete": ("Filesystem", {"Filesystem.action": ["deleted"]}),
    "registry_add": ("Registry", {"Registry.action": ["created"]}),
    "registry_delete": ("Registry", {"Registry.action": ["deleted"]}),
    "registry_set": ("Registry", {"Registry.action": ["modified"]}),
    "registry_event": ("Registry", {}),
    "network_connection": ("All_Traffic", {"source": [SYSMON_SOURCE]}),
    "dns_query": ("DNS", {"source": [SYSMON_SOURCE]}),
}


def write_cim_bindings(out: Path) -> None:
    """sources/bindings/windows_*.splunk_cim.yml: the Sysmon sources the CIM data models hold, as tstats reads them."""
    for source, (dataset, rows) in CIM_SOURCES.items():
        model, fields, summary, computed = CIM_DATASETS[dataset]
        lines = [
            "# Generated by tools/gen_splunk_bindings.py: edit that script, not this file.",
            f"# windows.{source} as the CIM {model} data model's {dataset} dataset holds it, filled by the Splunk",
            "# Add-on for Sysmon; queried with tstats. A Sigma field with no model field of the same value is refused.",
            f"# {CIM_DOC.replace('Endpoint', model)}",
            f"source: windows.{source}",
            "name: cim",
            "target: splunk",
            "time_column: _time",
            f"datamodel: {model}.{dataset}",
        ]
        if rows:
            lines.append("# which events of the dataset are rows of the source (tstats where terms)")
            lines.append("rows:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in rows.items()]
        lines.append("# a detection's rows: one per distinct value of these and of every field its conditions read")
        lines.append(f"summary_by: {json.dumps([f'{dataset}.{f}' for f in summary])}")
        lines.append("columns:")
        lines.append("  _time: _time")
        lines += [f"  {k}: {dataset}.{v}" for k, v in fields.items()]
        if dataset == "Filesystem":
            lines.append("# the add-on's file_path is TargetFilename with an alternate data stream's name taken out")
            lines.append("# (EVAL-file_path = replace(TargetFilename, \"(:[\\w\\. ]+)\", \"\")): "
                         "a test of that text is refused")
            lines.append("strips:")
            lines.append(f"  TargetFilename: {json.dumps(ADS_NAME)}")
        if computed:
            lines.append("# fields the add-on keeps only in parts: "
                         "the expression over model fields that gives them back")
            lines.append("computed:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in computed.items()]
        out.joinpath(f"windows_{source}.splunk_cim.yml").write_text("\n".join(lines) + "\n")


def main() -> None:
    out = Path("sources", "bindings")
    for path in sorted(Path("sources").glob("windows_*.yml")):
        doc = yaml.safe_load(path.read_text())
        source = str(doc["name"]).removeprefix("windows.")
        fields: dict[str, str] | None = doc.get("fields")
        for rec in doc.get("records") or []:
            channels = rec.get("channel")
            if not channels or rec.get("provider"):
                continue  # an ETW provider's events (Kernel-File): no add-on source type
            name = "sysmon" if channels == [SYSMON_CHANNEL] else "wineventlog"
            system = {k: v for k, v in SYSTEM.items() if fields is None or k.startswith("_") or k in fields}
            if rec.get("rename"):
                if source != "process_creation":
                    raise SystemExit(f"windows.{source}: a renamed shape the generator does not know")
                renamed = set(SECURITY_4688.values()) | {"NewProcessId", "ProcessId"}
                own = {f: f for f in EVENT_4688 if f not in renamed and f in (fields or {})}
                write(out, source, name, channels, rec.get("event_id"), {**system, **own, **SECURITY_4688}, False,
                      False, "Security 4688 (process creation), 4688's own field names.", fields)
                continue
            own = {f: f for f in fields or {} if f not in SYSTEM and f not in UNMAPPED}
            # every binding but 4688's (whose own names the source renames) reads undeclared fields by name
            write(out, source, name, channels, rec.get("event_id"), {**system, **own}, True,
                  name == "sysmon" or len(doc.get("records")) == 1, "", fields)
    write_cim_bindings(out)


if __name__ == "__main__":
    main()
