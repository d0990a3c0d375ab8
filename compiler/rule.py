"""The rule file: YAML that is a superset of Sigma, loaded with positions into a checked model.

Keys beyond Sigma: query, source, schedule, alert, entities, details, lookups, tests, version.
"""

from __future__ import annotations

import csv
import difflib
import os
import re
import stat
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from . import ir
from .analyze import LookupDecl
from .diagnostics import CompileError, DiagnosticSink, Span
from .limits import (
    MAX_CONDITION_CHARS,
    MAX_CONDITION_DEPTH,
    MAX_DETECTION_VALUES,
    MAX_LOOKUP_BYTES,
    MAX_PATTERN_CHARS,
    MAX_RULE_BYTES,
)
from .parser import parse_datetime_text, parse_duration
from .types import Type, parse_type
from .yamlpos import PositionedYaml, TextOrigin, is_multi_document, load_yaml, load_yaml_all

SIGMA_KEYS = {
    "title",
    "id",
    "name",
    "status",
    "description",
    "author",
    "date",
    "modified",
    "references",
    "tags",
    "logsource",
    "detection",
    "falsepositives",
    "level",
    "fields",
    "related",
    "license",
    "taxonomy",
    "scope",
    "correlation",
    "filter",
    "generate",
}
SIEMFORGE_KEYS = {"query", "source", "schedule", "alert", "entities", "details", "lookups", "tests", "version",
                  "baselines"}
LEVELS = ("informational", "low", "medium", "high", "critical")
# Sigma's statuses, and contentctl's `production` (Splunk content's word for a tested, deployable detection)
STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported", "production")
RELATED_TYPES = ("correlation", "derived", "obsolete", "merged", "renamed", "similar")
# pySigma's accepted date forms: 1000-01-01 … 3999-12-31, and 1000/1/1 … 3999/12/31 (US-style rules)
_DATES = (
    re.compile(r"([1-3][0-9]{3})-([01][0-9])-([0-3][0-9])"),
    re.compile(r"([1-3][0-9]{3})/([01]?[0-9])/([0-3]?[0-9])"),
)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return False
    return isinstance(value, str)


def _valid_date(text: str) -> bool:
    for rx in _DATES:
        m = rx.fullmatch(text)
        if m:
            try:
                date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return False
            return True
    return False


QUERY_NOT_LITERAL = ("write `query` as a literal block (`query: |`): folded or multi-line flow text joins its lines, "
                     "which moves positions and can swallow code after a `//` comment")


def query_lines_joined(doc: PositionedYaml) -> bool:
    """Whether the document's `query` is folded (`>`) or a plain or quoted scalar over several lines: text whose line
    breaks YAML reads as spaces, so a `//` comment on one line swallows the stages of the next."""
    node = doc.node(("query",))
    style = getattr(node, "style", None)
    return node is not None and (style == ">" or (style != "|" and node.end_mark.line > node.start_mark.line))


@dataclass(frozen=True, slots=True)
class Expectation:
    kind: str  # "fires", "silent", "count", "rows"
    count: int | None = None
    rows: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class BaselineSpec:
    table: str
    key: str
    where: str | None
    where_origin: TextOrigin | None
    forget: timedelta
    warmup: timedelta
    span: Span | None


@dataclass(frozen=True, slots=True)
class TestCase:
    name: str
    logs: tuple[Path, ...]
    expect: Expectation
    now: datetime | None
    lookups: dict[str, Path]
    span: Span | None
    binding: str | None = None  # the logs are rows of this physical shape (e.g. sentinel), not raw records
    baselines: dict[str, tuple[Path, ...]] = field(default_factory=dict)  # table -> logs it is built from


@dataclass(slots=True)
class RuleDoc:
    """A rule file after loading and shape checks, before its logic is compiled."""

    path: Path
    text: str
    yaml: PositionedYaml
    data: dict[str, Any]
    query: str | None
    query_origin: TextOrigin | None
    lookups: dict[str, LookupDecl]
    tests: list[TestCase]
    schedule: ir.Schedule | None
    alert: ir.AlertSpec
    entities: tuple[ir.Entity, ...]
    details: tuple[tuple[str, str], ...]
    sink: DiagnosticSink = field(default_factory=DiagnosticSink)
    baselines: dict[str, BaselineSpec] = field(default_factory=dict)
    document: int = 0  # its place in a multi-document file (1, 2, …); 0: the file's only document

    @property
    def title(self) -> str:
        return str(self.data.get("title", self.path.stem))

    @property
    def id(self) -> str:
        rid = self.data.get("id")
        if _is_uuid(rid):
            return str(uuid.UUID(rid))  # one spelling of a UUID (urn:uuid:…, {…}, upper case, no hyphens → canonical)
        stem = self.path.stem if not self.document else f"{self.path.stem}-{self.document}"
        return str(rid or self.data.get("name") or stem)


def read_rule_bytes(path: Path) -> bytes:
    """A rule file's bytes, read no further than MAX_RULE_BYTES (a rule named /dev/zero, or a 10 GB file, is refused
    after reading that much)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_RULE_BYTES + 1)
    except OSError as exc:
        raise CompileError([_diag(f"cannot read: {exc.strerror or exc}", Span(str(path), 1, 1))]) from None
    if len(data) > MAX_RULE_BYTES:
        raise CompileError([_too_big(path)])
    return data


def _too_big(path: Path):  # type: ignore[no-untyped-def]
    return _diag(f"a rule file has at most {MAX_RULE_BYTES:,} bytes; this one has more", Span(str(path), 1, 1),
                 code="limit")


def load_rule(path: Path, text: str | None = None, root: Path | None = None) -> RuleDoc:
    """Load and shape-check one rule file. Raises CompileError (with positions) on any error. Every file the rule
    names (lookups, test logs, baselines) must resolve inside `root`, the folder of rules (default: the rule's
    own folder)."""
    file = str(path)
    if text is None:
        try:
            text = read_rule_bytes(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError([_diag(f"not UTF-8 text: {exc.reason}", Span(file, 1, 1))]) from None
    elif len(text) > MAX_RULE_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_RULE_BYTES:
        raise CompileError([_too_big(path)])
    return _load_doc(path, text, load_yaml(text, file), root)


def load_rules(path: Path, text: str | None = None, root: Path | None = None) -> list[RuleDoc]:
    """Every document of a rule file: one rule, or (multi-document YAML, as Sigma writes correlations) base rules,
    correlations and filters. Raises CompileError on the first document that does not load."""
    if text is None:
        try:
            text = read_rule_bytes(path).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CompileError([_diag(f"not UTF-8 text: {exc.reason}", Span(str(path), 1, 1))]) from None
    if not is_multi_document(text):
        return [load_rule(path, text, root)]
    docs = [_load_doc(path, text, d, root) for d in load_yaml_all(text, str(path))]
    if len(docs) > 1:
        for i, d in enumerate(docs, 1):
            d.document = i
    return docs


def _load_doc(path: Path, text: str, doc: PositionedYaml, root: Path | None) -> RuleDoc:
    file = str(path)
    sink = DiagnosticSink(list(doc.warnings))
    data = doc.value
    if not isinstance(data, dict):
        at = doc.span(()) if doc.root is not None else Span(file, 1, 1)
        sink.error("a rule must be a YAML mapping (title:, logsource:, detection: or query:, …)", at)
        sink.raise_if_errors()
        raise AssertionError
    loader = _Loader(path, doc, sink, (root if root is not None else path.parent).resolve())
    return loader.load(text, data)


def _mapping(value: Any) -> dict[Any, Any]:
    """`value` if it is a mapping, else an empty one (the caller has reported it)."""
    return value if isinstance(value, dict) else {}


def outside_root(path: Path, root: Path) -> Path | None:
    """Where `path` really is (symlinks followed, `..` taken) when that is not inside the folder `root` (resolved),
    else None."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path
    return None if real.is_relative_to(root) else real


def not_a_file(path: Path) -> str | None:
    """What `path` is when it exists and is not a regular file (after symlinks): "a directory", "a FIFO", …"""
    try:
        mode = path.stat().st_mode
    except (OSError, RuntimeError):  # missing: the caller reports it as it sees fit
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _diag(message: str, span: Span | None, code: str = "rule"):  # type: ignore[no-untyped-def]
    from .diagnostics import Diagnostic, Severity

    return Diagnostic(Severity.ERROR, message, span, code=code)


@dataclass(slots=True)
class _Loader:
    path: Path
    doc: PositionedYaml
    sink: DiagnosticSink
    root: Path  # resolved

    def named_file(self, raw: Any, at: tuple[str | int, ...], key: str) -> Path | None:
        """A path the rule names, relative to the rule's folder, if it resolves inside the folder of rules; else an
        error at the key that names it (a rule from a pull request must not read /etc/passwd into an export)."""
        if not isinstance(raw, str) or not raw or "\0" in raw:
            self.sink.error(f"{key} must be a file path (text), not {raw!r}", self.doc.span(at), code="rule-path")
            return None
        path = self.path.parent / raw
        real = outside_root(path, self.root)
        if real is None:
            kind = not_a_file(path)
            if kind:  # a FIFO would stall the run that opens it; a directory would read as no events at all
                self.sink.error(f"{key} {str(raw)!r} is not a regular file ({kind})", self.doc.span(at),
                                code="rule-path")
                return None
            return path
        really = "" if str(real) == str(raw) else f" (that is {real})"
        self.sink.error(f"{key} {str(raw)!r}{really} is outside the folder of rules {self.root}", self.doc.span(at),
                        hint="a rule may name only files under the folder of rules being compiled (docs/limits.md)",
                        code="rule-path")
        return None

    def err(self, message: str, at: tuple[str | int, ...], hint: str | None = None, code: str = "rule") -> None:
        self.sink.error(message, self.doc.span(at), hint, code=code)

    def load(self, text: str, data: dict[str, Any]) -> RuleDoc:
        for key in data:
            if key not in SIGMA_KEYS and key not in SIEMFORGE_KEYS:
                close = difflib.get_close_matches(key, sorted(SIGMA_KEYS | SIEMFORGE_KEYS), n=1, cutoff=0.75)
                if close:
                    self.sink.warning(
                        f"unknown key {key!r}",
                        self.doc.key_span((key,)),
                        f"did you mean {close[0]!r}?",
                        code="rule-key",
                    )
        if "title" not in data:
            self.sink.error("a rule needs a `title`", self.doc.span(()) or Span(str(self.path), 1, 1), code="rule")
        elif not isinstance(data["title"], str):
            self.err("`title` must be text", ("title",))
        self.metadata(data)
        if "logsource" in data and not isinstance(data["logsource"], dict):
            self.err("`logsource` must be a mapping (product:, service:, category:)", ("logsource",))
        if "detection" not in data and "query" not in data and "correlation" not in data and "filter" not in data:
            self.sink.error(
                "a rule needs a `detection:` block, a `query:`, or both",
                self.doc.span(()) or Span(str(self.path), 1, 1), code="rule")
        if "detection" in data and not isinstance(data["detection"], dict):
            self.err("`detection` must be a mapping of selections and a condition", ("detection",))
        elif "detection" in data:
            cond = data["detection"].get("condition")
            if cond is None:
                self.err("a Sigma detection needs a `condition`", ("detection",))
            elif not (isinstance(cond, str) or (isinstance(cond, list) and cond
                                                and all(isinstance(c, str) for c in cond))):
                self.err("the Sigma `condition` must be text (or a list of texts)", ("detection", "condition"))
            else:
                for i, c in enumerate([cond] if isinstance(cond, str) else cond):
                    self.check_condition(c, ("detection", "condition") + ((i,) if isinstance(cond, list) else ()))
            self.check_detection_values(data["detection"])
        query = data.get("query")
        origin = None
        if query is not None:
            if not isinstance(query, str):
                self.err("`query` must be text (use a `|` block)", ("query",))
                query = None
            else:
                origin = self.doc.origin(("query",))
                if query_lines_joined(self.doc):
                    self.err(QUERY_NOT_LITERAL, ("query",))
                    query = None
        lookups = self.lookups(data.get("lookups"))
        schedule = self.schedule(data.get("schedule"))
        alert = self.alert(data.get("alert"))
        entities = self.entities(data.get("entities"))
        details = self.details(data.get("details"))
        baselines = self.baselines(data.get("baselines"), set(lookups))
        tests = self.tests(data.get("tests"), set(lookups))
        self.sink.raise_if_errors()
        return RuleDoc(
            self.path,
            text,
            self.doc,
            data,
            query,
            origin,
            lookups,
            tests,
            schedule,
            alert,
            entities,
            details,
            self.sink,
            baselines,
        )

    def check_condition(self, cond: str, at: tuple[str | int, ...]) -> None:
        """A condition within MAX_CONDITION_CHARS and MAX_CONDITION_DEPTH (pySigma's parser recurses per bracket)."""
        if len(cond) > MAX_CONDITION_CHARS:
            self.err(f"a Sigma condition has at most {MAX_CONDITION_CHARS:,} characters; this one has {len(cond):,}",
                     at, code="limit")
            return
        depth = 0
        for ch in cond:
            depth += (ch == "(") - (ch == ")")
            if depth > MAX_CONDITION_DEPTH:
                self.err(f"a Sigma condition nests at most {MAX_CONDITION_DEPTH} levels of parentheses", at,
                         code="limit")
                return

    def check_detection_values(self, detection: dict[str, Any]) -> None:
        """At most MAX_DETECTION_VALUES values, each at most MAX_PATTERN_CHARS long: the first value past a bound is
        reported where it is written."""
        count = 0
        stack: list[tuple[tuple[str | int, ...], Any]] = [(("detection", k), v) for k, v in reversed(detection.items())
                                                          if k != "condition"]
        while stack:
            at, value = stack.pop()
            if isinstance(value, dict):
                stack.extend((at + (k,), v) for k, v in reversed(value.items()))
                continue
            if isinstance(value, list):
                stack.extend((at + (i,), v) for i, v in reversed(list(enumerate(value))))
                continue
            count += 1
            if count > MAX_DETECTION_VALUES:
                self.err(f"a Sigma detection holds at most {MAX_DETECTION_VALUES:,} values; this one holds more", at,
                         code="limit")
                return
            if isinstance(value, str) and len(value) > MAX_PATTERN_CHARS:
                self.err(f"a detection value has at most {MAX_PATTERN_CHARS:,} characters; this one has "
                         f"{len(value):,}", at, code="limit")
                return

    def metadata(self, data: dict[str, Any]) -> None:
        """Sigma's metadata keys, checked as pySigma checks them (sigma/rule/base.py, attributes.py), with positions:
        pySigma only parses the detection here. A key given with no value (null) counts as absent, as in pySigma."""
        given = {k: v for k, v in data.items() if v is not None}
        title = given.get("title")
        if isinstance(title, str) and len(title) > 256:
            self.err(f"a title has at most 256 characters; this one has {len(title)}", ("title",))
        for key in ("level", "status"):
            allowed = LEVELS if key == "level" else STATUSES
            if key in given and not (isinstance(given[key], str) and given[key].lower() in allowed):
                self.err(f"unknown {key} {given[key]!r}", (key,), hint=f"{key}s: " + ", ".join(allowed))
        if "id" in given and not _is_uuid(given["id"]):
            self.err(f"`id` must be a UUID, not {given['id']!r}", ("id",), hint="uuidgen makes one")
        for key in ("date", "modified"):
            if key in given and not (isinstance(given[key], date) or _valid_date(str(given[key]))):
                self.err(f"`{key}` must be a date, YYYY-MM-DD (or YYYY/MM/DD), not {given[key]!r}", (key,))
        for key in ("author", "description", "license", "taxonomy", "name"):
            if key in given and not isinstance(given[key], str):
                self.err(f"`{key}` must be text", (key,))
            elif key in ("name", "taxonomy") and given.get(key) == "":
                self.err(f"`{key}` must not be empty", (key,))
        for key in ("references", "falsepositives", "fields", "scope", "tags", "related"):
            if key in given and not isinstance(given[key], list):
                self.err(f"`{key}` must be a list", (key,))
        tags = given.get("tags")
        for i, tag in enumerate(tags if isinstance(tags, list) else []):
            if not isinstance(tag, str) or "." not in tag:
                self.err(f"tag {tag!r} needs a namespace: `namespace.name` (attack.t1204, cve.2024-1234, …)",
                         ("tags", i))
        related = given.get("related")
        for i, rel in enumerate(related if isinstance(related, list) else []):
            if not isinstance(rel, dict) or not _is_uuid(rel.get("id")) or str(rel.get("type")).lower() not in (
                    RELATED_TYPES):
                self.err("a `related` item is `{id: <UUID>, type: " + " | ".join(RELATED_TYPES) + "}`",
                         ("related", i))

    def baselines(self, value: Any, lookup_names: set[str]) -> dict[str, BaselineSpec]:
        out: dict[str, BaselineSpec] = {}
        for name, spec in self.entries(value, "baselines", "a lookup table to {key, where, forget, warmup}"):
            at: tuple[str | int, ...] = ("baselines", name)
            if name not in lookup_names:
                self.err(f"baseline {name!r} fills no declared lookup", at, hint="declare it under `lookups:`")
                continue
            if not isinstance(spec, dict) or not isinstance(spec.get("key"), str):
                self.err(f"baseline {name!r} needs `key:` (the field whose sightings it keeps)", at)
                continue
            for k in spec:
                if k not in ("key", "where", "forget", "warmup"):
                    self.err(f"unknown baseline key {k!r}", at + (k,), hint="keys: key, where, forget, warmup")
            where = spec.get("where")
            forget = self.duration(spec.get("forget", "90d"), at + ("forget",))
            warmup = self.duration(spec.get("warmup", "7d"), at + ("warmup",))
            if forget is None or warmup is None:
                continue
            out[str(name)] = BaselineSpec(str(name), spec["key"], None if where is None else str(where),
                                          self.doc.origin(at + ("where",)), forget, warmup, self.doc.span(at))
        return out

    # ------------------------------------------------------------------ sections
    def entries(self, value: Any, section: str, shape: str) -> list[tuple[Any, Any]]:
        """The entries of a section that maps names to specs: none when it is absent, and an error saying the shape
        (`shape`: what it maps to what) when it is not a mapping."""
        if value is None:
            return []
        if not isinstance(value, dict):
            self.err(f"`{section}` must map {shape}", (section,))
            return []
        return list(value.items())

    def duration(self, value: Any, at: tuple[str | int, ...]) -> timedelta | None:
        try:
            return parse_duration(str(value).strip())
        except ValueError:
            self.err(f"invalid duration {value!r}: write a number and a unit (ms, s, m, h, d), e.g. 1h", at)
            return None

    def schedule(self, value: Any) -> ir.Schedule | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.err("`schedule` must be a mapping: {every: 1d, lookback: 1d}", ("schedule",))
            return None
        every = self.duration(value.get("every", "1d"), ("schedule", "every"))
        lookback = self.duration(value.get("lookback", value.get("every", "1d")), ("schedule", "lookback"))
        for k in value:
            if k not in ("every", "lookback"):
                self.err(f"unknown schedule key {k!r}", ("schedule", k), hint="keys: every, lookback")
        if every is None or lookback is None:
            return None
        return ir.Schedule(every, lookback)

    def alert(self, value: Any) -> ir.AlertSpec:
        default = ir.AlertSpec(ir.Threshold(ir.CmpOp.GT, 0), None)
        if value is None:
            return default
        if not isinstance(value, dict):
            self.err('`alert` must be a mapping: {threshold: "> 0", suppress: 1h}', ("alert",))
            return default
        threshold = default.threshold
        if "threshold" in value:
            m = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)?\s*(\d+)\s*", str(value["threshold"]))
            if not m:
                self.err(
                    f'invalid threshold {value["threshold"]!r}: write an operator and a row count, e.g. "> 0"',
                    ("alert", "threshold"),
                )
            else:
                threshold = ir.Threshold(ir.CmpOp(m.group(1) or ">"), int(m.group(2)))
        suppress = None
        if value.get("suppress") is not None:
            suppress = self.duration(value["suppress"], ("alert", "suppress"))
        for k in value:
            if k not in ("threshold", "suppress"):
                self.err(f"unknown alert key {k!r}", ("alert", k), hint="keys: threshold, suppress")
        return ir.AlertSpec(threshold, suppress)

    def entities(self, value: Any) -> tuple[ir.Entity, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.err("`entities` must be a mapping: {account: {name: Col}, ip: {address: Col}}", ("entities",))
            return ()
        out = []
        for kind, fields in value.items():
            if not isinstance(fields, dict):
                self.err(f"entity {kind!r} must map identifiers to columns", ("entities", kind))
                continue
            out.append(ir.Entity(str(kind), tuple(ir.EntityField(str(k), str(v)) for k, v in fields.items())))
        return tuple(out)

    def details(self, value: Any) -> tuple[tuple[str, str], ...]:
        return tuple((str(k), str(v)) for k, v in self.entries(value, "details", "a detail name to a column"))

    def lookups(self, value: Any) -> dict[str, LookupDecl]:
        out: dict[str, LookupDecl] = {}
        for name, spec in self.entries(value, "lookups", "a table name to a CSV file"):
            at: tuple[str | int, ...] = ("lookups", name)
            if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
                # the name becomes a conf stanza, a file name and a watchlist alias; `lookup NAME` can only say these
                self.sink.error(f"a lookup table name is a letter or _ then letters, digits or _ (at most 64), not "
                                f"{name!r}", self.doc.key_span(at), code="rule")
                continue
            types_spec: dict[str, Any] = {}
            if isinstance(spec, dict):
                file = spec.get("file")
                types_spec = spec.get("types") or {}
            else:
                file = spec
            if not isinstance(file, str):
                self.err(f"lookup {name!r} needs a CSV file path", at)
                continue
            path = self.named_file(file, at + ("file",) if isinstance(spec, dict) else at, f"lookup {name!r}: file")
            if path is None:
                continue
            decl = read_lookup_header(name, path, types_spec)
            if isinstance(decl, str):
                self.err(decl, at)
                continue
            decl.span = self.doc.span(at)
            out[str(name)] = decl
        return out

    def tests(self, value: Any, lookup_names: set[str]) -> list[TestCase]:
        out: list[TestCase] = []
        if value is None:
            return out
        if not isinstance(value, list):
            self.err("`tests` must be a list of {name, logs, expect}", ("tests",))
            return out
        for i, t in enumerate(value):
            at: tuple[str | int, ...] = ("tests", i)
            if not isinstance(t, dict):
                self.err("a test must be a mapping {name, logs, expect}", at)
                continue
            name = str(t.get("name", f"test {i + 1}"))
            logs_v = t.get("logs")
            logs = [logs_v] if isinstance(logs_v, str) else logs_v
            if not logs or not isinstance(logs, list):
                self.err(f"test {name!r} needs `logs:` (a file or a list of files)", at)
                continue
            paths = []
            for j, lp in enumerate(logs):
                where = at + ("logs",) if isinstance(logs_v, str) else at + ("logs", j)
                p = self.named_file(lp, where, f"test {name!r}: logs")
                if p is None:
                    continue
                if not p.exists():  # the rule still compiles and runs on other logs; its test fails
                    self.sink.warning(f"test log file not found: {lp}", self.doc.span(where), code="rule")
                paths.append(p)
            expect = self.expectation(t.get("expect"), at + ("expect",), name)
            now = None
            if "now" in t:
                try:
                    now = parse_datetime_text(str(t["now"]).replace(" ", "T"))
                except ValueError:
                    self.err(f"invalid `now` {t['now']!r}: use ISO-8601, e.g. 2024-05-01T00:00:00Z", at + ("now",))
            overrides: dict[str, Path] = {}
            for key in ("lookups", "baselines"):
                if not isinstance(t.get(key) or {}, dict):
                    self.err(f"a test's `{key}` must map a table name to " + (
                        "a CSV file" if key == "lookups" else "the log files it is built from"), at + (key,))
            for lname, lfile in _mapping(t.get("lookups")).items():
                if lname not in lookup_names:
                    self.err(f"test overrides unknown lookup {lname!r}", at + ("lookups", lname))
                    continue
                p = self.named_file(lfile, at + ("lookups", lname), f"test {name!r}: lookup {lname!r}")
                if p is None:
                    continue
                if not p.exists():
                    self.err(f"lookup file not found: {lfile}", at + ("lookups", lname))
                elif p.stat().st_size > MAX_LOOKUP_BYTES:  # the executor loads it whole
                    self.err(f"test {name!r}: lookup {lname!r} has more than {MAX_LOOKUP_BYTES:,} bytes ({p})",
                             at + ("lookups", lname))
                overrides[str(lname)] = p
            built: dict[str, tuple[Path, ...]] = {}
            for bname, blogs in _mapping(t.get("baselines")).items():
                files = blogs if isinstance(blogs, list) else [] if blogs is None else [blogs]
                bat = at + ("baselines", bname)
                named = [self.named_file(f, bat, f"test {name!r}: baseline {bname!r} logs") for f in files]
                built[str(bname)] = tuple(f for f in named if f is not None)
                for f in built[str(bname)]:
                    if not f.exists():
                        self.sink.warning(f"baseline log file not found: {f.name}", self.doc.span(bat))
            for k in t:
                if k not in ("name", "logs", "expect", "now", "lookups", "binding", "baselines"):
                    self.err(
                        f"unknown test key {k!r}",
                        at + (k,),
                        hint="keys: name, logs, expect, now, lookups, binding, baselines",
                    )
            binding = t.get("binding")
            if expect is not None:
                out.append(
                    TestCase(
                        name,
                        tuple(paths),
                        expect,
                        now,
                        overrides,
                        self.doc.span(at),
                        None if binding is None else str(binding),
                        built,
                    )
                )
        return out

    def expectation(self, value: Any, at: tuple[str | int, ...], name: str) -> Expectation | None:
        if value in ("fires", "silent"):
            return Expectation(str(value))
        if isinstance(value, dict):
            if "rows" in value:
                rows = value["rows"]
                if isinstance(rows, int) and not isinstance(rows, bool):
                    return Expectation("count", count=rows)
                if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
                    return Expectation("rows", count=len(rows), rows=tuple(rows))
                self.err("`rows` must be a row count or a list of rows (mappings of column: value)", at + ("rows",))
                return None
            if "count" in value and isinstance(value["count"], int):
                return Expectation("count", count=value["count"])
        self.err(f"test {name!r}: `expect` must be `fires`, `silent`, {{rows: N}} or {{rows: [{{col: value}}, …]}}", at)
        return None


_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")  # the pipeline language's NAME, bounded
_INT = re.compile(r"-?\d+")
_REAL = re.compile(r"-?\d+(\.\d*)?([eE][-+]?\d+)?")


def read_lookup_header(name: str, path: Path, types_spec: dict[str, Any]) -> LookupDecl | str:
    """Read a lookup CSV's columns; infer each column's type (int, real or string) unless declared. The rows are
    read one at a time (memory does not grow with the file)."""
    if not isinstance(types_spec, dict):
        return f"lookup {name!r}: `types` must map a column to a type"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            if os.fstat(fh.fileno()).st_size > MAX_LOOKUP_BYTES:
                return f"lookup {name!r} has more than {MAX_LOOKUP_BYTES:,} bytes ({path})"
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                return f"lookup {name!r} ({path}) is empty: it needs a header row"
            for col in header:  # a column name becomes a KQL, SPL and conf name: a line break would split them
                if any(unicodedata.category(c) == "Cc" for c in col):
                    return f"lookup {name!r}: a column name holds a control character: {col!r} ({path})"
            # per column: seen a value, all values ints, all values numbers
            seen, ints, reals = [False] * len(header), [True] * len(header), [True] * len(header)
            for row in reader:
                for i, v in enumerate(row[: len(header)]):
                    if v == "":
                        continue
                    seen[i] = True
                    if ints[i] and not _INT.fullmatch(v):
                        ints[i] = False
                    if reals[i] and not ints[i] and not _REAL.fullmatch(v):
                        reals[i] = False
    except OSError as exc:
        return f"cannot read lookup {name!r} ({path}): {exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        return f"lookup {name!r} ({path}) is not UTF-8 text: {exc.reason} at byte {exc.start}"
    except csv.Error as exc:
        return f"lookup {name!r} ({path}) is not a CSV file: {exc}"
    types: list[Type] = []
    for i, col in enumerate(header):
        if col in types_spec:
            t = parse_type(str(types_spec[col]))
            if t is None:
                return f"unknown type {types_spec[col]!r} for lookup column {col!r}"
            types.append(t)
        elif not seen[i]:
            types.append(Type.ANY)
        elif ints[i]:
            types.append(Type.INT)
        elif reals[i]:
            types.append(Type.REAL)
        else:
            types.append(Type.STRING)
    return LookupDecl(name, str(path), tuple(header), tuple(types))
