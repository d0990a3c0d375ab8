"""Bindings: how a logical source is stored on one physical schema (a Sentinel table, a Splunk sourcetype).

A binding is data (sources/bindings/*.yml): canonical path → column, canonical field → column of JSON text,
the physical schema's types, and how missing/empty values arrive. Backends read it forwards to name columns;
the executor reads it backwards to turn a physical row into a canonical record, so that the same rule gives
the same alerts on either shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .diagnostics import CompileError, Diagnostic, Severity, Span
from .yamlpos import load_yaml


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """Where a canonical path lives: a physical column, and a path inside it when the column holds JSON."""

    column: str
    path: tuple[str | int, ...]
    json_text: bool  # the column is a string of JSON text (KQL: parse_json it first)
    type: str  # the physical column's type


@dataclass(frozen=True, slots=True)
class Binding:
    source: str
    name: str
    target: str
    table: str | None
    time_column: str
    empty_is_missing: bool
    columns: dict[str, str]  # canonical dotted path -> physical column
    json_columns: dict[str, str]  # canonical root field -> physical column holding JSON text
    schema: dict[str, str]  # physical column -> type
    file: str
    extra: dict[str, Any]  # target-specific keys (Splunk macros, aliases, …)
    user: bool = False  # from a user's sources folder, not the package (its `default: true` wins: docs/dsl.md)

    def resolve(self, name: str, path: tuple[str | int, ...]) -> ColumnRef | None:
        """The physical location of canonical column `name` with `path` below it, or None if unmapped."""
        segs: list[str | int] = [*name.split("."), *path] if "." not in name or name in self.columns else [name, *path]
        for i in range(len(segs), 0, -1):
            head = segs[:i]
            if not all(isinstance(x, str) for x in head):
                continue
            dotted = ".".join(str(x) for x in head)
            col = self.columns.get(dotted)
            if col is not None:
                return ColumnRef(col, tuple(segs[i:]), False, self.schema.get(col, "dynamic"))
            col = self.json_columns.get(dotted)
            if col is not None:
                return ColumnRef(col, tuple(segs[i:]), True, "dynamic")
        if len(segs) == 1 and segs[0] in computed(self):  # a value the target computes from columns (its own name)
            return ColumnRef(str(segs[0]), (), False, "string")
        named = named_field(self, str(segs[0])) if len(segs) == 1 and isinstance(segs[0], str) else None
        if named is not None:  # the target's field of the same name (Splunk's Windows add-ons: EventData's names,
            return ColumnRef(named, (), False, "any")  # which are flat: a path into one has no field)
        holder = members_column(self)
        if holder is not None and isinstance(segs[0], str) and segs[0] not in self.extra.get("not_members", ()):
            return ColumnRef(holder, tuple(segs), True, "dynamic")  # a member of the column holding the event data
        return None


COMPUTED_KINDS = {
    # Sysmon's registry path (TargetObject) from a table's key and value name columns: the hive's long name
    # abbreviated as Sysmon writes it, `\<value name>` appended when there is one (docs/backends/sentinel.md)
    "registry_path": ("key", "value", "hives"),
    # Sysmon's registry data (Details: `DWORD (0x00000001)`, `QWORD (0x00000000-0x00000001)`, `Binary Data`, text as
    # it is) from a table's data and type columns
    "registry_data": ("data", "type"),
    # a field whose values are another column's, renamed (column value → field value; others: missing)
    "value_map": ("column", "map"),
    # a field of an auditd record whose text is one column (Syslog's SyslogMessage): the value after ` key=`, its
    # double quotes removed, as auditd wrote it (a hex-encoded value stays hex: docs/sources/linux.md)
    "audit_field": ("column", "key"),
    # a member of a dynamic column, as text (Defender's AdditionalFields.PipeName); `strip_prefix` (optional) is taken
    # off the front when the value starts with it, whatever its case (`\Device\NamedPipe\x` → Sysmon's `\x`)
    "member": ("column", "member"),
    # an account as Sysmon writes it, `DOMAIN\name`, from a domain and a name column (the name alone when the domain
    # is empty)
    "account": ("domain", "name"),
    # Sysmon's Hashes (`SHA1=…,MD5=…,SHA256=…`, upper-case hex, the hashes present in that order) from one column per
    # algorithm, [[label, column], …]; `lacks` (optional) names algorithms the table has no column for: a rule that
    # compares the field with a value naming one is refused, since such a value could never match; `contains_only`
    # (optional): a rule reading it other than by a substring match is refused (which hashes Sysmon lists, and in
    # which order, is its configuration's)
    "hashes": ("algorithms",),
    # a number as Windows writes it in hex text, `0x3e7` (lower case, no padding: Sysmon's LogonId), from a long column
    "hex": ("column",),
    # Sysmon's Details as the Splunk Add-on for Sysmon splits it (transforms.conf `sysmon-registryvaluedata` /
    # `-registryvaluetype`, props.conf `EVAL-registry_value_data` / `-type`): text of the form `W (X)` (a word, a
    # space, X in parentheses: `DWORD (0x00000001)`) is data X and type `REG_W`; other text is data as it is, no type
    # (docs/semantics.md, decision 33)
    "split_details": ("data", "type"),
    # a column's value where it differs from another column's and from `fill` (optional: the data model's value for a
    # missing or empty one), else missing: the Sysmon add-on's Network_Traffic `dest` is DestinationHostname, or
    # DestinationIp where Sysmon wrote none or `-`. `missing_for` (optional): values of the field the target shows as
    # missing; a test of the field that is true of a missing value or of one of them is refused, since the target
    # cannot tell them apart (docs/semantics.md, decision 34)
    "unless_equal": ("column", "other"),
}


# Details as the Splunk Add-on for Sysmon's transforms.conf splits it (split_details; `sysmon-registryvaluedata` is
# `<Data Name='Details'>\w+\s\((.+)\)</Data>`, PCRE: ASCII `\w`, `.` matches no line break)
SPLIT_DETAILS = re.compile(r"(\w+)\s\((.+)\)", re.ASCII)

# where an auditd record's field is in its text (audit_field): after the start, a space or the ENRICHED 0x1d
# separator; its value "quoted" or bare. The KQL backend and the executor read rows with this one pattern.
AUDIT_FIELD_PATTERN = r'(?:^|[\s\x1d]){key}=("[^"]*"|[^\s\x1d]*)'


def computed(binding: Binding) -> dict[str, dict[str, Any]]:
    """Canonical fields the binding computes from its columns: field → spec (`kind` in COMPUTED_KINDS, its keys)."""
    return dict(binding.extra.get("computed") or {})


def members_column(binding: Binding) -> str | None:
    """The column holding every field the binding maps to no column of its own, each as a member of that name
    (Sentinel's WindowsEvent: `EventData.ScriptBlockText`), or None."""
    holder = binding.extra.get("members_of")
    return None if holder is None else str(holder)


def named_field(binding: Binding, name: str) -> str | None:
    """The physical field of canonical field `name`: its column, or, on a binding with `named_fields: true` (every
    field is the target's field of the same name, as Splunk's Windows add-ons extract EventData), the name itself
    unless `not_named` lists it. None: no field holds it."""
    col = binding.columns.get(name)
    if col is not None:
        return col
    if binding.extra.get("named_fields") and "." not in name and name not in binding.extra.get("not_named", ()):
        return name
    return None


def row_filter(binding: Binding) -> dict[str, list[Any]]:
    """Which rows of the binding's table are rows of its source: column → the values it may hold (all must hold).
    Empty when every row of the table is one (e.g. DeviceProcessEvents for process creation)."""
    rows = binding.extra.get("rows") or {}
    return {str(c): list(v) if isinstance(v, list) else [v] for c, v in rows.items()}


def _parse_binding(text: str, file: str) -> Binding:
    doc = load_yaml(text, file)
    d = doc.value
    if not isinstance(d, dict):
        raise CompileError([Diagnostic(Severity.ERROR, "a binding must be a mapping", Span(file, 1, 1))])
    known = {
        "source",
        "name",
        "target",
        "table",
        "time_column",
        "empty_is_missing",
        "columns",
        "json_columns",
        "schema",
    }
    for key in ("source", "name", "target", "time_column"):
        if d.get(key) is None:
            raise CompileError([Diagnostic(Severity.ERROR, f"a binding needs `{key}:`", Span(file, 1, 1))])
    for key in ("columns", "json_columns", "schema", "computed"):
        if d.get(key) is not None and not isinstance(d[key], dict):
            raise CompileError([Diagnostic(Severity.ERROR, f"`{key}` must be a mapping", doc.span((key,)))])
    columns = {str(k): str(v) for k, v in (d.get("columns") or {}).items()}
    json_columns = {str(k): str(v) for k, v in (d.get("json_columns") or {}).items()}
    schema = {str(k): str(v) for k, v in (d.get("schema") or {}).items()}
    for path_key, col in [*columns.items(), *json_columns.items()]:
        if schema and col not in schema:
            raise CompileError(
                [
                    Diagnostic(
                        Severity.ERROR,
                        f"binding maps {path_key!r} to {col!r}, which is not in its schema",
                        doc.span(("columns", path_key)),
                    )
                ]
            )
    for name, spec in (d.get("computed") or {}).items():
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind not in COMPUTED_KINDS or any(k not in spec for k in COMPUTED_KINDS[kind]):
            raise CompileError([Diagnostic(Severity.ERROR, f"computed field {name!r}: kind is one of "
                                           f"{sorted(COMPUTED_KINDS)}, with their keys", doc.span(("computed", name)))])
    return Binding(
        str(d["source"]),
        str(d["name"]),
        str(d["target"]),
        d.get("table"),
        str(d["time_column"]),
        bool(d.get("empty_is_missing", False)),
        columns,
        json_columns,
        schema,
        file,
        {k: v for k, v in d.items() if k not in known},
    )


@lru_cache(maxsize=1)
def package_bindings() -> dict[tuple[str, str], Binding]:
    """(source name, binding name) → Binding, from the package's sources/bindings/*.yml."""
    out: dict[tuple[str, str], Binding] = {}
    folder = resources.files("siemforge.sources").joinpath("bindings")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yml"):
            b = _parse_binding(entry.read_text(encoding="utf-8"), f"sources/bindings/{entry.name}")
            out[(b.source, b.name)] = b
    return out


_user: dict[tuple[str, str], Binding] = {}  # the user's bindings in use (sources.use_source_dirs sets them)


def set_user_bindings(found: dict[tuple[str, str], Binding]) -> None:
    global _user
    _user = dict(found)
    _merged.cache_clear()


def read_user_bindings(folders: tuple[Path, ...], sources: Mapping[str, object], digest: Any
                       ) -> dict[tuple[str, str], Binding]:
    """The bindings in each folder's bindings/*.yml. Each must bind a known source (the package's or the user's),
    under a name that source does not have yet; `default: true` makes it the source's default on its target in place
    of the package's (at most one user default per source and target)."""
    from .sources import read_user_file, yaml_files

    package = package_bindings()
    out: dict[tuple[str, str], Binding] = {}
    for folder in folders:
        for path in yaml_files(folder / "bindings"):
            text = read_user_file(path, digest)
            parsed = _parse_binding(text, str(path))
            b = Binding(parsed.source, parsed.name, parsed.target, parsed.table, parsed.time_column,
                        parsed.empty_is_missing, parsed.columns, parsed.json_columns, parsed.schema, parsed.file,
                        parsed.extra, user=True)
            doc = load_yaml(text, str(path))
            if b.source not in sources:
                raise CompileError([Diagnostic(Severity.ERROR, f"binding of unknown source {b.source!r}",
                                               doc.span(("source",)), code="binding")])
            other = package.get((b.source, b.name)) or out.get((b.source, b.name))
            if other is not None:
                raise CompileError([Diagnostic(
                    Severity.ERROR, f"source {b.source!r} already has a binding {b.name!r} ({other.file})",
                    doc.span(("name",)), hint="name your binding differently; `default: true` makes it the one "
                    "compiled when no --binding is given", code="binding")])
            if b.extra.get("default"):
                twin = next((o for o in out.values() if o.source == b.source and o.target == b.target
                             and o.extra.get("default")), None)
                if twin is not None:
                    raise CompileError([Diagnostic(
                        Severity.ERROR, f"source {b.source!r} already has a default {b.target} binding of yours "
                        f"({twin.file})", doc.span(("default",)), code="binding")])
            out[(b.source, b.name)] = b
    return out


def builtin_bindings() -> dict[tuple[str, str], Binding]:
    """(source name, binding name) → Binding: the package's, and the user's folders in use (sources.use_source_dirs)."""
    if not _user:
        return package_bindings()
    return _merged()


@lru_cache(maxsize=1)
def _merged() -> dict[tuple[str, str], Binding]:
    return {**package_bindings(), **_user}


def bindings_for(source: str, target: str) -> list[Binding]:
    """The source's bindings for a target, the default one (`default: true`) first: a user's default before the
    package's."""
    found = [b for (s, _), b in sorted(builtin_bindings().items()) if s == source and b.target == target]
    return sorted(found, key=lambda b: (not b.extra.get("default", False), not b.user if b.extra.get("default")
                                         else b.user))
