"""Source definitions: derived fields (`aliases:`) — the CIM names Splunk's AWS add-on derives, defined once over the
raw CloudTrail fields and expanded where a rule names them, so every target and the executor compute one value."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.registry import targets
from siemforge.compiler import ir
from siemforge.compiler import syntax as syn
from siemforge.compiler.analyze import Analyzer, Schema
from siemforge.compiler.api import compile_file
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import CompileError, DiagnosticSink
from siemforge.compiler.sources import _parse_source, builtin_sources
from siemforge.compiler.yamlpos import TextOrigin

HEAD = "title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\nlogsource: {product: aws, service: cloudtrail}\n"
EVENTS = [
    {"eventName": "PutImage", "sourceIPAddress": "203.0.113.12", "recipientAccountId": "123456789012",
     "userIdentity": {"type": "IAMUser", "userName": "Mary_Major", "arn": "arn:aws:iam::123456789012:user/Mary_Major"}},
    {"eventName": "PutImage", "sourceIPAddress": "198.51.100.7", "recipientAccountId": "123456789012",
     "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/ci/build-42"}},
    {"eventName": "ListImages", "sourceIPAddress": "198.51.100.7"},
]


def compile_text(tmp_path: Path, body: str) -> Any:
    f = tmp_path / "rule.yml"
    f.write_text(HEAD + body)
    return compile_file(f)


def run(tmp_path: Path, body: str) -> list[dict[str, Any]]:
    res = compile_text(tmp_path, body)
    assert res.rule is not None, [str(d) for d in res.diagnostics]
    logs = tmp_path / "events.ndjson"
    logs.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in EVENTS))
    return run_rule(res.rule, [logs]).rows


def test_binding_alias_table_agrees_with_the_source_definitions() -> None:
    """The raw Splunk binding documents each add-on field with the raw field it comes from; the source defines it."""
    src = builtin_sources()["aws.cloudtrail"]
    table = builtin_bindings()[("aws.cloudtrail", "raw")].extra["aliases"]
    assert set(table) == set(src.aliases)
    for name, doc in table.items():
        text = syn.node_text(src.aliases[name])
        raw_fields = re.findall(r"[A-Za-z]+(?:\.[A-Za-z]+)+|[a-z]+[A-Z][A-Za-z]*", str(doc))
        quoted = re.findall(r'"([^"]+)"', str(doc))
        assert all(f in text for f in raw_fields + quoted), (name, doc, text)


def test_aliases_in_a_pipeline_compute_the_add_on_fields(tmp_path: Path) -> None:
    rows = run(tmp_path, 'query: |\n  where signature == "PutImage"\n'
                         "  | project signature, user, src, vendor_account, vendor_product\n")
    assert rows == [
        {"signature": "PutImage", "user": "Mary_Major", "src": "203.0.113.12", "vendor_account": "123456789012",
         "vendor_product": "AWS CloudTrail"},
        {"signature": "PutImage", "user": "build-42", "src": "198.51.100.7", "vendor_account": "123456789012",
         "vendor_product": "AWS CloudTrail"},
    ]


def test_an_alias_is_its_expression_in_the_ir_and_in_every_target(tmp_path: Path) -> None:
    res = compile_text(tmp_path, 'query: |\n  where src == "203.0.113.12"\n')
    [stage] = res.rule.pipeline.stages
    assert stage == ir.Filter(ir.Compare(ir.CmpOp.EQ, ir.Column("sourceIPAddress", (), ir.Type.STRING),
                                         ir.Literal("203.0.113.12", ir.Type.STRING)))
    reg = targets()
    assert 'sourceIPAddress="203.0.113.12"' in reg["splunk"].compile(res.rule, None)
    assert 'SourceIpAddress == "203.0.113.12"' in reg["sentinel"].compile(res.rule, None)


def test_sigma_detections_may_name_aliases(tmp_path: Path) -> None:
    rows = run(tmp_path, "detection: {sel: {signature: putimage, user|endswith: '-42'}, condition: sel}\n")
    assert [r["sourceIPAddress"] for r in rows] == ["198.51.100.7"]


def test_a_rule_column_shadows_an_alias(tmp_path: Path) -> None:
    rows = run(tmp_path, 'query: |\n  extend user = "someone" | where user == "someone" | project user\n')
    assert rows == [{"user": "someone"}] * 3


def test_rename_of_an_alias_says_to_extend(tmp_path: Path) -> None:
    res = compile_text(tmp_path, "query: |\n  rename ip = src\n")
    assert res.rule is None and "use `extend ip = src`" in res.diagnostics[0].message


def test_aliases_end_where_the_source_fields_end(tmp_path: Path) -> None:
    res = compile_text(tmp_path, "query: |\n  summarize n = count() by eventName\n  | where user == \"x\"\n")
    assert res.rule is None
    assert "no column 'user' here" in res.diagnostics[0].message


SOURCE = """name: test.src
logsource: {product: test}
fields:
  a: string
  b: string
aliases: |
  extend ab = strcat(a, b),
         bad = nosuchfunction(a)
"""


def test_alias_diagnostics_point_into_the_source_file() -> None:
    src = _parse_source(SOURCE, "sources/test.yml")
    assert set(src.aliases) == {"ab", "bad"}
    rule_origin = TextOrigin("rule.yml", 5, 3, True, 2)
    sink = DiagnosticSink()
    analyzer = Analyzer(rule_origin, sink)
    schema = Schema(dict(src.columns()), True, src, None)
    ok = analyzer.path(syn.Name("ab", syn.Pos(1, 1, 1, 3)), schema)
    assert isinstance(ok, ir.Call) and ok.fn == "strcat"
    with pytest.raises(CompileError) as exc:
        analyzer.path(syn.Name("bad", syn.Pos(1, 1, 1, 4)), schema)
    d = exc.value.diagnostics[0]
    assert "nosuchfunction" in d.message and d.span is not None
    assert (d.span.file, d.span.line) == ("sources/test.yml", 8)
    assert analyzer.origin is rule_origin  # restored after the alias


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        ("aliases: |\n  where a == b\n", "a single `extend"),
        ("aliases: |\n  extend a = b\n", "alias 'a' is already a field"),
        ("aliases: [x]\n", "`aliases` must be text"),
    ],
)
def test_bad_alias_sections(aliases: str, message: str) -> None:
    text = SOURCE[: SOURCE.index("aliases:")] + aliases
    with pytest.raises(CompileError) as exc:
        _parse_source(text, "sources/test.yml").aliases  # noqa: B018 - parsed on first use
    assert message in exc.value.diagnostics[0].message
    assert exc.value.diagnostics[0].span is not None


def test_lookup_on_an_alias_matches_the_column_named_as_written(tmp_path: Path) -> None:
    (tmp_path / "ips.csv").write_text("src,owner\n203.0.113.12,build farm\n")
    body = ("lookups: {ips: ips.csv}\nquery: |\n  where signature == \"PutImage\"\n  | lookup ips on src\n"
            "  | project owner\n")
    assert run(tmp_path, body) == [{"owner": "build farm"}, {"owner": None}]


def test_an_error_inside_an_alias_points_into_the_source_and_at_the_use(tmp_path: Path) -> None:
    res = compile_text(tmp_path, 'query: |\n  extend userIdentity = 5\n  | where user == "x"\n')
    assert res.rule is None
    err = res.diagnostics[0]
    assert err.span is not None and err.span.file.endswith("aws_cloudtrail.yml")
    assert err.hint is not None and err.hint.startswith(
        f"in the derived field 'user' of source 'aws.cloudtrail', named at {tmp_path / 'rule.yml'}:6:11")


def test_entities_cannot_name_an_alias_the_rows_do_not_carry(tmp_path: Path) -> None:
    res = compile_text(tmp_path, 'query: |\n  where signature == "PutImage"\nentities:\n  account: {name: user}\n')
    assert res.rule is None
    d = res.diagnostics[0]
    assert "'user' is a derived field of source 'aws.cloudtrail'" in d.message and d.hint == (
        "add it to the rows: `| extend user = user`")
    assert d.span is not None and d.span.line == 7
    ok = compile_text(tmp_path, 'query: |\n  where signature == "PutImage" | extend user = user\n'
                                "entities:\n  account: {name: user}\n")
    assert ok.rule is not None, [str(x) for x in ok.diagnostics]


def test_a_renamed_field_is_gone_for_aliases_and_names_alike(tmp_path: Path) -> None:
    for use in ("summarize n = count() by signature", 'where eventName == "x"'):
        res = compile_text(tmp_path, f"query: |\n  rename evt = eventName\n  | {use}\n")
        assert res.rule is None
        assert any("no column 'eventName' here: it was renamed to 'evt'" in d.message for d in res.diagnostics)
    res = compile_text(tmp_path, "query: |\n  rename evt = eventName\nentities:\n  account: {name: eventName}\n")
    assert res.rule is None and "'eventName' is not a column of the output rows: it was renamed to 'evt'" in (
        res.diagnostics[0].message)


OCSF_STATUS = [  # a CloudTrail record → Security Lake's OCSF status for it (docs/semantics.md decision 90)
    ({"eventName": "DeleteGroup", "errorCode": "NoSuchEntity"}, "Failure"),
    ({"eventName": "DeleteGroup"}, "Success"),
    ({"eventName": "DeleteGroup", "errorCode": ""}, "Success"),  # Sentinel's ErrorCode of a record without one
    ({"eventName": "CreateNetworkAclEntry", "errorCode": "InvalidCharacter"}, "Failure"),
    ({"eventName": "ConsoleLogin", "responseElements": {"ConsoleLogin": "Failure"}}, None),  # an Authentication record
    ({"eventName": "AssumeRole", "errorCode": "AccessDenied"}, None),
]


@pytest.mark.parametrize("binding", [None, "sentinel"])
def test_ocsf_status_is_security_lakes_status_on_every_shape(tmp_path: Path, binding: str | None) -> None:
    """The same value from the raw record and from its Sentinel AWSCloudTrail row (the executor reads no Security
    Lake record; on Splunk's asl binding the same expression reads OCSF's api.response.error, below)."""
    from siemforge.backends.executor.shapes import record_to_row

    res = compile_text(tmp_path, "query: |\n  project eventName, ocsf_status\n")
    b = builtin_bindings()[("aws.cloudtrail", binding)] if binding else None
    logs = tmp_path / "events.ndjson"
    events = [{"eventTime": "2024-01-01T00:00:00Z", **e} for e, _ in OCSF_STATUS]
    logs.write_bytes(b"".join(orjson.dumps(record_to_row(e, b) if b else e) + b"\n" for e in events))
    got = [r.get("ocsf_status") for r in run_rule(res.rule, [logs], binding=b).rows]
    assert got == [want for _, want in OCSF_STATUS]


def test_ocsf_status_on_real_network_acl_entries() -> None:
    """panther-analysis's five CreateNetworkAclEntry records: two with an errorCode (InvalidCharacter,
    ValidationError) are Failure, three Success."""
    from helpers import shared_path

    path = shared_path("data", "cloudtrail", "panther-analysis.ndjson")
    src = HEAD + 'query: |\n  where eventName == "CreateNetworkAclEntry"\n  | summarize n = count() by ocsf_status\n'
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        res = compile_text(Path(d), src)
        got = sorted((r["ocsf_status"], r["n"]) for r in run_rule(res.rule, [path]).rows)
    assert got == [("Failure", 2), ("Success", 3)]


def test_ocsf_status_on_security_lake_reads_the_ocsf_error(tmp_path: Path) -> None:
    res = compile_text(tmp_path, 'query: |\n  where eventName =~ "DeleteGroup" and ocsf_status =~ "Failure"\n')
    spl = targets()["splunk"].compile(res.rule, "asl")
    assert spl == (
        '`amazon_security_lake` api.operation="DeleteGroup"\n'
        "| where lower(case(in('api.operation', \"AssumeRole\", \"AssumeRoleWithSAML\", \"AssumeRoleWithWebIdentity\", "
        '"CheckMfa", "ConsoleLogin"), null(), isnotnull(\'api.response.error\') AND \'api.response.error\'!="", '
        '"Failure", true(), "Success"))=="failure"')
