"""The Splunk app export: files, conf content, a byte-identical .tgz, and Splunk's AppInspect (precert) with zero
failures when it is installed (CI installs it in its own venv; see .ci/run)."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from siemforge.backends.spl.app import AppSpec, build_app, conf_search, cron, package
from siemforge.compiler.api import compile_file, discover_rules

from helpers import ROOT, ci_tool


def rules():  # type: ignore[no-untyped-def]
    out = []
    for f in discover_rules([ROOT / "rules"]):
        r = compile_file(f).rule
        assert r is not None
        out.append(r)
    return out


def test_app_files_and_stanzas() -> None:
    files = build_app(rules(), None, AppSpec())
    assert set(files) >= {"default/app.conf", "default/savedsearches.conf", "default/macros.conf",
                          "default/transforms.conf", "default/collections.conf", "metadata/default.meta"}
    saved = files["default/savedsearches.conf"].decode()
    stanzas = [s for s in re.findall(r"^\[(.+)\]$", saved, re.M) if " - Baseline " not in s]
    assert len(stanzas) == len(rules()) and all(s.startswith("siemforge - ") and s.endswith(" - Rule")
                                                 for s in stanzas)
    ec2 = saved.split("[siemforge - Suspicious AWS EC2 Compute Resource Deployments - Rule]")[1].split("\n[")[0]
    assert "cron_schedule = 0 0 * * *" in ec2 and "dispatch.earliest_time = -1d" in ec2
    assert "| `suspicious_aws_ec2_compute_resource_deployments_filter`" in ec2
    annotations = json.loads(re.search(r"action.correlationsearch.annotations = (.*)", ec2).group(1))  # type: ignore[union-attr]
    assert annotations["mitre_attack"] == ["T1496"] and annotations["tactics"] == ["impact"]
    macros = files["default/macros.conf"].decode()
    assert "[cloudtrail]\ndefinition = sourcetype=aws:cloudtrail" in macros
    assert "[suspicious_aws_ec2_compute_resource_deployments_filter]\ndefinition = search *" in macros
    assert "collection = previously_seen_cloud_compute_images" in files["default/transforms.conf"].decode()
    for line in saved.splitlines():  # a conf value is one line (or continued with a trailing backslash)
        assert not line.startswith(" ")


def test_conf_helpers() -> None:
    from datetime import timedelta

    assert cron(timedelta(hours=1)) == "0 * * * *" and cron(timedelta(minutes=15)) == "*/15 * * * *"
    assert cron(timedelta(days=1)) == "0 0 * * *" and cron(timedelta(hours=6)) == "0 */6 * * *"
    assert conf_search('a\n| b\n| eval x="l1\nl2"') == 'a | b | eval x="l1\\\nl2"'


CONF_SEARCHES = [  # SPL (stages on lines) -> the one conf value; a line break inside quotes is kept, continued
    ('a\n| b\n| eval x="l1\nl2"', 'a | b | eval x="l1\\\nl2"'),
    ('a\n| where x=="l1\n| delete\n[evil]"', 'a | where x=="l1\\\n| delete\\\n[evil]"'),
    ('a\n| where x=="q\\"\n| b" | c', 'a | where x=="q\\"\\\n| b" | c'),
    ('a\n| where x=="back\\\\"\n| b', 'a | where x=="back\\\\" | b'),
    ("a\n| where 'odd\nfield'==1\n| b", "a | where 'odd\\\nfield'==1 | b"),
    ('a\n| where x=="it\'s"\n| b', 'a | where x=="it\'s" | b'),
]


@pytest.mark.parametrize("spl, conf", CONF_SEARCHES)
def test_conf_search(spl: str, conf: str) -> None:
    assert conf_search(spl) == conf


def test_tgz_is_deterministic(tmp_path: Path) -> None:
    files = build_app(rules(), None, AppSpec())
    a, b = package("siemforge_content", files), package("siemforge_content", build_app(rules(), None, AppSpec()))
    assert a == b
    p = tmp_path / "app.tgz"
    p.write_bytes(a)
    with tarfile.open(p) as tar:
        names = tar.getnames()
    assert "siemforge_content/default/savedsearches.conf" in names


def test_appinspect_precert_passes(tmp_path: Path) -> None:
    exe = ci_tool("splunk-appinspect", "appinspect", "SIEMFORGE_APPINSPECT")
    tgz = tmp_path / "siemforge_content.tgz"
    tgz.write_bytes(package("siemforge_content", build_app(rules(), None, AppSpec())))
    out = subprocess.run([exe, "inspect", str(tgz), "--mode", "precert"], capture_output=True, text=True,
                         timeout=600).stdout
    summary = dict(re.findall(r"^\s*(\w+):\s+(\d+)\s*$", out, re.M))
    assert summary.get("failure") == "0" and summary.get("error") == "0", out[-3000:]


def read_conf(text: str) -> dict[str, dict[str, str]]:
    """savedsearches.conf as Splunk reads it: `[stanza]` lines, `key = value` lines, a value continued on the next
    line by a trailing backslash, `#` comments."""
    out: dict[str, dict[str, str]] = {}
    stanza: dict[str, str] | None = None
    lines = iter(text.split("\n"))
    for line in lines:
        while line.endswith("\\"):
            line = line[:-1] + "\n" + next(lines, "")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            assert line.rstrip().endswith("]"), line
            stanza = out.setdefault(line.rstrip()[1:-1], {})
            continue
        assert stanza is not None and " = " in line, line
        key, value = line.split(" = ", 1)
        assert key not in stanza, f"{key} set twice in one stanza"
        stanza[key] = value
    return out


HOSTILE_TITLES = [  # a title (and description) from a rule file -> what savedsearches.conf must still hold
    ("Evil\n[evil]\nsearch = | delete", "Evil [evil] search = | delete"),
    ("Evil\r\n[evil]\r\nsearch = | delete", "Evil [evil] search = | delete"),
    ("ends in a backslash C:\\Temp\\", "ends in a backslash C:\\Temp"),
    ("tab\tand\x0bvertical tab\x0cform feed", "tab and vertical tab form feed"),
    ("next line\x85and line separator\u2028here", "next line and line separator here"),
]


@pytest.mark.parametrize("title, shown", HOSTILE_TITLES)
def test_title_cannot_inject_a_stanza_or_key(title: str, shown: str) -> None:
    from dataclasses import replace

    rule = next(r for r in rules() if not r.baselines)
    hostile = replace(rule, meta=replace(rule.meta, title=title, description=title))
    saved = read_conf(build_app([hostile], None, AppSpec())["default/savedsearches.conf"].decode())
    assert list(saved) == [f"siemforge - {shown} - Rule"]
    (keys,) = saved.values()
    assert keys["action.notable.param.rule_title"] == shown
    assert keys["description"] == shown and keys["action.notable.param.rule_description"] == shown
    assert keys["search"].endswith("_filter`") and "| delete" not in keys["search"]
