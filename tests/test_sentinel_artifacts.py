"""Sentinel content: the ARM template of the EC2 rule matches the seed's key for key; every template passes the
alert-rule property check; output is byte-identical across runs; ARM `[` escaping."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from siemforge.backends.kql.armschema import check_scheduled_rule
from siemforge.backends.kql.artifacts import analytic_rule_yaml, arm_escape, arm_template, sentinel_binding
from siemforge.backends.kql.lower import compile_kql
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.diagnostics import CompileError

from helpers import ROOT, shared_path

EC2 = ROOT / "rules" / "aws_ec2_suspicious_compute_deployments" / "aws_ec2_suspicious_compute_deployments.yml"
# values that must differ from the seed: our own description text, the compiled query, and the reference URL
# (ours is the URL-encoded form of the same page)
EXPECTED_DIFFERENT = {"description", "query", "OriginalUri"}


def seed_template() -> dict[str, Any]:
    text = shared_path("reference", "seeds", "002_d5c518c3a92cd542.txt").read_text()
    start = text.index('{\n"$schema"')
    return json.loads(text[start:])  # type: ignore[no-any-return]


def diff(ours: Any, seed: Any, path: str = "") -> list[str]:
    out: list[str] = []
    if isinstance(seed, dict):
        if not isinstance(ours, dict):
            return [f"{path}: not an object"]
        if set(ours) != set(seed):
            out.append(f"{path}: keys differ: +{sorted(set(ours) - set(seed))} -{sorted(set(seed) - set(ours))}")
        for k in set(ours) & set(seed):
            if k not in EXPECTED_DIFFERENT:
                out.extend(diff(ours[k], seed[k], f"{path}.{k}"))
    elif isinstance(seed, list):
        if not isinstance(ours, list) or len(ours) != len(seed):
            return [f"{path}: list differs: {ours!r} vs {seed!r}"]
        for i, (a, b) in enumerate(zip(ours, seed)):
            out.extend(diff(a, b, f"{path}[{i}]"))
    elif ours != seed:
        out.append(f"{path}: {ours!r} != seed {seed!r}")
    return out


def test_ec2_arm_template_matches_the_seed_key_for_key() -> None:
    rule = compile_file(EC2).rule
    assert rule is not None
    ours = arm_template([(rule, compile_kql(rule, None))])
    assert diff(ours, seed_template()) == []


def test_every_bundled_template_passes_the_property_check() -> None:
    items = []
    for f in discover_rules([ROOT / "rules"]):
        rule = compile_file(f).rule
        assert rule is not None
        items.append((rule, compile_kql(rule, None)))
    template = json.loads(json.dumps(arm_template(items)))  # valid JSON
    rules = [r for r in template["resources"] if r["type"].endswith("/alertRules")]
    watchlists = [r for r in template["resources"] if r["type"].endswith("/Watchlists")]
    # the one bundled lookup is a seen-before table: computed in its query, so no watchlist is shipped
    assert len(rules) == len(items) and watchlists == []
    for r in rules:
        assert check_scheduled_rule(r["properties"]) == [], r["properties"]["displayName"]
    unseen = next(r for r in rules if "Unseen" in r["properties"]["displayName"])
    assert "_GetWatchlist" not in unseen["properties"]["query"]
    assert unseen["properties"]["queryPeriod"] == "P14D" and unseen["properties"]["queryFrequency"] == "PT1H"


def _rule(tmp_path: Path, extra: str) -> Any:
    (tmp_path / "seen.csv").write_text("sourceIPAddress,firstTimeSeen,lastTimeSeen,enough_data\n10.0.0.1,1700000000,1700000000,1\n")
    f = tmp_path / "r.yml"
    f.write_text("title: t\nid: 1f0e6a8c-0b7e-4c57-9a53-3f3f1d6c2a10\nlogsource: {product: aws, service: cloudtrail}\n"
                 "lookups: {seen: {file: seen.csv, types: {firstTimeSeen: int, lastTimeSeen: int, enough_data: int}}}\n"
                 + extra + "query: |\n  lookup seen on sourceIPAddress output firstTimeSeen\n"
                 "schedule: {every: 1h, lookback: 2h}\n")
    res = compile_file(f)
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    return res.rule


def test_a_plain_lookup_ships_as_a_watchlist(tmp_path: Path) -> None:
    rule = _rule(tmp_path, "")
    query = compile_kql(rule, None)
    template = arm_template([(rule, query)])
    watchlists = [r for r in template["resources"] if r["type"].endswith("/Watchlists")]
    assert [w["properties"]["watchlistAlias"] for w in watchlists] == ["seen"]
    assert '_GetWatchlist("seen")' in query
    assert template["resources"][-1]["properties"]["queryPeriod"] == "PT2H"


def test_a_seen_before_table_is_computed_in_the_query_and_both_artifacts_read_its_history(tmp_path: Path) -> None:
    rule = _rule(tmp_path, "baselines: {seen: {key: sourceIPAddress, forget: 10d, warmup: 2d}}\n")
    query = compile_kql(rule, None)
    # the table from the last `forget` (10d) of history, the rule's own part from its lookback (2h)
    assert query.startswith("let siemforge_rows_1 = AWSCloudTrail\n| where TimeGenerated >= ago(10d)\n")
    assert "\nlet siemforge_seen_3 = siemforge_rows_1\n" in query
    assert "\nAWSCloudTrail\n| where TimeGenerated >= ago(2h)\n" in query
    assert "lookup kind=leftouter (siemforge_seen_3 | project" in query and "_GetWatchlist" not in query
    template = arm_template([(rule, query)])
    assert [r["type"].rsplit("/", 1)[1] for r in template["resources"]] == ["alertRules"]
    props = template["resources"][0]["properties"]
    doc = analytic_rule_yaml(rule, query, sentinel_binding(rule, None))
    assert (props["queryFrequency"], props["queryPeriod"]) == ("PT1H", "P10D")
    assert (doc["queryFrequency"], doc["queryPeriod"]) == ("1h", "10d")
    assert props["query"] == doc["query"] == query


def test_a_warmup_longer_than_sentinel_history_is_refused(tmp_path: Path) -> None:
    rule = _rule(tmp_path, "baselines: {seen: {key: sourceIPAddress, forget: 90d, warmup: 30d}}\n")
    with pytest.raises(CompileError, match=r"needs 30d of history before it has enough data \(warmup\), but its Sentinel query reads 14d"):
        compile_kql(rule, None)


def test_property_check_finds_problems() -> None:
    bad = {"displayName": "x", "enabled": True, "query": "T", "queryFrequency": "P15D", "queryPeriod": "1d",
           "severity": "Severe", "suppressionDuration": "PT1H", "suppressionEnabled": False,
           "triggerOperator": "gt", "triggerThreshold": 0, "tactics": ["Mining"], "techniques": ["1496"]}
    problems = check_scheduled_rule(bad)
    for fragment in ("queryFrequency P15D", "queryPeriod '1d'", "severity 'Severe'", "triggerOperator 'gt'",
                     "unknown tactic 'Mining'", "technique '1496'"):
        assert any(fragment in p for p in problems), (fragment, problems)


def test_arm_escapes_leading_bracket() -> None:
    assert arm_escape({"a": "[not an expression]", "b": ["[x", "y["]}) == {"a": "[[not an expression]",
                                                                           "b": ["[[x", "y["]}


def run_export(kind: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "siemforge.cli.main", "export", kind, "rules/", "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_exports_are_deterministic_and_loadable(tmp_path: Path) -> None:
    for kind in ("arm", "sentinel-yaml"):
        a, b = tmp_path / f"{kind}-a", tmp_path / f"{kind}-b"
        assert run_export(kind, a).returncode == 0
        assert run_export(kind, b).returncode == 0
        files = sorted(p.name for p in a.iterdir())
        assert files == sorted(p.name for p in b.iterdir())
        for name in files:
            assert (a / name).read_bytes() == (b / name).read_bytes()
    doc = yaml.safe_load((tmp_path / "sentinel-yaml-a" / "9e457dc4-81f0-4d25-bc37-a5fa4a17946a.yaml").read_text())
    assert list(doc)[:6] == ["id", "name", "description", "severity", "requiredDataConnectors", "queryFrequency"]
    assert doc["queryFrequency"] == "1d" and doc["triggerOperator"] == "gt" and doc["tactics"] == ["Impact"]
    assert doc["entityMappings"][0]["fieldMappings"][0] == {"identifier": "Name", "columnName": "AccountName"}
    assert json.loads((tmp_path / "arm-a" / "ruleset.json").read_text())["contentVersion"] == "1.0.0.0"


def test_entities_on_rows_straight_from_the_table_name_the_tables_columns(tmp_path: Path) -> None:
    """Without summarize/project the alert rows are AWSCloudTrail rows: entity and detail columns are the table's
    (SourceIpAddress, UserIdentityArn), except columns the rule itself adds."""
    from siemforge.backends.kql.artifacts import alert_rule_resource, analytic_rule_yaml, sentinel_binding
    from siemforge.compiler.diagnostics import CompileError

    rule_file = tmp_path / "r.yml"
    rule_file.write_text(
        "title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\nlogsource: {product: aws, service: cloudtrail}\n"
        "query: |\n  where eventName == \"PutImage\" | extend who = userIdentity.userName\n"
        "entities:\n  account: {name: who, aad_user_id: userIdentity.arn}\n  ip: {address: sourceIPAddress}\n"
        "details: {Region: awsRegion}\n")
    rule = compile_file(rule_file).rule
    assert rule is not None
    query = compile_kql(rule, None)
    doc = analytic_rule_yaml(rule, query, sentinel_binding(rule, None))
    cols = [f["columnName"] for m in doc["entityMappings"] for f in m["fieldMappings"]]
    assert cols == ["who", "UserIdentityArn", "SourceIpAddress"] and doc["customDetails"] == {"Region": "AWSRegion"}
    arm = alert_rule_resource(rule, query)
    assert [f["columnName"] for m in arm["properties"]["entityMappings"] for f in m["fieldMappings"]] == cols
    rule_file.write_text(rule_file.read_text().replace("address: sourceIPAddress", "address: requestParameters.ip"))
    rule = compile_file(rule_file).rule
    assert rule is not None
    try:
        alert_rule_resource(rule, compile_kql(rule, None))
        raise AssertionError("a path into a JSON column is not a column of the rows")
    except CompileError as exc:
        assert "'requestParameters.ip' is not a column of the AWSCloudTrail rows" in exc.diagnostics[0].message
