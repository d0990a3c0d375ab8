"""The contentctl 5.x pack export: overlaid on a `contentctl init` skeleton, Splunk's own `contentctl validate`
and `contentctl build` accept it (CI installs contentctl in its own venv: .ci/run)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from siemforge.backends.spl.contentctl import build_pack
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.bindings import builtin_bindings

from helpers import ROOT, ci_tool, compile_rule


def compiled():  # type: ignore[no-untyped-def]
    return [res for res in (compile_file(f) for f in discover_rules([ROOT / "rules"])) if res.rule is not None]


def rules():  # type: ignore[no-untyped-def]
    return [res.rule for res in compiled()]


def pack_files() -> dict[str, str]:
    results = compiled()
    return build_pack([r.rule for r in results], None, {r.rule.meta.id: r.doc.tests for r in results})


def test_pack_files() -> None:
    files = pack_files()
    dets = {k: yaml.safe_load(v) for k, v in files.items() if k.startswith("detections/")}
    assert len(dets) == len(rules())
    for path, d in dets.items():
        stem = Path(path).stem
        assert d["search"].endswith(f"| `{stem}_filter`")  # contentctl derives the macro name from the file stem
        for obj in d["rba"]["risk_objects"] + d["rba"]["threat_objects"]:
            assert obj["field"] in d["search"]  # contentctl checks RBA fields against the search text
        assert len(d["drilldown_searches"]) == 2
        ids = d["tags"]["mitre_attack_id"]
        assert not any(a.startswith(b + ".") for a in ids for b in ids)  # no technique with its own sub-technique
    assert "macros/cloudtrail.yml" in files
    assert yaml.safe_load(files["contentctl.yml"])["app"]["label"] == "SF"


def test_production_rules_ship_their_positive_fixtures_as_tests() -> None:
    """contentctl requires a test for a production detection: the rule's own positive fixtures, in the pack."""
    files = pack_files()
    by_name = {d["name"]: d for d in (yaml.safe_load(v) for k, v in files.items() if k.startswith("detections/"))}
    statuses = {r.meta.title: r.meta.status for r in rules()}
    for name, d in by_name.items():
        assert d["status"] == ("production" if statuses[name] in ("production", "stable") else "experimental"), name
        if d["status"] == "production":
            assert d["tests"], name
        for test in d["tests"]:
            for data in test["attack_data"]:
                # the sourcetype of the data source the rule's binding declares
                assert data["data"] in files and data["sourcetype"] in {
                    b.extra["data_source"]["sourcetype"] for b in builtin_bindings().values()
                    if "data_source" in b.extra}
                first = files[data["data"]].splitlines()[0]
                # raw records, one per line: CloudTrail, Azure diagnostic, Okta System Log, GitHub audit
                record = yaml.safe_load(first)
                assert record.get("eventSource") or record.get("category") or record.get("eventType") \
                    or record.get("action")
    ecr = by_name["AWS ECR Container Upload Outside Business Hours"]
    assert [a["data"] for a in ecr["tests"][0]["attack_data"]] == [
        "data/aws_ecr_container_upload_outside_business_hours/off_hours.ndjson"]  # the negatives are not shipped


def test_seen_before_table_is_a_kvstore_lookup_with_two_baselines() -> None:
    files = pack_files()
    lookup = yaml.safe_load(files["lookups/previously_seen_cloud_compute_images.yml"])
    assert lookup["lookup_type"] == "kvstore" and lookup["fields"][0] == "_key"
    assert "lookups/previously_seen_cloud_compute_images.csv" not in files
    names = {k: yaml.safe_load(v) for k, v in files.items() if k.startswith("baselines/")}
    assert sorted(names) == ["baselines/previously_seen_cloud_compute_images___initial.yml",
                             "baselines/previously_seen_cloud_compute_images___update.yml"]
    for b in names.values():
        assert b["type"] == "Baseline"
        assert b["tags"]["detections"] == ["Cloud Compute Instance Created With Previously Unseen Image"]
        assert b["search"].endswith("| outputlookup previously_seen_cloud_compute_images")
    update = names["baselines/previously_seen_cloud_compute_images___update.yml"]["search"]
    assert "| inputlookup append=t previously_seen_cloud_compute_images" in update
    det = yaml.safe_load(files["detections/cloud/cloud_compute_instance_created_with_previously_unseen_image.yml"])
    assert det["status"] == "production" and "baseline" in det["tags"]["manual_test"]


def test_contentctl_validate_and_build(tmp_path: Path) -> None:
    exe = ci_tool("contentctl", "contentctl", "SIEMFORGE_CONTENTCTL")
    pack = tmp_path / "pack"
    pack.mkdir()
    run = lambda *args: subprocess.run([exe, *args], cwd=pack, capture_output=True, text=True,  # noqa: E731
                                       timeout=600)
    assert run("init").returncode == 0
    for rel, text in pack_files().items():
        (pack / rel).parent.mkdir(parents=True, exist_ok=True)
        (pack / rel).write_text(text)
    validate = run("validate")
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-3000:]
    build = run("build")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (pack / "dist" / "siemforge_content-latest.tar.gz").exists()
    conf = (pack / "dist" / "siemforge_content" / "default" / "savedsearches.conf").read_text()
    assert "[SF - Previously Seen Cloud Compute Images - Initial]" in conf
    assert "[SF - Previously Seen Cloud Compute Images - Update]" in conf
    collections = (pack / "dist" / "siemforge_content" / "default" / "collections.conf").read_text()
    assert "[previously_seen_cloud_compute_images]" in collections


@pytest.mark.parametrize("kind", ["contentctl", "splunk-app"])
def test_a_rule_that_cannot_lower_on_the_binding_is_reported_and_the_rest_exported(kind: str, tmp_path: Path) -> None:
    """On Amazon Security Lake, CloudTrail's `resources` array has no OCSF field: that rule is named, with its file,
    the other rules are exported, and the exit code says something failed."""
    import sys

    proc = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "export", kind, "rules/", "-o", str(tmp_path),
                           "--binding", "asl"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    # the refusal points at the field in the rule
    assert ("aws_ec2_suspicious_compute_deployments.yml:25:66: error: Suspicious AWS EC2 Compute Resource Deployments: "
            "field 'resources.0.ARN' has no Splunk field in binding 'asl'") in proc.stderr
    assert "Traceback" not in proc.stderr
    if kind == "contentctl":
        dets = sorted(p.name for p in (tmp_path / "detections" / "cloud").iterdir())
        assert len(dets) == 4 and "suspicious_aws_ec2_compute_resource_deployments.yml" not in dets
        assert not (tmp_path / "data").exists()  # the fixtures are raw CloudTrail, not ASL: no tests on this binding
        assert "status production but shipped as experimental" in " ".join(proc.stderr.split())
        [ds] = [yaml.safe_load(p.read_text()) for p in (tmp_path / "data_sources").iterdir()]
        assert (ds["name"], ds["sourcetype"], ds["separator"]) == ("ASL AWS CloudTrail", "aws:asl", "api.operation")
        for d in dets:
            assert yaml.safe_load((tmp_path / "detections" / "cloud" / d).read_text())["data_source"] == [
                "ASL AWS CloudTrail"]
    else:
        conf = (tmp_path / "siemforge_content" / "default" / "savedsearches.conf").read_text()
        assert conf.count(" - Rule]") == 4 and "`amazon_security_lake`" in conf


RULE = """title: {title}
id: {id}
status: production
logsource: {{product: aws, service: cloudtrail}}
query: |
  where eventName =~ "PutImage"
  | summarize n = count() by user
entities:
  account: {{name: user}}
tests:
{tests}
"""


def _rule(folder: Path, name: str, title: str, rid: str, tests: str) -> None:
    (folder / name).write_text(RULE.format(title=title, id=rid, tests=tests))


def test_pack_refusals_name_the_rule_and_the_rest_is_exported(tmp_path: Path) -> None:
    """Titles contentctl cannot turn into a macro name, titles that collide as file names, and unreadable fixtures
    are reported with the rule's file; the other rules go into the pack."""
    import gzip
    import json
    import sys

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    records = [json.loads(x) for x in (ROOT / "rules" / "aws_ecr_upload_outside_business_hours" / "fixtures"
                                       / "off_hours.ndjson").read_text().splitlines()]
    with gzip.open(rules_dir / "trail.json.gz", "wt") as fh:
        json.dump({"Records": records}, fh)  # CloudTrail's own file shape, gzipped
    fires = "  - {name: fires, logs: trail.json.gz, expect: fires}\n"
    silent = "  - {name: nothing, logs: trail.json.gz, expect: {rows: []}}\n"
    _rule(rules_dir, "a.yml", "AWS ECR Push (Off Hours)", "0a6f0e0e-1b1b-4c4c-8d8d-000000000001", fires)
    _rule(rules_dir, "b.yml", "AWS ECR Foo-Bar", "0a6f0e0e-1b1b-4c4c-8d8d-000000000002", fires)
    _rule(rules_dir, "c.yml", "AWS ECR Foo Bar", "0a6f0e0e-1b1b-4c4c-8d8d-000000000003", fires)
    _rule(rules_dir, "d.yml", "AWS ECR Only Silent", "0a6f0e0e-1b1b-4c4c-8d8d-000000000004", silent)
    _rule(rules_dir, "e.yml", "AWS ECR Missing Fixture", "0a6f0e0e-1b1b-4c4c-8d8d-000000000005",
          "  - {name: gone, logs: nothere.ndjson, expect: fires}\n")
    out = tmp_path / "pack"
    proc = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "export", "contentctl", str(rules_dir),
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    err = " ".join(proc.stderr.split())
    # each refusal points at the key to change (file:line:col, the line and a caret)
    assert "a.yml:1:1: error: AWS ECR Push (Off Hours): contentctl names the detection file" in err and "( )" in err
    assert "c.yml:1:1: error: AWS ECR Foo Bar: its contentctl file name detections/cloud/aws_ecr_foo_bar.yml is also that " \
           "of 'AWS ECR Foo-Bar'" in err
    assert re.search(r"e\.yml:\d+:1: error: AWS ECR Missing Fixture: test 'gone': cannot use its logs as test data",
                     err)
    dets = {p.name: yaml.safe_load(p.read_text()) for p in (out / "detections" / "cloud").iterdir()}
    assert sorted(dets) == ["aws_ecr_foo_bar.yml", "aws_ecr_only_silent.yml"]
    assert dets["aws_ecr_only_silent.yml"]["status"] == "experimental"  # a silent test proves no true positive
    assert dets["aws_ecr_only_silent.yml"]["tests"] == []
    [test] = dets["aws_ecr_foo_bar.yml"]["tests"]
    assert dets["aws_ecr_foo_bar.yml"]["status"] == "production"
    assert test["attack_data"][0]["data"] == "data/aws_ecr_foo_bar/trail.json"
    lines = (out / "data" / "aws_ecr_foo_bar" / "trail.json").read_text().splitlines()
    assert [json.loads(x) for x in lines] == records  # one raw record per line, as Splunk's attack data


def test_pack_long_titles_bad_versions_and_same_named_fixtures(tmp_path: Path) -> None:
    import json
    import sys

    rules_dir = tmp_path / "rules"
    for sub in ("a", "b"):
        (rules_dir / sub).mkdir(parents=True)
    src = (ROOT / "rules" / "aws_ecr_upload_outside_business_hours" / "fixtures" / "off_hours.ndjson").read_text()
    lines = src.splitlines()
    (rules_dir / "a" / "logs.ndjson").write_text(lines[0] + "\n")
    (rules_dir / "b" / "logs.ndjson").write_text("\n".join(lines[1:]) + "\n")
    two = "  - {name: one, logs: a/logs.ndjson, expect: fires}\n  - {name: two, logs: b/logs.ndjson, expect: fires}\n"
    _rule(rules_dir, "ok.yml", "AWS ECR Two Fixture Folders", "0a6f0e0e-1b1b-4c4c-8d8d-000000000011", two)
    _rule(rules_dir, "long.yml", "AWS ECR " + "Very " * 13 + "Long Title", "0a6f0e0e-1b1b-4c4c-8d8d-000000000012",
          two)
    (rules_dir / "ver.yml").write_text(RULE.format(title="AWS ECR Odd Version", id="0a6f0e0e-1b1b-4c4c-8d8d-"
                                                   "000000000013", tests=two) + "version: v2\n")
    out = tmp_path / "pack"
    proc = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "export", "contentctl", str(rules_dir),
                           "-o", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 1 and "internal error" not in err
    assert "long.yml:1:1: error: AWS ECR Very" in err and "at most 67 characters" in err
    version_line = (rules_dir / "ver.yml").read_text().splitlines().index("version: v2") + 1
    assert f"ver.yml:{version_line}:1: error: AWS ECR Odd Version: contentctl needs a whole-number version, not 'v2'" \
        in err
    det = yaml.safe_load((out / "detections" / "cloud" / "aws_ecr_two_fixture_folders.yml").read_text())
    shipped = [[a["data"] for a in t["attack_data"]] for t in det["tests"]]
    assert shipped == [["data/aws_ecr_two_fixture_folders/logs.ndjson"],
                       ["data/aws_ecr_two_fixture_folders/logs-2.ndjson"]]
    assert [json.loads(x) for x in (out / shipped[1][0]).read_text().splitlines()] == [
        json.loads(x) for x in lines[1:]]


WINDOWS_SOURCES = {
    "LSASS Memory Dump through comsvcs.dll MiniDump": ["Sysmon EventID 1"],
    "Windows Logon Success after Repeated Failures": ["Windows Event Log Security 4624",
                                                      "Windows Event Log Security 4625"],
    "PowerShell Script Run from a User-Writable Folder": ["Powershell Script Block Logging 4104"],
}


def test_windows_detections_name_escu_data_sources_and_ship_no_replay() -> None:
    """Windows rules read ESCU's data sources (by EventID), live under detections/endpoint, and carry no attack data:
    contentctl would replay it as XmlWinEventLog XML, which the fixtures are not."""
    from siemforge.backends.spl.app import slug

    files = pack_files()
    dets = {d["name"]: (k, d) for k, d in ((k, yaml.safe_load(v)) for k, v in files.items()
                                           if k.startswith("detections/"))}
    for name, sources in WINDOWS_SOURCES.items():
        path, d = dets[name]
        assert path.startswith("detections/endpoint/") and d["data_source"] == sources, (path, d["data_source"])
        assert d["tags"]["asset_type"] == "Endpoint" and d["tests"] == [] and d["status"] == "experimental"
        assert d["tags"]["analytic_story"] == ["siemforge Windows Detections"]
        for s in sources:
            ds = yaml.safe_load(files[f"data_sources/{slug(s)}.yml"])
            assert ds["name"] == s and ds["sourcetype"] == "xmlwineventlog"
            assert ds["source"].startswith("XmlWinEventLog:") and "Computer" in ds["fields"]
    lsass = dets["LSASS Memory Dump through comsvcs.dll MiniDump"][1]
    assert {"field": "Computer", "type": "system", "score": 50} in lsass["rba"]["risk_objects"]
    assert "stories/siemforge_windows_detections.yml" in files and "stories/siemforge_cloud_detections.yml" in files


def test_windows_data_source_follows_the_binding_and_the_rules_event_ids(tmp_path: Path) -> None:
    from siemforge.backends.spl.contentctl import PackError, data_sources

    lsass = next(r for r in rules() if r.meta.title.startswith("LSASS"))
    assert [d["name"] for d in data_sources(lsass, "wineventlog")] == ["Windows Event Log Security 4688"]
    head = "title: t\nlogsource: {product: windows, service: security}\n"
    one = compile_rule(tmp_path, head + "detection:\n  sel: {EventID: 4720, TargetUserName: x}\n  condition: sel\n")
    assert [d["name"] for d in data_sources(one, None)] == ["Windows Event Log Security 4720"]
    none = compile_rule(tmp_path, head + "detection:\n  sel: {TargetUserName: x}\n  condition: sel\n")
    with pytest.raises(PackError, match="selects no EventID"):
        data_sources(none, None)


def test_a_production_windows_rule_ships_experimental_with_the_reason(tmp_path: Path) -> None:
    import shutil

    src = ROOT / "rules" / "windows_lsass_dump_comsvcs"
    shutil.copytree(src, tmp_path / src.name)
    path = tmp_path / src.name / f"{src.name}.yml"
    path.write_text(path.read_text().replace("status: experimental", "status: stable"))
    res = compile_file(path)
    assert res.rule is not None and res.doc is not None
    notes: list[str] = []
    files = build_pack([res.rule], None, {res.rule.meta.id: res.doc.tests}, on_note=lambda r, n: notes.append(n))
    det = yaml.safe_load(files["detections/endpoint/lsass_memory_dump_through_comsvcs_dll_minidump.yml"])
    assert det["status"] == "experimental" and det["tests"] == []
    assert len(notes) == 1 and "XmlWinEventLog XML" in notes[0] and "status stable" in notes[0]


def test_a_detection_keeps_its_rules_author(tmp_path: Path) -> None:
    """ESCU's author is "Name, Organization": the rule's author (a Sigma rule's attribution) is the name, where every
    detection said "siemforge, siemforge"; a rule without one, or by siemforge, keeps that."""
    head = ("logsource: {product: aws, service: cloudtrail}\ndetection: {sel: {eventName: A}, condition: sel}\n"
            "entities: {account: {name: eventName}}\n")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    by = compile_rule(tmp_path / "a", "title: by someone\nauthor: Jane Doe (Example Corp)\n" + head)
    anonymous = compile_rule(tmp_path / "b", "title: by no one\n" + head)
    dets = {yaml.safe_load(v)["name"]: yaml.safe_load(v)["author"]
            for k, v in build_pack([by, anonymous], None, {}).items() if k.startswith("detections/")}
    assert dets == {"by someone": "Jane Doe (Example Corp), siemforge", "by no one": "siemforge, siemforge"}


# contentctl 5.6.2 (.ci/run's pin): the asset types its `validate` accepts, as it lists them when one is not
CONTENTCTL_ASSET_TYPES = {
    "AWS Account", "AWS EKS Kubernetes cluster", "AWS Federated Account", "AWS Instance", "Account",
    "Amazon EKS Kubernetes cluster", "Amazon EKS Kubernetes cluster Pod", "Amazon Elastic Container Registry",
    "Azure Tenant", "Azure AKS Kubernetes cluster", "Azure Active Directory", "CircleCI", "Cloud Compute Instance",
    "Cloud Instance", "DNS Servers", "Database Server", "Domain Server", "EC2 Snapshot", "Endpoint", "GCP",
    "GCP Account", "GCP GKE EKS Kubernetes cluster", "GCP GKE Kubernetes cluster", "GCP Kubernetes cluster",
    "GCP Storage Bucket", "GDrive", "GSuite", "GitHub", "Google Cloud Platform tenant", "Identity", "Infrastructure",
    "Instance", "Kubernetes", "Network", "O365 Tenant", "Okta Tenant", "Proxy", "S3 Bucket", "Splunk Server",
    "VPN Appliance", "Web Server", "Web Proxy", "Web Application", "Windows",
}


def test_every_binding_declares_an_asset_type_contentctl_accepts() -> None:
    """Without contentctl installed too: a binding's `asset_type` outside contentctl's list fails `contentctl
    validate` for every rule exported on it (GCP Project and Google Workspace did)."""
    from siemforge.compiler.bindings import builtin_bindings

    bad = {(b.source, b.name): str(ds.get("asset_type", "AWS Account"))
           for b in builtin_bindings().values()
           if isinstance(ds := b.extra.get("data_source"), dict)
           and str(ds.get("asset_type", "AWS Account")) not in CONTENTCTL_ASSET_TYPES}
    assert bad == {}
