"""Sentinel content built as data: the analytic-rule YAML (Azure-Sentinel Solutions format) and ARM templates
(Microsoft.OperationalInsights/workspaces/providers/alertRules), with lookups as watchlists.

Reference: the seed template (reference/seeds/002_*.txt) and Microsoft.SecurityInsights alertRules (Scheduled)
https://learn.microsoft.com/azure/templates/microsoft.securityinsights/alertrules
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from siemforge.compiler import ir
from siemforge.compiler.bindings import Binding
from siemforge.compiler.diagnostics import error
from siemforge.compiler.lowering import expand_views

from .baseline import query_period
from .lower import sentinel_binding

API_VERSION = "2024-01-01-preview"
WATCHLIST_API_VERSION = "2023-02-01"
TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"

TACTICS = {
    "reconnaissance": "Reconnaissance",
    "resource_development": "ResourceDevelopment",
    "initial_access": "InitialAccess",
    "execution": "Execution",
    "persistence": "Persistence",
    "privilege_escalation": "PrivilegeEscalation",
    "defense_evasion": "DefenseEvasion",
    "credential_access": "CredentialAccess",
    "discovery": "Discovery",
    "lateral_movement": "LateralMovement",
    "collection": "Collection",
    "command_and_control": "CommandAndControl",
    "exfiltration": "Exfiltration",
    "impact": "Impact",
    "impair_process_control": "ImpairProcessControl",
    "inhibit_response_function": "InhibitResponseFunction",
}
SEVERITY = {"informational": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "High"}
OPERATORS = {
    ir.CmpOp.GT: ("gt", "GreaterThan"),
    ir.CmpOp.LT: ("lt", "LessThan"),
    ir.CmpOp.EQ: ("eq", "Equal"),
    ir.CmpOp.NE: ("ne", "NotEqual"),
}

# entity kind -> (Sentinel entityType, {identifier as written in rules -> Sentinel identifier})
ENTITIES: dict[str, tuple[str, dict[str, str]]] = {
    "account": (
        "Account",
        {
            "name": "Name",
            "full_name": "FullName",
            "upn_suffix": "UPNSuffix",
            "nt_domain": "NTDomain",
            "dns_domain": "DnsDomain",
            "sid": "Sid",
            "aad_user_id": "AadUserId",
            "aad_tenant_id": "AadTenantId",
            "puid": "PUID",
            "object_guid": "ObjectGuid",
            "display_name": "DisplayName",
            "cloud_app_account_id": "CloudAppAccountId",
            "is_domain_joined": "IsDomainJoined",
        },
    ),
    "host": (
        "Host",
        {
            "host_name": "HostName",
            "full_name": "FullName",
            "dns_domain": "DnsDomain",
            "nt_domain": "NTDomain",
            "netbios_name": "NetBiosName",
            "azure_id": "AzureID",
            "oms_agent_id": "OMSAgentID",
            "os_family": "OSFamily",
            "os_version": "OSVersion",
            "is_domain_joined": "IsDomainJoined",
        },
    ),
    "ip": ("IP", {"address": "Address"}),
    "url": ("URL", {"url": "Url"}),
    "dns": ("DNS", {"domain_name": "DomainName"}),
    "file": ("File", {"directory": "Directory", "name": "Name"}),
    "file_hash": ("FileHash", {"algorithm": "Algorithm", "value": "Value"}),
    "process": ("Process", {"process_id": "ProcessId", "command_line": "CommandLine"}),
    "cloud_application": ("CloudApplication", {"app_id": "AppId", "name": "Name", "instance_name": "InstanceName"}),
    "azure_resource": ("AzureResource", {"resource_id": "ResourceId"}),
}


def iso_duration(v: timedelta) -> str:
    """ISO-8601 duration as ARM wants it: P1D, PT1H, PT5M."""
    secs = int(v.total_seconds())
    if secs <= 0 or secs % 60:
        raise error(f"a Sentinel duration must be a positive whole number of minutes, not {v}")
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    out = "P" + (f"{days}D" if days else "")
    if hours or minutes:
        out += "T" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return out


def short_duration(v: timedelta) -> str:
    """The Azure-Sentinel YAML form: 1d, 1h, 5m."""
    secs = int(v.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    raise error(f"a Sentinel duration must be a whole number of minutes, not {v}")


def _check_range(name: str, v: timedelta, low: timedelta, high: timedelta) -> None:
    if not low <= v <= high:
        raise error(f"Sentinel {name} must be between {low} and {high}, not {v}")


def schedule(rule: ir.RuleIR) -> tuple[timedelta, timedelta]:
    """queryFrequency and queryPeriod. A rule with seen-before tables reads their history too (its own part keeps
    to its lookback inside the query), so its queryPeriod is that history window (backends/kql/baseline.py)."""
    every = rule.schedule.every if rule.schedule else timedelta(days=1)
    lookback = rule.schedule.lookback if rule.schedule else every
    _check_range("queryFrequency", every, timedelta(minutes=5), timedelta(days=14))
    _check_range("queryPeriod", lookback, timedelta(minutes=5), timedelta(days=14))
    return every, query_period(rule, lookback)


def trigger(rule: ir.RuleIR) -> tuple[str, str, int]:
    t = rule.alert.threshold
    op, value = t.op, t.value
    if op is ir.CmpOp.GE:  # row counts are whole numbers: >= n is > n-1
        op, value = ir.CmpOp.GT, value - 1
    elif op is ir.CmpOp.LE:
        op, value = ir.CmpOp.LT, value + 1
    short, long = OPERATORS[op]
    return short, long, value


def attack(rule: ir.RuleIR) -> tuple[list[str], list[str], list[str]]:
    tactics: list[str] = []
    techniques: list[str] = []
    subs: list[str] = []
    for tag in rule.meta.tags:
        low = tag.lower()
        if not low.startswith("attack."):
            continue
        name = low[len("attack.") :]
        if name in TACTICS and TACTICS[name] not in tactics:
            tactics.append(TACTICS[name])
        elif name.startswith("t") and name[1:5].isdigit():
            tech = name[:5].upper()
            if tech not in techniques:
                techniques.append(tech)
            if len(name) > 5 and name.upper() not in subs:
                subs.append(name.upper())
    return tactics, techniques, subs


def output_column(rule: ir.RuleIR, binding: Binding, column: str) -> str:
    """The name a result row has for the rule's column `column`: after summarize/project the rule's own names; on
    rows straight from the table, the table's column for a source field (`sourceIPAddress` is `SourceIpAddress`)."""
    if rule.pipeline.columns is not None or any(column in ir.assigned_names(st) for st in rule.pipeline.stages):
        return column
    ref = binding.resolve(column, ())
    if ref is None or ref.path:
        raise error(f"{rule.meta.title}: {column!r} is not a column of the {binding.table} rows",
                    hint=f"put it on the rows: `| extend {column.replace('.', '_')} = {column}`, and map that")
    return ref.column


def entity_mappings(rule: ir.RuleIR, binding: Binding, arm: bool = False) -> list[dict[str, Any]]:
    """Entity mappings; YAML lists identifier before columnName (as Azure-Sentinel does), ARM sorts keys."""
    out = []
    for ent in rule.entities:
        spec = ENTITIES.get(ent.kind)
        if spec is None:
            raise error(
                f"{rule.meta.title}: unknown entity kind {ent.kind!r}", hint="kinds: " + ", ".join(sorted(ENTITIES))
            )
        etype, identifiers = spec
        fields = []
        for f in ent.fields:
            ident = identifiers.get(f.identifier)
            if ident is None:
                raise error(
                    f"{rule.meta.title}: entity {ent.kind} has no identifier {f.identifier!r}",
                    hint="identifiers: " + ", ".join(sorted(identifiers)),
                )
            col = output_column(rule, binding, f.column)
            fields.append({"columnName": col, "identifier": ident} if arm else {"identifier": ident, "columnName": col})
        out.append({"entityType": etype, "fieldMappings": fields})
    return out


def severity(rule: ir.RuleIR) -> str:
    return SEVERITY.get((rule.meta.level or "medium").lower(), "Medium")


def analytic_rule_yaml(rule: ir.RuleIR, query: str, binding: Binding) -> dict[str, Any]:
    """The analytic rule in the Azure-Sentinel repository's YAML format, keys in that repository's order."""
    every, lookback = schedule(rule)
    short_op, _, value = trigger(rule)
    tactics, techniques, subs = attack(rule)
    doc: dict[str, Any] = {
        "id": rule.meta.id,
        "name": rule.meta.title,
        "description": rule.meta.description,
        "severity": severity(rule),
        # a parser function (ASIM) reads whichever connectors feed it: none is named
        "requiredDataConnectors": [{"connectorId": binding.extra["connector"], "dataTypes": [binding.table]}]
        if binding.extra.get("connector") else [],
        "queryFrequency": short_duration(every),
        "queryPeriod": short_duration(lookback),
        "triggerOperator": short_op,
        "triggerThreshold": value,
        "tactics": tactics,
        "relevantTechniques": techniques + subs,
        "query": query,
    }
    mappings = entity_mappings(rule, binding)
    if mappings:
        doc["entityMappings"] = mappings
    if rule.details:
        doc["customDetails"] = {k: output_column(rule, binding, v) for k, v in rule.details}
    doc["eventGroupingSettings"] = {"aggregationKind": "SingleAlert"}
    doc["version"] = rule.meta.version or "1.0.0"
    doc["kind"] = "Scheduled"
    return doc


def arm_escape(v: Any) -> Any:
    """ARM evaluates a string starting with `[` as an expression; a literal one is written `[[`."""
    if isinstance(v, str):
        return "[" + v if v.startswith("[") else v
    if isinstance(v, list):
        return [arm_escape(x) for x in v]
    if isinstance(v, dict):
        return {k: arm_escape(x) for k, x in v.items()}
    return v


def alert_rule_resource(rule: ir.RuleIR, query: str, binding_name: str | None = None) -> dict[str, Any]:
    every, lookback = schedule(rule)
    _, long_op, value = trigger(rule)
    tactics, techniques, subs = attack(rule)
    suppress = rule.alert.suppress
    binding = sentinel_binding(rule, binding_name)
    if suppress is not None:
        _check_range("suppressionDuration", suppress, timedelta(minutes=5), timedelta(days=1))
    props: dict[str, Any] = {
        "alertRuleTemplateName": rule.meta.id,
        "customDetails": {k: output_column(rule, binding, v) for k, v in rule.details} or None,
        "description": rule.meta.description,
        "displayName": rule.meta.title,
        "enabled": True,
        "entityMappings": entity_mappings(rule, binding, arm=True) or None,
        "query": query,
        "queryFrequency": iso_duration(every),
        "queryPeriod": iso_duration(lookback),
        "severity": severity(rule),
        "subTechniques": subs,
        "suppressionDuration": iso_duration(suppress or timedelta(hours=1)),
        "suppressionEnabled": suppress is not None,
        "tactics": tactics,
        "techniques": techniques,
        "templateVersion": rule.meta.version or "1.0.0",
        "triggerOperator": long_op,
        "triggerThreshold": value,
    }
    if rule.meta.references:
        props["OriginalUri"] = rule.meta.references[0]
    props = {k: v for k, v in sorted(props.items(), key=lambda kv: kv[0].lower()) if v is not None}
    rid = rule.meta.id
    return {
        "apiVersion": API_VERSION,
        "id": "[concat(resourceId('Microsoft.OperationalInsights/workspaces/providers', parameters('workspace'), "
        f"'Microsoft.SecurityInsights'),'/alertRules/{rid}')]",
        "kind": "Scheduled",
        "name": f"[concat(parameters('workspace'),'/Microsoft.SecurityInsights/{rid}')]",
        "properties": arm_escape(props),
        "type": "Microsoft.OperationalInsights/workspaces/providers/alertRules",
    }


def watchlist_resource(table: ir.LookupTable, key_column: str) -> dict[str, Any]:
    text = Path(table.path).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    props = {
        "contentType": "text/csv",
        "description": f"siemforge lookup table {table.name} ({Path(table.path).name})",
        "displayName": table.name,
        "itemsSearchKey": key_column,
        "numberOfLinesToSkip": 0,
        "provider": "siemforge",
        "rawContent": buf.getvalue(),
        "source": Path(table.path).name,
        "watchlistAlias": table.name,
    }
    return {
        "apiVersion": WATCHLIST_API_VERSION,
        "name": f"[concat(parameters('workspace'),'/Microsoft.SecurityInsights/{table.name}')]",
        "properties": arm_escape(props),
        "type": "Microsoft.OperationalInsights/workspaces/providers/Watchlists",
    }


def lookup_keys(rule: ir.RuleIR) -> dict[str, str]:
    """Each lookup table's first key column (the watchlist's search key)."""
    out: dict[str, str] = {}
    for st in expand_views(rule.pipeline):
        if isinstance(st, ir.Lookup):
            out.setdefault(st.table.name, st.keys[0][1])
    return out


def arm_template(items: list[tuple[ir.RuleIR, str]], binding_name: str | None = None) -> dict[str, Any]:
    """One deployment template for one or many rules, with one watchlist resource per lookup table (but the
    seen-before tables, which each query computes from the table's history)."""
    resources: list[dict[str, Any]] = []
    seen: set[str] = set()
    for rule, _query in items:
        for name, key in lookup_keys(rule).items():
            if name in seen or any(b.table == name for b in rule.baselines):  # computed in the query, no watchlist
                continue
            seen.add(name)
            table = next(t for t in rule.lookups if t.name == name)
            resources.append(watchlist_resource(table, key))
    resources.extend(alert_rule_resource(rule, query, binding_name) for rule, query in items)
    return {
        "$schema": TEMPLATE_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {"workspace": {"type": "String"}},
        "resources": resources,
    }
