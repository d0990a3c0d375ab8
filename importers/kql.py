"""KQL (the subset Sentinel rules over one table use) → siemforge's pipeline language, exactly or not at all.

grammars/kql.lark parses the query with positions; `translate` walks the tree and writes pipeline stages, reading the
table's columns back to the source's canonical fields through the Sentinel binding (compiler/bindings.py, read
backwards). Anything the IR cannot say the same way raises `Refusal` with the construct and its position in the
KQL text (the caller maps it into the input file). The meaning of each mapping is in docs/semantics.md, decisions
50-54.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from importlib import resources

import lark
from lark import Token, Tree

from siemforge.compiler.bindings import Binding, builtin_bindings, row_filter


class Refusal(Exception):
    """A construct the import cannot carry over exactly: what it is, and where (1-based, in the KQL text)."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None, key: str | None = None,
                 in_file: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column
        self.key = key  # the rule's key the refusal is about (its position is that key's), when not in the KQL
        self.in_file = in_file  # line/column are already the input file's


@cache
def _parser() -> lark.Lark:
    grammar = resources.files("siemforge.grammars").joinpath("kql.lark").read_text(encoding="utf-8")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> Tree[Token]:
    try:
        return _parser().parse(text)
    except lark.UnexpectedInput as exc:
        near = ""
        pos = _offset(text, exc.line, exc.column)
        inside = _open_call(text, pos)
        op = list(re.finditer(r"\|\s*([A-Za-z][\w-]*)", text[:pos]))
        if op and inside and text.rfind("(", 0, pos) > op[-1].end() and op[-1].group(1) in UNSUPPORTED:
            raise Refusal(f"operator {op[-1].group(1)}", *_line_column(text, op[-1].start(1))) from None
        if inside == "externaldata":  # before the syntax: say why no grammar would help
            at = text.rfind("externaldata", 0, pos)
            raise Refusal("externaldata(…): a table read from a URL when the query runs; a rule reads logs and the "
                          "lookup tables shipped with it (a lookup is the closest: download the table into one)",
                          *_line_column(text, at)) from None
        if inside and re.fullmatch(r"!?has(_any|_all)(_cs)?", inside):  # `x has_any ("a", "b")`, a list
            raise Refusal(_term_refusal(inside), *_line_column(text, text.rfind(inside, 0, pos))) from None
        if inside:
            near = f" inside {inside}(…)"
        elif isinstance(exc, lark.UnexpectedToken):
            near = f" near {exc.token!s}"[:60]
        elif isinstance(exc, lark.UnexpectedCharacters):
            at = exc.pos_in_stream or 0
            near = f" near {text[at:at + 20]!r}"
        raise Refusal(f"KQL syntax siemforge does not read{near}", exc.line, exc.column) from None


UNSUPPORTED = {"union", "lookup", "mv-apply", "make-series", "evaluate", "invoke",
               "parse", "top", "top-nested", "scan", "partition", "fork", "facet"}


def _line_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + column - 1


def _open_call(text: str, pos: int) -> str | None:
    """The function whose parentheses are still open at `pos` (materialize, externaldata), to name it."""
    depth = 0
    for i in range(min(pos, len(text)) - 1, -1, -1):
        c = text[i]
        if c == ")":
            depth += 1
        elif c == "(":
            if depth == 0:
                m = re.search(r"([A-Za-z_][\w-]*)\s*$", text[:i])
                return m.group(1) if m else "a parenthesised tabular expression"
            depth -= 1
    return None


# KQL scalar functions with the same meaning in the pipeline language (compiler/functions.py), by name
SAME_FUNCTIONS = {
    "isempty", "isnotempty", "isnull", "isnotnull", "tostring", "toint", "todouble", "tobool", "todatetime",
    "tolower", "toupper", "strlen", "substring", "strcat", "replace_string", "extract", "array_length",
    "now", "ago", "hourofday", "dayofweek", "datetime_diff", "coalesce", "iif", "iff", "case", "bin",
    "indexof", "indexof_regex",
}
RENAMED_FUNCTIONS = {"toreal": "todouble"}
# KQL aggregation → ours; the name KQL gives an unnamed one is `<fn>_<column>` (count_ for count())
AGGREGATIONS = {"count": "count", "dcount": "dcount", "min": "min", "max": "max", "sum": "sum", "avg": "avg",
                "stdev": "stdev", "stdevp": "stdevp", "make_set": "values"}
JOIN_KINDS = {"inner", "innerunique", "leftouter", "leftsemi", "leftanti"}
STR_OPS = {"contains", "!contains", "contains_cs", "!contains_cs", "startswith", "!startswith", "startswith_cs",
           "!startswith_cs", "endswith", "!endswith", "endswith_cs", "!endswith_cs"}


@dataclass(slots=True)
class Value:
    """A translated expression: its text, and the canonical path when it names a place in the source's record
    (so that `.member` and `[i]` extend the path), or `json_text` when it is a JSON-text column read bare."""

    text: str
    path: str | None = None
    json_text: bool = False
    literal_list: tuple[str, ...] | None = None  # a `dynamic([...])` list, for `in`


@dataclass(slots=True)
class Translation:
    stages: list[str]
    lookback: timedelta | None  # from a leading `TimeGenerated >= ago(X)`
    columns: list[str] | None  # the output columns when the pipeline ends closed (project/summarize), else None
    defined: set[str]  # columns the pipeline defined (for entities/details on an open pipeline)
    source: str  # the siemforge source of the table
    names: dict[str, str]  # a column's KQL name -> its name in the rule, where they differ (decision 53)
    table_columns: dict[str, str]  # the table's column -> its canonical path (the binding read backwards)
    stage_lines: list[int] = field(default_factory=list)  # the KQL line of each stage's operator

    def body(self, kql: str, extra: Sequence[str] = ()) -> str:
        """The pipeline text, one stage per line, with the KQL's own `//` comments above the stage they preceded."""
        notes = comments(kql)
        out: list[str] = []
        lines = [*self.stage_lines, *([10**9] * len(extra))]
        for i, (stage, line) in enumerate(zip([*self.stages, *extra], lines)):
            while notes and notes[0][0] < line:
                out.append(notes.pop(0)[1])
            out.append(("| " if i else "") + stage)
        out += [note for _, note in notes]  # after the last stage
        return "\n".join(out)


@dataclass(slots=True)
class _JoinText:
    """A translated join stage, rendered again when a later `project-away` drops some of the columns it adds."""

    text: str
    outputs: dict[str, str]  # the KQL name of each column the join adds -> its name in the rule (the right's)
    dropped: set[str] = field(default_factory=set)

    def render(self) -> str:
        if not self.dropped:
            return self.text
        kept = [ours for kql, ours in self.outputs.items() if kql not in self.dropped]
        return self.text + "\n    output " + (", ".join(kept) if kept else "()")


@dataclass(slots=True)
class _Scope:
    closed: list[str] | None = None  # after project/summarize: exactly these columns
    defined: set[str] = field(default_factory=set)  # columns defined on open rows


def sentinel_binding(table: str) -> Binding:
    """The one Sentinel binding of a source whose rows are every row of `table`."""
    found = [b for b in builtin_bindings().values()
             if b.target == "sentinel" and b.table == table and not row_filter(b)]
    if len(found) != 1:
        raise Refusal(f"table {table} is not the table of one siemforge source" if not found else
                      f"table {table} holds several siemforge sources ({', '.join(sorted(b.source for b in found))})")
    return found[0]


def _reverse_columns(b: Binding) -> dict[str, str]:
    rev: dict[str, str] = {b.time_column: "_time"}
    for canonical, column in b.columns.items():
        rev.setdefault(column, canonical)
    return rev


def _pos(node: Tree[Token] | Token) -> tuple[int | None, int | None]:
    if isinstance(node, Token):
        return node.line, node.column
    meta = node.meta
    return (meta.line, meta.column) if not meta.empty else (None, None)


def _term_refusal(op: str) -> str:
    """Why a `has` operator is not imported: none of its forms is (the pipeline language has no term match)."""
    return (f"`{op}` (a term match) is not imported: Kusto matches whole terms, a value being broken into maximal runs "
            "of alphanumeric characters (learn.microsoft.com/kusto/query/datatypes-string-operators), so `contains` "
            "would match more (`EventName has \"Run\"` is false on RunInstances), and its docs do not say what a "
            "right side holding other characters matches (`has \"*\"`, `has \"iam:*\"`); write the condition with "
            "`==`, `contains`, `startswith` or `matches regex` instead")


def _refuse(reason: str, node: Tree[Token] | Token) -> Refusal:
    return Refusal(reason, *_pos(node))


DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d)$")


def parse_duration(text: str) -> timedelta | None:
    m = DURATION_RE.match(text.strip())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return {"ms": timedelta(milliseconds=n), "s": timedelta(seconds=n), "m": timedelta(minutes=n),
            "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]


class Translator:
    def __init__(self) -> None:
        self.lets: dict[str, Tree[Token]] = {}
        self.scalars: dict[str, Value] = {}
        self.binding: Binding | None = None
        self.rev: dict[str, str] = {}
        self.lookback: timedelta | None = None
        self.names: dict[str, str] = {}  # KQL column name -> the rule's name for it (decision 53)
        self.stage_lines: list[int] = []
        self.roots: set[str] = set()  # the source's top-level field names
        self.keep_windows = False  # a query with a join keeps its time windows as filters (decision 73)
        self.last_join: _JoinText | None = None
        self.joined: tuple[list[str], int, _JoinText] | None = None  # the last join stage: its list, place, text

    # ------------------------------------------------------------------ statements
    def translate(self, tree: Tree[Token]) -> Translation:
        *lets, query = tree.children
        for let in lets:
            assert isinstance(let, Tree)
            name_tok, body = let.children
            assert isinstance(body, Tree)
            head, ops = body.children[0], body.children[1:]
            if not ops and not self._is_table_name(head):
                self.scalars[str(name_tok)] = self.expr(head, _Scope())  # a constant: substituted where used
            else:
                self.lets[str(name_tok)] = body
        assert isinstance(query, Tree)
        self.keep_windows = any(t.data == "join" for t in tree.iter_subtrees())
        scope = _Scope()
        stages = self.pipeline(query, scope, used=set())
        assert self.binding is not None
        return Translation(stages, self.lookback, scope.closed, scope.defined, self.binding.source,
                           {k: v for k, v in self.names.items() if k != v}, self.rev, self.stage_lines)

    def _is_table_name(self, node: Tree[Token] | Token) -> bool:
        return isinstance(node, Tree) and node.data == "name" and str(node.children[0]) not in self.scalars

    def pipeline(self, query: Tree[Token], scope: _Scope, used: set[str]) -> list[str]:
        head, *ops = query.children
        assert isinstance(head, Tree)
        if head.data != "name":
            raise _refuse("a query that does not start from a table", head)
        name = str(head.children[0])
        stages: list[str] = []
        if name in self.lets:  # a tabular `let` used as the head: its operators come first
            if name in used:
                raise _refuse(f"tabular let {name} used more than once", head)
            used.add(name)
            stages = self.pipeline(self.lets[name], scope, used)
        else:
            if self.binding is not None:
                raise _refuse(f"a second table reference ({name})", head)
            try:
                self.binding = sentinel_binding(name)
            except Refusal as exc:
                raise _refuse(exc.reason, head) from None
            self.rev = _reverse_columns(self.binding)
            self.roots = {p.split(".")[0] for p in [*self.binding.columns, *self.binding.json_columns, "_time"]}
        first = not stages
        for op in ops:
            assert isinstance(op, Tree)
            if first and op.data == "where" and not self.keep_windows and self._time_window(op):
                continue
            first = False
            stage = self.op(op, scope)
            if stage is not None:
                stages.append(stage)
                self.stage_lines.append(op.meta.line if not op.meta.empty else 10**9)
                if op.data == "join":
                    assert self.last_join is not None
                    self.joined = (stages, len(stages) - 1, self.last_join)
        return stages

    def _time_window(self, op: Tree[Token]) -> bool:
        """`where TimeGenerated >= ago(X)` right after the table: the rule's lookback (decision 52)."""
        cond = op.children[0]
        if not (isinstance(cond, Tree) and cond.data == "compare" and str(cond.children[1]) in (">=", ">")):
            return False
        left, _, right = cond.children
        if not (isinstance(left, Tree) and left.data == "name" and self.binding is not None
                and str(left.children[0]) == self.binding.time_column):
            return False
        if not (isinstance(right, Tree) and right.data == "call" and str(right.children[0]) == "ago"
                and len(right.children) == 2):
            return False
        arg = right.children[1]
        v = self.expr(arg, _Scope()) if isinstance(arg, Tree) else None
        d = parse_duration(v.text) if v is not None else None
        if d is None:
            return False
        self.lookback = d if self.lookback is None else min(self.lookback, d)
        return True

    # ------------------------------------------------------------------ operators
    def op(self, op: Tree[Token], scope: _Scope) -> str | None:
        match op.data:
            case "where":
                return "where " + self.predicate(op.children[0], scope)
            case "extend":
                items = [self.assignment(a, scope, "extend") for a in _trees(op.children)]
                ours = [self._name_for(n, scope) for n, _ in items]
                for name, _ in items:
                    self._define(scope, name)
                return "extend " + _join([f"{o} = {t}" for o, (_, t) in zip(ours, items)])
            case "project":
                items = [self.assignment(a, scope, "project") for a in _trees(op.children)]
                ours = [self._name_for(n, scope) for n, _ in items]
                scope.closed = [n for n, _ in items]
                return "project " + _join([t if t == o else f"{o} = {t}" for o, (_, t) in zip(ours, items)])
            case "project_away":
                if scope.closed is None:
                    self.drop_joined([str(t) for t in op.children], op, scope)
                    return None
                gone = [str(t) for t in op.children]
                for g, tok in zip(gone, op.children):
                    if g not in scope.closed:
                        raise _refuse(f"project-away of {g}, not a column here", tok)
                scope.closed = [c for c in scope.closed if c not in gone]
                return "project " + _join([self.names.get(c, c) for c in scope.closed])
            case "project_rename":
                parts = []
                for item in op.children:
                    assert isinstance(item, Tree)
                    new, old = (str(t) for t in item.children)
                    parts.append(f"{self._name_for(new, scope)} = {self.column(old, item, scope).text}")
                    if scope.closed is not None:
                        scope.closed = [new if c == old else c for c in scope.closed]
                    else:
                        scope.defined.discard(old)
                        scope.defined.add(new)
                return "rename " + _join(parts)
            case "summarize" | "summarize_by_only" | "distinct":
                return self.summarize(op, scope)
            case "sort":
                keys = []
                for key in op.children:
                    assert isinstance(key, Tree)
                    expr, *mods = key.children
                    direction = "desc"  # KQL sorts descending by default
                    for m in mods:
                        if isinstance(m, Token) and m.type == "SORT_DIR":
                            direction = str(m)
                        else:
                            raise _refuse(f"sort with `{m}`", m)
                    keys.append(f"{self.expr(expr, scope).text} {direction}")
                return "sort by " + ", ".join(keys)
            case "take":
                return f"take {op.children[0]}"
            case "mv_expand":
                return self.mv_expand(op, scope)
            case "join":
                return self.join(op, scope)
            case "count_op":
                scope.closed = ["Count"]
                return "summarize Count = count()"
            case "unsupported_op":
                kw = op.children[0]
                raise _refuse(f"operator {kw}", kw)
        raise _refuse(f"operator {op.data}", op)

    def drop_joined(self, gone: list[str], op: Tree[Token], scope: _Scope) -> None:
        """`project-away` on the table's rows of columns the last join added, none read since: that join's `output`
        leaves them out (decision 73). Any other project-away there is refused: the table's columns are not all
        known, so no `project` can say what is left."""
        found = self.joined
        if found is None or not all(g in found[2].outputs for g in gone) or any(
                re.search(rf"\b{re.escape(found[2].outputs[g])}\b", st) for st in found[0][found[1] + 1:]
                for g in gone):
            raise _refuse("project-away on the table's rows (its columns are not all known)", op)
        stages, at, spec = found
        spec.dropped.update(gone)
        stages[at] = spec.render()
        for g in gone:
            scope.defined.discard(g)

    def join(self, op: Tree[Token], scope: _Scope) -> str:
        """`join [kind=K] (right) on a, $left.x == $right.y` → our join stage, its right side a pipeline of its own
        (docs/semantics.md decision 73). A join without `kind=` is innerunique, as in KQL. The right side's columns
        are renamed there to the names Kusto gives them on the joined rows (a name the left has: suffixed 1, 2, …;
        on the table's rows a table column's name also gets decision 53's `_`)."""
        assert self.binding is not None
        kind = "innerunique"
        parts = list(op.children)
        first = parts[0]
        if isinstance(first, Tree) and first.data == "join_kind":
            parts.pop(0)
            tok = first.children[0]
            kind = str(tok)
            if kind not in JOIN_KINDS:
                raise _refuse(f"join kind={kind}", tok)
        right_node = parts.pop(0)
        assert isinstance(right_node, Tree)
        inner = right_node.children[0]
        if isinstance(inner, Token):  # `join T on …`: a let or a table by name
            query: Tree[Token] = Tree("query", [Tree("name", [inner], right_node.meta)], right_node.meta)
        else:
            query = inner
        sub = Translator()
        sub.lets, sub.scalars, sub.keep_windows = self.lets, self.scalars, True
        rscope = _Scope()
        rstages = sub.pipeline(query, rscope, used=set())
        assert sub.binding is not None
        semi = kind in ("leftsemi", "leftanti")
        if rscope.closed is None and not semi:
            raise _refuse(f"a {kind} join whose right side keeps the table's columns (end it with project, "
                          "summarize or distinct)", right_node)
        open_left = scope.closed is None
        left_names = list(scope.closed) if scope.closed is not None else [*self.binding.schema, *scope.defined]
        renames: list[tuple[str, str]] = []  # (our name on the joined rows, the right side's name)
        right_ours: dict[str, str] = {}  # the right side's KQL column -> its name in our right pipeline, renamed
        added: list[str] = []
        if not semi:
            assert rscope.closed is not None
            taken = set(left_names)
            for c in rscope.closed:
                out, n = c, 0
                while out in taken:
                    n += 1
                    out = f"{c}{n}"
                taken.add(out)
                ours = out + "_" if open_left and (out in self.binding.schema or out in self.roots) else out
                if (scope.closed is not None and ours in [self.names.get(x, x) for x in scope.closed]) or \
                        ours in self.roots and not open_left:
                    raise _refuse(f"the joined column {out} would take the name of a left column", right_node)
                had = sub.names.get(c, c)
                if ours != had:
                    renames.append((ours, had))
                right_ours[c] = ours
                self.names[out] = ours
                added.append(out)
        keys: list[str] = []
        for cond in parts:
            assert isinstance(cond, Tree)
            if cond.data == "join_same":
                left_col = right_col = str(cond.children[0])
            else:
                left_col, right_col = str(cond.children[1]), str(cond.children[3])
            lv = self.column(left_col, cond, scope)
            if lv.json_text or not _is_path_text(lv.text) or "[" in lv.text:
                raise _refuse(f"join key {left_col}: not a field of the left rows", cond)
            if rscope.closed is not None:
                if right_col not in rscope.closed:
                    raise _refuse(f"join key {right_col}, not a column of the right side", cond)
                rtext = right_ours.get(right_col, sub.names.get(right_col, right_col))
            else:
                rv = sub.column(right_col, cond, rscope)
                if rv.json_text or not re.fullmatch(r"[A-Za-z_]\w*", rv.text):
                    raise _refuse(f"join key {right_col}: a nested field of the table's rows", cond)
                rtext = rv.text
            keys.append(lv.text if lv.text == rtext else f"$left.{lv.text} == $right.{rtext}")
        if renames:
            rstages.append("rename " + _join([f"{new} = {old}" for new, old in renames]))
        if sub.lookback is not None:  # not consumed: keep_windows
            raise AssertionError("a join's right side keeps its time window")
        body = "".join("\n    | " + st.replace("\n", "\n    ") for st in rstages)
        for out in added:
            self._define(scope, out)
        spec = _JoinText(f"join kind={kind} matchempty=true ({sub.binding.source}{body})\n    on {', '.join(keys)}",
                         {out: self.names[out] for out in added})
        self.last_join = spec
        return spec.render()

    def mv_expand(self, op: Tree[Token], scope: _Scope) -> str:
        """`mv-expand [Name =] expr [to typeof(T)]`, only its plain form (no kind=, with_itemindex=, limit): the
        Expand stage (docs/semantics.md decision 62)."""
        parts = list(op.children)
        legacy = str(parts.pop(0)) == "mvexpand"
        limit_tok = parts.pop() if isinstance(parts[-1], Token) and parts[-1].type == "INT" else None
        name_tok = parts.pop(0) if isinstance(parts[0], Token) else None
        e = parts.pop(0)
        type_tok = parts.pop(0) if parts else None
        # the legacy `mvexpand` keeps at most 128 elements unless told (docs/semantics.md decision 77)
        limit = int(str(limit_tok)) if limit_tok is not None else 128 if legacy else None
        v = self.expr(e, scope)
        if v.literal_list is not None:
            raise _refuse("mv-expand of a dynamic list", e)
        if v.json_text:
            raise _refuse("mv-expand of a JSON-text column (parse_json it)", e)
        if name_tok is not None:
            name = str(name_tok)
        else:  # `mv-expand Col` and `mv-expand todynamic(Col)` name the elements after the column
            inner = e
            parsed = isinstance(inner, Tree) and inner.data == "call" and len(inner.children) == 2 \
                and str(inner.children[0]) in ("parse_json", "todynamic")
            if parsed:
                assert isinstance(inner, Tree)
                inner = inner.children[1]
            if not (isinstance(inner, Tree) and inner.data == "name"):
                raise _refuse("mv-expand of an unnamed expression", e)
            name = str(inner.children[0])
        ours = self._name_for(name, scope)
        self._define(scope, name)
        typed = f" to typeof({type_tok})" if type_tok is not None else ""
        limited = f" limit {limit}" if limit is not None else ""
        return f"mv-expand {ours} = {v.text}{typed}{limited}"

    def summarize(self, op: Tree[Token], scope: _Scope) -> str:
        aggs: list[Tree[Token]] = []
        by: list[Tree[Token]] = []
        if op.data == "distinct":
            by = [c for c in op.children if isinstance(c, Tree)]
        else:
            for c in op.children:
                assert isinstance(c, Tree)
                if c.data == "by_clause":
                    by = [b for b in c.children if isinstance(b, Tree)]
                else:
                    aggs.append(c)
        by_items = [self.assignment(b, scope, "by") for b in by]
        agg_items = [self.aggregation(a, scope, [n for n, _ in by_items]) for a in aggs]
        scope.closed = [n for n, _ in by_items] + [n for names, _ in agg_items for n in names]
        for n in scope.closed:  # summarize outputs may take a table column's name (its rows replace the table's)
            self.names[n] = n
        text = "summarize"
        if agg_items:
            text += " " + _join([t for _, t in agg_items])
        if by_items:
            text += ("\n    by " if agg_items else " by ") + _join(
                [t if t == n else f"{n} = {t}" for n, t in by_items], indent="       ")
        return text

    def aggregation(self, item: Tree[Token], scope: _Scope, by: list[str]) -> tuple[list[str], str]:
        """(the columns it outputs, its text `name = fn(…)`)."""
        if item.data == "named":
            name_tok, call = item.children
            name: str | None = str(name_tok)
        else:
            name, call = None, item.children[0]
        if not (isinstance(call, Tree) and call.data == "call"):
            raise _refuse("an aggregation that is not a single function call", item)
        fn = str(call.children[0])
        args = call.children[1:]
        if fn in ("arg_max", "arg_min"):
            return self.arg_aggregation(fn, name, call, scope, by)
        if fn not in AGGREGATIONS:
            raise _refuse(f"aggregation {fn}()", call)
        limit = ""
        if fn == "make_set" and len(args) == 2:  # make_set(x, N): at most N of the values (decision 95)
            n = args[1]
            if not (isinstance(n, Tree) and n.data == "int" and int(str(n.children[0])) >= 1):
                raise _refuse("make_set() with a size limit that is not a whole number of at least 1", call)
            limit = f", {int(str(n.children[0]))}"
            args = args[:1]
        if fn == "count" and args:
            raise _refuse("count() with an argument", call)
        if len(args) > 1 or any(isinstance(a, Tree) and a.data == "star" for a in args):
            raise _refuse(f"{fn}() with these arguments", call)
        arg = self.expr(args[0], scope) if args else None
        if arg is not None and arg.json_text:
            raise _refuse("a JSON-text column aggregated as text", call)
        if fn == "make_set" and arg is not None and arg.path is not None \
                and self.binding is not None and arg.path.split(".")[0] in self.binding.json_columns:
            # make_set takes the elements of an array, where the IR's values() keeps it whole (decision 87)
            raise _refuse("make_set() of a JSON value, which takes the elements of an array where it holds one", call)
        if name is None:
            if args and not (isinstance(args[0], Tree) and args[0].data == "name"):
                raise _refuse(f"an unnamed {fn}() of an expression", call)
            name = f"{fn}_" + (str(args[0].children[0]) if args and isinstance(args[0], Tree) else "")
        return [name], f"{name} = {AGGREGATIONS[fn]}({arg.text if arg else ''}{limit})"

    def arg_aggregation(self, fn: str, name: str | None, call: Tree[Token], scope: _Scope,
                        by: list[str]) -> tuple[list[str], str]:
        """`arg_max(Key, *)` / `arg_max(Key, A, B)`: the key's column and the returned ones, read from one row
        (docs/semantics.md decision 78). `*` is every column here: on the table's rows, each table column that holds
        a source field (a JSON-text column as its text, as decision 51 groups it) and each column the query defined;
        the by keys are output once, as keys."""
        key_node, *rest = call.children[1:]
        if not rest:
            raise _refuse(f"{fn}() with no column to return", call)
        if name is None:
            if not (isinstance(key_node, Tree) and key_node.data == "name"):
                raise _refuse(f"an unnamed {fn}() of an expression", call)
            name = str(key_node.children[0])
        key = self.expr(key_node, scope)
        if key.json_text or key.literal_list is not None:
            raise _refuse(f"{fn}() of a JSON value", key_node)
        returned: list[tuple[str, str]] = []
        for r in rest:
            if isinstance(r, Tree) and r.data == "star":
                for col in self._all_columns(scope):
                    if col not in by and col != name and col not in (n for n, _ in returned):
                        v = self.column(col, r, scope)
                        returned.append((col, f"tostring({v.text})" if v.json_text else v.text))
                continue
            if not (isinstance(r, Tree) and r.data == "name"):
                raise _refuse(f"an unnamed expression returned by {fn}()", r)
            col = str(r.children[0])
            v = self.column(col, r, scope)
            if col != name and col not in (n for n, _ in returned):
                returned.append((col, f"tostring({v.text})" if v.json_text else v.text))
        parts = [t if t == n else f"{n} = {t}" for n, t in returned]
        return [name, *(n for n, _ in returned)], f"{name} = {fn}({key.text}, " + _join(parts, "        ") + ")"

    def _all_columns(self, scope: _Scope) -> list[str]:
        """Every column of the rows here, by its KQL name (for `*`)."""
        if scope.closed is not None:
            return list(scope.closed)
        assert self.binding is not None
        table = [c for c in self.binding.schema if c in self.rev or c in self.binding.json_columns.values()]
        return [*table, *sorted(scope.defined)]

    def assignment(self, item: Tree[Token], scope: _Scope, where: str) -> tuple[str, str]:
        """(output name, expression text); a bare table column keeps its KQL name (`EventName = eventName`)."""
        if item.data == "named":
            name_tok, e = item.children
            name, v = str(name_tok), self.expr(e, scope)
        elif isinstance(item.children[0], Tree) and item.children[0].data == "name":
            e = item.children[0]
            name = str(e.children[0])
            v = self.column(name, e, scope)
        else:
            raise _refuse(f"an unnamed expression in {where}", item)
        if v.json_text and where == "by":  # grouped as KQL groups it, by its JSON text (decision 51)
            return name, f"tostring({v.text})"
        return name, v.text

    def _name_for(self, name: str, scope: _Scope) -> str:
        """The rule's name for a column the KQL assigns: on the table's rows a table column's name would hide the
        column that holds a source field, so it gets a trailing `_` (decision 53)."""
        assert self.binding is not None
        existing = scope.closed if scope.closed is not None else scope.defined
        if name in existing:  # replaced in place, under the name it already has
            return self.names.get(name, name)
        # on the table's rows a name must hide neither a table column nor a source field a later stage reads
        hides = name in self.binding.schema or name in self.roots
        ours = name + "_" if scope.closed is None and hides else name
        self.names[name] = ours
        return ours

    def _define(self, scope: _Scope, name: str) -> None:
        if scope.closed is not None:
            if name not in scope.closed:
                scope.closed.append(name)
        else:
            scope.defined.add(name)

    # ------------------------------------------------------------------ expressions
    def predicate(self, node: Tree[Token] | Token, scope: _Scope) -> str:
        v = self.expr(node, scope)
        if v.json_text:
            raise _refuse("a JSON-text column used as a condition", node)
        return v.text

    def column(self, name: str, node: Tree[Token] | Token, scope: _Scope) -> Value:
        if scope.closed is not None:
            if name in scope.closed:
                return Value(self.names.get(name, name))
            raise _refuse(f"column {name}, not a column here", node)
        if name in scope.defined:
            return Value(self.names.get(name, name))
        if name in self.scalars:
            return self.scalars[name]
        assert self.binding is not None
        canonical = self.rev.get(name)
        if canonical is not None:
            return Value(canonical, path=canonical)
        for field_name, col in self.binding.json_columns.items():
            if col == name:
                return Value(field_name, path=field_name, json_text=True)
        raise _refuse(f"column {name} of {self.binding.table} has no field in source {self.binding.source}", node)

    def expr(self, node: Tree[Token] | Token, scope: _Scope) -> Value:
        if isinstance(node, Token):
            raise _refuse(f"token {node}", node)
        d, ch = node.data, node.children
        match d:
            case "name":
                return self.column(str(ch[0]), node, scope)
            case "string" | "verbatim":
                text = str(ch[0])
                if text[:1] in "hH":
                    text = text[1:]  # an obfuscated string literal (h"…") is the same value
                return Value(text)
            case "int" | "float" | "duration":
                return Value(str(ch[0]))
            case "datetime":
                return Value(str(ch[0]))
            case "true" | "false":
                return Value(d)
            case "paren":
                return Value("(" + self._plain(ch[0], scope, node) + ")")
            case "or_" | "and_":
                op = "or" if d == "or_" else "and"
                return Value(f"{self._plain(ch[0], scope, node)} {op} {self._plain(ch[1], scope, node)}")
            case "compare":
                left, op_tok, right = ch
                op = "!=" if str(op_tok) == "<>" else str(op_tok)
                if op in ("==", "!=", "=~", "!~") and (_is_empty_string(right) or _is_empty_string(left)):
                    # a KQL string is "" where the value is missing: `x == ""` is isempty(x) (decision 79)
                    other = left if _is_empty_string(right) else right
                    fn = "isempty" if op in ("==", "=~") else "isnotempty"
                    return Value(f"{fn}({self._plain(other, scope, node)})")
                return Value(f"{self._plain(left, scope, node)} {op} {self._plain(right, scope, node)}")
            case "str_op":
                left, op_tok, right = ch
                op = str(op_tok)
                if op.startswith("matches"):
                    op = "matches regex"
                elif op not in STR_OPS:  # the has family (has, has_cs, hasprefix, hassuffix, has_any, has_all)
                    raise _refuse(_term_refusal(op), op_tok)
                lv = self.expr(left, scope)
                if lv.json_text and op.lstrip("!") == "contains" and _json_safe_word(right):
                    # the stored JSON text and any serialisation of its value hold the word alike (decision 79)
                    return Value(f"tostring({lv.text}) {op} {self._plain(right, scope, node)}")
                return Value(f"{self._plain(left, scope, node)} {op} {self._plain(right, scope, node)}")
            case "in_list":
                left, op_tok, lst = ch
                assert isinstance(lst, Tree)
                items: list[str] = []
                for e in lst.children:
                    v = self.expr(e, scope)
                    if v.literal_list is not None:
                        items.extend(v.literal_list)
                    elif v.json_text or v.path is not None and isinstance(e, Tree) and e.data == "name" and \
                            str(e.children[0]) in self.lets:
                        raise _refuse("`in` over a table", e)
                    else:
                        items.append(v.text)
                if not items:
                    raise _refuse("`in` with an empty list", lst)
                return Value(f"{self._plain(left, scope, node)} {op_tok} ({', '.join(items)})")
            case "between":
                return self.between(node, scope)
            case "add" | "sub" | "mul" | "div" | "mod":
                sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%"}[d]
                return Value(f"{self._plain(ch[0], scope, node)} {sym} {self._plain(ch[1], scope, node)}")
            case "neg":
                return Value("-" + self._plain(ch[0], scope, node))
            case "member" | "member_quoted":
                base = self.expr(ch[0], scope)
                member = str(ch[1])
                if d == "member_quoted":
                    inner = member[1:-1]
                    member = inner if inner.isidentifier() else None  # type: ignore[assignment]
                    if member is None:
                        raise _refuse("a quoted member name that is not a plain name", node)
                if base.json_text:
                    raise _refuse("a member of a JSON-text column read without parse_json", node)
                text = f"{_postfix_base(base.text, ch[0])}.{member}"
                return Value(text, path=text if base.path is not None else None)
            case "index":
                base = self.expr(ch[0], scope)
                idx = ch[1]
                assert isinstance(idx, Tree)
                if base.json_text:
                    raise _refuse("an index into a JSON-text column read without parse_json", node)
                if idx.data == "index_int":
                    sub = f"[{idx.children[0]}]"
                elif idx.data == "index_neg":
                    sub = f"[-{idx.children[0]}]"
                else:
                    key = str(idx.children[0])[1:-1]
                    sub = f".{key}" if key.isidentifier() else f"[{idx.children[0]}]"
                text = _postfix_base(base.text, ch[0]) + sub
                return Value(text, path=text if base.path is not None else None)
            case "dynamic_list":
                lits = [self.expr(c, scope).text for c in ch if isinstance(c, Tree)]
                return Value("(" + ", ".join(lits) + ")", literal_list=tuple(lits))
            case "call":
                return self.call(node, scope)
            case "star":
                raise _refuse("`*` argument", node)
        raise _refuse(f"KQL construct {d}", node)

    def between(self, node: Tree[Token], scope: _Scope) -> Value:
        """`x between (a .. b)` is `a <= x <= b`; `!between` its negation as KQL evaluates it: `x < a or x > b`, false
        when x is null, as the IR's comparisons are (docs/semantics.md decision 79)."""
        left, op_tok, lo, hi = node.children
        if isinstance(hi, Tree) and hi.data == "duration":  # `t between (start .. 1d)`: an offset from the start
            raise _refuse("between with a timespan upper bound (start .. length)", hi)
        x = self._plain(left, scope, node)
        a, b = self._plain(lo, scope, node), self._plain(hi, scope, node)
        if str(op_tok).startswith("!"):
            return Value(f"({x} < {a} or {x} > {b})")
        return Value(f"({x} >= {a} and {x} <= {b})")

    def _plain(self, node: Tree[Token] | Token, scope: _Scope, parent: Tree[Token]) -> str:
        v = self.expr(node, scope)
        if v.json_text:
            raise _refuse("a JSON-text column read as text (its spacing and key order are the producer's)", node)
        if v.literal_list is not None:
            raise _refuse("a dynamic list outside `in`", node)
        return v.text

    def call(self, node: Tree[Token], scope: _Scope) -> Value:
        fn_tok, *args = node.children
        fn = str(fn_tok)
        if fn in ("parse_json", "todynamic"):
            if len(args) != 1:
                raise _refuse(f"{fn}() with {len(args)} arguments", node)
            v = self.expr(args[0], scope)
            if v.json_text:  # parse_json(RequestParameters) is the canonical requestParameters (decision 51)
                return Value(v.text, path=v.path)
            if v.path is not None:  # already a place in the record: parsing it again changes nothing
                return v
            if v.literal_list is not None:
                raise _refuse(f"{fn}() of a dynamic list", node)
            # text read at run time: our parse_json (of a dynamic value the analyzer keeps it as it is, as KQL)
            return Value(f"parse_json({v.text})")
        if fn == "split":
            if len(args) == 3:
                raise _refuse("split() with an index (write split(s, d)[i])", node)
            if len(args) != 2:
                raise _refuse(f"split() with {len(args)} arguments", node)
            return Value(f"split({self._plain(args[0], scope, node)}, {self._plain(args[1], scope, node)})")
        if fn in ("pack", "bag_pack", "pack_dictionary"):
            return self.bag_pack(node, scope)
        if fn in AGGREGATIONS and fn not in ("min", "max"):
            raise _refuse(f"aggregation {fn}() outside summarize", node)
        name = RENAMED_FUNCTIONS.get(fn, fn)
        if name not in SAME_FUNCTIONS:
            raise _refuse(f"function {fn}()", fn_tok)
        if name in ("indexof", "indexof_regex") and len(args) != 2:
            raise _refuse(f"{fn}() with a start, length or occurrence", node)
        texts = [self._plain(a, scope, node) for a in args]
        if name in ("indexof", "indexof_regex"):  # KQL reads a missing string as "" (decision 76)
            texts = [t if _is_literal(a) or i == 1 and name == "indexof_regex" else f'coalesce({t}, "")'
                     for i, (a, t) in enumerate(zip(args, texts))]
        return Value(f"{name}({', '.join(texts)})")


    def bag_pack(self, node: Tree[Token], scope: _Scope) -> Value:
        """`pack(k, v, …)` / `bag_pack` / `pack_dictionary`: our bag_pack, whose string members are never null, as
        KQL's (docs/semantics.md decision 36); keys must be literal texts, each once."""
        fn_tok, *args = node.children
        if not args or len(args) % 2:
            raise _refuse(f"{fn_tok}() with an odd number of arguments", node)
        keys: set[str] = set()
        parts: list[str] = []
        for k, v in zip(args[::2], args[1::2], strict=True):
            if not (isinstance(k, Tree) and k.data in ("string", "verbatim")):
                raise _refuse(f"{fn_tok}() with a key that is not a literal text", k)
            key = self._plain(k, scope, node)
            if key in keys:
                raise _refuse(f"{fn_tok}() naming a key twice", k)
            keys.add(key)
            parts += [key, self._plain(v, scope, node)]
        return Value(f"bag_pack({', '.join(parts)})")


def comments(text: str) -> list[tuple[int, str]]:
    """The `//` comments of a KQL text outside its string literals, with their 1-based lines, in order."""
    out: list[tuple[int, str]] = []
    i, line, quote, verbatim = 0, 1, "", False
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        elif quote:
            if c == "\\" and not verbatim:
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote, verbatim = c, i > 0 and text[i - 1] == "@"
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            out.append((line, text[i:end].rstrip()))
            i = end
            continue
        i += 1
    return out


def _trees(children: list[Tree[Token] | Token]) -> list[Tree[Token]]:
    return [c for c in children if isinstance(c, Tree)]


def _is_literal(node: Tree[Token] | Token) -> bool:
    return isinstance(node, Tree) and node.data in ("string", "verbatim", "int", "float", "true", "false")


def _is_empty_string(node: Tree[Token] | Token) -> bool:
    return isinstance(node, Tree) and node.data in ("string", "verbatim") and \
        str(node.children[0]).lstrip("hH@") in ('""', "''")


def _json_safe_word(node: Tree[Token] | Token) -> bool:
    """A string literal that lies inside one JSON token and reads the same in every serialisation of the value
    (docs/semantics.md decisions 43 and 79): letters, digits and `_`, not starting with a letter a JSON escape or a
    number can end with — except a `u` the next four characters of which are not all hex digits (`\\uXXXX` needs
    four)."""
    if not (isinstance(node, Tree) and node.data in ("string", "verbatim")):
        return False
    text = str(node.children[0]).lstrip("hH@")
    word = text[1:-1]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word):
        return False
    if word[0] in "uU":
        return len(word) >= 5 and not re.fullmatch(r"[0-9A-Fa-f]{4}", word[1:5])
    return re.fullmatch(r"[g-mo-qsv-zG-MO-QSV-Z_]", word[0]) is not None


def _postfix_base(text: str, node: Tree[Token] | Token) -> str:
    """The text of a value `.member` or `[i]` follows: a name, call, path or parenthesised value as it is, anything
    else (an operator's operands) in parentheses."""
    if _is_path_text(text) or isinstance(node, Tree) and node.data in ("call", "paren", "member", "member_quoted",
                                                                       "index", "name"):
        return text
    return f"({text})"


def _is_path_text(text: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][\w]*((\.[A-Za-z_]\w*)|(\[-?\d+\]))*", text) is not None


def _join(parts: list[str], indent: str = "    ") -> str:
    one = ", ".join(parts)
    if len(one) <= 100:
        return one
    return (",\n" + indent).join(parts)


def fold_split_index(tree: Tree[Token]) -> None:
    """KQL's split(s, d, i)[0] is the i-th piece (or null): split(s, d)[i] (decision 51). Rewritten in place."""
    for node in tree.iter_subtrees():
        if node.data != "index":
            continue
        base, idx = node.children
        if (isinstance(base, Tree) and base.data == "call" and str(base.children[0]) == "split"
                and len(base.children) == 4 and isinstance(idx, Tree) and idx.data == "index_int"
                and str(idx.children[0]) == "0"):
            which = base.children[3]
            if isinstance(which, Tree) and which.data == "int":
                node.children = [Tree("call", base.children[:3], base.meta),
                                 Tree("index_int", [which.children[0]], idx.meta)]


def translate(text: str) -> Translation:
    tree = parse(text)
    fold_split_index(tree)
    return Translator().translate(tree)
