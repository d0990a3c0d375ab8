"""A team's own sources and bindings, kept in its rules repository (`sources/` beside the rules, or `--sources DIR`):
the CLI as a user runs it, on a small repository made here (docs/dsl.md, "Your own sources and bindings")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from siemforge.compiler.bindings import bindings_for, builtin_bindings, package_bindings
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.sources import active_folders, builtin_sources, package_sources, use_source_dirs

CMD = [sys.executable, "-m", "siemforge.cli.main"]

EDR_SOURCE = """\
# our EDR's process starts, as our collector writes them
name: acme.edr_process
description: Process starts from the Acme EDR
logsource: {product: acme, category: process_creation}
time:
  column: ts
fields:
  ts: datetime
  host: string
  proc_path: string
  cmdline: string
"""

EDR_SENTINEL = """\
source: acme.edr_process
name: acme
target: sentinel
default: true
table: AcmeProcess_CL
time_column: TimeGenerated
columns:
  ts: TimeGenerated
  host: Computer
  proc_path: ProcessPath_s
  cmdline: CommandLine_s
schema:
  TimeGenerated: datetime
  Computer: string
  ProcessPath_s: string
  CommandLine_s: string
"""

SYSMON_INDEX = """\
# our Splunk keeps Sysmon in an index of its own
source: windows.process_creation
name: acme_sysmon
target: splunk
time_column: _time
search: "index=acme_sysmon EventCode=1"
named_fields: true
columns:
  _time: _time
  EventID: EventCode
"""

EDR_RULE = """\
title: Encoded PowerShell from the Acme EDR
id: 0b7c3f1e-1111-4a2b-9c3d-000000000001
level: high
logsource: {product: acme, category: process_creation}
detection:
  sel:
    proc_path|endswith: '\\powershell.exe'
    cmdline|contains: ' -enc '
  condition: sel
tests:
  - name: fires
    logs: fixtures/enc.ndjson
    expect: {rows: 1}
"""

EDR_EVENTS = "\n".join(json.dumps(e) for e in [
    {"ts": "2024-05-01T10:00:00Z", "host": "ws1", "proc_path": "C:\\Windows\\System32\\powershell.exe",
     "cmdline": "powershell -enc SQBFAFgA"},
    {"ts": "2024-05-01T10:01:00Z", "host": "ws1", "proc_path": "C:\\Windows\\notepad.exe", "cmdline": "notepad"},
]) + "\n"

WHOAMI_RULE = """\
title: Whoami
id: 0b7c3f1e-1111-4a2b-9c3d-000000000002
logsource: {product: windows, category: process_creation}
detection:
  sel: {Image|endswith: '\\whoami.exe'}
  condition: sel
"""


def sf(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "SIEMFORGE_NO_CACHE": "1", **(env or {})}
    return subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=full)


@pytest.fixture(autouse=True)
def _no_user_sources() -> object:
    """Tests that activate folders in this process leave none active for the next."""
    yield
    use_source_dirs(())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A team's checkout: rules/ and, beside it, sources/ (a source, its Sentinel binding, a Splunk binding for a
    packaged source)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "rules" / "edr" / "fixtures").mkdir(parents=True)
    (tmp_path / "sources" / "bindings").mkdir(parents=True)
    (tmp_path / "sources" / "my_edr.yml").write_text(EDR_SOURCE)
    (tmp_path / "sources" / "bindings" / "my_edr.sentinel.yml").write_text(EDR_SENTINEL)
    (tmp_path / "sources" / "bindings" / "sysmon_index.splunk.yml").write_text(SYSMON_INDEX)
    (tmp_path / "rules" / "edr" / "encoded_ps.yml").write_text(EDR_RULE)
    (tmp_path / "rules" / "edr" / "fixtures" / "enc.ndjson").write_text(EDR_EVENTS)
    (tmp_path / "rules" / "whoami.yml").write_text(WHOAMI_RULE)
    return tmp_path


def test_a_new_source_and_its_binding_compile_run_and_test(repo: Path) -> None:
    r = sf("compile", "rules/edr", "-t", "sentinel", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert 'AcmeProcess_CL\n| where (ProcessPath_s endswith "\\\\powershell.exe" and CommandLine_s contains " -enc ")' \
        in r.stdout
    r = sf("test", "rules", cwd=repo)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed, 0 failed" in r.stdout
    r = sf("run", "rules/edr/encoded_ps.yml", "rules/edr/fixtures/enc.ndjson", "--format", "json", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert [row["host"] for row in json.loads(r.stdout)] == ["ws1"]
    r = sf("ir", "rules/edr/encoded_ps.yml", cwd=repo)
    assert r.returncode == 0 and "acme.edr_process" in r.stdout, r.stderr


def test_a_binding_for_a_packaged_source(repo: Path) -> None:
    r = sf("compile", "rules/whoami.yml", "-t", "splunk", "--binding", "acme_sysmon", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == 'index=acme_sysmon EventCode=1 Image="*\\\\whoami.exe"'
    r = sf("compile", "rules/whoami.yml", "-t", "splunk", cwd=repo)  # not the default: the package's stays
    assert r.stdout.splitlines()[1].startswith("`sysmon` EventCode=1"), r.stdout + r.stderr


def test_a_user_default_binding_replaces_the_packaged_default(repo: Path) -> None:
    path = repo / "sources" / "bindings" / "sysmon_index.splunk.yml"
    path.write_text(SYSMON_INDEX + "default: true\n")
    r = sf("compile", "rules/whoami.yml", "-t", "splunk", cwd=repo)
    assert r.stdout.splitlines()[1].startswith("index=acme_sysmon"), r.stdout + r.stderr
    r = sf("compile", "rules/whoami.yml", "-t", "splunk", "--binding", "sysmon", cwd=repo)  # still there by name
    assert r.stdout.splitlines()[1].startswith("`sysmon` EventCode=1"), r.stdout + r.stderr


def test_sources_from_a_folder_named_on_the_command_line(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    rules = str(repo / "rules" / "edr")
    # from another folder, outside any checkout: the rules' own folder has no sources/
    (repo / ".git").rmdir()
    r = sf("compile", rules, "-t", "sentinel", cwd=elsewhere)
    assert r.returncode == 1 and "no Sentinel binding for source 'generic'" in r.stderr, r.stderr
    r = sf("compile", rules, "-t", "sentinel", "--sources", str(repo / "sources"), cwd=elsewhere)
    assert r.returncode == 0 and "AcmeProcess_CL" in r.stdout, r.stderr
    r = sf("compile", rules, "-t", "sentinel", "--sources", str(elsewhere / "nope"), cwd=elsewhere)
    assert r.returncode == 2 and "--sources: no such folder" in r.stderr
    a_file = repo / "sources" / "my_edr.yml"
    r = sf("compile", rules, "-t", "sentinel", "--sources", str(a_file), cwd=elsewhere)
    assert r.returncode == 2 and f"{a_file}: error: --sources: not a folder" in r.stderr, r.stderr


def test_a_sources_folder_inside_the_rules_is_read_and_is_not_rules(repo: Path) -> None:
    (repo / "sources").rename(repo / "rules" / "sources")
    r = sf("compile", "rules", "-t", "sentinel", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert "AcmeProcess_CL" in r.stdout and "my_edr" not in r.stdout + r.stderr


CLASHES = [
    ("sources/dup.yml", "name: windows.process_creation\nfields: {Image: string}\n",
     "sources/dup.yml:1:7: error: source 'windows.process_creation' is already defined "
     "(sources/windows_process_creation.yml)"),
    ("sources/dup.yml", "name: generic\n", "sources/dup.yml:1:7: error: source 'generic' is already defined"),
    ("sources/dup.yml", "name: acme.other\nfields: {a: string}\nlogsource: {product: Windows, category: "
     "process_creation}\n", "sources/dup.yml:3:12: error: logsource {category: process_creation, product: Windows} "
     "already picks source 'windows.process_creation'"),
    ("sources/dup.yml", EDR_SOURCE, "sources/my_edr.yml:2:7: error: source 'acme.edr_process' is already defined "
     "(sources/dup.yml)"),  # files are read in name order
    ("sources/bindings/dup.yml", "source: windows.process_creation\nname: sysmon\ntarget: splunk\ntime_column: _time\n",
     "sources/bindings/dup.yml:2:7: error: source 'windows.process_creation' already has a binding 'sysmon' "
     "(sources/bindings/windows_process_creation.splunk_sysmon.yml)"),
    ("sources/bindings/dup.yml", "source: nosuch\nname: x\ntarget: splunk\ntime_column: _time\n",
     "sources/bindings/dup.yml:1:9: error: binding of unknown source 'nosuch'"),
    ("sources/bindings/dup.yml", SYSMON_INDEX.replace("acme_sysmon\n", "other\n") + "default: true\n",
     None),  # one user default: fine
]


@pytest.mark.parametrize(("name", "text", "message"), CLASHES)
def test_a_clash_with_the_package_is_an_error_at_its_place(repo: Path, name: str, text: str,
                                                            message: str | None) -> None:
    (repo / name).write_text(text)
    r = sf("compile", "rules", "-t", "sentinel", cwd=repo)
    assert "Traceback" not in r.stderr
    if message is None:
        assert r.returncode == 0, r.stderr
        return
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(message), r.stderr
    assert r.stdout == ""  # nothing compiled on a half-read set of sources


def test_two_user_defaults_for_one_source_and_target_clash(repo: Path) -> None:
    (repo / "sources" / "bindings" / "sysmon_index.splunk.yml").write_text(SYSMON_INDEX + "default: true\n")
    (repo / "sources" / "bindings" / "z.yml").write_text(
        SYSMON_INDEX.replace("acme_sysmon\n", "other\n") + "default: true\n")
    r = sf("compile", "rules", "-t", "splunk", cwd=repo)
    assert r.returncode == 2
    assert r.stderr.startswith("sources/bindings/z.yml:11:10: error: source 'windows.process_creation' already has "
                               "a default splunk binding of yours"), r.stderr


MALFORMED = [
    ("name: acme.bad\nfields:\n  a: strng\n", "sources/bad.yml:3:6: error: unknown type 'strng' for field 'a'"),
    ("name: acme.bad\nfields: [a, b\n", "sources/bad.yml:3:1: error: invalid YAML"),
    ("name: acme.bad\nfields: [a, b]\n", "sources/bad.yml:2:9: error: `fields` must be a mapping"),
    ("fields: {a: string}\n", "sources/bad.yml:1:1: error: a source definition needs a `name`"),
    ("name: acme.bad\nview: {query: 'where true'}\n", "sources/bad.yml:2:7: error: a view needs `over:`"),
    ("name: acme.bad\nrecords: {channel: x}\n", "sources/bad.yml:2:10: error: `records` must be a list"),
    (b"name: \xff\n", "sources/bad.yml:1:1: error: not UTF-8 text"),
    ("name: acme.bad\nview:\n  over: acme.nosuch\n  query: where true\n",
     "sources/bad.yml:3:9: error: view over unknown source 'acme.nosuch'"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_a_malformed_source_file_is_reported_like_a_rule(repo: Path, text: str | bytes, message: str) -> None:
    path = repo / "sources" / "bad.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = sf("test", "rules", cwd=repo)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(message), r.stderr


def test_a_malformed_binding_file_is_reported_at_its_place(repo: Path) -> None:
    path = repo / "sources" / "bindings" / "bad.yml"
    path.write_text("source: acme.edr_process\nname: x\ntarget: splunk\ntime_column: _time\ncolumns: [a]\n")
    r = sf("compile", "rules", "-t", "splunk", cwd=repo)
    assert r.returncode == 2 and r.stderr.startswith("sources/bindings/bad.yml:5:10: error: `columns` must be a "
                                                     "mapping"), r.stderr


def test_a_changed_source_file_recompiles_through_the_cache(repo: Path, tmp_path_factory: pytest.TempPathFactory
                                                            ) -> None:
    env = {"SIEMFORGE_NO_CACHE": "", "SIEMFORGE_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    first = sf("compile", "rules/edr", "-t", "sentinel", cwd=repo, env=env)
    assert first.returncode == 0 and "ProcessPath_s" in first.stdout, first.stderr
    again = sf("compile", "rules/edr", "-t", "sentinel", cwd=repo, env=env)
    assert again.stdout == first.stdout
    assert "unknown field" not in again.stderr
    # the source no longer declares the rule's field: a warning at compile time, which a stale cache entry lacks
    source = repo / "sources" / "my_edr.yml"
    source.write_text(EDR_SOURCE.replace("  cmdline: string\n", "  commandline: string\n"))
    changed = sf("compile", "rules/edr", "-t", "sentinel", cwd=repo, env=env)
    assert "warning: unknown field 'cmdline': source 'acme.edr_process' does not declare it" in changed.stderr
    source.write_text(EDR_SOURCE)
    binding = repo / "sources" / "bindings" / "my_edr.sentinel.yml"
    binding.write_text(EDR_SENTINEL.replace("ProcessPath_s", "Path_s"))
    changed = sf("compile", "rules/edr", "-t", "sentinel", cwd=repo, env=env)
    assert changed.returncode == 0 and "Path_s endswith" in changed.stdout and "ProcessPath_s" not in changed.stdout


def test_the_package_lookups_see_user_folders_only_while_in_use(repo: Path) -> None:
    assert "acme.edr_process" not in builtin_sources()
    use_source_dirs([repo / "sources"])
    assert builtin_sources()["acme.edr_process"].file == str(repo / "sources" / "my_edr.yml")
    assert set(package_sources()) < set(builtin_sources())
    assert ("windows.process_creation", "acme_sysmon") in builtin_bindings()
    assert ("windows.process_creation", "acme_sysmon") not in package_bindings()
    assert [b.name for b in bindings_for("windows.process_creation", "splunk")][0] == "sysmon"
    assert active_folders().digest
    use_source_dirs(())
    assert "acme.edr_process" not in builtin_sources()
    assert active_folders().digest == ""


def test_the_checkouts_own_sources_folder_is_the_package(tmp_path: Path) -> None:
    """In a checkout of siemforge itself, sources/ beside rules/ is the package's folder: not read a second time."""
    from siemforge.compiler.sources import _package_folder

    own = _package_folder()
    assert own is not None
    assert use_source_dirs([own]).dirs == ()


def test_a_compile_worker_reads_the_folders_in_use(repo: Path) -> None:
    import gc

    from siemforge.cli.batch import _worker_start

    use_source_dirs(())
    threshold = gc.get_threshold()
    try:
        _worker_start((repo / "sources",))
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert "acme.edr_process" in builtin_sources()


def test_a_clash_raises_compile_error_in_the_library(repo: Path) -> None:
    (repo / "sources" / "dup.yml").write_text("name: aws.cloudtrail\n")
    with pytest.raises(CompileError) as exc:
        use_source_dirs([repo / "sources"])
    assert exc.value.diagnostics[0].span is not None and exc.value.diagnostics[0].span.line == 1
    assert "acme.edr_process" not in builtin_sources()  # a failed read leaves the lookups as they were


VIEW = """\
name: acme.powershell_starts
description: process starts of PowerShell, from the Acme EDR
logsource: {product: acme, category: powershell_start}
time:
  column: ts
fields:
  ts: datetime
  host: string
  cmdline: string
view:
  over: acme.edr_process
  query: |
    where proc_path endswith "\\\\powershell.exe" | project ts, host, cmdline
"""

VIEW_RULE = """\
title: Encoded command, from the view
logsource: {product: acme, category: powershell_start}
detection:
  sel: {cmdline|contains: ' -enc '}
  condition: sel
"""


def test_a_user_view_over_a_user_source(repo: Path) -> None:
    (repo / "sources" / "acme_view.yml").write_text(VIEW)
    (repo / "rules" / "edr" / "view_rule.yml").write_text(VIEW_RULE)
    r = sf("run", "rules/edr/view_rule.yml", "rules/edr/fixtures/enc.ndjson", "--format", "json", cwd=repo)
    assert r.returncode == 0, r.stderr
    assert [row["host"] for row in json.loads(r.stdout)] == ["ws1"]


def test_kusto_language_checks_the_query_against_the_users_table_schema(repo: Path) -> None:
    """Clean only because the user's table is given to Kusto.Language: an unknown table is its error KS204."""
    from siemforge.backends.kql.validate import check_queries

    r = sf("validate", "rules/edr", cwd=repo)
    assert r.returncode == 0 and "1 queries checked with Kusto.Language: 1 clean" in r.stdout, r.stdout + r.stderr
    unknown = check_queries([("q", 'AcmeProcess_CL | where ProcessPath_s endswith "x"')], [])
    assert [d.code for d in unknown[0]] == ["KS204"]
