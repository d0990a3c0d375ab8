"""The SPL → pipeline-language translation behind `siemforge import splunk` (importers/splunk.py reads the
inputs and writes the rules). A search is split into commands at top-level pipes; each command's arguments are
parsed with grammars/spl_import.lark and translated with SPL's meaning written out (docs/semantics.md decisions
55-59): search-time value matches are case-insensitive, `where` comparisons are case-sensitive, `stats by` drops
rows with a null key, `!=` needs the field. A construct with no exact translation raises `Refusal` with its offset
in the search text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import lark
import yaml

from siemforge.compiler.bindings import Binding, bindings_for
from siemforge.compiler.regex import RegexRefused, compile_re2
from siemforge.compiler.types import Type

_COMMANDS = ("search", "eval", "stats", "eventstats", "tstats", "rename", "fields", "table", "lookup", "spath",
             "fillnull", "bin", "mvexpand")
# `tstats … from datamodel=M`: the view source that stands for M, and M's root dataset (its fields' prefix)
_DATA_MODELS = {"Change": ("cim.change", "All_Changes"), "Change.All_Changes": ("cim.change", "All_Changes"),
                "Authentication": ("cim.authentication", "Authentication"),
                "Authentication.Authentication": ("cim.authentication", "Authentication")}
_DATASETS = {"All_Changes": "Instance_Changes"}  # the child dataset a view holds the fields of
# formatting-only ESCU macros: they turn epoch seconds into text for display; our rows keep the datetime
_FORMATTING = ("security_content_ctime", "security_content_summariesonly")
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_AGGS = {"count": "count", "dc": "dcount", "distinct_count": "dcount", "min": "min", "max": "max", "sum": "sum",
         "avg": "avg", "mean": "avg", "stdev": "stdev", "stdevp": "stdevp", "values": "values", "earliest": "earliest",
         "latest": "latest"}
_NUMERIC_AGGS = ("avg", "mean", "sum", "stdev", "stdevp")  # Splunk: numbers only, other values ignored
_EPOCH = "\x00epoch:"  # marks relative_time()'s value (epoch seconds) until its comparison reads it
_Node = lark.Tree[lark.Token]
_ERROR_CODE = 'iif(isempty(errorCode), "success", errorCode)'
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = resources.files("siemforge.grammars").joinpath("spl_import.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual",
                     start=list(_COMMANDS) + ["expr"], propagate_positions=True)


class Refusal(Exception):
    """A construct with no exact translation; `at` is its offset in the search text (None: the whole search)."""

    def __init__(self, reason: str, at: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at


@dataclass(slots=True)
class Macro:
    definition: str
    args: tuple[str, ...] = ()


@dataclass(slots=True)
class Search:
    """One input rule: its SPL and where each character of it sits in the input file."""

    origin: Path
    name: str
    spl: str
    offsets: list[int]  # index in spl -> offset in the file text
    text: str  # the file text
    meta: dict[str, Any]

    def position(self, at: int | None) -> tuple[int | None, int | None]:
        if at is None or not self.offsets:
            return None, None
        off = self.offsets[min(max(at, 0), len(self.offsets) - 1)]
        line = self.text.count("\n", 0, off) + 1
        return line, off - (self.text.rfind("\n", 0, off) + 1) + 1


# ---------------------------------------------------------------------------------------------- commands


def split_commands(spl: str, base: int = 0) -> list[tuple[str, int]]:
    """The commands of a search, split at pipes outside quotes, backticks, brackets and parentheses, with the
    offset of each command's first non-blank character."""
    out: list[tuple[str, int]] = []
    depth, quote, start = 0, "", 0
    i = 0
    while i < len(spl):
        ch = spl[i]
        if quote:
            if ch == "\\" and quote == '"':
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"`'":
            quote = ch if ch != "'" or depth > 0 or True else ""
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append((spl[start:i], base + start))
            start = i + 1
        i += 1
    out.append((spl[start:], base + start))
    result = []
    for text, off in out:
        lead = len(text) - len(text.lstrip())
        result.append((text.strip(), off + lead))
    return result


def _col(name: str) -> str:
    return name if _NAME.fullmatch(name) and name not in ("by", "on", "output", "and", "or", "not", "in") \
        else f"`{name}`"


def _str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unq(tok: str) -> str:
    if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "\"'":
        return re.sub(r"\\(.)", r"\1", tok[1:-1])
    return tok


def _eval_str(tok: str) -> str:
    """The value of an eval string literal: `\\\\` is one backslash, `\\"` a quote and `\\t` a tab; any other
    backslash stays as written (`"\\d+"` is the regex `\\d+`, `"\\1"` a group reference) — Splunk's "Types of
    expressions" and "Backslashes" pages (docs/semantics.md decision 47)."""
    body = tok[1:-1]
    return re.sub(r"\\([\\\"t])", lambda m: "\t" if m.group(1) == "t" else m.group(1), body)


def _unwrap(node: Any) -> Any:
    while isinstance(node, lark.Tree) and node.data in ("e_or", "e_and", "e_cmp", "e_sum", "e_prod") \
            and len(node.children) == 1:
        node = node.children[0]
    return node


def _pos(node: _Node | lark.Token, base: int) -> int:
    if isinstance(node, lark.Token):
        return base + (node.start_pos or 0)
    return base + (node.meta.start_pos if not node.meta.empty else 0)


@dataclass(slots=True)
class _State:
    source: str = ""
    binding: Binding | None = None
    columns: list[str] | None = None  # None: the source's fields are in scope
    local: set[str] = field(default_factory=set)  # names defined by eval/rename before any aggregation
    prefix: str | None = None  # `rename P.* as *`: a bare name X reads P.X
    filled: bool = False  # `fillnull` ran since the last aggregation
    nonnull: set[str] = field(default_factory=set)
    dm_prefixes: list[str] = field(default_factory=list)


def _aws_splunk_bindings() -> list[Binding]:
    """The Splunk bindings of the AWS sources (aws.cloudtrail first): those an ESCU search's source macro may name."""
    from siemforge.compiler.sources import package_sources

    aws = [n for n, s in sorted(package_sources().items()) if ("product", "aws") in s.logsource and s.view is None]
    aws.sort(key=lambda n: n != "aws.cloudtrail")
    return [b for n in aws for b in bindings_for(n, "splunk")]


# the CloudTrail operations Amazon Security Lake writes as OCSF Authentication records (docs/semantics.md decision 90)
_ASL_AUTHENTICATION = frozenset({"assumerole", "assumerolewithsaml", "assumerolewithwebidentity", "checkmfa",
                                 "consolelogin"})


# aws.cloudtrail fields that CloudTrail writes as JSON objects, never arrays (the record contents reference)
_OBJECTS = frozenset({"requestParameters", "responseElements", "additionalEventData", "serviceEventDetails",
                      "userIdentity", "tlsDetails"})


def _join_rows_note(text: str) -> str:
    """Why the first matching row is not the only one: the subsearch's last `stats … by` groups by more than the
    join's fields (its rows are then not unique on them)."""
    head, _, sub = text.partition("[")
    keys = {w.strip(",") for w in head.split()[1:] if "=" not in w} - {""}
    found = re.findall(r"\|\s*stats\b[^|\]]*?\bby\s+([^|\]]+)", sub)
    if not keys or not found:
        return ""
    by = {w.strip(",") for w in found[-1].split()} - {""}
    extra = sorted(by - keys)
    if by >= keys and extra:
        return (f" (the subsearch's rows are not unique on {', '.join(sorted(keys))}: its last stats groups by "
                f"{', '.join(extra)} too)")
    return ""


def _operations(terms: list[Any], name: str) -> set[str] | None:
    """The values a base search's AND of `terms` limits field `name` to (`name=v`, an OR or IN of such, no wildcard),
    or None when no term limits it."""
    def values(node: Any) -> set[str] | None:
        if not isinstance(node, lark.Tree):
            return None
        if node.data == "s_cmp":
            m = re.fullmatch(r'("(?:\\.|[^"\\])*"|[^\s!=<>]+)\s*(=)\s*(.*)', str(node.children[0]), re.S)
            if m and _unq(m.group(1)) == name and not re.search(r"[*?]", _unq(m.group(3))):
                return {_unq(m.group(3))}
            return None
        if node.data == "s_in" and _unq(str(node.children[0])) == name:
            vals = {_unq(str(v)) for v in node.children[1:]}
            return None if any(re.search(r"[*?]", v) for v in vals) else vals
        if node.data == "s_or":
            parts = [values(c) for c in node.children]
            return None if any(p is None for p in parts) else set().union(*(p for p in parts if p is not None))
        return None

    found = [v for v in (values(t) for t in terms) if v is not None]
    return set.intersection(*found) if found else None


class Translator:
    def __init__(self, search: Search, macros: dict[str, Macro]) -> None:
        self.search = search
        self.macros = macros
        self.stages: list[str] = []
        self.notes: list[str] = []
        self.texts: set[str] = set()  # columns spath extracted: text, which stats functions read as numbers
        self.numeric: set[str] = set()  # columns an aggregation made numbers (what `sort` may order, decision 86)
        self.s = _State()
        self.lookups: dict[str, dict[str, Any]] = {}
        self.baselines: dict[str, dict[str, Any]] = {}
        self.tables: dict[str, list[str]] = {}  # lookup table -> header of the empty CSV written beside the rule
        self.summarize_at: int | None = None  # index of the last summarize stage (renames fold into it)
        self.summarize_names: dict[str, str] = {}
        self.null_filter_at: int | None = None  # the `where isnotnull(key)…` after the last summarize
        self.rename_at: int | None = None  # where a `rename P.* as *` stood in the stages
        self.rename_stage: int | None = None  # the extend that stands for it, once a name needed it
        # `spath path=X{} output=N`, waiting for its `mvexpand N`: (N, X's expression, position)
        self.array_read: tuple[str, str, int] | None = None
        self.expanded: set[str] = set()  # fields an mvexpand made one element each (JSON of an object element)
        # multivalue fields: each is the values of its parts, ("one", expr) a single value, ("each", expr) every
        # element of an array (`spath path=X{}` not expanded, `mvappend` of them; docs/semantics.md decision 110)
        self.multivalue: dict[str, list[tuple[str, str]]] = {}
        # base-search tests over `{}` paths: Sigma selections over `[]` fields, ANDed by the rule's `condition`
        self.detection: dict[str, dict[str, Any]] = {}
        self.detection_condition: list[str] = []
        # the api.operation values a Security Lake base search is limited to (None: not limited)
        self.asl_operations: set[str] | None = None

    # -------------------------------------------------------------- driver
    def run(self) -> None:
        commands = split_commands(self.search.spl)
        for i, (text, at) in enumerate(commands):
            if i == 0 and not text:
                continue  # a search that starts with `|` (tstats)
            self.command(text, at, first=(i == 0))
        if not self.s.source:
            raise Refusal("no source: the search names neither a source macro nor a data model", 0)
        if self.s.dm_prefixes:
            raise Refusal("tstats output names keep their data model prefix (no drop_dm_object_name)", None)

    def command(self, text: str, at: int, first: bool) -> None:
        m = re.fullmatch(r"`([A-Za-z0-9_]+)(?:\((.*)\))?`", text, re.S)
        if m and not first:
            self.macro_command(m.group(1), m.group(2), at)
            return
        word = text.split(None, 1)[0] if text.strip() else ""
        if not first and word == "join" and not re.search(r"\bmax\s*=\s*0\b", text.split("[", 1)[0]):
            raise Refusal("SPL `join` without max=0 keeps only the first matching subsearch row of each event, in the "
                          "subsearch's order, which the IR's join cannot say" + _join_rows_note(text), at)
        if not first and word not in _COMMANDS + ("where", "bucket", "sort"):
            raise Refusal(f"SPL command `{word}` has no translation", at)
        sub = re.search(r"\[\s*(search\b|\|)", text)
        if sub:
            raise Refusal("a subsearch `[…]`", at + sub.start())
        if first:
            self.base_search(text, at)
            return
        name, _, rest = text.partition(" ")
        name = name.strip()
        rest_at = at + len(text) - len(rest) if rest else at + len(text)
        if name == "bucket":
            name = "bin"
        if self.array_read is not None and name != "mvexpand":
            # not expanded: a multivalue field, the elements of the array, which only a search test or mvappend reads
            out, array, _ = self.array_read
            self.array_read = None
            self.multivalue[out] = [("each", array)]
            self.s.local.add(out)
        if name in ("search", "where") and not self.s.source:
            raise Refusal(f"`{name}` before any source", at)
        if name == "tstats":
            if self.s.source:
                raise Refusal("tstats after another command", at)
            self.tstats(self.parse("tstats", rest, rest_at), rest_at)
            return
        if not self.s.source:
            raise Refusal(f"a search that starts with `{name}` (only a base search or tstats can start one)", at)
        if self.s.dm_prefixes:
            raise Refusal("tstats output names keep their data model prefix (no drop_dm_object_name)", at)
        if name == "sort":
            self.sort(rest, rest_at)
            self.summarize_at = None
            return
        handler = {"search": self.search_cmd, "where": self.where, "eval": self.eval, "stats": self.stats,
                   "eventstats": self.eventstats, "rename": self.rename, "table": self.table, "fields": self.fields,
                   "lookup": self.lookup, "fillnull": self.fillnull, "spath": self.spath, "bin": self.bin,
                   "mvexpand": self.mvexpand}.get(name)
        if handler is None:
            raise Refusal(f"SPL command `{name}` has no translation", at)
        start = "expr" if name == "where" else name
        handler(self.parse(start, rest, rest_at), rest_at)
        if name not in ("rename", "fillnull", "stats"):
            self.summarize_at = None  # a rename folds into the aggregation only right after it

    def parse(self, start: str, text: str, at: int) -> _Node:
        try:
            return _parser().parse(text, start=start)
        except lark.exceptions.UnexpectedInput as e:
            pos = getattr(e, "pos_in_stream", None) or 0
            shown = text[pos:pos + 30].split("\n")[0]
            raise Refusal(f"`{start}`: cannot read SPL at `{shown}`", at + pos) from None

    def macro_command(self, name: str, args: str | None, at: int) -> None:
        if name in _FORMATTING:
            return
        if name.endswith("_filter"):
            self.notes.append(f"`{name}` dropped: an empty tuning filter for each customer to fill in")
            return
        if name == "drop_dm_object_name":
            prefix = _unq((args or "").strip())
            if prefix not in self.s.dm_prefixes:
                raise Refusal(f"drop_dm_object_name({prefix}) with no tstats output of that prefix", at)
            self.s.dm_prefixes.remove(prefix)
            return
        body = self.expand(name, args, at)
        for text, _ in split_commands(body):
            if text:
                self.command(text, at, first=not self.s.source and not text.startswith("tstats"))

    def expand(self, name: str, args: str | None, at: int) -> str:
        m = self.macros.get(name)
        if m is None:
            raise Refusal(f"macro `{name}` is not defined (give its definition with --macros)", at)
        body = m.definition
        given = [a.strip() for a in args.split(",")] if args else []
        if len(given) != len(m.args):
            raise Refusal(f"macro `{name}` takes {len(m.args)} arguments, given {len(given)}", at)
        for a, v in zip(m.args, given, strict=True):
            body = body.replace(f"${a}$", _unq(v))
        return body

    # -------------------------------------------------------------- the source
    def base_search(self, text: str, at: int) -> None:
        tree = self.parse("search", text, at)
        terms = self.flat_and(tree.children[0]) if tree.children else []
        if not terms or not (isinstance(terms[0], lark.Tree) and terms[0].data == "s_macro"):
            raise Refusal("the base search does not start with a source macro (`cloudtrail`, …)", at)
        macro = str(terms[0].children[0]).strip("`")
        self.s.binding = self.binding_of(macro, _pos(terms[0], at))
        self.s.source = self.s.binding.source
        rest = [t for t in terms[1:] if not self.reads_array(t)]
        self.asl_operations = _operations(rest, "api.operation")
        for t in terms[1:]:
            if self.reads_array(t):
                self.detection_condition.append(self.array_test(t, at))
        if rest:
            self.stages.append("where " + " and ".join(self.sterm(t, at, top=True) for t in rest))

    # -------------------------------------------------------------- `{}` paths in the base search
    @staticmethod
    def reads_array(node: _Node | lark.Token) -> bool:
        """The search term names a multivalue path (`a{}.b`, every element's b)."""
        if not isinstance(node, lark.Tree):
            return False
        return any("{}" in str(tok) for tok in node.scan_values(lambda v: isinstance(v, lark.Token)))

    def array_test(self, node: _Node | lark.Token, at: int) -> str:
        """A base-search term over `{}` paths as a Sigma condition over `[]` fields: `a{}.b=v` matches when some
        value of the multivalue field does, which is the IR's AnyElement (docs/semantics.md decisions 28 and 48).
        Each test becomes a selection of the rule's `detection:`; the condition keeps the term's and/or/not."""
        if isinstance(node, lark.Token):
            raise Refusal(f"raw-text search term `{node}`", _pos(node, at))
        d = node.data
        if d in ("s_and", "s_or"):
            joiner = " and " if d == "s_and" else " or "
            return "(" + joiner.join(self.array_test(c, at) for c in node.children) + ")"
        if d == "s_not":
            return f"not {self.array_test(node.children[0], at)}"
        if d == "s_cmp":
            tok = str(node.children[0])
            m = re.fullmatch(r'("(?:\\.|[^"\\])*"|[^\s!=<>]+)\s*(!=|>=|<=|=|>|<)\s*(.*)', tok, re.S)
            assert m
            name, op, values = _unq(m.group(1)), m.group(2), [_unq(m.group(3))]
        elif d == "s_in":
            name, op, values = _unq(str(node.children[0])), "=", [_unq(str(v)) for v in node.children[1:]]
        else:
            raise Refusal(f"search construct `{d}` over a multivalue path", _pos(node, at))
        if op != "=":
            raise Refusal(f"`{name}{op}…`: only `=` (some value matches) is translated for a multivalue path",
                          _pos(node, at))
        for v in values:
            if "\\" in v or "?" in v:
                raise Refusal(f"search value `{v}` with `\\` or `?` on a multivalue path", _pos(node, at))
        field = self.array_field(name, _pos(node, at))
        sel = f"sel{len(self.detection) + 1}"
        self.detection[sel] = {field: values[0] if len(values) == 1 else values}
        return sel

    def array_field(self, name: str, at: int) -> str:
        """`a{}.b` as the source's Sigma field `a[].b`: the path up to the first `{}` is a source field (read through
        the binding as any field is), the members after it are the record's own."""
        if "{}" not in name:
            raise Refusal(f"field `{name}` beside a multivalue path in one OR/NOT (only `{{}}` tests there)", at)
        head = name.split("{}", 1)[0]
        canon = self.source_field(head)
        b = self.s.binding
        renamed = b is not None and head in b.columns.values() and canon != head
        if canon is None or renamed or self.s.prefix is not None:
            raise Refusal(f"multivalue path `{name}`: `{head}` has no source field of the same shape in "
                          f"{self.s.source}", at)
        return canon + name[len(head):].replace("{}", "[]")

    def binding_of(self, macro: str, at: int) -> Binding:
        user = self.macros.get(macro)
        for b in _aws_splunk_bindings():
            if b.extra.get("search") == f"`{macro}`":
                return b
            own = (b.extra.get("macros") or {}).values()
            if user is not None and any(user.definition.strip() == str(d.get("definition")).strip() for d in own):
                return b
        raise Refusal(f"source macro `{macro}` names no source siemforge has", at)

    def flat_and(self, node: _Node | lark.Token) -> list[_Node | lark.Token]:
        if isinstance(node, lark.Tree) and node.data == "s_and":
            return list(node.children)
        return [node]

    # -------------------------------------------------------------- fields
    def field(self, name: str, at: int) -> str:
        """The pipeline-language expression for SPL field `name` at this point of the search."""
        s = self.s
        if s.columns is not None:
            if name in s.columns:
                return _col(name)
            raise Refusal(f"field `{name}` is not a column here (after the aggregation: {', '.join(s.columns)})", at)
        if name in self.multivalue:
            raise Refusal(f"multivalue field `{name}` read one value at a time (only `search {name}=value`, some "
                          "value matches, and `mvappend` are translated for it)", at)
        if name in s.local:
            return _col(name)
        if name == "date_hour":
            return "hourofday(_time)"
        if name == "_time":
            return "_time"
        if s.prefix is not None and "." not in name:
            inner = f"{s.prefix}.{name}"
            plain = self.source_field(name)
            if plain is None:
                return f"tostring({inner})"
            # the renamed field replaces the source's own where the event has it: one column, set at the rename
            self.insert_at_rename(f"{_col(name)} = iif(isnotnull({inner}), tostring({inner}), {plain})")
            s.local.add(name)
            return _col(name)
        if name == "errorCode" and s.binding is not None and s.binding.name == "raw":
            # the AWS add-on writes `success` where CloudTrail's record has no errorCode (decision 58)
            return _ERROR_CODE
        if name == "status" and s.binding is not None and s.binding.name == "asl":
            return self.asl_status(at)
        found = self.source_field(name)
        if found is None and "{}" in name:
            raise Refusal(f"multivalue path `{name}` (an array's elements as one field) has no translation", at)
        if found is None:
            b = s.binding
            where = f"{s.source} ({b.name} binding)" if b else s.source
            from siemforge.compiler.sources import package_sources

            if b is not None and name in package_sources()[s.source].aliases:
                raise Refusal(f"field `{name}` is one the AWS add-on derives for aws:cloudtrail events; the {b.name} "
                              f"binding's events ({b.extra.get('data_source', {}).get('sourcetype', b.name)}) have "
                              "no such field from it, and their own field of that name is not mapped", at)
            raise Refusal(f"field `{name}` has no source field in {where}", at)
        return found

    def asl_status(self, at: int) -> str:
        """OCSF `status` of a Security Lake record: the source's `ocsf_status` (docs/semantics.md decision 90), which is
        a function of errorCode for API Activity and Account Change records only. Exact when the base search keeps
        operations Security Lake writes as one of those (`api.operation=X`, no wildcard, none of the Authentication
        ones); refused otherwise."""
        if self.asl_operations is None:
            raise Refusal("`status` on Security Lake records of any operation: the Authentication records "
                          "(ConsoleLogin, AssumeRole…) take their OCSF status from other rules than errorCode, and the "
                          "base search names no `api.operation=` value to rule them out", at)
        auth = sorted(o for o in self.asl_operations if o.lower() in _ASL_AUTHENTICATION)
        if auth:
            raise Refusal(f"`status` of Security Lake `{auth[0]}` records: Security Lake writes them as Authentication "
                          "records, whose OCSF status does not follow errorCode", at)
        return "ocsf_status"

    def source_field(self, name: str) -> str | None:
        from siemforge.compiler.sources import package_sources

        src = package_sources()[self.s.source]
        b = self.s.binding
        if "{}" in name:
            return None
        if b is not None:
            for canon, phys in b.columns.items():
                if phys == name:
                    return canon
            for canon, phys in b.json_columns.items():
                if name.startswith(phys + "."):
                    return canon + name[len(phys):]
                if name == phys:
                    return canon
            if name in src.aliases and "aliases" in b.extra:
                return name  # the add-on derives it on this binding's events (decision 80)
            return None
        if name in src.fields:
            return name
        return None

    # -------------------------------------------------------------- search terms
    def sterm(self, node: _Node | lark.Token, at: int, top: bool = False,
              dm: str | None = None) -> str:
        if isinstance(node, lark.Token):
            raise Refusal(f"raw-text search term `{node}`", _pos(node, at))
        d = node.data
        if d == "s_and":
            parts = [self.sterm(c, at, dm=dm) for c in node.children]
            text = " and ".join(parts)
            return text if top else f"({text})"
        if d == "s_or":
            return "(" + " or ".join(self.sterm(c, at, dm=dm) for c in node.children) + ")"
        if d == "s_not":
            return f"not {self.sterm(node.children[0], at, dm=dm)}"
        if d == "s_cmp":
            return self.scmp(str(node.children[0]), _pos(node, at), dm)
        if d == "s_in":
            f = self.sfield(_unq(str(node.children[0])), _pos(node, at), dm)
            vals = [_unq(str(v)) for v in node.children[1:]]
            if any("*" in v or "?" in v for v in vals):
                return "(" + " or ".join(self.match(f, "=", v, _pos(node, at)) for v in vals) + ")"
            return f"{f} in~ ({', '.join(_str(v) for v in vals)})"
        if d == "s_macro":
            tok = str(node.children[0])
            m = re.fullmatch(r"`([A-Za-z0-9_]+)(?:\((.*)\))?`", tok, re.S)
            assert m
            body = self.expand(m.group(1), m.group(2), _pos(node, at))
            try:
                tree = _parser().parse(body, start="search")
            except lark.exceptions.UnexpectedInput:
                raise Refusal(f"macro `{m.group(1)}` is not a search expression", _pos(node, at)) from None
            return self.sterm(tree.children[0], _pos(node, at), top=top, dm=dm) if tree.children else "true"
        if d == "s_term":
            raise Refusal(f"raw-text search term `{node.children[0]}`", _pos(node, at))
        raise Refusal(f"search construct `{d}`", _pos(node, at))

    def sfield(self, name: str, at: int, dm: str | None) -> str:
        if dm is not None:
            return self.dm_field(name, dm, at)
        return self.field(name, at)

    def scmp(self, tok: str, at: int, dm: str | None) -> str:
        m = re.fullmatch(r'("(?:\\.|[^"\\])*"|[^\s!=<>]+)\s*(!=|>=|<=|=|>|<)\s*(.*)', tok, re.S)
        assert m
        name, op, raw = _unq(m.group(1)), m.group(2), m.group(3)
        value = _unq(raw)
        if name == "date_wday" and dm is None and value.lower() in _DAYS and op in ("=", "!="):
            test = f"dayofweek(_time) == {_DAYS.index(value.lower())}"
            return test if op == "=" else f"not ({test})"
        if dm is None and name in self.multivalue and self.s.columns is None:
            return self.multivalue_match(name, op, value, at)
        f = self.sfield(name, at, dm)
        if op in ("<", ">", "<=", ">="):
            if not re.fullmatch(r"-?\d+(\.\d+)?", value):
                raise Refusal(f"`{tok}`: a search comparison with a non-number", at)
            return f"{f} {op} {value}"
        return self.match(f, op, value, at)

    def multivalue_match(self, name: str, op: str, value: str, at: int) -> str:
        """`search N=v` on a multivalue field: true when one of its values matches (Splunk's search on a multivalue
        field), so the OR of each part's test: a single value's own test, or some element of an array (the IR's
        AnyElement, `x[] =~ v`; docs/semantics.md decision 110)."""
        if op != "=":
            raise Refusal(f"`{name}{op}…` on a multivalue field: only `=` (some value matches) is translated", at)
        if "*" in value or "?" in value or "\\" in value:
            raise Refusal(f"search value `{value}` with a wildcard or `\\` on the multivalue field `{name}` (one of "
                          "its values may be an array's JSON text, which Splunk's spath and the IR may space "
                          "differently)", at)
        tests = [self.match(expr, "=", value, at) if kind == "one" else f"{expr}[] =~ {_str(value)}"
                 for kind, expr in self.multivalue[name]]
        return tests[0] if len(tests) == 1 else "(" + " or ".join(tests) + ")"

    def match(self, f: str, op: str, value: str, at: int) -> str:
        """`field=value` in a search: case-insensitive, `*` a wildcard; `field!=value` needs the field present."""
        if "?" in value and "*" in value:
            raise Refusal(f"search value `{value}` with `?`", at)
        if value == "*":
            test = f"isnotnull({f})"
            return test if op == "=" else "false"
        if f == _ERROR_CODE and value.lower() == "success":
            test = "isempty(errorCode)"
        elif f.startswith("hourofday(") and re.fullmatch(r"\d+", value):
            test = f"{f} == {value}"
        elif "*" in value:
            test = f"{f} like {_str(value)}"
        else:
            test = f"{f} =~ {_str(value)}"
        return test if op == "=" else f"(isnotnull({f}) and not ({test}))"

    # -------------------------------------------------------------- expressions (eval, where)
    def expr(self, node: _Node | lark.Token, at: int) -> str:
        if isinstance(node, lark.Token):
            raise Refusal(f"expression `{node}`", _pos(node, at))
        d, ch = node.data, node.children
        if d in ("e_or", "e_and", "e_cmp", "e_sum", "e_prod") and len(ch) == 1:
            return self.expr(ch[0], at)  # a pass-through level of the grammar
        if d == "e_or":
            return "(" + " or ".join(self.expr(c, at) for c in ch) + ")"
        if d == "e_and":
            return "(" + " and ".join(self.expr(c, at) for c in ch) + ")"
        if d == "e_not":
            return f"not ({self.expr(ch[0], at)})"
        if d == "e_cmp":
            left, op_tok, right = ch
            a, b = self.expr(left, at), self.expr(right, at)
            op = str(op_tok)
            if b.startswith(_EPOCH) and not a.startswith(_EPOCH):  # epoch seconds against relative_time(now(), …)
                a, b = f"unixtime_seconds_todatetime({a})", b[len(_EPOCH):]
            elif a.startswith(_EPOCH) and not b.startswith(_EPOCH):
                a, b = a[len(_EPOCH):], f"unixtime_seconds_todatetime({b})"
            if _EPOCH in a or _EPOCH in b:
                raise Refusal("relative_time() outside a comparison", _pos(node, at))
            if op in ("=", "=="):
                return f"{a} == {b}"
            if op == "!=":  # null operands make the SPL comparison false, ours true (docs/semantics.md 1)
                guards = [f"isnotnull({x})" for x in (a, b) if not self.literal(x) and x not in self.s.nonnull]
                return "(" + " and ".join([*guards, f"{a} != {b}"]) + ")"
            return f"{a} {op} {b}"
        if d == "e_sum":
            out = self.expr(ch[0], at)
            for sign, operand in zip(ch[1::2], ch[2::2], strict=True):
                b = self.expr(operand, at)
                out = f"strcat({out}, {b})" if str(sign) == "." else f"({out} {sign} {b})"
            return out
        if d == "e_prod":
            out = self.expr(ch[0], at)
            for sign, operand in zip(ch[1::2], ch[2::2], strict=True):
                out = f"({out} {sign} {self.expr(operand, at)})"
            return out
        if d == "e_neg":
            return f"-{self.expr(ch[0], at)}"
        if d == "e_string":
            return _str(_eval_str(str(ch[0])))
        if d == "e_number":
            return str(ch[0])
        if d in ("e_field", "e_qfield"):
            return self.field(_unq(str(ch[0])), _pos(node, at))
        if d == "e_call":
            return self.call(str(ch[0]), [c for c in ch[1:] if c is not None], _pos(node, at), at)
        if d == "e_macro":
            tok = str(ch[0])
            m = re.fullmatch(r"`([A-Za-z0-9_]+)(?:\((.*)\))?`", tok, re.S)
            assert m
            body = self.expand(m.group(1), m.group(2), _pos(node, at))
            try:
                tree = _parser().parse(body, start="expr")
            except lark.exceptions.UnexpectedInput:
                raise Refusal(f"macro `{m.group(1)}` is not an expression", _pos(node, at)) from None
            return self.expr(tree, _pos(node, at))
        raise Refusal(f"expression construct `{d}`", _pos(node, at))

    @staticmethod
    def literal(x: str) -> bool:
        return bool(re.fullmatch(r'-?\d+(\.\d+)?|"(\\.|[^"\\])*"', x))

    def call(self, fn: str, args: list[Any], at: int, base: int) -> str:
        args = [_unwrap(a) for a in args]
        if fn == "strftime" and len(args) == 2 and self.time_arg(args[0]):
            fmt = args[1]
            fmt_s = _unq(str(fmt.children[0])) if isinstance(fmt, lark.Tree) and fmt.data == "e_string" else None
            if fmt_s == "%H":
                return "hourofday(_time)"
            if fmt_s == "%A":
                return "case(" + ", ".join(f"dayofweek(_time) == {i}, {_str(d.capitalize())}"
                                           for i, d in enumerate(_DAYS[:-1])) + ', "Saturday")'
            raise Refusal(f"strftime format {fmt_s!r}", at)
        if fn == "relative_time" and len(args) == 2:
            now = self.expr(args[0], base)
            spec = args[1]
            if isinstance(spec, lark.Tree) and spec.data == "e_macro":  # ESCU keeps windows in macros
                m = re.fullmatch(r"`([A-Za-z0-9_]+)`", str(spec.children[0]))
                spec = _unwrap(_parser().parse(self.expand(m.group(1), None, at), start="expr")) if m else spec
            text = _unq(str(spec.children[0])) if isinstance(spec, lark.Tree) and spec.data == "e_string" else None
            m = re.fullmatch(r"-(\d+)([smhd])(?:@([smhd]))?", text or "")
            if now != "now()" or m is None:
                raise Refusal("relative_time other than relative_time(now(), \"-N<unit>[@<unit>]\")", at)
            shifted = f"now() - {m.group(1)}{m.group(2)}"
            # relative_time returns epoch seconds: the comparison it is in reads the other side as epoch seconds
            inner = f"bin({shifted}, 1{m.group(3)})" if m.group(3) else shifted
            return f"{_EPOCH}{inner}"
        simple = {"isnull": "isnull", "isnotnull": "isnotnull", "if": "iif", "coalesce": "coalesce",
                  "lower": "tolower", "upper": "toupper", "len": "strlen", "now": "now", "tostring": "tostring"}
        if fn == "min" and len(args) == 1 or fn == "max" and len(args) == 1:
            return self.expr(args[0], base)
        if fn == "replace" and len(args) == 3:
            return self.replace(args, at, base)
        if fn == "match" and len(args) == 2:
            return f"{self.expr(args[0], base)} matches regex {self.expr(args[1], base)}"
        if fn == "true" and not args:
            return "true"
        if fn == "case":
            parts = [self.expr(a, base) for a in args]
            if len(parts) >= 2 and parts[-2] == "true":
                parts = parts[:-2] + [parts[-1]]
            else:
                parts.append("null")
            return "case(" + ", ".join(parts) + ")"
        if fn in simple:
            return f"{simple[fn]}({', '.join(self.expr(a, base) for a in args)})"
        raise Refusal(f"eval function `{fn}()` has no translation", at)

    def replace(self, args: list[Any], at: int, base: int) -> str:
        """`replace(x, regex, with)` is the IR's replace_regex: every match replaced, `\\1`…`\\9` in `with` the
        groups (docs/semantics.md decision 47). The regex and the replacement must be string literals; a replacement
        with any other backslash (`\\0`, `\\n`, `\\\\`) is refused: the targets read those differently."""
        rx, repl = args[1], args[2]
        for arg, what in ((rx, "regex"), (repl, "replacement")):
            if not (isinstance(arg, lark.Tree) and arg.data == "e_string"):
                raise Refusal(f"replace() with a {what} that is not a string literal", _pos(arg, base))
        text = _eval_str(str(repl.children[0]))
        bad = re.search(r"\\(?![1-9])", text)
        if bad:
            raise Refusal(f"replace() replacement `{text}`: a backslash other than a group reference \\1…\\9",
                          _pos(repl, base))
        pattern = _eval_str(str(rx.children[0]))
        try:
            groups = compile_re2(pattern).groups
        except RegexRefused as exc:
            raise Refusal(f"replace() regex `{pattern}`: {exc}", _pos(rx, base)) from None
        missing = [g for g in re.findall(r"\\([1-9])", text) if int(g) > groups]
        if missing:
            raise Refusal(f"replace() replacement `{text}` names group {missing[0]}; the regex has {groups}",
                          _pos(repl, base))
        return f"replace_regex({self.expr(args[0], base)}, {self.expr(rx, base)}, {_str(text)})"

    def time_arg(self, node: Any) -> bool:
        """`_time`, or OCSF's `time` (epoch ms) divided back to seconds, on the Security Lake binding."""
        text = self.search.spl  # noqa: F841 - kept simple: read the subtree's own tokens
        toks = [str(t) for t in node.scan_values(lambda v: isinstance(v, lark.Token))] \
            if isinstance(node, lark.Tree) else [str(node)]
        if toks == ["_time"]:
            return True
        b = self.s.binding
        return b is not None and b.name == "asl" and toks in (["time", "/", "pow", "10", "3"], ["time", "/", "1000"])

    # -------------------------------------------------------------- commands
    def search_cmd(self, tree: _Node, at: int) -> None:
        if tree.children:
            self.stages.append("where " + self.sterm(tree.children[0], at, top=True))

    def where(self, tree: _Node, at: int) -> None:
        text = self.expr(tree, at)
        if text.startswith("(") and text.endswith(")") and self.balanced(text[1:-1]):
            text = text[1:-1]
        self.stages.append(f"where {text}")

    @staticmethod
    def balanced(text: str) -> bool:
        depth = 0
        for ch in text:
            depth += (ch == "(") - (ch == ")")
            if depth < 0:
                return False
        return depth == 0

    def eval(self, tree: _Node, at: int) -> None:
        for assign in tree.children:
            assert isinstance(assign, lark.Tree)
            name_tok, value = assign.children
            name = _unq(str(name_tok))
            parts = self.mvappend(value, at)
            if parts is not None:
                self.multivalue[name] = parts
                self.s.local.add(name)
                continue
            text = self.expr(value, at)
            self.define(name, text)

    def mvappend(self, node: _Node | lark.Token, at: int) -> list[tuple[str, str]] | None:
        """`mvappend(f, g, …)` of fields: a multivalue field of every value of each (Splunk: "appends the values of
        the arguments"), kept as its parts for a search test; None for any other expression."""
        node = _unwrap(node)
        if not (isinstance(node, lark.Tree) and node.data == "e_call" and str(node.children[0]) == "mvappend"):
            return None
        args = [_unwrap(a) for a in node.children[1:] if a is not None]
        parts: list[tuple[str, str]] = []
        for a in args:
            if not (isinstance(a, lark.Tree) and a.data in ("e_field", "e_qfield")):
                raise Refusal("`mvappend` of an expression other than a field", _pos(node, at))
            name = _unq(str(a.children[0]))
            if name in self.multivalue:
                parts += self.multivalue[name]
            else:
                parts.append(("one", self.field(name, _pos(a, at))))
        return parts

    def define(self, name: str, text: str) -> None:
        """`extend` one column: SPL assigns in order, so each assignment is its own stage (decision 8)."""
        self.stages.append(f"extend {_col(name)} = {text}")
        self.multivalue.pop(name, None)  # one value now
        self.texts.discard(name)
        self.numeric.discard(name)
        if self.s.columns is None:
            self.s.local.add(name)
        elif name not in self.s.columns:
            self.s.columns.append(name)
        self.s.nonnull.discard(_col(name))

    def aggs(self, tree: _Node, at: int, dm: str | None = None) -> list[tuple[str, str]]:
        out = []
        for agg in (c for c in tree.children if isinstance(c, lark.Tree) and c.data == "agg"):
            fn, arg, name = str(agg.children[0]), agg.children[1], agg.children[2] if len(agg.children) > 2 else None
            if fn not in _AGGS:
                raise Refusal(f"stats function `{fn}` has no translation", _pos(agg, at))
            arg_name = _unq(str(arg)) if arg is not None else None
            if arg_name is not None and "{}" in arg_name and dm is None and fn == "values":
                inner = self.every_element(arg_name, _pos(agg, at))
                out_name = _unq(str(name)) if name is not None else f"{fn}({arg_name})"
                self.numeric.discard(out_name)
                out.append((out_name, f"values({inner})"))
                continue
            if arg_name is not None and "{}" in arg_name and dm is None:
                raise Refusal(f"{fn}() of the multivalue path `{arg_name}`: it aggregates every element's value of "
                              "every event; of the IR's aggregations only values() reads every element (decisions 48, "
                              "87)",
                              _pos(agg, at))
            inner = ""
            if arg_name is not None:
                inner = self.dm_field(arg_name, dm, _pos(agg, at)) if dm else self.field(arg_name, _pos(agg, at))
            out_name = _unq(str(name)) if name is not None else (f"{fn}({arg_name})" if arg_name else fn)
            if arg_name in self.texts and fn in _NUMERIC_AGGS + ("min", "max"):
                # decision 86: Splunk's stats read the values as numbers, skipping those that are not (min/max: "as
                # numbers if possible")
                inner = f"todouble({inner})"
                if fn in ("min", "max"):
                    self.notes.append(f"{fn}({arg_name}) reads the values as numbers; a group that mixes numbers with "
                                      "other text is not documented by Splunk, and here its other text is skipped")
            if fn in _NUMERIC_AGGS + ("count", "dc", "distinct_count") or inner.startswith("todouble("):
                self.numeric.add(out_name)
            else:
                self.numeric.discard(out_name)
            out.append((out_name, f"{_AGGS[fn]}({inner})"))
        return out

    def every_element(self, name: str, at: int) -> str:
        """`a{}.b` read by values(): the IR's `a[].b`, the scalars at b of every element of the source's array a
        (docs/semantics.md decision 87). One `{}`, after a field of the source itself."""
        head, _, rest = name.partition("{}")
        if "{}" in rest or not head or (rest and not rest.startswith(".")):
            raise Refusal(f"values() of the multivalue path `{name}`: arrays inside arrays (one `{{}}` is read)", at)
        base = self.field(head, at)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", base) or \
                (self.s.columns is None and base != head and self.source_field(head) is None):
            raise Refusal(f"values() of the multivalue path `{name}`: `{head}` is not an array of the source", at)
        members = rest[1:].split(".") if rest else []
        if any(not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m) for m in members):
            raise Refusal(f"values() of the multivalue path `{name}`: a member name the language cannot write", at)
        return base + "[]" + "".join("." + m for m in members)

    def keys(self, tree: _Node, at: int, dm: str | None = None) -> list[tuple[str, str]]:
        fl = next((c for c in tree.children if isinstance(c, lark.Tree) and c.data == "field_list"), None)
        if fl is None:
            return []
        out = []
        for c in fl.children:
            if isinstance(c, lark.Tree):  # span
                raise Refusal("`span=` in a by clause", _pos(c, at))
            name = _unq(str(c))
            if dm:
                expr = self.dm_field(name, dm, _pos(c, at))
                name = name.split(".")[-1]
                self.s.dm_prefixes = sorted(set(self.s.dm_prefixes) | self.dm_prefixes(c, dm))
            else:
                if "{}" in name:
                    raise Refusal(f"`by` the multivalue path `{name}`: Splunk puts the event in the group of each of "
                                  "its values (decision 48)", _pos(c, at))
                expr = self.field(name, _pos(c, at))
                if self.json_valued(expr):
                    # SPL groups by the field's text; a JSON value as a key is its text too (as decision 51 for
                    # KQL), and KQL cannot group by a `dynamic` value (Kusto.Language KS116)
                    expr = f"tostring({expr})"
            out.append((name, expr))
        return out

    def json_valued(self, expr: str) -> bool:
        """`expr` is a source field the source holds as JSON or does not type (a member of a JSON column)."""
        from siemforge.compiler.sources import package_sources

        if self.s.columns is not None or expr in self.s.local or not re.fullmatch(r"[\w.]+", expr):
            return False
        return package_sources()[self.s.source].field_type(expr) in (Type.DYNAMIC, Type.ANY)

    def summarize(self, aggs: list[tuple[str, str]], keys: list[tuple[str, str]], drop_null_keys: bool) -> None:
        parts = [f"{_col(n)} = {e}" for n, e in aggs]
        by = [e if e == _col(n) else f"{_col(n)} = {e}" for n, e in keys]
        stage = "summarize " + ", ".join(parts)
        if by:
            one_line = f"{stage} by {', '.join(by)}"
            stage = one_line if len(one_line) <= 100 else stage + "\n    by " + ", ".join(by)
        self.stages.append(stage)
        self.summarize_at = len(self.stages) - 1
        if drop_null_keys and keys:
            # SPL stats/tstats leave out events with a null by-field; the IR keeps them as a group of their own
            # (decision 9), so the import drops those groups: the same rows, and tstats still says it (decision 56)
            self.stages.append("where " + " and ".join(f"isnotnull({_col(n)})" for n, _ in keys))
            self.null_filter_at = len(self.stages) - 1
        self.summarize_names = {n: n for n, _ in keys + aggs}
        self.s.columns = [n for n, _ in keys] + [n for n, _ in aggs]
        self.s.local, self.s.prefix, self.s.filled = set(), None, False
        self.s.nonnull = {_col(n) for n, _ in keys} if drop_null_keys else set()

    def stats(self, tree: _Node, at: int) -> None:
        if any(isinstance(c, lark.Tree) and c.data == "stats_arg" for c in tree.children):
            raise Refusal("stats options", at)
        self.summarize(self.aggs(tree, at), self.keys(tree, at), drop_null_keys=not self.s.filled)

    def eventstats(self, tree: _Node, at: int) -> None:
        aggs = self.aggs(tree, at)
        keys = self.keys(tree, at)
        stage = "eventstats " + ", ".join(f"{_col(n)} = {e}" for n, e in aggs)
        if keys:
            raise Refusal("eventstats … by (SPL leaves rows with a null key out of every group)", at)
        self.stages.append(stage)
        for n, _ in aggs:
            self.multivalue.pop(n, None)
            if self.s.columns is not None and n not in self.s.columns:
                self.s.columns.append(n)
            elif self.s.columns is None:
                self.s.local.add(n)

    def rename(self, tree: _Node, at: int) -> None:
        for item in tree.children:
            assert isinstance(item, lark.Tree)
            old, new = (_unq(str(t)) for t in item.children)
            pos = _pos(item, at)
            if "*" in old or "*" in new:
                if new == "*" and old.endswith(".*") and self.s.columns is None and self.s.prefix is None:
                    self.s.prefix = self.field(old[:-2], pos)
                    self.rename_at = len(self.stages)
                    continue
                raise Refusal(f"wildcard rename `{old} as {new}`", pos)
            if self.s.columns is not None and old in self.s.columns:
                if self.summarize_at is not None and old in self.summarize_names.values():
                    self.fold_rename(old, new)
                else:
                    self.stages.append(f"rename {_col(new)} = {_col(old)}")
                idx = self.s.columns.index(old)
                if new in self.s.columns:
                    self.s.columns.remove(new)
                    idx = self.s.columns.index(old)
                self.s.columns[idx] = new
                continue
            if self.s.columns is not None:
                continue  # SPL renames only fields that exist: a missing one is a no-op
            if "{}" in old:
                raise Refusal(f"rename of the multivalue path `{old}`: a field holding every element's value, which "
                              "the eval functions and `where` after it read value by value (decision 48)", pos)
            self.define(new, self.field(old, pos))

    def insert_at_rename(self, assignment: str) -> None:
        """Add `assignment` to the `extend` that stands for a `rename P.* as *` (created on first use)."""
        assert self.rename_at is not None
        if self.rename_stage is None:
            self.stages.insert(self.rename_at, "extend " + assignment)
            self.rename_stage = self.rename_at
            if self.summarize_at is not None and self.summarize_at >= self.rename_at:
                self.summarize_at += 1
        else:
            self.stages[self.rename_stage] += ",\n       " + assignment

    def fold_rename(self, old: str, new: str) -> None:
        """A rename right after an aggregation names the aggregation's column: `by user = userIdentity.arn`."""
        assert self.summarize_at is not None
        stage = self.stages[self.summarize_at]
        o, n = _col(old), _col(new)
        pattern = re.compile(rf"(^|[\s,]){re.escape(o)}( = |(?=,|$))", re.M)
        m = pattern.search(stage, stage.index("summarize") + 9)
        assert m, (stage, o)
        if m.group(2) == " = ":
            stage = stage[:m.start()] + m.group(1) + f"{n} = " + stage[m.end():]
        else:
            stage = stage[:m.start()] + m.group(1) + f"{n} = {o}" + stage[m.end():]
        self.stages[self.summarize_at] = stage
        if self.null_filter_at is not None:
            at = self.null_filter_at
            self.stages[at] = self.stages[at].replace(f"isnotnull({o})", f"isnotnull({n})")
        self.s.nonnull = {n if x == o else x for x in self.s.nonnull}
        for k, v in list(self.summarize_names.items()):
            if v == old:
                self.summarize_names[k] = new

    def sort(self, text: str, at: int) -> None:
        """`sort [N] -f, -g`: the rows by each field, largest first, then the first N (10,000 when no N is given, all
        for 0), as Splunk's sort documents (docs/semantics.md decision 86). Descending only: Splunk puts a row
        missing the field last either way, the IR first when ascending. A field of text is refused: Splunk's
        automatic order reads numeric text as numbers."""
        m = re.fullmatch(r"\s*(?:(?:limit\s*=\s*)?(\d+)\s+)?(.*?)\s*", text, re.S)
        assert m is not None
        count = 10000 if m.group(1) is None else int(m.group(1))
        keys = []
        for item in re.split(r"\s*,\s*|\s+", m.group(2)):
            f = re.fullmatch(r"([+-]?)\s*([A-Za-z_][A-Za-z0-9_.]*)", item)
            if f is None:
                raise Refusal(f"`sort` by `{item}` (only `-field`: a field name, descending)", at)
            if f.group(1) != "-":
                raise Refusal("ascending `sort`: Splunk puts rows missing the field last, the IR first", at)
            name = f.group(2)
            if name not in self.numeric:
                raise Refusal(f"`sort` by `{name}`, which may be text: Splunk's automatic order reads numeric text "
                              "as numbers (only an aggregation's number is sorted)", at)
            keys.append(f"{_col(name)} desc")
        if not keys:
            raise Refusal("`sort` without a field", at)
        self.stages.append("sort by " + ", ".join(keys))
        if count:
            self.stages.append(f"limit {count}")

    def table(self, tree: _Node, at: int) -> None:
        names = [_unq(str(c)) for c in tree.children]
        if any("*" in n for n in names):
            raise Refusal("`table` with a wildcard", at)
        exprs = []
        for n, c in zip(names, tree.children, strict=True):
            e = self.field(n, _pos(c, at))
            exprs.append(e if e == _col(n) else f"{_col(n)} = {e}")
        self.stages.append("project " + ", ".join(exprs))
        self.s.columns = names
        self.s.local, self.s.prefix = set(), None

    def fields(self, tree: _Node, at: int) -> None:
        ch = tree.children
        if ch and isinstance(ch[0], lark.Token) and ch[0].type == "FIELDSIGN":
            if str(ch[0]) == "-":
                raise Refusal("`fields -`", at)
            ch = ch[1:]
        self.table(lark.Tree("table", list(ch)), at)

    def fillnull(self, tree: _Node, at: int) -> None:
        if tree.children:
            raise Refusal("`fillnull` with options or a field list", at)
        # only meaningful before an aggregation: it keeps rows whose by-fields are null (decision 56)
        self.s.filled = True

    def mvexpand(self, tree: _Node, at: int) -> None:
        """`spath path=X{} output=N | mvexpand N`: one row per element of the array X (docs/semantics.md decision
        62). SPL has no row for an event whose X is missing, null, empty or not an array (spath reads no value,
        and mvexpand makes no event of a field without one), so those rows are filtered out first, where the IR's
        Expand would keep a null's."""
        names = [_unq(str(c)) for c in tree.children]
        read = self.array_read
        self.array_read = None
        if read is None or names != [read[0]]:
            raise Refusal("`mvexpand` of a field other than the array `spath path=X{} output=…` just read", at)
        name, array, _ = read
        self.stages.append(f"where array_length({array}) > 0")
        self.stages.append(f"mv-expand {_col(name)} = {array}")
        self.s.local.add(name)
        self.expanded.add(name)

    def spath(self, tree: _Node, at: int) -> None:
        opts: dict[str, str] = {}
        for c in tree.children:
            k, _, v = str(c).partition("=")
            if not v:
                raise Refusal("`spath` without path=/output=", at)
            opts[k] = _unq(v)
        if set(opts) == {"input"} and opts["input"] in self.expanded and self.s.columns is None \
                and self.s.prefix is None:
            # every member of the element becomes a field, replacing the event's own where the element has it: the
            # same as `rename N.* as *`
            self.s.prefix = _col(opts["input"])
            self.rename_at = len(self.stages)
            return
        if set(opts) - {"input", "path", "output"} or "path" not in opts or "output" not in opts:
            raise Refusal("`spath` other than input=, path=, output=", at)
        path = opts["path"]
        if path.endswith("{}") and "{" not in path[:-2] and path[:-2]:
            base = self.spath_input(opts["input"], at) + "." if "input" in opts else ""
            self.array_read = (opts["output"], base + path[:-2] if base else self.field(path[:-2], at), at)
            return
        if "{" in path:
            head = path.split("{", 1)[0]
            if "input" not in opts and self.s.source == "aws.cloudtrail" and self.source_field(head) in _OBJECTS:
                raise Refusal(f"`spath` path `{path}`: `{{}}` after `{head}`, which every CloudTrail record holds as "
                              "a JSON object, not an array; Splunk's spath documents `{}` only as an array's "
                              "elements, so what it reads here is not known (docs/semantics.md decision 91)", at)
            raise Refusal(f"`spath` path `{path}` into an array", at)
        base = self.spath_input(opts["input"], at) + "." if "input" in opts else ""
        expr = base + path if base else self.field(path, at)
        self.define(opts["output"], f"tostring({expr})")
        self.texts.add(opts["output"])

    def spath_input(self, name: str, at: int) -> str:
        """The JSON value `spath input=F` reads. A member of a CloudTrail object (`requestParameters.policy`) is a
        field of the event only as text (Splunk's JSON extraction makes fields of leaves, decision 87): spath parses
        that text, so the rule reads `parse_json(F)` (docs/semantics.md decision 111)."""
        f = self.field(name, at)
        head = name.split(".", 1)[0]
        if ("." in name and name not in self.s.local and self.s.source == "aws.cloudtrail"
                and self.s.binding is not None and self.s.binding.name == "raw" and self.source_field(head) in _OBJECTS
                and f == name):
            return f"parse_json({f})"
        return f

    def bin(self, tree: _Node, at: int) -> None:
        opts = [str(c) for c in tree.children]
        span = [o for o in opts if o.startswith("span=")]
        fields = [o for o in opts if not o.startswith("span=")]
        if fields != ["_time"] or len(span) != 1 or not re.fullmatch(r"span=\d+[smhd]", span[0]):
            raise Refusal("`bin` other than `bin _time span=N<unit>`", at)
        if self.s.columns is not None:
            raise Refusal("`bin _time` after an aggregation", at)
        self.stages.append(f"extend _time = bin(_time, {span[0][5:]})")
        self.s.local.add("_time")

    # -------------------------------------------------------------- tstats over a data model
    def tstats(self, tree: _Node, at: int) -> None:
        dm_tok = next(c for c in tree.children if isinstance(c, lark.Token) and c.type == "DATAMODEL")
        model = str(dm_tok).split("=", 1)[1]
        if model not in _DATA_MODELS:
            raise Refusal(f"data model `{model}` has no source in siemforge", _pos(dm_tok, at))
        source, dm = _DATA_MODELS[model]
        for c in tree.children:
            if isinstance(c, lark.Tree) and c.data == "tstats_arg":
                tok = str(c.children[0])
                if not tok.startswith("`security_content_summariesonly"):
                    raise Refusal(f"tstats option `{tok}`", _pos(c, at))
        words = [str(t) for t in tree.scan_values(lambda v: isinstance(v, lark.Token))]
        if dm == "All_Changes" and not any(
                "Instance_Changes." in w or re.fullmatch(r'All_Changes\.object_category\s*=\s*"?instance"?', w)
                for w in words):
            raise Refusal("tstats over every change: siemforge's cim.change view holds the data model's "
                          "Instance_Changes only (the search names no Instance_Changes field and no "
                          "object_category=instance)", _pos(dm_tok, at))
        self.s.source = source
        where = next((c for c in tree.children if isinstance(c, lark.Tree) and c.data == "search"), None)
        if where is not None and where.children:
            self.stages.append("where " + self.sterm(where.children[0], at, top=True, dm=dm))
        aggs = self.aggs(tree, at, dm=dm)
        for n, _ in aggs:
            if "." in n:
                raise Refusal(f"tstats output `{n}` (name it with `as`)", at)
        self.summarize(aggs, self.keys(tree, at, dm=dm), drop_null_keys=True)

    def dm_field(self, name: str, dm: str, at: int) -> str:
        parts = name.split(".")
        if parts[0] == "_time" and len(parts) == 1:
            return "_time"
        child = _DATASETS.get(dm)
        if parts[0] != dm or len(parts) < 2 or len(parts) > 3 or (len(parts) == 3 and parts[1] != child):
            raise Refusal(f"data model field `{name}`", at)
        from siemforge.compiler.sources import package_sources

        if parts[-1] not in package_sources()[self.s.source].fields:
            raise Refusal(f"data model field `{name}` has no field in {self.s.source}", at)
        return parts[-1]

    def dm_prefixes(self, tok: Any, dm: str) -> set[str]:
        parts = _unq(str(tok)).split(".")
        return {p for p in parts[:-1]}

    # -------------------------------------------------------------- lookups
    def lookup(self, tree: _Node, at: int) -> None:
        ch = list(tree.children)
        if any(isinstance(c, lark.Token) and c.type == "LOOKUP_OPT" for c in ch):
            raise Refusal("lookup options", at)
        table = _unq(str(ch[0]))
        keys, outs, mode = [], [], None
        for c in ch[1:]:
            if isinstance(c, lark.Token) and c.type == "LOOKUP_OUT":
                mode = str(c)
            elif isinstance(c, lark.Tree) and c.data == "lookup_in":
                keys.append([_unq(str(x)) for x in c.children])
            elif isinstance(c, lark.Tree):
                outs.append([_unq(str(x)) for x in c.children])
        if mode == "OUTPUTNEW" and (self.s.columns is None or any(o[-1] in self.s.columns for o in outs)):
            # after an aggregation the row holds only its columns: an output none of them is can have no value to
            # keep, and OUTPUTNEW writes it as OUTPUT does (decision 81)
            raise Refusal("`lookup … OUTPUTNEW` (keeps a value the row already has)", at)
        if not outs:
            raise Refusal("`lookup` without OUTPUT", at)
        self.declare_table(table, at)
        on = []
        for k in keys:
            table_col, event = k[0], k[-1]
            e = self.field(event, at)
            on.append(e if e == _col(table_col) else f"{e} = {_col(table_col)}")
        out = [_col(o[0]) if len(o) == 1 else f"{_col(o[0])} as {_col(o[1])}" for o in outs]
        self.stages.append(f"lookup {table} on {', '.join(on)} output {', '.join(out)}")
        for o in outs:
            self.multivalue.pop(o[-1], None)
            if self.s.columns is not None and o[-1] not in self.s.columns:
                self.s.columns.append(o[-1])
            elif self.s.columns is None:
                self.s.local.add(o[-1])

    def declare_table(self, table: str, at: int) -> None:
        """A lookup table of ESCU's repository: filled by a baseline search (`outputlookup table`), it becomes the
        rule's `baselines:` entry; the table itself ships empty beside the rule."""
        root = self.search.origin.resolve().parent.parent
        spec = self.baseline_for(table, root / "baselines")
        if spec is None:
            raise Refusal(f"lookup `{table}`: no baseline search fills it and no table file ships with it", at)
        key, where, warmup, forget, types = spec
        entry: dict[str, Any] = {"key": key, "where": where, "warmup": warmup}
        if forget:
            entry["forget"] = forget
        else:
            self.notes.append(f"{table}: the forget window macro is not defined; siemforge's default (90d) is used")
        self.baselines[table] = entry
        self.lookups[table] = {"file": f"lookups/{table}.csv", "types": types}
        self.tables[table] = list(types)

    def baseline_for(self, table: str, folder: Path) -> tuple[str, str, str, str | None, dict[str, str]] | None:
        if not folder.is_dir():
            return None
        for f in sorted(folder.glob("*.yml")):
            d = yaml.safe_load(f.read_text(encoding="utf-8"))
            spl = d.get("search", "") if isinstance(d, dict) else ""
            if not re.search(rf"outputlookup\s+{re.escape(table)}\s*$", spl):
                continue
            sub = Translator(Search(f, table, spl, [], "", {}), self.macros)
            first, _ = split_commands(spl)[1]
            tree = sub.parse("tstats", first[len("tstats"):], 0)
            where_node = next((c for c in tree.children if isinstance(c, lark.Tree) and c.data == "search"), None)
            sub.s.source = "cim.change"
            where = sub.sterm(where_node.children[0], 0, top=True, dm="All_Changes") if where_node else "true"
            keys = sub.keys(tree, 0, dm="All_Changes")
            if len(keys) != 1:
                return None
            warm = re.search(r'enough_data\s*=\s*if\(globalFirstTime\s*<=\s*relative_time\(now\(\),\s*"-(\d+d)@d"\)',
                             spl)
            if warm is None:
                return None
            forget = None
            fm = re.search(r"relative_time\(now\(\),\s*`([A-Za-z0-9_]+)`\)", spl)
            if fm and fm.group(1) in self.macros:
                m = re.fullmatch(r'"?-(\d+d)(@d)?"?', self.macros[fm.group(1)].definition.strip())
                forget = m.group(1) if m else None
            key = keys[0][0]
            types = {key: "string", "firstTimeSeen": "int", "lastTimeSeen": "int", "enough_data": "int"}
            return key, where, warm.group(1), forget, types
        return None
