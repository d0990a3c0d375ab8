"""Azure Monitor diagnostic records (Entra ID sign-in, audit and risk logs; the Azure Activity log) as Event Hub,
storage exports and SIEM pipelines deliver them, made one canonical row each (docs/sources/azure.md, "Readers").

What the data has, and what the row gets:
- `{"records": [...]}` batches (Event Hub, storage): unwrapped by reader.py, one row per record.
- top-level names in another case (`calleripaddress`, `operationname`, `resulttype`: exports that lower-case keys):
  the schema's spelling (`callerIpAddress`, `operationName`, `resultType`);
- `properties` as JSON text (`"properties": "{\"userPrincipalName\": …}"`, as some pipelines forward it): parsed;
  text that is not a JSON object makes the record malformed: reported with its line (or record number) and skipped;
- time as ISO-8601 with 7 fractional digits (`…T03:31:26.7088498Z`) or `2025-01-15 14:20:35.456` (space, no zone:
  UTC): read by the source's time column, as every timestamp is (values.to_datetime).

Microsoft 365 Management Activity API records and any other JSON are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from .values import respelled

# the diagnostic record's top-level fields (Entra ID and Activity log schemas), by their lower-case spelling
_TOP = {k.lower(): k for k in (
    "time", "resourceId", "operationName", "operationVersion", "category", "tenantId", "resultType",
    "resultSignature", "resultDescription", "durationMs", "callerIpAddress", "correlationId", "identity",
    "location", "properties",
)}




def is_diagnostic(doc: dict[str, Any]) -> bool:
    """An Azure Monitor diagnostic record: a `category` and an `operationName` or `properties` (the former in any
    case), and none of the Windows or Sentinel-row keys."""
    if "category" not in doc or "Channel" in doc or "TimeGenerated" in doc or "EventID" in doc:
        return False
    return "properties" in doc or "operationName" in doc or "operationname" in doc


def malformed(doc: dict[str, Any]) -> str | None:
    """Why a record cannot be read, or None: an Azure diagnostic record whose `properties` is text that is not a JSON
    object (the reader reports and skips it, docs/sources/azure.md). Called only when `properties` is a string."""
    props = doc.get("properties")
    if not isinstance(props, str) or not is_diagnostic(doc):
        return None
    try:
        parsed = orjson.loads(props)
    except orjson.JSONDecodeError as exc:
        return f"Azure record: properties is text but not JSON ({exc})"
    return None if isinstance(parsed, dict) else "Azure record: properties is text but not a JSON object"


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    """One diagnostic record as the canonical row (a new dict when anything changes)."""
    out = respelled(doc, _TOP)
    props = out.get("properties")
    if isinstance(props, (str, bytes)) and props:
        try:
            parsed = orjson.loads(props)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            if out is doc:
                out = dict(doc)
            out["properties"] = parsed
    return out


def normalise_all(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        yield normalise(doc) if is_diagnostic(doc) else doc
