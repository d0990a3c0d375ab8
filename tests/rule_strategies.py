"""Hypothesis strategies for hostile rule input, and the invariant every case must keep: a rule file's text
compiles to IR (and each target then compiles it or refuses it with a CompileError), or loading it raises a
CompileError whose errors all name a position. Any other exception is a bug.

Used by tests/test_fuzz_rules.py (a quick profile in CI) and benchmarks/fuzz_rules.py (≥ 10,000 cases per kind).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from siemforge.backends.registry import targets
from siemforge.compiler.api import compile_doc
from siemforge.compiler.diagnostics import CompileError, Severity
from siemforge.compiler.rule import load_rule

ROOT = Path(__file__).resolve().parents[1]
HEAD = "title: fuzz\nlogsource: {product: aws, service: cloudtrail}\n"


def check_rule_text(text: str, folder: Path) -> str:
    """Compile `text` as the rule file folder/fuzz.yml: "result" or "error"; raises AssertionError for an error
    without a position and lets any other exception through (the caller counts it as a traceback)."""
    try:
        doc = load_rule(folder / "fuzz.yml", text, folder)
        rule = compile_doc(doc)
    except CompileError as exc:
        unpositioned = [d for d in exc.diagnostics if d.severity is Severity.ERROR and d.span is None]
        assert not unpositioned, f"an error without a position: {unpositioned[0]}"
        return "error"
    for target in targets().values():
        try:
            target.compile(rule, None)
        except CompileError:
            pass
    return "result"


# ------------------------------------------------------------------------------------------------ scalars
FIELDS = ["eventName", "eventSource", "userAgent", "sourceIPAddress", "awsRegion", "errorCode", "userIdentity.arn",
          "userIdentity.type", "requestParameters.instanceType", "responseElements.instancesSet.items",
          "requestParameters", "_time", "recipientAccountId", "readOnly", "CommandLine", "Image", "x", "a.b[0]"]
YAML_CHARS = "&*:{}[]-|>!?#%@`'\",\n\t \\<=~^$()+/."
nasty_text = st.text(alphabet=st.sampled_from(list("ab*?\\|[]{}()^$.+'\"%&:;#@!~ \t\n") + ["é", "\u202e", "\x00",
                                                                                            "\x1b", "💥"]),
                     max_size=30)
scalar = st.one_of(st.text(max_size=20), nasty_text, st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                   st.booleans(), st.none(), st.dates().map(str))


# ------------------------------------------------------------------------------------------------ Sigma detections
MODIFIERS = ["contains", "startswith", "endswith", "all", "re", "i", "m", "s", "cidr", "base64", "base64offset",
             "windash", "exists", "gt", "gte", "lt", "lte", "cased", "fieldref", "expand", "utf16le", "utf16be",
             "wide", "utf16", "neq", "minute", "hour", "day", "week", "month", "year", "bogus"]
field_key = st.builds(lambda f, mods: "|".join([f, *mods]), st.sampled_from(FIELDS + [""]),
                      st.lists(st.sampled_from(MODIFIERS), max_size=3))
value = st.one_of(scalar, st.lists(scalar, max_size=4))
selection = st.one_of(
    st.dictionaries(field_key, value, max_size=4),
    st.lists(st.dictionaries(field_key, value, min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(st.one_of(st.text(max_size=12), st.integers()), min_size=1, max_size=4),  # keywords
    scalar,
)
selection_names = st.sampled_from(["sel", "sel2", "filter", "keywords", "1 of sel*", "all of sel*", "1 of them",
                                   "all of them", "missing", "selection_*"])


@st.composite
def condition(draw: Any, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return str(draw(selection_names))
    kind = draw(st.sampled_from(["and", "or", "not", "paren", "junk"]))
    if kind == "not":
        return "not " + draw(condition(depth + 1))
    if kind == "paren":
        return "(" + draw(condition(depth + 1)) + ")"
    if kind == "junk":
        return draw(st.sampled_from(["(", ")", "and", "or", "|", "near", "1 of", "count() > 3", ""]))
    return f"{draw(condition(depth + 1))} {kind} {draw(condition(depth + 1))}"


string_value = st.one_of(st.text(max_size=12), nasty_text, st.sampled_from(["*", "?", "\\*", "a*b?c", "%x%",
                                                                           "*\\cmd.exe", "1.2.3.4", "10.0.0.0/8",
                                                                           "::1/128", "(a+)+$", "[", "\\"]))
PLAUSIBLE = {  # modifier chains Sigma allows, with the kind of value each takes
    "": string_value, "|contains": string_value, "|startswith": string_value, "|endswith": string_value,
    "|contains|all": st.lists(string_value, min_size=1, max_size=3), "|cased": string_value,
    "|contains|cased": string_value, "|re": string_value, "|re|i": string_value, "|re|m|s": string_value,
    "|cidr": st.sampled_from(["10.0.0.0/8", "1.2.3.4/32", "::1/128", "300.1.1.1/8", "x"]),
    "|exists": st.booleans(), "|gt": st.integers(), "|lte": st.floats(allow_nan=False), "|lt": string_value,
    "|base64|contains": string_value, "|base64offset|contains": string_value, "|windash|contains": string_value,
    "|utf16le|base64": string_value, "|wide|base64offset|contains": string_value, "|fieldref": st.sampled_from(
        FIELDS), "|fieldref|startswith": st.sampled_from(FIELDS), "|expand": st.just("%placeholder%"),
    "|hour": st.integers(0, 30), "|minute": st.integers(0, 59), "|neq": string_value,
}


@st.composite
def plausible_selection(draw: Any) -> Any:
    def item() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _ in range(draw(st.integers(1, 3))):
            field = draw(st.sampled_from(FIELDS))
            mods = draw(st.sampled_from(sorted(PLAUSIBLE)))
            v = draw(PLAUSIBLE[mods])
            out[field + mods] = draw(st.lists(PLAUSIBLE[mods], min_size=1, max_size=3)) if draw(st.booleans()) \
                else v
        return out
    kind = draw(st.integers(0, 3))
    if kind == 3:
        return draw(st.lists(string_value, min_size=1, max_size=3))  # keywords
    if kind == 2:
        return [item() for _ in range(draw(st.integers(1, 3)))]
    return item()


@st.composite
def plausible_condition(draw: Any, names: list[str], depth: int = 0) -> str:
    if depth > 2 or draw(st.integers(0, 2)) == 0:
        return str(draw(st.sampled_from([*names, "1 of sel*", "all of them", "1 of them"])))
    op = draw(st.sampled_from(["and", "or", "and not", "or not"]))
    left = draw(plausible_condition(names, depth + 1))
    right = draw(plausible_condition(names, depth + 1))
    text = f"{left} {op} {right}"
    return f"({text})" if draw(st.booleans()) else text


@st.composite
def sigma_detection(draw: Any) -> dict[str, Any]:
    if draw(st.booleans()):  # what a rule author might write, right or subtly wrong
        names = draw(st.lists(st.sampled_from(["sel", "sel2", "selection", "filter", "keywords"]), min_size=1,
                              max_size=4, unique=True))
        det = {n: draw(plausible_selection()) for n in names}
        det["condition"] = draw(plausible_condition(names))
        return det
    names = draw(st.lists(st.sampled_from(["sel", "sel2", "filter", "keywords", "selection_a"]), min_size=1,
                          max_size=4, unique=True))
    det: dict[str, Any] = {n: draw(selection) for n in names}
    cond = draw(st.one_of(condition(), st.lists(condition(), min_size=1, max_size=2), scalar))
    if draw(st.integers(0, 9)):  # usually a condition
        det["condition"] = cond
    return det


def sigma_rule_text(det: dict[str, Any]) -> str:
    return HEAD + yaml.safe_dump({"detection": det}, allow_unicode=True, sort_keys=False)


# ------------------------------------------------------------------------------------------------ pipeline text
STAGES = ["where", "extend", "summarize", "eventstats", "lookup", "rename", "project", "sort by", "take", "limit"]
TOKENS = (STAGES + FIELDS + ["and", "or", "not", "in", "!in", "in~", "contains", "startswith", "endswith", "has",
                             "matches regex", "like", "==", "!=", "=~", "!~", "<", ">", "<=", ">=", "=", "+", "-",
                             "*", "/", "%", "(", ")", "[", "]", ",", ".", "|", "by", "on", "output", "as", "asc",
                             "desc", "true", "false", "null", "1", "-1", "0", "1.5", "1e309", "99999999999999999999",
                             "1h", "30m", "7d", "datetime(2024-01-01)", "datetime(2024-13-45)", '"a"', "'b'", '"\\q"',
                             '@"c:\\x"', '"*"', '"(a+)+$"', '"["', "`odd name`", "//c\n", "\n",
                             "count()", "dcount(", "tostring(", "toint(", "split(", "iif(", "case(", "coalesce(",
                             "strcat(", "extract(", "replace_regex(", "datetime_diff(", "ago(", "now()", "bin(",
                             "hourofday(", "tolower(", "substring(", "array_length(", "min(", "max(", "sum(", "avg(",
                             "values(", "earliest(", "latest(", "lk", "x", "y"])


FUNCS = {"tostring": 1, "toint": 1, "todouble": 1, "tolower": 1, "toupper": 1, "strlen": 1, "isnull": 1,
         "isnotnull": 1, "isempty": 1, "isnotempty": 1, "coalesce": 2, "iif": 3, "strcat": 2, "split": 2,
         "substring": 3, "replace_string": 3, "extract": 3, "array_length": 1, "hourofday": 1, "dayofweek": 1,
         "ago": 1, "bin": 2, "datetime_diff": 3, "now": 0, "todatetime": 1, "parse_json": 1, "trim": 1,
         "nosuchfunction": 1}
LITERALS = ['"a"', '"RunInstances"', "'x*y'", '@"c:\\w"', '"(a+)+$"', '"[0-9]+"', "1", "0", "-3", "2.5", "1h", "7d",
            "true", "false", "null", "datetime(2024-01-01T00:00:00Z)", '"hour"', '""']
SUFFIXES = ["[0]", "[-1]", ".name", '["k"]']
BINARY = ["and", "or", "==", "!=", "=~", "!~", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "contains",
          "!contains", "startswith", "endswith_cs", "like", "matches regex"]


@st.composite
def expression(draw: Any, depth: int = 0) -> str:
    kind = draw(st.integers(0, 9 if depth < 4 else 1))
    if kind == 0:
        return str(draw(st.sampled_from(FIELDS[:-1] + ["v", "n", "x"])))
    if kind == 1:
        return str(draw(st.sampled_from(LITERALS)))
    if kind in (2, 3, 4):
        return f"{draw(expression(depth + 1))} {draw(st.sampled_from(BINARY))} {draw(expression(depth + 1))}"
    if kind == 5:
        return "not " + draw(expression(depth + 1))
    if kind == 6:
        name = draw(st.sampled_from(sorted(FUNCS)))
        n = FUNCS[name] if draw(st.integers(0, 4)) else draw(st.integers(0, 4))
        return f"{name}({', '.join(draw(expression(depth + 1)) for _ in range(n))})"
    if kind == 7:
        return "(" + draw(expression(depth + 1)) + ")"
    if kind == 8:
        items = ", ".join(draw(st.lists(st.sampled_from(LITERALS), min_size=1, max_size=3)))
        return f"{draw(expression(depth + 1))} {draw(st.sampled_from(['in', '!in', 'in~']))} ({items})"
    return draw(expression(depth + 1)) + draw(st.sampled_from(SUFFIXES))


@st.composite
def valid_stage(draw: Any) -> str:
    kind = draw(st.sampled_from(["where", "extend", "summarize", "eventstats", "lookup", "rename", "project", "sort",
                                 "take"]))
    e = expression()
    if kind == "where":
        return f"where {draw(e)}"
    if kind == "extend":
        return "extend " + ", ".join(f"{draw(st.sampled_from(['x', 'y', 'n', 'eventName']))} = {draw(e)}"
                                     for _ in range(draw(st.integers(1, 2))))
    if kind in ("summarize", "eventstats"):
        agg = draw(st.sampled_from(["count()", "dcount(eventName)", "min(_time)", "max(x)", "sum(toint(x))",
                                    "avg(n)", "values(awsRegion)", "earliest(eventName)", "latest(x)",
                                    "make_set(x)", "values(awsRegion, 2)", "make_set(x, 1)"]))
        by = draw(st.sampled_from(["", " by eventName", " by x = tolower(eventName), awsRegion", " by bin(_time, 1h)"]))
        return f"{kind} n = {agg}{by}"
    if kind == "lookup":
        return draw(st.sampled_from(["lookup lk on eventName", "lookup lk on eventName output v",
                                     "lookup lk on x = eventName output v as w", "lookup nope on eventName"]))
    if kind == "rename":
        return f"rename {draw(st.sampled_from(['a', 'x', 'eventName']))} = {draw(st.sampled_from(FIELDS[:-1]))}"
    if kind == "project":
        return "project " + ", ".join(draw(st.lists(st.sampled_from(FIELDS[:-1] + ["n", "x", "v"]), min_size=1,
                                                    max_size=3)))
    if kind == "sort":
        return f"sort by {draw(e)} {draw(st.sampled_from(['', 'asc', 'desc']))}"
    return f"take {draw(st.integers(0, 10**12))}"


@st.composite
def pipeline_text(draw: Any) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:  # a real query, mutated
        base = draw(st.sampled_from(SEED_QUERIES))
        return draw(mutated(base, st.sampled_from(TOKENS)))
    if choice in (1, 2):  # well-formed stages over plausible and implausible expressions
        return "\n| ".join(draw(st.lists(valid_stage(), min_size=1, max_size=4)))
    stages = []
    for _ in range(draw(st.integers(1, 4))):
        stage = draw(st.sampled_from(STAGES))
        words = draw(st.lists(st.sampled_from(TOKENS), max_size=12))
        stages.append(" ".join([stage, *words]))
    return " | ".join(stages)


def pipeline_rule_text(query: str) -> str:
    """A rule whose `query: |` block holds `query` (each line indented; YAML line breaks other than \\n and
    characters YAML cannot hold are left out, so that the text reaches the pipeline parser)."""
    clean = "".join(ch for ch in query if ch == "\n" or (ch.isprintable() and ch not in "\x85\u2028\u2029"))
    body = "".join("  " + line + "\n" for line in clean.split("\n"))
    return HEAD + "lookups:\n  lk: {file: lk.csv}\nquery: |\n" + body


# ------------------------------------------------------------------------------------------------ YAML text
def _seed_rules() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((ROOT / "rules").rglob("*.yml"))]


SEED_RULES = _seed_rules() + [
    HEAD + "detection:\n  sel:\n    CommandLine|contains|all: ['a', 'b*']\n    Image|endswith: '\\\\cmd.exe'\n"
    "  filter: {User|re|i: '^adm'}\n  condition: sel and not filter\n",
    HEAD + "lookups:\n  lk: {file: lk.csv}\nquery: |\n  where eventName in (\"a\", \"b\")\n"
    "  | lookup lk on eventName output v\n  | summarize n = count() by v\ntests:\n  - name: t\n"
    "    logs: e.ndjson\n    expect: {rows: 1}\n",
]
SEED_QUERIES = [q for q in (yaml.safe_load(t).get("query") for t in SEED_RULES) if isinstance(q, str)]


@st.composite
def mutated(draw: Any, text: str, pieces: Any = None) -> str:
    """`text` with a few edits: spans deleted, duplicated or moved, characters or pieces inserted."""
    pieces = pieces if pieces is not None else st.sampled_from(list(YAML_CHARS) + ["&a ", "*a", "<<: ", "!!binary ",
                                                                                  "!!python/object ", "? ", "---\n",
                                                                                  "- ", "  ", "\t"])
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            text = draw(pieces)
            continue
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "move"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(pieces) + text[i:]
        else:
            k = draw(st.integers(0, len(text)))
            chunk, rest = text[i:j], text[:i] + text[j:]
            k = min(k, len(rest))
            text = rest[:k] + chunk + rest[k:]
    return text


json_like = st.recursive(scalar, lambda children: st.one_of(st.lists(children, max_size=3),
                                                            st.dictionaries(st.text(max_size=8), children,
                                                                            max_size=3)), max_leaves=12)
RULE_KEYS = ["title", "id", "status", "level", "description", "author", "date", "modified", "references", "tags",
             "logsource", "detection", "falsepositives", "fields", "related", "query", "source", "schedule", "alert",
             "entities", "details", "lookups", "tests", "baselines", "version", "correlation", "name", "taxonomy"]


@st.composite
def rule_like_doc(draw: Any) -> str:
    """A rule-shaped mapping with plausible and implausible values for every key, dumped as YAML."""
    doc: dict[str, Any] = {"title": draw(st.one_of(st.text(max_size=20), scalar)),
                           "logsource": draw(st.one_of(st.just({"product": "aws", "service": "cloudtrail"}),
                                                       json_like))}
    for key in draw(st.lists(st.sampled_from(RULE_KEYS), max_size=6, unique=True)):
        if key == "detection":
            doc[key] = draw(sigma_detection())
        elif key == "query":
            doc[key] = draw(pipeline_text())
        elif key == "lookups":
            doc[key] = draw(st.one_of(st.just({"lk": {"file": "lk.csv"}}), st.just({"lk": "lk.csv"}),
                                      st.builds(lambda f, t: {"lk": {"file": f, "types": t}}, st.sampled_from(
                                          ["lk.csv", "bin.csv", "empty.csv", "odd.csv", "nope.csv", "/etc/passwd",
                                           "..", "", "sub"]), json_like), json_like))
        elif key == "tests":
            doc[key] = draw(st.one_of(st.just([{"name": "t", "logs": "e.ndjson", "expect": "fires"}]),
                                      st.lists(st.dictionaries(st.sampled_from(["name", "logs", "expect", "now",
                                                                                "lookups", "binding", "baselines"]),
                                                               json_like), max_size=2), json_like))
        elif key == "schedule":
            doc[key] = draw(st.one_of(st.just({"every": "1h", "lookback": "2h"}), json_like))
        elif key == "alert":
            doc[key] = draw(st.one_of(st.just({"threshold": "> 2", "suppress": "1h"}), json_like))
        elif key == "baselines":
            doc[key] = draw(st.one_of(st.just({"lk": {"key": "eventName", "where": "eventName == 'a'"}}), json_like))
        else:
            doc[key] = draw(json_like)
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


yaml_text = st.one_of(
    rule_like_doc(),
    st.sampled_from(SEED_RULES).flatmap(mutated),
    st.text(alphabet=st.sampled_from(list(YAML_CHARS) + list("abc019 ")), max_size=200),
)

# every kind of fuzzed input as the text of a rule file (what tests/test_fuzz_rules.py and benchmarks/fuzz_rules.py
# draw): YAML documents, rules around a pipeline-language query, Sigma rules around a detection
RULE_TEXTS = {
    "yaml": yaml_text,
    "pipeline": pipeline_text().map(pipeline_rule_text),
    "sigma": sigma_detection().map(sigma_rule_text),
}


def make_folder(folder: Path) -> Path:
    """The folder a fuzzed rule lives in: a lookup and a log file it may name."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lk.csv").write_text("eventName,v,k\na,1,2\nb,x,3\n", encoding="utf-8")
    (folder / "e.ndjson").write_text('{"eventName": "a"}\n', encoding="utf-8")
    (folder / "bin.csv").write_bytes(b"a,b\n\xff\xfe\x00,1\n")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "odd.csv").write_text('a,"b\n1,"2\n' + "x" * 200_000 + "\n", encoding="utf-8")
    (folder / "sub").mkdir(exist_ok=True)
    return folder
