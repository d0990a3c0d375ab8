"""Rule files from people you don't trust (issue 10): each hostile file is a clear, positioned error from the
`siemforge` command, within bounded memory and time (the child runs under an address-space limit and a timeout,
both generous so the test is stable; benchmarks/hostile_rules.py measures the real time and peak memory)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from siemforge.compiler import limits
from siemforge.compiler.api import compile_file, rule_root

from helpers import ROOT

CMD = [sys.executable, "-m", "siemforge.cli.main"]
MEMORY_BOUND = 300 << 20  # address space of the child, so its RSS stays under 300 MB too (past it: MemoryError)
TIME_BOUND = 60  # seconds; a hang is a failure, not a slow pass


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))


def sf(*args: str, cwd: Path = ROOT, columns: int = 400) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS=str(columns), NO_COLOR="1")
    return subprocess.run([*CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=TIME_BOUND,
                          preexec_fn=_limit_memory, env=env)


HEAD = "title: hostile\nlogsource: {product: aws, service: cloudtrail}\n"


def alias_bomb() -> str:
    """15 lines: nine aliases per level, ten levels: 9**10 (3.5 billion) values once expanded."""
    lines = [HEAD.rstrip("\n"), 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    lines += ["detection:", "  selection: {eventName: *a9}", "  condition: selection"]
    return "\n".join(lines) + "\n"


def nested_detection(levels: int) -> str:
    body = "".join("  " * (i + 2) + f"k{i}:\n" for i in range(levels))
    return HEAD + "detection:\n  sel:\n" + body + "  " * (levels + 2) + "v\n  condition: sel\n"


def refused(r: subprocess.CompletedProcess[str], where: str, message: str) -> None:
    """A positioned error with the source line and a caret, exit 1, no traceback."""
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    first = r.stderr.splitlines()[0]
    position, _, rest = first.partition(": error: ")
    assert position.startswith(where) and message in rest, r.stderr[:2000]  # `where`: file:line:column or a prefix
    assert "^" in r.stderr.splitlines()[2]


def test_the_alias_bomb_is_refused_at_its_first_anchor(tmp_path: Path) -> None:
    rule = tmp_path / "bomb.yml"
    rule.write_text(alias_bomb())
    assert len(rule.read_text().splitlines()) == 15
    r = sf("ir", str(rule))
    refused(r, f"{rule}:3:5", "YAML anchor &a0: anchors and aliases are not allowed in rules")


@pytest.mark.parametrize("text, where, message", [
    ("a: &x 1\nb: 2\n", (1, 4), "YAML anchor &x"),
    ('detection:\n  sel: {eventName: "a&b"}\n  condition: sel\nx: [&y 1, *y]\n', (4, 5), "YAML anchor &y"),
    ("detection:\n  base: {eventName: a}\n  sel:\n    <<: {eventName: b}\n  condition: sel\n", (4, 5),
     "YAML merge keys (<<) are not supported"),
])
def test_anchors_aliases_and_merge_keys_are_positioned_errors(tmp_path: Path, text: str, where: tuple[int, int],
                                                             message: str) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(HEAD + text)
    r = compile_file(rule)
    assert r.rule is None
    d = r.diagnostics[0]
    assert message in d.message and d.span is not None
    assert (d.span.line - 2, d.span.column) == where  # HEAD is two lines


def test_an_ampersand_in_a_value_is_not_an_anchor(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(HEAD + "detection:\n  sel: {eventName: 'a & b', userAgent: '*&&*'}\n  condition: sel\n")
    assert compile_file(rule).rule is not None


def test_a_10_mb_rule_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    rule = tmp_path / "big.yml"
    rule.write_text(HEAD + "description: |\n" + ("  " + "x" * 98 + "\n") * 100_000)
    assert rule.stat().st_size > 10_000_000
    r = sf("ir", str(rule))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{rule}:1:1: error: a rule file has at most {limits.MAX_RULE_BYTES:,} bytes")


def test_a_1000_level_nested_detection_is_a_positioned_error(tmp_path: Path) -> None:
    rule = tmp_path / "deep.yml"
    rule.write_text(nested_detection(1000))
    r = sf("ir", str(rule))
    assert r.returncode == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[:3000]
    assert r.stderr.startswith(f"{rule}:") and "nesting depth" in r.stderr.splitlines()[0]


def test_yaml_deeper_than_the_limit_is_refused_where_it_passes_the_limit(tmp_path: Path) -> None:
    rule = tmp_path / "deep.yml"
    rule.write_text(nested_detection(100))
    r = sf("ir", str(rule))
    # detection (level 2) > sel (3) > k0 (4) …: the mapping at depth 65 is the value of k61, on line 3 + 63
    refused(r, f"{rule}:67:{2 * 64 + 1}", f"YAML nested deeper than {limits.MAX_YAML_DEPTH} levels")


def test_a_huge_pattern_is_refused(tmp_path: Path) -> None:
    rule = tmp_path / "pattern.yml"
    rule.write_text(HEAD + "detection:\n  sel:\n    userAgent|re: '" + "(a+)+" * 20_000 + "'\n  condition: sel\n")
    r = sf("ir", str(rule))
    refused(r, f"{rule}:5:19", f"a text value of 100,000 characters (at most {limits.MAX_TEXT_CHARS:,})")
    rule.write_text(HEAD + "detection:\n  sel:\n    userAgent|contains: '" + "a" * 20_000 + "'\n  condition: sel\n")
    r = sf("ir", str(rule))
    refused(r, f"{rule}:5:25", f"a detection value has at most {limits.MAX_PATTERN_CHARS:,} characters")


def test_too_many_detection_values_are_refused(tmp_path: Path) -> None:
    rule = tmp_path / "many.yml"
    n = limits.MAX_DETECTION_VALUES + 1
    rule.write_text(HEAD + "detection:\n  sel:\n    eventName:\n" + "".join(f"      - v{i}\n" for i in range(n))
                    + "  condition: sel\n")
    r = sf("ir", str(rule))
    refused(r, f"{rule}:{6 + limits.MAX_DETECTION_VALUES}:9",
            f"a Sigma detection holds at most {limits.MAX_DETECTION_VALUES:,} values")


@pytest.mark.parametrize("condition, message", [
    ("(" * 40 + "sel" + ")" * 40, f"nests at most {limits.MAX_CONDITION_DEPTH} levels"),
    (" or ".join(["sel"] * 1200), f"at most {limits.MAX_CONDITION_CHARS:,} characters"),
])
def test_sigma_conditions_are_bounded(tmp_path: Path, condition: str, message: str) -> None:
    rule = tmp_path / "cond.yml"
    rule.write_text(HEAD + f"detection:\n  sel: {{eventName: x}}\n  condition: {condition}\n")
    r = compile_file(rule)
    assert r.rule is None and message in r.diagnostics[0].message
    assert r.diagnostics[0].span is not None and r.diagnostics[0].span.line == 5


def test_a_1000_deep_parenthesised_query_is_a_positioned_error(tmp_path: Path) -> None:
    rule = tmp_path / "paren.yml"
    rule.write_text(HEAD + "query: |\n  where " + "(" * 1000 + 'eventName == "a"' + ")" * 1000 + "\n")
    r = sf("ir", str(rule))
    refused(r, f"{rule}:4:{9 + limits.MAX_QUERY_DEPTH}",  # the first bracket past the limit
            f"brackets nested more than {limits.MAX_QUERY_DEPTH} levels deep")


def test_a_long_operator_chain_is_bounded_but_a_long_list_is_fine(tmp_path: Path) -> None:
    rule = tmp_path / "chain.yml"
    rule.write_text(HEAD + "query: |\n  where " + " or ".join(f'eventName == "e{i}"' for i in range(2000)) + "\n")
    r = sf("ir", str(rule))
    refused(r, f"{rule}:4:", "an expression nested more than")
    values = ", ".join(f'"e{i}"' for i in range(2000))
    rule.write_text(HEAD + f"query: |\n  where eventName in ({values}) or eventName == \"x\"\n")
    assert compile_file(rule).rule is not None


def test_queries_up_to_the_depth_limit_compile_for_every_target(tmp_path: Path) -> None:
    rule = tmp_path / "deep_ok.yml"
    n = limits.MAX_QUERY_DEPTH - 8
    rule.write_text(HEAD + "query: |\n  where " + " or ".join(f'eventName == "e{i}"' for i in range(n))
                    + "\n  | extend z = " + " + ".join(["1"] * n) + "\n")
    r = sf("compile", str(rule), "--target", "all")
    assert r.returncode == 0, r.stderr[-3000:]


# ---------------------------------------------------------------------------------------------- paths a rule names
STEAL = HEAD + "lookups:\n  stolen: {file: %s}\ndetection:\n  sel: {eventName: x}\n  condition: sel\n"


def test_a_lookup_outside_the_rules_folder_is_refused_and_never_exported(tmp_path: Path) -> None:
    rules = tmp_path / "rules" / "r"
    rules.mkdir(parents=True)
    rule = rules / "steal.yml"
    rule.write_text(STEAL % "/etc/passwd")
    out = tmp_path / "app"
    r = sf("export", "splunk-app", str(tmp_path / "rules"), "-o", str(out))
    assert r.returncode == 1, r.stdout + r.stderr
    root = (tmp_path / "rules").resolve()
    assert r.stderr.startswith(f"{rule}:4:18: error: lookup 'stolen': file '/etc/passwd' is outside the folder of "
                               f"rules {root}"), r.stderr
    assert not any("passwd" in p.name or "stolen" in p.name for p in out.rglob("*"))
    assert all("root:x:0:0" not in p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_a_lookup_reaching_out_through_a_symlink_or_dotdot_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "keys.csv").write_text("k,v\nsecret,1\n")
    rules = tmp_path / "rules"
    (rules / "r").mkdir(parents=True)
    (rules / "r" / "link").symlink_to(outside)
    rule = rules / "r" / "steal.yml"
    for named in ("link/keys.csv", "../../secret/keys.csv"):
        rule.write_text(STEAL % named)
        r = sf("compile", str(rules), "--target", "splunk")
        assert r.returncode == 1
        assert r.stderr.startswith(f"{rule}:4:18: error: lookup 'stolen': file '{named}' (that is "
                                   f"{(outside / 'keys.csv').resolve()}) is outside the folder of rules "
                                   f"{rules.resolve()}"), r.stderr


def test_test_logs_and_baselines_outside_are_refused(tmp_path: Path) -> None:
    rule = tmp_path / "rules" / "r.yml"
    rule.parent.mkdir()
    (tmp_path / "outside.ndjson").write_text('{"eventName": "x"}\n')
    rule.write_text(HEAD + "detection:\n  sel: {eventName: x}\n  condition: sel\ntests:\n"
                    "  - name: t\n    logs: ../outside.ndjson\n    expect: fires\n")
    r = sf("test", str(tmp_path / "rules"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{rule}:8:11: error: test 't': logs '../outside.ndjson'")


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _huge(p: Path) -> None:
    with p.open("wb") as fh:  # sparse: no disk used, but reading it would take minutes
        fh.write(b"image,seen\n")
        fh.truncate(limits.MAX_LOOKUP_BYTES + 1)


NOT_A_FILE = [  # what a rule names (inside the folder of rules) -> how `siemforge test` refuses it, without hanging
    ("lookup", _fifo, "4:18", "lookup 'stolen': file 'named' is not a regular file (a FIFO)"),
    ("lookup", Path.mkdir, "4:18", "lookup 'stolen': file 'named' is not a regular file (a directory)"),
    ("lookup", _huge, "4:11", f"lookup 'stolen' has more than {limits.MAX_LOOKUP_BYTES:,} bytes"),
    ("logs", _fifo, "8:11", "test 't': logs 'named' is not a regular file (a FIFO)"),
    ("logs", Path.mkdir, "8:11", "test 't': logs 'named' is not a regular file (a directory)"),
    ("override", _huge, "12:23", f"test 't': lookup 'stolen' has more than {limits.MAX_LOOKUP_BYTES:,} bytes"),
    ("override", _fifo, "12:23", "test 't': lookup 'stolen' 'named' is not a regular file (a FIFO)"),
]


@pytest.mark.parametrize("key, make, where, message", NOT_A_FILE)
def test_a_named_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, key: str, make: Any, where: str,
                                                            message: str) -> None:
    rule = tmp_path / "rules" / "r.yml"
    rule.parent.mkdir()
    make(tmp_path / "rules" / "named")
    tests = "tests:\n  - name: t\n    logs: %s\n    expect: silent\n"
    rule.write_text(STEAL % "named" + tests % "x.ndjson" if key == "lookup" else
                    STEAL % "t.csv" + tests % "x.ndjson" + "    lookups: {stolen: named}\n" if key == "override" else
                    HEAD + "detection:\n  sel: {eventName: x}\n  condition: sel\n" + tests % "named")
    (tmp_path / "rules" / "x.ndjson").write_text('{"eventName": "y"}\n')
    (tmp_path / "rules" / "t.csv").write_text("image,seen\n")
    r = sf("test", str(tmp_path / "rules"))
    refused(r, f"{rule}:{where}", message)
    assert "PASS" not in r.stdout


LOOKUP_NAMES = [  # a lookup table name a rule chooses: it becomes a conf stanza, a file name, a watchlist alias
    '"x\\n[evil]\\nfilename = /etc/passwd"',
    '"../../../pwn"',
    '"a b"',
    '"[red]x"',
    "1st",
]


@pytest.mark.parametrize("name", LOOKUP_NAMES)
def test_a_lookup_name_is_an_identifier(tmp_path: Path, name: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.csv").write_text("a,b\n1,2\n")
    rule = rules / "r.yml"
    rule.write_text(HEAD + f"lookups:\n  {name}: {{file: t.csv}}\ndetection:\n  sel: {{eventName: x}}\n"
                           "  condition: sel\n")
    out = tmp_path / "app"
    r = sf("export", "splunk-app", str(rules), "-o", str(out))
    refused(r, f"{rule}:4:3", "a lookup table name is a letter or _ then letters, digits or _")
    assert not out.exists() or not any(p.name.endswith(".csv") or p.name == "transforms.conf" for p in out.rglob("*"))


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_a_cached_rule_whose_lookup_became_a_device_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              target: str) -> None:
    # a CI cache kept between runs: the next pull request swaps the lookup for a symlink to /dev/zero (or to a
    # FIFO); the cache's check that the lookup is unchanged read it whole (out of memory) or waited forever
    monkeypatch.setenv("SIEMFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SIEMFORGE_NO_CACHE", raising=False)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.csv").write_text("a,b\n1,2\n")
    rule = rules / "r.yml"
    rule.write_text(STEAL % "t.csv")
    assert sf("compile", str(rules), "--target", "splunk").returncode == 0
    assert list((tmp_path / "cache").rglob("*.pickle"))
    (rules / "t.csv").unlink()
    if target == "fifo":
        os.mkfifo(tmp_path / "fifo")
        target = str(tmp_path / "fifo")
    (rules / "t.csv").symlink_to(target)
    r = sf("compile", str(rules), "--target", "splunk")
    refused(r, f"{rule}:4:18", "lookup 'stolen': file 't.csv'")


RAW_ESCAPES = [  # a regex RE2 refuses, holding ESC sequences -> the command, where and what it reports
    ('detection:\n  sel:\n    userAgent|re: "(?=a)\\e[31mRED\\e]8;;http://evil\\e\\\\x"\n  condition: sel\n',
     ["ir"], "4:3", "Regular expression '(?=a)\\x1b[31mRED"),
    ('query: |\n  where userAgent matches regex "(?=a)\\u001b\\\\[31mRED"\n',
     ["compile", "--target", "sentinel"], "4:9", "KQL runs RE2, which cannot run the regex '(?=a)\\x1b"),
]


@pytest.mark.parametrize("body, command, where, message", RAW_ESCAPES)
def test_a_refused_regex_cannot_write_raw_escapes(tmp_path: Path, body: str, command: list[str], where: str,
                                                  message: str) -> None:
    # pySigma and the KQL backend check patterns with RE2, whose C++ logger printed the pattern raw to stderr (ESC
    # included), past the CLI's escaping: a rule file could send terminal escape sequences and plant a hyperlink
    rule = tmp_path / "r.yml"
    rule.write_text(HEAD + body)
    r = sf(*command, str(rule))
    refused(r, f"{rule}:{where}", message)
    assert "\x1b" not in r.stderr + r.stdout and "re2.cc" not in r.stderr
    # the construct RE2 lacks is named (pySigma: RE2's own message; KQL: the executor's check), never as bytes
    assert ("invalid perl operator: (?=" in r.stderr or "look-ahead `(?=…)`" in r.stderr) and "b'" not in r.stderr


@pytest.mark.parametrize("header", ['"no\nte\n[evil]\nsearch = | delete",c', 'a,"b\x1b[31m"', '"x\ry",c'])
def test_a_lookup_header_with_a_control_character_is_refused(tmp_path: Path, header: str) -> None:
    # a column name holding a line break reached the KQL (['no↵te…']), the SPL and savedsearches.conf as written
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "t.csv").write_text(header + "\n1,2\n", newline="")
    rule = rules / "r.yml"
    rule.write_text(STEAL % "t.csv")
    r = sf("compile", str(rules), "--target", "sentinel")
    refused(r, f"{rule}:4:11", "lookup 'stolen': a column name holds a control character")


def test_the_folder_of_rules_in_a_checkout_is_its_top_level_folder(tmp_path: Path) -> None:
    rule = Path("rules/cloud_instance_created_unseen_image/cloud_instance_created_unseen_image.yml")
    assert rule_root(rule) == ROOT / "rules" and rule_root(ROOT / rule) == ROOT / "rules"
    assert sf("ir", str(rule)).returncode == 0  # the rule uses ../lookups/ (rules/lookups/, shared)
    assert sf("test", "rules/cloud_instance_created_unseen_image").returncode == 0
    assert sf("ir", rule.name, cwd=ROOT / rule.parent).returncode == 0  # from inside the rule's folder, too
    (tmp_path / "rules" / "a").mkdir(parents=True)
    (tmp_path / "secret.csv").write_text("k\n1\n")
    (tmp_path / "rules" / "a" / "r.yml").write_text(STEAL % "../../secret.csv")
    r = sf("ir", "rules/a/r.yml", cwd=tmp_path)  # the rest of the checkout (.git/config, …) is out of reach
    assert r.returncode == 1 and "is outside the folder of rules" in r.stderr
    assert rule_root(tmp_path / "rules" / "a" / "r.yml", [tmp_path / "rules"]) == tmp_path / "rules"
    assert rule_root(tmp_path / "rules" / "a" / "r.yml") == tmp_path / "rules" / "a"
    repo = tmp_path / "repo"  # a checkout: its top-level folder, wherever siemforge runs from
    (repo / ".git").mkdir(parents=True)
    assert rule_root(repo / "rules" / "a" / "r.yml") == repo / "rules"


# ---------------------------------------------------------------------------------------------- exports and symlinks
def test_exports_never_write_through_a_symlink_in_the_output_folder(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's")
    out = tmp_path / "out"
    out.mkdir()
    (out / "siemforge_content").symlink_to(elsewhere)  # a folder of the app
    r = sf("export", "splunk-app", "rules/", "-o", str(out))
    assert r.returncode == 2 and "siemforge_content is a symlink" in r.stderr, r.stderr
    assert list(elsewhere.iterdir()) == []
    (out / "siemforge_content").unlink()
    (out / "siemforge_content.tgz").symlink_to(victim)  # the file itself
    r = sf("export", "splunk-app", "rules/", "-o", str(out))
    assert r.returncode == 2 and "not overwriting it" in r.stderr
    assert victim.read_text() == "the user's"
    for p in sorted(out.rglob("*"), reverse=True):
        p.unlink() if not p.is_dir() or p.is_symlink() else p.rmdir()
    (out / ".siemforge-outputs").symlink_to(victim)  # siemforge's own record
    r = sf("compile", "rules/", "--target", "splunk", "-o", str(out))
    assert r.returncode == 2 and ".siemforge-outputs is a symlink" in r.stderr
    assert victim.read_text() == "the user's"
    (out / ".siemforge-outputs").unlink()
    (out / "sentinel").symlink_to(elsewhere)
    r = sf("compile", "rules/", "--target", "all", "-o", str(out))
    assert r.returncode == 2 and "sentinel is a symlink" in r.stderr
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------------------------------------- printing
MARKUP = "Payload [bold red]NOT[/bold red] :x: [link=http://evil]click[/link]"


def test_rule_lookup_and_log_text_is_printed_verbatim(tmp_path: Path) -> None:
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "lk.csv").write_text("root:x:0:0,[red]v[/red]\nalice,:x:\n")
    (tmp_path / "fixtures" / "e.ndjson").write_text(
        '{"eventName": "[bold]Run[/bold] :x:", "userAgent": "[link=http://evil]ua[/link] \\u001b[31mred"}\n')
    rule = tmp_path / "r.yml"
    rule.write_text(f'title: "{MARKUP}"\nlogsource: {{product: aws, service: cloudtrail}}\n'
                    "lookups:\n  lk: {file: lk.csv}\n"
                    "query: |\n  where eventName contains \"Run\"\n  | extend `[b]c[/b] :x:` = userAgent\n"
                    "  | lookup lk on eventName = `root:x:0:0`\n"
                    'tests:\n  - name: "fires [bold]when[/bold] :x:"\n    logs: fixtures/e.ndjson\n'
                    '    expect: {rows: [{eventName: "[i]nope[/i] :x:"}]}\n')
    r = sf("test", str(rule))
    assert r.returncode == 1, r.stdout + r.stderr
    assert MARKUP in r.stdout and "fires [bold]when[/bold] :x:" in r.stdout
    assert "expected '[i]nope[/i] :x:', got '[bold]Run[/bold] :x:'" in r.stdout
    assert "❌" not in r.stdout + r.stderr and "\x1b" not in r.stdout + r.stderr
    r = sf("ir", str(rule))
    assert r.returncode == 0 and f"rule r  '{MARKUP}'" in r.stdout
    assert "root:x:0:0" in r.stdout and "[b]c[/b] :x:" in r.stdout and "❌" not in r.stdout
    r = sf("run", str(rule), str(tmp_path / "fixtures" / "e.ndjson"))
    assert r.returncode == 0 and "[bold]Run[/bold] :x:" in r.stdout and "[b]c[/b] :x:" in r.stdout
    assert "[link=http://evil]ua[/link] \\x1b[31mred" in r.stdout  # the ESC shown, not sent to the terminal
    assert "\x1b" not in r.stdout and "\x1b]8;" not in r.stdout


def test_diagnostics_and_hints_print_markup_verbatim(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    head = f'title: "{MARKUP}"\nlogsource: {{product: aws, service: cloudtrail}}\n'
    rule.write_text(head + 'level: "[red]hi[/red] :x:"\n')
    r = sf("ir", str(rule))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stderr.splitlines()
    assert f"{rule}:3:8: error: unknown level '[red]hi[/red] :x:'  [rule]" in lines
    assert '     3 | level: "[red]hi[/red] :x:"' in lines
    assert "  hint: levels: informational, low, medium, high, critical" in lines
    rule.write_text(head + "query: |\n  where `[red]x[/red] :x:` == 1\ndetectio: {}\n")
    r = sf("ir", str(rule))
    lines = r.stderr.splitlines()
    assert any(line.startswith(f"{rule}:4:9: warning: ") and "'[red]x[/red] :x:'" in line for line in lines), lines
    assert "     4 |   where `[red]x[/red] :x:` == 1" in lines
    assert f"{rule}:5:1: warning: unknown key 'detectio'  [rule-key]" in lines
    assert "  hint: did you mean 'detection'?" in lines
    assert f"rule r  '{MARKUP}'" in r.stdout
    assert "❌" not in r.stdout + r.stderr and "\x1b" not in r.stdout + r.stderr


def test_a_junit_report_of_rules_with_control_characters_still_parses(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    (tmp_path / "e.ndjson").write_text('{"eventName": "a"}\n')
    rule = tmp_path / "r.yml"
    rule.write_text('title: "t\\x1b[31m \\u0007 [b]x[/b]"\nlogsource: {product: aws, service: cloudtrail}\n'
                    'query: |\n  where eventName == "a"\ntests:\n  - name: "n\\x1b"\n    logs: e.ndjson\n'
                    "    expect: silent\n")
    report = tmp_path / "junit.xml"
    r = sf("test", str(rule), "--junit", str(report))
    assert r.returncode == 1, r.stdout + r.stderr
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "t\\x1b[31m \\x07 [b]x[/b]"
    case = suite.find("testcase")
    assert case is not None and case.get("name") == "n\\x1b" and case.find("failure") is not None


MAPPINGS = [  # a section that maps names to specs, written as something else: (section text, message)
    ("lookups: [lk.csv]\n", "`lookups` must map a table name to a CSV file"),
    ("lookups: {lk: lk.csv}\nbaselines: [lk]\n", "`baselines` must map a lookup table to {key, where, forget, warmup}"),
    ("details: 3\n", "`details` must map a detail name to a column"),
]


@pytest.mark.parametrize("section,message", MAPPINGS, ids=[m.split("`")[1] for _, m in MAPPINGS])
def test_a_section_that_is_not_a_mapping_is_a_positioned_error(tmp_path: Path, section: str, message: str) -> None:
    (tmp_path / "lk.csv").write_text("eventName,n\nx,1\n")
    rule = tmp_path / "rule.yml"
    rule.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n  where eventName == 'x'\n"
                    + section)
    res = compile_file(rule)
    found = [d for d in res.diagnostics if message in d.message]
    assert res.rule is None and len(found) == 1, [str(d) for d in res.diagnostics]
    assert found[0].span is not None and found[0].span.line == 4 + section.count("\n")
