"""The pre-commit hooks of .pre-commit-hooks.yaml, run by pre-commit itself on a temporary repository of rules.

Offline: the hooks are declared in the repository's config as `repo: local` with the manifest's own entries, files,
excludes and pass_filenames, run with `language: unsupported` (pre-commit's name for "on the PATH", here this
checkout's installed `siemforge`) instead of `python`, which would pip-install siemforge from the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import ROOT

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

MANIFEST = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent
PRE_COMMIT = [sys.executable, "-m", "pre_commit"]

RULE = """title: console login without MFA
id: 5a0e2f43-5c8f-4a52-9a57-0e7d1c0c9a11
logsource: {product: aws, service: cloudtrail}
detection:
  sel: {eventName: ConsoleLogin, additionalEventData.MFAUsed: 'No'}
  condition: sel
tests:
  - name: fires on a login without MFA
    logs: fixtures/events.ndjson
    expect: {rows: 1}
"""
EVENTS = (
    '{"eventName": "ConsoleLogin", "additionalEventData": {"MFAUsed": "No"}, "eventTime": "2024-01-01T00:00:00Z"}\n'
    '{"eventName": "ConsoleLogin", "additionalEventData": {"MFAUsed": "Yes"}, "eventTime": "2024-01-01T00:00:01Z"}\n'
)


def hooks() -> dict[str, dict[str, object]]:
    return {h["id"]: h for h in yaml.safe_load(MANIFEST.read_text())}


def has_command(name: str) -> bool:
    r = subprocess.run([str(BIN / "siemforge"), name, "--help"], capture_output=True, text=True, timeout=60)
    return r.returncode == 0


def rule_repo(tmp_path: Path, ids: list[str]) -> Path:
    repo = tmp_path / "repo"
    rule = repo / "rules" / "console_login_without_mfa"
    (rule / "fixtures").mkdir(parents=True)
    (rule / "console_login_without_mfa.yml").write_text(RULE)
    (rule / "fixtures" / "events.ndjson").write_text(EVENTS)
    local = []
    for hook_id in ids:
        hook = dict(hooks()[hook_id])
        hook["language"] = "unsupported"  # this checkout's siemforge, on the PATH; not installed from the network
        local.append(hook)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]}))
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    return repo


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   timeout=60)


def pre_commit(repo: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1", "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([*PRE_COMMIT, *args], cwd=repo, capture_output=True, text=True, timeout=300, env=env)


def test_the_manifest_is_valid_and_declares_the_three_hooks() -> None:
    r = subprocess.run([*PRE_COMMIT, "validate-manifest", str(MANIFEST)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    declared = hooks()
    assert {h: declared[h]["entry"] for h in declared} == {
        "siemforge-fmt": "siemforge fmt --check",
        "siemforge-validate": "siemforge validate --target sentinel",
        "siemforge-test": "siemforge test",
    }
    assert all(h["language"] == "python" for h in declared.values())


@pytest.mark.slow
def test_validate_and_test_hooks_pass_then_fail_on_a_broken_rule(tmp_path: Path) -> None:
    from siemforge.backends.kql.validate import checker_available

    if checker_available() is not None:
        pytest.skip(f"siemforge validate needs Kusto.Language: {checker_available()}")
    repo = rule_repo(tmp_path, ["siemforge-validate", "siemforge-test"])
    r = pre_commit(repo, tmp_path, "run", "--all-files")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "siemforge validate" in r.stdout and "siemforge test" in r.stdout
    assert r.stdout.count("Passed") == 2, r.stdout

    # a wrong expectation: the test hook fails with the rule's test named; validate still passes
    rule = repo / "rules" / "console_login_without_mfa" / "console_login_without_mfa.yml"
    rule.write_text(RULE.replace("expect: {rows: 1}", "expect: {rows: 2}"))
    git(repo, "add", "-A")
    r = pre_commit(repo, tmp_path, "run", "--all-files")
    assert r.returncode == 1
    assert "fires on a login without MFA" in r.stdout and "0 passed, 1 failed" in r.stdout, r.stdout

    # a rule that does not compile: validate names it by line and column, on the staged file only
    rule.write_text(RULE.replace("condition: sel", "condition: sel and nope"))
    git(repo, "add", "-A")
    r = pre_commit(repo, tmp_path, "run", "siemforge-validate")
    assert r.returncode == 1
    assert "console_login_without_mfa.yml:6:" in r.stdout, r.stdout


@pytest.mark.slow
def test_fmt_hook_checks_the_formatting(tmp_path: Path) -> None:
    if not has_command("fmt"):
        pytest.skip("`siemforge fmt` is not a command yet (issue 14, part 4)")
    repo = rule_repo(tmp_path, ["siemforge-fmt"])
    subprocess.run([str(BIN / "siemforge"), "fmt", "rules"], cwd=repo, check=True, timeout=60)
    git(repo, "add", "-A")
    r = pre_commit(repo, tmp_path, "run", "--all-files")
    assert r.returncode == 0, r.stdout + r.stderr
    rule = repo / "rules" / "console_login_without_mfa" / "console_login_without_mfa.yml"
    rule.write_text("logsource: {product: aws, service: cloudtrail}\n" + rule.read_text().replace(
        "logsource: {product: aws, service: cloudtrail}\n", ""))  # keys out of their order
    git(repo, "add", "-A")
    r = pre_commit(repo, tmp_path, "run", "--all-files")
    assert r.returncode == 1, r.stdout
