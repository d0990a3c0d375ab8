"""The AST of the pipeline language: what the user wrote, with positions, before names and types are resolved.

Positions are 1-based (line, column) inside the query text; compiler/yamlpos.TextOrigin maps them to the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Member:
    base: Node
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Every:
    """`a[]`: every element of the array a, read only by values() (`values(a[].b)`, docs/semantics.md 87)."""

    base: Node
    pos: Pos


@dataclass(frozen=True, slots=True)
class Subscript:
    base: Node
    key: int | str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Lit:
    kind: str  # string, int, real, bool, null, timespan, datetime
    value: object
    pos: Pos


@dataclass(frozen=True, slots=True)
class CallExpr:
    name: str
    args: tuple[Node, ...]
    pos: Pos
    name_pos: Pos


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # and, or, ==, !=, =~, !~, <, <=, >, >=, +, -, *, /, %, contains, !startswith_cs, like, matches regex, …
    left: Node
    right: Node
    pos: Pos
    op_pos: Pos


@dataclass(frozen=True, slots=True)
class InOp:
    op: str  # in, !in, in~, !in~
    subject: Node
    values: tuple[Node, ...]
    pos: Pos
    op_pos: Pos


@dataclass(frozen=True, slots=True)
class UnaryOp:
    op: str  # not, -
    operand: Node
    pos: Pos


Node = Union[Name, Member, Subscript, Every, Lit, CallExpr, BinOp, InOp, UnaryOp]


@dataclass(frozen=True, slots=True)
class Assign:
    name: str
    expr: Node
    pos: Pos  # of the name


@dataclass(frozen=True, slots=True)
class AggCall:
    name: str | None
    fn: str
    arg: Node | None
    pos: Pos
    fn_pos: Pos
    more: tuple[ByItem, ...] = ()  # arg_max(key, a, n = b): the further arguments, each optionally named


@dataclass(frozen=True, slots=True)
class ByItem:
    name: str | None
    expr: Node
    pos: Pos


@dataclass(frozen=True, slots=True)
class Where:
    predicate: Node
    pos: Pos


@dataclass(frozen=True, slots=True)
class ExtendStage:
    assignments: tuple[Assign, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Summarize:
    aggregations: tuple[AggCall, ...]
    by: tuple[ByItem, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Eventstats:
    aggregations: tuple[AggCall, ...]
    by: tuple[ByItem, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class LookupKey:
    row: Node  # a path
    table_column: str | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class LookupOut:
    column: str
    alias: str | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class LookupStage:
    table: str
    keys: tuple[LookupKey, ...]
    outputs: tuple[LookupOut, ...]
    pos: Pos
    table_pos: Pos


@dataclass(frozen=True, slots=True)
class RenameStage:
    renames: tuple[tuple[str, Node, Pos], ...]  # (new name, old path, position)
    pos: Pos


@dataclass(frozen=True, slots=True)
class ProjectItem:
    name: str | None
    expr: Node
    pos: Pos


@dataclass(frozen=True, slots=True)
class ProjectStage:
    items: tuple[ProjectItem, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class SortStage:
    keys: tuple[tuple[Node, bool], ...]  # (expression, descending)
    pos: Pos


@dataclass(frozen=True, slots=True)
class TakeStage:
    count: int
    pos: Pos


@dataclass(frozen=True, slots=True)
class ExpandStage:
    name: str | None  # `mv-expand Name = expr`; None for `mv-expand Col`
    expr: Node
    type_name: str | None  # `to typeof(T)`
    pos: Pos
    type_pos: Pos | None
    limit: int | None = None  # `limit N`: at most N elements of each value


@dataclass(frozen=True, slots=True)
class JoinStage:
    kind: str | None  # None: no `kind=` (innerunique)
    source: str
    stages: tuple[StageNode, ...]
    keys: tuple[tuple[Node, str, Pos], ...]  # (left path, right column, position)
    pos: Pos
    kind_pos: Pos | None
    source_pos: Pos
    empty_keys_match: bool = False
    outputs: tuple[LookupOut, ...] | None = None  # `output c [as a], …`: only these right columns join the row


StageNode = Union[
    ExpandStage, JoinStage,
    Where, ExtendStage, Summarize, Eventstats, LookupStage, RenameStage, ProjectStage, SortStage, TakeStage
]


@dataclass(frozen=True, slots=True)
class Program:
    stages: tuple[StageNode, ...]


def node_text(node: Node) -> str:
    """A node printed back as pipeline text (for messages and default column names)."""
    match node:
        case Name(name=n):
            return n
        case Member(base=b, name=n):
            return f"{node_text(b)}.{n}"
        case Subscript(base=b, key=k):
            return f"{node_text(b)}[{k!r}]" if isinstance(k, str) else f"{node_text(b)}[{k}]"
        case Every(base=b):
            return f"{node_text(b)}[]"
        case Lit(value=v):
            return repr(v)
        case CallExpr(name=n, args=a):
            return f"{n}({', '.join(node_text(x) for x in a)})"
        case BinOp(op=o, left=l, right=r):
            return f"{node_text(l)} {o} {node_text(r)}"
        case InOp(op=o, subject=s, values=vs):
            return f"{node_text(s)} {o} ({', '.join(node_text(v) for v in vs)})"
        case UnaryOp(op=o, operand=x):
            return f"{o} {node_text(x)}"
    return "?"
