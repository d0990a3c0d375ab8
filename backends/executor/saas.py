"""Identity and SaaS audit records made one canonical row each (docs/sources/saas.md, "Readers"): the GCP Cloud Audit
LogEntry and the GitHub audit log event. Okta System Log events need nothing: they are read as they are.

What the data has, and what the row gets:
- GCP LogEntry (a record with a `protoPayload` object): top-level keys in another case (`insertid`, `logname`,
  `receivetimestamp`: exports that lower-case keys) get the LogEntry's spelling (`insertId`, `logName`,
  `receiveTimestamp`); `at_sign_type` / `at_type` (Panther's and other pipelines' rename of `@type`, a key some
  stores cannot hold) is `@type` again, at any depth of `protoPayload`;
- GitHub audit event (an `action` and an `actor` or `org`): Panther's `at_sign_timestamp` is `@timestamp` again.

Any other record is not touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .values import respelled

# the LogEntry's top-level fields, by their lower-case spelling
# (https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry)
_LOG_ENTRY = {k.lower(): k for k in (
    "logName", "resource", "protoPayload", "timestamp", "receiveTimestamp", "severity", "insertId", "httpRequest",
    "labels", "operation", "trace", "spanId", "traceSampled", "sourceLocation", "split",
)}
_AT_TYPE = ("at_sign_type", "at_type")


def _with_at_type(value: Any) -> Any:
    """`value` with every `at_sign_type` / `at_type` key named `@type` (the same object when none is)."""
    if isinstance(value, dict):
        out = value
        for key, v in value.items():
            nv = _with_at_type(v)
            if key in _AT_TYPE and "@type" not in value:
                if out is value:
                    out = dict(value)
                del out[key]
                out["@type"] = nv
            elif nv is not v:
                if out is value:
                    out = dict(value)
                out[key] = nv
        return out
    if isinstance(value, list):
        items = [_with_at_type(v) for v in value]
        return items if any(a is not b for a, b in zip(items, value)) else value
    return value


def is_log_entry(doc: dict[str, Any]) -> bool:
    return isinstance(doc.get("protoPayload"), dict) or isinstance(doc.get("protopayload"), dict)


def normalise_log_entry(doc: dict[str, Any]) -> dict[str, Any]:
    out = respelled(doc, _LOG_ENTRY)
    payload = out.get("protoPayload")
    fixed = _with_at_type(payload)
    if fixed is not payload:
        if out is doc:
            out = dict(doc)
        out["protoPayload"] = fixed
    return out


def is_github(doc: dict[str, Any]) -> bool:
    return "action" in doc and ("actor" in doc or "org" in doc) and "eventType" not in doc


def normalise_all(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if is_log_entry(doc):
            yield normalise_log_entry(doc)
        elif "at_sign_timestamp" in doc and "@timestamp" not in doc and is_github(doc):
            out = dict(doc)
            out["@timestamp"] = out.pop("at_sign_timestamp")
            yield out
        else:
            yield doc
