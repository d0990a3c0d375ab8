"""Sentinel backend: what KQL refuses, and Microsoft's Kusto.Language over every bundled and SigmaHQ AWS rule.

Each construct's KQL, beside the other targets', is in tests/test_constructs.py (also checked by Kusto.Language,
zero errors, when Node and the pinned npm package are installed: `npm ci --prefix tools/kusto`; CI does it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.diagnostics import CompileError

from helpers import ROOT, compile_rule, shared_path

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"


def compile_query(tmp_path: Path, body: str) -> str:
    return compile_kql(compile_rule(tmp_path, HEAD + body), None)


@pytest.mark.parametrize("query,message", [
    ('where userAgent matches regex "(?=lookahead)"', "RE2"),
    ("where userIdentity.sessionContext.webIdFederationData == 1", "has no column"),
    ('extend a = "bell\\x07"', "control character"),
    # a column named like the table's column for another field would change what that field reads
    ('extend SourceIpAddress = "redacted" | where sourceIPAddress != "x"',
     "the column 'SourceIpAddress' would replace the AWSCloudTrail column that holds 'sourceIPAddress'"),
])
def test_what_kql_cannot_say_is_a_compile_error(query: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(CompileError) as exc:
        compile_query(tmp_path, f"query: |\n  {query}\n")
    assert message in str(exc.value)


def _kusto_or_skip() -> None:
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")


def test_bundled_and_sigma_aws_rules_pass_kusto_language() -> None:
    _kusto_or_skip()
    files = discover_rules([ROOT / "rules"])
    try:
        files += discover_rules([shared_path("data", "sigma", "rules", "cloud", "aws")])
    except pytest.skip.Exception:
        pass
    queries, lookups, refused = [], [], []
    for f in files:
        rule = compile_file(f).rule
        assert rule is not None
        try:
            queries.append((f.name, compile_kql(rule, None)))
            lookups.extend(rule.lookups)
        except CompileError as exc:
            refused.append((f.name, str(exc)))
    results = check_queries(queries, lookups)
    errors = {n: [f"{d.code} {d.line}:{d.column} {d.message}" for d in ds if d.severity == "Error"]
              for (n, _), ds in zip(queries, results)}
    assert {n: e for n, e in errors.items() if e} == {}
    # aws_delete_saml_provider names `status`: the AWS add-on's derived field since decision 80 (was refused)
    assert [n for n, _ in refused] in ([], ["aws_delete_saml_provider.yml"])
    assert len(queries) >= 3


@pytest.mark.parametrize("query,summarize", [
    # a group key of no one type (a JSON member, a whole JSON column, an extended member) is its text: KQL
    # cannot group by a dynamic value (Kusto.Language KS116; decision 112). It was emitted as is, an invalid query
    # (the ESCU ECR scanning-findings imports group by `imageDigest = requestParameters.imageId.imageDigest`).
    ("summarize n = count() by d = requestParameters.imageId.imageDigest",
     "| summarize n = count() by d = tostring(RequestParametersJson.imageId.imageDigest)"),
    ("extend d = requestParameters.imageId.imageDigest | summarize n = count() by d",
     "| summarize n = count() by d = tostring(d)"),
    ("summarize n = count() by requestParameters",
     "| summarize n = count() by requestParameters = tostring(RequestParametersJson)"),
    # a key the IR types keeps its own cast
    ("summarize n = count() by m = toint(requestParameters.maxCount)",
     "| summarize n = count() by m = tolong(RequestParametersJson.maxCount)"),
])
def test_a_dynamic_group_key_is_its_text(query: str, summarize: str, tmp_path: Path) -> None:
    kql = compile_query(tmp_path, f"query: |\n  {query}\n")
    assert summarize in kql.splitlines(), kql
    if checker_available() is None:
        [diags] = check_queries([("q", kql)], [])
        assert [d.message for d in diags if d.severity == "Error"] == []
