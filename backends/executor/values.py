"""Run-time meaning of IR values and operators in the executor. docs/semantics.md is the contract.

Values are JSON values (None, bool, int, float, str, list, dict) plus datetime (UTC-aware) and timedelta.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import re2

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UTC = UTC
_fromisoformat = datetime.fromisoformat
_NUM_RE = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*")


def respelled(doc: dict[str, Any], spellings: dict[str, str]) -> dict[str, Any]:
    """`doc` with each top-level key that an export re-cased (`operationname`, `protopayload`) spelled as the vendor
    spells it (`spellings`: lower case -> canonical), unless the canonical key is there already; the same dict when
    nothing changes, else a new one."""
    out = doc
    for key in doc:
        canonical = spellings.get(key.lower())
        if canonical is not None and canonical != key and canonical not in doc:
            if out is doc:
                out = dict(doc)
            out[canonical] = out.pop(key)
    return out


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def to_number(v: Any) -> int | float | None:
    """A number from a number or numeric text; None otherwise (bools are not numbers)."""
    if is_number(v):
        return v  # type: ignore[no-any-return]
    if isinstance(v, str) and _NUM_RE.fullmatch(v):
        f = float(v)
        if f.is_integer() and re.fullmatch(r"\s*[-+]?\d+\s*", v):
            return int(v)
        return f
    return None


def to_text(v: Any) -> str | None:
    """tostring(): the text of a value; None stays None."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    if isinstance(v, datetime):
        return format_datetime(v)
    if isinstance(v, timedelta):
        return format_timespan(v)
    return orjson.dumps(v, default=_json_member, option=orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _json_member(v: Any) -> str:
    """A datetime or timespan inside an object or array (bag_pack's members) as tostring() spells it alone."""
    if isinstance(v, datetime):
        return format_datetime(v)
    if isinstance(v, timedelta):
        return format_timespan(v)
    raise TypeError(f"no JSON text for a {type(v).__name__}")


def format_datetime(v: datetime) -> str:
    v = v.astimezone(UTC)
    if v.microsecond:
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_timespan(v: timedelta) -> str:
    total = v.total_seconds()
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rem = divmod(int(total), 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    frac = abs(v) - timedelta(seconds=int(abs(v).total_seconds()))
    out = f"{sign}{days}.{h:02}:{m:02}:{sec:02}" if days else f"{sign}{h:02}:{m:02}:{sec:02}"
    if frac.microseconds:
        out += f".{frac.microseconds:06}".rstrip("0")
    return out


_SPACE_DT = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})?")


def to_datetime(v: Any) -> datetime | None:
    """todatetime(): ISO-8601 text (also `YYYY-MM-DD HH:MM:SS[.f…]`), epoch seconds or ms; else None."""
    if type(v) is str:  # the common case, CloudTrail's `2024-01-31T08:00:00Z`: no regex, no conversions
        try:
            dt = _fromisoformat(v)
        except ValueError:
            return _parse_other_text(v)
        tz = dt.tzinfo
        if tz is _UTC:
            return dt
        if tz is None:
            return dt.replace(tzinfo=_UTC)
        return dt.astimezone(_UTC)
    if v is None:
        return None
    if isinstance(v, datetime):
        return v
    if is_number(v):
        x = float(v)
        if not math.isfinite(x):
            return None
        if abs(x) > 1e11:  # epoch milliseconds (CloudTrail launchTime, OCSF time)
            x /= 1000.0
        try:
            return EPOCH + timedelta(seconds=x)
        except OverflowError:
            return None
    if isinstance(v, str):
        return to_datetime(str(v))
    return None


def _parse_other_text(v: str) -> datetime | None:
    """Time text that fromisoformat refuses: nanosecond fractions, `+0000` offsets, epoch numbers as text."""
    m = _SPACE_DT.fullmatch(v.strip())
    if not m:
        if _NUM_RE.fullmatch(v):
            return to_datetime(to_number(v))
        return None
    frac = (m.group(3) or "")[:7].ljust(7, "0")[:7] if m.group(3) else ""
    tz = m.group(4) or "+00:00"
    if tz == "Z":
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    text = f"{m.group(1)}T{m.group(2)}{frac[:7] if frac else ''}{tz}"
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def to_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if is_number(v):
        return bool(v != 0)
    if isinstance(v, str):
        low = v.strip().lower()
        if low == "true":
            return True
        if low == "false":
            return False
    return None


def hashable(v: Any) -> Any:
    """A dict/set key for a value: lists and objects by their JSON text."""
    if isinstance(v, (list, dict)):
        return ("\x00json", orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    if isinstance(v, bool):
        return ("\x00bool", v)
    return v


def values_equal(a: Any, b: Any, case_sensitive: bool) -> bool:
    """`==` of the IR: false if either side is null; numbers compare by value, numeric text as a number."""
    if a is None or b is None:
        return False
    if isinstance(a, str) and isinstance(b, str):
        return a == b if case_sensitive else (a == b or a.lower() == b.lower())
    if isinstance(a, bool) or isinstance(b, bool):
        ba, bb = to_bool(a), to_bool(b)
        return ba is not None and ba == bb
    if is_number(a) or is_number(b):
        na, nb = to_number(a), to_number(b)
        return na is not None and nb is not None and na == nb
    if isinstance(a, datetime) or isinstance(b, datetime):
        da, db = to_datetime(a), to_datetime(b)
        return da is not None and da == db
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a == b
    ta, tb = to_text(a), to_text(b)
    return ta == tb if case_sensitive else (ta or "").lower() == (tb or "").lower()


def order_key(a: Any, b: Any) -> tuple[Any, Any] | None:
    """Two values made comparable for <, <=, >, >=, or None when they are not (then every ordering is false)."""
    if a is None or b is None:
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    if is_number(a) and is_number(b):
        return a, b
    if is_number(a) or is_number(b):
        na, nb = to_number(a), to_number(b)
        return (na, nb) if na is not None and nb is not None else None
    if isinstance(a, datetime) or isinstance(b, datetime):
        da, db = to_datetime(a), to_datetime(b)
        return (da, db) if da is not None and db is not None else None
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    return None


def sort_key(v: Any) -> tuple[int, Any]:
    """A total order for sorting and min/max: null first, then numbers, datetimes, timespans, text, JSON."""
    if v is None:
        return (0, 0)
    if isinstance(v, bool):
        return (1, int(v))
    if is_number(v):
        return (2, v)
    if isinstance(v, datetime):
        return (3, v)
    if isinstance(v, timedelta):
        return (4, v)
    if isinstance(v, str):
        return (5, v)
    return (6, to_text(v))


def wildcard_matcher(pattern: tuple[Any, ...], case_sensitive: bool) -> Callable[[str], bool]:
    """A full match of a Sigma/`like` wildcard pattern, in time linear in the text (a backtracking regex such as
    `.*a.*a.*a.*b` is polynomial in it: minutes over a few kB).

    Only `*`: the first part is a prefix, the last a suffix, and each middle part is found leftmost after the one
    before (greedy leftmost placement finds a match whenever one exists). With `?`: RE2, linear too.
    Case-insensitive matching lower-cases both sides (docs/semantics.md, decision 3)."""
    from siemforge.compiler.ir import Wild

    if any(p is Wild.ONE for p in pattern):
        from siemforge.compiler.lowering import wildcard_body

        from .regex import compile_re2

        rx = compile_re2(wildcard_body(pattern, re2.escape), frozenset({"s"} if case_sensitive else {"s", "i"}))
        return lambda t: rx.fullmatch(t) is not None
    parts: list[str] = [""]
    for p in pattern:
        if p is Wild.ANY:
            parts.append("")
        else:
            parts[-1] += p if case_sensitive else p.lower()
    if len(parts) == 1:
        whole = parts[0]
        return (lambda t: t == whole) if case_sensitive else (lambda t: t.lower() == whole)
    head, middle, tail = parts[0], parts[1:-1], parts[-1]
    need = len(head) + len(tail)

    def match(t: str) -> bool:
        if not case_sensitive:
            t = t.lower()
        if len(t) < need or not t.startswith(head) or not t.endswith(tail):
            return False
        pos, end = len(head), len(t) - len(tail)
        for m in middle:
            if m:
                found = t.find(m, pos, end)
                if found < 0:
                    return False
                pos = found + len(m)
        return True
    return match
