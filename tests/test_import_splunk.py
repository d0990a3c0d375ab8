"""`import splunk`: ESCU searches become rules that give the same rows as the bundled hand-written rule for the same
seed, or are refused with the construct and its line:column in the input file."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import lark
import pytest
import yaml

from siemforge.backends.executor.baseline import build_table, table_csv
from siemforge.backends.executor.engine import default_now, run_rule
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries, checker_available
from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler import ir
from siemforge.compiler.api import compile_file
from siemforge.compiler.rule import TestCase as RuleCase
from siemforge.importers.common import ImportOutcome
from siemforge.importers.splunk import import_splunk, split_commands

from helpers import ROOT, shared_path

ESCU = ROOT / "tests" / "fixtures" / "escu"
MACROS = [ESCU / "macros"]
ECR = ROOT / "rules" / "aws_ecr_upload_outside_business_hours" / "aws_ecr_upload_outside_business_hours.yml"
IMAGE = ROOT / "rules" / "cloud_instance_created_unseen_image" / "cloud_instance_created_unseen_image.yml"


def imported(tmp: Path, name: str, macros: list[Path] = MACROS) -> ImportOutcome:
    [outcome] = import_splunk([ESCU / "detections" / name], tmp, macros)
    return outcome


def compiled(path: Path) -> ir.RuleIR:
    result = compile_file(path)
    assert result.rule is not None, [str(d) for d in result.diagnostics]
    return result.rule


def rows(rule: ir.RuleIR, case: RuleCase, tmp: Path) -> list[dict[str, Any]]:
    """The rows `rule` gives on one test case of a bundled rule: its logs, clock, lookups and baselines."""
    lookups = dict(case.lookups)
    for b in rule.baselines:
        if b.table in case.baselines:
            table = build_table(b, list(case.baselines[b.table]), case.now or default_now())
            path = tmp / f"{id(rule)}_{b.table}.csv"
            path.write_text(table_csv(b, table), encoding="utf-8")
            lookups[b.table] = path
    return run_rule(rule, list(case.logs), case.now, lookups).rows


def canon(found: list[dict[str, Any]], columns: list[str] | None = None) -> list[tuple[tuple[str, str], ...]]:
    def value(v: Any) -> str:
        return repr(sorted(map(str, v))) if isinstance(v, list) else str(v)

    return sorted(tuple(sorted((k, value(v)) for k, v in r.items() if columns is None or k in columns))
                  for r in found)


def same_rows(bundled: Path, rule: ir.RuleIR, tmp: Path, columns: list[str] | None = None) -> int:
    """Run both rules on every test case of the bundled rule; the rows must be equal. Returns the rows compared."""
    base = compile_file(bundled)
    assert base.rule is not None and base.doc is not None
    n = 0
    for case in base.doc.tests:
        want, got = rows(base.rule, case, tmp), rows(rule, case, tmp)
        assert canon(got, columns) == canon(want, columns), case.name
        n += len(want)
    return n


def test_seed_001_raw_cloudtrail_search_gives_the_bundled_rules_rows(tmp_path: Path) -> None:
    out = imported(tmp_path, "seed001_aws_ecr_container_upload_outside_business_hours.yml")
    assert out.status == "imported", out
    [rule_file] = out.written
    text = rule_file.read_text()
    assert "references:\n  - imported from seed001_aws_ecr_container_upload_outside_business_hours.yml" in text
    assert "dayofweek(_time) == 6 or dayofweek(_time) == 0" in text  # date_wday=saturday OR date_wday=sunday
    assert "aws_ecr_container_upload_outside_business_hours_filter` dropped" in text
    assert same_rows(ECR, compiled(rule_file), tmp_path) == 6  # two test cases, three rows each


def test_seed_001_security_lake_search_is_refused_where_it_compares_with_a_field(tmp_path: Path) -> None:
    # `where … weekday=Saturday`: an unquoted word in `where` is a field name (SPL where), and the source has none
    out = imported(tmp_path, "seed001_asl_aws_ecr_container_upload_outside_business_hours.yml")
    assert out.status == "refused" and out.written == ()
    assert out.reason == "field `Saturday` has no source field in aws.cloudtrail (asl binding)"
    assert (out.line, out.column) == (14, 45)
    line = (ESCU / "detections" / out.origin.name).read_text().splitlines()[out.line - 1]
    assert line[out.column - 1:].startswith("Saturday")


def test_seed_001_security_lake_search_with_the_weekday_quoted_gives_the_bundled_rules_rows(tmp_path: Path) -> None:
    src = (ESCU / "detections" / "seed001_asl_aws_ecr_container_upload_outside_business_hours.yml").read_text()
    fixed = src.replace("weekday=Saturday OR weekday=Sunday", 'weekday="Saturday" OR weekday="Sunday"')
    # bucketName is no field of a Security Lake record: read it from the request, as ESCU's other ASL searches do
    # cloud.provider ("AWS") is no field of the source either: drop it from the by-list and the rename
    fixed = fixed.replace(" cloud.provider cloud.region", " cloud.region").replace(" cloud.provider as vendor_product", "")
    fixed = fixed.replace("  | fillnull\n", "  | spath input=api.request.data path=bucketName output=bucketName\n"
                          "  | fillnull\n")
    (tmp_path / "in" / "detections").mkdir(parents=True)
    path = tmp_path / "in" / "detections" / "asl.yml"
    path.write_text(fixed)
    [out] = import_splunk([path], tmp_path / "out", MACROS)
    assert out.status == "imported", out
    rule = compiled(out.written[0])
    # the ASL search names its columns after OCSF: `user` is the ARN (actor.user.uid), `dest` the service; the
    # columns both rules have with the same meaning must agree row for row
    shared = ["count", "firstTime", "lastTime", "vendor_account", "vendor_region", "src", "user_agent"]
    assert same_rows(ECR, rule, tmp_path, shared) == 6


def test_seed_000_tstats_search_with_its_baseline_gives_the_bundled_rules_rows(tmp_path: Path) -> None:
    out = imported(tmp_path, "seed000_cloud_compute_instance_created_with_previously_unseen_image.yml")
    assert out.status == "imported", out
    rule_file, table = out.written
    assert table.read_text() == "image_id,firstTimeSeen,lastTimeSeen,enough_data\n"
    rule = compiled(rule_file)
    [b] = rule.baselines
    assert (b.table, b.key, b.forget.days, b.warmup.days) == ("previously_seen_cloud_compute_images", "image_id", 90, 7)
    assert same_rows(IMAGE, rule, tmp_path) == 3  # rows of the three firing cases


def test_an_undefined_forget_window_falls_back_with_a_note(tmp_path: Path) -> None:
    out = imported(tmp_path, "seed000_cloud_compute_instance_created_with_previously_unseen_image.yml", [])
    assert out.status == "imported"
    assert "forget window macro is not defined" in out.written[0].read_text()


def test_nothing_of_the_users_is_overwritten(tmp_path: Path) -> None:
    """Files go through the output folder's manifest, as for `import sentinel` and `compile -o`: a second import
    rewrites what siemforge wrote, and leaves alone (the rule refused) a rule the user edited since, a file of the
    user's, and a symlink put in a rule's place (never written through)."""
    name = "seed001_aws_ecr_container_upload_outside_business_hours.yml"
    first = imported(tmp_path, name)
    rule = first.written[0]
    before = rule.read_text()
    again = imported(tmp_path, name)
    assert again.status == "imported" and rule.read_text() == before
    rule.write_text(before + "# tuned\n")
    edited = imported(tmp_path, name)
    assert edited.status == "refused" and "was changed since siemforge wrote it" in (edited.reason or "")
    assert rule.read_text() == before + "# tuned\n"
    rule.unlink()
    (tmp_path / ".siemforge-outputs").unlink()
    rule.write_text("mine\n")
    assert "not written by siemforge" in (imported(tmp_path, name).reason or "")
    rule.unlink()
    rule.symlink_to(tmp_path / "elsewhere.yml")  # dangling: the old importer created its target
    assert imported(tmp_path, name).status == "refused"
    assert not (tmp_path / "elsewhere.yml").exists() and rule.is_symlink()


def test_a_target_that_cannot_say_the_imported_rule_is_a_note(tmp_path: Path) -> None:
    """As `import sentinel` does: the rule is imported, and the report names the target that has no query and why
    (ESCU's instance-type baseline warms up for 14 days, all the history a Sentinel query reads)."""
    corpus = shared_path("data", "migration", "splunk")
    name = "cloud_compute_instance_created_with_previously_unseen_instance_type.yml"
    [out] = import_splunk([corpus / "detections" / name], tmp_path, [corpus / "macros"])
    assert out.status == "imported"
    [note] = out.notes
    assert note.startswith("sentinel: ") and "needs 14d of history" in note
    [seed] = import_splunk([ESCU / "detections" / "seed000_cloud_compute_instance_created_with_previously_unseen_image.yml"],
                           tmp_path / "seed", MACROS)
    assert seed.status == "imported" and seed.notes == ()


TRANSLATIONS = [  # SPL (a savedsearches.conf search) → the imported rule's query; docs/semantics.md 55-59
    ("`cloudtrail` eventName=PutImage userAgent!=*.amazonaws.com",
     'where eventName =~ "PutImage" and (isnotnull(userAgent) and not (userAgent like "*.amazonaws.com"))'),
    ('`cloudtrail` eventName IN ("A", "B*") NOT errorCode=success',
     'where (eventName =~ "A" or eventName like "B*") and not isempty(errorCode)'),
    ("`cloudtrail` eventName=A src=1.2.3.4 OR src=5.6.7.8",  # search: OR binds tighter than AND
     'where eventName =~ "A" and (src =~ "1.2.3.4" or src =~ "5.6.7.8")'),
    ('`cloudtrail` eventName=X | where userAgent != "console.amazonaws.com" AND eventName="X" OR src="a"',
     'where eventName =~ "X"\n| where ((isnotnull(userAgent) and userAgent != "console.amazonaws.com") and eventName == "X")'
     ' or src == "a"'),
    ('`cloudtrail` eventName=X | eval n=len(userAgent), t=if(isnull(errorCode), "ok", "bad") | table n, t',
     'where eventName =~ "X"\n| extend n = strlen(userAgent)\n'
     '| extend t = iif(isnull(iif(isempty(errorCode), "success", errorCode)), "ok", "bad")\n| project n, t'),
    ("`cloudtrail` eventName=X | eventstats max(_time) as last | where _time == last",
     'where eventName =~ "X"\n| eventstats last = max(_time)\n| where _time == last'),
    ("`cloudtrail` eventName=X | fillnull | stats dc(src) as ips by user",
     'where eventName =~ "X"\n| summarize ips = dcount(src) by user'),
    ("`cloudtrail` eventName=X | spath input=requestParameters path=bucketName output=bucket | stats count by bucket"
     " | rename bucket as b",
     'where eventName =~ "X"\n| extend bucket = tostring(requestParameters.bucketName)\n'
     "| summarize count = count() by b = bucket\n| where isnotnull(b)"),
    ("`amazon_security_lake` api.operation=PutImage | stats count by actor.user.uid | rename actor.user.uid as user",
     'where eventName =~ "PutImage"\n| summarize count = count() by user = userIdentity.arn\n| where isnotnull(user)'),
    ("`cloudtrail` date_wday=sunday date_hour<8 | bin _time span=1h | stats count by _time",
     "where dayofweek(_time) == 0 and hourofday(_time) < 8\n| extend _time = bin(_time, 1h)\n"
     "| summarize count = count() by _time\n| where isnotnull(_time)"),
    # the AWS add-on's action/status: derived fields of aws.cloudtrail on the raw binding (decision 80)
    ("`cloudtrail` eventName=ConsoleLogin action=failure | stats count by src_ip",
     'where eventName =~ "ConsoleLogin" and action =~ "failure"\n| summarize count = count() by src_ip\n'
     "| where isnotnull(src_ip)"),
    # Security Lake's own OCSF status, not the add-on's: `ocsf_status`, where the operations are not Authentication
    # records (decision 90)
    ("`amazon_security_lake` api.operation=DeleteGroup status=Failure | stats count by src_endpoint.ip",
     'where eventName =~ "DeleteGroup" and ocsf_status =~ "Failure"\n'
     "| summarize count = count() by `src_endpoint.ip` = sourceIPAddress\n| where isnotnull(`src_endpoint.ip`)"),
    ("`amazon_security_lake` api.operation=CreateNetworkAclEntry OR api.operation=ReplaceNetworkAclEntry"
     " status=success",
     'where (eventName =~ "CreateNetworkAclEntry" or eventName =~ "ReplaceNetworkAclEntry")\n'
     '      and ocsf_status =~ "success"'),
    # tstats over the Authentication data model: the cim.authentication view (decision 82)
    ("| tstats count from datamodel=Authentication where Authentication.action=failure by Authentication.user"
     " | `drop_dm_object_name(Authentication)`",
     'where action =~ "failure"\n| summarize count = count() by user\n| where isnotnull(user)'),
    # a JSON member or JSON column as a key: its text, as SPL groups it (a dynamic key is KS116 in KQL)
    ("`cloudtrail` eventName=ConsoleLogin | stats count by additionalEventData.MFAUsed, requestParameters, userAgent",
     'where eventName =~ "ConsoleLogin"\n| summarize count = count()\n'
     "    by `additionalEventData.MFAUsed` = tostring(additionalEventData.MFAUsed),\n"
     "      requestParameters = tostring(requestParameters), userAgent\n"
     "| where isnotnull(`additionalEventData.MFAUsed`) and isnotnull(requestParameters)\n"
     "      and isnotnull(userAgent)"),
    # spath X{} + mvexpand: the Expand stage, after the events SPL makes no row of (decision 62); spath input=N
    # makes the element's members fields, as `rename N.* as *` does
    ("`cloudtrail` eventName=X | spath path=responseElements.findings{} output=f | mvexpand f | spath input=f"
     " | search severity=HIGH | stats count by name",
     'where eventName =~ "X"\n| where array_length(responseElements.findings) > 0\n'
     '| mv-expand f = responseElements.findings\n| where tostring(f.severity) =~ "HIGH"\n'
     "| summarize count = count() by name = tostring(f.name)\n| where isnotnull(name)"),
    ("`cloudtrail` eventName=X | spath input=requestParameters output=s path=items{} | mvexpand s"
     " | spath input=s output=k path=keyName | where isnull(k)",
     'where eventName =~ "X"\n| where array_length(requestParameters.items) > 0\n'
     "| mv-expand s = requestParameters.items\n| extend k = tostring(s.keyName)\n| where isnull(k)"),
    # replace(): the IR's replace_regex, `\1` a group; an eval string keeps every backslash but `\\`, `\"`, `\t`
    # (decision 47): `"\."` and `"\\."` are both the regex `\.`
    ("`cloudtrail` eventName=X | eval u=replace('userIdentity.arn', \".*/\", \"\") | table u",
     'where eventName =~ "X"\n| extend u = replace_regex(userIdentity.arn, ".*/", "")\n| project u'),
    (r'`cloudtrail` eventName=X | eval d=replace(eventSource, "^(\w+)\.(amazonaws)\\.com$", "\2:\1") | table d',
     'where eventName =~ "X"\n| extend d = replace_regex(eventSource, "^(\\\\w+)\\\\.(amazonaws)\\\\.com$", "\\\\2:\\\\1")\n'
     "| project d"),
    # values() of a multivalue path: every element's scalar, every event still counted (decision 87)
    ("`cloudtrail` eventName=X | stats count values(resources{}.ARN) as arns values(resources{}) by userAgent",
     'where eventName =~ "X"\n| summarize count = count(), arns = values(resources[].ARN),\n'
     "      `values(resources{})` = values(resources[])\n    by userAgent\n| where isnotnull(userAgent)"),
    # stats functions read spath's text as numbers (decision 86); stdev/stdevp (decision 85); `sort -f` of an
    # aggregation's number: descending, then Splunk's default 10,000 rows (`sort 0`: all)
    ("`cloudtrail` eventName=X | spath input=requestParameters path=maxCount output=m"
     " | stats avg(m) as a, max(m) as mx, stdev(m) as s, stdevp(m) as p, count by userAgent | sort -mx, -count",
     'where eventName =~ "X"\n| extend m = tostring(requestParameters.maxCount)\n'
     "| summarize a = avg(todouble(m)), mx = max(todouble(m)), s = stdev(todouble(m)),\n"
     "      p = stdevp(todouble(m)), count = count()\n    by userAgent\n| where isnotnull(userAgent)\n| sort by mx desc, count desc\n"
     "| limit 10000"),
    ("`cloudtrail` eventName=X | stats count by userAgent | eventstats avg(count) as a, stdev(count) as s"
     " | where count > a + 2 * s | sort 0 -count",
     'where eventName =~ "X"\n| summarize count = count() by userAgent\n| where isnotnull(userAgent)\n'
     "| eventstats a = avg(count), s = stdev(count)\n| where count > (a + (2 * s))\n| sort by count desc"),
    (r'`cloudtrail` eventName=X | where match(userAgent, "^aws-cli/\d")',
     'where eventName =~ "X"\n| where userAgent matches regex "^aws-cli/\\\\d"'),
]


def _translated(tmp_path: Path, spl: str) -> str:
    """The pipeline query of a one-stanza savedsearches.conf imported."""
    path = tmp_path / "savedsearches.conf"
    path.write_text(f"[My search]\nsearch = {spl}\n")
    [out] = import_splunk([path], tmp_path / "out", MACROS)
    assert out.status == "imported", out
    text = out.written[0].read_text()
    return "\n".join(line[2:] for line in text.split("query: |\n", 1)[1].splitlines())


@pytest.mark.parametrize(("spl", "query"), TRANSLATIONS)
def test_translations(tmp_path: Path, spl: str, query: str) -> None:
    assert _translated(tmp_path, spl) == query


# a multivalue field (spath X{} not expanded, mvappend): search N=v is some value matching (decision 110)
MULTIVALUE = [
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{} | search a=Get",
     'where eventName =~ "X"\n| where parse_json(requestParameters.policy).Action[] =~ "Get"'),
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a1 path=Action"
     " | spath input=requestParameters.policy output=a2 path=Action{} | eval a=mvappend(a1, a2) | search a=Get",
     'where eventName =~ "X"\n| extend a1 = tostring(parse_json(requestParameters.policy).Action)\n'
     '| where (a1 =~ "Get" or parse_json(requestParameters.policy).Action[] =~ "Get")'),
    # written again: one value, read as any field
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{} | eval a=\"q\" | search a=Get",
     'where eventName =~ "X"\n| extend a = "q"\n| where a =~ "Get"'),
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{}"
     " | eventstats count as a | where a > 1",
     'where eventName =~ "X"\n| eventstats a = count()\n| where a > 1'),
]


@pytest.mark.parametrize(("spl", "query"), MULTIVALUE)
def test_a_search_on_a_multivalue_field_is_some_value(tmp_path: Path, spl: str, query: str) -> None:
    assert _translated(tmp_path, spl) == query


REFUSALS = [  # SPL → the refusal's reason; the column is where the construct starts
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{} | eval n=len(a)",
     "multivalue field `a` read one value at a time (only `search a=value`, some value matches, and `mvappend` are "
     "translated for it)"),
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{} | search a=kms:*",
     "search value `kms:*` with a wildcard or `\\` on the multivalue field `a` (one of its values may be an array's "
     "JSON text, which Splunk's spath and the IR may space differently)"),
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{} | search a!=Get",
     "`a!=…` on a multivalue field: only `=` (some value matches) is translated"),
    ("`cloudtrail` eventName=X | spath input=requestParameters.policy output=a path=Action{} | eval b=mvappend(a, 1)",
     "`mvappend` of an expression other than a field"),
    ("`cloudtrail` eventName=X | join user [search `cloudtrail`]", "SPL `join` without max=0 keeps only the first matching subsearch row of each event, in "
     "the subsearch's order, which the IR's join cannot say"),
    ("`cloudtrail` eventName=X | join user src_ip [search `cloudtrail` | stats count by eventID user src_ip]",
     "SPL `join` without max=0 keeps only the first matching subsearch row of each event, in the subsearch's order, "
     "which the IR's join cannot say (the subsearch's rows are not unique on src_ip, user: its last stats groups by "
     "eventID too)"),
    ("`cloudtrail` eventName=X | join max=0 user [search `cloudtrail`]", "SPL command `join` has no translation"),
    ("`cloudtrail` eventName=X | stats count by region2", "field `region2` has no source field in aws.cloudtrail (raw binding)"),
    ("`cloudtrail` Failed", "raw-text search term `Failed`"),
    ("| tstats count from datamodel=Change where All_Changes.action=created by All_Changes.user",
     "tstats over every change: siemforge's cim.change view holds the data model's Instance_Changes only (the search "
     "names no Instance_Changes field and no object_category=instance)"),
    # Security Lake's OCSF status is a function of errorCode only outside its Authentication records (decision 90)
    ("`amazon_security_lake` status=Failure",
     "`status` on Security Lake records of any operation: the Authentication records (ConsoleLogin, AssumeRole…) "
     "take their OCSF status from other rules than errorCode, and the base search names no `api.operation=` value "
     "to rule them out"),
    ("`amazon_security_lake` api.operation=*Group status=Failure",
     "`status` on Security Lake records of any operation: the Authentication records (ConsoleLogin, AssumeRole…) "
     "take their OCSF status from other rules than errorCode, and the base search names no `api.operation=` value "
     "to rule them out"),
    ("`amazon_security_lake` api.operation IN (DeleteGroup, consolelogin) status=Success",
     "`status` of Security Lake `consolelogin` records: Security Lake writes them as Authentication records, whose "
     "OCSF status does not follow errorCode"),
    ("`okta` eventType=x", "source macro `okta` names no source siemforge has"),
    ("| tstats count from datamodel=Risk.All_Risk by All_Risk.risk_object", "data model `Risk.All_Risk` has no source in siemforge"),
    ("`cloudtrail` eventName=X | `undefined_macro`", "macro `undefined_macro` is not defined (give its definition with --macros)"),
    ("`cloudtrail` eventName=X | lookup t a OUTPUTNEW b", "`lookup … OUTPUTNEW` (keeps a value the row already has)"),
    ("`cloudtrail` eventName=X | eval y=mvindex(eventName, 0)", "eval function `mvindex()` has no translation"),
    ("`cloudtrail` eventName=X | spath path=requestParameters.items{} output=v | stats count by v",
     "multivalue field `v` read one value at a time (only `search v=value`, some value matches, and `mvappend` are "
     "translated for it)"),
    ("`cloudtrail` eventName=X | spath path=requestParameters{}.LifecycleConfiguration{}.Rule{}.Expiration{}.Days"
     " output=d",
     "`spath` path `requestParameters{}.LifecycleConfiguration{}.Rule{}.Expiration{}.Days`: `{}` after "
     "`requestParameters`, which every CloudTrail record holds as a JSON object, not an array; Splunk's spath "
     "documents `{}` only as an array's elements, so what it reads here is not known (docs/semantics.md decision 91)"),
    ("`cloudtrail` eventName=X | mvexpand userAgent",
     "`mvexpand` of a field other than the array `spath path=X{} output=…` just read"),
    ("`cloudtrail` eventName=X | eval u=replace(userAgent, userAgent, \"\")",
     "replace() with a regex that is not a string literal"),
    (r'`cloudtrail` eventName=X | eval u=replace(userAgent, "(a)", "\\0")',
     "replace() replacement `\\0`: a backslash other than a group reference \\1…\\9"),
    (r'`cloudtrail` eventName=X | eval u=replace(userAgent, "(a)", "\2")',
     "replace() replacement `\\2` names group 2; the regex has 1"),
    (r'`cloudtrail` eventName=X | eval u=replace(userAgent, "(?<=a)b", "")',
     "replace() regex `(?<=a)b`: look-behind `(?<=…)` — RE2 runs in linear time and has no such construct"),    ("`cloudtrail` eventName=X items{}.userId!=1", "`items{}.userId!=…`: only `=` (some value matches) is translated "
     "for a multivalue path"),
    ("`cloudtrail` eventName=X (resources{}.type=1 OR userAgent=x)",
     "field `userAgent` beside a multivalue path in one OR/NOT (only `{}` tests there)"),    ("`cloudtrail` eventName=X | stats dc(resources{}.ARN) as arns by userAgent",
     "dc() of the multivalue path `resources{}.ARN`: it aggregates every element's value of every event; of the IR's "
     "aggregations only values() reads every element (decisions 48, 87)"),
    ("`cloudtrail` eventName=X | stats values(requestParameters.items{}.tags{}.key) as k",
     "values() of the multivalue path `requestParameters.items{}.tags{}.key`: arrays inside arrays (one `{}` is "
     "read)"),
    ("`cloudtrail` eventName=X | stats count by userAgent | sort count",
     "ascending `sort`: Splunk puts rows missing the field last, the IR first"),
    ("`cloudtrail` eventName=X | stats count by userAgent | sort -userAgent",
     "`sort` by `userAgent`, which may be text: Splunk's automatic order reads numeric text as numbers (only an "
     "aggregation's number is sorted)"),
    ("`cloudtrail` eventName=X | stats count by resources{}.ARN",
     "`by` the multivalue path `resources{}.ARN`: Splunk puts the event in the group of each of its values "
     "(decision 48)"),
    ("`cloudtrail` eventName=X | rename resources{}.ARN as arn",
     "rename of the multivalue path `resources{}.ARN`: a field holding every element's value, which the eval "
     "functions and `where` after it read value by value (decision 48)"),
]


@pytest.mark.parametrize(("spl", "reason"), REFUSALS)
def test_refusals_name_the_construct(tmp_path: Path, spl: str, reason: str) -> None:
    path = tmp_path / "savedsearches.conf"
    path.write_text(f"[default]\ndispatch.earliest_time = -1h\n\n[My search]\nsearch = {spl}\n")
    [out] = import_splunk([path], tmp_path / "out", MACROS)
    assert (out.status, out.reason, out.line) == ("refused", reason, 5)
    assert out.written == () and not (tmp_path / "out").exists()


ARRAY_TESTS = [  # a base-search test over `{}` paths → the rule's detection (some element matches; decision 48)
    ("`cloudtrail` eventName=ModifyImageAttribute (requestParameters.launchPermission.add.items{}.userId = * OR "
     "requestParameters.launchPermission.add.items{}.group = all)",
     {"sel1": {"requestParameters.launchPermission.add.items[].userId": "*"},
      "sel2": {"requestParameters.launchPermission.add.items[].group": "all"}, "condition": "sel1 or sel2"}),
    ('`cloudtrail` eventName=X NOT resources{}.type IN ("AWS::IAM::Role", "AWS::S3::*")',
     {"sel1": {"resources[].type": ["AWS::IAM::Role", "AWS::S3::*"]}, "condition": "not sel1"}),
    ('`aws_securityhub_finding` "Resources{}.Type"=AWSEC2Instance Types{}=*TTPs*',
     {"sel1": {"Resources[].Type": "AWSEC2Instance"}, "sel2": {"Types[]": "*TTPs*"}, "condition": "sel1 and sel2"}),
]


@pytest.mark.parametrize(("spl", "detection"), ARRAY_TESTS)
def test_multivalue_paths_in_the_base_search_are_some_element_tests(tmp_path: Path, spl: str,
                                                                   detection: dict[str, Any]) -> None:
    path = tmp_path / "savedsearches.conf"
    path.write_text(f"[My search]\nsearch = {spl} | stats count\n")
    [out] = import_splunk([path], tmp_path / "out", MACROS)
    assert out.status == "imported", out
    assert yaml.safe_load(out.written[0].read_text())["detection"] == detection


def _ami(items: Any) -> dict[str, Any]:
    return {"eventTime": "2024-01-01T00:00:00Z", "eventName": "ModifyImageAttribute", "userAgent": "cli",
            "requestParameters": {"launchPermission": {"add": {"items": items}}}}


AMI_EVENTS = [  # event → does `items{}.userId = * OR items{}.group = all` keep it (Splunk's multivalue reading)
    (_ami([{"userId": "123456789012"}]), True),
    (_ami([{"group": "ALL"}]), True),  # a search value matches without case
    (_ami([{"group": "none"}, {"group": "all"}]), True),  # the second element's value
    (_ami([{"group": "none"}]), False),
    (_ami([]), False),
    (_ami(None), False),
    (_ami({"userId": "1"}), False),  # not an array: spath reads no `items{}` value
    ({**_ami([]), "requestParameters": {"launchPermission": {"remove": {"items": [{"group": "all"}]}}}}, False),
]


def test_a_multivalue_path_test_keeps_the_events_splunk_keeps(tmp_path: Path) -> None:
    path = tmp_path / "savedsearches.conf"
    path.write_text("[AMI]\nsearch = " + ARRAY_TESTS[0][0] + "\n")
    [out] = import_splunk([path], tmp_path / "out", MACROS)
    rule = compiled(out.written[0])
    for event, kept in AMI_EVENTS:
        log = tmp_path / "e.ndjson"
        log.write_text(json.dumps(event) + "\n")
        assert bool(run_rule(rule, [log]).rows) is kept, event


def test_savedsearches_stanza_with_continued_lines_imports(tmp_path: Path) -> None:
    path = tmp_path / "savedsearches.conf"
    path.write_text("[Deleted trails]\nsearch = `cloudtrail` eventName=DeleteTrail \\\n"
                    "| stats count by src, user_arn\ncron_schedule = */15 * * * *\ndispatch.earliest_time = -1h@h\n")
    [out] = import_splunk([path], tmp_path / "out", MACROS)
    assert out.status == "imported", out
    text = out.written[0].read_text()
    assert ('  where eventName =~ "DeleteTrail"\n  | summarize count = count() by src, user_arn\n'
            '  | where isnotnull(src) and isnotnull(user_arn)\n') in text
    assert "schedule:\n  every: 15m\n  lookback: 1h\n" in text
    assert "# Note: dispatch.earliest_time '-1h@h': the window is 1h, not snapped" in text
    assert compiled(out.written[0]).schedule is not None


def test_macros_conf_with_arguments_expands(tmp_path: Path) -> None:
    macros = tmp_path / "macros.conf"
    macros.write_text("[ct]\ndefinition = sourcetype=aws:cloudtrail\n\n"
                      "[api_call(2)]\nargs = name, source\ndefinition = eventName=$name$ eventSource=$source$\n")
    path = tmp_path / "savedsearches.conf"
    path.write_text('[Macro search]\nsearch = `ct` `api_call(DeleteTrail, "cloudtrail.amazonaws.com")`\n')
    [out] = import_splunk([path], tmp_path / "out", [macros])
    assert out.status == "imported", out
    assert 'where eventName =~ "DeleteTrail" and eventSource =~ "cloudtrail.amazonaws.com"\n' in out.written[0].read_text()


def test_split_commands_keeps_quoted_and_bracketed_pipes() -> None:
    assert split_commands('a x="p|q" | eval b=if(c, "|", d) | join [search e | f]') == [
        ('a x="p|q"', 0), ('eval b=if(c, "|", d)', 12), ("join [search e | f]", 35)]


def escu_test_files(origin: Path) -> list[str]:
    doc = yaml.safe_load(origin.read_text())
    return [str(a["data"]).rsplit("/", 1)[-1] for t in doc.get("tests") or () for a in t.get("attack_data") or ()]


@pytest.mark.slow
def test_escu_corpus_imports_compile_and_emit_parseable_spl(tmp_path: Path) -> None:
    """Every imported ESCU detection compiles; its SPL parses with grammars/spl.lark. Prints the tally."""
    corpus = shared_path("data", "migration", "splunk")
    work = tmp_path / "escu"
    shutil.copytree(corpus, work)
    outcomes = import_splunk([work / "detections"], tmp_path / "out", [work / "macros"])
    assert len(outcomes) == 43
    grammar = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley")
    for o in outcomes:
        if o.status == "imported":
            rule = compiled(o.written[0])
            grammar.parse(compile_spl(rule, None))
        else:
            assert o.reason and o.line and o.column, o
    # ESCU names its test data (attack_data URLs); where a file of that name is in the repo or ../shared, the
    # imported rule must fire on it. None of the 43 detections' files is here today, so the real CloudTrail logs
    # of ../shared/data/cloudtrail stand in: these imported rules find their attack in them.
    here = {p.name: p for p in [*ROOT.rglob("*.json"), *corpus.parent.parent.rglob("*.json")]}
    logs = sorted((corpus.parent.parent / "cloudtrail").glob("*.ndjson"))
    fired: dict[str, int] = {}
    for o in outcomes:
        if o.status != "imported":
            continue
        rule = compiled(o.written[0])
        data = [here[n] for n in escu_test_files(o.origin) if n in here]
        if data:
            assert run_rule(rule, data).fired, o.name
        fired[o.written[0].parent.name] = len(run_rule(rule, logs).rows)
    assert {k: v for k, v in fired.items() if v} == {
        "asl_aws_defense_evasion_impair_security_services": 1, "asl_aws_disable_bucket_versioning": 4,
        "asl_aws_new_mfa_method_registered_for_user": 1, "asl_aws_updateloginprofile": 2,
        "aws_credential_access_getpassworddata": 1, "aws_credential_access_rds_password_reset": 1,
        "aws_defense_evasion_delete_cloudtrail": 2, "aws_lambda_updatefunctioncode": 2,
        "aws_successful_single_factor_authentication": 6,
        "aws_credential_access_failed_login": 4}  # panther-analysis's failed console sign-ins (the Authentication view)
    tally = Counter(o.status for o in outcomes)
    reasons = Counter((o.reason or "").split("`")[0] + "…" for o in outcomes if o.status == "refused")
    print(f"\nimported {tally['imported']}/43; refused by reason: {dict(reasons)}")
    assert tally["imported"] >= 29


def _corpus_rule(tmp: Path, name: str) -> tuple[ImportOutcome, str]:
    corpus = shared_path("data", "migration", "splunk")
    [out] = import_splunk([corpus / "detections" / name], tmp / "out", [corpus / "macros"])
    assert out.status == "imported", out
    text = out.written[0].read_text()
    return out, "\n".join(line[2:] for line in text.split("query: |\n", 1)[1].splitlines())


def _key_policy(statements: list[dict[str, Any]], *, as_text: bool = True, event_id: str = "e") -> dict[str, Any]:
    """The real PutKeyPolicy record of panther-analysis (policy as JSON text, as CloudTrail writes it) with other
    statements."""
    line = next(x for x in shared_path("data", "cloudtrail", "panther-analysis.ndjson").read_text().splitlines()
                if '"PutKeyPolicy"' in x and '"keyId"' in x)
    record = json.loads(line)
    policy = {"Version": "2012-10-17", "Statement": statements}
    record["requestParameters"]["policy"] = json.dumps(policy) if as_text else policy
    record["eventID"] = event_id
    return dict(record)


_ROOT = {"AWS": "arn:aws:iam::123456789012:root"}
_ROLES = {"AWS": ["arn:aws:iam::123456789012:role/A", "arn:aws:iam::123456789012:role/B"]}
KEY_POLICIES = [  # statements of the policy → does the imported search fire (Splunk's reading of its multivalue)
    ([{"Effect": "Allow", "Principal": _ROOT, "Action": "kms:Encrypt"}], True),  # Action a string: spath path=Action
    ([{"Effect": "Allow", "Principal": _ROOT, "Action": "KMS:encrypt"}], True),  # search's value has no case
    ([{"Principal": _ROLES, "Action": ["kms:Decrypt", "kms:Encrypt"]}], True),  # an element of Action{}
    ([{"Principal": _ROOT, "Action": "kms:Decrypt"}, {"Principal": _ROLES, "Action": ["kms:Encrypt"]}], True),
    ([{"Principal": _ROOT, "Action": "kms:*"}], False),  # the search compares text: `kms:*` is no wildcard there
    ([{"Principal": _ROOT, "Action": ["kms:Decrypt", "kms:EncryptX"]}], False),
    ([{"Principal": "*", "Action": "kms:Encrypt"}], False),  # no Principal.AWS: key_policy_principal="*" is false
    ([{"Principal": {"Service": "s3.amazonaws.com"}, "Action": "kms:Encrypt"}], False),
    ([{"Principal": _ROOT, "Action": {"kms:Encrypt": 1}}], False),  # an object is no value of Action{} nor the text
    ([{"Principal": _ROOT, "Action": []}], False),
]


def test_escu_kms_encrypt_policy_reads_action_as_a_string_or_its_elements(tmp_path: Path) -> None:
    """`spath … path=Action` (a string, or an array's JSON text) and `path=Action{}` (the elements) joined by mvappend,
    then `search key_policy_action="kms:Encrypt"`: some value matches (decisions 110, 111). The two real PutKeyPolicy
    records of ../shared/data/cloudtrail do not fire: one policy (JSON text, as CloudTrail writes it) grants `kms:*`,
    `kms:Decrypt` and `kms:DescribeKey`, never the text kms:Encrypt; the other (a test record holding the policy as
    an object) grants kms:Decrypt."""
    out, query = _corpus_rule(tmp_path, "aws_detect_users_creating_keys_with_encrypt_policy_without_mfa.yml")
    assert query.split("\n| summarize")[0] == (
        'where (eventName =~ "CreateKey" or eventName =~ "PutKeyPolicy")\n'
        "| where array_length(parse_json(requestParameters.policy).Statement) > 0\n"
        "| mv-expand key_policy_statements = parse_json(requestParameters.policy).Statement\n"
        "| extend key_policy_action_1 = tostring(key_policy_statements.Action)\n"
        "| extend key_policy_principal = tostring(key_policy_statements.Principal.AWS)\n"
        '| where (key_policy_action_1 =~ "kms:Encrypt" or key_policy_statements.Action[] =~ "kms:Encrypt")\n'
        "      and isnotnull(key_policy_principal)")
    rule = compiled(out.written[0])
    grammar = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley")
    grammar.parse(compile_spl(rule, None))
    if not checker_available():
        [found] = check_queries([("kms", compile_kql(rule, None))], [])
        assert [d.message for d in found if d.severity == "Error"] == []
    real = shared_path("data", "cloudtrail", "panther-analysis.ndjson")
    records = [x for x in real.read_text().splitlines() if '"PutKeyPolicy"' in x]
    assert len(records) == 2
    log = tmp_path / "real.ndjson"
    log.write_text("\n".join(records) + "\n")
    assert run_rule(rule, [log]).rows == []
    for statements, fires in KEY_POLICIES:
        for as_text in (True, False):
            log.write_text(json.dumps(_key_policy(statements, as_text=as_text)) + "\n")
            assert bool(run_rule(rule, [log]).rows) is fires, (statements, as_text)


def test_escu_ec2_snapshot_exfiltration_reads_every_added_account(tmp_path: Path) -> None:
    """values(…items{}.userId) is values(…items[].userId) (decision 87); userName and aws_account_id are the add-on's
    (decision 88). The real logs hold ModifySnapshotAttribute only (5 records, no CreateSnapshot, DescribeSnapshot-
    Attribute or DeleteSnapshot), so no 5-minute group has the 2 distinct calls the search wants: it is silent there,
    and the groups before that test carry the account ids the real records add."""
    out, query = _corpus_rule(tmp_path, "aws_exfiltration_via_ec2_snapshot.yml")
    assert query == (
        'where eventName in~ ("CreateSnapshot", "DescribeSnapshotAttribute", "ModifySnapshotAttribute", '
        '"DeleteSnapshot") and (isnotnull(src_ip) and not (src_ip =~ "guardduty.amazonaws.com"))\n'
        "| extend _time = bin(_time, 5m)\n"
        "| summarize count = count(), distinct_api_calls = dcount(eventName),\n"
        "      `values(eventName)` = values(eventName),\n"
        "      attributeType = values(requestParameters.attributeType),\n"
        "      aws_account_id_added = values(requestParameters.createVolumePermission.add.items[].userId),\n"
        "      userAgent = values(userAgent)\n"
        "    by _time, userName, src_ip, aws_account_id\n"
        "| where isnotnull(_time) and isnotnull(userName) and isnotnull(src_ip) and isnotnull(aws_account_id)\n"
        "| where distinct_api_calls >= 2")
    logs = sorted(shared_path("data", "cloudtrail").glob("*.ndjson"))
    assert run_rule(compiled(out.written[0]), logs).rows == []
    grouped = out.written[0].parent / "grouped.yml"
    grouped.write_text(out.written[0].read_text().replace("\n  | where distinct_api_calls >= 2", ""))
    found = {(r["userName"], r["aws_account_id"], r["count"], tuple(r["aws_account_id_added"]))
             for r in run_rule(compiled(grouped), logs).rows}
    assert found == {("christophe", "756680937392", 1, ("098797384747",)),
                     ("example-role", "123456789012", 4, ("111122223333",))}


# Bedrock invocation records in the shape AWS documents (test_bedrock.py): no real ones are in the repo or ../shared
def _invocation(arn: str, tokens: int | str, at: str) -> dict[str, Any]:
    return {"schemaType": "ModelInvocationLog", "timestamp": at, "identity": {"arn": arn}, "operation": "InvokeModel",
            "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
            "output": {"outputBodyJson": {"usage": {"output_tokens": tokens}}}}


def test_escu_bedrock_excessive_tokens_is_stdev_and_a_sorted_limit(tmp_path: Path) -> None:
    """stdev() (decision 85), spath's text read as numbers and `sort -max_out` (decision 86). Alice's largest response
    is more than 2 sample deviations above her mean; Bob's one invocation has no sample deviation (null, which the
    search's coalesce makes 0) and its max equals its mean, so it does not fire."""
    out, query = _corpus_rule(tmp_path, "aws_bedrock_claude_excessive_use_of_tokens.yml")
    assert query == (
        "extend out_tokens = tostring(output.outputBodyJson.usage.output_tokens)\n"
        '| extend user = replace_regex(identity.arn, ".*/", "")\n'
        "| summarize invocations = count(), avg_out = avg(todouble(out_tokens)),\n"
        "      max_out = max(todouble(out_tokens)), stdev_out = stdev(todouble(out_tokens))\n"
        "    by user, `identity.arn` = identity.arn\n"
        "| where isnotnull(user) and isnotnull(`identity.arn`)\n"
        "| extend stdev_out = coalesce(stdev_out, 0)\n"
        "| extend threshold = (avg_out + (2 * stdev_out))\n"
        "| where max_out > threshold\n"
        "| project user, `identity.arn`, invocations, avg_out, max_out, stdev_out, threshold\n"
        "| sort by max_out desc\n"
        "| limit 10000")
    assert "# Note: max(out_tokens) reads the values as numbers" in out.written[0].read_text()
    alice, bob = "arn:aws:sts::123456789012:assumed-role/R/alice", "arn:aws:sts::123456789012:assumed-role/R/bob"
    records = [_invocation(alice, n, f"2025-03-31T21:{i:02d}:00Z") for i, n in enumerate([100] * 9 + [4096])]
    records += [_invocation(alice, "n/a", "2025-03-31T22:00:00Z"), _invocation(bob, 5000, "2025-03-31T22:01:00Z")]
    logs = tmp_path / "invocations.ndjson"
    logs.write_text("".join(json.dumps(r) + "\n" for r in records))
    found = run_rule(compiled(out.written[0]), [logs]).rows
    assert [(r["user"], r["invocations"], r["max_out"], round(r["stdev_out"], 3)) for r in found] == [
        ("alice", 11, 4096.0, 1263.646)]


def test_the_cli_imports_with_macros_and_translates(tmp_path: Path) -> None:
    """`siemforge import splunk … --macros DIR -o DIR` and `translate --macros`: the CLI passes the macros through."""
    import subprocess
    import sys

    seed = ESCU / "detections" / "seed001_aws_ecr_container_upload_outside_business_hours.yml"
    cmd = [sys.executable, "-m", "siemforge.cli.main"]
    r = subprocess.run([*cmd, "import", "splunk", str(seed), "--macros", str(MACROS[0]), "-o", str(tmp_path / "out"),
                        "--format", "json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    [row] = json.loads(r.stdout)  # stdout is the JSON report alone (the summary goes to stderr)
    assert row["status"] == "imported"
    t = subprocess.run([*cmd, "translate", str(seed), "--to", "sentinel", "--macros", str(MACROS[0])],
                       capture_output=True, text=True, timeout=300)
    assert t.returncode == 0 and "AWSCloudTrail" in t.stdout and "PutImage" in t.stdout, t.stderr


@pytest.mark.parametrize(("text", "where"), [
    ("name: a\n---\nname: b\n",
     ":2:1: error: not a macro YAML file: expected a single document in the stream but found another document"),
    ("name: x\ndefinition: [a\n", ":3:1: error: not a macro YAML file: expected ',' or ']'"),
    (b"\xff\xfe", ": error: the macros file is not UTF-8 text"),
])
def test_a_bad_macros_file_is_an_error_at_its_position(tmp_path: Path, text: str | bytes, where: str) -> None:
    """`--macros` naming a file that is not macro YAML: exit 2, file:line:col, no traceback, nothing written."""
    import subprocess
    import sys

    bad = tmp_path / "macros.yml"
    bad.write_bytes(text if isinstance(text, bytes) else text.encode())
    search = tmp_path / "savedsearches.conf"
    search.write_text("[My search]\nsearch = `cloudtrail` eventName=X\n")
    r = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "import", "splunk", str(search), "--macros",
                        str(bad), "-o", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "siemforge bug" not in r.stderr, r.stderr
    assert f"{bad}{where}" in r.stderr.replace("\n", " ")
    assert not (tmp_path / "out").exists()


def test_two_detections_of_one_name_are_both_imported_under_their_own_names(tmp_path: Path) -> None:
    """As `import sentinel` does: the second folder is suffixed with its id's first characters (ESCU), else a number
    (savedsearches.conf stanzas have no id); both compile, with distinct ids."""
    src = shared_path("data", "migration", "splunk", "detections", "asl_aws_disable_bucket_versioning.yml")
    text = src.read_text()
    (tmp_path / "a.yml").write_text(text)
    (tmp_path / "b.yml").write_text(text.replace("id: f32598bb-fa5f-4afd-8ab3-0263cc28efbc",
                                                 "id: 0a1b2c3d-fa5f-4afd-8ab3-0263cc28efbc"))
    conf = tmp_path / "savedsearches.conf"
    conf.write_text("[Deleted trails]\nsearch = `cloudtrail` eventName=DeleteTrail | stats count by src\n\n"
                    "[Deleted trails]\nsearch = `cloudtrail` eventName=StopLogging | stats count by src\n")
    macros = [shared_path("data", "migration", "splunk", "macros")]
    outcomes = import_splunk([tmp_path / "a.yml", tmp_path / "b.yml", conf], tmp_path / "out", macros)
    assert [o.status for o in outcomes] == ["imported"] * 4, outcomes
    names = [o.written[0].relative_to(tmp_path / "out").as_posix() for o in outcomes]
    assert names == ["asl_aws_disable_bucket_versioning/asl_aws_disable_bucket_versioning.yml",
                     "asl_aws_disable_bucket_versioning_0a1b2c3d/asl_aws_disable_bucket_versioning_0a1b2c3d.yml",
                     "deleted_trails/deleted_trails.yml", "deleted_trails_2/deleted_trails_2.yml"]
    ids = set()
    for o in outcomes:
        rule = compile_file(o.written[0]).rule
        assert rule is not None
        ids.add(rule.meta.id)
    assert len(ids) == 4
