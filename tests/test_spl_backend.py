"""Splunk backend: one row per IR construct — the rule's pipeline (or Sigma detection) and the exact SPL.

There is no SPL engine here, so these rows are the golden record of what each construct becomes; every one also
parses with grammars/spl.lark (tests/test_spl_grammar.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import CompileError

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"

# (construct, pipeline-language query, the whole SPL)
QUERY_ROWS = [
    ('eq_ci', 'where eventName =~ "RunInstances"',
     '`cloudtrail` eventName="RunInstances"'),
    ('eq_cs', 'where eventName == "RunInstances"',
     '`cloudtrail` eventName="RunInstances"\n| where eventName=="RunInstances"'),
    ('ne_cs', 'where eventName != "RunInstances"',
     '`cloudtrail`\n| where (isnull(eventName) OR eventName!="RunInstances")'),
    ('ne_ci', 'where eventName !~ "RunInstances"',
     '`cloudtrail` NOT eventName="RunInstances"'),
    ('ordering_json_number', 'where toint(requestParameters.maxCount) >= 10',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.maxCount\n| where if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))>=10'
     '\n| fields - siemforge_path1'),
    ('ne_number_nullsafe', 'where toint(requestParameters.maxCount) != 10',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.maxCount\n| where (isnull(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))) OR if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))!=10)'
     '\n| fields - siemforge_path1'),
    ('contains', 'where userAgent contains "aws-cli"',
     '`cloudtrail` userAgent="*aws-cli*"'),
    ('contains_cs', 'where userAgent contains_cs "aws-cli"',
     '`cloudtrail`\n| where match(userAgent, "aws\\\\-cli")'),
    ('not_startswith', 'where userAgent !startswith "aws"',
     '`cloudtrail` NOT (userAgent="aws*")'),
    ('endswith_cs', 'where eventSource endswith_cs ".amazonaws.com"',
     '`cloudtrail`\n| where match(eventSource, "\\\\.amazonaws\\\\.com\\\\z")'),
    ('like', 'where userAgent like "aws-cli/*Python?3*"',
     '`cloudtrail`\n| where match(userAgent, "(?is)^aws\\\\-cli\\\\/.*Python.3.*\\\\z")'),
    ('like_star_only', 'where requestParameters.layers like "*"',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.layers\n| where match(siemforge_path1, "(?is)^.*\\\\z")'
     '\n| fields - siemforge_path1'),
    ('regex', 'where userAgent matches regex @"^aws-cli/\\d+"',
     '`cloudtrail`\n| where match(userAgent, "^aws-cli/\\\\d+")'),
    ('in_cs', 'where eventName in ("RunInstances", "StopInstances")',
     '`cloudtrail` eventName IN ("RunInstances", "StopInstances")\n| where in(eventName, "RunInstances", "StopInstances")'),
    ('in_ci', 'where eventName in~ ("runinstances", "stopinstances")',
     '`cloudtrail` eventName IN ("runinstances", "stopinstances")'),
    ('not_in', 'where eventName !in ("RunInstances")',
     '`cloudtrail`\n| where if(in(eventName, "RunInstances"), 0, 1)==1'),
    ('not_nullable', 'where not(toint(requestParameters.maxCount) > 5)',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.maxCount\n| where if(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))>5, 0, 1)==1'
     '\n| fields - siemforge_path1'),
    ('and_or', 'where (eventName == "A" or eventName == "B") and isnotempty(errorCode)',
     '`cloudtrail`\n| where ((eventName=="A" OR eventName=="B") AND (isnotnull(errorCode) AND errorCode!="" AND mvcount(errorCode)>0))'),
    ('isnull_string', 'where isnull(errorCode)',
     '`cloudtrail`\n| where isnull(errorCode)'),
    ('isnull_json', 'where isnull(requestParameters.instanceType)',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.instanceType\n| where isnull(siemforge_path1)'
     '\n| fields - siemforge_path1'),
    ('json_path_index', 'extend t = responseElements.instancesSet.items[-1].instanceType',
     '`cloudtrail`\n| spath output=siemforge_arr2 path=responseElements.instancesSet.items{}\n| eval siemforge_item3=mvindex(siemforge_arr2, -1)\n| spath input=siemforge_item3 output=siemforge_path1 path=instanceType\n| eval t=siemforge_path1'
     '\n| fields - siemforge_path1 siemforge_arr2 siemforge_item3'),
    ('arith', 'extend x = toint(requestParameters.a) * 2 + 1, y = 7 / 2, z = -toint(requestParameters.b) % 3',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.a\n| spath output=siemforge_path2 path=requestParameters.b\n| eval x=((if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))) * 2) + 1), y=if((7 / 2)>=0, floor((7 / 2)), ceiling((7 / 2))), z=((0 - if(tonumber(siemforge_path2)>=0, floor(tonumber(siemforge_path2)), ceiling(tonumber(siemforge_path2)))) % 3)'
     '\n| fields - siemforge_path1 siemforge_path2'),
    ('iif', 'extend x = iif(isempty(errorCode), "ok", errorCode)',
     '`cloudtrail`\n| eval x=if((isnull(errorCode) OR errorCode=="" OR mvcount(errorCode)==0), "ok", errorCode)'),
    ('case', 'extend x = case(eventName == "A", 1, eventName == "B", 2, 0)',
     '`cloudtrail`\n| eval x=case(eventName=="A", 1, eventName=="B", 2, true(), 0)'),
    ('coalesce', 'extend x = coalesce(userIdentity.userName, userIdentity.arn)',
     "`cloudtrail`\n| eval x=coalesce('userIdentity.userName', 'userIdentity.arn')"),
    ('strings', 'extend a = tolower(eventName), b = toupper(eventName), c = strlen(eventName), d = substring(eventName, 1, 3), e = strcat(eventName, "/", awsRegion), f = replace_string(eventName, "Run", "Stop"), g = replace_regex(eventName, @"(\\w+)Instances", @"\\1"), h = extract(@"^(\\w+)-", 1, userAgent)',
     '`cloudtrail`\n| eval a=lower(eventName), b=upper(eventName), c=len(eventName), d=substr(eventName, (1) + 1, 3), e=(coalesce(tostring(eventName), "").coalesce(tostring("/"), "").coalesce(tostring(awsRegion), "")), f=replace(eventName, "Run", "Stop"), g=replace(eventName, "(\\\\w+)Instances", "\\\\1"), h=if(match(userAgent, "^(\\\\w+)-"), replace(userAgent, "(?s)^.*?(?:^(\\\\w+)-).*$", "\\\\1"), null())'),
    ('split_index', 'extend last = tostring(split(userIdentity.arn, "/")[-1])',
     '`cloudtrail`\n| eval last=tostring(mvindex(split(\'userIdentity.arn\', "/"), -1))'),
    ('casts', 'extend a = tostring(readOnly), b = toint("5"), c = todouble(requestParameters.x), n = array_length(resources)',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.x\n| spath output=siemforge_path2 path=resources{}\n| eval a=tostring(readOnly), b=if(tonumber("5")>=0, floor(tonumber("5")), ceiling(tonumber("5"))), c=tonumber(siemforge_path1), n=mvcount(siemforge_path2)'
     '\n| fields - siemforge_path1 siemforge_path2'),
    ('time', 'where hourofday(_time) >= 20 or dayofweek(_time) in (0, 6)',
     '`cloudtrail`\n| where (floor(((_time % 86400) + 86400) % 86400 / 3600)>=20 OR in(((floor(_time / 86400) + 4) % 7), 0, 6))'),
    ('now_ago_bin', 'where _time > ago(1h) and bin(_time, 1h) < now() and datetime_diff("minute", now(), _time) < 90',
     '`cloudtrail`\n| where (_time>(now() - 3600) AND (floor(_time / 3600) * 3600)<now() AND (floor(now() / 60) - floor(_time / 60))<90)'),
    ('literals', 'extend a = "quote\\" back\\\\ nl\\n", b = 1.5, c = true, d = 8h, e = datetime(2024-01-31T08:00:00Z), f = 90s',
     '`cloudtrail`\n| eval a="quote\\" back\\\\ nl\n", b=1.5, c="true", d=28800, e=1706688000, f=90'),
    ('odd_names', 'extend `my col` = 1 | project `my col`, eventName',
     '`cloudtrail`\n| eval \'my col\'=1\n| table "my col" eventName'),
    # a name with a quote: commands take the field's name, never the eval text with its escapes
    ('odd_names', "extend `it's` = eventName | rename c = `it's` | extend `x'y` = 1 | sort by `x'y` | project c, `x'y`",
     '`cloudtrail`\n| eval \'it\\\'s\'=eventName\n| rename "it\'s" AS c\n| eval \'x\\\'y\'=1\n| sort 0 +"x\'y"\n| table c "x\'y"'),
    ('summarize_all', 'summarize n = count(), c = count(errorCode), d = dcount(sourceIPAddress), lo = min(_time), hi = max(_time), s = sum(toint(requestParameters.maxCount)), a = avg(toint(requestParameters.maxCount)), v = values(awsRegion), e = earliest(sourceIPAddress), l = latest(sourceIPAddress) by eventName, arn = userIdentity.arn',
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.maxCount\n| eval siemforge_arg2=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))), siemforge_arg3=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))), eventName=coalesce(eventName, "__siemforge_null__"), arn=coalesce(\'userIdentity.arn\', "__siemforge_null__")\n| stats count AS n count(errorCode) AS c dc(sourceIPAddress) AS d min(_time) AS lo max(_time) AS hi sum(siemforge_arg2) AS s avg(siemforge_arg3) AS a values(awsRegion) AS v earliest(sourceIPAddress) AS e latest(sourceIPAddress) AS l by eventName arn\n| eval eventName=if(eventName=="__siemforge_null__", null(), eventName), arn=if(arn=="__siemforge_null__", null(), arn)'),
    ('summarize_no_by', 'summarize n = count()',
     '`cloudtrail`\n| stats count AS n'),
    ('eventstats', 'eventstats total = count() by eventName | where total > 1',
     '`cloudtrail`\n| eval eventName=coalesce(eventName, "__siemforge_null__")\n| eventstats count AS total by eventName\n| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)\n| where total>1'),
    ('aggregate', 'summarize n = count() by eventName = tolower(eventName), signature',  # eval is sequential
     '`cloudtrail`\n| eval siemforge_key1=coalesce(lower(eventName), "__siemforge_null__"), signature=coalesce(eventName, "__siemforge_null__")\n| stats count AS n by siemforge_key1 signature\n| rename siemforge_key1 AS eventName\n| eval eventName=if(eventName=="__siemforge_null__", null(), eventName), signature=if(signature=="__siemforge_null__", null(), signature)'),
    ('aggregate', 'summarize c = count(), m = max(eventName) by eventName = tolower(eventName)',  # stats reads after
     '`cloudtrail`\n| eval siemforge_key1=coalesce(lower(eventName), "__siemforge_null__")\n| stats count AS c max(eventName) AS m by siemforge_key1\n| rename siemforge_key1 AS eventName\n| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
    ('aggregate', 'summarize c = count() by userIdentity.arn, x = strcat(userIdentity.arn, "-")',  # a dotted key
     '`cloudtrail`\n| eval siemforge_key1=coalesce(\'userIdentity.arn\', "__siemforge_null__"), x=coalesce((coalesce(tostring(\'userIdentity.arn\'), "").coalesce(tostring("-"), "")), "__siemforge_null__")\n| stats count AS c by siemforge_key1 x\n| rename siemforge_key1 AS userIdentity.arn\n| eval \'userIdentity.arn\'=if(\'userIdentity.arn\'=="__siemforge_null__", null(), \'userIdentity.arn\'), x=if(x=="__siemforge_null__", null(), x)'),
    ('aggregate', 'summarize e = earliest(eventName) by _time = bin(_time, 1h)',  # earliest reads the event time
     '`cloudtrail`\n| eval siemforge_key1=coalesce((floor(_time / 3600) * 3600), "__siemforge_null__")\n| stats earliest(eventName) AS e by siemforge_key1\n| rename siemforge_key1 AS _time\n| eval _time=if(_time=="__siemforge_null__", null(), _time)'),
    ('aggregate', 'summarize n = count() by requestParameters',  # a whole JSON object as the key
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters\n| eval requestParameters=coalesce(siemforge_path1, "__siemforge_null__")\n| stats count AS n by requestParameters\n| eval requestParameters=if(requestParameters=="__siemforge_null__", null(), requestParameters)'),
    ('rename_project_sort_take', 'summarize n = count() by src = sourceIPAddress | sort by tolower(src) desc | take 5',
     '`cloudtrail`\n| eval src=coalesce(sourceIPAddress, "__siemforge_null__")\n| stats count AS n by src\n| eval src=if(src=="__siemforge_null__", null(), src)\n| eval siemforge_sort1=lower(src)\n| sort 0 -siemforge_sort1\n| head 5\n| fields - siemforge_sort1'),
    ('json_path_index', 'extend j = requestParameters | extend a = tostring(j.instanceId) | extend j = additionalEventData | extend b = tostring(j.instanceId)',  # spath output of a reassigned column is not reused
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters\n| eval j=siemforge_path1\n| spath input=j output=siemforge_path2 path=instanceId\n| eval a=tostring(siemforge_path2)\n| spath output=siemforge_path3 path=additionalEventData\n| eval j=siemforge_path3\n| spath input=j output=siemforge_path4 path=instanceId\n| eval b=tostring(siemforge_path4)\n| fields - siemforge_path1 siemforge_path2 siemforge_path3 siemforge_path4'),
    ('json_path_index', 'extend j = requestParameters | where isnotnull(j.instanceId) | summarize n = count() by j | where isnotnull(j.instanceId)',  # spath output of a reassigned column is not reused
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters\n| eval j=siemforge_path1\n| spath input=j output=siemforge_path2 path=instanceId\n| where isnotnull(siemforge_path2)\n| eval j=coalesce(j, "__siemforge_null__")\n| stats count AS n by j\n| eval j=if(j=="__siemforge_null__", null(), j)\n| spath input=j output=siemforge_path3 path=instanceId\n| where isnotnull(siemforge_path3)\n| fields - siemforge_path3'),
    ('eventstats', 'eventstats n = count() by k = tolower(eventName) | where n > 1',  # keys do not become columns
     '`cloudtrail`\n| eval siemforge_key1=coalesce(lower(eventName), "__siemforge_null__")\n| eventstats count AS n by siemforge_key1\n| fields - siemforge_key1\n| where n>1'),
    ('rename_project_sort_take', 'rename ip = sourceIPAddress | project ip, eventName | sort by ip desc, eventName | take 5',
     '`cloudtrail`\n| rename sourceIPAddress AS ip\n| table ip eventName\n| sort 0 -ip +eventName\n| head 5'),
    ('parallel_extend', 'extend a = "x" | extend a = "y", b = a',
     '`cloudtrail`\n| eval a="x"\n| eval siemforge_tmp1="y", siemforge_tmp2=a\n| eval a=siemforge_tmp1, b=siemforge_tmp2\n| fields - siemforge_tmp1 siemforge_tmp2'),
]

# (construct, Sigma detection, the whole SPL)
SIGMA_ROWS = [
    ("sigma_eq_ci", "{sel: {eventName: RunInstances}, condition: sel}", '`cloudtrail` eventName="RunInstances"'),
    ("sigma_cased", "{sel: {eventName|cased: RunInstances}, condition: sel}",
     '`cloudtrail` eventName="RunInstances"\n| where eventName=="RunInstances"'),
    ("sigma_contains_all", "{sel: {userAgent|contains|all: [aws, cli]}, condition: sel}",
     '`cloudtrail` userAgent="*aws*" userAgent="*cli*"'),
    ("sigma_null", "{sel: {errorCode: null}, condition: sel}", "`cloudtrail`\n| where isnull(errorCode)"),
    ("sigma_re_i", "{sel: {userAgent|re|i: '^AWS'}, condition: sel}",
     '`cloudtrail`\n| where match(userAgent, "(?i)^AWS")'),
    ("sigma_cidr", "{sel: {sourceIPAddress|cidr: [10.0.0.0/8, 'fd00::/8']}, condition: sel}",
     '`cloudtrail`\n| where (cidrmatch("10.0.0.0/8", sourceIPAddress) OR cidrmatch("fd00::/8", sourceIPAddress))'),
    ("sigma_keyword", "{keywords: [mimikatz], condition: keywords}",
     '`cloudtrail`\n| where match(_raw, "(?i).*mimikatz.*")'),
    ("sigma_not_filter", "{sel: {eventName: A}, filter: {userAgent|startswith: aws}, condition: sel and not filter}",
     '`cloudtrail` eventName="A" NOT (userAgent="aws*")'),
    ("sigma_or_grouped", "{a: {eventName: A}, b: {eventSource: B}, c: {awsRegion: C}, condition: a and (b or c)}",
     '`cloudtrail` eventName="A" (eventSource="B" OR awsRegion="C")'),
    ("sigma_wildcard_star_in_value", "{sel: {userAgent: 'aws*cli'}, condition: sel}",
     '`cloudtrail` userAgent="aws*cli"'),
    ("sigma_escaped_star", "{sel: {userAgent: 'a\\*b'}, condition: sel}",
     '`cloudtrail`\n| where lower(userAgent)=="a*b"'),
    ("sigma_fieldref", "{sel: {userIdentity.userName|fieldref: userIdentity.principalId}, condition: sel}",
     "`cloudtrail`\n| where lower('userIdentity.userName')==lower('userIdentity.principalId')"),
    ("sigma_gt", "{sel: {requestParameters.maxCount|gt: 10}, condition: sel}",
     "`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters.maxCount\n| where siemforge_path1>10"
     '\n| fields - siemforge_path1'),
]


def compile_body(tmp_path: Path, body: str) -> str:
    p = tmp_path / "rule.yml"
    p.write_text(HEAD + body)
    res = compile_file(p)
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    return compile_spl(res.rule, None)


@pytest.mark.parametrize("construct,query,expected", QUERY_ROWS, ids=[r[0] for r in QUERY_ROWS])
def test_query_construct(construct: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_body(tmp_path, f"query: |\n  {query}\n") == expected


@pytest.mark.parametrize("construct,detection,expected", SIGMA_ROWS, ids=[r[0] for r in SIGMA_ROWS])
def test_sigma_construct(construct: str, detection: str, expected: str, tmp_path: Path) -> None:
    body = "id: 7b7d34f4-2a4e-4d55-a9e4-6c1a4a0f0e01\ndetection: " + detection + "\n"
    assert compile_body(tmp_path, body) == expected


@pytest.mark.parametrize("query,message", [
    ('where tobool(readOnly)', "no boolean values"),
    ('where datetime_diff("month", now(), _time) > 1', "time-zone independent"),
    ("where status == \"success\"", "has no Splunk field"),
])
def test_what_spl_cannot_say_is_a_compile_error(query: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(CompileError) as exc:
        compile_body(tmp_path, f"query: |\n  {query}\n")
    assert message in str(exc.value)


def _seed(name: str):  # type: ignore[no-untyped-def]
    from helpers import ROOT

    rule = compile_file(ROOT / "rules" / name / f"{name}.yml").rule
    assert rule is not None
    return rule


def test_ec2_burst_compiles() -> None:
    spl = compile_spl(_seed("aws_ec2_suspicious_compute_deployments"), None)
    assert spl.startswith('`cloudtrail` eventName="RunInstances"')
    assert "sum(totalCoreCompute) AS TotalCores" in spl


def test_ecr_compiles_to_one_search_per_binding() -> None:
    rule = _seed("aws_ecr_upload_outside_business_hours")
    raw, asl = compile_spl(rule, "raw"), compile_spl(rule, "asl")
    assert raw.startswith('`cloudtrail` eventSource="ecr.amazonaws.com" eventName="PutImage"')
    assert asl.startswith('`amazon_security_lake` api.service.name="ecr.amazonaws.com" api.operation="PutImage"')
    for spl in (raw, asl):
        # UTC hour and weekday from _time: not date_hour/date_wday or strftime (the searcher's time zone), and the
        # weekday compared as a number, where the ASL seed's `weekday=Saturday` compares with a field that does
        # not exist and never matches
        assert "floor(((_time % 86400) + 86400) % 86400 / 3600)>=20" in spl and "date_hour" not in spl
        assert "in(((floor(_time / 86400) + 4) % 7), 0, 6)" in spl and "strftime" not in spl
    assert "spath output=siemforge_path1 path=api.request.data.repositoryName" in asl


def test_unseen_image_compiles_to_tstats_over_the_change_model() -> None:
    rule = _seed("cloud_instance_created_unseen_image")
    spl = compile_spl(rule, None)
    first = spl.splitlines()[0]
    assert first.startswith("| tstats summariesonly=false fillnull_value=")
    assert "from datamodel=Change where All_Changes.action=\"created\" by All_Changes.Instance_Changes.image_id " \
           "All_Changes.user" in first
    assert "| lookup previously_seen_cloud_compute_images image_id AS image_id OUTPUT" in spl
    assert "| eventstats max(enough_data) AS enough_data\n| where enough_data==1" in spl
    # the same rule over raw CloudTrail expands the cim.change view instead
    assert compile_spl(rule, "raw").startswith("`cloudtrail` eventSource=")


# (binding, construct, query, the whole SPL): the same constructs on the other bindings
BINDING_ROWS = [
    ("asl", "eq_ci", 'where eventName =~ "PutImage"', '`amazon_security_lake` api.operation="PutImage"'),
    ("asl", "eq_cs", 'where eventSource == "ecr.amazonaws.com"',
     '`amazon_security_lake` api.service.name="ecr.amazonaws.com"\n| where \'api.service.name\'=="ecr.amazonaws.com"'),
    ("asl", "json_path", "where isnotempty(requestParameters.repositoryName)",
     "`amazon_security_lake`\n| spath output=siemforge_path1 path=api.request.data.repositoryName\n"
     '| where (isnotnull(siemforge_path1) AND siemforge_path1!="" AND mvcount(siemforge_path1)>0)'
     '\n| fields - siemforge_path1'),
    ("asl", "aggregate", "summarize n = count() by src = sourceIPAddress",
     '`amazon_security_lake`\n| eval src=coalesce(\'src_endpoint.ip\', "__siemforge_null__")\n| stats count AS n by src\n'
     '| eval src=if(src=="__siemforge_null__", null(), src)'),
    ("raw", "eq_ci", 'where eventName =~ "PutImage"', '`cloudtrail` eventName="PutImage"'),
]


@pytest.mark.parametrize("binding,construct,query,expected", BINDING_ROWS,
                         ids=[f"{r[0]}:{r[1]}" for r in BINDING_ROWS])
def test_construct_per_binding(binding: str, construct: str, query: str, expected: str, tmp_path: Path) -> None:
    p = tmp_path / "rule.yml"
    p.write_text(HEAD + f"query: |\n  {query}\n")
    rule = compile_file(p).rule
    assert rule is not None
    assert compile_spl(rule, binding) == expected


CIM_HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail, category: change}\n"

# the cim.change view on the CIM binding: tstats when the pipeline starts with filters and a summarize
CIM_ROWS = [
    ("tstats", 'where action =~ "created" | summarize n = count(), first = min(_time) by user',
     '| tstats summariesonly=false fillnull_value="__siemforge_null__" count AS n min(_time) AS first '
     'from datamodel=Change where All_Changes.action="created" by All_Changes.user\n'
     "| rename All_Changes.user AS user\n"
     '| eval user=if(user=="__siemforge_null__", null(), user)'),
    ("tstats_values_then_stages", "summarize dest = values(object_id) by image_id | where image_id != \"unknown\"",
     '| tstats summariesonly=false fillnull_value="__siemforge_null__" values(All_Changes.object_id) AS dest '
     "from datamodel=Change by All_Changes.Instance_Changes.image_id\n"
     "| rename All_Changes.Instance_Changes.image_id AS image_id\n"
     '| eval image_id=if(image_id=="__siemforge_null__", null(), image_id)\n'
     '| where (isnull(image_id) OR image_id!="unknown")'),
]


@pytest.mark.parametrize("construct,query,expected", CIM_ROWS, ids=[r[0] for r in CIM_ROWS])
def test_cim_binding(construct: str, query: str, expected: str, tmp_path: Path) -> None:
    p = tmp_path / "rule.yml"
    p.write_text(CIM_HEAD + f"query: |\n  {query}\n")
    rule = compile_file(p).rule
    assert rule is not None
    assert compile_spl(rule, "cim") == expected


def test_cim_binding_refuses_a_pipeline_tstats_cannot_start(tmp_path: Path) -> None:
    p = tmp_path / "rule.yml"
    p.write_text(CIM_HEAD + 'query: |\n  where user contains "admin"\n')
    rule = compile_file(p).rule
    assert rule is not None
    with pytest.raises(CompileError) as exc:
        compile_spl(rule, "cim")
    assert "--binding raw" in str(exc.value)
    assert compile_spl(rule, "raw").startswith("`cloudtrail`")  # the view expanded over raw CloudTrail
