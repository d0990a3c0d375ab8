"""The contentctl 5.x pack export: overlaid on a `contentctl init` skeleton, Splunk's own `contentctl validate`
and `contentctl build` accept it (CI installs contentctl in its own venv: .ci/run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from siemforge.backends.spl.contentctl import build_pack
from siemforge.compiler.api import compile_file, discover_rules

from helpers import ROOT


def rules():  # type: ignore[no-untyped-def]
    return [r for r in (compile_file(f).rule for f in discover_rules([ROOT / "rules"])) if r is not None]


def test_pack_files() -> None:
    files = build_pack(rules(), None)
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
    assert "macros/cloudtrail.yml" in files and "lookups/previously_seen_cloud_compute_images.csv" in files
    assert yaml.safe_load(files["contentctl.yml"])["app"]["label"] == "SF"


def contentctl() -> str | None:
    exe = os.environ.get("SIEMFORGE_CONTENTCTL") or str(ROOT / ".ci-venvs" / "contentctl" / "bin" / "contentctl")
    return exe if Path(exe).exists() else shutil.which("contentctl")


def test_contentctl_validate_and_build(tmp_path: Path) -> None:
    exe = contentctl()
    if exe is None:
        pytest.skip("contentctl is not installed (CI installs it: .ci/run)")
    pack = tmp_path / "pack"
    pack.mkdir()
    run = lambda *args: subprocess.run([exe, *args], cwd=pack, capture_output=True, text=True,  # noqa: E731
                                       timeout=600)
    assert run("init").returncode == 0
    for rel, text in build_pack(rules(), None).items():
        (pack / rel).parent.mkdir(parents=True, exist_ok=True)
        (pack / rel).write_text(text)
    validate = run("validate")
    assert validate.returncode == 0, validate.stdout[-3000:] + validate.stderr[-3000:]
    build = run("build")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (pack / "dist" / "siemforge_content-latest.tar.gz").exists()
