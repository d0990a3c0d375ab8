"""Windows sources on Splunk through the Splunk Add-on for Sysmon and the Splunk Add-on for Microsoft Windows
(sources/bindings/windows_*.splunk_*.yml, made by tools/gen_splunk_bindings.py): a table of rule → search per
binding, refusals naming the field, and the SigmaHQ Windows corpus: every search parses with grammars/spl.lark and
none leaves all of its positive conditions to `| where`."""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import lark
import pytest

from siemforge.backends.spl.lower import compile_spl, row_terms, splunk_binding
from siemforge.compiler.diagnostics import CompileError

from helpers import ROOT, compile_rule, corpus_spl, shared_path

HEAD = "title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\n"

# (logsource, detection, binding (None: the default), expected search)
ROWS: list[tuple[str, str, str | None, str]] = [
    # Sysmon 1 through the `sysmon` macro: the event id is a row term, Sysmon's names as the add-on extracts them
    ("{product: windows, category: process_creation}",
     "{sel: {Image|endswith: '\\\\whoami.exe', CommandLine|contains: ' /all'}, condition: sel}", None,
     '`sysmon` EventCode=1 Image="*\\\\whoami.exe" CommandLine="* /all*"'),
    # Security 4688 as process_creation: 4688's own names (NewProcessName for Image)
    ("{product: windows, category: process_creation}",
     "{sel: {Image|endswith: '\\\\whoami.exe'}, condition: sel}", "wineventlog",
     '`wineventlog_security` EventCode=4688 NewProcessName="*\\\\whoami.exe"'),
    # a registry category of three event ids: IN
    ("{product: windows, category: registry_event}",
     "{sel: {TargetObject|contains: '\\\\Run\\\\'}, condition: sel}", None,
     '`sysmon` EventCode IN (12, 13, 14) TargetObject="*\\\\Run\\\\*"'),
    # the Security channel: the rule's EventID is EventCode, a search term (not `where EventID==4656`)
    ("{product: windows, service: security}",
     "{sel: {EventID: 4656, ObjectName|endswith: '\\\\lsass.exe'}, filter: {ProcessName|endswith: '\\\\svchost.exe'},"
     " condition: sel and not filter}", None,
     '`wineventlog_security` EventCode=4656 ObjectName="*\\\\lsass.exe" NOT (ProcessName="*\\\\svchost.exe")'),
    # System: Provider_Name is an attribute of the XML event the add-on does not extract: spath reads it, its value is
    # a phrase of the raw event in the base search, the exact test in `where`
    ("{product: windows, service: system}",
     "{sel: {Provider_Name: 'Service Control Manager', EventID: 7045}, condition: sel}", None,
     '`wineventlog_system` "Service Control Manager" EventCode=7045\n'
     '| spath input=_raw output=siemforge_path1 path=Event.System.Provider{@Name}\n'
     '| where lower(siemforge_path1)=="service control manager"\n'
     '| fields - siemforge_path1'),
    # a channel with no ESCU macro: its XmlWinEventLog source; an untyped source's fields are the add-on's by name
    ("{product: windows, service: applocker}",
     "{sel: {EventID: 8004, PolicyName: EXE}, condition: sel}", None,
     '(source="XmlWinEventLog:Microsoft-Windows-AppLocker/MSI and Script" OR '
     'source="XmlWinEventLog:Microsoft-Windows-AppLocker/EXE and DLL" OR '
     'source="XmlWinEventLog:Microsoft-Windows-AppLocker/Packaged app-Deployment" OR '
     'source="XmlWinEventLog:Microsoft-Windows-AppLocker/Packaged app-Execution") EventCode=8004 PolicyName="EXE"'),
    # a keyword: its longest word as a wildcard term narrows the index read; the regex stays in `where`
    ("{product: windows, service: application}",
     "{keywords: ['Install-TransportAgent'], condition: keywords}", None,
     'source="XmlWinEventLog:Application" "*TransportAgent*"\n'
     '| where match(_raw, "(?i).*Install\\\\-TransportAgent.*")'),
    # classic PowerShell's unnamed <Data>: no add-on field (it extracts <Data Name='…'> only), so rex reads them from
    # the raw XML, joined by newlines as the executor joins them, XML escapes undone; the value's longest word is a
    # base-search term
    ("{product: windows, category: ps_classic_start}",
     "{sel: {Data|contains: 'HostApplication=powershell -enc'}, condition: sel}", None,
     'source="XmlWinEventLog:Windows PowerShell" EventCode=400 "*HostApplication*"\n'
     '| rex field=_raw max_match=0 "<Data>(?<siemforge_data1>[^<]*)</Data>"\n'
     '| eval siemforge_data1=replace(replace(replace(replace(replace(replace(replace(replace('
     'mvjoin(siemforge_data1, urldecode("%0A")), "&lt;", "<"), "&gt;", ">"), "&quot;", "\\""), "&apos;", "\'"), '
     '"&#xD;", urldecode("%0D")), "&#xA;", urldecode("%0A")), "&#x9;", urldecode("%09")), "&amp;", "&")\n'
     '| where match(siemforge_data1, "(?i)HostApplication=powershell\\\\ \\\\-enc")\n'
     '| fields - siemforge_data1'),
    # a field Sysmon 11 never carries (CommandLine, ParentImage) is null on every row of file_event, as in the
    # executor: the add-on's field of that name, absent from the event, keeps that meaning (the test is false, its
    # negation true)
    ("{product: windows, category: file_event}",
     "{sel: {TargetFilename|endswith: '.ps1', CommandLine|contains: x}, filter: {ParentImage|endswith: "
     "'\\\\svchost.exe'}, condition: sel and not filter}", None,
     '`sysmon` EventCode=11 TargetFilename="*.ps1" CommandLine="*x*" NOT (ParentImage="*\\\\svchost.exe")'),
]


@lru_cache(maxsize=1)
def parser() -> lark.Lark:
    return lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")


@pytest.mark.parametrize("row", ROWS, ids=[f"{i}" for i in range(len(ROWS))])
def test_windows_rule_to_search(row: tuple[str, str, str | None, str], tmp_path: Path) -> None:
    logsource, detection, binding, expected = row
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    spl = compile_spl(rule, binding)
    assert spl == expected
    parser().parse(spl)


@pytest.mark.parametrize("logsource, detection, field", [
    # TimeCreated: the add-on has no field of that name (rules read _time)
    ("{product: windows, service: application}", "{sel: {TimeCreated|contains: x}, condition: sel}", "TimeCreated"),
    # 4688 carries its process ids as hex text: the source's numeric ProcessId has no field on that binding
    ("{product: windows, category: process_creation}", "{sel: {ProcessId: 4}, condition: sel}", "ProcessId"),
    # a Sysmon 1 field 4688 does not carry
    ("{product: windows, category: process_creation}", "{sel: {OriginalFileName: x.exe}, condition: sel}",
     "OriginalFileName"),
])
def test_a_field_the_add_on_does_not_have_is_refused_by_name(logsource: str, detection: str, field: str,
                                                            tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    binding = "wineventlog"
    with pytest.raises(CompileError, match=f"field '{field}' has no Splunk field in binding '{binding}'"):
        compile_spl(rule, binding)


def test_generated_bindings_are_up_to_date(tmp_path: Path) -> None:
    """sources/bindings/windows_*.splunk_*.yml are what tools/gen_splunk_bindings.py writes."""
    (tmp_path / "sources" / "bindings").mkdir(parents=True)
    for p in (ROOT / "sources").glob("windows_*.yml"):
        (tmp_path / "sources" / p.name).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_splunk_bindings.py")], check=True, cwd=tmp_path)
    made = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "sources" / "bindings").glob("*.yml")}
    have = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "sources" / "bindings").glob("windows_*.splunk_*.yml")}
    assert made == have and len(made) > 70


def rule_terms(spl: str, prefix: str, rows: list[str]) -> str:
    """The base search's own terms: its first line without the binding's source prefix and row terms."""
    rest = spl.split("\n")[0].removeprefix(prefix).strip()
    for t in rows:
        rest = rest.removeprefix(t).strip()
    return rest


@pytest.mark.slow  # the SigmaHQ Windows corpus, every search parsed (~1 min)
def test_sigma_windows_corpus_on_the_add_on_bindings() -> None:
    """Every SigmaHQ Windows rule either compiles on its add-on binding, to a search that parses, or is refused with
    a reason; and no search leaves all of its positive conditions to `| where`: its base search has a positive
    term besides the source type (the binding's event-id rows or the rule's own terms)."""
    compiled = refused = 0
    only_after_pipe = []
    for f, rule, spl in corpus_spl(shared_path("data", "sigma", "rules", "windows"), parser().parse):
        if spl is None:
            refused += 1
            continue
        compiled += 1
        binding = splunk_binding(rule, None)
        if binding is None:
            continue  # an ETW provider's source (file_access, file_rename): no add-on source type, names as written
        rows = row_terms(binding)
        own = rule_terms(spl, str(binding.extra["search"]), rows)
        has_where = "\n| where " in spl
        if has_where and not rows and (not own or own.startswith("NOT ")):
            only_after_pipe.append(f.name)
    assert not only_after_pipe, only_after_pipe
    assert compiled >= 2400 and refused <= 7, (compiled, refused)


# ---------------------------------------------------------------------------------------------- CIM Endpoint (tstats)
TSTATS = ('| tstats summariesonly=false allow_old_summaries=true fillnull_value="__siemforge_null__" count AS count '
          'min(_time) AS firstTime max(_time) AS lastTime from datamodel=')
PROCESSES_BY = ["Processes.dest", "Processes.user", "Processes.parent_process", "Processes.process_name",
                "Processes.process", "Processes.process_id", "Processes.parent_process_id"]
REGISTRY_BY = ["Registry.dest", "Registry.registry_path", "Registry.process_id", "Registry.process_guid"]
FILESYSTEM_BY = ["Filesystem.dest", "Filesystem.file_path", "Filesystem.process_id", "Filesystem.process_guid"]
DETAILS_BY = [*REGISTRY_BY, "Registry.registry_value_data", "Registry.registry_value_type"]
# Sysmon's Details again from the add-on's two registry fields (decision 33)
DETAILS = ("if(isnull('Registry.registry_value_type'), 'Registry.registry_value_data', "
           "substr('Registry.registry_value_type', 5).\" (\".'Registry.registry_value_data'.\")\")")
TRAFFIC_BY = ["All_Traffic.dvc", "All_Traffic.src_ip", "All_Traffic.src_port", "All_Traffic.dest_ip",
              "All_Traffic.dest_port", "All_Traffic.process_guid", "All_Traffic.direction"]
HOST_BY = [*TRAFFIC_BY[:-1], "All_Traffic.dest"]
DEST_HOST = "if('All_Traffic.dest'=='All_Traffic.dest_ip' OR 'All_Traffic.dest'==\"unknown\", null(), 'All_Traffic.dest')"
INITIATED = "case('All_Traffic.direction'==\"outbound\", \"true\", 'All_Traffic.direction'==\"inbound\", \"false\")"


def null_restored(keys: list[str]) -> str:
    """The eval after tstats that makes the fill value of a missing field null again."""
    return "| eval " + ", ".join(f"'{k}'=if('{k}'==\"__siemforge_null__\", null(), '{k}')" for k in keys)


# (logsource, detection, expected search on --binding cim)
CIM_ROWS: list[tuple[str, str, str]] = [
    # what tstats says exactly is in its where; a regex is a where over the grouped fields (each holds an event's own
    # value), after the fill value is null again
    ("{product: windows, category: process_creation}",
     "{sel: {Image|endswith: '\\\\whoami.exe', CommandLine|re: '/(groups|priv)'}, condition: sel}",
     TSTATS + 'Endpoint.Processes where Processes.process_path="*\\\\whoami.exe" by ' + " ".join(PROCESSES_BY) + "\n"
     + null_restored(PROCESSES_BY) + "\n"
     "| where match('Processes.process', \"/(groups|priv)\")"),
    # a regex alone: its required literal text is a where term of tstats (a prefilter)
    ("{product: windows, category: process_creation}",
     "{sel: {CommandLine|re: 'ipconfig\\s+/all'}, condition: sel}",
     TSTATS + 'Endpoint.Processes where Processes.process="*ipconfig*" by ' + " ".join(PROCESSES_BY) + "\n"
     + null_restored(PROCESSES_BY) + "\n"
     "| where match('Processes.process', \"ipconfig\\\\s+/all\")"),
    # registry_set: the add-on's action for Sysmon 13 picks the source's rows of Endpoint.Registry
    ("{product: windows, category: registry_set}",
     "{sel: {TargetObject|contains: '\\\\CurrentVersion\\\\Run\\\\'}, condition: sel}",
     TSTATS + 'Endpoint.Registry where Registry.action="modified" Registry.registry_path="*\\\\CurrentVersion\\\\Run\\\\*"'
     " by " + " ".join(REGISTRY_BY) + "\n" + null_restored(REGISTRY_BY)),
    # file_delete: the add-on's action for Sysmon 23 and 26 picks the source's rows of Endpoint.Filesystem
    ("{product: windows, category: file_delete}",
     "{sel: {TargetFilename|endswith: '.evtx'}, condition: sel}",
     TSTATS + 'Endpoint.Filesystem where Filesystem.action="deleted" Filesystem.file_path="*.evtx" by '
     + " ".join(FILESYSTEM_BY) + "\n" + null_restored(FILESYSTEM_BY)),
    # Details (decision 33): the add-on splits `DWORD (0x00000001)` into registry_value_type REG_DWORD and
    # registry_value_data 0x00000001; the where joins them again and tests Sysmon's text; the data is a prefilter
    ("{product: windows, category: registry_set}",
     "{sel: {TargetObject|endswith: '\\\\LocalAccountTokenFilterPolicy', Details: 'DWORD (0x00000001)'},"
     " condition: sel}",
     TSTATS + 'Endpoint.Registry where Registry.action="modified" Registry.registry_path="*\\\\LocalAccountTokenFilterPolicy"'
     ' Registry.registry_value_data="0x00000001" by ' + " ".join(DETAILS_BY) + "\n" + null_restored(DETAILS_BY) + "\n"
     + "| where lower(" + DETAILS + ')=="dword (0x00000001)"'),
    # text with no `W (…)` form is registry_value_data as it is (no type); a substring test reads the joined text too
    ("{product: windows, category: registry_set}",
     "{sel: {TargetObject|contains: '\\\\Run\\\\', Details|contains: '\\\\AppData\\\\'}, condition: sel}",
     TSTATS + 'Endpoint.Registry where Registry.action="modified" Registry.registry_path="*\\\\Run\\\\*" by '
     + " ".join(DETAILS_BY) + "\n" + null_restored(DETAILS_BY) + "\n"
     + "| where match(" + DETAILS + ', "(?i)\\\\\\\\AppData\\\\\\\\")'),
    # an ending the split cuts through (`1)`: the data's last character and the closing parenthesis) is exact too
    ("{product: windows, category: registry_event}",
     "{sel: {Details|endswith: '1)'}, condition: sel}",
     TSTATS + "Endpoint.Registry by " + " ".join(DETAILS_BY) + "\n" + null_restored(DETAILS_BY) + "\n"
     + "| where match(" + DETAILS + ', "(?i)1\\\\)\\\\z")'),
    # Sysmon 3 (decision 34): Network_Traffic's rows of the Sysmon source; app = Image; Initiated is direction
    # renamed (outbound = true), its equality an exact tstats term too
    ("{product: windows, category: network_connection}",
     "{sel: {Image|endswith: '\\\\rundll32.exe', Initiated: 'true', DestinationPort: 443}, condition: sel}",
     TSTATS + 'Network_Traffic.All_Traffic where source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"'
     ' All_Traffic.app="*\\\\rundll32.exe" All_Traffic.direction="outbound" All_Traffic.dest_port=443 by '
     + " ".join(TRAFFIC_BY) + "\n" + null_restored(TRAFFIC_BY) + "\n"
     + "| where lower(" + INITIATED + ')=="true"'),
    # DestinationHostname (decision 34): `dest` where it is not `dest_ip` (the address stands in for a missing name);
    # a test false of a missing name and of `-` is exact, a match also a tstats term on `dest`
    ("{product: windows, category: network_connection}",
     "{sel: {DestinationHostname|endswith: '.ngrok.io'}, filter: {DestinationHostname|contains: good},"
     " condition: sel and not filter}",
     TSTATS + 'Network_Traffic.All_Traffic where source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"'
     ' All_Traffic.dest="*.ngrok.io" by ' + " ".join(HOST_BY) + "\n" + null_restored(HOST_BY) + "\n"
     + "| where match(" + DEST_HOST + ', "(?i)\\\\.ngrok\\\\.io\\\\z") AND if(match(' + DEST_HOST
     + ', "(?i)good"), 0, 1)==1'),
    # Sysmon 22 (decision 35): Network_Resolution's DNS rows of the Sysmon source; query = QueryName
    ("{product: windows, category: dns_query}",
     "{sel: {QueryName|endswith: '.ngrok.io'}, condition: sel}",
     TSTATS + 'Network_Resolution.DNS where source="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"'
     ' DNS.query="*.ngrok.io" by DNS.src DNS.query\n' + null_restored(["DNS.src", "DNS.query"])),
]


@pytest.mark.parametrize("row", CIM_ROWS, ids=[f"{i}" for i in range(len(CIM_ROWS))])
def test_windows_rule_to_cim_search(row: tuple[str, str, str], tmp_path: Path) -> None:
    logsource, detection, expected = row
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    spl = compile_spl(rule, "cim")
    assert spl == expected
    parser().parse(spl)


@pytest.mark.parametrize("logsource, detection, field", [
    # the add-on keeps only the user name after DOMAIN\ in Processes.user: not Sysmon's User
    ("{product: windows, category: process_creation}", "{sel: {User|contains: AUTHORI}, condition: sel}", "User"),
    # no model field
    ("{product: windows, category: process_creation}", "{sel: {Description: x}, condition: sel}", "Description"),
    # the add-on's `user` on Sysmon 3 is the name without its domain too
    ("{product: windows, category: network_connection}", "{sel: {User|contains: AUTHORI}, condition: sel}", "User"),
    # Network_Resolution's DNS dataset has no process field
    ("{product: windows, category: dns_query}", "{sel: {Image|endswith: '\\\\x.exe'}, condition: sel}", "Image"),
    # the add-on's `answer` is QueryResults split at `;`, its `type: N` prefixes taken off: not QueryResults
    ("{product: windows, category: dns_query}", "{sel: {QueryResults|contains: '1.2.3.4'}, condition: sel}",
     "QueryResults"),
])
def test_a_field_with_no_cim_field_of_its_value_is_refused_by_name(logsource: str, detection: str, field: str,
                                                                  tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {logsource}\ndetection: {detection}\n")
    with pytest.raises(CompileError, match=f"field '{field}' has no Splunk field in binding 'cim'"):
        compile_spl(rule, "cim")


@pytest.mark.parametrize("detection", [
    "{sel: {Image|endswith: x.exe}, filter: {DestinationHostname: null}, condition: sel and not filter}",
    "{sel: {DestinationHostname|contains: '-'}, condition: sel}",  # true of Sysmon's `-`
    "{sel: {DestinationHostname|re: '.*'}, condition: sel}",
    "{sel: {DestinationHostname: unknown}, condition: sel}",  # the model's fill for an empty name
    "{sel: {DestinationHostname|fieldref: SourceHostname}, condition: sel}",  # two fields: not decided here
])
def test_a_host_name_test_true_of_a_missing_name_is_refused(detection: str, tmp_path: Path) -> None:
    """Decision 34: Network_Traffic's `dest` is the address where Sysmon wrote no host name or `-`; a test true of
    either (as the executor decides it) has no exact form over the model."""
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {{product: windows, category: network_connection}}\n"
                                  f"detection: {detection}\n")
    with pytest.raises(CompileError, match="field '(Destination|Source)Hostname': the data model shows '-' and '' and "
                                           "'unknown' and a missing value alike"):
        compile_spl(rule, "cim")


@pytest.mark.parametrize("category, detection", [
    ("file_delete", "{sel: {TargetFilename|endswith: ':Zone.Identifier'}, condition: sel}"),
    ("file_event", "{sel: {TargetFilename|contains: ['.docm:Zone', '.exe']}, condition: sel}"),
    ("file_event", "{sel: {TargetFilename|re: 'x\\.vhd:Zone'}, condition: sel}"),
])
def test_a_test_of_a_stream_name_is_refused_on_filesystem(category: str, detection: str, tmp_path: Path) -> None:
    """The Sysmon add-on's file_path is TargetFilename without an alternate data stream's `:name`
    (EVAL-file_path = replace(TargetFilename, "(:[\\w\\. ]+)", "")): a test of that text could never hold there."""
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {{product: windows, category: {category}}}\n"
                                  f"detection: {detection}\n")
    with pytest.raises(CompileError, match="field 'TargetFilename': the data model's value has every"):
        compile_spl(rule, "cim")


def test_a_drive_or_an_escaped_backslash_is_no_stream_name(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {{product: windows, category: file_event}}\n"
                                  "detection: {sel: {TargetFilename|re: 'C:\\\\__1\\d{9}'}, "
                                  "filter: {TargetFilename|startswith: 'C:\\Windows\\'}, condition: sel and not filter}\n")
    assert compile_spl(rule, "cim").startswith("| tstats ")


def test_a_keyword_is_refused_over_a_data_model(tmp_path: Path) -> None:
    rule = compile_rule(tmp_path, f"{HEAD}logsource: {{product: windows, category: process_creation}}\n"
                                  "detection: {sel: {Image|endswith: x.exe}, kw: [mimikatz], condition: sel and kw}\n")
    with pytest.raises(CompileError, match="a data model holds no raw events"):
        compile_spl(rule, "cim")


@pytest.mark.parametrize("pattern, text", [
    ("ipconfig\\s+/all", "ipconfig"),  # a class ends a run
    ("(?i)\\.exe[\"']?\\s+[^\"]{0,64}werfaultsecure\\.exe", "werfaultsecure.exe"),  # leading flags; escapes
    ("abc?d", "ab"),  # c may be absent
    ("x{0,2}yz", "yz"),
    ("ab[^]]cdef", "cdef"),  # a class may hold `]`
    ("a|bcdef", None),  # alternation: nothing is required
    ("(ab)cd", None),  # a group: not read
])
def test_a_regex_s_required_text(pattern: str, text: str | None) -> None:
    from siemforge.backends.spl.search import required_text

    assert required_text(pattern) == text


@pytest.mark.slow  # the SigmaHQ Windows corpus on the cim binding, every search parsed
def test_sigma_windows_corpus_on_the_cim_binding() -> None:
    """Every SigmaHQ Windows rule either compiles on --binding cim to a search that parses, or is refused with a
    reason naming the field or the source."""
    from siemforge.compiler.api import compile_file, discover_rules

    compiled = 0
    for f in discover_rules([shared_path("data", "sigma", "rules", "windows")]):
        rule = compile_file(f).rule
        assert rule is not None, f
        try:
            spl = compile_spl(rule, "cim")
        except CompileError as exc:
            assert "field '" in exc.diagnostics[0].message or "binding" in exc.diagnostics[0].message, f
            continue
        assert spl.startswith("| tstats "), f
        parser().parse(spl)
        compiled += 1
    assert compiled >= 1534, compiled


@pytest.mark.parametrize("details, data, kind, back", [
    ("DWORD (0x00000001)", "0x00000001", "REG_DWORD", "DWORD (0x00000001)"),
    ("QWORD (0x01d776fd-0xd724b8c5)", "0x01d776fd-0xd724b8c5", "REG_QWORD", "QWORD (0x01d776fd-0xd724b8c5)"),
    ("Binary Data", "Binary Data", None, "Binary Data"),  # no parentheses: the text as it is, no type
    ("C:\\Program Files (x86)\\a.exe", "C:\\Program Files (x86)\\a.exe", None, "C:\\Program Files (x86)\\a.exe"),
    ("(Empty)", "(Empty)", None, "(Empty)"),  # no word before the parenthesis
    ("Update (KB5001)", "KB5001", "REG_Update", "Update (KB5001)"),  # text of that form is split too, joined back
    ("foo\t(bar)", "bar", "REG_foo", "foo (bar)"),  # the one loss: `\s` takes any white space, joined as a space
])
def test_details_is_split_as_the_add_on_splits_it_and_joined_back(details: str, data: str, kind: str | None,
                                                                   back: str) -> None:
    """Decision 33: the Splunk Add-on for Sysmon's transforms (sysmon-registryvaluedata / -type) and props
    (EVAL-registry_value_data / -type) as the binding's `computed:` Details reads them; the SPL expression joins them
    as computed_value does."""
    from siemforge.backends.executor.shapes import computed_columns, computed_value
    from siemforge.compiler.bindings import builtin_bindings, computed

    spec = computed(builtin_bindings()[("windows.registry_set", "cim")])["Details"]
    row = computed_columns(spec, details, {})
    assert (row.get("Registry.registry_value_data"), row.get("Registry.registry_value_type")) == (data, kind)
    assert computed_value(spec, row) == back


def test_every_real_details_value_is_joined_back_exactly() -> None:
    """Decision 33 on real events: every Details of a Sysmon 13 event in ../shared/data/windows (SigmaHQ's
    regression data, the OTRF datasets, the baseline), split as the add-on splits it, is joined back to itself."""
    from siemforge.backends.executor.reader import iter_events
    from siemforge.backends.executor.shapes import computed_columns, computed_value
    from siemforge.compiler.bindings import builtin_bindings, computed

    spec = computed(builtin_bindings()[("windows.registry_set", "cim")])["Details"]
    root = shared_path("data", "windows")
    seen = typed = 0
    for f in sorted(root.rglob("*")):
        if f.suffix.lower() not in (".evtx", ".json") or "evtx-attack-samples" in f.parts:
            continue
        for rec in iter_events(f, lambda m: None):
            if rec.get("EventID") != 13 or rec.get("Details") is None:
                continue
            details = str(rec["Details"])
            row = computed_columns(spec, details, rec)
            assert computed_value(spec, row) == details, (f, details, row)
            seen += 1
            typed += "Registry.registry_value_type" in row
    assert seen >= 50 and typed >= 25, (seen, typed)
