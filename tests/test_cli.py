"""End-to-end: the `siemforge` command as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

CMD = [sys.executable, "-m", "siemforge.cli.main"]


def sf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_bundled_rules_pass() -> None:
    r = sf("test", "rules/")
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout
    assert "Traceback" not in r.stderr


def test_junit_report(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    r = sf("test", "rules/", "--junit", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    text = out.read_text()
    assert "<testsuites" in text and 'failures="0"' in text


def write_rule(tmp_path: Path, body: str, name: str = "rule.yml") -> Path:
    p = tmp_path / name
    p.write_text(body)
    return p


RULE = """title: t
logsource: {product: aws, service: cloudtrail}
query: |
  where eventName == "RunInstances"
  | summarize n = count() by eventSource
tests:
  - name: fires
    logs: ev.ndjson
    expect: {rows: [{eventSource: ec2.amazonaws.com, n: 2}]}
  - name: wrong on purpose
    logs: ev.ndjson
    expect: silent
"""

EVENTS = "\n".join([
    '{"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-01-01T00:00:00Z"}',
    'this line is not json',
    '{"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-01-01T01:00:00Z"}',
    '{"eventName": "DescribeInstances", "eventSource": "ec2.amazonaws.com"}',
]) + "\n"


def test_failing_test_exits_nonzero_and_reports_malformed_line(tmp_path: Path) -> None:
    write_rule(tmp_path, RULE)
    (tmp_path / "ev.ndjson").write_text(EVENTS)
    r = sf("test", str(tmp_path))
    assert r.returncode == 1
    assert "1 passed, 1 failed" in r.stdout
    assert "ev.ndjson:2: skipped" in r.stderr


def test_run_json_and_explain(tmp_path: Path) -> None:
    rule = write_rule(tmp_path, RULE)
    (tmp_path / "ev.ndjson").write_text(EVENTS)
    r = sf("run", str(rule), str(tmp_path / "ev.ndjson"), "--format", "json", "--explain")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"eventSource": "ec2.amazonaws.com", "n": 2}]
    assert "1 malformed line(s) skipped" in r.stderr
    assert "explain" in r.stderr


QUERY_RULE = "title: t\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n  %s\n"
SIGMA_RULE = "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n  sel:\n    %s\n  condition: sel\n"

# a rule the command rejects: (what, command, rule text, what stderr says, at the rule's line:column)
REJECTED = [
    ("syntax", ["ir"], QUERY_RULE % "where eventName ==", ["{rule}:4:21: error: unexpected end of query"]),
    ("unknown function", ["ir"], QUERY_RULE % 'where tolowr(eventName) == "x"',
     ["{rule}:4:9: error: unknown function 'tolowr'", "did you mean 'tolower'?", "^^^^^^"]),
    ("yaml", ["ir"], "title: t\nlogsource: [unclosed\n", ["{rule}:3:1: error: invalid YAML"]),
    # a backend's refusal points into the rule too; RE2 prints nothing of its own
    ("kql regex", ["compile", "-t", "sentinel"], QUERY_RULE % 'where eventName matches regex "(a)\\\\1"',
     ["{rule}:4:9: error: t: KQL runs RE2", "a backreference", "[unsupported]"]),
    ("kql keyword", ["compile", "-t", "sentinel"], "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
                                                   "detection: {keywords: ['mimi*katz'], condition: keywords}\n",
     ["{rule}:3:12: error: t: a keyword with inner wildcards has no KQL form"]),
    # a refusal raised while writing a value (a string literal KQL cannot spell) points at the value
    ("kql control character", ["compile", "-t", "sentinel"], QUERY_RULE % 'where eventName == "a\\u001bb"',
     ["{rule}:4:22: error: t: KQL cannot write the control character U+001B"]),
    ("kql control character in sigma", ["compile", "-t", "sentinel"], SIGMA_RULE % 'eventName: "a\\x1bb"',
     ["{rule}:5:5: error: t: KQL cannot write the control character U+001B"]),
    # a Sigma field the binding has no column for points at the field's key
    ("splunk unmapped sigma field", ["compile", "-t", "splunk"], SIGMA_RULE % 'Bogus: "x"',
     ["{rule}:5:5: error: t: field 'Bogus' has no Splunk field in binding 'raw'"]),
]


@pytest.mark.parametrize("what,command,body,expected", REJECTED, ids=[r[0] for r in REJECTED])
def test_a_rejected_rule_is_named_by_line_and_column(tmp_path: Path, what: str, command: list[str], body: str,
                                                     expected: list[str]) -> None:
    rule = write_rule(tmp_path, body)
    r = sf(*command, str(rule))
    assert r.returncode == 1
    for text in expected:
        assert text.format(rule=rule) in r.stderr
    assert "Traceback" not in r.stderr and "re2.cc" not in r.stderr, r.stderr


def test_compile_batch_goes_on_after_a_bad_rule(tmp_path: Path) -> None:
    write_rule(tmp_path, "title: good\nlogsource: {product: aws, service: cloudtrail}\n"
                         "detection: {sel: {eventName: X}, condition: sel}\n", "a.yml")
    write_rule(tmp_path, "title: bad\nlogsource: {product: aws}\nquery: |\n  where (\n", "b.yml")
    r = sf("compile", str(tmp_path), "--target", "executor", "--format", "json")
    assert r.returncode == 1
    items = json.loads(r.stdout)
    assert [i["title"] for i in items] == ["good"]
    assert set(items[0]) == {"id", "title", "target", "binding", "query"}
    assert "b.yml:4:" in r.stderr


@pytest.mark.parametrize("logsource, asked, expected", [
    # (the rule's logsource, --binding, the binding each target names in --format json)
    ("{product: aws, service: cloudtrail}", [], {"executor": "raw", "sentinel": "sentinel", "splunk": "raw",
                                                 "sql": "duckdb"}),
    ("{product: windows, category: process_creation}", [], {"executor": "raw", "sentinel": "xdr", "splunk": "sysmon",
                                                            "sql": "duckdb"}),
    ("{product: windows, category: process_creation}", ["--target", "sentinel", "--binding", "WindowsEvent"],
     {"sentinel": "WindowsEvent"}),
    ("{product: foo}", ["--target", "splunk"], {"splunk": "asis"}),
    # several targets: a comma list, or -t given again (the last one alone used to win, silently)
    ("{product: aws, service: cloudtrail}", ["-t", "sentinel,splunk"], {"sentinel": "sentinel", "splunk": "raw"}),
    ("{product: aws, service: cloudtrail}", ["-t", "sentinel", "-t", "executor"],
     {"sentinel": "sentinel", "executor": "raw"}),
])
def test_compile_json_names_the_binding_each_rule_was_compiled_on(tmp_path: Path, logsource: str, asked: list[str],
                                                                  expected: dict[str, str]) -> None:
    # a source's default binding differs per source (Windows: xdr on Sentinel, sysmon on Splunk), not the target's first
    field = "eventName" if "aws" in logsource else "Image"
    write_rule(tmp_path, f"title: t\nlogsource: {logsource}\ndetection: {{sel: {{{field}: x}}, condition: sel}}\n")
    r = sf("compile", str(tmp_path), *(asked or ["--target", "all"]), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert {i["target"]: i["binding"] for i in json.loads(r.stdout)} == expected


@pytest.mark.parametrize(("asked", "message"), [
    (["-t", "sentinel,nope"], "error: unknown target 'nope'; targets: all, executor, sentinel, splunk"),
    (["-t", "sentinel,splunk", "--binding", "raw"], "error: --binding needs a single --target"),
    (["-t", ","], "error: --target names no target"),
])
def test_compile_bad_target_list_is_a_usage_error(tmp_path: Path, asked: list[str], message: str) -> None:
    write_rule(tmp_path, "title: t\nlogsource: {product: aws, service: cloudtrail}\n"
                         "detection: {sel: {eventName: x}, condition: sel}\n")
    r = sf("compile", str(tmp_path), *asked)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""


def test_compile_output_never_overwrites_user_files(tmp_path: Path) -> None:
    rule = write_rule(tmp_path, "title: good\nid: 5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e11\nlogsource: {product: aws, service: cloudtrail}\n"
                                "detection: {sel: {eventName: X}, condition: sel}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e11.ir").write_text("mine")
    r = sf("compile", str(rule), "--target", "executor", "-o", str(out))
    assert r.returncode == 2
    assert (out / "5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e11.ir").read_text() == "mine"
    (out / "5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e11.ir").unlink()
    assert sf("compile", str(rule), "--target", "executor", "-o", str(out)).returncode == 0
    first = (out / "5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e11.ir").read_text()
    assert sf("compile", str(rule), "--target", "executor", "-o", str(out)).returncode == 0  # ours: rewritten
    assert (out / "5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e11.ir").read_text() == first  # deterministic


def test_compile_output_an_edited_file_is_kept_and_the_other_rules_are_written(tmp_path: Path) -> None:
    """A file the user changed is refused (exit 2) as one rule's failure: the batch goes on, the other rules' files
    are rewritten (as `build` does), and the refusal names the rule file."""
    rules = tmp_path / "rules"
    rules.mkdir()
    body = "title: {t}\nid: {i}\nlevel: {lvl}\nlogsource: {{product: aws, service: cloudtrail}}\n" \
           "detection: {{sel: {{eventName: X}}, condition: sel}}\n"
    ids = ("5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e21", "5f1c1a52-9d47-4f34-9a55-0b7a4f6c2e22")
    write_rule(rules, body.format(t="a", i=ids[0], lvl="high"), "a.yml")
    write_rule(rules, body.format(t="b", i=ids[1], lvl="high"), "b.yml")
    out = tmp_path / "out"
    assert sf("compile", str(rules), "--target", "executor", "-o", str(out)).returncode == 0
    mine = out / f"{ids[0]}.ir"
    mine.write_text(mine.read_text() + "# tuned\n")
    write_rule(rules, body.format(t="b", i=ids[1], lvl="low"), "b.yml")
    r = sf("compile", str(rules), "--target", "executor", "-o", str(out))
    assert r.returncode == 2, r.stderr
    assert mine.read_text().endswith("# tuned\n")
    assert "level low" in (out / f"{ids[1]}.ir").read_text()
    assert f"a.yml: {mine} was changed since siemforge wrote it" in " ".join(r.stderr.split())
    assert "1 file(s) not written" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("command", [["run"], ["compile", "-t", "all"], ["validate"], ["export", "arm", "-o"],
                                     ["export", "contentctl", "-o"]], ids=" ".join)
def test_missing_file_is_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    args = [*command, str(tmp_path / "out")] if command[-1] == "-o" else command
    r = sf(*args, str(tmp_path / "nope.yml"), *([str(tmp_path / "x.ndjson")] if command == ["run"] else []))
    assert r.returncode == 2, r.stderr
    assert f"{tmp_path / 'nope.yml'}: error: no such file" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("command,message", [
    (["compile", "-t", "splunk"], "a folder with no rule files"),
    (["test"], "a folder with no rule files"),
    (["build", "-o", "OUT"], "a folder with no rule files"),
    (["coverage", "-o", "OUT/layer.json"], "a folder with no rule files"),
    (["fmt"], "a folder with no rule files"),
    (["validate"], "a folder with no rule files"),
    (["export", "arm", "-o", "OUT"], "a folder with no rule files"),
    (["import", "sentinel", "-o", "OUT"], "no detections found to import"),
    (["import", "splunk", "-o", "OUT"], "no detections found to import"),
    (["translate", "--to", "splunk"], "no detections found to translate"),
    (["ir"], "a folder with no rule files"),
    (["run", "LOG"], "a folder with no rule files"),
    (["baseline", "-o", "OUT/seen.csv", "LOG"], "a folder with no rule files"),
    (["hunt", "LOG"], "a folder with no rule files"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_folder_with_nothing_to_read_is_a_usage_error_on_every_command(
        tmp_path: Path, command: list[str], message: str) -> None:
    """Every command that reads rule folders says the same of an empty one (exit 2), where some used to succeed
    having done nothing (compile, fmt, import: exit 0) and others failed differently (test, build: exit 1)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a rule")
    log = tmp_path / "events.ndjson"
    log.write_text('{"a": 1}\n')
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command if a != "LOG"]
    r = sf(*args, str(empty), *([str(log)] if "LOG" in command else []))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{empty}: error: {message}" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()  # nothing written


def test_run_and_ir_take_a_rule_folder_of_one_rule(tmp_path: Path) -> None:
    """docs/sources/azure.md runs `siemforge run rules/entra_signin_many_countries LOGS`: a bundled rule's folder."""
    folder = ROOT / "rules" / "entra_signin_many_countries"
    logs = folder / "fixtures"
    fixture = logs / "three_countries.ndjson"
    by_folder = sf("run", str(folder), str(fixture), "--format", "json")
    by_file = sf("run", str(folder / "entra_signin_many_countries.yml"), str(fixture), "--format", "json")
    assert by_folder.returncode == 0, by_folder.stderr
    assert by_folder.stdout == by_file.stdout and len(json.loads(by_folder.stdout)) == 1
    assert sf("ir", str(folder)).stdout == sf("ir", str(folder / "entra_signin_many_countries.yml")).stdout
    two = tmp_path / "two"
    two.mkdir()
    for n in ("a", "b"):
        write_rule(two, "title: t\nlogsource: {product: windows, service: security}\n"
                   "detection: {sel: {EventID: 1}, condition: sel}\n", f"{n}.yml")
    r = sf("run", str(two), str(fixture))
    assert r.returncode == 2 and f"{two}: error: a folder of 2 rule files; name one rule file" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("packed", [False, True])
def test_run_binding_refuses_an_event_log_that_is_no_table_export(tmp_path: Path, packed: bool) -> None:
    """`--binding xdr` reads DeviceProcessEvents rows; over the audit.log itself it read 6 events and matched none."""
    import gzip

    folder = ROOT / "rules" / "linux_suid_shell_privileged_mode"
    log = folder / "fixtures" / "suid_dash_p.log"
    if packed:
        log = tmp_path / "audit.log.gz"
        log.write_bytes(gzip.compress((folder / "fixtures" / "suid_dash_p.log").read_bytes()))
    assert "ALERT" in sf("run", str(folder), str(log)).stdout
    r = sf("run", str(folder), str(log), "--binding", "xdr")
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert f"{log}: error: --binding xdr reads rows exported from its table, and this is an audit.log file" in r.stderr
    assert "Traceback" not in r.stderr


def test_discover_rules_skips_test_data_folders_below_the_given_folder_only(tmp_path: Path) -> None:
    """fixtures/ and lookups/ inside a rules folder hold test data; a rules folder that itself lives under a folder
    named like that is still searched."""
    from siemforge.compiler.api import discover_rules

    root = tmp_path / "lookups" / "team_rules"
    for rel in ("a/rule.yml", "a/fixtures/x.yml", "b/lookups/t.yaml", "b/rule2.yaml", "c/notes.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("title: t\n")
    assert [p.relative_to(root).as_posix() for p in discover_rules([root])] == ["a/rule.yml", "b/rule2.yaml"]


def test_output_dir_refusals_are_clear_and_leave_the_users_files(tmp_path: Path) -> None:
    import pytest

    from siemforge.cli.outputs import OutputDir, OutputError

    out = OutputDir.open(tmp_path / "o")
    out.write("a.spl", "x\n")
    with pytest.raises(OutputError, match="two rules would both write"):
        out.write("a.spl", "y\n")  # on a fresh folder too: the duplicate, not "not written by siemforge"
    (tmp_path / "o" / "b.spl").mkdir()  # a folder where a file would go
    with pytest.raises(OutputError, match="exists and was not written by siemforge"):
        out.write("b.spl", "x\n")
    (tmp_path / "o" / "c.spl.tmp").write_text("mine")  # a file of the user's named like a temporary
    out.write("c.spl", "z\n")
    assert (tmp_path / "o" / "c.spl.tmp").read_text() == "mine"
    assert (tmp_path / "o" / "c.spl").read_text() == "z\n"
    assert (tmp_path / "o" / "c.spl").stat().st_mode & 0o777 == (tmp_path / "o" / "c.spl.tmp").stat().st_mode & 0o777
    (tmp_path / "o" / "sentinel").write_text("a file where a folder would go")
    with pytest.raises(OutputError, match="cannot write"):
        out.write("sentinel/x.kql", "q\n")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.spl", "b.spl", "c.spl", "c.spl.tmp", "sentinel"]


def test_a_refused_export_still_records_what_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "pack"
    out.mkdir()
    (out / "stories").mkdir()
    (out / "stories" / "siemforge_cloud_detections.yml").write_text("the user's story")
    r = sf("export", "contentctl", "rules/", "-o", str(out))
    assert r.returncode == 2 and "not overwriting it" in r.stderr
    assert (out / "stories" / "siemforge_cloud_detections.yml").read_text() == "the user's story"
    (out / "stories" / "siemforge_cloud_detections.yml").unlink()
    r = sf("export", "contentctl", "rules/", "-o", str(out))  # siemforge's own files from the first run: rewritten
    assert r.returncode == 0, r.stderr


def test_two_runs_into_one_folder_keep_both_manifests(tmp_path: Path) -> None:
    from siemforge.cli.outputs import MANIFEST, OutputDir

    a, b = OutputDir.open(tmp_path), OutputDir.open(tmp_path)  # two runs at once
    a.write("one.spl", "1\n")
    b.write("two.spl", "2\n")
    a.save_manifest()
    b.save_manifest()  # merged with what the first run recorded, under a lock
    assert [line.split("\t")[0] for line in (tmp_path / MANIFEST).read_text().splitlines()] == ["one.spl", "two.spl"]
    c = OutputDir.open(tmp_path)
    c.write("one.spl", "1 again\n")  # both are siemforge's: rewritten, not refused
    c.write("two.spl", "2 again\n")


def test_an_output_the_user_edited_is_neither_overwritten_nor_removed(tmp_path: Path) -> None:
    """The manifest records each file's SHA-256 as written: a generated file the user changed since (a tuned
    savedsearches.conf) is theirs now, and a rewrite or a prune would lose it. A manifest of an older siemforge
    (names only) records no content: its files are rewritten as before."""
    import hashlib

    import pytest

    from siemforge.cli.outputs import MANIFEST, OutputDir, OutputError

    first = OutputDir.open(tmp_path)
    first.write("a.spl", "generated\n")
    first.write("b.spl", "generated\n")
    first.finish()
    assert (tmp_path / MANIFEST).read_text() == "".join(
        f"{n}\t{hashlib.sha256(b'generated' + bytes([10])).hexdigest()}\n" for n in ("a.spl", "b.spl"))
    (tmp_path / "a.spl").write_text("tuned by hand\n")
    again = OutputDir.open(tmp_path)
    with pytest.raises(OutputError, match="a.spl was changed since siemforge wrote it; not overwriting it"):
        again.write("a.spl", "generated again\n")
    assert again.changed("a.spl") and not again.changed("b.spl")
    with pytest.raises(OutputError, match="not removing .*a.spl: it was changed since siemforge wrote it"):
        again.remove("a.spl")
    assert (tmp_path / "a.spl").read_text() == "tuned by hand\n"
    again.write("b.spl", "generated again\n")  # unchanged since written: siemforge's to rewrite

    (tmp_path / MANIFEST).write_text("a.spl\nb.spl\n")  # an older siemforge's manifest: names only
    old = OutputDir.open(tmp_path)
    assert not old.changed("a.spl")
    old.write("a.spl", "generated\n")


def test_unusable_output_folders_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    r = sf("compile", "rules/", "--target", "splunk", "-o", str(tmp_path / "file" / "sub"))
    assert r.returncode == 2 and "cannot use" in r.stderr and "internal error" not in r.stderr
    (tmp_path / "out" / ".siemforge-outputs").mkdir(parents=True)
    r = sf("export", "contentctl", "rules/", "-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "is a folder" in r.stderr and "internal error" not in r.stderr


def test_run_table_shows_a_newline_in_a_log_value_as_an_escape(tmp_path: Path) -> None:
    # a value's newline split its table cell over two lines, so the row read as two; a log's text is shown escaped
    rule = write_rule(tmp_path, QUERY_RULE % "project eventName, userAgent")
    logs = tmp_path / "ev.ndjson"
    logs.write_text(json.dumps({"eventName": "Run\nInstances", "userAgent": "a\r\nb\tc\x1b[31m"}) + "\n")
    r = sf("run", str(rule), str(logs))
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if "Run" in line]
    assert len(rows) == 1 and "Run\\nInstances" in rows[0] and "a\\r\\nb\\tc\\x1b[31m" in rows[0], r.stdout
    assert "Instances" not in r.stdout.replace("Run\\nInstances", "")
