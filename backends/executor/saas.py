"""Identity and SaaS audit records made one canonical row each (docs/sources/saas.md, "Readers"): the GCP Cloud Audit
LogEntry and the GitHub audit log event. Okta System Log events need nothing: they are read as they are.

What the data has, and what the row gets:
- GCP LogEntry (a record with a `protoPayload` object): top-level keys in another case (`insertid`, `logname`,
  `receivetimestamp`: exports that lower-case keys) get the LogEntry's spelling (`insertId`, `logName`,
  `receiveTimestamp`); `at_sign_type` / `at_type` (Panther's and other pipelines' rename of `@type`, a key some
  stores cannot hold) is `@type` again, at any depth of `protoPayload`;
- GitHub audit event (an `action` and an `actor` or `org`): Panther's `at_sign_timestamp` is `@timestamp` again;
- Google Workspace Reports API activity (an `id` object and an `events` array; `activities.list` items) is one row per
  event: the activity's fields with the event's `name`, `type` and `parameters` as an object (parameter name -> its
  `value`, `multiValue`, `intValue`, `boolValue`, `multiIntValue`, or `messageValue`'s parameters as an object), the
  shape Panther's GSuite.ActivityEvent already has; an `activities.list` page (`kind: admin#reports#activities`) is
  its `items`. A record of that shape whose events or parameters are not objects is reported (`malformed`);
- Okta event hook delivery (`eventType: com.okta.event_hook`, the System Log events in `data.events`, as Okta POSTs
  them to a hook's endpoint and a receiver stores the request bodies) is its events, each the System Log event as the
  API gives it (the delivery's own `eventId`/`eventTime`/`source` describe the POST, not an event, and are dropped).
  A delivery whose `data.events` is not an array of objects is reported (`malformed`).

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


_PARAMETER_VALUES = ("value", "multiValue", "intValue", "boolValue", "multiIntValue")


def is_gws_page(doc: dict[str, Any]) -> bool:
    return doc.get("kind") == "admin#reports#activities" and isinstance(doc.get("items", []), list)


def is_gws_activity(doc: dict[str, Any]) -> bool:
    return "events" in doc and isinstance(doc.get("id"), dict) and "applicationName" in doc["id"]


OKTA_HOOK = "com.okta.event_hook"  # https://developer.okta.com/docs/concepts/event-hooks/ (sample delivery payload)


def is_okta_hook(doc: dict[str, Any]) -> bool:
    return doc.get("eventType") == OKTA_HOOK and "data" in doc


def _okta_hook_error(doc: dict[str, Any]) -> str | None:
    data = doc.get("data")
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        return "Okta event hook delivery: `data.events` is not an array"
    for i, e in enumerate(events, 1):
        if not isinstance(e, dict):
            return f"Okta event hook delivery: event {i} of `data.events` is not an object"
    return None


def _parameter_error(params: Any, where: str) -> str | None:
    if not isinstance(params, list):
        return f"{where}: `parameters` is not an array"
    for j, p in enumerate(params, 1):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            return f"{where}: parameter {j} is not an object with a `name`"
        message = p.get("messageValue")
        if message is not None:
            if not isinstance(message, dict):
                return f"{where}: parameter {p['name']!r}: `messageValue` is not an object"
            why = _parameter_error(message.get("parameter", []), f"{where}: parameter {p['name']!r}")
            if why is not None:
                return why
    return None


def _activity_error(doc: Any, where: str) -> str | None:
    if not isinstance(doc, dict):
        return f"{where}not a JSON object"
    events = doc.get("events")
    if not isinstance(events, list):
        return f"{where}Google Workspace activity: `events` is not an array"
    for i, e in enumerate(events, 1):
        if not isinstance(e, dict):
            return f"{where}Google Workspace activity: event {i} is not an object"
        if "parameters" in e:
            why = _parameter_error(e["parameters"], f"{where}Google Workspace activity: event {i}")
            if why is not None:
                return why
    return None


def malformed(doc: dict[str, Any]) -> str | None:
    """Why a Google Workspace activity (or activities.list page) or an Okta event hook delivery cannot be made rows;
    None if it can, or if `doc` is not one."""
    if is_okta_hook(doc):
        return _okta_hook_error(doc)
    if is_gws_page(doc):
        for i, item in enumerate(doc.get("items", []), 1):
            why = _activity_error(item, f"item {i} of the activities page: ")
            if why is not None:
                return why
        return None
    if is_gws_activity(doc):
        return _activity_error(doc, "")
    return None


def _parameters(params: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in params:
        if "messageValue" in p:
            out[p["name"]] = _parameters(p["messageValue"].get("parameter", []))
            continue
        for key in _PARAMETER_VALUES:
            if key in p:
                out[p["name"]] = p[key]
                break
        else:
            out[p["name"]] = None
    return out


def activity_rows(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One row per event of a Reports API activity (checked by `malformed`)."""
    base = {k: v for k, v in doc.items() if k != "events"}
    for e in doc["events"]:
        row = dict(base)
        for key in ("name", "type"):
            if key in e:
                row[key] = e[key]
        if "parameters" in e:
            row["parameters"] = _parameters(e["parameters"])
        yield row


def normalise_all(docs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for doc in docs:
        if is_log_entry(doc):
            yield normalise_log_entry(doc)
        elif "data" in doc and is_okta_hook(doc):
            yield from doc["data"]["events"]
        elif "events" in doc and is_gws_activity(doc):
            yield from activity_rows(doc)
        elif "items" in doc and is_gws_page(doc):
            for item in doc["items"]:
                yield from activity_rows(item)
        elif "at_sign_timestamp" in doc and "@timestamp" not in doc and is_github(doc):
            out = dict(doc)
            out["@timestamp"] = out.pop("at_sign_timestamp")
            yield out
        else:
            yield doc
