"""Reading a bound physical shape (a Sentinel AWSCloudTrail row) as the canonical record, and the reverse.

Both directions read the same binding (sources/bindings/*.yml) that the backends compile against, so a test that
converts raw records to rows and gets the same alerts from both shapes proves the column map.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from siemforge.compiler.bindings import (
    AUDIT_FIELD_PATTERN,
    SPLIT_DETAILS,
    Binding,
    computed,
    members_column,
    row_filter,
)

from .values import format_datetime, to_datetime, to_number, to_text

_PORTAL_TIME = re.compile(r"(\d{2})/(\d{2})/(\d{4}), (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")


def _physical_time(v: Any) -> datetime | None:
    """A datetime column as exported by the API (ISO-8601) or by the Azure portal (`dd/mm/yyyy, HH:MM:SS.fff`)."""
    if isinstance(v, str):
        m = _PORTAL_TIME.fullmatch(v.strip())
        if m:
            d, mo, y, h, mi, s, frac = m.groups()
            return datetime(
                int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0").ljust(6, "0")), tzinfo=UTC
            )
    return to_datetime(v)


def _normalize_keys(row: dict[str, Any]) -> dict[str, Any]:
    """Portal exports name datetime columns `TimeGenerated [UTC]`."""
    out = {}
    for k, v in row.items():
        out[k[:-6] if k.endswith(" [UTC]") else k] = v
    return out


def _set_path(record: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = record
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = value


def _get_path(record: dict[str, Any], dotted: str) -> Any:
    cur: Any = record
    for p in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def row_selected(row: dict[str, Any], binding: Binding) -> bool:
    """Whether a table row is a row of the binding's source (its `rows:` filter; KQL compares case-sensitively)."""
    for column, allowed in row_filter(binding).items():
        v = row.get(column)
        if isinstance(v, str) and any(isinstance(a, int) for a in allowed):
            try:
                v = int(v)
            except ValueError:
                return False
        if v not in allowed:
            return False
    return True


def computed_value(spec: dict[str, Any], row: dict[str, Any]) -> str | None:
    """A binding's computed field from a table row, as the KQL backend computes it (kql.lower.computed_kql)."""
    if spec["kind"] == "registry_path":
        key = row.get(spec["key"])
        if not key:
            return None
        key = str(key)
        for long, short in spec["hives"]:
            if key.lower().startswith(long.lower()):
                key = short + key[len(long):]
                break
        value = row.get(spec["value"])
        return key + ("\\" + str(value) if value not in (None, "") else "")
    if spec["kind"] == "value_map":
        found = spec["map"].get(row.get(spec["column"]))
        return None if found is None else str(found)
    if spec["kind"] == "audit_field":
        text = row.get(spec["column"])
        m = re.search(AUDIT_FIELD_PATTERN.format(key=re.escape(str(spec["key"]))), text) if isinstance(
            text, str) else None
        value = m.group(1).strip('"') if m else None
        return None if value in (None, "", "(null)") else value
    if spec["kind"] == "member":
        holder = row.get(spec["column"])
        if isinstance(holder, str) and holder:
            try:
                holder = orjson.loads(holder)
            except orjson.JSONDecodeError:
                return None  # KQL's member of text that is not JSON is null, and tostring(null) is ""
        v = holder.get(spec["member"]) if isinstance(holder, dict) else None
        if v is None:
            return None
        text = v if isinstance(v, str) else to_text(v) or ""
        prefix = str(spec.get("strip_prefix") or "")
        if prefix and text.lower().startswith(prefix.lower()):
            text = text[len(prefix):]
        return text
    if spec["kind"] == "account":
        domain, name = row.get(spec["domain"]) or "", row.get(spec["name"]) or ""
        if not name:
            return None
        return f"{domain}\\{name}" if domain else str(name)
    if spec["kind"] == "hex":
        n = row.get(spec["column"])
        try:
            return None if n in (None, "") else f"0x{int(n):x}"  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
    if spec["kind"] == "hashes":
        parts = [f"{label}={str(row[col]).upper()}" for label, col in spec["algorithms"] if row.get(col)]
        return ",".join(parts) or None
    if spec["kind"] == "unless_equal":  # as backends/spl/lower.computed_spl reads it
        value, other = row.get(spec["column"]), row.get(spec["other"])
        return None if value is None or value in (other, spec.get("fill")) else str(value)
    if spec["kind"] == "split_details":  # as backends/spl/lower.computed_spl joins them
        data, typ = row.get(spec["data"]), row.get(spec["type"])
        if data is None:
            return None
        return str(data) if typ is None else f"{str(typ)[4:]} ({data})"
    data, kind = row.get(spec["data"]), str(row.get(spec["type"]) or "").lower()
    kind = {str(v).lower(): k.lower() for k, v in registry_types(spec).items()}.get(kind, "")
    try:
        if kind == "dword":
            return f"DWORD (0x{int(data) & 0xFFFFFFFF:08x})"  # type: ignore[arg-type]
        if kind == "qword":
            n = int(data) & 0xFFFFFFFFFFFFFFFF  # type: ignore[arg-type]
            return f"QWORD (0x{n >> 32:08x}-0x{n & 0xFFFFFFFF:08x})"
    except (TypeError, ValueError):
        return None  # KQL's tolong of a non-number is null, and strcat of a null is ""
    if kind == "binary":
        return "Binary Data"
    return None if data in (None, "") else str(data)


_NOT_AUDIT_FIELDS = frozenset({"type", "auditd_row", "node", "timestamp", "serial", "audit_id", "_time"})


def computed_columns(spec: dict[str, Any], value: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The table columns a computed field comes from, given its canonical value (record_to_row's direction).
    Registry paths: the last segment is the value name for value events (Sysmon EventType SetValue/DeleteValue,
    or a source of value events only), the whole path the key otherwise."""
    if value is None:
        return {}
    text = str(value)
    if spec["kind"] == "audit_field":  # the whole record as auditd's text, every field quoted
        fields = " ".join(f'{k}="{v}"' for k, v in record.items() if k not in _NOT_AUDIT_FIELDS and v is not None)
        return {spec["column"]: f"type={record.get('type', 'UNKNOWN')} msg=audit({record.get('audit_id', '0:0')}): "
                                f"{fields}"}
    if spec["kind"] == "value_map":
        text = text.lower() if isinstance(value, bool) else text
        column_value = next((k for k, v in spec["map"].items() if str(v) == text), None)
        return {} if column_value is None else {spec["column"]: column_value}
    if spec["kind"] == "member":  # the dynamic column's other members are merged in by record_to_row
        prefix = str(spec.get("strip_prefix") or "")
        return {spec["column"]: {spec["member"]: prefix + text if prefix else text}}
    if spec["kind"] == "account":
        domain, sep, name = text.partition("\\")
        return {spec["domain"]: domain, spec["name"]: name} if sep else {spec["name"]: text}
    if spec["kind"] == "hex":
        try:
            return {spec["column"]: int(text, 16)}
        except ValueError:
            return {}
    if spec["kind"] == "unless_equal":  # a value the target shows as missing leaves the column to the other field's
        return {} if text in spec.get("missing_for", ()) else {spec["column"]: text}
    if spec["kind"] == "split_details":
        # the add-on's regexes: <Data Name='Details'>\w+\s\((.+)\)</Data> for the data, (\w+)\s\(.+\) for the type
        m = SPLIT_DETAILS.fullmatch(text)
        return {spec["data"]: m.group(2), spec["type"]: "REG_" + m.group(1)} if m else {spec["data"]: text}
    if spec["kind"] == "hashes":
        given = dict(part.partition("=")[::2] for part in text.split(","))
        return {col: given[label].lower() for label, col in spec["algorithms"] if given.get(label)}
    if spec["kind"] == "registry_path":
        for long, short in spec["hives"]:
            if text.lower().startswith(short.lower() + "\\"):
                text = long + text[len(short):]
                break
        value_event = spec.get("value_events")
        is_value = value_event is True or str(record.get("EventType", "")) in (value_event or [])
        key, _, name = text.rpartition("\\") if is_value else (text, "", "")
        return {spec["key"]: key, spec["value"]: name}
    types = registry_types(spec)
    m = re.fullmatch(r"DWORD \(0x([0-9a-fA-F]{8})\)", text)
    if m:
        return {spec["data"]: str(int(m.group(1), 16)), spec["type"]: types["Dword"]}
    m = re.fullmatch(r"QWORD \(0x([0-9a-fA-F]{8})-0x([0-9a-fA-F]{8})\)", text)
    if m:
        return {spec["data"]: str(int(m.group(1) + m.group(2), 16)), spec["type"]: types["Qword"]}
    if text == "Binary Data":
        return {spec["data"]: "", spec["type"]: types["Binary"]}
    return {spec["data"]: text, spec["type"]: types["String"]}


def registry_types(spec: dict[str, Any]) -> dict[str, str]:
    """How a registry_data spec's type column names Dword, Qword, Binary and String (Defender: those words; Security
    4657: message codes such as `%%1876`)."""
    return {"Dword": "Dword", "Qword": "Qword", "Binary": "Binary", "String": "String", **(spec.get("types") or {})}


def row_to_record(row: dict[str, Any], binding: Binding) -> dict[str, Any]:
    """A physical row → the canonical record (missing fields stay missing)."""
    row = _normalize_keys(row)
    record: dict[str, Any] = {}
    for dotted, column in binding.columns.items():
        if dotted == binding.time_column or dotted.startswith("_"):
            continue  # derived columns (_time) come from the canonical time field
        if column not in row:
            continue
        v = row[column]
        if v is None or (binding.empty_is_missing and v == ""):
            continue
        kind = binding.schema.get(column, "string")
        if kind == "datetime":
            dt = _physical_time(v)
            if dt is None:
                continue
            v = format_datetime(dt)
        elif kind == "bool" and isinstance(v, str):
            low = v.strip().lower()
            if low not in ("true", "false"):
                continue
            v = low == "true"
        elif kind in ("int", "long") and isinstance(v, str):
            try:
                v = int(v)
            except ValueError:
                continue
        elif kind in ("real", "double") and isinstance(v, str):  # custom-log `_d` columns exported as text
            try:
                v = float(v)
            except ValueError:
                continue  # "null", as Log Analytics exports a missing number
            if not math.isfinite(v):
                continue
        elif kind == "dynamic" and isinstance(v, str):  # a dynamic column exported as its JSON text
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError:
                pass  # not JSON: keep the text
        _set_path(record, dotted, v)
    for dotted, column in binding.json_columns.items():
        v = row.get(column)
        if v is None or v == "":
            continue
        if isinstance(v, str):
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError:
                pass  # not JSON: keep the text
        _set_path(record, dotted, v)
    for name, spec in computed(binding).items():
        v = computed_value(spec, row)
        if v is not None and not (binding.empty_is_missing and v == ""):
            record[name] = v
    holder = members_column(binding)
    members = row.get(holder) if holder is not None else None
    if isinstance(members, str) and members:
        try:
            members = orjson.loads(members)
        except orjson.JSONDecodeError:
            members = None
    if isinstance(members, dict):
        not_members = set(binding.extra.get("not_members", ()))
        for k, v in members.items():
            if k not in record and k not in not_members and v is not None:
                record[k] = v
    return record


def record_to_row(record: dict[str, Any], binding: Binding) -> dict[str, Any]:
    """A canonical record → the physical row the binding describes (as the SIEM would store it)."""
    row: dict[str, Any] = {}
    fixed = row_filter(binding)
    derived: dict[str, Any] = {}
    for name, spec in computed(binding).items():
        for column, v in computed_columns(spec, _get_path(record, name), record).items():
            if isinstance(v, dict) and isinstance(derived.get(column), dict):
                derived[column] = {**derived[column], **v}  # several members of one dynamic column
            else:
                derived[column] = v
    by_column: dict[str, str] = {}
    for dotted, column in binding.columns.items():
        if not dotted.startswith("_"):
            by_column.setdefault(column, dotted)
    for column, kind in binding.schema.items():
        source = by_column.get(column)
        json_field = next((d for d, c in binding.json_columns.items() if c == column), None)
        if source is not None:
            v = _get_path(record, source)
            if isinstance(v, (dict, list)):
                v = to_text(v)
            if kind == "datetime":
                dt = to_datetime(v)
                v = format_datetime(dt) if dt is not None else None
            elif kind == "string" and v is not None and not isinstance(v, str):
                v = to_text(v)
            elif kind == "real" and v is not None:
                v = to_number(v)  # a number column holds no text (GitHub's created_at as a date: no value)
            elif source in binding.extra.get("whole_part", ()) and v is not None:
                n = to_number(v)  # the connector stores toint(v): KQL's toint keeps the whole part (decision 96)
                v = None if n is None else math.trunc(n)
        elif json_field is not None:
            raw = _get_path(record, json_field)
            v = None if raw is None else orjson.dumps(raw).decode()
        else:
            v = None
        if column == members_column(binding):
            mapped = {d.split(".")[0] for d in binding.columns} | set(computed(binding))
            not_members = set(binding.extra.get("not_members", ()))
            v = {k: x for k, x in record.items() if k not in mapped and k not in not_members and x is not None}
        if v is None and column in derived:
            v = derived[column]
        if v is None and column in fixed:
            v = fixed[column][0]  # the table's rows of this source carry the filter's value
        if v is None and kind == "string" and binding.empty_is_missing:
            v = ""
        row[column] = v
    tc = binding.time_column
    if row.get(tc) is None and binding.schema.get(tc) == "datetime":  # the event's time, as the connector stamps it
        from siemforge.compiler.sources import builtin_sources

        sdef = builtin_sources().get(binding.source)
        if sdef is not None and sdef.time_from is not None:
            dt = to_datetime(_get_path(record, sdef.time_from))
            row[tc] = format_datetime(dt) if dt is not None else None
    if "Type" in binding.schema and binding.table:
        row["Type"] = binding.table
    return row
