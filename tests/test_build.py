"""`siemforge build`: the README's main job in one command, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT

CMD = [sys.executable, "-m", "siemforge.cli.main"]


def sf(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


TESTED_RULE = """title: t
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
    '{"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-01-01T01:00:00Z"}',
]) + "\n"
# Sentinel refuses it (a keyword with an inner wildcard has no KQL form); the other targets compile it
REFUSED_RULE = "title: kw\nlogsource: {product: aws, service: cloudtrail}\n" \
               "detection: {keywords: ['mimi*katz'], condition: keywords}\n"
PLAIN_RULE = "title: plain\nlogsource: {product: aws, service: cloudtrail}\n" \
             "detection: {sel: {eventName: RunInstances}, condition: sel}\n"


def rule_set(tmp_path: Path, *, failing: bool = True, refused: bool = True) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.yml").write_text(TESTED_RULE if failing else TESTED_RULE.split("  - name: wrong")[0])
    (rules / "ev.ndjson").write_text(EVENTS)
    (rules / "plain.yml").write_text(PLAIN_RULE)
    if refused:
        (rules / "kw.yml").write_text(REFUSED_RULE)
    return rules


def test_a_failing_test_and_a_refused_rule_fail_the_build_and_are_both_in_the_summary(tmp_path: Path) -> None:
    rules = rule_set(tmp_path)
    r = sf("build", str(rules), "-o", str(tmp_path / "out"), "--format", "json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    s = json.loads(r.stdout)
    assert s["ok"] is False
    assert s["rules"] == 3 and s["rule_errors"] == []
    assert s["tests"]["passed"] == 1 and s["tests"]["failed"] == 1
    assert s["tests"]["failures"] == [{"step": "test", "where": f"{rules / 't.yml'}: t: wrong on purpose",
                                       "reason": "expected silence, but it fired: 1 row from 2 events"}]
    sentinel = [p for p in s["refusals"] if p["step"] == "sentinel"]
    assert sentinel == [{"step": "sentinel", "where": f"{rules / 'kw.yml'}:3:12",
                         "reason": "kw: a keyword with inner wildcards has no KQL form"}]
    # every registered target is built: the SQL target refuses Sigma keywords on every dialect too
    assert {(q["target"], q["queries"]) for q in s["queries"]} == {("executor", 3), ("sentinel", 2), ("splunk", 3),
                                                                   ("sql", 2)}
    assert [p["where"] for p in s["refusals"] if p["step"] == "sql"] == [f"{rules / 'kw.yml'}:3:12"]
    # the refused rule is left out of what is built from Sentinel's queries, and the rest is written
    assert s["validate"] == {"checked": 2, "with_errors": 0, "errors": []}
    assert sorted(p.stem for p in (tmp_path / "out" / "compiled" / "sentinel").iterdir()) == ["plain", "t"]
    assert sorted(p.stem for p in (tmp_path / "out" / "sentinel").glob("*.yaml")) == ["plain", "t"]
    assert sorted(p.stem for p in (tmp_path / "out" / "compiled" / "splunk").iterdir()) == ["kw", "plain", "t"]
    assert "Traceback" not in r.stderr
    assert "kw.yml:3:12: error: kw: a keyword with inner wildcards has no KQL form" in r.stderr

    table = sf("build", str(rules), "-o", str(tmp_path / "out"), cwd=tmp_path, env={"COLUMNS": "1000"})
    assert table.returncode == 1
    assert "1 passed, 1 failed" in table.stdout
    assert "wrong on purpose: expected silence, but it fired" in table.stdout
    assert "2 queries, 1 refused" in table.stdout and "a keyword with inner wildcards" in table.stdout
    assert "build failed: 1 test(s) failed" in table.stdout


def test_a_clean_rule_set_builds_and_exits_zero(tmp_path: Path) -> None:
    rules = rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "siemforge.toml").write_text('[build]\nexports = ["arm", "splunk-app"]\n')
    r = sf("build", str(rules), "-o", "out", "--format", "json", "--junit", "junit.xml", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'tests="1" failures="0"' in (tmp_path / "junit.xml").read_text()
    s = json.loads(r.stdout)
    assert s["ok"] and s["tests"] == {"passed": 1, "failed": 0, "rules_without_tests": 1, "failures": []}
    assert [a["export"] for a in s["artifacts"]] == ["compiled", "arm", "splunk-app"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["arm", "compiled", "splunk"]
    # the output folder inside the rules' folder is not read as rules on the next build
    r = sf("build", str(tmp_path), "-o", str(tmp_path / "out"), "--format", "json", cwd=tmp_path)
    assert json.loads(r.stdout)["rule_errors"] == [], r.stderr


def test_the_config_chooses_targets_bindings_and_exports(tmp_path: Path) -> None:
    rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "siemforge.toml").write_text(
        '[build]\nrules = ["rules"]\noutput = "built"\ntargets = ["splunk"]\nexports = ["splunk-app"]\n'
        "validate = false\n\n[build.bindings]\nsplunk = [\"raw\", \"asl\"]\n")
    r = sf("build", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(r.stdout)
    assert [(q["target"], q["binding"], q["queries"]) for q in s["queries"]] == [("splunk", "raw", 2),
                                                                                 ("splunk", "asl", 2)]
    assert s["validate"] is None
    assert sorted(p.name for p in (tmp_path / "built" / "compiled" / "splunk").iterdir()) == ["asl", "raw"]
    assert sorted(p.name for p in (tmp_path / "built").iterdir()) == ["compiled", "splunk"]


BAD_CONFIGS = [
    ("[build]\ntargets = [\"executor\", \"nope\"]\n", "siemforge.toml:2:1: error: unknown target 'nope'"),
    ("[build]\nexport = [\"arm\"]\n", "siemforge.toml:2:1: error: unknown key 'export' in [build]"),
    ("[build]\n\n[build.bindings]\nsentinel = [\"nope\"]\n",
     "siemforge.toml:4:1: error: target 'sentinel' has no binding 'nope'"),
    ("[build]\ntests = \"yes\"\n", "siemforge.toml:2:1: error: tests must be true or false"),
    ("[build]\ntargets = [executor]\n", "siemforge.toml:2:12: error: not valid TOML: Invalid value"),
    ("[build]\ntargets = [\"executor\"\n", "siemforge.toml:3:1: error: not valid TOML: Unclosed array"),
    ("# a misspelt [build] is not every default\n[biuld]\ntests = false\n",
     "siemforge.toml:2:1: error: unknown table [biuld]; siemforge.toml has one table, [build]"),
    ("[build]\ntests = true\n\n[[tools]]\nx = 1\n", "siemforge.toml:4:1: error: unknown table [tools]"),
    ("tests = false\n", "siemforge.toml:1:1: error: unknown key 'tests'; siemforge.toml has one table, [build]"),
]


@pytest.mark.parametrize("text,expected", BAD_CONFIGS, ids=[c[1].split("error: ")[1] for c in BAD_CONFIGS])
def test_a_bad_config_is_named_by_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    rule_set(tmp_path)
    (tmp_path / "siemforge.toml").write_text(text)
    r = sf("build", "-o", "out", cwd=tmp_path)
    assert r.returncode == 2
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_build_never_overwrites_a_file_siemforge_did_not_write(tmp_path: Path) -> None:
    rules = rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "out" / "splunk").mkdir(parents=True)
    mine = tmp_path / "out" / "splunk" / "siemforge_content.tgz"
    mine.write_text("the user's file")
    r = sf("build", str(rules), "-o", "out", "--format", "json", cwd=tmp_path)
    assert r.returncode == 1
    s = json.loads(r.stdout)
    assert [e["step"] for e in s["errors"]] == ["export splunk-app"]
    assert "not overwriting it" in s["errors"][0]["reason"]
    assert mine.read_text() == "the user's file"
    assert (tmp_path / "out" / "arm" / "ruleset.json").exists()  # the other steps went on


def test_no_progress_codes_on_a_pipe_or_in_json(tmp_path: Path) -> None:
    rules = rule_set(tmp_path)
    piped = sf("build", str(rules), "-o", "out", cwd=tmp_path)
    assert "\x1b[" not in piped.stderr and "\x1b[" not in piped.stdout
    # FORCE_COLOR makes Rich treat the pipe as a terminal: the bar is drawn (hiding the cursor), except for JSON
    forced = sf("build", str(rules), "-o", "out", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[?25l" in forced.stderr
    as_json = sf("build", str(rules), "-o", "out", "--format", "json", cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert "\x1b[?25l" not in as_json.stderr and "\x1b[" not in as_json.stdout
    json.loads(as_json.stdout)


@pytest.mark.slow
def test_build_of_the_bundled_rules_writes_what_the_chain_of_commands_wrote(tmp_path: Path) -> None:
    """The README's main job: `siemforge build` gives byte for byte what the nine commands it replaces gave."""
    r = sf("build", "rules/", "-o", str(tmp_path / "build"), "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    s = json.loads(r.stdout)
    assert s["ok"] and s["tests"]["failed"] == 0 and s["validate"]["with_errors"] == 0
    chain = tmp_path / "chain"
    for args in (["compile", "rules/", "--target", "all", "-o", f"{chain}/compiled"],
                 ["export", "arm", "rules/", "-o", f"{chain}/arm"],
                 ["export", "sentinel-yaml", "rules/", "-o", f"{chain}/sentinel"],
                 ["export", "splunk-app", "rules/", "-o", f"{chain}/splunk"],
                 ["export", "contentctl", "rules/", "-o", f"{chain}/contentctl"]):
        done = sf(*args)
        assert done.returncode == 0, done.stderr

    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert tree(tmp_path / "build") == tree(chain)


def test_usage_errors_say_what_to_do(tmp_path: Path) -> None:
    r = sf("build", cwd=tmp_path)  # no rules named, no rules/ folder, no siemforge.toml
    assert r.returncode == 2 and "error: no rules/ folder here: name the rules" in r.stderr
    rules = rule_set(tmp_path)
    (tmp_path / "out").write_text("a file")
    r = sf("build", str(rules), "-o", "out", cwd=tmp_path)
    assert r.returncode == 2 and "out: error: the output folder is a file" in r.stderr
    assert (tmp_path / "out").read_text() == "a file"


def test_outputs_of_a_deleted_rule_are_listed_as_stale_and_pruned_only_when_asked(tmp_path: Path) -> None:
    """A rule deleted since the last build leaves its query and export files behind, which a deployment of the
    folder would still ship: the build lists them; `--prune` removes them (only files the manifest says siemforge
    wrote: a file of the user's in the same folder stays)."""
    rules = rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "siemforge.toml").write_text('[build]\nexports = ["arm", "sentinel-yaml"]\n')
    out = tmp_path / "out"
    assert sf("build", str(rules), "-o", str(out), cwd=tmp_path).returncode == 0
    old = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and "plain" in p.name)
    assert old, "the plain rule wrote no file named after it"
    (rules / "plain.yml").unlink()
    (out / "compiled" / "notes.txt").write_text("mine")

    r = sf("build", str(rules), "-o", str(out), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert sorted(Path(p).relative_to(out) for p in doc["stale"]) == old
    assert doc["pruned"] == []
    assert all((out / p).exists() for p in old)

    r = sf("build", str(rules), "-o", str(out), "--prune", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pruned" in r.stdout
    assert not any((out / p).exists() for p in old)
    assert (out / "compiled" / "notes.txt").read_text() == "mine"
    manifests = "".join(m.read_text() for m in out.rglob(".siemforge-outputs"))
    assert not any(str(p.relative_to(p.parts[0])) in manifests for p in old)
    r = sf("build", str(rules), "-o", str(out), "--format", "json", cwd=tmp_path)
    assert json.loads(r.stdout)["stale"] == []


def test_prune_removes_nothing_of_a_rule_broken_for_now_nor_a_symlink(tmp_path: Path) -> None:
    """--prune is for deleted and renamed rules. A rule with a typo in it writes nothing this build (which fails):
    its last outputs are listed, not removed, so a fix puts them back before anything ships without them. A stale
    output the user replaced with a symlink is listed (a deployment of the folder would still ship it) and kept,
    and so is the file it points to."""
    rules = rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "siemforge.toml").write_text('[build]\nexports = ["arm"]\n')
    out = tmp_path / "out"
    assert sf("build", str(rules), "-o", str(out), cwd=tmp_path).returncode == 0
    plain = sorted(p for p in out.rglob("*") if p.is_file() and "plain" in p.name)
    assert plain, "the plain rule wrote no file named after it"
    (rules / "plain.yml").write_text(PLAIN_RULE.replace("condition: sel", "condition: sel and"))

    r = sf("build", str(rules), "-o", str(out), "--prune", "--format", "json", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["pruned"] == [] and sorted(Path(p) for p in doc["stale"]) == plain
    assert doc["held"] and "this build has errors" in doc["held"][0]
    assert all(p.is_file() for p in plain)

    (rules / "plain.yml").unlink()
    mine = tmp_path / "mine.json"
    mine.write_text("kept")
    link = next(p for p in plain if p.suffix == ".json")
    link.unlink()
    link.symlink_to(mine)
    r = sf("build", str(rules), "-o", str(out), "--prune", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not removed: a symlink" in " ".join(r.stdout.split()), r.stdout
    assert link.is_symlink() and mine.read_text() == "kept"
    assert not any(p.exists() for p in plain if p != link)


def test_prune_keeps_a_stale_output_the_user_edited(tmp_path: Path) -> None:
    """A deleted rule's output that the user changed since the build wrote it is theirs: listed, not pruned."""
    rules = rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "siemforge.toml").write_text('[build]\nexports = ["arm"]\n')
    out = tmp_path / "out"
    assert sf("build", str(rules), "-o", str(out), cwd=tmp_path).returncode == 0
    plain = sorted(p for p in out.rglob("*") if p.is_file() and "plain" in p.name)
    edited = next(p for p in plain if p.suffix == ".json")
    edited.write_text(edited.read_text().replace("{", "{ ", 1))
    r = sf("build", str(rules), "-o", str(out), "--format", "json", cwd=tmp_path)  # the rule is still there
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["stale"] == [] and "changed since siemforge wrote it" in r.stderr
    (rules / "plain.yml").unlink()
    r = sf("build", str(rules), "-o", str(out), "--prune", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["stale"] == [str(edited)] and "changed since siemforge wrote it" in doc["held"][0]
    assert sorted(Path(p) for p in doc["pruned"]) == [p for p in plain if p != edited]
    assert edited.is_file()


def test_a_manifest_line_outside_the_folder_is_neither_listed_nor_removed(tmp_path: Path) -> None:
    """The manifest is a text file anyone can edit: a line naming a file outside the output folder (absolute, or
    through ..) is not an output of an earlier build; it was listed as stale and --prune failed the build on it."""
    rules = rule_set(tmp_path, failing=False, refused=False)
    (tmp_path / "siemforge.toml").write_text('[build]\nexports = ["arm"]\n')
    out = tmp_path / "out"
    assert sf("build", str(rules), "-o", str(out), cwd=tmp_path).returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    with (out / "arm" / ".siemforge-outputs").open("a") as fh:
        fh.write(f"{victim}\n../../victim.txt\n")
    r = sf("build", str(rules), "-o", str(out), "--prune", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["stale"] == [] and doc["pruned"] == [] and doc["errors"] == []
    assert victim.read_text() == "mine"


def test_removing_a_stale_output_removes_the_folders_it_leaves_empty(tmp_path: Path) -> None:
    """contentctl keeps a rule's test data in a folder of its own: pruning the rule's files must not leave that
    folder behind empty; a folder still holding a file, and the output folder itself, stay."""
    from siemforge.cli.outputs import OutputDir

    first = OutputDir.open(tmp_path / "out")
    first.write("data/rule1/events.log", "x")
    first.write("data/rule2/events.log", "y")
    first.write("top.txt", "z")
    first.finish()
    again = OutputDir.open(tmp_path / "out")
    again.remove("data/rule1/events.log")
    assert not (tmp_path / "out" / "data" / "rule1").exists()
    assert (tmp_path / "out" / "data" / "rule2" / "events.log").read_text() == "y"
    again.remove("data/rule2/events.log")
    again.remove("top.txt")
    assert not (tmp_path / "out" / "data").exists() and (tmp_path / "out").is_dir()
