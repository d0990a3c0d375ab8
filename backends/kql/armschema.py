"""A check of Scheduled alert-rule properties, written from Microsoft's API reference:
https://learn.microsoft.com/rest/api/securityinsights/alert-rules/create-or-update (ScheduledAlertRule)
https://learn.microsoft.com/azure/templates/microsoft.securityinsights/alertrules?pivots=deployment-language-arm-template
Returns problems as text; an empty list means the properties conform."""

from __future__ import annotations

import re
from typing import Any

REQUIRED = (
    "displayName",
    "enabled",
    "query",
    "queryFrequency",
    "queryPeriod",
    "severity",
    "suppressionDuration",
    "suppressionEnabled",
    "triggerOperator",
    "triggerThreshold",
)
SEVERITIES = {"High", "Medium", "Low", "Informational"}
TRIGGER_OPERATORS = {"GreaterThan", "LessThan", "Equal", "NotEqual"}
TACTICS = {
    "Reconnaissance",
    "ResourceDevelopment",
    "InitialAccess",
    "Execution",
    "Persistence",
    "PrivilegeEscalation",
    "DefenseEvasion",
    "CredentialAccess",
    "Discovery",
    "LateralMovement",
    "Collection",
    "Exfiltration",
    "CommandAndControl",
    "Impact",
    "PreAttack",
    "ImpairProcessControl",
    "InhibitResponseFunction",
}
ENTITY_TYPES = {
    "Account",
    "Host",
    "IP",
    "Malware",
    "File",
    "Process",
    "CloudApplication",
    "DNS",
    "AzureResource",
    "FileHash",
    "RegistryKey",
    "RegistryValue",
    "SecurityGroup",
    "URL",
    "Mailbox",
    "MailCluster",
    "MailMessage",
    "SubmissionMail",
}
AGGREGATION_KINDS = {"SingleAlert", "AlertPerResult"}
DURATION = re.compile(r"P(?=\d|T\d)(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?\Z")
TECHNIQUE = re.compile(r"T\d{4}\Z")
SUBTECHNIQUE = re.compile(r"T\d{4}\.\d{3}\Z")


def _minutes(d: str) -> int:
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", d)
    assert m
    days, hours, minutes, seconds = (int(x or 0) for x in m.groups())
    return days * 1440 + hours * 60 + minutes + seconds // 60


def check_scheduled_rule(props: dict[str, Any]) -> list[str]:
    problems = [f"missing required property {k}" for k in REQUIRED if k not in props]
    if props.get("severity") not in SEVERITIES:
        problems.append(f"severity {props.get('severity')!r} not in {sorted(SEVERITIES)}")
    if props.get("triggerOperator") not in TRIGGER_OPERATORS:
        problems.append(f"triggerOperator {props.get('triggerOperator')!r} not in {sorted(TRIGGER_OPERATORS)}")
    if not isinstance(props.get("triggerThreshold"), int) or props["triggerThreshold"] < 0:
        problems.append("triggerThreshold must be a non-negative integer")
    if not isinstance(props.get("enabled"), bool) or not isinstance(props.get("suppressionEnabled"), bool):
        problems.append("enabled and suppressionEnabled must be booleans")
    limits = {"queryFrequency": (5, 14 * 1440), "queryPeriod": (5, 14 * 1440), "suppressionDuration": (5, 1440)}
    for key, (lo, hi) in limits.items():
        v = props.get(key)
        if not isinstance(v, str) or not DURATION.match(v):
            problems.append(f"{key} {v!r} is not an ISO-8601 duration")
        elif not lo <= _minutes(v) <= hi:
            problems.append(f"{key} {v} is outside {lo} minutes .. {hi} minutes")
    for t in props.get("tactics", []):
        if t not in TACTICS:
            problems.append(f"unknown tactic {t!r}")
    for t in props.get("techniques", []):
        if not TECHNIQUE.match(t):
            problems.append(f"technique {t!r} is not Txxxx")
    for t in props.get("subTechniques", []):
        if not SUBTECHNIQUE.match(t):
            problems.append(f"sub-technique {t!r} is not Txxxx.yyy")
    for e in props.get("entityMappings", []):
        if e.get("entityType") not in ENTITY_TYPES:
            problems.append(f"unknown entityType {e.get('entityType')!r}")
        if not 1 <= len(e.get("fieldMappings", [])) <= 3:
            problems.append("an entity mapping needs 1 to 3 field mappings")
        for f in e.get("fieldMappings", []):
            if set(f) != {"identifier", "columnName"}:
                problems.append(f"field mapping keys must be identifier and columnName: {sorted(f)}")
    grouping = props.get("eventGroupingSettings")
    if grouping is not None and grouping.get("aggregationKind") not in AGGREGATION_KINDS:
        problems.append("eventGroupingSettings.aggregationKind must be SingleAlert or AlertPerResult")
    if len(props.get("customDetails") or {}) > 20:
        problems.append("at most 20 custom details")
    if not isinstance(props.get("query"), str) or not props["query"].strip():
        problems.append("query must be a non-empty string")
    elif len(props["query"]) > 10000:
        problems.append("query is longer than 10,000 characters")
    return problems
