"""The value types of the IR. One small lattice; `ANY` is the type of what the source does not declare."""

from __future__ import annotations

import enum


class Type(enum.Enum):
    STRING = "string"
    INT = "int"
    REAL = "real"
    BOOL = "bool"
    DATETIME = "datetime"
    TIMESPAN = "timespan"
    DYNAMIC = "dynamic"  # a JSON object or array (CloudTrail requestParameters, a split() result, values())
    NULL = "null"  # the type of the literal `null`
    ANY = "any"  # undeclared: a field the source does not type; checked at run time

    def __str__(self) -> str:
        return self.value

    @property
    def is_numeric(self) -> bool:
        return self in (Type.INT, Type.REAL)


NUMERIC = frozenset({Type.INT, Type.REAL})


def compatible(actual: Type, wanted: Type) -> bool:
    """Can a value of type `actual` be used where `wanted` is expected (no implicit conversion beyond int→real)?"""
    if actual in (Type.ANY, Type.NULL) or wanted is Type.ANY:
        return True
    if actual is wanted:
        return True
    if wanted is Type.REAL and actual is Type.INT:
        return True
    if actual is Type.DYNAMIC:  # a path into JSON may hold anything
        return True
    return False


def unify(a: Type, b: Type) -> Type:
    """The type of a value that is either `a` or `b` (iif branches, coalesce arguments)."""
    if a is b:
        return a
    if a is Type.NULL:
        return b
    if b is Type.NULL:
        return a
    if {a, b} == {Type.INT, Type.REAL}:
        return Type.REAL
    return Type.ANY


def parse_type(name: str) -> Type | None:
    aliases = {
        "long": Type.INT,
        "double": Type.REAL,
        "float": Type.REAL,
        "boolean": Type.BOOL,
        "number": Type.REAL,
        "object": Type.DYNAMIC,
        "array": Type.DYNAMIC,
        "json": Type.DYNAMIC,
        "time": Type.DATETIME,
    }
    try:
        return Type(name)
    except ValueError:
        return aliases.get(name)
