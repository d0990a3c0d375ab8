"""Sentinel backend: one row per IR construct — the rule's pipeline (or Sigma detection) and the exact KQL.

Every emitted query is also checked by Microsoft's Kusto.Language (zero errors) when Node and the pinned npm
package are installed (`npm ci --prefix tools/kusto`; CI does it).
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
    ('eq_ci', 'where eventName =~ "RunInstances"',
     '| where EventName =~ "RunInstances"'),
    ('eq_cs', 'where eventName == "RunInstances"',
     '| where EventName == "RunInstances"'),
    ('ne_cs', 'where eventName != "RunInstances"',
     '| where EventName != "RunInstances"'),
    ('ne_ci', 'where eventName !~ "RunInstances"',
     '| where EventName !~ "RunInstances"'),
    ('ordering_json_number', 'where toint(requestParameters.maxCount) >= 10',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| where tolong(RequestParametersJson.maxCount) >= 10\n| project-away RequestParametersJson'),
    ('ne_number_nullsafe', 'where toint(requestParameters.maxCount) != 10',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| where (isnull(tolong(RequestParametersJson.maxCount)) or tolong(RequestParametersJson.maxCount) != 10)\n| project-away RequestParametersJson'),
    ('contains', 'where userAgent contains "aws-cli"',
     '| where UserAgent contains "aws-cli"'),
    ('contains_cs', 'where userAgent contains_cs "aws-cli"',
     '| where UserAgent contains_cs "aws-cli"'),
    ('not_startswith', 'where userAgent !startswith "aws"',
     '| where UserAgent !startswith "aws"'),
    ('endswith_cs', 'where eventSource endswith_cs ".amazonaws.com"',
     '| where EventSource endswith_cs ".amazonaws.com"'),
    ('like', 'where userAgent like "aws-cli/*Python?3*"',
     '| where UserAgent matches regex @"(?is)^aws\\-cli/.*Python.3.*$"'),
    ('like_star_only', 'where requestParameters.layers like "*"',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| where isnotempty(tostring(RequestParametersJson.layers))\n| project-away RequestParametersJson'),
    ('regex', 'where userAgent matches regex @"^aws-cli/\\d+"',
     '| where UserAgent matches regex @"^aws-cli/\\d+"'),
    ('in_cs', 'where eventName in ("RunInstances", "StopInstances")',
     '| where EventName in ("RunInstances", "StopInstances")'),
    ('in_ci', 'where eventName in~ ("runinstances", "stopinstances")',
     '| where EventName in~ ("runinstances", "stopinstances")'),
    ('not_in', 'where eventName !in ("RunInstances")',
     '| where EventName !in ("RunInstances")'),
    ('not_nullable', 'where not(toint(requestParameters.maxCount) > 5)',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| where not(coalesce(tolong(RequestParametersJson.maxCount) > 5, false))\n| project-away RequestParametersJson'),
    ('and_or', 'where (eventName == "A" or eventName == "B") and isnotempty(errorCode)',
     '| where ((EventName == "A" or EventName == "B") and isnotempty(ErrorCode))'),
    ('isnull_string', 'where isnull(errorCode)',
     '| where isempty(ErrorCode)'),
    ('isnull_json', 'where isnull(requestParameters.instanceType)',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| where isempty(RequestParametersJson.instanceType)\n| project-away RequestParametersJson'),
    ('json_path_index', 'extend t = responseElements.instancesSet.items[-1].instanceType',
     '| extend ResponseElementsJson = parse_json(ResponseElements)\n| extend t = ResponseElementsJson.instancesSet.items[-1].instanceType\n| project-away ResponseElementsJson'),
    ('arith', 'extend x = toint(requestParameters.a) * 2 + 1, y = 7 / 2, z = -toint(requestParameters.b) % 3',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| extend x = ((tolong(RequestParametersJson.a) * 2) + 1), y = (7 / 2), z = (-tolong(RequestParametersJson.b) % 3)\n| project-away RequestParametersJson'),
    ('iif', 'extend x = iif(isempty(errorCode), "ok", errorCode)',
     '| extend x = iff(isempty(ErrorCode), "ok", ErrorCode)'),
    ('case', 'extend x = case(eventName == "A", 1, eventName == "B", 2, 0)',
     '| extend x = case(EventName == "A", 1, EventName == "B", 2, 0)'),
    ('coalesce', 'extend x = coalesce(userIdentity.userName, userIdentity.arn)',
     '| extend x = coalesce(UserIdentityUserName, UserIdentityArn)'),
    ('strings', 'extend a = tolower(eventName), b = toupper(eventName), c = strlen(eventName), d = substring(eventName, 1, 3), e = strcat(eventName, "/", awsRegion), f = replace_string(eventName, "Run", "Stop"), g = replace_regex(eventName, @"(\\w+)Instances", @"\\1"), h = extract(@"^(\\w+)-", 1, userAgent)',
     '| extend a = tolower(EventName), b = toupper(EventName), c = strlen(EventName), d = substring(EventName, 1, 3), e = strcat(EventName, "/", AWSRegion), f = replace_string(EventName, "Run", "Stop"), g = replace_regex(EventName, @"(\\w+)Instances", "\\\\1"), h = extract(@"^(\\w+)-", 1, UserAgent)'),
    ('split_index', 'extend last = tostring(split(userIdentity.arn, "/")[-1])',
     '| extend [\'last\'] = tostring(split(UserIdentityArn, "/")[-1])'),
    ('casts', 'extend a = tostring(readOnly), b = toint("5"), c = todouble(requestParameters.x), d = tobool("true"), e = todatetime("2024-01-01T00:00:00Z"), n = array_length(resources)',
     '| extend RequestParametersJson = parse_json(RequestParameters), ResourcesJson = parse_json(Resources)\n| extend a = tostring(ReadOnly), b = tolong("5"), c = todouble(RequestParametersJson.x), d = tobool("true"), e = todatetime("2024-01-01T00:00:00Z"), n = array_length(ResourcesJson)\n| project-away RequestParametersJson, ResourcesJson'),
    ('epoch_number_to_time', 'extend a = todatetime(toint(requestParameters.t)), b = unixtime_seconds_todatetime(requestParameters.t), c = unixtime_milliseconds_todatetime(1700000000000)',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| extend a = unixtime_seconds_todatetime(tolong(RequestParametersJson.t)), b = unixtime_seconds_todatetime(todouble(RequestParametersJson.t)), c = unixtime_milliseconds_todatetime(1700000000000)\n| project-away RequestParametersJson'),
    ('time', 'where hourofday(_time) >= 20 or dayofweek(_time) in (0, 6)',
     '| where (hourofday(TimeGenerated) >= 20 or toint(dayofweek(TimeGenerated) / 1d) in (0, 6))'),
    ('now_ago_bin', 'where _time > ago(1h) and bin(_time, 1h) < now() and datetime_diff("minute", now(), _time) < 90',
     '| where (TimeGenerated > ago(1h) and bin(TimeGenerated, 1h) < now() and datetime_diff("minute", now(), TimeGenerated) < 90)'),
    ('literals', 'extend a = "quote\\" back\\\\ nl\\n", b = 1.5, c = true, d = 8h, e = datetime(2024-01-31T08:00:00Z), f = 90s',
     '| extend a = "quote\\" back\\\\ nl\\n", b = 1.5, c = true, d = 8h, e = datetime(2024-01-31T08:00:00Z), f = 90s'),
    ('odd_names', 'extend `my col` = 1 | project `my col`, eventName',
     "| extend ['my col'] = 1\n| project ['my col'], eventName = EventName"),
    ('summarize_all', 'summarize n = count(), c = count(errorCode), d = dcount(sourceIPAddress), lo = min(_time), hi = max(_time), s = sum(toint(requestParameters.maxCount)), a = avg(toint(requestParameters.maxCount)), v = values(awsRegion), e = earliest(sourceIPAddress), l = latest(sourceIPAddress) by eventName, arn = userIdentity.arn',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| summarize n = count(), c = countif(isnotempty(ErrorCode)), d = dcountif(SourceIpAddress, isnotempty(SourceIpAddress), 2), lo = min(TimeGenerated), hi = max(TimeGenerated), s = sum(tolong(RequestParametersJson.maxCount)), a = avg(tolong(RequestParametersJson.maxCount)), v = make_set_if(AWSRegion, isnotempty(AWSRegion)), (siemforge_time_1, e) = arg_min(TimeGenerated, SourceIpAddress), (siemforge_time_2, l) = arg_max(TimeGenerated, SourceIpAddress) by eventName = EventName, arn = UserIdentityArn\n| extend v = array_sort_asc(v)\n| project-away siemforge_time_1, siemforge_time_2'),
    ('dcount_exact_below_8000', 'summarize s = dcount(sourceIPAddress), n = dcount(toint(requestParameters.maxCount)), j = dcount(requestParameters.filter)',
     '| extend RequestParametersJson = parse_json(RequestParameters)\n| summarize s = dcountif(SourceIpAddress, isnotempty(SourceIpAddress), 2), n = dcount(tolong(RequestParametersJson.maxCount), 2), j = array_length(make_set_if(RequestParametersJson.filter, isnotempty(RequestParametersJson.filter)))'),
    ('summarize_no_by', 'summarize n = count()',
     '| summarize n = count()'),
    ('eventstats', 'eventstats total = count() by eventName | where total > 1',
     'let siemforge_rows_1 = AWSCloudTrail;\nsiemforge_rows_1\n| extend siemforge_key_3 = tostring(EventName)\n| join kind=leftouter (siemforge_rows_1 | extend siemforge_key_3 = tostring(EventName) | summarize siemforge_agg_2 = count() by siemforge_key_3) on siemforge_key_3\n| extend total = siemforge_agg_2\n| project-away siemforge_key_3, siemforge_key_31, siemforge_agg_2\n| where total > 1'),
    ('rename_project_sort_take', 'rename ip = sourceIPAddress | project ip, eventName | sort by ip desc, eventName | take 5',
     '| project-rename ip = SourceIpAddress\n| project ip, eventName = EventName\n| sort by ip desc nulls last, eventName asc nulls first\n| take 5'),
    ('parallel_extend', 'extend a = "x" | extend a = "y", b = a',
     '| extend a = "x"\n| extend siemforge_tmp_1 = "y", siemforge_tmp_2 = a\n| extend a = siemforge_tmp_1, b = siemforge_tmp_2\n| project-away siemforge_tmp_1, siemforge_tmp_2'),
]

# (construct, Sigma detection, the KQL after the table name)
SIGMA_ROWS = [
    ("sigma_eq_ci", "{sel: {eventName: RunInstances}, condition: sel}",
     '| where EventName =~ "RunInstances"'),
    ("sigma_cased", "{sel: {eventName|cased: RunInstances}, condition: sel}",
     '| where EventName == "RunInstances"'),
    ("sigma_contains_all", "{sel: {userAgent|contains|all: [aws, cli]}, condition: sel}",
     '| where (UserAgent contains "aws" and UserAgent contains "cli")'),
    ("sigma_null", "{sel: {errorCode: null}, condition: sel}",
     "| where isempty(ErrorCode)"),
    ("sigma_exists", "{sel: {errorCode|exists: true}, condition: sel}",
     "| where isnotempty(ErrorCode)"),
    ("sigma_re", "{sel: {userAgent|re: '^aws-cli/[0-9]+'}, condition: sel}",
     '| where UserAgent matches regex @"^aws-cli/[0-9]+"'),
    ("sigma_re_i", "{sel: {userAgent|re|i: '^AWS'}, condition: sel}",
     '| where UserAgent matches regex @"(?i)^AWS"'),
    ("sigma_cidr", "{sel: {sourceIPAddress|cidr: [10.0.0.0/8, 'fd00::/8']}, condition: sel}",
     '| where (ipv4_is_in_range(SourceIpAddress, "10.0.0.0/8") or ipv6_is_in_range(SourceIpAddress, "fd00::/8"))'),
    ("sigma_keyword", "{keywords: [mimikatz], condition: keywords}",
     '| where * contains "mimikatz"'),
    ("sigma_not_filter", "{sel: {eventName: A}, filter: {userAgent|startswith: aws}, condition: sel and not filter}",
     '| where (EventName =~ "A" and UserAgent !startswith "aws")'),
    ("sigma_fieldref", "{sel: {userIdentity.userName|fieldref: userIdentity.principalId}, condition: sel}",
     "| where UserIdentityUserName =~ UserIdentityPrincipalid"),
    ("sigma_gt", "{sel: {requestParameters.maxCount|gt: 10}, condition: sel}",
     "| extend RequestParametersJson = parse_json(RequestParameters)\n"
     "| where todouble(RequestParametersJson.maxCount) > 10\n| project-away RequestParametersJson"),
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
