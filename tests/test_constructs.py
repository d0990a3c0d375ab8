"""One construct table for every target (after sqlglot's `validate_all`): each row is one construct of
docs/semantics.md written once — a pipeline query or a Sigma detection — with what each target emits for it, or
`Unsupported(reason)` where the target refuses it; a column per registered target (the executor's is the typed IR
it runs; its results for each construct are in tests/test_semantics.py under the same names).

The expected outputs are generated for review: `python tools/regen_constructs.py` rewrites them between the markers
below from what the backends emit now; read the diff before committing it. Every KQL output is also checked by
Microsoft's Kusto.Language and every SPL output by grammars/spl.lark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.backends.registry import targets
from siemforge.compiler import ir
from siemforge.compiler.diagnostics import CompileError

from helpers import ROOT, compile_rule

HEAD = "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
LOOKUP = "image_id,owner,seen\nami-1,alice,10\n"
SIGMA_ID = "id: 7b7d34f4-2a4e-4d55-a9e4-6c1a4a0f0e01\n"
# every registered target, on its default binding (the executor's compiled form is the typed IR it runs)
COMPILERS = {name: target.compile for name, target in sorted(targets().items())}


@dataclass(frozen=True)
class Unsupported:
    """The target refuses the construct, with this reason."""

    reason: str


@dataclass(frozen=True)
class Row:
    construct: str  # a construct name of docs/semantics.md
    query: str  # a pipeline-language query, or a Sigma detection when `sigma`
    expected: dict[str, str | Unsupported]  # target -> the whole emitted query, or its refusal
    sigma: bool = False
    lookups: bool = False  # the rule declares the lookup table `images` (LOOKUP)
    correlation: bool = False  # `query` is a Sigma `correlation:` block over the base rules BASES


# the base rules a correlation row correlates (one file with it: multi-document YAML)
BASES = ("title: run\nname: run\nlogsource: {product: aws, service: cloudtrail}\n"
         "detection: {sel: {eventName: RunInstances}, condition: sel}\n---\n"
         "title: stop\nname: stop\nlogsource: {product: aws, service: cloudtrail}\n"
         "detection: {sel: {eventName: StopInstances}, condition: sel}\n---\n")


def rule_of(row: Row, folder: Path) -> ir.RuleIR:
    if row.correlation:
        from siemforge.compiler.api import compile_rules

        path = folder / "rule.yml"
        path.write_text(BASES + "title: t\n" + SIGMA_ID + "correlation: " + row.query + "\n")
        (res,) = [r for r in compile_rules(path) if r.rule is None or r.rule.pipeline.source.union is not None]
        assert res.rule is not None, [str(d) for d in res.diagnostics]
        return res.rule
    head = HEAD
    if row.lookups:
        (folder / "images.csv").write_text(LOOKUP)
        head += "lookups: {images: images.csv}\n"
    body = SIGMA_ID + "detection: " + row.query + "\n" if row.sigma else "query: |\n  " + row.query + "\n"
    return compile_rule(folder, head + body)


def compile_row(row: Row, folder: Path) -> dict[str, str | Unsupported]:
    """What every target emits for the row now."""
    rule = rule_of(row, folder)
    out: dict[str, str | Unsupported] = {}
    for target, compile_ in COMPILERS.items():
        try:
            text = compile_(rule, None).replace(str(folder), "RULE_FOLDER")  # the IR names the lookup's file
            out[target] = _without_ir_header(text) if target == "executor" else text
        except CompileError as exc:
            out[target] = Unsupported(exc.diagnostics[0].message.removeprefix("t: "))
    return out


def _without_ir_header(text: str) -> str:
    """The IR without the lines every row shares (rule id and title, alert, the source)."""
    return "\n".join(x for x in text.splitlines() if not x.startswith(("rule ", "alert when ", "source ")))


# BEGIN ROWS: generated expectations (python tools/regen_constructs.py); the constructs and queries are edited by hand
ROWS = [
    Row('literal', 'extend a = "quote\\" back\\\\ nl\\n", b = 1.5, c = true, d = 8h, e = datetime(2024-01-31T08:00:00Z), f = 90s', {
        'executor': '| extend[parallel] a: string = "quote\\" back\\\\ nl\\n", b: real = 1.5, c: bool = true, d: timespan = timespan(28800s), e: datetime = datetime(2024-01-31T08:00:00Z), f: timespan = timespan(90s)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend a = "quote\\" back\\\\ nl\\n", b = 1.5, c = true, d = 8h, e = datetime(2024-01-31T08:00:00Z), f = 90s'),
        'splunk': ('`cloudtrail`\n'
                   '| eval a="quote\\" back\\\\ nl\n'
                   '", b=1.5, c="true", d=28800, e=1706688000, f=90'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    \'quote" back\\ nl\n'
                '\' AS "a",\n'
                '    1.5 AS "b",\n'
                '    TRUE AS "c",\n'
                '    INTERVAL (\n'
                '      28800\n'
                '    ) SECOND AS "d",\n'
                '    CAST(\'2024-01-31 08:00:00\' AS TIMESTAMP) AS "e",\n'
                '    INTERVAL (\n'
                '      90\n'
                '    ) SECOND AS "f"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('column', 'extend t = responseElements.instancesSet.items[-1].instanceType', {
        'executor': '| extend[parallel] t: any = responseElements.instancesSet.items[-1].instanceType',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResponseElementsJson = parse_json(ResponseElements)\n'
                     '| extend t = ResponseElementsJson.instancesSet.items[-1].instanceType\n'
                     '| project-away ResponseElementsJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_arr2 path=responseElements.instancesSet.items{}\n'
                   '| eval siemforge_item3=mvindex(siemforge_arr2, -1)\n'
                   '| spath input=siemforge_item3 output=siemforge_path1 path=instanceType\n'
                   '| eval t=siemforge_path1\n'
                   '| fields - siemforge_path1 siemforge_arr2 siemforge_item3'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "responseElements" -> \'$.instancesSet.items[#-1].instanceType\' AS "t"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('any_element', 'mv-expand s = parse_json(requestParameters.policy).Statement | where s.Action[] =~ "kms:Encrypt"', {
        'executor': ("| expand[null: one row, empty: none] s: dynamic = parse_json(requestParameters.policy)['Statement'][*]\n"
                     '| filter any(s.Action[*], (elem ==~i "kms:Encrypt"))'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| mv-expand s = parse_json(tostring(RequestParametersJson.policy)).Statement\n'
                     '| mv-apply with_itemindex=siemforge_index_2 siemforge_elem_1 = array_concat(dynamic([null]), iff(gettype(s.Action) == "array", s.Action, dynamic([]))) to typeof(dynamic) on (summarize siemforge_any_3 = countif(siemforge_index_2 > 0 and tostring(siemforge_elem_1) =~ "kms:Encrypt"))\n'
                     '| where siemforge_any_3 > 0\n'
                     '| project-away siemforge_any_3\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path2 path=requestParameters.policy\n'
                   '| eval siemforge_val3=siemforge_path2\n'
                   '| spath input=siemforge_val3 output=siemforge_path4 path=Statement\n'
                   '| eval siemforge_json1=siemforge_path4\n'
                   '| spath input=siemforge_json1 output=siemforge_path5 path={}\n'
                   '| eval siemforge_count6=case(isnotnull(siemforge_path5), mvcount(siemforge_path5), isnull(siemforge_json1), 1, match(siemforge_json1, "^\\\\s*(\\\\[\\\\s*\\\\]|\\\\{\\\\s*\\\\})\\\\s*$"), 0, true(), 1)\n'
                   '| where siemforge_count6>0\n'
                   '| eval siemforge_index7=mvrange(0, siemforge_count6)\n'
                   '| mvexpand siemforge_index7\n'
                   '| eval s=if(isnotnull(siemforge_path5), mvindex(siemforge_path5, siemforge_index7), siemforge_json1)\n'
                   '| fields - siemforge_count6 siemforge_index7 siemforge_json1\n'
                   '| spath input=s output=siemforge_path8 path=Action{}\n'
                   '| where isnotnull(mvfilter(lower(siemforge_path8)=="kms:encrypt"))\n'
                   '| fields - siemforge_path2 siemforge_val3 siemforge_path4 siemforge_path5 siemforge_path8'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    UNNEST(CASE\n'
                '      WHEN (\n'
                '        CASE\n'
                '          WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '          THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '          ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "        END -> '$.Statement'\n"
                '      ) IS NULL\n'
                '      OR JSON_TYPE(\n'
                '        CASE\n'
                '          WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '          THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '          ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "        END -> '$.Statement'\n"
                "      ) = 'NULL'\n"
                '      THEN [CAST(NULL AS JSON)]\n'
                '      WHEN JSON_TYPE(\n'
                '        CASE\n'
                '          WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '          THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '          ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "        END -> '$.Statement'\n"
                "      ) = 'ARRAY'\n"
                '      THEN CAST(CASE\n'
                '        WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '        THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '        ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "      END -> '$.Statement' AS JSON[])\n"
                '      WHEN JSON_TYPE(\n'
                '        CASE\n'
                '          WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '          THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '          ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "        END -> '$.Statement'\n"
                "      ) = 'OBJECT'\n"
                '      THEN LIST_TRANSFORM(\n'
                '        MAP_ENTRIES(\n'
                '          CAST(CASE\n'
                '            WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '            THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '            ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "          END -> '$.Statement' AS MAP(TEXT, JSON))\n"
                '        ),\n'
                '        LAMBDA m : JSON_OBJECT(m.key, m.value)\n'
                '      )\n'
                '      ELSE [\n'
                '        CASE\n'
                '          WHEN JSON_VALID("requestParameters" ->> \'$.policy\')\n'
                '          THEN CAST("requestParameters" ->> \'$.policy\' AS JSON)\n'
                '          ELSE TO_JSON("requestParameters" ->> \'$.policy\')\n'
                "        END -> '$.Statement'\n"
                '      ]\n'
                '    END) AS "s"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_2\n'
                '  WHERE\n'
                '    CASE\n'
                '      WHEN JSON_TYPE("s" -> \'$.Action\') = \'ARRAY\'\n'
                '      THEN ARRAY_LENGTH(\n'
                '        LIST_FILTER(\n'
                '          CAST("s" -> \'$.Action\' AS JSON[]),\n'
                "          LAMBDA siemforge_e1 : COALESCE(LOWER(siemforge_e1 ->> '$') = LOWER('kms:Encrypt'), FALSE)\n"
                '        )\n'
                '      ) > 0\n'
                '      ELSE FALSE\n'
                '    END\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('any_element', 'where responseElements.instancesSet.items[].instanceType in ("p4d", "p5")', {
        'executor': '| filter any(responseElements.instancesSet.items[*], (elem.instanceType in ["p4d", "p5"]))',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResponseElementsJson = parse_json(ResponseElements)\n'
                     '| mv-apply with_itemindex=siemforge_index_2 siemforge_elem_1 = array_concat(dynamic([null]), iff(gettype(ResponseElementsJson.instancesSet.items) == "array", ResponseElementsJson.instancesSet.items, dynamic([]))) to typeof(dynamic) on (summarize siemforge_any_3 = countif(siemforge_index_2 > 0 and tostring(siemforge_elem_1.instanceType) in ("p4d", "p5")))\n'
                     '| where siemforge_any_3 > 0\n'
                     '| project-away siemforge_any_3\n'
                     '| project-away ResponseElementsJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=responseElements.instancesSet.items{}.instanceType\n'
                   '| where isnotnull(mvfilter(in(siemforge_path1, "p4d", "p5")))\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    CASE\n'
                '      WHEN JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'ARRAY\'\n'
                '      THEN ARRAY_LENGTH(\n'
                '        LIST_FILTER(\n'
                '          CAST("responseElements" -> \'$.instancesSet.items\' AS JSON[]),\n'
                '          LAMBDA siemforge_e1 : COALESCE((\n'
                "            siemforge_e1 ->> '$.instanceType'\n"
                "          ) IN ('p4d', 'p5'), FALSE)\n"
                '        )\n'
                '      ) > 0\n'
                '      ELSE FALSE\n'
                '    END\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('any_element', "{sel: {'requestParameters.instancesSet.items[].instanceId|startswith': i-0ab}, condition: sel}", {
        'executor': '| filter any(requestParameters.instancesSet.items[*], startswith_ci(elem.instanceId, "i-0ab"))',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| mv-apply with_itemindex=siemforge_index_2 siemforge_elem_1 = array_concat(dynamic([null]), iff(gettype(RequestParametersJson.instancesSet.items) == "array", RequestParametersJson.instancesSet.items, dynamic([]))) to typeof(dynamic) on (summarize siemforge_any_3 = countif(siemforge_index_2 > 0 and tostring(siemforge_elem_1.instanceId) startswith "i-0ab"))\n'
                     '| where siemforge_any_3 > 0\n'
                     '| project-away siemforge_any_3\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.instancesSet.items{}.instanceId\n'
                   '| where isnotnull(mvfilter(match(siemforge_path1, "(?i)^i\\\\-0ab")))\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    CASE\n'
                '      WHEN JSON_TYPE("requestParameters" -> \'$.instancesSet.items\') = \'ARRAY\'\n'
                '      THEN ARRAY_LENGTH(\n'
                '        LIST_FILTER(\n'
                '          CAST("requestParameters" -> \'$.instancesSet.items\' AS JSON[]),\n'
                '          LAMBDA siemforge_e1 : COALESCE(REGEXP_MATCHES((\n'
                "            siemforge_e1 ->> '$.instanceId'\n"
                "          ), '(?is)\\Ai\\-0ab'), FALSE)\n"
                '        )\n'
                '      ) > 0\n'
                '      ELSE FALSE\n'
                '    END\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('any_element', "{sel: {eventName: RunInstances}, tags: {'requestParameters.tagSpecificationSet.items[].tags[].key': Owner}, condition: sel and not tags}", {
        'executor': '| filter ((eventName ==~i "RunInstances") and not any(requestParameters.tagSpecificationSet.items[*], any(elem.tags[*], (elem.key ==~i "Owner"))))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName =~ "RunInstances"\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| mv-apply with_itemindex=siemforge_index_2 siemforge_elem_1 = array_concat(dynamic([null]), iff(gettype(RequestParametersJson.tagSpecificationSet.items) == "array", RequestParametersJson.tagSpecificationSet.items, dynamic([]))) to typeof(dynamic) on (mv-apply with_itemindex=siemforge_index_5 siemforge_elem_4 = array_concat(dynamic([null]), iff(gettype(siemforge_elem_1.tags) == "array", siemforge_elem_1.tags, dynamic([]))) to typeof(dynamic) on (summarize siemforge_any_6 = countif(siemforge_index_5 > 0 and tostring(siemforge_elem_4.key) =~ "Owner")) | summarize siemforge_any_3 = countif(siemforge_index_2 > 0 and siemforge_any_6 > 0))\n'
                     '| where not(siemforge_any_3 > 0)\n'
                     '| project-away siemforge_any_3\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail` eventName="RunInstances"\n'
                   '| spath output=siemforge_path1 path=requestParameters.tagSpecificationSet.items{}.tags{}.key\n'
                   '| where if(isnotnull(mvfilter(lower(siemforge_path1)=="owner")), 0, 1)==1\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      LOWER("eventName") = LOWER(\'RunInstances\')\n'
                '      AND NOT CASE\n'
                '        WHEN JSON_TYPE("requestParameters" -> \'$.tagSpecificationSet.items\') = \'ARRAY\'\n'
                '        THEN ARRAY_LENGTH(\n'
                '          LIST_FILTER(\n'
                '            CAST("requestParameters" -> \'$.tagSpecificationSet.items\' AS JSON[]),\n'
                '            LAMBDA siemforge_e1 : COALESCE(\n'
                '              CASE\n'
                "                WHEN JSON_TYPE(siemforge_e1 -> '$.tags') = 'ARRAY'\n"
                '                THEN ARRAY_LENGTH(\n'
                '                  LIST_FILTER(\n'
                "                    CAST(siemforge_e1 -> '$.tags' AS JSON[]),\n"
                "                    LAMBDA siemforge_e2 : COALESCE(LOWER(siemforge_e2 ->> '$.key') = LOWER('Owner'), FALSE)\n"
                '                  )\n'
                '                ) > 0\n'
                '                ELSE FALSE\n'
                '              END,\n'
                '              FALSE\n'
                '            )\n'
                '          )\n'
                '        ) > 0\n'
                '        ELSE FALSE\n'
                '      END\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('any_element', "{sel: {'resources[]|contains': 'arn:aws:s3'}, condition: sel}", {
        'executor': '| filter any(resources[*], contains_ci(elem, "arn:aws:s3"))',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResourcesJson = parse_json(Resources)\n'
                     '| mv-apply with_itemindex=siemforge_index_2 siemforge_elem_1 = array_concat(dynamic([null]), iff(gettype(ResourcesJson) == "array", ResourcesJson, dynamic([]))) to typeof(dynamic) on (summarize siemforge_any_3 = countif(siemforge_index_2 > 0 and tostring(siemforge_elem_1) contains "arn:aws:s3"))\n'
                     '| where siemforge_any_3 > 0\n'
                     '| project-away siemforge_any_3\n'
                     '| project-away ResourcesJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=resources{}\n'
                   '| where isnotnull(mvfilter(match(siemforge_path1, "(?i)arn:aws:s3")))\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    CASE\n'
                '      WHEN JSON_TYPE("resources") = \'ARRAY\'\n'
                '      THEN ARRAY_LENGTH(\n'
                '        LIST_FILTER(\n'
                '          CAST("resources" AS JSON[]),\n'
                '          LAMBDA siemforge_e1 : COALESCE(REGEXP_MATCHES((\n'
                "            siemforge_e1 ->> '$'\n"
                "          ), '(?is)arn:aws:s3'), FALSE)\n"
                '        )\n'
                '      ) > 0\n'
                '      ELSE FALSE\n'
                '    END\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('any_element', "{sel: {'resources[].ARN': null}, condition: sel}", {
        'executor': '| filter any(resources[*], isnull(elem.ARN))',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResourcesJson = parse_json(Resources)\n'
                     '| mv-apply with_itemindex=siemforge_index_2 siemforge_elem_1 = array_concat(dynamic([null]), iff(gettype(ResourcesJson) == "array", ResourcesJson, dynamic([]))) to typeof(dynamic) on (summarize siemforge_any_3 = countif(siemforge_index_2 > 0 and isempty(siemforge_elem_1.ARN)))\n'
                     '| where siemforge_any_3 > 0\n'
                     '| project-away siemforge_any_3\n'
                     '| project-away ResourcesJson'),
        'splunk': Unsupported("an any-element test whose predicate holds for a missing value has no SPL form (a member an element lacks is no value in spath's multivalue field)"),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    CASE\n'
                '      WHEN JSON_TYPE("resources") = \'ARRAY\'\n'
                '      THEN ARRAY_LENGTH(\n'
                '        LIST_FILTER(\n'
                '          CAST("resources" AS JSON[]),\n'
                '          LAMBDA siemforge_e1 : COALESCE(\n'
                '            (\n'
                '              (\n'
                "                siemforge_e1 -> '$.ARN'\n"
                '              ) IS NULL\n'
                "              OR UPPER(JSON_TYPE(siemforge_e1 -> '$.ARN')) = 'NULL'\n"
                '            ),\n'
                '            FALSE\n'
                '          )\n'
                '        )\n'
                '      ) > 0\n'
                '      ELSE FALSE\n'
                '    END\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('compare_eq', 'where eventName =~ "RunInstances"', {
        'executor': '| filter (eventName ==~i "RunInstances")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName =~ "RunInstances"'),
        'splunk': '`cloudtrail` eventName="RunInstances"',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("eventName") = LOWER(\'RunInstances\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('compare_eq', 'where eventName == "RunInstances"', {
        'executor': '| filter (eventName == "RunInstances")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName == "RunInstances"'),
        'splunk': ('`cloudtrail` eventName="RunInstances"\n'
                   '| where eventName=="RunInstances"'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    "eventName" = \'RunInstances\'\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('compare_eq', '{sel: {eventName: RunInstances}, condition: sel}', {
        'executor': '| filter (eventName ==~i "RunInstances")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName =~ "RunInstances"'),
        'splunk': '`cloudtrail` eventName="RunInstances"',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("eventName") = LOWER(\'RunInstances\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('compare_eq', '{sel: {eventName|cased: RunInstances}, condition: sel}', {
        'executor': '| filter (eventName == "RunInstances")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName == "RunInstances"'),
        'splunk': ('`cloudtrail` eventName="RunInstances"\n'
                   '| where eventName=="RunInstances"'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    "eventName" = \'RunInstances\'\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('compare_eq', '{sel: {userIdentity.userName|fieldref: userIdentity.principalId}, condition: sel}', {
        'executor': '| filter (userIdentity.userName ==~i userIdentity.principalId)',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserIdentityUserName =~ UserIdentityPrincipalid'),
        'splunk': ('`cloudtrail`\n'
                   "| where lower('userIdentity.userName')==lower('userIdentity.principalId')"),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("userIdentity" ->> \'$.userName\') = LOWER("userIdentity" ->> \'$.principalId\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('compare_ne', 'where eventName != "RunInstances"', {
        'executor': '| filter (eventName != "RunInstances")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName != "RunInstances"'),
        'splunk': ('`cloudtrail`\n'
                   '| where isnull(eventName) OR eventName!="RunInstances"'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT (\n'
                '      COALESCE("eventName" = \'RunInstances\', FALSE)\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('compare_ne', 'where eventName !~ "RunInstances"', {
        'executor': '| filter (eventName !=~i "RunInstances")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName !~ "RunInstances"'),
        'splunk': '`cloudtrail` NOT eventName="RunInstances"',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT (\n'
                '      COALESCE(LOWER("eventName") = LOWER(\'RunInstances\'), FALSE)\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('compare_ne', 'where toint(requestParameters.maxCount) != 10', {
        'executor': '| filter (toint(requestParameters.maxCount) != 10)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| where (isnull(tolong(RequestParametersJson.maxCount)) or tolong(RequestParametersJson.maxCount) != 10)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| where isnull(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))) OR if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))!=10\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT (\n'
                '      COALESCE(\n'
                '        CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT) = 10,\n'
                '        FALSE\n'
                '      )\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('compare_order', 'where toint(requestParameters.maxCount) >= 10', {
        'executor': '| filter (toint(requestParameters.maxCount) >= 10)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| where tolong(RequestParametersJson.maxCount) >= 10\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| where if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))>=10\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT) >= 10\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('compare_order', '{sel: {requestParameters.maxCount|gt: 10}, condition: sel}', {
        'executor': '| filter (requestParameters.maxCount > 10)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| where todouble(RequestParametersJson.maxCount) > 10\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| where siemforge_path1>10\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE) > 10\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('string_match', 'where userAgent contains "aws-cli"', {
        'executor': '| filter contains_ci(userAgent, "aws-cli")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent contains "aws-cli"'),
        'splunk': '`cloudtrail` userAgent="*aws-cli*"',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'(?is)aws\\-cli\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('string_match', 'where userAgent contains_cs "aws-cli"', {
        'executor': '| filter contains_cs(userAgent, "aws-cli")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent contains_cs "aws-cli"'),
        'splunk': ('`cloudtrail`\n'
                   '| where match(userAgent, "aws\\\\-cli")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'(?s)aws\\-cli\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('string_match', 'where userAgent !startswith "aws"', {
        'executor': '| filter not startswith_ci(userAgent, "aws")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent !startswith "aws"'),
        'splunk': '`cloudtrail` NOT (userAgent="aws*")',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT COALESCE(REGEXP_MATCHES("userAgent", \'(?is)\\Aaws\'), FALSE)\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('string_match', 'where eventSource endswith_cs ".amazonaws.com"', {
        'executor': '| filter endswith_cs(eventSource, ".amazonaws.com")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventSource endswith_cs ".amazonaws.com"'),
        'splunk': ('`cloudtrail`\n'
                   '| where match(eventSource, "\\\\.amazonaws\\\\.com\\\\z")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("eventSource", \'(?s)\\.amazonaws\\.com\\z\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('string_match', '{sel: {userAgent|contains|all: [aws, cli]}, condition: sel}', {
        'executor': '| filter (contains_ci(userAgent, "aws") and contains_ci(userAgent, "cli"))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (UserAgent contains "aws" and UserAgent contains "cli")'),
        'splunk': '`cloudtrail` userAgent="*aws*" userAgent="*cli*"',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      REGEXP_MATCHES("userAgent", \'(?is)aws\')\n'
                '      AND REGEXP_MATCHES("userAgent", \'(?is)cli\')\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('wildcard', 'where userAgent like "aws-cli/*Python?3*"', {
        'executor': '| filter wildcard_ci(userAgent, "aws-cli/*Python?3*")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent matches regex @"(?is)^aws\\-cli/.*Python.3.*$"'),
        'splunk': ('`cloudtrail`\n'
                   '| where match(userAgent, "(?is)^aws\\\\-cli\\\\/.*Python.3.*\\\\z")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'(?is)\\Aaws\\-cli/.*Python.3.*\\z\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('wildcard', 'where requestParameters.layers like "*"', {
        'executor': '| filter wildcard_ci(requestParameters.layers, "*")',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| where isnotempty(tostring(RequestParametersJson.layers))\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.layers\n'
                   '| where match(siemforge_path1, "(?is)^.*\\\\z")\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES((\n'
                '      "requestParameters" ->> \'$.layers\'\n'
                "    ), '(?is)\\A.*\\z')\n"
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('wildcard', "{sel: {userAgent: 'aws*cli'}, condition: sel}", {
        'executor': '| filter wildcard_ci(userAgent, "aws*cli")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent matches regex @"(?is)^aws.*cli$"'),
        'splunk': '`cloudtrail` userAgent="aws*cli"',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'(?is)\\Aaws.*cli\\z\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('wildcard', "{sel: {userAgent: 'a\\*b'}, condition: sel}", {
        'executor': '| filter (userAgent ==~i "a*b")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent =~ "a*b"'),
        'splunk': ('`cloudtrail`\n'
                   '| where lower(userAgent)=="a*b"'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("userAgent") = LOWER(\'a*b\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('regex', 'where userAgent matches regex @"^aws-cli/\\d+"', {
        'executor': "| filter regex(userAgent, '^aws-cli/\\\\d+')",
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent matches regex @"^aws-cli/\\d+"'),
        'splunk': ('`cloudtrail`\n'
                   '| where match(userAgent, "^aws-cli/\\\\d+")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'^aws-cli/\\d+\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('regex', "{sel: {userAgent|re|i: '^AWS'}, condition: sel}", {
        'executor': "| filter regex(userAgent, '^AWS', flags=i)",
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent matches regex @"(?i)^AWS"'),
        'splunk': ('`cloudtrail`\n'
                   '| where match(userAgent, "(?i)^AWS")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'(?i)^AWS\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('regex', "{sel: {userAgent|re: '^aws-cli/[0-9]+'}, condition: sel}", {
        'executor': "| filter regex(userAgent, '^aws-cli/[0-9]+')",
        'sentinel': ('AWSCloudTrail\n'
                     '| where UserAgent matches regex @"^aws-cli/[0-9]+"'),
        'splunk': ('`cloudtrail`\n'
                   '| where match(userAgent, "^aws-cli/[0-9]+")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    REGEXP_MATCHES("userAgent", \'^aws-cli/[0-9]+\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('cidr', "{sel: {sourceIPAddress|cidr: [10.0.0.0/8, 'fd00::/8']}, condition: sel}", {
        'executor': '| filter (cidr(sourceIPAddress, 10.0.0.0/8) or cidr(sourceIPAddress, fd00::/8))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (ipv4_is_in_range(SourceIpAddress, "10.0.0.0/8") or ipv6_is_in_range(SourceIpAddress, "fd00::/8"))'),
        'splunk': ('`cloudtrail`\n'
                   '| where cidrmatch("10.0.0.0/8", sourceIPAddress) OR cidrmatch("fd00::/8", sourceIPAddress)'),
        'sql': Unsupported('CIDR matching needs an address type the dialects do not share (duckdb)'),
    }, sigma=True),
    Row('in_list', 'where eventName in ("RunInstances", "StopInstances")', {
        'executor': '| filter (eventName in ["RunInstances", "StopInstances"])',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName in ("RunInstances", "StopInstances")'),
        'splunk': ('`cloudtrail` eventName IN ("RunInstances", "StopInstances")\n'
                   '| where in(eventName, "RunInstances", "StopInstances")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    "eventName" IN (\'RunInstances\', \'StopInstances\')\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('in_list', 'where eventName in~ ("runinstances", "stopinstances")', {
        'executor': '| filter (eventName in~i ["runinstances", "stopinstances"])',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName in~ ("runinstances", "stopinstances")'),
        'splunk': '`cloudtrail` eventName IN ("runinstances", "stopinstances")',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("eventName") IN (LOWER(\'runinstances\'), LOWER(\'stopinstances\'))\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('in_list', 'where eventName !in ("RunInstances")', {
        'executor': '| filter not (eventName in ["RunInstances"])',
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName !in ("RunInstances")'),
        'splunk': ('`cloudtrail`\n'
                   '| where if(in(eventName, "RunInstances"), 0, 1)==1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT COALESCE("eventName" IN (\'RunInstances\'), FALSE)\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('keyword', '{keywords: [mimikatz], condition: keywords}', {
        'executor': '| filter keyword_ci("*mimikatz*")',
        'sentinel': ('AWSCloudTrail\n'
                     '| where * contains "mimikatz"'),
        'splunk': ('`cloudtrail` "*mimikatz*"\n'
                   '| where match(_raw, "(?i).*mimikatz.*")'),
        'sql': Unsupported('a keyword search over every field has no SQL form (duckdb)'),
    }, sigma=True),
    Row('not_and_or', 'where not(toint(requestParameters.maxCount) > 5)', {
        'executor': '| filter not (toint(requestParameters.maxCount) > 5)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| where not(coalesce(tolong(RequestParametersJson.maxCount) > 5, false))\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| where if(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))>5, 0, 1)==1\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT COALESCE(\n'
                '      CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT) > 5,\n'
                '      FALSE\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('not_and_or', 'where (eventName == "A" or eventName == "B") and isnotempty(errorCode)', {
        'executor': '| filter (((eventName == "A") or (eventName == "B")) and isnotempty(errorCode))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where ((EventName == "A" or EventName == "B") and isnotempty(ErrorCode))'),
        'splunk': ('`cloudtrail` (eventName="A" OR eventName="B")\n'
                   '| where (eventName=="A" OR eventName=="B") AND (isnotnull(errorCode) AND errorCode!="")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      (\n'
                '        "eventName" = \'A\' OR "eventName" = \'B\'\n'
                '      )\n'
                '      AND NOT (\n'
                '        "errorCode" IS NULL OR "errorCode" = \'\'\n'
                '      )\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('not_and_or', '{sel: {eventName: A}, filter: {userAgent|startswith: aws}, condition: sel and not filter}', {
        'executor': '| filter ((eventName ==~i "A") and not startswith_ci(userAgent, "aws"))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (EventName =~ "A" and UserAgent !startswith "aws")'),
        'splunk': '`cloudtrail` eventName="A" NOT (userAgent="aws*")',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      LOWER("eventName") = LOWER(\'A\')\n'
                '      AND NOT COALESCE(REGEXP_MATCHES("userAgent", \'(?is)\\Aaws\'), FALSE)\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('not_and_or', '{a: {eventName: A}, b: {eventSource: B}, c: {awsRegion: C}, condition: a and (b or c)}', {
        'executor': '| filter ((eventName ==~i "A") and ((eventSource ==~i "B") or (awsRegion ==~i "C")))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (EventName =~ "A" and (EventSource =~ "B" or AWSRegion =~ "C"))'),
        'splunk': '`cloudtrail` eventName="A" (eventSource="B" OR awsRegion="C")',
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      LOWER("eventName") = LOWER(\'A\')\n'
                '      AND (\n'
                '        LOWER("eventSource") = LOWER(\'B\') OR LOWER("awsRegion") = LOWER(\'C\')\n'
                '      )\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('arith', 'extend x = toint(requestParameters.a) * 2 + 1, y = 7 / 2, z = -toint(requestParameters.b) % 3', {
        'executor': '| extend[parallel] x: int = ((toint(requestParameters.a) * 2) + 1), y: int = (7 / 2), z: int = (-toint(requestParameters.b) % 3)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend x = ((tolong(RequestParametersJson.a) * 2) + 1), y = (7 / 2), z = (-tolong(RequestParametersJson.b) % 3)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.a\n'
                   '| spath output=siemforge_path2 path=requestParameters.b\n'
                   '| eval x=((if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))) * 2) + 1), y=if((7 / 2)>=0, floor((7 / 2)), ceiling((7 / 2))), z=((0 - if(tonumber(siemforge_path2)>=0, floor(tonumber(siemforge_path2)), ceiling(tonumber(siemforge_path2)))) % 3)\n'
                   '| fields - siemforge_path1 siemforge_path2'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    (\n'
                '      CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.a\' AS DOUBLE)) AS BIGINT) * 2\n'
                '    ) + 1 AS "x",\n'
                '    CAST(TRUNC(CAST(7 AS DOUBLE) / NULLIF(2, 0)) AS BIGINT) AS "y",\n'
                '    (\n'
                '      -CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.b\' AS DOUBLE)) AS BIGINT)\n'
                '    ) % NULLIF(3, 0) AS "z"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('case_iif', 'extend x = iif(isempty(errorCode), "ok", errorCode)', {
        'executor': '| extend[parallel] x: string = case(isempty(errorCode) => "ok", else => errorCode)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend x = iff(isempty(ErrorCode), "ok", ErrorCode)'),
        'splunk': ('`cloudtrail`\n'
                   '| eval x=if(isnull(errorCode) OR errorCode=="", "ok", errorCode)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE\n'
                '      WHEN (\n'
                '        "errorCode" IS NULL OR "errorCode" = \'\'\n'
                '      )\n'
                "      THEN 'ok'\n"
                '      ELSE "errorCode"\n'
                '    END AS "x"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('case_iif', 'extend x = case(eventName == "A", 1, eventName == "B", 2, 0)', {
        'executor': '| extend[parallel] x: int = case((eventName == "A") => 1, (eventName == "B") => 2, else => 0)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend x = case(EventName == "A", 1, EventName == "B", 2, 0)'),
        'splunk': ('`cloudtrail`\n'
                   '| eval x=case(eventName=="A", 1, eventName=="B", 2, true(), 0)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE WHEN "eventName" = \'A\' THEN 1 WHEN "eventName" = \'B\' THEN 2 ELSE 0 END AS "x"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('isnull_isempty', 'where isnull(errorCode)', {
        'executor': '| filter isnull(errorCode)',
        'sentinel': ('AWSCloudTrail\n'
                     '| where isempty(ErrorCode)'),
        'splunk': ('`cloudtrail`\n'
                   '| where isnull(errorCode)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      "errorCode" IS NULL\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('isnull_isempty', 'where isnull(requestParameters.instanceType)', {
        'executor': '| filter isnull(requestParameters.instanceType)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| where isempty(RequestParametersJson.instanceType)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.instanceType\n'
                   '| where isnull(siemforge_path1)\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      (\n'
                '        "requestParameters" -> \'$.instanceType\'\n'
                '      ) IS NULL\n'
                '      OR UPPER(JSON_TYPE("requestParameters" -> \'$.instanceType\')) = \'NULL\'\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('isnull_isempty', '{sel: {errorCode: null}, condition: sel}', {
        'executor': '| filter isnull(errorCode)',
        'sentinel': ('AWSCloudTrail\n'
                     '| where isempty(ErrorCode)'),
        'splunk': ('`cloudtrail`\n'
                   '| where isnull(errorCode)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      "errorCode" IS NULL\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('isnull_isempty', '{sel: {errorCode|exists: true}, condition: sel}', {
        'executor': '| filter isnotnull(errorCode)',
        'sentinel': ('AWSCloudTrail\n'
                     '| where isnotempty(ErrorCode)'),
        'splunk': ('`cloudtrail`\n'
                   '| where isnotnull(errorCode)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    NOT (\n'
                '      "errorCode" IS NULL\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }, sigma=True),
    Row('coalesce', 'extend x = coalesce(userIdentity.userName, userIdentity.arn)', {
        'executor': '| extend[parallel] x: string = coalesce(userIdentity.userName, userIdentity.arn)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend x = coalesce(UserIdentityUserName, UserIdentityArn)'),
        'splunk': ('`cloudtrail`\n'
                   "| eval x=coalesce('userIdentity.userName', 'userIdentity.arn')"),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    COALESCE("userIdentity" ->> \'$.userName\', "userIdentity" ->> \'$.arn\') AS "x"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('tostring', 'extend a = tostring(readOnly), b = tostring(requestParameters)', {
        'executor': '| extend[parallel] a: string = tostring(readOnly), b: string = tostring(requestParameters)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend a = tostring(ReadOnly), b = tostring(RequestParametersJson)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=b path=requestParameters\n'
                   '| eval a=tostring(readOnly)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE WHEN "readOnly" THEN \'true\' ELSE CASE WHEN NOT "readOnly" THEN \'false\' END END AS "a",\n'
                '    "requestParameters" ->> \'$\' AS "b"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('toint_todouble', 'extend b = toint("5"), c = todouble(requestParameters.x)', {
        'executor': '| extend[parallel] b: int = toint("5"), c: real = todouble(requestParameters.x)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend b = tolong("5"), c = todouble(RequestParametersJson.x)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.x\n'
                   '| eval b=if(tonumber("5")>=0, floor(tonumber("5")), ceiling(tonumber("5"))), c=tonumber(siemforge_path1)\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRUNC(TRY_CAST(\'5\' AS DOUBLE)) AS BIGINT) AS "b",\n'
                '    TRY_CAST("requestParameters" ->> \'$.x\' AS DOUBLE) AS "c"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('tobool_todatetime', 'extend d = tobool("true")', {
        'executor': '| extend[parallel] d: bool = tobool("true")',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend d = tobool("true")'),
        'splunk': Unsupported('SPL has no boolean values; compare the field instead of tobool()'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE\n'
                "      WHEN LOWER('true') = 'true'\n"
                '      THEN TRUE\n'
                "      WHEN LOWER('true') = 'false'\n"
                '      THEN FALSE\n'
                '    END AS "d"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('tobool_todatetime', 'extend e = todatetime(toint(requestParameters.epoch))', {
        'executor': '| extend[parallel] e: datetime = unixtime_seconds_todatetime(toint(requestParameters.epoch))',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend e = unixtime_seconds_todatetime(tolong(RequestParametersJson.epoch))\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.epoch\n'
                   '| eval e=tonumber(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))))\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TO_TIMESTAMP(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.epoch\' AS DOUBLE)) AS BIGINT)) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "e"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('tobool_todatetime', 'extend e = todatetime("2024-01-01T00:00:00Z")', {
        'executor': '| extend[parallel] e: datetime = todatetime("2024-01-01T00:00:00Z")',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend e = todatetime("2024-01-01T00:00:00Z")'),
        'splunk': Unsupported('todatetime() of text has no time-zone safe SPL form; keep times in _time'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST(\'2024-01-01T00:00:00Z\' AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "e"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('epoch_to_datetime', 'extend a = todatetime(toint(requestParameters.t)), b = unixtime_seconds_todatetime(requestParameters.t), c = unixtime_milliseconds_todatetime(1700000000000)', {
        'executor': '| extend[parallel] a: datetime = unixtime_seconds_todatetime(toint(requestParameters.t)), b: datetime = unixtime_seconds_todatetime(requestParameters.t), c: datetime = unixtime_milliseconds_todatetime(1700000000000)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend a = unixtime_seconds_todatetime(tolong(RequestParametersJson.t)), b = unixtime_seconds_todatetime(todouble(RequestParametersJson.t)), c = unixtime_milliseconds_todatetime(1700000000000)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.t\n'
                   '| eval a=tonumber(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))), b=tonumber(siemforge_path1), c=(tonumber(1700000000000) / 1000)\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TO_TIMESTAMP(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.t\' AS DOUBLE)) AS BIGINT)) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "a",\n'
                '    CAST(TO_TIMESTAMP(TRY_CAST("requestParameters" ->> \'$.t\' AS DOUBLE)) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "b",\n'
                '    CAST(TO_TIMESTAMP(1700000000000 / 1000) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "c"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('tolower_toupper_strlen', 'extend a = tolower(eventName), b = toupper(eventName), c = strlen(eventName)', {
        'executor': '| extend[parallel] a: string = tolower(eventName), b: string = toupper(eventName), c: int = strlen(eventName)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend a = tolower(EventName), b = toupper(EventName), c = strlen(EventName)'),
        'splunk': ('`cloudtrail`\n'
                   '| eval a=lower(eventName), b=upper(eventName), c=len(eventName)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    LOWER("eventName") AS "a",\n'
                '    UPPER("eventName") AS "b",\n'
                '    LENGTH("eventName") AS "c"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('substring', 'extend d = substring(eventName, 1, 3), d2 = substring(eventName, 3)', {
        'executor': '| extend[parallel] d: string = substring(eventName, 1, 3), d2: string = substring(eventName, 3)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend d = substring(EventName, 1, 3), d2 = substring(EventName, 3)'),
        'splunk': ('`cloudtrail`\n'
                   '| eval d=substr(eventName, (1) + 1, 3), d2=substr(eventName, (3) + 1)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    SUBSTRING("eventName", 1 + 1, 3) AS "d",\n'
                '    SUBSTRING("eventName", 3 + 1) AS "d2"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('split', 'extend last = tostring(split(userIdentity.arn, "/")[-1])', {
        'executor': '| extend[parallel] last: string = tostring(split(userIdentity.arn, "/")[-1])',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend [\'last\'] = tostring(split(UserIdentityArn, "/")[-1])'),
        'splunk': ('`cloudtrail`\n'
                   '| eval last=mvindex(split(\'userIdentity.arn\', "/"), -1)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    LIST_EXTRACT(STR_SPLIT("userIdentity" ->> \'$.arn\', \'/\'), -1) AS "last"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('strcat', 'extend e = strcat(eventName, "/", awsRegion)', {
        'executor': '| extend[parallel] e: string = strcat(eventName, "/", awsRegion)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend e = strcat(EventName, "/", AWSRegion)'),
        'splunk': ('`cloudtrail`\n'
                   '| eval e=(coalesce(tostring(eventName), "").coalesce(tostring("/"), "").coalesce(tostring(awsRegion), ""))'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    COALESCE("eventName", \'\') || COALESCE(\'/\', \'\') || COALESCE("awsRegion", \'\') AS "e"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('replace', 'extend f = replace_string(eventName, "Run", "Stop"), g = replace_regex(eventName, @"(\\w+)Instances", @"\\1")', {
        'executor': '| extend[parallel] f: string = replace_string(eventName, "Run", "Stop"), g: string = replace_regex(eventName, "(\\\\w+)Instances", "\\\\1")',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend f = replace_string(EventName, "Run", "Stop"), g = replace_regex(EventName, @"(\\w+)Instances", "\\\\1")'),
        'splunk': ('`cloudtrail`\n'
                   '| eval f=replace(eventName, "Run", "Stop"), g=replace(eventName, "(\\\\w+)Instances", "\\\\1")'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    REPLACE("eventName", \'Run\', \'Stop\') AS "f",\n'
                '    REGEXP_REPLACE("eventName", \'(\\w+)Instances\', \'\\1\', \'g\') AS "g"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('extract', 'extend h = extract(@"^(\\w+)-", 1, userAgent)', {
        'executor': '| extend[parallel] h: string = extract("^(\\\\w+)-", 1, userAgent)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend h = extract(@"^(\\w+)-", 1, UserAgent)'),
        'splunk': ('`cloudtrail`\n'
                   '| eval h=if(match(userAgent, "^(\\\\w+)-"), replace(userAgent, "(?s)^.*?(?:^(\\\\w+)-).*$", "\\\\1"), null())'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE\n'
                '      WHEN REGEXP_MATCHES("userAgent", \'^(\\w+)-\')\n'
                '      THEN REGEXP_EXTRACT("userAgent", \'^(\\w+)-\', 1)\n'
                '    END AS "h"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('array_length', 'extend n = array_length(resources)', {
        'executor': '| extend[parallel] n: int = array_length(resources)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResourcesJson = parse_json(Resources)\n'
                     '| extend n = array_length(ResourcesJson)\n'
                     '| project-away ResourcesJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=resources{}\n'
                   '| eval n=mvcount(siemforge_path1)\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE WHEN JSON_TYPE("resources") = \'ARRAY\' THEN JSON_ARRAY_LENGTH("resources") END AS "n"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('parse_json', 'extend s = parse_json(tostring(requestParameters.policyDocument)).Statement | mv-expand s | extend a = tostring(s.Action)', {
        'executor': ("| extend[parallel] s: any = parse_json(tostring(requestParameters.policyDocument))['Statement']\n"
                     '| expand[null: one row, empty: none] s: dynamic = s[*]\n'
                     '| extend[parallel] a: string = tostring(s.Action)'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend s = parse_json(tostring(RequestParametersJson.policyDocument)).Statement\n'
                     '| mv-expand s = s\n'
                     '| extend a = tostring(s.Action)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.policyDocument\n'
                   '| eval siemforge_val2=siemforge_path1\n'
                   '| spath input=siemforge_val2 output=siemforge_path3 path=Statement\n'
                   '| eval s=siemforge_path3\n'
                   '| spath input=s output=siemforge_path4 path={}\n'
                   '| eval siemforge_count5=case(isnotnull(siemforge_path4), mvcount(siemforge_path4), isnull(s), 1, match(s, "^\\\\s*(\\\\[\\\\s*\\\\]|\\\\{\\\\s*\\\\})\\\\s*$"), 0, true(), 1)\n'
                   '| where siemforge_count5>0\n'
                   '| eval siemforge_index6=mvrange(0, siemforge_count5)\n'
                   '| mvexpand siemforge_index6\n'
                   '| eval s=if(isnotnull(siemforge_path4), mvindex(siemforge_path4, siemforge_index6), s)\n'
                   '| fields - siemforge_count5 siemforge_index6\n'
                   '| spath input=s output=a path=Action\n'
                   '| fields - siemforge_path1 siemforge_val2 siemforge_path3 siemforge_path4'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE\n'
                '      WHEN JSON_VALID("requestParameters" ->> \'$.policyDocument\')\n'
                '      THEN CAST("requestParameters" ->> \'$.policyDocument\' AS JSON)\n'
                '      ELSE TO_JSON("requestParameters" ->> \'$.policyDocument\')\n'
                '    END -> \'$.Statement\' AS "s"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE (UNNEST(CASE\n'
                '      WHEN "s" IS NULL OR JSON_TYPE("s") = \'NULL\'\n'
                '      THEN [CAST(NULL AS JSON)]\n'
                '      WHEN JSON_TYPE("s") = \'ARRAY\'\n'
                '      THEN CAST("s" AS JSON[])\n'
                '      WHEN JSON_TYPE("s") = \'OBJECT\'\n'
                '      THEN LIST_TRANSFORM(MAP_ENTRIES(CAST("s" AS MAP(TEXT, JSON))), LAMBDA m : JSON_OBJECT(m.key, m.value))\n'
                '      ELSE ["s"]\n'
                '    END) AS "s")\n'
                '  FROM siemforge_2\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "s" ->> \'$.Action\' AS "a"\n'
                '  FROM siemforge_3\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_4'),
    }),
    Row('parse_json', 'extend d = parse_json(userAgent), r = parse_json(resources)', {
        'executor': '| extend[parallel] d: dynamic = parse_json(userAgent), r: dynamic = resources',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResourcesJson = parse_json(Resources)\n'
                     '| extend d = parse_json(UserAgent), r = ResourcesJson\n'
                     '| project-away ResourcesJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=resources\n'
                   '| eval d=userAgent, r=siemforge_path1\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CASE\n'
                '      WHEN JSON_VALID("userAgent")\n'
                '      THEN CAST("userAgent" AS JSON)\n'
                '      ELSE TO_JSON("userAgent")\n'
                '    END AS "d",\n'
                '    "resources" AS "r"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('bag_pack', 'extend b = pack("n", eventName, "t", _time, "r", toint(requestParameters.maxResults))', {
        'executor': '| extend[parallel] b: dynamic = bag_pack("n", coalesce(eventName, ""), "t", _time, "r", toint(requestParameters.maxResults))',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend b = bag_pack("n", EventName, "t", TimeGenerated, "r", tolong(RequestParametersJson.maxResults))\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxResults\n'
                   '| eval b=json_object("n", coalesce(eventName, ""), "t", _time, "r", if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))))\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    JSON_OBJECT(\n'
                '      \'n\', COALESCE("eventName", \'\'),\n'
                '      \'t\', STRFTIME("_time", \'%Y-%m-%dT%H:%M:%SZ\'),\n'
                '      \'r\', CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxResults\' AS DOUBLE)) AS BIGINT)\n'
                '    ) AS "b"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('indexof', 'extend i = indexof(userIdentity.principalId, ":"), j = indexof_regex(userAgent, @"[0-9]")', {
        'executor': '| extend[parallel] i: int = indexof(userIdentity.principalId, ":"), j: int = indexof_regex(userAgent, "[0-9]")',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend i = iff(isempty(UserIdentityPrincipalid), long(null), indexof(UserIdentityPrincipalid, ":")), j = iff(isempty(UserAgent), long(null), indexof_regex(UserAgent, @"[0-9]"))'),
        'splunk': ('`cloudtrail`\n'
                   '| eval i=case(isnull(tostring(\'userIdentity.principalId\')), null(), match(tostring(\'userIdentity.principalId\'), ":"), len(replace(tostring(\'userIdentity.principalId\'), "(?s)^(.*?)(?::).*$", "\\\\1")), true(), -1), j=case(isnull(tostring(userAgent)), null(), match(tostring(userAgent), "[0-9]"), len(replace(tostring(userAgent), "(?s)^(.*?)(?:[0-9]).*$", "\\\\1")), true(), -1)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    STRPOS("userIdentity" ->> \'$.principalId\', \':\') - 1 AS "i",\n'
                '    CASE\n'
                '      WHEN REGEXP_MATCHES("userAgent", \'[0-9]\')\n'
                '      THEN LENGTH(REGEXP_EXTRACT("userAgent", \'(?s)^(.*?)(?:[0-9])\', 1))\n'
                '      ELSE CASE WHEN NOT "userAgent" IS NULL THEN -1 END\n'
                '    END AS "j"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('now_ago', 'where _time > ago(1h) and bin(_time, 1h) < now() and datetime_diff("minute", now(), _time) < 90', {
        'executor': '| filter ((_time > ago(timespan(3600s))) and (bin(_time, timespan(3600s)) < now()) and (datetime_diff("minute", now(), _time) < 90))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (TimeGenerated > ago(1h) and bin(TimeGenerated, 1h) < now() and datetime_diff("minute", now(), TimeGenerated) < 90)'),
        'splunk': ('`cloudtrail`\n'
                   '| where _time>(now() - 3600) AND (floor(_time / 3600) * 3600)<now() AND (floor(now() / 60) - floor(_time / 60))<90'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      "_time" > CAST(CURRENT_TIMESTAMP AS TIMESTAMP) - INTERVAL (\n'
                '        3600\n'
                '      ) SECOND\n'
                '      AND CAST(TO_TIMESTAMP(FLOOR(EPOCH("_time") / 3600) * 3600) AT TIME ZONE \'UTC\' AS TIMESTAMP) < CAST(CURRENT_TIMESTAMP AS TIMESTAMP)\n'
                '      AND CAST(FLOOR(EPOCH(CAST(CURRENT_TIMESTAMP AS TIMESTAMP)) / 60) - FLOOR(EPOCH("_time") / 60) AS BIGINT) < 90\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('bin', 'extend hour = bin(_time, 1h), n = bin(toint(requestParameters.maxCount), 10)', {
        'executor': '| extend[parallel] hour: datetime = bin(_time, timespan(3600s)), n: int = bin(toint(requestParameters.maxCount), 10)',
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend hour = bin(TimeGenerated, 1h), n = bin(tolong(RequestParametersJson.maxCount), 10)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| eval hour=(floor(_time / 3600) * 3600), n=(floor(if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))) / 10) * 10)\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TO_TIMESTAMP(FLOOR(EPOCH("_time") / 3600) * 3600) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "hour",\n'
                '    CAST(FLOOR(\n'
                '      CAST(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT) AS DOUBLE) / NULLIF(10, 0)\n'
                '    ) * 10 AS BIGINT) AS "n"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('hourofday_dayofweek', 'where hourofday(_time) >= 20 or dayofweek(_time) in (0, 6)', {
        'executor': '| filter ((hourofday(_time) >= 20) or (dayofweek(_time) in [0, 6]))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (hourofday(TimeGenerated) >= 20 or toint(dayofweek(TimeGenerated) / 1d) in (0, 6))'),
        'splunk': ('`cloudtrail`\n'
                   '| where ((floor(_time / 3600) % 24 + 24) % 24)>=20 OR in(((floor(_time / 86400) + 4) % 7 + 7) % 7, 0, 6)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      EXTRACT(HOUR FROM "_time") >= 20 OR EXTRACT(DAYOFWEEK FROM "_time") IN (0, 6)\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('datetime_diff', 'where datetime_diff("minute", now(), _time) < 90 and datetime_diff("week", now(), _time) == 0', {
        'executor': '| filter ((datetime_diff("minute", now(), _time) < 90) and (datetime_diff("week", now(), _time) == 0))',
        'sentinel': ('AWSCloudTrail\n'
                     '| where (datetime_diff("minute", now(), TimeGenerated) < 90 and datetime_diff("week", now(), TimeGenerated) == 0)'),
        'splunk': ('`cloudtrail`\n'
                   '| where (floor(now() / 60) - floor(_time / 60))<90 AND (floor((floor(now() / 86400) + 4) / 7) - floor((floor(_time / 86400) + 4) / 7))==0'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    (\n'
                '      CAST(FLOOR(EPOCH(CAST(CURRENT_TIMESTAMP AS TIMESTAMP)) / 60) - FLOOR(EPOCH("_time") / 60) AS BIGINT) < 90\n'
                '      AND CAST(FLOOR((\n'
                '        EPOCH(CAST(CURRENT_TIMESTAMP AS TIMESTAMP)) + 345600\n'
                '      ) / 604800) - FLOOR((\n'
                '        EPOCH("_time") + 345600\n'
                '      ) / 604800) AS BIGINT) = 0\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('extend', 'extend a = "x" | extend a = "y", b = a', {
        'executor': ('| extend[parallel] a: string = "x"\n'
                     '| extend[parallel] a: string = "y", b: string = a'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend a = "x"\n'
                     '| extend siemforge_tmp_1 = "y", siemforge_tmp_2 = a\n'
                     '| extend a = siemforge_tmp_1, b = siemforge_tmp_2\n'
                     '| project-away siemforge_tmp_1, siemforge_tmp_2'),
        'splunk': ('`cloudtrail`\n'
                   '| eval a="x"\n'
                   '| eval siemforge_tmp1="y", siemforge_tmp2=a\n'
                   '| eval a=siemforge_tmp1, b=siemforge_tmp2\n'
                   '| fields - siemforge_tmp1 siemforge_tmp2'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    \'x\' AS "a"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE (\'y\' AS "a"),\n'
                '    "a" AS "b"\n'
                '  FROM siemforge_2\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('aggregate', 'summarize n = count(), c = count(errorCode), d = dcount(sourceIPAddress), lo = min(_time), hi = max(_time), s = sum(toint(requestParameters.maxCount)), a = avg(toint(requestParameters.maxCount)), v = values(awsRegion), e = earliest(sourceIPAddress), l = latest(sourceIPAddress) by eventName, arn = userIdentity.arn', {
        'executor': ('| aggregate n: int = count(), c: int = count(errorCode), d: int = dcount(sourceIPAddress), lo: datetime = min(_time), hi: datetime = max(_time), s: int = sum(toint(requestParameters.maxCount)), a: real = avg(toint(requestParameters.maxCount)), v: dynamic = values(awsRegion), e: string = earliest(sourceIPAddress), l: string = latest(sourceIPAddress) by[nulls kept] eventName = eventName, arn = userIdentity.arn\n'
                     '=> eventName: string, arn: string, n: int, c: int, d: int, lo: datetime, hi: datetime, s: int, a: real, v: dynamic, e: string, l: string'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| summarize n = count(), c = countif(isnotempty(ErrorCode)), d = dcountif(SourceIpAddress, isnotempty(SourceIpAddress), 2), lo = min(TimeGenerated), hi = max(TimeGenerated), s = sum(tolong(RequestParametersJson.maxCount)), a = avg(tolong(RequestParametersJson.maxCount)), v = make_set_if(AWSRegion, isnotempty(AWSRegion)), (siemforge_time_1, e) = arg_min(TimeGenerated, SourceIpAddress), (siemforge_time_2, l) = arg_max(TimeGenerated, SourceIpAddress) by eventName = EventName, arn = UserIdentityArn\n'
                     '| extend v = array_sort_asc(v)\n'
                     '| project-away siemforge_time_1, siemforge_time_2'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   "| eval siemforge_arg2=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))), siemforge_arg3=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))), arn='userIdentity.arn'\n"
                   '| fillnull value="__siemforge_null__" eventName arn\n'
                   '| stats count AS n count(errorCode) AS c dc(sourceIPAddress) AS d min(_time) AS lo max(_time) AS hi sum(siemforge_arg2) AS s avg(siemforge_arg3) AS a values(awsRegion) AS v earliest(sourceIPAddress) AS e latest(sourceIPAddress) AS l by eventName arn\n'
                   '| foreach eventName arn [eval <<FIELD>>=if(\'<<FIELD>>\'=="__siemforge_null__", null(), \'<<FIELD>>\')]'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    "userIdentity" ->> \'$.arn\' AS "arn",\n'
                '    COUNT(*) AS "n",\n'
                '    COUNT("errorCode") AS "c",\n'
                '    COUNT(DISTINCT "sourceIPAddress") AS "d",\n'
                '    MIN("_time") AS "lo",\n'
                '    MAX("_time") AS "hi",\n'
                '    SUM(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)) AS "s",\n'
                '    AVG(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)) AS "a",\n'
                '    COALESCE(\n'
                '      LIST_SORT(ARRAY_AGG(DISTINCT "awsRegion") FILTER(WHERE\n'
                '        NOT "awsRegion" IS NULL)),\n'
                '      []\n'
                '    ) AS "v",\n'
                '    ARG_MIN("sourceIPAddress", "_time") AS "e",\n'
                '    ARG_MAX("sourceIPAddress", "_time") AS "l"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName",\n'
                '    "userIdentity" ->> \'$.arn\'\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('aggregate', 'summarize n = count()', {
        'executor': ('| aggregate n: int = count()\n'
                     '=> n: int'),
        'sentinel': ('AWSCloudTrail\n'
                     '| summarize n = count()'),
        'splunk': ('`cloudtrail`\n'
                   '| stats count AS n'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    COUNT(*) AS "n"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_count', 'summarize n = count(), c = count(errorCode) by eventName', {
        'executor': ('| aggregate n: int = count(), c: int = count(errorCode) by[nulls kept] eventName = eventName\n'
                     '=> eventName: string, n: int, c: int'),
        'sentinel': ('AWSCloudTrail\n'
                     '| summarize n = count(), c = countif(isnotempty(ErrorCode)) by eventName = EventName'),
        'splunk': ('`cloudtrail`\n'
                   '| fillnull value="__siemforge_null__" eventName\n'
                   '| stats count AS n count(errorCode) AS c by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    COUNT(*) AS "n",\n'
                '    COUNT("errorCode") AS "c"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_dcount', 'summarize d = dcount(sourceIPAddress)', {
        'executor': ('| aggregate d: int = dcount(sourceIPAddress)\n'
                     '=> d: int'),
        'sentinel': ('AWSCloudTrail\n'
                     '| summarize d = dcountif(SourceIpAddress, isnotempty(SourceIpAddress), 2)'),
        'splunk': ('`cloudtrail`\n'
                   '| stats dc(sourceIPAddress) AS d'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    COUNT(DISTINCT "sourceIPAddress") AS "d"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_dcount', 'summarize s = dcount(sourceIPAddress), n = dcount(toint(requestParameters.maxCount)), j = dcount(requestParameters.filter)', {
        'executor': ('| aggregate s: int = dcount(sourceIPAddress), n: int = dcount(toint(requestParameters.maxCount)), j: int = dcount(requestParameters.filter)\n'
                     '=> s: int, n: int, j: int'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| summarize s = dcountif(SourceIpAddress, isnotempty(SourceIpAddress), 2), n = dcount(tolong(RequestParametersJson.maxCount), 2), j = array_length(make_set_if(RequestParametersJson.filter, isnotempty(RequestParametersJson.filter)))'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| spath output=siemforge_path3 path=requestParameters.filter\n'
                   '| eval siemforge_arg2=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))), siemforge_arg4=siemforge_path3\n'
                   '| stats dc(sourceIPAddress) AS s dc(siemforge_arg2) AS n dc(siemforge_arg4) AS j'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    COUNT(DISTINCT "sourceIPAddress") AS "s",\n'
                '    COUNT(\n'
                '      DISTINCT CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)\n'
                '    ) AS "n",\n'
                '    COUNT(DISTINCT "requestParameters" -> \'$.filter\') AS "j"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_min_max_sum_avg', 'summarize lo = min(_time), hi = max(eventName), s = sum(toint(requestParameters.maxCount)), a = avg(toint(requestParameters.maxCount))', {
        'executor': ('| aggregate lo: datetime = min(_time), hi: string = max(eventName), s: int = sum(toint(requestParameters.maxCount)), a: real = avg(toint(requestParameters.maxCount))\n'
                     '=> lo: datetime, hi: string, s: int, a: real'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| summarize lo = min(TimeGenerated), hi = maxif(EventName, isnotempty(EventName)), s = sum(tolong(RequestParametersJson.maxCount)), a = avg(tolong(RequestParametersJson.maxCount))'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| eval siemforge_arg2=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1))), siemforge_arg3=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))\n'
                   '| stats min(_time) AS lo max(eventName) AS hi sum(siemforge_arg2) AS s avg(siemforge_arg3) AS a'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    MIN("_time") AS "lo",\n'
                '    MAX("eventName") AS "hi",\n'
                '    SUM(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)) AS "s",\n'
                '    AVG(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)) AS "a"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_stdev', 'summarize s = stdev(toint(requestParameters.maxCount)), p = stdevp(toint(requestParameters.maxCount)) by eventName', {
        'executor': ('| aggregate s: real = stdev(toint(requestParameters.maxCount)), p: real = stdevp(toint(requestParameters.maxCount)) by[nulls kept] eventName = eventName\n'
                     '=> eventName: string, s: real, p: real'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| summarize s = stdev(tolong(RequestParametersJson.maxCount)), siemforge_n_1 = countif(isnotnull(tolong(RequestParametersJson.maxCount))), p = stdevp(tolong(RequestParametersJson.maxCount)), siemforge_n_2 = countif(isnotnull(tolong(RequestParametersJson.maxCount))) by eventName = EventName\n'
                     '| extend s = iff(siemforge_n_1 >= 2, s, real(null)), p = iff(siemforge_n_2 >= 1, p, real(null))\n'
                     '| project-away siemforge_n_1, siemforge_n_2'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path3 path=requestParameters.maxCount\n'
                   '| eval siemforge_arg1=tonumber(if(tonumber(siemforge_path3)>=0, floor(tonumber(siemforge_path3)), ceiling(tonumber(siemforge_path3)))), siemforge_arg4=tonumber(if(tonumber(siemforge_path3)>=0, floor(tonumber(siemforge_path3)), ceiling(tonumber(siemforge_path3))))\n'
                   '| fillnull value="__siemforge_null__" eventName\n'
                   '| stats stdev(siemforge_arg1) AS s count(siemforge_arg1) AS siemforge_n2 stdevp(siemforge_arg4) AS p count(siemforge_arg4) AS siemforge_n5 by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)\n'
                   '| eval s=if(siemforge_n2>=2, s, null()), p=if(siemforge_n5>=1, p, null())\n'
                   '| fields - siemforge_n2 siemforge_n5'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    STDDEV_SAMP(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)) AS "s",\n'
                '    STDDEV_POP(CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT)) AS "p"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_stdev', 'extend m = toint(requestParameters.maxCount) | eventstats s = stdev(m), p = stdevp(m)', {
        'executor': ('| extend[parallel] m: int = toint(requestParameters.maxCount)\n'
                     '| event_aggregate s: real = stdev(m), p: real = stdevp(m)'),
        'sentinel': ('let siemforge_rows_1 = AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend m = tolong(RequestParametersJson.maxCount);\n'
                     'siemforge_rows_1\n'
                     '| extend s = toscalar(siemforge_rows_1 | summarize siemforge_agg_2 = stdev(m), siemforge_n_4 = countif(isnotnull(m)) | extend siemforge_agg_2 = iff(siemforge_n_4 >= 2, siemforge_agg_2, real(null)) | project-away siemforge_n_4 | project siemforge_agg_2), p = toscalar(siemforge_rows_1 | summarize siemforge_agg_3 = stdevp(m), siemforge_n_5 = countif(isnotnull(m)) | extend siemforge_agg_3 = iff(siemforge_n_5 >= 1, siemforge_agg_3, real(null)) | project-away siemforge_n_5 | project siemforge_agg_3)\n'
                     '| project-away RequestParametersJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   '| eval m=if(tonumber(siemforge_path1)>=0, floor(tonumber(siemforge_path1)), ceiling(tonumber(siemforge_path1)))\n'
                   '| eval siemforge_arg2=tonumber(m), siemforge_arg4=tonumber(m)\n'
                   '| eventstats stdev(siemforge_arg2) AS s count(siemforge_arg2) AS siemforge_n3 stdevp(siemforge_arg4) AS p count(siemforge_arg4) AS siemforge_n5\n'
                   '| eval s=if(siemforge_n3>=2, s, null()), p=if(siemforge_n5>=1, p, null())\n'
                   '| fields - siemforge_arg2 siemforge_arg4 siemforge_n3 siemforge_n5\n'
                   '| fields - siemforge_path1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRUNC(TRY_CAST("requestParameters" ->> \'$.maxCount\' AS DOUBLE)) AS BIGINT) AS "m"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    STDDEV_SAMP("m") OVER () AS "s",\n'
                '    STDDEV_POP("m") OVER () AS "p"\n'
                '  FROM siemforge_2\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('agg_values', 'summarize v = values(awsRegion) by eventName', {
        'executor': ('| aggregate v: dynamic = values(awsRegion) by[nulls kept] eventName = eventName\n'
                     '=> eventName: string, v: dynamic'),
        'sentinel': ('AWSCloudTrail\n'
                     '| summarize v = make_set_if(AWSRegion, isnotempty(AWSRegion)) by eventName = EventName\n'
                     '| extend v = array_sort_asc(v)'),
        'splunk': ('`cloudtrail`\n'
                   '| fillnull value="__siemforge_null__" eventName\n'
                   '| stats values(awsRegion) AS v by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    COALESCE(\n'
                '      LIST_SORT(ARRAY_AGG(DISTINCT "awsRegion") FILTER(WHERE\n'
                '        NOT "awsRegion" IS NULL)),\n'
                '      []\n'
                '    ) AS "v"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_values_limit', 'summarize v = values(awsRegion, 3) by eventName', {
        'executor': ('| aggregate v: dynamic = values(awsRegion, 3) by[nulls kept] eventName = eventName\n'
                     '=> eventName: string, v: dynamic'),
        'sentinel': ('AWSCloudTrail\n'
                     '| summarize v = make_set_if(AWSRegion, isnotempty(AWSRegion), 3) by eventName = EventName\n'
                     '| extend v = array_sort_asc(v)'),
        'splunk': ('`cloudtrail`\n'
                   '| fillnull value="__siemforge_null__" eventName\n'
                   '| stats values(awsRegion) AS v by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)\n'
                   '| eval v=mvindex(v, 0, 2)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    LIST_SLICE(\n'
                '      COALESCE(\n'
                '        LIST_SORT(ARRAY_AGG(DISTINCT "awsRegion") FILTER(WHERE\n'
                '          NOT "awsRegion" IS NULL)),\n'
                '        []\n'
                '      ),\n'
                '      1,\n'
                '      3\n'
                '    ) AS "v"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_values_each', 'summarize n = count(), ids = values(requestParameters.createVolumePermission.add.items[].userId) by eventName', {
        'executor': ('| aggregate n: int = count(), ids: dynamic = values(requestParameters.createVolumePermission.add.items[].userId) by[nulls kept] eventName = eventName\n'
                     '=> eventName: string, n: int, ids: dynamic'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| mv-apply siemforge_e_1 = array_concat(dynamic([null]), iff(gettype(RequestParametersJson.createVolumePermission.add.items) == "array", RequestParametersJson.createVolumePermission.add.items, dynamic([]))) to typeof(dynamic) on (summarize siemforge_values_2 = make_list_if(siemforge_e_1["userId"], gettype(siemforge_e_1["userId"]) !in ("array", "dictionary", "null")))\n'
                     '| summarize n = count(), ids = make_set(siemforge_values_2) by eventName = EventName\n'
                     '| extend ids = array_sort_asc(ids)'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=requestParameters.createVolumePermission.add.items{}.userId\n'
                   '| eval siemforge_values2=mvfilter(NOT (match(siemforge_path1, "^[{[]") AND json_valid(siemforge_path1)))\n'
                   '| fillnull value="__siemforge_null__" eventName\n'
                   '| stats count AS n values(siemforge_values2) AS ids by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    COUNT(*) AS "n",\n'
                '    COALESCE(\n'
                '      LIST_SORT(\n'
                '        LIST_DISTINCT(\n'
                '          FLATTEN(\n'
                '            ARRAY_AGG(\n'
                '              LIST_TRANSFORM(\n'
                '                LIST_FILTER(\n'
                '                  JSON_EXTRACT("requestParameters", \'$.createVolumePermission.add.items[*].userId\'),\n'
                "                  LAMBDA x : NOT JSON_TYPE(x) IN ('OBJECT', 'ARRAY', 'NULL')\n"
                '                ),\n'
                "                LAMBDA x : x ->> '$'\n"
                '              )\n'
                '            )\n'
                '          )\n'
                '        )\n'
                '      ),\n'
                '      []\n'
                '    ) AS "ids"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_values_each', 'summarize types = values(resources[].type), arns = values(resources[].ARN) by eventSource', {
        'executor': ('| aggregate types: dynamic = values(resources[].type), arns: dynamic = values(resources[].ARN) by[nulls kept] eventSource = eventSource\n'
                     '=> eventSource: string, types: dynamic, arns: dynamic'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResourcesJson = parse_json(Resources)\n'
                     '| mv-apply siemforge_e_1 = array_concat(dynamic([null]), iff(gettype(ResourcesJson) == "array", ResourcesJson, dynamic([]))) to typeof(dynamic) on (summarize siemforge_values_2 = make_list_if(siemforge_e_1["type"], gettype(siemforge_e_1["type"]) !in ("array", "dictionary", "null")))\n'
                     '| mv-apply siemforge_e_3 = array_concat(dynamic([null]), iff(gettype(ResourcesJson) == "array", ResourcesJson, dynamic([]))) to typeof(dynamic) on (summarize siemforge_values_4 = make_list_if(siemforge_e_3["ARN"], gettype(siemforge_e_3["ARN"]) !in ("array", "dictionary", "null")))\n'
                     '| summarize types = make_set(siemforge_values_2), arns = make_set(siemforge_values_4) by eventSource = EventSource\n'
                     '| extend types = array_sort_asc(types), arns = array_sort_asc(arns)'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=resources{}.type\n'
                   '| eval siemforge_values2=mvfilter(NOT (match(siemforge_path1, "^[{[]") AND json_valid(siemforge_path1)))\n'
                   '| spath output=siemforge_path3 path=resources{}.ARN\n'
                   '| eval siemforge_values4=mvfilter(NOT (match(siemforge_path3, "^[{[]") AND json_valid(siemforge_path3)))\n'
                   '| fillnull value="__siemforge_null__" eventSource\n'
                   '| stats values(siemforge_values2) AS types values(siemforge_values4) AS arns by eventSource\n'
                   '| eval eventSource=if(eventSource=="__siemforge_null__", null(), eventSource)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventSource" AS "eventSource",\n'
                '    COALESCE(\n'
                '      LIST_SORT(\n'
                '        LIST_DISTINCT(\n'
                '          FLATTEN(\n'
                '            ARRAY_AGG(\n'
                '              LIST_TRANSFORM(\n'
                '                LIST_FILTER(\n'
                '                  JSON_EXTRACT("resources", \'$[*].type\'),\n'
                "                  LAMBDA x : NOT JSON_TYPE(x) IN ('OBJECT', 'ARRAY', 'NULL')\n"
                '                ),\n'
                "                LAMBDA x : x ->> '$'\n"
                '              )\n'
                '            )\n'
                '          )\n'
                '        )\n'
                '      ),\n'
                '      []\n'
                '    ) AS "types",\n'
                '    COALESCE(\n'
                '      LIST_SORT(\n'
                '        LIST_DISTINCT(\n'
                '          FLATTEN(\n'
                '            ARRAY_AGG(\n'
                '              LIST_TRANSFORM(\n'
                '                LIST_FILTER(\n'
                '                  JSON_EXTRACT("resources", \'$[*].ARN\'),\n'
                "                  LAMBDA x : NOT JSON_TYPE(x) IN ('OBJECT', 'ARRAY', 'NULL')\n"
                '                ),\n'
                "                LAMBDA x : x ->> '$'\n"
                '              )\n'
                '            )\n'
                '          )\n'
                '        )\n'
                '      ),\n'
                '      []\n'
                '    ) AS "arns"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventSource"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_earliest_latest', 'summarize e = earliest(sourceIPAddress), l = latest(sourceIPAddress) by eventName', {
        'executor': ('| aggregate e: string = earliest(sourceIPAddress), l: string = latest(sourceIPAddress) by[nulls kept] eventName = eventName\n'
                     '=> eventName: string, e: string, l: string'),
        'sentinel': ('AWSCloudTrail\n'
                     '| summarize (siemforge_time_1, e) = arg_min(TimeGenerated, SourceIpAddress), (siemforge_time_2, l) = arg_max(TimeGenerated, SourceIpAddress) by eventName = EventName\n'
                     '| project-away siemforge_time_1, siemforge_time_2'),
        'splunk': ('`cloudtrail`\n'
                   '| fillnull value="__siemforge_null__" eventName\n'
                   '| stats earliest(sourceIPAddress) AS e latest(sourceIPAddress) AS l by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    ARG_MIN("sourceIPAddress", "_time") AS "e",\n'
                '    ARG_MAX("sourceIPAddress", "_time") AS "l"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "eventName"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_arg_max', 'summarize arg_max(_time, eventName, user = userIdentity.arn), n = count() by sourceIPAddress', {
        'executor': ('| aggregate _time: datetime = arg_max(_time, _time), eventName: string = arg_max(_time, eventName), user: string = arg_max(_time, userIdentity.arn), n: int = count() by[nulls kept] sourceIPAddress = sourceIPAddress\n'
                     '=> sourceIPAddress: string, _time: datetime, eventName: string, user: string, n: int'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend siemforge_key_1 = TimeGenerated, siemforge_arg_2 = iff(isnull(TimeGenerated), datetime(null), TimeGenerated), siemforge_arg_3 = iff(isnull(TimeGenerated), "", EventName), siemforge_arg_4 = iff(isnull(TimeGenerated), "", UserIdentityArn)\n'
                     '| summarize arg_max(siemforge_key_1, siemforge_arg_2, siemforge_arg_3, siemforge_arg_4), n = count() by sourceIPAddress = SourceIpAddress\n'
                     '| extend _time = siemforge_arg_2, eventName = siemforge_arg_3, user = siemforge_arg_4\n'
                     '| project-away siemforge_key_1, siemforge_arg_2, siemforge_arg_3, siemforge_arg_4'),
        'splunk': ('`cloudtrail`\n'
                   '| eval siemforge_key1=tonumber(_time), siemforge_pick2=if(isnull(siemforge_key1), null(), if(isnull(_time), "__siemforge_null__", _time)), siemforge_pick3=if(isnull(siemforge_key1), null(), if(isnull(eventName), "__siemforge_null__", eventName)), siemforge_pick4=if(isnull(siemforge_key1), null(), if(isnull(\'userIdentity.arn\'), "__siemforge_null__", \'userIdentity.arn\'))\n'
                   '| sort 0 -siemforge_key1\n'
                   '| fillnull value="__siemforge_null__" sourceIPAddress\n'
                   '| stats first(siemforge_pick2) AS _time first(siemforge_pick3) AS eventName first(siemforge_pick4) AS user count AS n by sourceIPAddress\n'
                   '| eval sourceIPAddress=if(sourceIPAddress=="__siemforge_null__", null(), sourceIPAddress)\n'
                   '| eval _time=if(_time=="__siemforge_null__", null(), _time), eventName=if(eventName=="__siemforge_null__", null(), eventName), user=if(user=="__siemforge_null__", null(), user)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "sourceIPAddress" AS "sourceIPAddress",\n'
                '    ARG_MAX(\n'
                '      {\'f0\': "_time", \'f1\': "eventName", \'f2\': (\n'
                '        "userIdentity" ->> \'$.arn\'\n'
                '      )},\n'
                '      "_time"\n'
                '    ).f0 AS "_time",\n'
                '    ARG_MAX(\n'
                '      {\'f0\': "_time", \'f1\': "eventName", \'f2\': (\n'
                '        "userIdentity" ->> \'$.arn\'\n'
                '      )},\n'
                '      "_time"\n'
                '    ).f1 AS "eventName",\n'
                '    ARG_MAX(\n'
                '      {\'f0\': "_time", \'f1\': "eventName", \'f2\': (\n'
                '        "userIdentity" ->> \'$.arn\'\n'
                '      )},\n'
                '      "_time"\n'
                '    ).f2 AS "user",\n'
                '    COUNT(*) AS "n"\n'
                '  FROM siemforge_1\n'
                '  GROUP BY\n'
                '    "sourceIPAddress"\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_arg_max', 'summarize first = arg_min(_time, a = tostring(requestParameters.bucketName))', {
        'executor': ('| aggregate first: datetime = arg_min(_time, _time), a: string = arg_min(_time, tostring(requestParameters.bucketName))\n'
                     '=> first: datetime, a: string'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     '| extend siemforge_key_1 = TimeGenerated, siemforge_arg_2 = iff(isnull(TimeGenerated), datetime(null), TimeGenerated), siemforge_arg_3 = iff(isnull(TimeGenerated), "", tostring(RequestParametersJson.bucketName))\n'
                     '| summarize arg_min(siemforge_key_1, siemforge_arg_2, siemforge_arg_3)\n'
                     "| extend ['first'] = siemforge_arg_2, a = siemforge_arg_3\n"
                     '| project-away siemforge_key_1, siemforge_arg_2, siemforge_arg_3'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path4 path=requestParameters.bucketName\n'
                   '| eval siemforge_key1=tonumber(_time), siemforge_pick2=if(isnull(siemforge_key1), null(), if(isnull(_time), "__siemforge_null__", _time)), siemforge_pick3=if(isnull(siemforge_key1), null(), if(isnull(siemforge_path4), "__siemforge_null__", siemforge_path4))\n'
                   '| sort 0 +siemforge_key1\n'
                   '| stats first(siemforge_pick2) AS first first(siemforge_pick3) AS a\n'
                   '| eval first=if(first=="__siemforge_null__", null(), first), a=if(a=="__siemforge_null__", null(), a)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    ARG_MIN({\'f0\': "_time", \'f1\': (\n'
                '      "requestParameters" ->> \'$.bucketName\'\n'
                '    )}, "_time").f0 AS "first",\n'
                '    ARG_MIN({\'f0\': "_time", \'f1\': (\n'
                '      "requestParameters" ->> \'$.bucketName\'\n'
                '    )}, "_time").f1 AS "a"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('agg_percentile', '{type: value_percentile, rules: [run], group-by: [sourceIPAddress], timespan: 1h, condition: {field: requestParameters.maxCount, percentile: 90, gt: 10}}', {
        'executor': ("  branch sigma_rule = 'run':\n"
                     '    source aws.cloudtrail (time: _time)\n'
                     '    | filter (eventName ==~i "RunInstances")\n'
                     '    | extend[parallel] _time: datetime = _time, sourceIPAddress: string = sourceIPAddress, requestParameters.maxCount: any = requestParameters.maxCount\n'
                     '| aggregate value_percentile: real = percentile(`requestParameters.maxCount`, 90) by[nulls kept] _time = bin(_time, timespan(3600s)), sourceIPAddress = sourceIPAddress\n'
                     '| filter (value_percentile > 10)\n'
                     '=> _time: datetime, sourceIPAddress: string, value_percentile: real'),
        'sentinel': ('AWSCloudTrail\n'
                     '| where EventName =~ "RunInstances"\n'
                     '| extend RequestParametersJson = parse_json(RequestParameters)\n'
                     "| extend _time = TimeGenerated, sourceIPAddress = SourceIpAddress, ['requestParameters.maxCount'] = RequestParametersJson.maxCount\n"
                     '| project-away RequestParametersJson\n'
                     '| extend sigma_rule = "run"\n'
                     "| summarize siemforge_values_1 = make_list_if(todouble(['requestParameters.maxCount']), isnotnull(todouble(['requestParameters.maxCount']))) by _time = bin(_time, 1h), sourceIPAddress\n"
                     '| extend value_percentile = todouble(array_sort_asc(siemforge_values_1)[max_of(toint(ceiling(array_length(siemforge_values_1) * 90.0 / 100.0)), 1) - 1])\n'
                     '| project-away siemforge_values_1\n'
                     '| where value_percentile > 10'),
        'splunk': ('search `cloudtrail` eventName="RunInstances"\n'
                   '| spath output=siemforge_path1 path=requestParameters.maxCount\n'
                   "| eval _time=_time, sourceIPAddress=sourceIPAddress, 'requestParameters.maxCount'=siemforge_path1\n"
                   '| fields - siemforge_path1\n'
                   '| eval sigma_rule="run"\n'
                   "| eval siemforge_value2=tonumber('requestParameters.maxCount'), _time=(floor(_time / 3600) * 3600)\n"
                   '| fillnull value="__siemforge_null__" _time sourceIPAddress\n'
                   '| sort 0 +siemforge_value2\n'
                   '| streamstats count(siemforge_value2) AS siemforge_rank3 by _time sourceIPAddress\n'
                   '| eventstats count(siemforge_value2) AS siemforge_n4 by _time sourceIPAddress\n'
                   '| eval siemforge_pick5=if(isnotnull(siemforge_value2) AND siemforge_rank3==max(ceiling(siemforge_n4 * 90 / 100), 1), siemforge_value2, null())\n'
                   '| stats max(siemforge_pick5) AS value_percentile by _time sourceIPAddress\n'
                   '| foreach _time sourceIPAddress [eval <<FIELD>>=if(\'<<FIELD>>\'=="__siemforge_null__", null(), \'<<FIELD>>\')]\n'
                   '| where value_percentile>10'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("eventName") = LOWER(\'RunInstances\')\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE ("_time" AS "_time", "sourceIPAddress" AS "sourceIPAddress"),\n'
                '    "requestParameters" -> \'$.maxCount\' AS "requestParameters.maxCount"\n'
                '  FROM siemforge_2\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    "_time" AS "_time",\n'
                '    "sourceIPAddress" AS "sourceIPAddress",\n'
                '    "requestParameters.maxCount" AS "requestParameters.maxCount",\n'
                '    \'run\' AS "sigma_rule"\n'
                '  FROM siemforge_3\n'
                '), siemforge_5 AS (\n'
                '  SELECT\n'
                '    CAST(TO_TIMESTAMP(FLOOR(EPOCH("_time") / 3600) * 3600) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time",\n'
                '    "sourceIPAddress" AS "sourceIPAddress",\n'
                '    LIST_EXTRACT(\n'
                '      LIST_SORT(\n'
                '        ARRAY_AGG(TRY_CAST("requestParameters.maxCount" ->> \'$\' AS DOUBLE)) FILTER(WHERE\n'
                '          NOT TRY_CAST("requestParameters.maxCount" ->> \'$\' AS DOUBLE) IS NULL)\n'
                '      ),\n'
                '      CASE\n'
                '        WHEN CAST(CEIL(\n'
                '          ARRAY_LENGTH(\n'
                '            LIST_SORT(\n'
                '              ARRAY_AGG(TRY_CAST("requestParameters.maxCount" ->> \'$\' AS DOUBLE)) FILTER(WHERE\n'
                '                NOT TRY_CAST("requestParameters.maxCount" ->> \'$\' AS DOUBLE) IS NULL)\n'
                '            )\n'
                '          ) * 90.0 / 100\n'
                '        ) AS BIGINT) IS NULL\n'
                '        OR 1 IS NULL\n'
                '        THEN NULL\n'
                '        ELSE GREATEST(\n'
                '          CAST(CEIL(\n'
                '            ARRAY_LENGTH(\n'
                '              LIST_SORT(\n'
                '                ARRAY_AGG(TRY_CAST("requestParameters.maxCount" ->> \'$\' AS DOUBLE)) FILTER(WHERE\n'
                '                  NOT TRY_CAST("requestParameters.maxCount" ->> \'$\' AS DOUBLE) IS NULL)\n'
                '              )\n'
                '            ) * 90.0 / 100\n'
                '          ) AS BIGINT),\n'
                '          1\n'
                '        )\n'
                '      END\n'
                '    ) AS "value_percentile"\n'
                '  FROM siemforge_4\n'
                '  GROUP BY\n'
                '    CAST(TO_TIMESTAMP(FLOOR(EPOCH("_time") / 3600) * 3600) AT TIME ZONE \'UTC\' AS TIMESTAMP),\n'
                '    "sourceIPAddress"\n'
                '), siemforge_6 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_5\n'
                '  WHERE\n'
                '    "value_percentile" > 10\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_6'),
    }, correlation=True),
    Row('union', '{type: temporal, rules: [run, stop], group-by: [sourceIPAddress], timespan: 15m}', {
        'executor': ("  branch sigma_rule = 'run':\n"
                     '    source aws.cloudtrail (time: _time)\n'
                     '    | filter (eventName ==~i "RunInstances")\n'
                     '    | extend[parallel] _time: datetime = _time, sourceIPAddress: string = sourceIPAddress\n'
                     "  branch sigma_rule = 'stop':\n"
                     '    source aws.cloudtrail (time: _time)\n'
                     '    | filter (eventName ==~i "StopInstances")\n'
                     '    | extend[parallel] _time: datetime = _time, sourceIPAddress: string = sourceIPAddress\n'
                     '| aggregate rule_count: int = dcount(sigma_rule) by[nulls kept] _time = bin(_time, timespan(900s)), sourceIPAddress = sourceIPAddress\n'
                     '| filter (rule_count >= 2)\n'
                     '=> _time: datetime, sourceIPAddress: string, rule_count: int'),
        'sentinel': ('union\n'
                     '    (AWSCloudTrail\n'
                     '    | where EventName =~ "RunInstances"\n'
                     '    | extend _time = TimeGenerated, sourceIPAddress = SourceIpAddress\n'
                     '    | extend sigma_rule = "run"),\n'
                     '    (AWSCloudTrail\n'
                     '    | where EventName =~ "StopInstances"\n'
                     '    | extend _time = TimeGenerated, sourceIPAddress = SourceIpAddress\n'
                     '    | extend sigma_rule = "stop")\n'
                     '| summarize rule_count = dcountif(sigma_rule, isnotempty(sigma_rule), 2) by _time = bin(_time, 15m), sourceIPAddress\n'
                     '| where rule_count >= 2'),
        'splunk': ('| multisearch\n'
                   '    [search `cloudtrail` eventName="RunInstances"\n'
                   '     | eval _time=_time, sourceIPAddress=sourceIPAddress\n'
                   '     | eval sigma_rule="run"]\n'
                   '    [search `cloudtrail` eventName="StopInstances"\n'
                   '     | eval _time=_time, sourceIPAddress=sourceIPAddress\n'
                   '     | eval sigma_rule="stop"]\n'
                   '| eval _time=(floor(_time / 900) * 900)\n'
                   '| fillnull value="__siemforge_null__" _time sourceIPAddress\n'
                   '| stats dc(sigma_rule) AS rule_count by _time sourceIPAddress\n'
                   '| foreach _time sourceIPAddress [eval <<FIELD>>=if(\'<<FIELD>>\'=="__siemforge_null__", null(), \'<<FIELD>>\')]\n'
                   '| where rule_count>=2'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  WHERE\n'
                '    LOWER("eventName") = LOWER(\'RunInstances\')\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE ("_time" AS "_time", "sourceIPAddress" AS "sourceIPAddress")\n'
                '  FROM siemforge_2\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_5 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_4\n'
                '  WHERE\n'
                '    LOWER("eventName") = LOWER(\'StopInstances\')\n'
                '), siemforge_6 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE ("_time" AS "_time", "sourceIPAddress" AS "sourceIPAddress")\n'
                '  FROM siemforge_5\n'
                '), siemforge_7 AS (\n'
                '  SELECT\n'
                '    "_time" AS "_time",\n'
                '    "sourceIPAddress" AS "sourceIPAddress",\n'
                '    \'run\' AS "sigma_rule"\n'
                '  FROM siemforge_3\n'
                '  UNION ALL\n'
                '  SELECT\n'
                '    "_time" AS "_time",\n'
                '    "sourceIPAddress" AS "sourceIPAddress",\n'
                '    \'stop\' AS "sigma_rule"\n'
                '  FROM siemforge_6\n'
                '), siemforge_8 AS (\n'
                '  SELECT\n'
                '    CAST(TO_TIMESTAMP(FLOOR(EPOCH("_time") / 900) * 900) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time",\n'
                '    "sourceIPAddress" AS "sourceIPAddress",\n'
                '    COUNT(DISTINCT "sigma_rule") AS "rule_count"\n'
                '  FROM siemforge_7\n'
                '  GROUP BY\n'
                '    CAST(TO_TIMESTAMP(FLOOR(EPOCH("_time") / 900) * 900) AT TIME ZONE \'UTC\' AS TIMESTAMP),\n'
                '    "sourceIPAddress"\n'
                '), siemforge_9 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_8\n'
                '  WHERE\n'
                '    "rule_count" >= 2\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_9'),
    }, correlation=True),
    Row('event_aggregate', 'eventstats total = count() by eventName | where total > 1', {
        'executor': ('| event_aggregate total: int = count() by[nulls kept] eventName = eventName\n'
                     '| filter (total > 1)'),
        'sentinel': ('let siemforge_rows_1 = AWSCloudTrail;\n'
                     'siemforge_rows_1\n'
                     '| extend siemforge_key_3 = tostring(EventName)\n'
                     '| join kind=leftouter (siemforge_rows_1 | extend siemforge_key_3 = tostring(EventName) | summarize siemforge_agg_2 = count() by siemforge_key_3) on siemforge_key_3\n'
                     '| extend total = siemforge_agg_2\n'
                     '| project-away siemforge_key_3, siemforge_key_31, siemforge_agg_2\n'
                     '| where total > 1'),
        'splunk': ('`cloudtrail`\n'
                   '| eval eventName=coalesce(eventName, "__siemforge_null__")\n'
                   '| eventstats count AS total by eventName\n'
                   '| eval eventName=if(eventName=="__siemforge_null__", null(), eventName)\n'
                   '| where total>1'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    COUNT(*) OVER (PARTITION BY "eventName") AS "total"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_2\n'
                '  WHERE\n'
                '    "total" > 1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('lookup', 'extend image = tostring(responseElements.instancesSet.items[0].imageId) | lookup images on image = image_id output owner, seen', {
        'executor': ('table images (image_id: string, owner: string, seen: int) from RULE_FOLDER/images.csv\n'
                     '| extend[parallel] image: string = tostring(responseElements.instancesSet.items[0].imageId)\n'
                     '| lookup[left, exact] images on image == image_id output owner, seen'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResponseElementsJson = parse_json(ResponseElements)\n'
                     '| extend image = tostring(ResponseElementsJson.instancesSet.items[0].imageId)\n'
                     '| extend siemforge_key_1 = tostring(image)\n'
                     '| lookup kind=leftouter (_GetWatchlist("images") | project siemforge_key_1 = tostring(image_id), owner = tostring(owner), seen = tolong(seen)) on siemforge_key_1\n'
                     '| project-away ResponseElementsJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=image path=responseElements.instancesSet.items{1}.imageId\n'
                   '| lookup images image_id AS image OUTPUT owner AS owner, seen AS seen'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "responseElements" ->> \'$.instancesSet.items[0].imageId\' AS "image"\n'
                '  FROM siemforge_1\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "image" AS "siemforge_key_0"\n'
                '  FROM siemforge_2\n'
                '), siemforge_6 AS (\n'
                '  SELECT\n'
                '    "siemforge_5"."eventVersion",\n'
                '    "siemforge_5"."eventTime",\n'
                '    "siemforge_5"."eventSource",\n'
                '    "siemforge_5"."eventName",\n'
                '    "siemforge_5"."awsRegion",\n'
                '    "siemforge_5"."sourceIPAddress",\n'
                '    "siemforge_5"."userAgent",\n'
                '    "siemforge_5"."errorCode",\n'
                '    "siemforge_5"."errorMessage",\n'
                '    "siemforge_5"."requestParameters",\n'
                '    "siemforge_5"."responseElements",\n'
                '    "siemforge_5"."additionalEventData",\n'
                '    "siemforge_5"."serviceEventDetails",\n'
                '    "siemforge_5"."requestID",\n'
                '    "siemforge_5"."eventID",\n'
                '    "siemforge_5"."readOnly",\n'
                '    "siemforge_5"."resources",\n'
                '    "siemforge_5"."eventType",\n'
                '    "siemforge_5"."eventCategory",\n'
                '    "siemforge_5"."apiVersion",\n'
                '    "siemforge_5"."managementEvent",\n'
                '    "siemforge_5"."recipientAccountId",\n'
                '    "siemforge_5"."sharedEventID",\n'
                '    "siemforge_5"."vpcEndpointId",\n'
                '    "siemforge_5"."tlsDetails",\n'
                '    "siemforge_5"."sessionCredentialFromConsole",\n'
                '    "siemforge_5"."edgeDeviceDetails",\n'
                '    "siemforge_5"."insightDetails",\n'
                '    "siemforge_5"."userIdentity",\n'
                '    "siemforge_5"."_time",\n'
                '    "siemforge_5"."image",\n'
                '    "siemforge_3"."owner" AS "owner",\n'
                '    "siemforge_3"."seen" AS "seen"\n'
                '  FROM siemforge_4 AS siemforge_5\n'
                '  LEFT JOIN (\n'
                '    SELECT\n'
                '      "image_id",\n'
                '      "owner",\n'
                '      "seen"\n'
                '    FROM (\n'
                '      SELECT\n'
                '        CAST("image_id" AS TEXT) AS "image_id",\n'
                '        "owner",\n'
                '        "seen",\n'
                '        ROW_NUMBER() OVER (PARTITION BY CAST("image_id" AS TEXT) ORDER BY "siemforge_row") AS "siemforge_rank"\n'
                '      FROM images\n'
                '    )\n'
                '    WHERE\n'
                '      "siemforge_rank" = 1\n'
                '  ) AS siemforge_3\n'
                '    ON "siemforge_5"."siemforge_key_0" = "siemforge_3"."image_id"\n'
                '    AND "siemforge_5"."siemforge_key_0" <> \'\'\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_6'),
    }, lookups=True),
    Row('rename', 'rename ip = sourceIPAddress | where ip != "10.0.0.1"', {
        'executor': ('| rename sourceIPAddress -> ip\n'
                     '| filter (ip != "10.0.0.1")'),
        'sentinel': ('AWSCloudTrail\n'
                     '| project-rename ip = SourceIpAddress\n'
                     '| where ip != "10.0.0.1"'),
        'splunk': ('`cloudtrail`\n'
                   '| rename sourceIPAddress AS ip\n'
                   '| where isnull(ip) OR ip!="10.0.0.1"'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventVersion",\n'
                '    "eventTime",\n'
                '    "eventSource",\n'
                '    "eventName",\n'
                '    "awsRegion",\n'
                '    "sourceIPAddress" AS "ip",\n'
                '    "userAgent",\n'
                '    "errorCode",\n'
                '    "errorMessage",\n'
                '    "requestParameters",\n'
                '    "responseElements",\n'
                '    "additionalEventData",\n'
                '    "serviceEventDetails",\n'
                '    "requestID",\n'
                '    "eventID",\n'
                '    "readOnly",\n'
                '    "resources",\n'
                '    "eventType",\n'
                '    "eventCategory",\n'
                '    "apiVersion",\n'
                '    "managementEvent",\n'
                '    "recipientAccountId",\n'
                '    "sharedEventID",\n'
                '    "vpcEndpointId",\n'
                '    "tlsDetails",\n'
                '    "sessionCredentialFromConsole",\n'
                '    "edgeDeviceDetails",\n'
                '    "insightDetails",\n'
                '    "userIdentity",\n'
                '    "_time"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_2\n'
                '  WHERE\n'
                '    NOT (\n'
                '      COALESCE("ip" = \'10.0.0.1\', FALSE)\n'
                '    )\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('project', 'extend `my col` = 1 | project `my col`, eventName', {
        'executor': ('| extend[parallel] my col: int = 1\n'
                     '| project my col, eventName\n'
                     '=> my col: int, eventName: string'),
        'sentinel': ('AWSCloudTrail\n'
                     "| extend ['my col'] = 1\n"
                     "| project ['my col'], eventName = EventName"),
        'splunk': ('`cloudtrail`\n'
                   "| eval 'my col'=1\n"
                   '| table "my col" eventName'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    1 AS "my col"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    "my col" AS "my col",\n'
                '    "eventName" AS "eventName"\n'
                '  FROM siemforge_2\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('project', 'project eventName, awsRegion', {
        'executor': ('| project eventName, awsRegion\n'
                     '=> eventName: string, awsRegion: string'),
        'sentinel': ('AWSCloudTrail\n'
                     '| project eventName = EventName, awsRegion = AWSRegion'),
        'splunk': ('`cloudtrail`\n'
                   '| table eventName awsRegion'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventName" AS "eventName",\n'
                '    "awsRegion" AS "awsRegion"\n'
                '  FROM siemforge_1\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('sort', 'rename ip = sourceIPAddress | project ip, eventName | sort by ip desc, eventName | take 5', {
        'executor': ('| rename sourceIPAddress -> ip\n'
                     '| project ip, eventName\n'
                     '| sort ip desc, eventName asc\n'
                     '| limit 5\n'
                     '=> ip: string, eventName: string'),
        'sentinel': ('AWSCloudTrail\n'
                     '| project-rename ip = SourceIpAddress\n'
                     '| project ip, eventName = EventName\n'
                     '| sort by ip desc nulls last, eventName asc nulls first\n'
                     '| take 5'),
        'splunk': ('`cloudtrail`\n'
                   '| rename sourceIPAddress AS ip\n'
                   '| table ip eventName\n'
                   '| sort 0 -ip +eventName\n'
                   '| head 5'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    "eventVersion",\n'
                '    "eventTime",\n'
                '    "eventSource",\n'
                '    "eventName",\n'
                '    "awsRegion",\n'
                '    "sourceIPAddress" AS "ip",\n'
                '    "userAgent",\n'
                '    "errorCode",\n'
                '    "errorMessage",\n'
                '    "requestParameters",\n'
                '    "responseElements",\n'
                '    "additionalEventData",\n'
                '    "serviceEventDetails",\n'
                '    "requestID",\n'
                '    "eventID",\n'
                '    "readOnly",\n'
                '    "resources",\n'
                '    "eventType",\n'
                '    "eventCategory",\n'
                '    "apiVersion",\n'
                '    "managementEvent",\n'
                '    "recipientAccountId",\n'
                '    "sharedEventID",\n'
                '    "vpcEndpointId",\n'
                '    "tlsDetails",\n'
                '    "sessionCredentialFromConsole",\n'
                '    "edgeDeviceDetails",\n'
                '    "insightDetails",\n'
                '    "userIdentity",\n'
                '    "_time"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    "ip" AS "ip",\n'
                '    "eventName" AS "eventName"\n'
                '  FROM siemforge_2\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    ROW_NUMBER() OVER (ORDER BY "ip" DESC, "eventName" ASC NULLS FIRST) AS "siemforge_order"\n'
                '  FROM siemforge_3\n'
                '), siemforge_5 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_4\n'
                '  ORDER BY\n'
                '    "siemforge_order"\n'
                '  LIMIT 5\n'
                ')\n'
                'SELECT\n'
                '  "ip",\n'
                '  "eventName"\n'
                'FROM siemforge_5\n'
                'ORDER BY\n'
                '  "siemforge_order" NULLS FIRST'),
    }),
    Row('limit', 'take 5', {
        'executor': '| limit 5',
        'sentinel': ('AWSCloudTrail\n'
                     '| take 5'),
        'splunk': ('`cloudtrail`\n'
                   '| head 5'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_1\n'
                '  LIMIT 5\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_2'),
    }),
    Row('expand', 'mv-expand item = responseElements.instancesSet.items | extend t = item.instanceType', {
        'executor': ('| expand[null: one row, empty: none] item: dynamic = responseElements.instancesSet.items[*]\n'
                     '| extend[parallel] t: any = item.instanceType'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResponseElementsJson = parse_json(ResponseElements)\n'
                     '| mv-expand item = ResponseElementsJson.instancesSet.items\n'
                     '| extend t = item.instanceType\n'
                     '| project-away ResponseElementsJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=responseElements.instancesSet.items\n'
                   '| spath output=siemforge_path2 path=responseElements.instancesSet.items{}\n'
                   '| eval siemforge_count3=case(isnotnull(siemforge_path2), mvcount(siemforge_path2), isnull(siemforge_path1), 1, match(siemforge_path1, "^\\\\s*(\\\\[\\\\s*\\\\]|\\\\{\\\\s*\\\\})\\\\s*$"), 0, true(), 1)\n'
                   '| where siemforge_count3>0\n'
                   '| eval siemforge_index4=mvrange(0, siemforge_count3)\n'
                   '| mvexpand siemforge_index4\n'
                   '| eval item=if(isnotnull(siemforge_path2), mvindex(siemforge_path2, siemforge_index4), siemforge_path1)\n'
                   '| fields - siemforge_count3 siemforge_index4\n'
                   '| spath input=item output=siemforge_path5 path=instanceType\n'
                   '| eval t=siemforge_path5\n'
                   '| fields - siemforge_path1 siemforge_path2 siemforge_path5'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    UNNEST(CASE\n'
                '      WHEN (\n'
                '        "responseElements" -> \'$.instancesSet.items\'\n'
                '      ) IS NULL\n'
                '      OR JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'NULL\'\n'
                '      THEN [CAST(NULL AS JSON)]\n'
                '      WHEN JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'ARRAY\'\n'
                '      THEN CAST("responseElements" -> \'$.instancesSet.items\' AS JSON[])\n'
                '      WHEN JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'OBJECT\'\n'
                '      THEN LIST_TRANSFORM(\n'
                '        MAP_ENTRIES(CAST("responseElements" -> \'$.instancesSet.items\' AS MAP(TEXT, JSON))),\n'
                '        LAMBDA m : JSON_OBJECT(m.key, m.value)\n'
                '      )\n'
                '      ELSE ["responseElements" -> \'$.instancesSet.items\']\n'
                '    END) AS "item"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "item" -> \'$.instanceType\' AS "t"\n'
                '  FROM siemforge_2\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('expand', 'extend items = responseElements.instancesSet.items | mv-expand items | where items.instanceType == "p4d"', {
        'executor': ('| extend[parallel] items: any = responseElements.instancesSet.items\n'
                     '| expand[null: one row, empty: none] items: dynamic = items[*]\n'
                     '| filter (items.instanceType == "p4d")'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResponseElementsJson = parse_json(ResponseElements)\n'
                     '| extend items = ResponseElementsJson.instancesSet.items\n'
                     '| mv-expand items = items\n'
                     '| where tostring(items.instanceType) == "p4d"\n'
                     '| project-away ResponseElementsJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=responseElements.instancesSet.items\n'
                   '| eval items=siemforge_path1\n'
                   '| spath input=items output=siemforge_path2 path={}\n'
                   '| eval siemforge_count3=case(isnotnull(siemforge_path2), mvcount(siemforge_path2), isnull(items), 1, match(items, "^\\\\s*(\\\\[\\\\s*\\\\]|\\\\{\\\\s*\\\\})\\\\s*$"), 0, true(), 1)\n'
                   '| where siemforge_count3>0\n'
                   '| eval siemforge_index4=mvrange(0, siemforge_count3)\n'
                   '| mvexpand siemforge_index4\n'
                   '| eval items=if(isnotnull(siemforge_path2), mvindex(siemforge_path2, siemforge_index4), items)\n'
                   '| fields - siemforge_count3 siemforge_index4\n'
                   '| spath input=items output=siemforge_path5 path=instanceType\n'
                   '| where siemforge_path5=="p4d"\n'
                   '| fields - siemforge_path1 siemforge_path2 siemforge_path5'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "responseElements" -> \'$.instancesSet.items\' AS "items"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE (UNNEST(CASE\n'
                '      WHEN "items" IS NULL OR JSON_TYPE("items") = \'NULL\'\n'
                '      THEN [CAST(NULL AS JSON)]\n'
                '      WHEN JSON_TYPE("items") = \'ARRAY\'\n'
                '      THEN CAST("items" AS JSON[])\n'
                '      WHEN JSON_TYPE("items") = \'OBJECT\'\n'
                '      THEN LIST_TRANSFORM(\n'
                '        MAP_ENTRIES(CAST("items" AS MAP(TEXT, JSON))),\n'
                '        LAMBDA m : JSON_OBJECT(m.key, m.value)\n'
                '      )\n'
                '      ELSE ["items"]\n'
                '    END) AS "items")\n'
                '  FROM siemforge_2\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_3\n'
                '  WHERE\n'
                '    (\n'
                '      "items" ->> \'$.instanceType\'\n'
                "    ) = 'p4d'\n"
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_4'),
    }),
    Row('expand', 'mv-expand item = responseElements.instancesSet.items limit 2 | extend t = item.instanceType', {
        'executor': ('| expand[null: one row, empty: none first 2] item: dynamic = responseElements.instancesSet.items[*]\n'
                     '| extend[parallel] t: any = item.instanceType'),
        'sentinel': ('AWSCloudTrail\n'
                     '| extend ResponseElementsJson = parse_json(ResponseElements)\n'
                     '| mv-expand item = ResponseElementsJson.instancesSet.items limit 2\n'
                     '| extend t = item.instanceType\n'
                     '| project-away ResponseElementsJson'),
        'splunk': ('`cloudtrail`\n'
                   '| spath output=siemforge_path1 path=responseElements.instancesSet.items\n'
                   '| spath output=siemforge_path2 path=responseElements.instancesSet.items{}\n'
                   '| eval siemforge_count3=case(isnotnull(siemforge_path2), mvcount(siemforge_path2), isnull(siemforge_path1), 1, match(siemforge_path1, "^\\\\s*(\\\\[\\\\s*\\\\]|\\\\{\\\\s*\\\\})\\\\s*$"), 0, true(), 1)\n'
                   '| eval siemforge_count3=min(siemforge_count3, 2)\n'
                   '| where siemforge_count3>0\n'
                   '| eval siemforge_index4=mvrange(0, siemforge_count3)\n'
                   '| mvexpand siemforge_index4\n'
                   '| eval item=if(isnotnull(siemforge_path2), mvindex(siemforge_path2, siemforge_index4), siemforge_path1)\n'
                   '| fields - siemforge_count3 siemforge_index4\n'
                   '| spath input=item output=siemforge_path5 path=instanceType\n'
                   '| eval t=siemforge_path5\n'
                   '| fields - siemforge_path1 siemforge_path2 siemforge_path5'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    UNNEST(LIST_SLICE(\n'
                '      CASE\n'
                '        WHEN (\n'
                '          "responseElements" -> \'$.instancesSet.items\'\n'
                '        ) IS NULL\n'
                '        OR JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'NULL\'\n'
                '        THEN [CAST(NULL AS JSON)]\n'
                '        WHEN JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'ARRAY\'\n'
                '        THEN CAST("responseElements" -> \'$.instancesSet.items\' AS JSON[])\n'
                '        WHEN JSON_TYPE("responseElements" -> \'$.instancesSet.items\') = \'OBJECT\'\n'
                '        THEN LIST_TRANSFORM(\n'
                '          MAP_ENTRIES(CAST("responseElements" -> \'$.instancesSet.items\' AS MAP(TEXT, JSON))),\n'
                '          LAMBDA m : JSON_OBJECT(m.key, m.value)\n'
                '        )\n'
                '        ELSE ["responseElements" -> \'$.instancesSet.items\']\n'
                '      END,\n'
                '      1,\n'
                '      2\n'
                '    )) AS "item"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    "item" -> \'$.instanceType\' AS "t"\n'
                '  FROM siemforge_2\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_3'),
    }),
    Row('expand', 'mv-expand e = split(userAgent, "/") to typeof(string) | where e == "aws-cli"', {
        'executor': ('| expand[null: one row, empty: none] e: string = split(userAgent, "/")[*]\n'
                     '| filter (e == "aws-cli")'),
        'sentinel': ('AWSCloudTrail\n'
                     '| mv-expand e = split(UserAgent, "/") to typeof(string)\n'
                     '| where e == "aws-cli"'),
        'splunk': Unsupported('mv-expand … to typeof(): SPL holds every element as text, so it cannot tell a number from numeric text (docs/semantics.md decision 62)'),
        'sql': ('WITH siemforge_1 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    CAST(TRY_CAST("eventTime" AS TIMESTAMPTZ) AT TIME ZONE \'UTC\' AS TIMESTAMP) AS "_time"\n'
                '  FROM aws_cloudtrail\n'
                '), siemforge_2 AS (\n'
                '  SELECT\n'
                '    *,\n'
                '    UNNEST(COALESCE(STR_SPLIT("userAgent", \'/\'), [NULL])) AS "e"\n'
                '  FROM siemforge_1\n'
                '), siemforge_3 AS (\n'
                '  SELECT\n'
                '    *\n'
                '    REPLACE ("e" AS "e")\n'
                '  FROM siemforge_2\n'
                '), siemforge_4 AS (\n'
                '  SELECT\n'
                '    *\n'
                '  FROM siemforge_3\n'
                '  WHERE\n'
                '    "e" = \'aws-cli\'\n'
                ')\n'
                'SELECT\n'
                '  *\n'
                'FROM siemforge_4'),
    }),
]
# END ROWS


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.construct}:{i}" for i, r in enumerate(ROWS)])
def test_construct(row: Row, tmp_path: Path) -> None:
    assert compile_row(row, tmp_path) == row.expected


def doc_constructs() -> list[str]:
    doc = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `([a-z_]+)` \|", doc[doc.index("## Constructs"):], re.M)


def test_every_construct_of_the_docs_has_a_row_on_every_target() -> None:
    assert sorted({r.construct for r in ROWS}) == sorted(doc_constructs())
    assert all(set(r.expected) == set(COMPILERS) for r in ROWS)


def test_every_construct_has_executor_semantics() -> None:
    import test_semantics

    tables = [test_semantics.PREDICATES, test_semantics.SIGMA, test_semantics.VALUES, test_semantics.PIPELINES,
              test_semantics.CORRELATIONS]
    named = {row[0] for table in tables for row in table} | {"lookup"}  # test_semantics.test_lookup
    assert set(doc_constructs()) - named == set()


def test_every_kql_output_passes_kusto_language(tmp_path: Path) -> None:
    reason = checker_available()
    if reason:
        pytest.skip(f"Kusto.Language unavailable: {reason}")
    queries = [(f"{r.construct}:{i}", q) for i, r in enumerate(ROWS) if isinstance(q := r.expected["sentinel"], str)]
    lookups = [t for r in ROWS if r.lookups for t in rule_of(r, tmp_path).lookups]  # the watchlists they read
    results = check_queries(queries, lookups)
    errors = {n: [f"{d.code} {d.message}" for d in ds if d.severity == "Error"] for (n, _), ds in zip(queries, results)}
    assert {n: e for n, e in errors.items() if e} == {}


def test_every_spl_output_parses_with_the_grammar() -> None:
    from test_spl_grammar import parser

    for r in ROWS:
        if isinstance(q := r.expected["splunk"], str):
            parser().parse(q)
