"""Sentinel backend: rows that are about KQL — the rule's pipeline (or Sigma detection) and the exact KQL.

Each construct's output on every target is in tests/test_constructs.py (one table, every target side by side); the
rows here are the KQL-specific cases. Every emitted query is also checked by Microsoft's Kusto.Language (zero errors)
when Node and the pinned npm package are installed (`npm ci --prefix tools/kusto`; CI does it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.diagnostics import CompileError

from helpers import ROOT, shared_path

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"

# (construct, pipeline-language query, the KQL after the table name)
QUERY_ROWS = [
    ('casts', 'extend a = tostring(readOnly), b = toint("5"), c = todouble(requestParameters.x), d = tobool("true"), e = todatetime("2024-01-01T00:00:00Z"), n = array_length(resources)',
     '| extend RequestParametersJson = parse_json(RequestParameters), ResourcesJson = parse_json(Resources)\n| extend a = tostring(ReadOnly), b = tolong("5"), c = todouble(RequestParametersJson.x), d = tobool("true"), e = todatetime("2024-01-01T00:00:00Z"), n = array_length(ResourcesJson)\n| project-away RequestParametersJson, ResourcesJson'),
]

# (construct, Sigma detection, the KQL after the table name)
SIGMA_ROWS = [
    ("sigma_exists", "{sel: {errorCode|exists: true}, condition: sel}",
     "| where isnotempty(ErrorCode)"),
    ("sigma_re", "{sel: {userAgent|re: '^aws-cli/[0-9]+'}, condition: sel}",
     '| where UserAgent matches regex @"^aws-cli/[0-9]+"'),
]


def compile_query(tmp_path: Path, body: str) -> str:
    p = tmp_path / "rule.yml"
    p.write_text(HEAD + body)
    res = compile_file(p)
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    return compile_kql(res.rule, None)


@pytest.mark.parametrize("construct,query,expected", QUERY_ROWS, ids=[r[0] for r in QUERY_ROWS])
def test_query_construct(construct: str, query: str, expected: str, tmp_path: Path) -> None:
    kql = compile_query(tmp_path, f"query: |\n  {query}\n")
    assert kql == ("AWSCloudTrail\n" + expected if not expected.startswith("let ") else expected)


@pytest.mark.parametrize("construct,detection,expected", SIGMA_ROWS, ids=[r[0] for r in SIGMA_ROWS])
def test_sigma_construct(construct: str, detection: str, expected: str, tmp_path: Path) -> None:
    body = "id: 7b7d34f4-2a4e-4d55-a9e4-6c1a4a0f0e01\ndetection: " + detection + "\n"
    assert compile_query(tmp_path, body) == "AWSCloudTrail\n" + expected


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


def test_every_table_row_passes_kusto_language(tmp_path: Path) -> None:
    _kusto_or_skip()
    queries = []
    for name, query, _ in QUERY_ROWS:
        queries.append((name, compile_query(tmp_path, f"query: |\n  {query}\n")))
    for name, detection, _ in SIGMA_ROWS:
        queries.append((name, compile_query(tmp_path, "id: 7b7d34f4-2a4e-4d55-a9e4-6c1a4a0f0e01\ndetection: "
                                            + detection + "\n")))
    results = check_queries(queries, [])
    errors = {n: [f"{d.code} {d.message}" for d in ds if d.severity == "Error"] for (n, _), ds in zip(queries, results)}
    assert {n: e for n, e in errors.items() if e} == {}


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
    # a field SigmaHQ uses that CloudTrail does not have (aws_delete_saml_provider: `status`) is refused, not guessed
    assert [n for n, _ in refused] in ([], ["aws_delete_saml_provider.yml"])
    assert len(queries) >= 3
