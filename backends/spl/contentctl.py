"""A contentctl 5.x content pack from compiled rules — the format Splunk's own content (ESCU) is built from:
detections/, macros/, lookups/, stories/, data_sources/. It overlays a `contentctl init` skeleton, which carries
contentctl's own app template and deployment defaults (CI does exactly that and runs `contentctl validate` and
`contentctl build`). Built as data and dumped as YAML."""

from __future__ import annotations

import csv
import re
import uuid
from pathlib import Path
from typing import Any

import yaml

from siemforge.compiler import ir
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.sources import builtin_sources

from .app import slug
from .lower import compile_spl

STORY = "siemforge Cloud Detections"
DEFAULT_DATE = "2026-11-24"
NAMESPACE = uuid.UUID("6f1f3a59-9d0e-4d7c-9a4f-1a7d2f3c5b10")  # stable ids for generated objects
DATA_SOURCES = {"aws.cloudtrail": ("AWS CloudTrail", "aws:cloudtrail", "aws_cloudtrail")}
RISK_TYPES = {"account": "user", "host": "system"}
THREAT_TYPES = {
    "ip": "ip_address",
    "url": "url",
    "file": "file_name",
    "process": "process_name",
    "dns": "domain",
    "file_hash": "file_hash",
}


def _date(rule: ir.RuleIR) -> str:
    d = (rule.meta.date or DEFAULT_DATE).replace("/", "-")
    return d if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) else DEFAULT_DATE


def _techniques(rule: ir.RuleIR) -> list[str]:
    """ATT&CK ids; a technique is dropped when one of its sub-techniques is listed (contentctl rejects both)."""
    ids = sorted(
        {t.split(".", 1)[1].upper() for t in rule.meta.tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t.lower())}
    )
    return [i for i in ids if not any(j.startswith(i + ".") for j in ids)]


def _base_source(rule: ir.RuleIR) -> str:
    src = rule.pipeline.source
    return src.view.source.name if src.view is not None else src.name


def detection(rule: ir.RuleIR, binding: str | None) -> tuple[str, dict[str, Any]]:
    stem = slug(rule.meta.title)
    spl = compile_spl(rule, binding).replace("\n", " ") + f" | `{stem}_filter`"
    risk, threat = [], []
    for ent in rule.entities:
        for f in ent.fields:
            if ent.kind in RISK_TYPES and f.identifier == "name":
                risk.append({"field": f.column, "type": RISK_TYPES[ent.kind], "score": 50})
            elif ent.kind in THREAT_TYPES and f.identifier in ("address", "url", "name", "value", "domain_name"):
                threat.append({"field": f.column, "type": THREAT_TYPES[ent.kind]})
    if not risk:
        raise ValueError(f"{rule.meta.title}: contentctl needs a risk object: map an account or host entity")
    subject = risk[0]["field"]
    source_name = DATA_SOURCES.get(_base_source(rule), ("AWS CloudTrail",))[0]
    doc: dict[str, Any] = {
        "name": rule.meta.title,
        "id": rule.meta.id,
        "version": int(re.match(r"\d+", rule.meta.version or "1").group(0)),  # type: ignore[union-attr]
        "date": _date(rule),
        "author": "siemforge, siemforge",
        # contentctl requires an attack_data URL test for production detections; the proof of these rules is their
        # own fixture tests in rules/, which have no public URL, so the pack ships them as experimental
        "status": "experimental",
        "type": "Anomaly",
        "description": " ".join(rule.meta.description.split()) or rule.meta.title,
        "data_source": [source_name],
        "search": spl,
        "how_to_implement": "Compiled by siemforge from rules/; ingest AWS CloudTrail with the Splunk Add-on for AWS.",
        "known_false_positives": " ".join(rule.meta.falsepositives) or "None known.",
        "references": list(rule.meta.references),
        "drilldown_searches": [
            {
                "name": f'View the detection results for - "${subject}$"',
                "search": f'%original_detection_search% | search {subject} = "${subject}$"',
                "earliest_offset": "$info_min_time$",
                "latest_offset": "$info_max_time$",
            },
            {
                "name": f'View risk events for the last 7 days for - "${subject}$"',
                "search": f'| from datamodel Risk.All_Risk | search normalized_risk_object IN ("${subject}$") '
                "starthoursago=168 | stats count by normalized_risk_object",
                "earliest_offset": "$info_min_time$",
                "latest_offset": "$info_max_time$",
            },
        ],
        "rba": {"message": f"{rule.meta.title} by ${subject}$", "risk_objects": risk, "threat_objects": threat},
        "tags": {
            "analytic_story": [STORY],
            "asset_type": "AWS Account",
            "mitre_attack_id": _techniques(rule),
            "product": ["Splunk Enterprise", "Splunk Enterprise Security", "Splunk Cloud"],
            "security_domain": "threat",
        },
    }
    return f"detections/cloud/{stem}.yml", doc


def build_pack(rules: list[ir.RuleIR], binding: str | None) -> dict[str, str]:
    """Relative path -> text of the pack's files."""
    files: dict[str, str] = {}
    macros: dict[str, dict[str, Any]] = {}
    for rule in rules:
        path, doc = detection(rule, binding)
        files[path] = dump(doc)
        for name in re.findall(r"`([A-Za-z0-9_]+)`", doc["search"]):
            for b in builtin_bindings().values():
                m = (b.extra.get("macros") or {}).get(name)
                if m:
                    macros[name] = {
                        "name": name,
                        "definition": str(m["definition"]),
                        "description": " ".join(str(m.get("description", name)).split()),
                    }
        for t in rule.lookups:
            with open(t.path, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            files[f"lookups/{t.name}.csv"] = "".join(",".join(r) + "\n" for r in rows)
            files[f"lookups/{t.name}.yml"] = dump(
                {
                    "name": t.name,
                    "id": str(uuid.uuid5(NAMESPACE, "lookup:" + t.name)),
                    "version": 1,
                    "date": DEFAULT_DATE,
                    "author": "siemforge, siemforge",
                    "lookup_type": "csv",
                    "description": f"siemforge lookup table {t.name}",
                    "case_sensitive_match": True,
                }
            )
    for name, m in macros.items():
        files[f"macros/{name}.yml"] = dump(m)
    # the pack's app: a short label, because ES clones a search as `<domain> - <label> - <name> - Rule` (≤ 99 chars)
    files["contentctl.yml"] = dump(
        {
            "path": ".",
            "app": {
                "uid": 99999,  # contentctl wants a Splunkbase-style number below 100000; not a published app
                "title": "siemforge detections",
                "appid": "siemforge_content",
                "version": "1.0.0",
                "description": "Detections compiled by siemforge",
                "prefix": "SF",
                "label": "SF",
                "author_name": "siemforge",
                "author_email": "siemforge@example.invalid",
                "author_company": "siemforge",
            },
            "verbose": False,
            "enforce_deprecation_mapping_requirement": False,
            "enrichments": False,
            "build_app": True,
            "build_api": False,
            "data_source_TA_validation": False,
            "test_data_caches": [],
            "build_path": "dist",
            "mode": {"mode_name": "All"},
            "post_test_behavior": "pause_on_failure",
            "enable_integration_testing": False,
            "apps": [],
        }
    )
    files["stories/siemforge_cloud_detections.yml"] = dump(
        {
            "name": STORY,
            "id": str(uuid.uuid5(NAMESPACE, "story")),
            "version": 1,
            "date": DEFAULT_DATE,
            "author": "siemforge, siemforge",
            "status": "production",
            "description": "Cloud detections compiled by siemforge, each proven on real CloudTrail fixtures.",
            "narrative": "Detections for AWS compute abuse, credential access and unusual deployments, written once "
            "in siemforge's rule language and compiled to Splunk.",
            "references": [],
            "tags": {
                "category": ["Cloud Security"],
                "product": ["Splunk Enterprise", "Splunk Enterprise Security", "Splunk Cloud"],
                "usecase": "Advanced Threat Detection",
            },
        }
    )
    for source, (name, sourcetype, src) in DATA_SOURCES.items():
        fields = sorted({d.split(".")[0] for d in builtin_sources()[source].fields} | {"_time"})
        files[f"data_sources/{slug(name)}.yml"] = dump(
            {
                "name": name,
                "id": str(uuid.uuid5(NAMESPACE, "data_source:" + name)),
                "version": 1,
                "date": DEFAULT_DATE,
                "author": "siemforge, siemforge",
                "description": f"{name} records",
                "source": src,
                "sourcetype": sourcetype,
                "separator": "eventName",
                "supported_TA": [
                    {
                        "name": "Splunk Add-on for Amazon Web Services (AWS)",
                        "url": "https://splunkbase.splunk.com/app/1876/",
                        "version": "7.9.0",
                    }
                ],
                "fields": fields,
            }
        )
    return files


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000)


_ = Path
