"""Windows event logs: `.evtx` files, evtx-JSON, flat NDJSON (OTRF/NXLog), each record as one canonical row.

The canonical row (docs/sources/windows.md): EventData's named fields at top level as Sigma names them (Image,
CommandLine, TargetObject, …); `EventID` an int; `Channel`, `Provider_Name`, `Computer`, `Level`, `Task`,
`Keywords`, `EventRecordID`, `Version` from Event/System; `TimeCreated` the ISO-8601 SystemTime (the sources read
their `_time` from it); classic events' unnamed `<Data>` strings joined by newlines in `Data`; UserData's fields at
top level. Which source a row belongs to is the source's data (`records:` in sources/windows_*.yml):
`select_records` applies it.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from siemforge.compiler.sources import RecordSelector, SourceDef

EVTX_MAGIC = b"ElfFile\x00"
_MAX_ERRORS_IN_A_ROW = 1000  # a file whose records all fail to parse is not read to its (possibly huge) end


def iter_evtx(path: Path, report: Callable[[Any], None]) -> Iterator[dict[str, Any]]:
    """The records of a binary `.evtx` file (through the `evtx` package), in file order, each as a canonical row.
    A record the parser cannot read is reported by its position in the file and skipped."""
    from evtx import PyEvtxParser

    from .reader import Malformed

    name = str(path)
    records: Any
    try:
        records = iter(PyEvtxParser(name).records_json())
    except (OSError, RuntimeError, ValueError) as exc:
        report(Malformed(name, 0, f"not a readable .evtx file: {exc}"))
        return
    n = errors = 0
    while True:
        n += 1
        try:
            rec = next(records)
        except StopIteration:
            cut = _truncated(path)
            if cut:
                report(Malformed(name, 0, cut))
            return
        except (OSError, RuntimeError, ValueError) as exc:
            report(Malformed(name, n, f"evtx record {n}: {exc}"))
            errors += 1
            if errors >= _MAX_ERRORS_IN_A_ROW:
                report(Malformed(name, n, f"stopped reading after {errors} unreadable records in a row"))
                return
            continue
        errors = 0
        try:
            doc = orjson.loads(rec["data"])
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            report(Malformed(name, n, f"evtx record {n}: {exc}"))
            continue
        yield normalise(doc)


_EVTX_HEADER = struct.Struct("<8s24xIHHHH")  # magic, (chunk numbers, next record id), size, versions, block, chunks
_EVTX_CHUNK = 65536


def _truncated(path: Path) -> str | None:
    """Why an .evtx file is cut short, when it holds fewer whole chunks than its header counts (the parser reads
    the whole chunks and stops without a word; none of the 124 real files in ../shared is flagged)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_EVTX_HEADER.size)
            size = os.fstat(fh.fileno()).st_size
    except OSError:
        return None
    if len(head) < _EVTX_HEADER.size:
        return None
    magic, _, _, _, block, chunks = _EVTX_HEADER.unpack(head)
    if magic != EVTX_MAGIC or size >= block + chunks * _EVTX_CHUNK:
        return None
    whole = max(0, size - block) // _EVTX_CHUNK
    return (f"truncated: its header counts {chunks} chunks of 64 KiB, the file holds {whole} whole; the records "
            f"after them are lost")


def split_concatenated(data: bytes) -> list[Any] | None:
    """Concatenated JSON values (`{…}{…}` or pretty-printed objects one after another, as SigmaHQ's regression
    `.json` files hold several events), or None when the text is not that."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoder = json.JSONDecoder()
    out: list[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return out if len(out) > 1 else None
        try:
            doc, i = decoder.raw_decode(text, i)
        except (json.JSONDecodeError, RecursionError):  # the stdlib decoder recurses per nesting level
            return None
        out.append(doc)


def _text(v: Any) -> Any:
    """An XML element as evtx writes it: its text, or its value when it is a plain value."""
    if isinstance(v, dict):
        if "#text" in v:
            return _text(v["#text"])
        return None
    return v


def _event_id(v: Any) -> Any:
    v = _text(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return v
    return v


def _attr(system: dict[str, Any], element: str, attribute: str) -> Any:
    el = system.get(element)
    if isinstance(el, dict):
        attrs = el.get("#attributes")
        if isinstance(attrs, dict):
            return attrs.get(attribute)
    return None


def _put_data(row: dict[str, Any], data: Any) -> None:
    """EventData / UserData children into the row: named fields by name, unnamed <Data> as joined text."""
    if isinstance(data, dict):
        for k, v in data.items():
            if type(v) is not dict and k != "Data":  # the common case: a named field with a plain value
                if k not in row:
                    row[k] = v
                continue
            if k == "#attributes":
                continue
            if k == "Data":  # unnamed data: {"#text": [...]} or a string
                t = _text(v)
                if isinstance(t, list):
                    t = "\n".join("" if x is None else str(x) for x in t)
                if t is not None:
                    row.setdefault("Data", t)
                continue
            if isinstance(v, dict) and "#text" not in v and k != "Binary":
                _put_data(row, v)  # UserData wraps its fields in one element named after the event
                continue
            if k not in row:
                row[k] = _text(v)
    elif isinstance(data, list):
        row.setdefault("Data", "\n".join("" if x is None else str(x) for x in data))
    elif data is not None:
        row.setdefault("Data", str(data))


def from_evtx_json(doc: dict[str, Any]) -> dict[str, Any]:
    ev = doc["Event"]
    system = ev.get("System") if isinstance(ev.get("System"), dict) else {}
    row: dict[str, Any] = {}
    _put_data(row, ev.get("EventData"))
    _put_data(row, ev.get("UserData"))
    # System's own names win over an EventData field of the same name (there are none in Sysmon/Security)
    row["EventID"] = _event_id(system.get("EventID"))
    row["Channel"] = system.get("Channel")
    row["Provider_Name"] = _attr(system, "Provider", "Name")
    row["Computer"] = system.get("Computer")
    row["TimeCreated"] = _attr(system, "TimeCreated", "SystemTime")
    for k in ("Level", "Task", "Opcode", "Keywords", "EventRecordID", "Version"):
        if k in system:
            row[k] = _text(system[k])
    uid = _attr(system, "Security", "UserID")
    if uid is not None:
        row.setdefault("UserID", uid)
    return row


def from_flat(doc: dict[str, Any]) -> dict[str, Any]:
    """Flat records (OTRF/NXLog/Winlogbeat-style NDJSON): fields are already top level; EventID made a number,
    and the System names filled from the collector's when absent."""
    eid = doc.get("EventID")
    if not isinstance(eid, int):
        doc["EventID"] = _event_id(eid)
    if "Provider_Name" not in doc:
        p = doc.get("SourceName", doc.get("ProviderName"))
        if p is not None:
            doc["Provider_Name"] = p
    if "Computer" not in doc and "Hostname" in doc:
        doc["Computer"] = doc["Hostname"]
    if "TimeCreated" not in doc:
        t = doc.get("@timestamp", doc.get("EventTime"))
        if t is not None:
            doc["TimeCreated"] = t
    return doc


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """A Windows record as a canonical row; any other record unchanged."""
    ev = doc.get("Event")
    if isinstance(ev, dict) and ("System" in ev or "EventData" in ev):
        return from_evtx_json(doc)
    if "EventID" in doc and "Channel" in doc:
        return from_flat(doc)
    return doc


def normalise_all(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if "Event" in doc or "EventID" in doc:
            yield normalise(doc)
        else:
            yield doc


def select_records(src: SourceDef, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows of a source with `records:`: a Windows record (one with a Channel) is kept when a selector matches
    it, with that selector's renames applied; a record without a Channel is not a Windows record as far as anyone
    can tell (e.g. a hand-made event with only the rule's fields) and is kept as it is."""
    selectors = src.records
    by_provider = any(sel.providers for sel in selectors)
    by_category = any(sel.categories for sel in selectors)
    for row in rows:
        channel = row.get("Channel")
        # Azure diagnostic records (Entra ID, Azure Activity) are selected by their `category` (azure.py)
        category = row.get("category") if channel is None and by_category else None
        if channel is None and category is None:
            yield row
            continue
        if channel is None:
            cat = str(category).lower()  # an Azure record: the first selector naming its category
            found = next((sel for sel in selectors if cat in sel.categories), None)
            if found is not None:
                yield _renamed(row, found)
            continue
        provider = str(row.get("Provider_Name", "")).lower() if by_provider else ""
        sel = _selector(selectors, str(channel).lower(), provider, row.get("EventID"))
        if sel is not None:
            yield _renamed(row, sel)


def _selector(selectors: tuple[RecordSelector, ...], channel: str, provider: str, eid: Any) -> RecordSelector | None:
    """The first selector a record of this channel and provider (lower case) and EventID matches, or None."""
    for sel in selectors:
        if sel.categories or sel.match:  # an Azure or auditd selector: no Windows record is one of its rows
            continue
        if sel.channels and channel not in sel.channels:
            continue
        if sel.providers and provider not in sel.providers:
            continue
        if sel.event_ids and not (isinstance(eid, Hashable) and eid in sel.event_ids):
            continue  # an EventID that is a list or an object (a malformed record) is none of the source's
        return sel
    return None


def _renamed(row: dict[str, Any], sel: RecordSelector) -> dict[str, Any]:
    if not sel.rename:
        return row
    row = dict(row)
    values = {old: row.pop(old) for old, _ in sel.rename if old in row}
    for old, new in sel.rename:
        if old in values:
            row[new] = values[old]
    return row


class RecordIndex:
    """Events grouped once by what decides which Windows source they are rows of (channel, provider, EventID), so
    that the rows of each source are picked by looking at each group, not at each event: many rules over the same
    events (`engine.run_pipelines`) select each source's rows once, from the groups. Same rows, in the same order,
    as `select_records`."""

    def __init__(self, events: Sequence[dict[str, Any]]) -> None:
        self.events = events
        self.groups: dict[tuple[str, str, Any], list[int]] = {}
        self.no_channel: list[int] = []  # not Windows records: every source keeps them (select_records)
        self.odd: list[int] = []
        for i, row in enumerate(events):
            channel = row.get("Channel")
            if channel is None:
                self.no_channel.append(i)
                continue
            eid = row.get("EventID")
            if not isinstance(eid, (int, str, type(None))):  # not canonical (a list, an object): looked at alone
                self.odd.append(i)
                continue
            key = (str(channel).lower(), str(row.get("Provider_Name", "")).lower(), eid)
            self.groups.setdefault(key, []).append(i)

    def rows_of(self, src: SourceDef) -> list[dict[str, Any]]:
        picked: list[tuple[int, RecordSelector | None]] = [(i, None) for i in self.no_channel]
        for (channel, provider, eid), members in self.groups.items():
            sel = _selector(src.records, channel, provider, eid)
            if sel is not None:
                picked.extend((i, sel) for i in members)
        events = self.events
        for i in self.odd:
            row = events[i]
            found = _selector(src.records, str(row["Channel"]).lower(), str(row.get("Provider_Name", "")).lower(),
                              row.get("EventID"))
            if found is not None:
                picked.append((i, found))
        picked.sort(key=lambda x: x[0])
        return [events[i] if sel is None else _renamed(events[i], sel) for i, sel in picked]
