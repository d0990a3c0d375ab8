"""Logical sources: named, typed field vocabularies that rules are written against (sources/*.yml).

A source may be a view: a pipeline over another source, written in the pipeline language itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
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
    # the targets `no_binding` refuses on (`no_binding_on: [splunk]`); None: every target. A target not named reads
    # the source's records as written where it can (SQL over log files: aws.guardduty, decision 96)
    no_binding_on: tuple[str, ...] | None = None

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
    _check_shape(doc, data)
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
        if not isinstance(v, dict) or "over" not in v:
            raise CompileError([Diagnostic(Severity.ERROR, "a view needs `over:` (the source it reads) and `query:`",
                                           doc.span(("view",)))])
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
        _no_binding_on(doc, data),
    )


def _no_binding_on(doc: Any, data: dict[str, Any]) -> tuple[str, ...] | None:
    on = data.get("no_binding_on")
    if on is None:
        return None
    if not isinstance(on, list) or not all(isinstance(t, str) for t in on):
        raise CompileError([Diagnostic(Severity.ERROR, "`no_binding_on` must list target names (splunk, sentinel, "
                                       "sql)", doc.span(("no_binding_on",)))])
    return tuple(on)


_SECTION_SHAPES = {"fields": dict, "time": dict, "logsource": dict, "view": dict}


def _check_shape(doc: Any, data: dict[str, Any]) -> None:
    """A section of the wrong kind (a list where a mapping belongs) is an error at that section, not a crash."""
    for key, kind in _SECTION_SHAPES.items():
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise CompileError([Diagnostic(Severity.ERROR, f"`{key}` must be a mapping", doc.span((key,)))])


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
def package_sources() -> dict[str, SourceDef]:
    """The sources installed with siemforge (its sources/*.yml)."""
    pkg = resources.files("siemforge.sources")
    texts = [(entry.name, entry.read_text(encoding="utf-8"))
             for entry in sorted(pkg.iterdir(), key=lambda p: p.name) if entry.name.endswith(".yml")]
    cached = _cached_sources(texts)
    if cached is not None:
        return cached
    out: dict[str, SourceDef] = {}
    for name, text in texts:
        src = _parse_source(text, f"sources/{name}")
        out[src.name] = src
    _cache_sources(texts, out)
    return out


def _sources_cache_file(texts: list[tuple[str, str]]) -> Path | None:
    """Where the parsed package sources are kept (siemforge's cache folder), keyed by every file's name and text and
    by the code that parses them: parsing the hundred-odd files with positions is a fifth of a small run's start-up."""
    from .cache import default_dir

    folder = default_dir()
    if folder is None:
        return None
    h = hashlib.sha256(Path(__file__).read_bytes())
    for name, text in texts:
        h.update(b"\0" + name.encode() + b"\0" + text.encode())
    return folder / "sources" / f"{h.hexdigest()}.pickle"


def _cached_sources(texts: list[tuple[str, str]]) -> dict[str, SourceDef] | None:
    import pickle

    f = _sources_cache_file(texts)
    if f is None:
        return None
    try:
        found = pickle.loads(f.read_bytes())
    except Exception:  # missing, truncated or foreign: parse the files
        return None
    ok = isinstance(found, dict) and all(isinstance(v, SourceDef) for v in found.values())
    return found if ok else None


def _cache_sources(texts: list[tuple[str, str]], parsed: dict[str, SourceDef]) -> None:
    import os
    import pickle

    f = _sources_cache_file(texts)
    if f is None:
        return
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(parsed))
        os.replace(tmp, f)  # atomic: a concurrent reader sees the whole file or none
    except (OSError, pickle.PicklingError):
        pass  # an unwritable cache: parse each time


# ---------------------------------------------------------------------------------------------- user sources
# A team's own sources and bindings live in its rules repository (a `sources/` folder beside the rules, or
# `--sources DIR`), laid out as the package's: DIR/*.yml sources, DIR/bindings/*.yml bindings. The CLI names the
# folders once per command (use_source_dirs); every lookup after that (compiler, backends, executor) sees them.
# A user file may add a source, a binding, or both, but never replace one of the package's (docs/dsl.md).


@dataclass(frozen=True, slots=True)
class SourceFolders:
    dirs: tuple[Path, ...]
    sources: dict[str, SourceDef]  # the user's sources only
    digest: str  # sha256 over every file read (names and bytes): part of the compiled-rule cache key


_EMPTY = SourceFolders((), {}, "")
_active: SourceFolders = _EMPTY
_generation = 0  # bumped whenever the active folders change (caches keyed by source name use it)


def use_source_dirs(dirs: Sequence[Path]) -> SourceFolders:
    """Read the user's source folders and make them part of every lookup from now on (replacing any before).
    Raises CompileError, positioned in the offending file, for a malformed file or a clash with the package."""
    from . import bindings

    global _active, _generation
    own = _package_folder()
    folders = tuple(dict.fromkeys(Path(d) for d in dirs if own is None or not _same_folder(Path(d), own)))
    if not folders:
        loaded, user_bindings = _EMPTY, {}
    else:
        digest = hashlib.sha256()
        sources = _read_user_sources(folders, digest)
        user_bindings = bindings.read_user_bindings(folders, {**package_sources(), **sources}, digest)
        loaded = SourceFolders(folders, sources, digest.hexdigest())
    bindings.set_user_bindings(user_bindings)
    _active = loaded
    _generation += 1
    return loaded


def _package_folder() -> Path | None:
    """The package's own sources/ folder on disk (a checkout of siemforge has it beside its rules/: not a user's)."""
    try:
        return Path(str(resources.files("siemforge.sources")))
    except (TypeError, ValueError):  # pragma: no cover - not a folder (a zip import)
        return None


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def active_folders() -> SourceFolders:
    return _active


def generation() -> int:
    return _generation


def yaml_files(folder: Path) -> list[Path]:
    """The `*.yml` / `*.yaml` files directly in `folder`, sorted (none if it is not a folder)."""
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    except OSError:
        return []


def read_user_file(path: Path, digest: Any) -> str:
    """A user's source or binding file as text; an unreadable or non-UTF-8 file is an error naming it."""
    at = Span(str(path), 1, 1)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise CompileError([Diagnostic(Severity.ERROR, f"cannot read: {exc.strerror}", at)]) from None
    except UnicodeDecodeError as exc:
        raise CompileError([Diagnostic(Severity.ERROR, f"not UTF-8 text: {exc.reason}", at)]) from None
    digest.update(str(path).encode() + b"\0" + data + b"\0")
    return text


def _read_user_sources(folders: tuple[Path, ...], digest: Any) -> dict[str, SourceDef]:
    package = package_sources()
    by_logsource = {_logsource_key(s): s for s in package.values() if s.logsource}
    out: dict[str, SourceDef] = {}
    for folder in folders:
        for path in yaml_files(folder):
            text = read_user_file(path, digest)
            src = _parse_source(text, str(path))
            where = load_yaml(text, str(path))
            other = package.get(src.name) or out.get(src.name) or (GENERIC if src.name == GENERIC.name else None)
            if other is not None:
                raise CompileError([Diagnostic(
                    Severity.ERROR, f"source {src.name!r} is already defined ({other.file})",
                    where.span(("name",)), hint="a user source adds a source under a new name; to read an existing "
                    "source from your own table or sourcetype, add a binding (sources/bindings/) instead",
                    code="source")])
            same = by_logsource.get(_logsource_key(src))
            if same is not None:
                text_ls = ", ".join(f"{k}: {v}" for k, v in src.logsource)
                raise CompileError([Diagnostic(
                    Severity.ERROR, f"logsource {{{text_ls}}} already picks source {same.name!r} ({same.file})",
                    where.span(("logsource",)), hint="give the source a logsource of its own (e.g. your product)",
                    code="source")])
            if src.logsource:
                by_logsource[_logsource_key(src)] = src
            out[src.name] = src
    for src in out.values():  # a view reads a source of the package's or of the user's (any file)
        if src.view is not None and src.view.over not in package and src.view.over not in out:
            where = load_yaml(Path(src.file).read_text(encoding="utf-8"), src.file)
            raise CompileError([Diagnostic(Severity.ERROR, f"view over unknown source {src.view.over!r}",
                                           where.span(("view", "over")), code="source")])
    return out


def _logsource_key(src: SourceDef) -> tuple[tuple[str, str], ...]:
    return tuple((k, v.lower()) for k, v in src.logsource)  # matched without case (source_for_logsource)


def builtin_sources() -> dict[str, SourceDef]:
    """Every source a rule may name: the package's, and the user's folders in use (use_source_dirs)."""
    if not _active.sources:
        return package_sources()
    return _merged(_generation)


@lru_cache(maxsize=4)
def _merged(_gen: int) -> dict[str, SourceDef]:
    return {**package_sources(), **_active.sources}


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
