"""Logical sources: named, typed field vocabularies that rules are written against (sources/*.yml).

A source may be a view: a pipeline over another source, written in the pipeline language itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from . import syntax as syn
from .diagnostics import CompileError, Diagnostic, Severity, Span
from .types import Type, parse_type
from .yamlpos import TextOrigin, load_yaml


@dataclass(frozen=True, slots=True)
class ViewDef:
    over: str
    query: str
    origin: TextOrigin


@dataclass(frozen=True, slots=True)
class RecordSelector:
    """One shape of log record that is a row of a source (`records:` in the source file): a Windows record is one
    when its Channel is one of `channels` (case-insensitive) or its Provider_Name one of `providers`, and its
    EventID one of `event_ids` (any, if empty). `rename` maps that shape's field names to the source's."""

    channels: frozenset[str]  # lower case
    providers: frozenset[str]  # lower case
    event_ids: frozenset[int]
    rename: tuple[tuple[str, str], ...] = ()
    # or, for logs that are not Windows event logs: field -> the values it may hold (auditd: `auditd_row`)
    match: tuple[tuple[str, frozenset[str]], ...] = ()
    # Azure diagnostic records (Entra ID, Azure Activity): the record's `category`, lower case (docs/sources/azure.md)
    categories: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class SourceDef:
    name: str
    description: str
    logsource: tuple[tuple[str, str], ...]
    fields: dict[str, Type]  # dotted path -> type; a `dynamic` entry types every path below it as ANY
    time_column: str | None
    time_from: str | None  # raw field the time column is read from (None: the column itself)
    view: ViewDef | None
    file: str
    # derived fields, written as one `extend name = expr, …` in the source file; a rule may name them like fields
    # while the source's fields are in scope (analyze.Analyzer.path). Parsed on first use (`aliases`), so that
    # compiling rules that never name one does not build the pipeline grammar's parser.
    alias_text: str | None = None
    alias_origin: TextOrigin | None = None
    records: tuple[RecordSelector, ...] = ()  # which records are rows of this source (Windows event logs)
    # Sigma field name -> the source's path, or {"refuse": why} (a Sigma name the source cannot hold faithfully):
    # SigmaHQ's Azure rules name Sentinel columns where the source has the vendor's record (docs/sources/azure.md)
    sigma_fields: dict[str, Any] | None = None
    # False: no target searches this source's events as written; without a binding a rule on it is refused, with
    # `no_binding` as the reason (Entra ID PIM alerts: no SIEM table or add-on carries them)
    no_binding: str | None = None

    @property
    def aliases(self) -> dict[str, syn.Node]:
        """Derived field name -> its expression over the source's fields."""
        if self.alias_text is None or self.alias_origin is None:
            return {}
        return _parse_aliases(self.alias_text, self.alias_origin, frozenset(self.fields))

    def field_type(self, dotted: str) -> Type | None:
        """The declared type of a dotted path, ANY under a dynamic field, None if the path is not declared."""
        if dotted in self.fields:
            return self.fields[dotted]
        if self.time_column is not None and dotted == self.time_column:
            return Type.DATETIME
        parts = dotted.split(".")
        for i in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:i])
            t = self.fields.get(prefix)
            if t is Type.DYNAMIC:
                return Type.ANY
            if t is not None:  # a path into a scalar: allowed (JSON may differ) but untyped
                return Type.ANY
        return None

    def columns(self) -> list[tuple[str, Type]]:
        """Top-level columns (for schemas)."""
        out: dict[str, Type] = {}
        if self.time_column:
            out[self.time_column] = Type.DATETIME
        for dotted, t in self.fields.items():
            root = dotted.split(".")[0]
            if root not in out:
                out[root] = t if "." not in dotted else Type.DYNAMIC
        return list(out.items())


GENERIC = SourceDef(
    "generic", "an undeclared log source: every field is untyped", (), {}, None, None, None, "<builtin>"
)


def _parse_source(text: str, file: str) -> SourceDef:
    doc = load_yaml(text, file)
    data: Any = doc.value
    if not isinstance(data, dict) or "name" not in data:
        raise CompileError([Diagnostic(Severity.ERROR, "a source definition needs a `name`", Span(file, 1, 1))])
    fields: dict[str, Type] = {}
    for key, tname in (data.get("fields") or {}).items():
        t = parse_type(str(tname))
        if t is None:
            raise CompileError(
                [Diagnostic(Severity.ERROR, f"unknown type {tname!r} for field {key!r}", doc.span(("fields", key)))]
            )
        fields[str(key)] = t
    time = data.get("time") or {}
    view = None
    if "view" in data:
        v = data["view"]
        origin = doc.origin(("view", "query"))
        if origin is None:
            raise CompileError([Diagnostic(Severity.ERROR, "a view needs `query:` text", doc.span(("view",)))])
        view = ViewDef(str(v["over"]), str(v["query"]), origin)
    logsource = tuple(sorted((str(k), str(v)) for k, v in (data.get("logsource") or {}).items()))
    alias_text, alias_origin = _alias_section(doc, data)
    records = _records_section(doc, data)
    sigma_fields = data.get("sigma_fields")
    if sigma_fields is not None and not isinstance(sigma_fields, dict):
        raise CompileError([Diagnostic(Severity.ERROR, "`sigma_fields` must map Sigma field names to paths",
                                       doc.span(("sigma_fields",)))])
    return SourceDef(
        str(data["name"]),
        str(data.get("description", "")),
        logsource,
        fields,
        time.get("column"),
        time.get("from"),
        view,
        file,
        alias_text,
        alias_origin,
        records,
        {str(k): v for k, v in sigma_fields.items()} if sigma_fields else None,
        str(data["no_binding"]) if data.get("no_binding") else None,
    )


def _records_section(doc: Any, data: dict[str, Any]) -> tuple[RecordSelector, ...]:
    items = data.get("records")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise CompileError([Diagnostic(Severity.ERROR, "`records` must be a list of {channel, event_id, rename}",
                                       doc.span(("records",)))])
    out: list[RecordSelector] = []
    for i, item in enumerate(items):
        bad = not isinstance(item, dict) or not ({"channel", "provider", "category", "match"} & set(item))
        if not bad and "match" in item:
            match = item["match"]
            if isinstance(match, dict) and all(isinstance(v, list) for v in match.values()):
                out.append(RecordSelector(frozenset(), frozenset(), frozenset(), (), tuple(
                    (str(k), frozenset(str(x) for x in v)) for k, v in match.items())))
                continue
            bad = True
        if not bad:
            try:
                categories = frozenset(str(c).lower() for c in item.get("category") or ())
                channels = frozenset(str(c).lower() for c in item.get("channel") or ())
                providers = frozenset(str(c).lower() for c in item.get("provider") or ())
                ids = frozenset(int(e) for e in item.get("event_id") or ())
                rename = tuple((str(k), str(v)) for k, v in (item.get("rename") or {}).items())
            except (TypeError, ValueError, AttributeError):
                bad = True
        if bad:
            raise CompileError([Diagnostic(
                Severity.ERROR, "a `records` entry needs `channel:` or `provider:` (lists; Azure records: "
                "`category:`), optional `event_id:` (numbers) and `rename:` (old: new); or `match:` (field: [values])",
                doc.span(("records", i)))])
        out.append(RecordSelector(channels, providers, ids, rename, categories=categories))
    return tuple(out)


def _alias_section(doc: Any, data: dict[str, Any]) -> tuple[str | None, TextOrigin | None]:
    if "aliases" not in data:
        return None, None
    origin = doc.origin(("aliases",))
    text = data["aliases"]
    if origin is None or not isinstance(text, str):
        raise CompileError([Diagnostic(Severity.ERROR, "`aliases` must be text: extend name = expr, …",
                                       doc.span(("aliases",)))])
    return text, origin


@lru_cache(maxsize=16)
def _parse_aliases(text: str, origin: TextOrigin, fields: frozenset[str]) -> dict[str, syn.Node]:
    """`aliases:` is one `extend name = expr, …` in the pipeline language, positioned in the source file."""
    from .parser import parse_program

    program = parse_program(text, origin)
    if len(program.stages) != 1 or not isinstance(program.stages[0], syn.ExtendStage):
        raise CompileError([Diagnostic(Severity.ERROR, "`aliases` must be a single `extend name = expr, …`",
                                       origin.span(1, 1))])
    out: dict[str, syn.Node] = {}
    for a in program.stages[0].assignments:
        if a.name in fields or a.name in out:
            p = a.pos
            raise CompileError([Diagnostic(Severity.ERROR, f"alias {a.name!r} is already a field or an alias",
                                           origin.span(p.line, p.column))])
        out[a.name] = a.expr
    return out


@lru_cache(maxsize=1)
def builtin_sources() -> dict[str, SourceDef]:
    out: dict[str, SourceDef] = {}
    pkg = resources.files("siemforge.sources")
    for entry in sorted(pkg.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yml"):
            src = _parse_source(entry.read_text(encoding="utf-8"), f"sources/{entry.name}")
            out[src.name] = src
    return out


def source_for_logsource(logsource: dict[str, str]) -> SourceDef | None:
    """The source whose `logsource` is the most specific match for a rule's Sigma logsource."""
    best: tuple[int, SourceDef] | None = None
    wanted = {k: str(v).lower() for k, v in logsource.items() if k in ("product", "service", "category")}
    for src in builtin_sources().values():
        decl = {k: v.lower() for k, v in src.logsource}
        # a key declared empty must be absent from the rule (linux.builtin: `service: ""`, product-wide keyword rules,
        # is not a fallback for a Linux category or service no source declares)
        if not decl or any((wanted.get(k) or "") != v for k, v in decl.items()):
            continue
        score = len(decl)
        if best is None or score > best[0]:
            best = (score, src)
    return best[1] if best else None
