"""Generate sources/windows_*.yml: the Sigma Windows taxonomy as typed logical sources.

Run from the repository root, with the project's shared/ data beside it:

    python tools/gen_windows_sources.py [--shared ../shared]

Inputs (all under shared/reference/windows/, see its SOURCES.md):
- sysmon/sysmon-events.json: the Sysmon 15.15 schema (schema 4.90) as `sysmon -s` prints it: event id → fields;
- windows-event-fields.json: OSSEM-DD's data dictionaries (Security-Auditing, PowerShell, TaskScheduler, …).

The tables below are the Sigma taxonomy (SigmaHQ sigma-specification, Taxonomy_specification.md, "Windows folder")
and pySigma's Windows pipelines (pySigma-pipeline-sysmon `sysmon_generic_logsource_eventid_mapping`,
pySigma-pipeline-windows `windows_generic_category_channel_mapping`, `windows_audit_pipeline`, and pySigma's
`sigma.pipelines.common.windows_logsource_mapping` for service → channel). They are written out into each source's
`records:` section, which is what the executor reads (and what bindings may read later): this script is the only
place they are spelled in Python, and it runs offline, not at compile or run time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SYSMON = "Microsoft-Windows-Sysmon/Operational"
PS_CHANNELS = ["Microsoft-Windows-PowerShell/Operational", "PowerShellCore/Operational"]
PS_CLASSIC = "Windows PowerShell"

# Security 4688 as a process_creation row: Sigma's taxonomy names (pySigma windows_audit_pipeline:
# Image ← NewProcessName, ParentImage ← ParentProcessName, LogonId ← SubjectLogonId) plus the process ids, which
# 4688 names from the creator's side (ProcessId is the creator, i.e. the parent; NewProcessId the new process).
SECURITY_4688_RENAME = {
    "NewProcessName": "Image",
    "ParentProcessName": "ParentImage",
    "SubjectLogonId": "LogonId",
    "NewProcessId": "ProcessId",
    "ProcessId": "ParentProcessId",
}


def _events(description: str, channels: list[str], *event_ids: int) -> tuple[str, list[dict[str, Any]]]:
    """A category that is some event ids of some channels: its description and its one record selector."""
    return description, [{"channel": channels, "event_id": list(event_ids)}]


# category → (description, [record selectors]); a selector is {channel|provider, event_id, rename}
CATEGORIES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "process_creation": ("a process was created (Sysmon 1; Security 4688 with its names mapped)", [
        {"channel": [SYSMON], "event_id": [1]},
        {"channel": ["Security"], "event_id": [4688], "rename": SECURITY_4688_RENAME},
    ]),
    "file_change": _events("a file's creation time was changed (Sysmon 2)", [SYSMON], 2),
    "network_connection": _events("a TCP/UDP connection (Sysmon 3)", [SYSMON], 3),
    "sysmon_status": _events("Sysmon service state / config change (Sysmon 4, 16)", [SYSMON], 4, 16),
    "process_termination": _events("a process ended (Sysmon 5)", [SYSMON], 5),
    "driver_load": _events("a driver was loaded (Sysmon 6)", [SYSMON], 6),
    "image_load": _events("a module (DLL) was loaded (Sysmon 7)", [SYSMON], 7),
    "create_remote_thread": _events("a thread was created in another process (Sysmon 8)", [SYSMON], 8),
    "raw_access_thread": _events("raw disk read (Sysmon 9)", [SYSMON], 9),
    "process_access": _events("a process opened another (Sysmon 10)", [SYSMON], 10),
    "file_event": _events("a file was created or overwritten (Sysmon 11)", [SYSMON], 11),
    "registry_add": _events("a registry key/value was created (Sysmon 12)", [SYSMON], 12),
    "registry_delete": _events("a registry key/value was deleted (Sysmon 12)", [SYSMON], 12),
    "registry_set": _events("a registry value was set (Sysmon 13)", [SYSMON], 13),
    "registry_rename": _events("a registry key/value was renamed (Sysmon 14)", [SYSMON], 14),
    "registry_event": _events("any registry change (Sysmon 12, 13, 14)", [SYSMON], 12, 13, 14),
    "create_stream_hash": _events("an alternate data stream was created (Sysmon 15)", [SYSMON], 15),
    "pipe_created": _events("a named pipe was created or connected (Sysmon 17, 18)", [SYSMON], 17, 18),
    "wmi_event": _events("WMI filter / consumer / binding (Sysmon 19, 20, 21)", [SYSMON], 19, 20, 21),
    "dns_query": _events("a DNS query (Sysmon 22)", [SYSMON], 22),
    "file_delete": _events("a file was deleted (Sysmon 23 archived, 26 logged)", [SYSMON], 23, 26),
    "clipboard_capture": _events("clipboard change (Sysmon 24)", [SYSMON], 24),
    "process_tampering": _events("process image change (Sysmon 25)", [SYSMON], 25),
    "file_block_executable": _events("executable file creation blocked (Sysmon 27)", [SYSMON], 27),
    "file_block_shredding": _events("file shredding blocked (Sysmon 28)", [SYSMON], 28),
    "file_executable_detected": _events("executable file created (Sysmon 29)", [SYSMON], 29),
    "sysmon_error": _events("Sysmon error (Sysmon 255)", [SYSMON], 255),
    "ps_module": _events("PowerShell module logging (4103)", PS_CHANNELS, 4103),
    "ps_script": _events("PowerShell script block logging (4104)", PS_CHANNELS, 4104),
    "ps_classic_start": _events("Windows PowerShell engine start (400)", [PS_CLASSIC], 400),
    "ps_classic_provider_start": _events("Windows PowerShell provider start (600)", [PS_CLASSIC], 600),
    "ps_classic_script": _events("Windows PowerShell pipeline execution (800)", [PS_CLASSIC], 800),
    # the taxonomy names an ETW provider, not a channel, for these two
    "file_access": ("file access (ETW Microsoft-Windows-Kernel-File)",
                    [{"provider": ["Microsoft-Windows-Kernel-File"]}]),
    "file_rename": ("file rename (ETW Microsoft-Windows-Kernel-File)",
                    [{"provider": ["Microsoft-Windows-Kernel-File"]}]),
}

# Sysmon event ids per category, for the field lists (the same ids as the selectors above)
SYSMON_IDS = {c: [i for s in sel for i in s.get("event_id", []) if SYSMON in s.get("channel", [])]
              for c, (_, sel) in CATEGORIES.items()}

# service → channels (pySigma sigma.pipelines.common.windows_logsource_mapping; the Sigma taxonomy's Windows folder)
SERVICES: dict[str, list[str]] = {
    "security": ["Security"],
    "application": ["Application"],
    "system": ["System"],
    "sysmon": [SYSMON],
    "powershell": PS_CHANNELS,
    "powershell-classic": [PS_CLASSIC],
    "taskscheduler": ["Microsoft-Windows-TaskScheduler/Operational"],
    "wmi": ["Microsoft-Windows-WMI-Activity/Operational"],
    "dns-server": ["DNS Server"],
    "dns-server-audit": ["Microsoft-Windows-DNS-Server/Audit"],
    "dns-server-analytic": ["Microsoft-Windows-DNS-Server/Analytical"],
    "driver-framework": ["Microsoft-Windows-DriverFrameworks-UserMode/Operational"],
    "ntlm": ["Microsoft-Windows-NTLM/Operational"],
    "dhcp": ["Microsoft-Windows-DHCP-Server/Operational"],
    "msexchange-management": ["MSExchange Management"],
    "applocker": ["Microsoft-Windows-AppLocker/MSI and Script", "Microsoft-Windows-AppLocker/EXE and DLL",
                  "Microsoft-Windows-AppLocker/Packaged app-Deployment",
                  "Microsoft-Windows-AppLocker/Packaged app-Execution"],
    "printservice-admin": ["Microsoft-Windows-PrintService/Admin"],
    "printservice-operational": ["Microsoft-Windows-PrintService/Operational"],
    "codeintegrity-operational": ["Microsoft-Windows-CodeIntegrity/Operational"],
    "smbclient-security": ["Microsoft-Windows-SmbClient/Security"],
    "smbserver-connectivity": ["Microsoft-Windows-SMBServer/Connectivity"],
    "firewall-as": ["Microsoft-Windows-Windows Firewall With Advanced Security/Firewall"],
    "bits-client": ["Microsoft-Windows-Bits-Client/Operational"],
    "windefend": ["Microsoft-Windows-Windows Defender/Operational"],
    "terminalservices-localsessionmanager":
        ["Microsoft-Windows-TerminalServices-LocalSessionManager/Operational"],
    "microsoft-servicebus-client": ["Microsoft-ServiceBus-Client/Operational", "Microsoft-ServiceBus-Client/Admin"],
    "ldap": ["Microsoft-Windows-LDAP-Client/Debug"],
    "security-mitigations": ["Microsoft-Windows-Security-Mitigations/Kernel Mode",
                             "Microsoft-Windows-Security-Mitigations/User Mode"],
    "diagnosis-scripted": ["Microsoft-Windows-Diagnosis-Scripted/Operational"],
    "shell-core": ["Microsoft-Windows-Shell-Core/Operational"],
    "openssh": ["OpenSSH/Operational"],
    "bitlocker": ["Microsoft-Windows-BitLocker/BitLocker Management"],
    "vhdmp": ["Microsoft-Windows-VHDMP/Operational"],
    "appxdeployment-server": ["Microsoft-Windows-AppXDeploymentServer/Operational"],
    "lsa-server": ["Microsoft-Windows-LSA/Operational"],
    "appxpackaging-om": ["Microsoft-Windows-AppxPackaging/Operational"],
    "dns-client": ["Microsoft-Windows-DNS Client Events/Operational"],
    "appmodel-runtime": ["Microsoft-Windows-AppModel-Runtime/Admin"],
    "capi2": ["Microsoft-Windows-CAPI2/Operational"],
    "certificateservicesclient-lifecycle-system":
        ["Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational"],
    "iis-configuration": ["Microsoft-IIS-Configuration/Operational"],
}

# service → providers in windows-event-fields.json whose fields the service's events carry
SERVICE_PROVIDERS = {
    "security": [("Microsoft-Windows-Security-Auditing", None), ("Microsoft-Windows-Eventlog", {"1102"})],
    "system": [("Microsoft-Windows-Eventlog", {"104"})],
    "powershell": [("Microsoft-Windows-PowerShell", None)],
    "powershell-classic": [("PowerShell", None)],
    "taskscheduler": [("Microsoft-Windows-TaskScheduler", None)],
    "wmi": [("Microsoft-Windows-WMI-Activity", None)],
    "dns-client": [("Microsoft-Windows-DNS-Client", None)],
    "bits-client": [("Microsoft-Windows-Bits-Client", None)],
}
# System 7045 (Service Control Manager, "A service was installed"): not in OSSEM-DD; names as the event's template
# writes them (as in the System logs under shared/data/windows). Classic System events (7036, 7040, …) name their
# insertion strings param1…paramN, and may carry Binary data (hex text).
EXTRA_FIELDS = {
    "system": {"ServiceName": "string", "ImagePath": "string", "ServiceType": "string", "StartType": "string",
               "AccountName": "string", "Binary": "string", **{f"param{i}": "string" for i in range(1, 9)}},
}

# the System part of every Windows record, as the readers write it (docs/sources/windows.md)
COMMON = {
    "EventID": "int", "Channel": "string", "Provider_Name": "string", "Computer": "string",
    "TimeCreated": "string", "Level": "int", "Task": "int", "Keywords": "string", "EventRecordID": "int",
    "Version": "int", "Data": "string",
}

_TYPES = {
    "UInt8": "int", "UInt16": "int", "UInt32": "int", "UInt64": "int", "Int8": "int", "Int16": "int",
    "Int32": "int", "Int64": "int", "int": "int", "integer": "int", "long": "int",
    "Boolean": "bool", "boolean": "bool", "bool": "bool", "Double": "real",
}


def _type(manifest_type: str) -> str:
    t = manifest_type.split(":")[-1]
    return _TYPES.get(t, "string")  # strings, SIDs, GUIDs, hex ints (written "0x…"), pointers, times


def _merge(fields: dict[str, str], name: str, t: str) -> None:
    old = fields.get(name)
    fields[name] = t if old is None or old == t else "string"


def _yaml_list(items: list[Any]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _write(out: Path, name: str, description: str, logsource: dict[str, str], records: list[dict[str, Any]],
           fields: dict[str, str], origin: str) -> None:
    lines = [
        "# Generated by tools/gen_windows_sources.py: edit that script, not this file.",
        f"# {origin}",
        f"name: {name}",
        f"description: {json.dumps(description)}",
        "logsource: {" + ", ".join(f"{k}: {v}" for k, v in logsource.items()) + "}",
        "time:",
        "  column: _time",
        "  from: TimeCreated     # Event/System/TimeCreated/@SystemTime (ISO-8601, UTC)",
        "# Which Windows records are rows of this source: a record is one if it matches any entry (channel compared",
        "# case-insensitively, EventID as a number). `rename` gives that shape's fields their names here.",
        "records:",
    ]
    for r in records:
        first = True
        for key in ("channel", "provider", "event_id"):
            if key in r:
                lines.append(f"  {'- ' if first else '  '}{key}: {_yaml_list(r[key])}")
                first = False
        if "rename" in r:
            lines.append(f"  {'- ' if first else '  '}rename:")
            for k, v in r["rename"].items():
                lines.append(f"      {k}: {v}")
    if fields == COMMON:  # no field dictionary for these events: leave the source untyped rather than warn on
        lines.append("# No field dictionary for these events (shared/reference/windows has none): the fields are")
        lines.append("# untyped, and a rule may name any (the readers still write the System fields).")
    else:
        lines.append("fields:")
        for k, t in fields.items():
            lines.append(f"  {k}: {t}")
    out.joinpath(f"windows_{name.split('.', 1)[1].replace('-', '_')}.yml").write_text(
        "\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "sources"))
    args = ap.parse_args()
    ref = Path(args.shared) / "reference" / "windows"
    sysmon = json.loads((ref / "sysmon" / "sysmon-events.json").read_text(encoding="utf-8"))
    by_id = {e["id"]: e for e in sysmon["events"]}
    dicts = json.loads((ref / "windows-event-fields.json").read_text(encoding="utf-8"))
    out = Path(args.out)
    for old in out.glob("windows_*.yml"):
        old.unlink()

    for cat, (desc, records) in CATEGORIES.items():
        fields = dict(COMMON)
        for eid in SYSMON_IDS[cat]:
            for f in by_id[eid]["fields"]:
                _merge(fields, f["name"], _type(f["inType"]))
        for r in records:
            if "rename" in r:  # the other shape's own fields, under this source's names
                for v in r["rename"].values():
                    fields.setdefault(v, "string")
                for eid in r["event_id"]:
                    for ver in dicts["Microsoft-Windows-Security-Auditing"][str(eid)]["versions"].values():
                        for n, t in ver["fields"]:
                            if n not in r["rename"]:
                                fields.setdefault(n, _type(t))
        if cat.startswith("ps_"):
            provider = "PowerShell" if cat.startswith("ps_classic") else "Microsoft-Windows-PowerShell"
            for eid in records[0]["event_id"]:
                for ver in dicts[provider].get(str(eid), {}).get("versions", {}).values():
                    for n, t in ver["fields"]:
                        _merge(fields, n, _type(t))
        _write(out, f"windows.{cat}", f"Windows: {desc}", {"product": "windows", "category": cat}, records,
               fields, "Sigma taxonomy (Windows folder); fields: Sysmon 15.15 schema 4.90, OSSEM-DD")
    for svc, channels in SERVICES.items():
        fields = dict(COMMON)
        for provider, only in SERVICE_PROVIDERS.get(svc, []):
            for eid, ev in sorted(dicts[provider].items()):
                if only is not None and eid not in only:
                    continue
                for ver in ev["versions"].values():
                    for n, t in ver["fields"]:
                        _merge(fields, n, _type(t))
        if svc == "sysmon":
            for ev in sysmon["events"]:
                for f in ev["fields"]:
                    _merge(fields, f["name"], _type(f["inType"]))
        for n, t in EXTRA_FIELDS.get(svc, {}).items():
            _merge(fields, n, t)
        _write(out, f"windows.{svc}", f"Windows: the {', '.join(channels)} event log",
               {"product": "windows", "service": svc}, [{"channel": channels}], fields,
               "Sigma taxonomy (Windows folder), pySigma windows_logsource_mapping; fields: OSSEM-DD")


if __name__ == "__main__":
    main()
