"""`siemforge coverage`: rules' ATT&CK tags → an ATT&CK Navigator layer (checked against the layer format 4.5, as a
JSON Schema in tests/fixtures/coverage) and an HTML heatmap (looked at in headless Chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from siemforge.cli.coverage import HEAT, heat_colour, heat_legend
from siemforge.compiler.attack import (
    AttackDataError,
    RuleAttack,
    build_coverage,
    load_attack_data,
    navigator_layer,
    read_tags,
    tactic_title,
)

from helpers import ROOT, shared_path

FIXTURES = ROOT / "tests" / "fixtures" / "coverage"
SCHEMA = json.loads((FIXTURES / "navigator_layer_4_5.schema.json").read_text())
CMD = [sys.executable, "-m", "siemforge.cli.main"]


def sf(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def schema_errors(layer: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    found = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(layer)]
    g = layer.get("gradient") if isinstance(layer, dict) else None
    if isinstance(g, dict) and not g.get("maxValue", 1) > g.get("minValue", 0):  # the spec: maxValue > minValue
        found.append("gradient: maxValue must be greater than minValue")
    return found


# ------------------------------------------------------------------------------------------------------- tags read
@pytest.mark.parametrize(("tags", "techniques", "tactics", "other"), [
    (["attack.t1059.001", "attack.execution"], ("T1059.001",), ("execution",), ()),
    (["attack.credential_access", "attack.t1552.005"], ("T1552.005",), ("credential-access",), ()),  # ours: `_`
    (["attack.Credential-Access", "attack.T1110"], ("T1110",), ("credential-access",), ()),  # case
    (["attack.stealth", "attack.defense-impairment"], (), ("stealth", "defense-impairment"), ()),  # SigmaHQ's split
    (["attack.g0016", "attack.s0002", "attack.t1003"], ("T1003",), (), ("G0016", "S0002")),
    (["attack.t1003", "attack.t1003", "attack.execution", "attack.execution"], ("T1003",), ("execution",), ()),
    (["cve.2021-44228", "detection.threat-hunting", "car.2013-05-002"], (), (), ()),  # not ATT&CK
    (["attack.t1059.1", "attack.t123", "attack.html"], (), (), ("attack.t1059.1", "attack.t123", "attack.html")),
    ([42, None], (), (), ()),
])
def test_read_tags(tags: list[object], techniques: tuple[str, ...], tactics: tuple[str, ...],
                   other: tuple[str, ...]) -> None:
    assert read_tags(tags) == (techniques, tactics, other)


@pytest.mark.parametrize(("short", "title"), [
    ("command-and-control", "Command and Control"), ("initial-access", "Initial Access"), ("impact", "Impact"),
])
def test_tactic_title(short: str, title: str) -> None:
    assert tactic_title(short) == title


# ----------------------------------------------------------------------------------------------- cells: a table
def rule(title: str, *tags: str) -> RuleAttack:
    techniques, tactics, other = read_tags(tags)
    return RuleAttack(f"{title}.yml", 1, title, title, "high", techniques, tactics, other)


def cells(rules: list[RuleAttack], data_file: Path | None = None) -> list[tuple[str, str | None, int, bool]]:
    cov = build_coverage(rules, load_attack_data(data_file) if data_file else None)
    return [(c.technique, c.tactic, c.score, c.guessed) for c in cov.cells]


MINI = FIXTURES / "mini-attack.json"

# each row: rules (title, tags…) → cells (technique, tactic, number of rules, placed by a guess), in matrix order
CELL_TABLE: list[tuple[str, list[tuple[str, ...]], Path | None, list[tuple[str, str | None, int, bool]]]] = [
    ("one tactic places every technique of the rule",
     [("a", "attack.execution", "attack.t1059.001", "attack.t1204")], None,
     [("T1059.001", "execution", 1, False), ("T1204", "execution", 1, False)]),
    ("rules of one technique and tactic add up",
     [("a", "attack.execution", "attack.t1059"), ("b", "attack.execution", "attack.t1059")], None,
     [("T1059", "execution", 2, False)]),
    ("no tactic: a cell of no tactic",
     [("a", "attack.t1496")], None, [("T1496", None, 1, False)]),
    ("no tactic, but another rule places the technique: counted there",
     [("a", "attack.t1496"), ("b", "attack.impact", "attack.t1496")], None, [("T1496", "impact", 2, False)]),
    ("several tactics, nothing to tell: under each, a guess",
     [("a", "attack.credential_access", "attack.t1003.001", "attack.defense_evasion", "attack.t1218.011")], None,
     [("T1003.001", "defense-evasion", 1, True), ("T1218.011", "defense-evasion", 1, True),
      ("T1003.001", "credential-access", 1, True), ("T1218.011", "credential-access", 1, True)]),
    ("several tactics; the rule set pairs a technique with one of them elsewhere",
     [("a", "attack.credential_access", "attack.t1003.001", "attack.defense_evasion", "attack.t1218.011"),
      ("b", "attack.credential_access", "attack.t1003.001")], None,
     [("T1218.011", "defense-evasion", 1, True), ("T1003.001", "credential-access", 2, False),
      ("T1218.011", "credential-access", 1, True)]),
    ("ATT&CK data: each technique under its own tactic among the rule's, named in matrix order",
     [("a", "attack.credential_access", "attack.t1003.001", "attack.defense_evasion", "attack.t1218.011")], MINI,
     [("T1218.011", "defense-evasion", 1, False), ("T1003.001", "credential-access", 1, False)]),
    ("ATT&CK data: a technique the rule names no tactic of goes under all of its own",
     [("a", "attack.t1078")], MINI,
     [("T1078", "initial-access", 1, False), ("T1078", "privilege-escalation", 1, False),
      ("T1078", "defense-evasion", 1, False), ("T1078", "persistence", 1, False)]),
    ("ATT&CK data: the rule's tactics that the technique belongs to",
     [("a", "attack.credential_access", "attack.t1110.001", "attack.initial_access", "attack.t1078")], MINI,
     [("T1078", "initial-access", 1, False), ("T1110.001", "credential-access", 1, False)]),
    ("ATT&CK data that lacks a technique: placed as without data",
     [("a", "attack.impact", "attack.t1496")], MINI, [("T1496", "impact", 1, False)]),
    ("no technique, no cell", [("a", "attack.execution")], None, []),
]


@pytest.mark.parametrize(("rules", "data", "expected"), [row[1:] for row in CELL_TABLE],
                         ids=[row[0] for row in CELL_TABLE])
def test_cells(rules: list[tuple[str, ...]], data: Path | None,
               expected: list[tuple[str, str | None, int, bool]]) -> None:
    assert cells([rule(*r) for r in rules], data) == expected


def test_attack_data_read() -> None:
    data = load_attack_data(MINI)
    assert data.version == "18.1"
    assert data.tactic_order == ("initial-access", "privilege-escalation", "defense-evasion", "credential-access")
    assert data.technique_names["T1003.001"] == "LSASS Memory"
    assert "T1002" not in data.technique_names  # revoked


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "not JSON"),
    ('{"type": "bundle"}', "no `objects` list"),
    ('{"type": "bundle", "objects": [{"type": "x-mitre-tactic", "x_mitre_shortname": "impact"}]}',
     "without ATT&CK techniques"),
])
def test_attack_data_refused(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "attack.json"
    f.write_text(text)
    with pytest.raises(AttackDataError, match=message):
        load_attack_data(f)


# ------------------------------------------------------------------------------------------------------- the layer
def test_layer_shape_and_schema() -> None:
    cov = build_coverage([rule("Brute force", "attack.credential_access", "attack.t1110.001"),
                          rule("Spray", "attack.credential_access", "attack.t1110.001"),
                          rule("Unplaced", "attack.t1496")])
    layer = navigator_layer(cov, "test layer")
    assert schema_errors(layer) == []
    assert layer["versions"] == {"navigator": "5.2.0", "layer": "4.5"}  # no ATT&CK version claimed without data
    assert layer["techniques"][0] == {
        "techniqueID": "T1110.001", "tactic": "credential-access", "score": 2, "comment": "Brute force\nSpray",
        "enabled": True, "metadata": [{"name": "Brute force", "value": "Brute force.yml:1"},
                                      {"name": "Spray", "value": "Spray.yml:1"}],
    }
    assert "tactic" not in layer["techniques"][1]  # the Navigator shows it under every tactic of the technique
    assert layer["gradient"]["maxValue"] == 2


def test_layer_names_attack_version_with_data() -> None:
    cov = build_coverage([rule("a", "attack.t1078")], load_attack_data(MINI))
    layer = navigator_layer(cov, "x")
    assert layer["versions"]["attack"] == "18.1"
    assert schema_errors(layer) == []


@pytest.mark.parametrize(("change", "path"), [
    (lambda layer: layer["techniques"][0].update(score="2"), "techniques/0/score"),
    (lambda layer: layer["techniques"][0].update(techniqueID="1110"), "techniques/0/techniqueID"),
    (lambda layer: layer["techniques"][0].update(commment="typo"), "techniques/0"),
    (lambda layer: layer["versions"].update(layer="4.4"), "versions/layer"),
    (lambda layer: layer.update(domain="enterprise"), "domain"),
    (lambda layer: layer.pop("name"), ""),
    (lambda layer: layer["gradient"].update(maxValue=0), "gradient"),
])
def test_schema_refuses_bad_layers(change: Any, path: str) -> None:
    """The schema is a real check: each of these spec violations is caught, at its place."""
    layer = navigator_layer(build_coverage([rule("a", "attack.execution", "attack.t1110")]), "x")
    change(layer)
    errors = schema_errors(layer)
    assert any(e.startswith(f"{path}:") for e in errors), errors


@pytest.mark.parametrize(("top", "expected"), [
    (1, [(HEAT[4], "1")]),
    (3, [(HEAT[2], "1"), (HEAT[3], "2"), (HEAT[4], "3")]),
    (181, [(HEAT[0], "1–2"), (HEAT[1], "3–8"), (HEAT[2], "9–22"), (HEAT[3], "23–64"), (HEAT[4], "65–181")]),
])
def test_heat_legend(top: int, expected: list[tuple[str, str]]) -> None:
    assert heat_legend(top) == expected
    assert heat_colour(top, top) == HEAT[-1]


# --------------------------------------------------------------------------------------------------- the command
RULE = """title: {title}
id: {id}
status: experimental
level: high
logsource: {{product: aws, service: cloudtrail}}
tags: [{tags}]
detection:
  sel: {{eventName: GetPasswordData}}
  condition: sel
"""


def write_rules(folder: Path) -> Path:
    """Three rules on T1078 under initial access (the darkest cell), one on T1496 under impact (the lightest), one
    without ATT&CK tags, and one file that does not load."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = [("Valid accounts one", "attack.initial_access, attack.t1078"),
             ("Valid accounts two", "attack.initial_access, attack.t1078"),
             ("Valid accounts three", "attack.initial-access, attack.t1078"),
             ("Resource hijacking", "attack.impact, attack.t1496"),
             ("Untagged", "cve.2021-44228")]
    for i, (title, tags) in enumerate(specs):
        (folder / f"r{i}.yml").write_text(RULE.format(title=title, id=f"5a0e1f7e-3a5b-4c33-9f0e-2d6f1b7c8e4{i}",
                                                      tags=tags))
    (folder / "broken.yml").write_text("title: Broken\ntags: [attack.t1078\nlevel: high\n")
    return folder


def test_cli_layer_and_report(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    r = sf("coverage", str(rules), "-o", str(tmp_path / "out" / "layer.json"), "--html", str(tmp_path / "report.html"))
    assert r.returncode == 1, r.stdout + r.stderr  # a file did not load: reported, the rest written
    assert f"{rules / 'broken.yml'}:3:" in r.stderr and "Traceback" not in r.stderr
    assert "5 rule(s), 4 with an ATT&CK technique: 2 technique(s) under 2 tactic(s); 1 file(s) did not load" in r.stdout
    layer = json.loads((tmp_path / "out" / "layer.json").read_text())
    assert schema_errors(layer) == []
    assert [(t["techniqueID"], t["tactic"], t["score"]) for t in layer["techniques"]] == [
        ("T1078", "initial-access", 3), ("T1496", "impact", 1)]
    assert layer["techniques"][0]["comment"] == "Valid accounts one\nValid accounts three\nValid accounts two"
    page = (tmp_path / "report.html").read_text()
    assert "Resource hijacking" in page and "Untagged" in page and "broken.yml:3:" in page


def test_cli_does_not_overwrite_a_users_file(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    mine = tmp_path / "layer.json"
    mine.write_text("my own layer\n")
    r = sf("coverage", str(rules), "-o", str(mine))
    assert r.returncode == 2 and "not overwriting" in r.stderr
    assert mine.read_text() == "my own layer\n"


@pytest.mark.parametrize(("args", "message"), [
    (["no/such/folder"], "no/such/folder: error: no such file or folder"),
    (["rules", "--attack-data", "no-such.json"], "no-such.json: error: --attack-data: cannot read"),
    (["rules", "--attack-data", "{tmp}/broken.json"],
     "broken.json:2:1: error: --attack-data: not JSON: unexpected end of data"),
    (["rules", "--html", "{tmp}/layer.json"], "--html and -o name the same file"),
    (["rules", "--html", "{tmp}"], "a folder; name the file to write"),
])
def test_cli_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "broken.json").write_text('{"objects": [\n')
    r = sf("coverage", *[a.format(tmp=tmp_path) for a in args], "-o", str(tmp_path / "layer.json"))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "layer.json").exists()


def test_cli_with_attack_data_names_techniques(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    (rules / "broken.yml").unlink()
    r = sf("coverage", str(rules), "-o", str(tmp_path / "layer.json"), "--html", str(tmp_path / "report.html"),
           "--attack-data", str(MINI))
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert "Valid Accounts" in page and "ATT&amp;CK v18.1" in page
    assert json.loads((tmp_path / "layer.json").read_text())["versions"]["attack"] == "18.1"


class _Resources(HTMLParser):
    """Every URL the page would fetch by itself: src=, <link href=>, url( in styles, <script> of any kind."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.scripts += tag == "script"
        self.fetched += [v for k, v in attrs if k in ("src", "srcset", "data") and v]
        if tag == "link" and a.get("href"):
            self.fetched.append(a["href"] or "")
        if "url(" in (a.get("style") or ""):
            self.fetched.append(a["style"] or "")

    def handle_data(self, data: str) -> None:
        if "url(" in data or "@import" in data:
            self.fetched.append(data)


def test_report_is_self_contained(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules")
    sf("coverage", str(rules), "-o", str(tmp_path / "layer.json"), "--html", str(tmp_path / "report.html"))
    p = _Resources()
    p.feed((tmp_path / "report.html").read_text())
    assert p.fetched == [] and p.scripts == 0


@pytest.mark.slow
def test_bundled_and_sigma_rules(tmp_path: Path) -> None:
    """The issue's command: our rules and SigmaHQ's, every file loads, the layer is one the Navigator accepts."""
    sigma = shared_path("data", "sigma", "rules")
    r = sf("coverage", "rules", str(sigma), "-o", str(tmp_path / "layer.json"), "--html", str(tmp_path / "report.html"))
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    layer = json.loads((tmp_path / "layer.json").read_text())
    assert schema_errors(layer) == []
    ids = {t["techniqueID"] for t in layer["techniques"]}
    assert len(ids) > 300 and {"T1059.001", "T1552.005", "T1621"} <= ids  # SigmaHQ's and ours
    ours = [t for t in layer["techniques"] if t["techniqueID"] == "T1552.005"]
    assert any("AWS EC2 Windows Password Data Requested For Many Instances" in t["comment"] for t in ours)


# ------------------------------------------------------------------------------------------- in a real browser
def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.skip("needs Chromium (Debian: apt-get install chromium; .ci/run installs it)")
    return exe


def _browser(exe: str, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--force-device-scale-factor=1", "--window-size=1200,900", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def _heat_boxes(png: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """For each heat colour: (left, top, right, bottom, pixels) of its pixels in rows where it fills at least 100
    pixels (a heatmap cell is 132 wide; a legend swatch, 28), or no entry when there are none."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    width, height = img.size
    px = img.load()
    assert px is not None
    wanted = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)): c for c in HEAT}
    rows: dict[str, dict[int, list[int]]] = {}
    for y in range(height):
        for x in range(width):
            colour = wanted.get(px[x, y])  # type: ignore[arg-type]
            if colour is not None:
                rows.setdefault(colour, {}).setdefault(y, []).append(x)
    boxes: dict[str, tuple[int, int, int, int, int]] = {}
    for colour, by_row in rows.items():
        full = {y: xs for y, xs in by_row.items() if len(xs) >= 100}
        if full:
            xs = [x for row in full.values() for x in row]
            boxes[colour] = (min(xs), min(full), max(xs), max(full), len(xs))
    return boxes


@pytest.mark.slow
def test_report_in_chromium(tmp_path: Path) -> None:
    """The page as a browser draws it: the DOM holds the two cells, and the screenshot shows the darkest heat colour
    (T1078, three rules, under Initial Access, the first column) left of the lightest (T1496, one rule, under Impact),
    both below the page's heading, each about one cell in size; a page with no technique shows no heat at all."""
    exe = _chromium()
    rules = write_rules(tmp_path / "rules")
    (rules / "broken.yml").unlink()
    page = tmp_path / "report.html"
    r = sf("coverage", str(rules), "-o", str(tmp_path / "layer.json"), "--html", str(page))
    assert r.returncode == 0, r.stderr

    dom = _browser(exe, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-technique="T1078" data-score="3" style="background: #a50f15"' in dom.stdout
    assert 'data-technique="T1496" data-score="1" style="background: #fb6a4a"' in dom.stdout
    assert dom.stdout.index('data-tactic="initial-access"') < dom.stdout.index('data-tactic="impact"')

    shot = tmp_path / "shot.png"
    taken = _browser(exe, page, f"--screenshot={shot}")
    assert shot.exists(), taken.stderr[-2000:]
    boxes = _heat_boxes(shot)
    dark, light = boxes[HEAT[4]], boxes[HEAT[2]]  # three rules of three: the darkest; one of three: the middle
    assert set(boxes) == {HEAT[4], HEAT[2]}, boxes
    for left, top, right, bottom, pixels in (dark, light):
        assert top > 60 and 100 <= right - left <= 140 and 20 <= bottom - top <= 80 and pixels > 2000
    assert dark[2] < light[0]  # Initial Access's column left of Impact's

    untagged = tmp_path / "untagged"
    untagged.mkdir()
    (untagged / "r.yml").write_text((rules / "r4.yml").read_text())
    empty = tmp_path / "empty.html"
    assert sf("coverage", str(untagged), "-o", str(tmp_path / "empty.json"), "--html", str(empty)).returncode == 0
    shot2 = tmp_path / "shot2.png"
    _browser(exe, empty, f"--screenshot={shot2}")
    assert _heat_boxes(shot2) == {}
