"""The executor's implementation of every scalar function in compiler/functions.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .regex import compile_re2
from .values import EPOCH, is_number, to_bool, to_datetime, to_number, to_text


def _isnull(v: Any) -> bool:
    return v is None


def _isempty(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, (list, dict)) and len(v) == 0)


def _toint(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    n = to_number(v)
    if n is None:
        return None
    try:
        return int(n)
    except (OverflowError, ValueError):
        return None


def _todouble(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    n = to_number(v)
    return None if n is None else float(n)


def _str_arg(v: Any) -> str | None:
    return to_text(v)


def _tolower(v: Any) -> str | None:
    t = _str_arg(v)
    return None if t is None else t.lower()


def _toupper(v: Any) -> str | None:
    t = _str_arg(v)
    return None if t is None else t.upper()


def _strlen(v: Any) -> int | None:
    t = _str_arg(v)
    return None if t is None else len(t)


def _substring(v: Any, start: Any, length: Any = None) -> str | None:
    t = _str_arg(v)
    s = _toint(start)
    if t is None or s is None:
        return None
    s = max(s, 0)
    if length is None:
        return t[s:]
    n = _toint(length)
    if n is None:
        return None
    return t[s:s + max(n, 0)]


def _split(v: Any, sep: Any) -> list[str] | None:
    t, d = _str_arg(v), _str_arg(sep)
    if t is None or d is None:
        return None
    if d == "":
        return [t]
    return t.split(d)


def _strcat(*args: Any) -> str:
    return "".join(to_text(a) or "" for a in args)


def _replace_string(v: Any, find: Any, repl: Any) -> str | None:
    t, f, r = _str_arg(v), _str_arg(find), _str_arg(repl)
    if t is None or f is None or r is None:
        return None
    return t.replace(f, r) if f else t


_REGEX_CACHE: dict[str, Any] = {}


def _rx(p: str) -> Any:
    c = _REGEX_CACHE.get(p)
    if c is None:
        c = _REGEX_CACHE[p] = compile_re2(p)
    return c


def _replace_regex(v: Any, pattern: Any, repl: Any) -> str | None:
    t, r = _str_arg(v), _str_arg(repl)
    if t is None or r is None:
        return None
    out: str = _rx(str(pattern)).sub(r, t)
    return out


def _extract(pattern: Any, group: Any, v: Any) -> str | None:
    t = _str_arg(v)
    if t is None:
        return None
    m = _rx(str(pattern)).search(t)
    if not m:
        return None
    g = int(group)
    try:
        found: str | None = m.group(g)
        return found
    except IndexError:
        return None


def _array_length(v: Any) -> int | None:
    return len(v) if isinstance(v, list) else None


def _parse_json(v: Any) -> Any:
    """KQL parse_json of text: the JSON value it holds, else the text itself (docs/semantics.md decision 75)."""
    if not isinstance(v, str):
        return v  # null stays null; a value that is not text is used as it is
    try:
        return json.loads(v)
    except ValueError:
        return v


def _indexof(v: Any, lookup: Any) -> int | None:
    t, f = _str_arg(v), _str_arg(lookup)
    if t is None or f is None:
        return None
    return t.find(f)


def _indexof_regex(v: Any, pattern: Any) -> int | None:
    t = _str_arg(v)
    if t is None:
        return None
    m = _rx(str(pattern)).search(t)
    return -1 if m is None else int(m.start())


def _bag_pack(*args: Any) -> dict[str, Any]:
    """An object of the key, value pairs in order; a null value keeps its key (docs/semantics.md decision 36)."""
    return {str(args[i]): args[i + 1] for i in range(0, len(args), 2)}


def _bin(v: Any, size: Any) -> Any:
    if v is None or size is None:
        return None
    # a size of zero or less is null, as x / 0 is (docs/semantics.md: bin)
    if isinstance(size, timedelta):
        if size <= timedelta(0):
            return None
        if isinstance(v, timedelta):
            return (v // size) * size
        dt = to_datetime(v)
        if dt is None:
            return None
        return EPOCH + ((dt - EPOCH) // size) * size
    n, s = to_number(v), to_number(size)
    if n is None or s is None or s <= 0:
        return None
    q = (n // s) * s
    return int(q) if isinstance(n, int) and isinstance(s, int) else q


def _hourofday(v: Any) -> int | None:
    dt = to_datetime(v)
    return None if dt is None else dt.astimezone(UTC).hour


def _dayofweek(v: Any) -> int | None:
    dt = to_datetime(v)
    return None if dt is None else (dt.astimezone(UTC).weekday() + 1) % 7


_FIXED_UNITS = {
    "day": timedelta(days=1), "hour": timedelta(hours=1), "minute": timedelta(minutes=1),
    "second": timedelta(seconds=1), "millisecond": timedelta(milliseconds=1),
    "microsecond": timedelta(microseconds=1),
}


def datetime_diff(unit: str, a: Any, b: Any) -> int | None:
    """Boundaries of `unit` crossed going from b to a (KQL datetime_diff): calendar units by their fields,
    weeks starting on Sunday, fixed units by flooring both times to the unit."""
    da, db = to_datetime(a), to_datetime(b)
    if da is None or db is None:
        return None
    da, db = da.astimezone(UTC), db.astimezone(UTC)
    if unit == "year":
        return da.year - db.year
    if unit == "quarter":
        return (da.year * 4 + (da.month - 1) // 3) - (db.year * 4 + (db.month - 1) // 3)
    if unit == "month":
        return (da.year * 12 + da.month) - (db.year * 12 + db.month)
    if unit == "week":
        def week_start(d: datetime) -> int:
            days = (d - EPOCH).days  # 1970-01-01 was a Thursday: Sunday-based week index
            return (days + 4) // 7
        return week_start(da) - week_start(db)
    size = _FIXED_UNITS[unit]
    return (da - EPOCH) // size - (db - EPOCH) // size


def _unixtime(scale: float) -> Callable[[Any], datetime | None]:
    """unixtime_seconds_todatetime / unixtime_milliseconds_todatetime: a number of units after the Unix epoch."""

    def convert(v: Any) -> datetime | None:
        n = to_number(v) if not isinstance(v, bool) else None
        if n is None:
            return None
        try:
            return EPOCH + timedelta(seconds=float(n) * scale)
        except (OverflowError, ValueError):  # beyond datetime's range, inf, nan
            return None

    return convert


def _coalesce(*args: Any) -> Any:
    for a in args:
        if a is not None:
            return a
    return None


IMPLEMENTATIONS: dict[str, Callable[..., Any]] = {
    "isnull": _isnull,
    "isnotnull": lambda v: v is not None,
    "isempty": _isempty,
    "isnotempty": lambda v: not _isempty(v),
    "coalesce": _coalesce,
    "tostring": to_text,
    "toint": _toint,
    "todouble": _todouble,
    "tobool": to_bool,
    "todatetime": to_datetime,
    "unixtime_seconds_todatetime": _unixtime(1.0),
    "unixtime_milliseconds_todatetime": _unixtime(0.001),
    "tolower": _tolower,
    "toupper": _toupper,
    "strlen": _strlen,
    "substring": _substring,
    "split": _split,
    "strcat": _strcat,
    "replace_string": _replace_string,
    "replace_regex": _replace_regex,
    "extract": _extract,
    "array_length": _array_length,
    "parse_json": _parse_json,
    "indexof": _indexof,
    "indexof_regex": _indexof_regex,
    "bag_pack": _bag_pack,
    "bin": _bin,
    "hourofday": _hourofday,
    "dayofweek": _dayofweek,
    "datetime_diff": datetime_diff,
    # now/ago read the run's fixed clock: compile.py binds them
}
CLOCK_FUNCTIONS = ("now", "ago")
_ = is_number
