"""Linux: auditd's audit.log read as records and as Sigma category rows (backends/executor/auditd.py), the Linux
sources (sources/linux_*.yml, made by tools/gen_linux_sources.py) and their Sentinel and Splunk bindings: tables of
rule → query, refusals naming the field, and the SigmaHQ Linux corpus on both targets."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import lark
import pytest

from siemforge.backends.executor.auditd import parse_record, select_by_field
from siemforge.backends.executor.engine import run_rule
from siemforge.backends.executor.reader import iter_events
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl, splunk_binding
from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.sources import builtin_sources

import kql_engine
from helpers import ROOT, compile_rule, shared_path

HEAD = "title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\n"
RULE = ROOT / "rules" / "linux_suid_shell_privileged_mode"
OTRF = "type=SYSCALL msg=audit(1604994496.155:92733): arch=c000003e syscall=59 success=yes exit=0 a0=558e251634a0 "


def rows_of(tmp_path: Path, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    f = tmp_path / "audit.log"
    f.write_text(text)
    bad: list[Any] = []
    return list(iter_events(f, bad.append)), [str(b) for b in bad]


def test_event_records_and_process_creation(tmp_path: Path) -> None:
    """The OTRF arp-cache capture: 12 records of two execve events; each record a row, each event a process row."""
    rows = list(iter_events(RULE / "fixtures" / "other_execs.log", lambda m: None))
    kinds = Counter(r["auditd_row"] for r in rows)
    assert kinds == {"record": 18, "process_creation": 3}  # EOE closes the uname event and is not a row
    procs = [r for r in rows if r["auditd_row"] == "process_creation"]
    assert [(p["Image"], p["CommandLine"], p["CurrentDirectory"]) for p in procs] == [
        ("/bin/uname", "uname -a", "/home/andrew_kroh"), ("/usr/sbin/arp", "arp -a", "/home/wardog"),
        ("/bin/grep", "grep -v ^?", "/home/wardog")]
    assert procs[1]["ProcessId"] == 1631 and procs[1]["ParentProcessId"] == 29002 and procs[1]["uid"] == "1000"
    assert procs[1]["timestamp"] == "2020-11-10T07:48:16.155+00:00" and procs[1]["audit_id"] == "1604994496.155:92733"


@pytest.mark.parametrize("line, expected", [
    # quoted, bare, and hex (a path with a space); SYSCALL's a0 is a number in hex and stays as written
    ('type=SYSCALL msg=audit(1.5:7): arch=c000003e syscall=59 a0=7ffe952abf50 comm="sh" '
     'exe=2F746D702F6D7920736831 key=(null)',
     {"type": "SYSCALL", "a0": "7ffe952abf50", "comm": "sh", "exe": "/tmp/my sh1", "key": None, "serial": 7}),
    # EXECVE arguments are hex-encoded when unsafe; proctitle is NUL-separated argv
    ('type=EXECVE msg=audit(1.5:7): argc=2 a0="echo" a1=6869207468657265', {"a0": "echo", "a1": "hi there"}),
    ("type=PROCTITLE msg=audit(1.5:7): proctitle=617270002D61", {"proctitle": "arp -a"}),
    # the enriched format's interpreted fields, glued to the last raw value where a copy lost the 0x1d byte
    ('type=SYSCALL msg=audit(1.5:7): syscall=305 comm="chronyd" key=(null)ARCH=x86_64 SYSCALL=clock_adjtime '
     'AUID="unset" UID="root"', {"syscall": "305", "key": None, "ARCH": "x86_64", "SYSCALL": "clock_adjtime",
                                 "UID": "root"}),
    ('type=SYSCALL msg=audit(1.5:7): syscall=59 key="x"\x1dARCH=x86_64 SYSCALL=execve',
     {"key": "x", "SYSCALL": "execve"}),
    # glued after a bare number (laurel's testdata: `cap_frootid=0OUID="root"`) and after a quoted value; an argument
    # that holds an upper-case NAME= is an argument
    ('type=PATH msg=audit(1.5:7): item=0 name="/usr/bin/perl" cap_frootid=0OUID="root" OGID="root"',
     {"cap_frootid": "0", "OUID": "root", "OGID": "root"}),
    ('type=SYSCALL msg=audit(1.5:7): comm="perl" exe="/usr/bin/perl"ARCH=x86_64', {"exe": "/usr/bin/perl",
                                                                                 "ARCH": "x86_64"}),
    ('type=EXECVE msg=audit(1.5:7): argc=2 a0="env" a1="PATH=/tmp"', {"a0": "env", "a1": "PATH=/tmp"}),
    # a user-space record's nested msg='…' list; cmd hex-encoded
    ("type=USER_CMD msg=audit(1481077231.363:475): pid=1382 uid=1000 auid=1000 ses=3 msg='cwd=\"/home/a\" "
     "cmd=2E2F6D657472696362656174202D63206D622E6465762E796D6C terminal=pts/0 res=success'",
     {"cwd": "/home/a", "cmd": "./metricbeat -c mb.dev.yml", "terminal": "pts/0", "res": "success", "pid": "1382"}),
    # a user-space record's plain values stay as written (id=1000 is not hex)
    ("type=USER_LOGIN msg=audit(1.5:7): pid=26475 uid=0 auid=1000 ses=91158 msg='op=login id=1000 "
     "exe=\"/usr/sbin/sshd\" hostname=131.107.147.6 addr=131.107.147.6 terminal=/dev/pts/0 res=success'",
     {"id": "1000", "exe": "/usr/sbin/sshd", "addr": "131.107.147.6", "terminal": "/dev/pts/0", "op": "login"}),
    # node= prefix; CWD's two spaces
    ('node=web1 type=CWD msg=audit(1.5:7):  cwd="/root"', {"node": "web1", "cwd": "/root"}),
    # no event id at all
    ("type=UNKNOWN[1329] msg=?", {"type": "UNKNOWN[1329]"}),
    # the audit daemon's own records: no `:` after the id, which is still the event's
    ("type=DAEMON_CONFIG msg=audit(1490239800.477:34) config changed, auid=0 pid=1512 res=success",
     {"type": "DAEMON_CONFIG", "serial": 34, "timestamp": "2017-03-23T03:30:00.477+00:00", "auid": "0", "pid": "1512",
      "res": "success"}),
])
def test_record_values(line: str, expected: dict[str, Any]) -> None:
    rec = parse_record(line)
    assert rec is not None
    assert {k: rec.get(k) for k in expected} == expected


def test_records_of_one_event_need_not_be_adjacent(tmp_path: Path) -> None:
    text = ('type=SYSCALL msg=audit(10.0:1): arch=c000003e syscall=59 pid=5 exe="/usr/bin/id"\n'
            'type=SYSCALL msg=audit(10.0:2): arch=c000003e syscall=59 pid=6 exe="/usr/bin/who"\n'
            'type=EXECVE msg=audit(10.0:2): argc=1 a0="who"\n'
            'type=EXECVE msg=audit(10.0:1): argc=2 a0="id" a1="-u"\n')
    rows, bad = rows_of(tmp_path, text)
    procs = {r["Image"]: r["CommandLine"] for r in rows if r["auditd_row"] == "process_creation"}
    assert procs == {"/usr/bin/id": "id -u", "/usr/bin/who": "who"} and not bad


def test_split_argument_and_file_and_network_events(tmp_path: Path) -> None:
    text = ('type=SYSCALL msg=audit(10.0:1): arch=c000003e syscall=59 pid=5 exe="/bin/echo"\n'
            'type=EXECVE msg=audit(10.0:1): argc=2 a0="echo" a1_len=6 a1[0]="abc" a1[1]="def"\n'
            'type=SYSCALL msg=audit(10.0:2): arch=c000003e syscall=257 uid=0 exe="/usr/bin/touch"\n'
            'type=CWD msg=audit(10.0:2): cwd="/tmp"\n'
            'type=PATH msg=audit(10.0:2): item=1 name="x.sh" nametype=CREATE\n'
            'type=SYSCALL msg=audit(10.0:3): arch=c000003e syscall=42 exe="/usr/bin/curl"\n'
            'type=SOCKADDR msg=audit(10.0:3): saddr=02000050A9FEA9FE0000000000000000\n')
    rows, _ = rows_of(tmp_path, text)
    derived = {r["auditd_row"]: r for r in rows if r["auditd_row"] != "record"}
    assert derived["process_creation"]["CommandLine"] == "echo abcdef"
    assert derived["file_event"]["TargetFilename"] == "/tmp/x.sh" and derived["file_event"]["User"] == "root"
    net = derived["network_connection"]
    assert (net["DestinationIp"], net["DestinationPort"], net["Initiated"]) == ("169.254.169.254", 80, "true")


def test_malformed_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    rows, bad = rows_of(tmp_path, 'type=EXECVE msg=audit(1.0:1): argc=1 a0="ls"\nnot an audit line\n'
                        'type=EXECVE msg=audit(1.0:2): argc=1 a0="id"\n')
    assert bad == [f"{tmp_path / 'audit.log'}:2: skipped: not an audit record (expected `type=… msg=audit(…):`)"]
    assert sorted(r.get("CommandLine") for r in rows if r["auditd_row"] == "process_creation") == ["id", "ls"]


@pytest.mark.parametrize("line", [
    "type=SYSCALL msg=audit(1481077308.360:5 arch=c000003e syscall=59",  # the id's `):` lost
    "type=SYSCALL msg=audit(1481077308.360: arch=c000003e",  # no serial
    "node=h1 type=PATH msg=audit(: item=0",
])
def test_a_broken_event_id_is_reported_not_read_as_an_id_less_record(tmp_path: Path, line: str) -> None:
    """`msg=?` is a record without an event id; a `msg=audit(` that does not parse is a damaged line."""
    assert parse_record(line) is None
    rows, bad = rows_of(tmp_path, f'type=EXECVE msg=audit(1.0:1): argc=1 a0="ls"\n{line}\n')
    assert bad == [f"{tmp_path / 'audit.log'}:2: skipped: broken event id (expected "
                   "`msg=audit(<seconds>.<ms>:<serial>):`)"]
    assert [r["type"] for r in rows if r["auditd_row"] == "record"] == ["EXECVE"]


def test_a_record_cut_inside_a_quoted_value_is_reported_not_read(tmp_path: Path) -> None:
    """A log copied while auditd was writing ends mid-record: the cut EXECVE must not yield a1="/tm as an argument."""
    rows, bad = rows_of(tmp_path, 'type=EXECVE msg=audit(1.0:1): argc=1 a0="ls"\n'
                                  'type=EXECVE msg=audit(2.0:2): argc=2 a0="cat" a1="/tm')
    assert bad == [f"{tmp_path / 'audit.log'}:2: skipped: truncated record: a quoted value opens with \" and never closes"]
    assert [r.get("a0") for r in rows if r["auditd_row"] == "record"] == ["ls"]


def test_a_rotated_log_cut_mid_line_and_gzip_are_audit_logs(tmp_path: Path) -> None:
    """The first line of a rotated log may be the tail of a record: still an audit log, that line reported."""
    import gzip

    text = 'g=1" a0="cut\ntype=EXECVE msg=audit(1.0:1): argc=1 a0="ls"\n'
    rows, bad = rows_of(tmp_path, text)
    assert [r.get("CommandLine") for r in rows if r["auditd_row"] == "process_creation"] == ["ls"]
    assert len(bad) == 1 and ":1: skipped: not an audit record" in bad[0]
    gz = tmp_path / "audit.log.1.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert [r["type"] for r in iter_events(gz, lambda m: None) if r["auditd_row"] == "record"] == ["EXECVE"]


def test_cli_runs_a_sigma_auditd_rule(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(HEAD + "logsource: {product: linux, service: auditd}\n"
                    "detection: {sel: {type: EXECVE, a0: arp}, condition: sel}\n")
    log = tmp_path / "audit.log"
    log.write_text((RULE / "fixtures" / "other_execs.log").read_text() + "garbage\n")
    r = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "run", str(rule), str(log)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "EXECVE" in r.stdout and "1 row(s) from 21 event(s): ALERT" in r.stdout
    assert f"{log}:20: skipped: not an audit record" in r.stderr and "Traceback" not in r.stderr


def test_sigma_logsources_pick_linux_sources() -> None:
    from siemforge.compiler.sources import source_for_logsource

    picked = {str(ls): getattr(source_for_logsource(ls), "name", None) for ls in [
        {"product": "linux", "service": "auditd"}, {"product": "linux", "category": "process_creation"},
        {"product": "linux"}, {"product": "linux", "service": "sshd"},
        {"product": "linux", "category": "process_access"}]}  # no such Linux source: not the product-wide one
    assert list(picked.values()) == ["linux.auditd", "linux.process_creation", "linux.builtin", "linux.sshd", None]


def test_selection_by_row_kind() -> None:
    src = builtin_sources()["linux.auditd"]
    rows = [{"auditd_row": "record", "type": "EXECVE"}, {"auditd_row": "process_creation"}, {"type": "hand-made"}]
    assert list(select_by_field(src.records, rows)) == [rows[0], rows[2]]


_A0 = ('trim(@\'"\', replace_regex(extract(@"(?:^|[\\s\\x1d])a0=(""[^""]*""|[^\\s\\x1d]*)", 1, SyslogMessage), '
       '@"^\\(null\\)$", ""))')
_TYPE = _A0.replace("a0=", "type=")

# (logsource, detection, binding (None: the default), expected KQL)
SENTINEL_ROWS: list[tuple[str, str, str | None, str]] = [
    # auditd records forwarded to syslog: each field read from the record's text by its key
    ("{product: linux, service: auditd}", "{sel: {type: EXECVE, a0: whoami}, condition: sel}", None,
     'Syslog\n| where ProcessName in ("audisp-syslog", "audispd")\n'
     f"| extend a0 = {_A0}, ['type'] = {_TYPE}\n"
     '| where ([\'type\'] =~ "EXECVE" and a0 =~ "whoami")'),
    # AUOMS's LinuxAuditLog: SYSCALL rows are AUOMS_SYSCALL/AUOMS_EXECVE, the syscall's name is `syscall`
    ("{product: linux, service: auditd}", "{sel: {type: SYSCALL, SYSCALL: execve, exe|endswith: /nc}, condition: sel}",
     "LinuxAuditLog",
     'LinuxAuditLog\n| extend [\'type\'] = case(RecordType == "AUOMS_SYSCALL", "SYSCALL", RecordType == "AUOMS_EXECVE", '
     '"SYSCALL", '),
    ("{product: linux, category: process_creation}", "{sel: {Image|endswith: /curl, User: root}, condition: sel}",
     None, 'DeviceProcessEvents\n| where (FolderPath endswith "/curl" and AccountName =~ "root")'),
    ("{product: linux, category: process_creation}", "{sel: {CurrentDirectory: /tmp, ParentImage|endswith: /sshd},"
     " condition: sel}", "asim", 'ASimProcessEventLogs\n| where EventType == "ProcessCreated"\n'
     '| where (TargetProcessCurrentDirectory =~ "/tmp" and ActingProcessName endswith "/sshd")'),
    ("{product: linux, category: file_event}", "{sel: {TargetFilename|startswith: /etc/cron.d/}, condition: sel}",
     None, 'DeviceFileEvents\n| where ActionType == "FileCreated"\n| where FolderPath startswith "/etc/cron.d/"'),
    ("{product: linux, service: sshd}", "{keywords: ['Accepted publickey'], condition: keywords}", None,
     'Syslog\n| where ProcessName == "sshd"\n| where * contains "Accepted publickey"'),
]


@pytest.mark.parametrize("row", SENTINEL_ROWS, ids=[str(i) for i in range(len(SENTINEL_ROWS))])
def test_linux_rule_to_kql(row: tuple[str, str, str | None, str], tmp_path: Path) -> None:
    logsource, detection, binding, expected = row
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    kql = compile_kql(rule, binding)
    if binding == "LinuxAuditLog":  # the type map is long: its head, and the rule's test on the columns
        assert kql.startswith(expected)
        assert kql.endswith('| where ([\'type\'] =~ "SYSCALL" and syscall =~ "execve" and exe endswith "/nc")'), kql
    else:
        assert kql == expected


def test_auditd_records_with_no_linuxauditlog_row_are_refused(tmp_path: Path) -> None:
    """AUOMS folds EXECVE and PATH records into its AUOMS_EXECVE rows: a rule on them is refused by name."""
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {{product: linux, service: auditd}}\n"
                        "detection: {sel: {type: EXECVE, a0: whoami}, condition: sel}\n")
    with pytest.raises(CompileError) as exc:
        compile_kql(rule, "LinuxAuditLog")
    assert "field 'type' is never 'EXECVE' in the LinuxAuditLog table" in exc.value.diagnostics[0].message


# (logsource, detection, expected SPL on the default Splunk binding)
SPLUNK_ROWS: list[tuple[str, str, str]] = [
    ("{product: linux, service: auditd}", "{sel: {type: EXECVE, a0: whoami}, condition: sel}",
     '`linux_auditd` type="EXECVE" a0="whoami"'),
    ("{product: linux, category: process_creation}", "{sel: {Image|endswith: /curl}, condition: sel}",
     '`sysmon_linux` EventCode=1 Image="*/curl"'),
    ("{product: linux, service: cron}", "{keywords: ['REPLACE'], condition: keywords}",
     '`linux_syslog` process IN ("cron", "CRON", "crond") "*REPLACE*"\n| where match(_raw, "(?i).*REPLACE.*")'),
]


@lru_cache(maxsize=1)
def spl_parser() -> lark.Lark:
    return lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")


@pytest.mark.parametrize("row", SPLUNK_ROWS, ids=[str(i) for i in range(len(SPLUNK_ROWS))])
def test_linux_rule_to_spl(row: tuple[str, str, str], tmp_path: Path) -> None:
    logsource, detection, expected = row
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    spl = compile_spl(rule, None)
    assert spl == expected
    spl_parser().parse(spl)


@pytest.mark.parametrize("logsource, detection, field", [
    # Sysmon for Linux's logon id: DeviceProcessEvents' LogonId is another number
    ("{product: linux, category: process_creation}", "{sel: {LogonId: 0}, condition: sel}", "LogonId"),
    ("{product: linux, category: process_creation}", "{sel: {CurrentDirectory: /tmp}, condition: sel}",
     "CurrentDirectory"),
])
def test_fields_without_a_column_are_refused_by_name(logsource: str, detection: str, field: str,
                                                      tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    with pytest.raises(CompileError) as exc:
        compile_kql(rule, None)
    assert f"field {field!r} has no column" in exc.value.diagnostics[0].message


def test_sources_are_generated(tmp_path: Path) -> None:
    """sources/linux_*.yml and their bindings are what tools/gen_linux_sources.py writes."""
    shared = shared_path("reference", "sentinel", "tables").parent.parent.parent
    (tmp_path / "sources" / "bindings").mkdir(parents=True)
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_linux_sources.py"), "--shared", str(shared)],
                   cwd=tmp_path, check=True)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("linux_*.yml"))
    have = sorted(p.relative_to(ROOT) for p in [*(ROOT / "sources").glob("linux_*.yml"),
                                                 *(ROOT / "sources" / "bindings").glob("linux_*.yml")])
    assert made == have
    for p in made:
        assert (tmp_path / p).read_text() == (ROOT / p).read_text(), p


def duck_table(binding: Any, records: list[dict[str, Any]]) -> Any:
    """A duckdb-kql connection holding the binding's table, its rows made from `records` through the binding."""
    from siemforge.backends.executor.shapes import record_to_row

    con = kql_engine.duckdb_kql.connect()
    cols = list(binding.schema.items())
    con.sql(f"CREATE TABLE {binding.table} (" + ", ".join(
        f'"{c}" {kql_engine.DUCK_TYPES[t]}' for c, t in cols) + ")")
    for rec in records:
        row = record_to_row(rec, binding)
        con.execute(f"INSERT INTO {binding.table} VALUES (" + ",".join("?" * len(cols)) + ")",
                    [row.get(c) for c, _ in cols])
    return con


def test_bundled_rule_kql_matches_executor() -> None:
    """The bundled rule's KQL on duckdb-kql, over its fixtures as DeviceProcessEvents rows (the process_creation
    rows the reader makes, written through the binding), returns the executor's rows."""
    if kql_engine.duckdb_kql is None:
        pytest.skip("duckdb-kql is not installed")
    rule = compile_file(RULE / "linux_suid_shell_privileged_mode.yml").rule
    assert rule is not None
    binding = builtin_bindings()[("linux.process_creation", "xdr")]
    now = datetime(2024, 6, 1, tzinfo=UTC)
    for fixture, fires in (("suid_dash_p.log", True), ("other_execs.log", False)):
        logs = [RULE / "fixtures" / fixture]
        expected = run_rule(rule, logs, now)
        src = builtin_sources()["linux.process_creation"]
        con = duck_table(binding, list(select_by_field(src.records, iter_events(logs[0], lambda m: None))))
        got = kql_engine.run(con, compile_kql(rule, None), now)
        assert sorted(r["ProcessId"] for r in got) == sorted(r["ProcessId"] for r in expected.rows)
        assert bool(got) is fires


@pytest.mark.slow  # the SigmaHQ corpus: `pytest -m 'not slow'` skips it locally; CI runs it
def test_sigma_linux_corpus_on_sentinel_and_splunk() -> None:
    """All 210 SigmaHQ Linux rules: more compile to Sentinel than pySigma's best (135), with zero Kusto.Language
    errors; every one is bound to an add-on source type on Splunk, and every search parses with spl.lark."""
    from siemforge.backends.kql.validate import check_queries

    root = shared_path("data", "sigma", "rules", "linux")
    queries: list[tuple[str, str]] = []
    refused: Counter[str] = Counter()
    spl_bound: Counter[str] = Counter()
    files = discover_rules([root])
    for f in files:
        rule = compile_file(f).rule
        assert rule is not None, f
        try:
            queries.append((str(f), compile_kql(rule, None)))
        except CompileError as exc:
            refused[exc.diagnostics[0].code or "?"] += 1
        spl = compile_spl(rule, None)
        b = splunk_binding(rule, None)
        assert b is not None, f"{f.name}: searched as written"
        spl_bound[b.name] += 1
        spl_parser().parse(spl)
    assert len(files) == 210
    assert len(queries) > 135, refused
    bad = [d for diags in check_queries(queries, []) for d in diags if d.severity == "Error"]
    assert not bad, bad[:5]
    assert sum(spl_bound.values()) == 210


@pytest.mark.slow  # the SigmaHQ corpus: `pytest -m 'not slow'` skips it locally; CI runs it
def test_sigma_auditd_rules_same_on_syslog_rows_and_on_duckdb_kql(tmp_path: Path) -> None:
    """The real audit.log records of shared/data/linux, written as Sentinel Syslog rows through the auditd binding
    (the record's text in SyslogMessage): every SigmaHQ auditd rule gives the executor's rows from the raw log, from
    the rows read back through the binding, and from its KQL on duckdb-kql over the rows."""
    import orjson

    from siemforge.backends.executor.shapes import record_to_row

    binding = builtin_bindings()[("linux.auditd", "Syslog")]
    logs = sorted(shared_path("data", "linux", "auditd").glob("*.log"))
    src = builtin_sources()["linux.auditd"]
    records = [r for f in logs for r in select_by_field(src.records, iter_events(f, lambda m: None))]
    rows = tmp_path / "syslog.ndjson"
    rows.write_bytes(b"".join(orjson.dumps(record_to_row(r, binding)) + b"\n" for r in records))
    # duckdb folds column names' case: the table's `Type` ("Syslog", which no rule reads) would clash with the
    # extended `type` that Kusto keeps apart
    table = dataclasses.replace(binding, schema={c: t for c, t in binding.schema.items() if c != "Type"})
    con = duck_table(table, records) if kql_engine.duckdb_kql is not None else None
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fired = same_kql = 0
    no_verdict: dict[str, str] = {}
    for f in discover_rules([shared_path("data", "sigma", "rules", "linux", "auditd")]):
        rule = compile_file(f).rule
        assert rule is not None
        raw = run_rule(rule, logs, now)
        back = run_rule(rule, [rows], now, binding=binding)
        ids = sorted(str(r.get("audit_id", "")) + str(r.get("type")) for r in raw.rows)
        assert sorted(str(r.get("type")) for r in back.rows) == sorted(str(r.get("type")) for r in raw.rows), f.name
        fired += raw.fired
        if con is None:
            continue
        try:
            got = kql_engine.run(con, compile_kql(rule, None), now)
        except (CompileError, kql_engine.duckdb_kql.KqlUnsupportedError) as exc:
            no_verdict[f.name] = str(exc)[:80]
            continue
        assert len(got) == len(ids), f.name
        same_kql += 1
    assert fired >= 1, "no auditd rule fires on the real logs: the comparison proves nothing"
    assert same_kql + len(no_verdict) == 53 and same_kql >= 40, no_verdict
