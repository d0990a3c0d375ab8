"""The scalar functions of the pipeline language: names, signatures, result types and one-line meanings.

This table is the one place a function is declared. Semantic analysis checks calls against it; every
backend (the executor included) has an entry for every name here in its function table (a lowering, its own
function of the same name, or an explicit refusal with the reason): tests/test_function_tables.py checks it.
`iif`/`iff` and `case` are not here: they lower to the IR's Case node.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .types import Type, unify

ResultRule = Type | Callable[[Sequence[Type]], Type]


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    params: tuple[Type, ...]
    returns: ResultRule
    optional: int = 0  # how many trailing params may be omitted
    variadic: Type | None = None  # type of any further arguments
    min_args: int | None = None
    doc: str = ""
    literal_params: tuple[int, ...] = ()  # indexes of params that must be literals (units, regexes)

    def arity_text(self) -> str:
        lo = len(self.params) - self.optional if self.min_args is None else self.min_args
        if self.variadic is not None:
            return f"at least {lo}"
        hi = len(self.params)
        return str(lo) if lo == hi else f"{lo} to {hi}"

    def accepts(self, n: int) -> bool:
        lo = len(self.params) - self.optional if self.min_args is None else self.min_args
        if n < lo:
            return False
        return self.variadic is not None or n <= len(self.params)

    def param_type(self, i: int) -> Type:
        if i < len(self.params):
            return self.params[i]
        assert self.variadic is not None
        return self.variadic

    def result(self, arg_types: Sequence[Type]) -> Type:
        return self.returns if isinstance(self.returns, Type) else self.returns(arg_types)


def _unify_all(types: Sequence[Type]) -> Type:
    out = Type.NULL
    for t in types:
        out = unify(out, t)
    return Type.ANY if out is Type.NULL else out


def _first(types: Sequence[Type]) -> Type:
    return types[0] if types else Type.ANY


S, I, R, B, D, T, J, A = (
    Type.STRING,
    Type.INT,
    Type.REAL,
    Type.BOOL,
    Type.DATETIME,
    Type.TIMESPAN,
    Type.DYNAMIC,
    Type.ANY,
)

FUNCTIONS: dict[str, Signature] = {
    s.name: s
    for s in [
        Signature("isnull", (A,), B, doc="true when the value is null or the field is missing"),
        Signature("isnotnull", (A,), B, doc="not isnull"),
        Signature("isempty", (A,), B, doc="true when null, missing, the empty string or an empty array"),
        Signature("isnotempty", (A,), B, doc="not isempty"),
        Signature("coalesce", (A,), _unify_all, variadic=A, doc="the first argument that is not null"),
        Signature("tostring", (A,), S, doc="the text of a value (JSON text for arrays/objects); null stays null"),
        Signature("toint", (A,), I, doc="an integer from a number or numeric text (truncates); null if not numeric"),
        Signature("todouble", (A,), R, doc="a real from a number or numeric text; null if not numeric"),
        Signature("tobool", (A,), B, doc="true/false from a bool, 'true'/'false' text or a number; else null"),
        Signature(
            "todatetime",
            (A,),
            D,
            doc="a UTC datetime from ISO-8601 text or a datetime; a number is Unix epoch seconds "
            "(the analyzer writes unixtime_seconds_todatetime); else null",
        ),
        Signature(
            "unixtime_seconds_todatetime",
            (R,),
            D,
            doc="the UTC datetime that many seconds after 1970-01-01T00:00:00Z; null if not a number or out of range",
        ),
        Signature(
            "unixtime_milliseconds_todatetime",
            (R,),
            D,
            doc="the UTC datetime that many milliseconds after 1970-01-01T00:00:00Z; null if not a number "
            "or out of range",
        ),
        Signature("tolower", (S,), S, doc="lower case"),
        Signature("toupper", (S,), S, doc="upper case"),
        Signature("strlen", (S,), I, doc="number of characters (Unicode code points)"),
        Signature(
            "substring",
            (S, I, I),
            S,
            optional=1,
            doc="substring(s, start, length): 0-based start; to the end when length is omitted",
        ),
        Signature("split", (S, S), J, doc="array of the parts of s between occurrences of the delimiter"),
        Signature("strcat", (A,), S, variadic=A, doc="concatenation of the arguments' text; null counts as ''"),
        Signature("replace_string", (S, S, S), S, doc="every occurrence of the literal text replaced"),
        Signature(
            "replace_regex",
            (S, S, S),
            S,
            literal_params=(1, 2),  # a literal rewrite: its group references are checked at compile time
            doc="every match of the regex replaced; \\1 in the rewrite is group 1",
        ),
        Signature(
            "extract",
            (S, I, S),
            S,
            literal_params=(0, 1),
            doc="extract(regex, group, s): the group of the first match, or null",
        ),
        Signature("array_length", (J,), I, doc="number of elements of an array; null if not an array"),
        Signature(
            "parse_json",
            (S,),
            J,
            doc="the JSON value the text holds; text that is not JSON is itself (a string); null stays null. "
            "Of a dynamic value it is the value as it is (the analyzer writes no call)",
        ),
        Signature(
            "indexof",
            (S, S),
            I,
            doc="indexof(s, lookup): 0-based index of the first occurrence of lookup in s (case-sensitive), "
            "-1 if none; null if either is null",
        ),
        Signature(
            "indexof_regex",
            (S, S),
            I,
            literal_params=(1,),
            doc="indexof_regex(s, regex): 0-based index where the first match of the regex starts, -1 if none; "
            "null if s is null",
        ),
        Signature(
            "bag_pack",
            (S, A),
            J,
            variadic=A,
            doc="bag_pack(k1, v1, k2, v2, …): an object of those members in that order; keys are distinct literal "
            "texts; a null value keeps its key (JSON null), a null string is \"\" (KQL's reading, the analyzer "
            "writes coalesce(v, \"\")). `pack` and `pack_dictionary` are its names too",
        ),
        Signature("now", (), D, doc="the time the query runs (fixed by --now for tests)"),
        Signature("ago", (T,), D, doc="now() minus the timespan"),
        Signature(
            "bin", (A, A), _first, doc="round down to a multiple of the size (numbers, or datetimes by timespan)"
        ),
        Signature("hourofday", (D,), I, doc="hour 0-23 of the datetime in UTC"),
        Signature("dayofweek", (D,), I, doc="day of week of the datetime in UTC: 0 = Sunday … 6 = Saturday"),
        Signature(
            "datetime_diff",
            (S, D, D),
            I,
            literal_params=(0,),
            doc="datetime_diff(unit, a, b): unit boundaries crossed from b to a (a - b), as KQL",
        ),
    ]
}

# other names of a function, as KQL spells them (bag_pack's deprecated aliases): the analyzer reads them as the name
ALIASES = {"pack": "bag_pack", "pack_dictionary": "bag_pack"}

DATETIME_DIFF_UNITS = (
    "year",
    "quarter",
    "month",
    "week",
    "day",
    "hour",
    "minute",
    "second",
    "millisecond",
    "microsecond",
)
