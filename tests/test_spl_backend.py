"""Splunk backend: rows that are about SPL — the rule's pipeline (or Sigma detection) and the exact SPL.

Each construct's output on every target is in tests/test_constructs.py (one table, every target side by side); the
rows here are the SPL-specific cases (temporaries, spath reuse, stats keys, bindings, tstats). There is no SPL engine
here, so these rows are the golden record; every construct row also parses with grammars/spl.lark."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler.api import compile_file
from siemforge.compiler.diagnostics import CompileError

from helpers import compile_rule

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"

# (construct, pipeline-language query, the whole SPL)
QUERY_ROWS = [
    # a name with a quote: commands take the field's name, never the eval text with its escapes
    ('odd_names', "extend `it's` = eventName | rename c = `it's` | extend `x'y` = 1 | sort by `x'y` | project c, `x'y`",
     '`cloudtrail`\n| eval \'it\\\'s\'=eventName\n| rename "it\'s" AS c\n| eval \'x\\\'y\'=1\n| sort 0 +"x\'y"\n| table c "x\'y"'),
    ('aggregate', 'summarize n = count() by eventName = tolower(eventName), signature',  # eval is sequential
     '`cloudtrail`\n| eval siemforge_key1=lower(eventName), signature=eventName\n| fillnull value="__siemforge_null__" siemforge_key1 signature\n| stats count AS n by siemforge_key1 signature\n| rename siemforge_key1 AS eventName\n| foreach eventName signature [eval <<FIELD>>=if(\'<<FIELD>>\'=="__siemforge_null__", null(), \'<<FIELD>>\')]'),
    ('aggregate', 'summarize c = count(), m = max(eventName) by eventName = tolower(eventName)',  # stats reads after
     '`cloudtrail`\n| eval siemforge_key1=lower(eventName)\n| fillnull value="__siemforge_null__" siemforge_key1\n| stats count AS c max(eventName) AS m by siemforge_key1\n| rename siemforge_key1 AS eventName\n| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
    ('aggregate', 'summarize c = count() by userIdentity.arn, x = strcat(userIdentity.arn, "-")',  # a dotted key
     '`cloudtrail`\n| eval siemforge_key1=\'userIdentity.arn\', x=(coalesce(tostring(\'userIdentity.arn\'), "").coalesce(tostring("-"), ""))\n| fillnull value="__siemforge_null__" siemforge_key1\n| stats count AS c by siemforge_key1 x\n| rename siemforge_key1 AS userIdentity.arn\n| eval \'userIdentity.arn\'=if(\'userIdentity.arn\'=="__siemforge_null__", null(), \'userIdentity.arn\')'),
    ('aggregate', 'summarize e = earliest(eventName) by _time = bin(_time, 1h)',  # earliest reads the event time
     '`cloudtrail`\n| eval siemforge_key1=(floor(_time / 3600) * 3600)\n| fillnull value="__siemforge_null__" siemforge_key1\n| stats earliest(eventName) AS e by siemforge_key1\n| rename siemforge_key1 AS _time\n| eval _time=if(_time=="__siemforge_null__", null(), _time)'),
    ('aggregate', 'summarize n = count() by requestParameters',  # a whole JSON object as the key
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters\n| fillnull value="__siemforge_null__" siemforge_path1\n| stats count AS n by siemforge_path1\n| rename siemforge_path1 AS requestParameters\n| eval requestParameters=if(requestParameters=="__siemforge_null__", null(), requestParameters)'),
    ('rename_project_sort_take', 'summarize n = count() by src = sourceIPAddress | sort by tolower(src) desc | take 5',
     '`cloudtrail`\n| fillnull value="__siemforge_null__" sourceIPAddress\n| stats count AS n by sourceIPAddress\n| rename sourceIPAddress AS src\n| eval src=if(src=="__siemforge_null__", null(), src)\n| eval siemforge_sort1=lower(src)\n| sort 0 -siemforge_sort1\n| head 5\n| fields - siemforge_sort1'),
    ('json_path_index', 'extend j = requestParameters | extend a = tostring(j.instanceId) | extend j = additionalEventData | extend b = tostring(j.instanceId)',  # spath output of a reassigned column is not reused
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters\n| eval j=siemforge_path1\n| spath input=j output=a path=instanceId\n| spath output=siemforge_path2 path=additionalEventData\n| eval j=siemforge_path2\n| spath input=j output=b path=instanceId\n| fields - siemforge_path1 siemforge_path2'),
    ('json_path_index', 'extend j = requestParameters | where isnotnull(j.instanceId) | summarize n = count() by j | where isnotnull(j.instanceId)',  # spath output of a reassigned column is not reused
     '`cloudtrail`\n| spath output=siemforge_path1 path=requestParameters\n| eval j=siemforge_path1\n| spath input=j output=siemforge_path2 path=instanceId\n| where isnotnull(siemforge_path2)\n| fillnull value="__siemforge_null__" j\n| stats count AS n by j\n| eval j=if(j=="__siemforge_null__", null(), j)\n| spath input=j output=siemforge_path3 path=instanceId\n| where isnotnull(siemforge_path3)\n| fields - siemforge_path3'),
    ('bin', 'extend n = bin(todouble(eventVersion), todouble(recipientAccountId))',  # a computed size <= 0 is null
     '`cloudtrail`\n| eval n=if(tonumber(recipientAccountId) > 0, (floor(tonumber(eventVersion) / tonumber(recipientAccountId)) * tonumber(recipientAccountId)), null())'),
    ('eventstats', 'eventstats n = count() by k = tolower(eventName) | where n > 1',  # keys do not become columns
     '`cloudtrail`\n| eval siemforge_key1=coalesce(lower(eventName), "__siemforge_null__")\n| eventstats count AS n by siemforge_key1\n| fields - siemforge_key1\n| where n>1'),
]

def compile_body(tmp_path: Path, body: str) -> str:
    return compile_spl(compile_rule(tmp_path, HEAD + body), None)


@pytest.mark.parametrize("construct,query,expected", QUERY_ROWS, ids=[r[0] for r in QUERY_ROWS])
def test_query_construct(construct: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_body(tmp_path, f"query: |\n  {query}\n") == expected


@pytest.mark.parametrize("query,message", [
    ('where tobool(readOnly)', "no boolean values"),
    ('where datetime_diff("month", now(), _time) > 1', "time-zone independent"),
    ("where statusCode == \"success\"", "has no Splunk field"),
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
        assert "((floor(_time / 3600) % 24 + 24) % 24)>=20" in spl and "date_hour" not in spl
        assert "in(((floor(_time / 86400) + 4) % 7 + 7) % 7, 0, 6)" in spl and "strftime" not in spl
    assert "spath output=repository path=api.request.data.repositoryName" in asl


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
     '| where isnotnull(siemforge_path1) AND siemforge_path1!="" AND mvcount(siemforge_path1)>0'
     '\n| fields - siemforge_path1'),
    ("asl", "aggregate", "summarize n = count() by src = sourceIPAddress",
     '`amazon_security_lake`\n| fillnull value="__siemforge_null__" src_endpoint.ip\n| stats count AS n by src_endpoint.ip\n| rename src_endpoint.ip AS src\n| eval src=if(src=="__siemforge_null__", null(), src)'),
    ("raw", "eq_ci", 'where eventName =~ "PutImage"', '`cloudtrail` eventName="PutImage"'),
]


@pytest.mark.parametrize("binding,construct,query,expected", BINDING_ROWS,
                         ids=[f"{r[0]}:{r[1]}" for r in BINDING_ROWS])
def test_construct_per_binding(binding: str, construct: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_spl(compile_rule(tmp_path, HEAD + f"query: |\n  {query}\n"), binding) == expected


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
     '| where isnull(image_id) OR image_id!="unknown"'),
]


@pytest.mark.parametrize("construct,query,expected", CIM_ROWS, ids=[r[0] for r in CIM_ROWS])
def test_cim_binding(construct: str, query: str, expected: str, tmp_path: Path) -> None:
    assert compile_spl(compile_rule(tmp_path, CIM_HEAD + f"query: |\n  {query}\n"), "cim") == expected


@pytest.mark.parametrize("query", ['where user contains "admin"',
                                   "summarize n = count(), arg_max(_time, user) by object_id"])  # no tstats arg_max
def test_cim_binding_refuses_a_pipeline_tstats_cannot_start(query: str, tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, CIM_HEAD + f"query: |\n  {query}\n")
    with pytest.raises(CompileError) as exc:
        compile_spl(rule, "cim")
    assert "--binding raw" in str(exc.value)
    assert compile_spl(rule, "raw").startswith("`cloudtrail`")  # the view expanded over raw CloudTrail
