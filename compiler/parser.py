"""Parse pipeline-language text (grammars/pipeline.lark) into the AST of compiler/syntax.py."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources

import lark
from lark import Token, Transformer, v_args

from . import syntax as s
from .diagnostics import CompileError, Diagnostic, Severity
from .limits import MAX_QUERY_DEPTH, MAX_TEXT_CHARS
from .yamlpos import TextOrigin

_TERMINAL_NAMES = {
    "NAME": "a name",
    "QUOTED_NAME": "a `quoted name`",
    "STRING": "a string",
    "VERBATIM": "a string",
    "INT": "a number",
    "FLOAT": "a number",
    "DURATION": "a duration (8h, 30m)",
    "DATETIME": "datetime(…)",
    "CMP_OP": "a comparison",
    "IN_OP": "in (…)",
    "STR_OP": "contains/startswith/…",
    "REGEX_OP": "matches regex",
    "PIPE": "|",
    "COMMA": ",",
    "LPAR": "(",
    "RPAR": ")",
    "RSQB": "]",
    "LSQB": "[",
    "DOT": ".",
    "EQUAL": "=",
    "SORT_DIR": "asc/desc",
    "MINUS": "-",
    "PLUS": "+",
    "STAR": "*",
    "SLASH": "/",
    "PERCENT": "%",
}


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    """The pipeline parser. Building its LALR tables takes a quarter of a second, most of a small command's start-up:
    they are kept in siemforge's cache folder (lark's own cache, checked against the grammar's hash), never in the
    shared temporary folder, and not at all when the cache is off (SIEMFORGE_NO_CACHE)."""
    from .cache import default_dir

    grammar = resources.files("siemforge.grammars").joinpath("pipeline.lark").read_text(encoding="utf-8")
    cache: str | bool = False
    folder = default_dir()
    if folder is not None:
        try:
            (folder / "lark").mkdir(parents=True, exist_ok=True)
            cache = str(folder / "lark" / f"pipeline-{lark.__version__}.pickle")
        except OSError:  # a read-only home: build the tables each time
            cache = False
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=False,
                     cache=cache)


def _pos_of(meta_or_tok: object) -> s.Pos:
    m = meta_or_tok
    return s.Pos(
        getattr(m, "line", 1) or 1,
        getattr(m, "column", 1) or 1,
        getattr(m, "end_line", 1) or 1,
        getattr(m, "end_column", 1) or 1,
    )


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0", "/": "/"}
_DURATION_UNITS = {
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "microsecond": timedelta(microseconds=1),
    "tick": timedelta(microseconds=0.1),
}


_MAX_INT = (1 << 63) - 1  # an integer literal: KQL's long, the widest integer any target has


class _LiteralError(Exception):
    def __init__(self, message: str, tok: Token) -> None:
        super().__init__(message)
        self.tok = tok


def _int_literal(tok: Token) -> int:
    text = str(tok).lstrip("-")
    if len(text) > 19 or int(text) > _MAX_INT:  # KQL's long; Python's int() refuses 4,300 digits itself
        raise _LiteralError(f"an integer literal has at most 64 bits (at most {_MAX_INT:,})", tok)
    return int(tok)


def unescape_string(tok: Token) -> str:
    body = str(tok)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            code = int(body[i + 2 : i + 6], 16)
            i += 6
            if 0xD800 <= code <= 0xDFFF:  # UTF-16 surrogates: a high one followed by a low one is one character
                low = body[i + 2 : i + 6] if body[i : i + 2] == "\\u" else ""
                if code <= 0xDBFF and re.fullmatch(r"[dD][c-fC-F][0-9a-fA-F]{2}", low):
                    code = 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                    i += 6
                else:  # no character, and no UTF-8 for it: every output (a file, the terminal) would fail on it
                    raise _LiteralError(f"a lone UTF-16 surrogate \\u{code:04x} is not a character", tok)
            out.append(chr(code))
        elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            raise _LiteralError(
                f'unknown escape \\{nxt} in string; write \\\\ for a backslash, or use a verbatim string @"…"', tok
            )
    return "".join(out)


def parse_duration(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|microsecond|tick|s|m|h|d)", text)
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    try:
        return (
            float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            if "." in m.group(1) or len(m.group(1)) > 30
            else int(m.group(1)) * _DURATION_UNITS[m.group(2)]
        )
    except OverflowError:
        raise ValueError(f"duration {text!r} is out of range (at most {timedelta.max.days:,} days)") from None


def parse_datetime_text(text: str) -> datetime:
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@v_args(meta=True)
class _ToAst(Transformer):  # type: ignore[type-arg]
    # ------------------------------------------------------------- stages
    def start(self, meta, stages):  # type: ignore[no-untyped-def]
        return s.Program(tuple(stages))

    def where(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Where(items[0], _pos_of(meta))

    def extend(self, meta, items):  # type: ignore[no-untyped-def]
        return s.ExtendStage(tuple(items), _pos_of(meta))

    def assignment(self, meta, items):  # type: ignore[no-untyped-def]
        name, pos = items[0]
        return s.Assign(name, items[1], pos)

    def colname(self, meta, items):  # type: ignore[no-untyped-def]
        tok = items[0]
        text = str(tok)
        if tok.type == "QUOTED_NAME":
            text = text[1:-1]
        return (text, _pos_of(tok))

    def summarize(self, meta, items):  # type: ignore[no-untyped-def]
        aggs = items[0]
        by = items[1] if len(items) > 1 else ()
        return s.Summarize(tuple(aggs), tuple(by), _pos_of(meta))

    def summarize_by_only(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Summarize((), tuple(items[0]), _pos_of(meta))

    def eventstats(self, meta, items):  # type: ignore[no-untyped-def]
        by = items[1] if len(items) > 1 else ()
        return s.Eventstats(tuple(items[0]), tuple(by), _pos_of(meta))

    def agg_list(self, meta, items):  # type: ignore[no-untyped-def]
        return list(items)

    def agg(self, meta, items):  # type: ignore[no-untyped-def]
        name = None
        if isinstance(items[0], tuple):
            name = items[0][0]
            items = items[1:]
        fn_tok = items[0]
        arg = items[1] if len(items) > 1 else None
        return s.AggCall(name, str(fn_tok), arg, _pos_of(meta), _pos_of(fn_tok), tuple(items[2:]))

    def agg_arg(self, meta, items):  # type: ignore[no-untyped-def]
        return self.by_item(meta, items)  # type: ignore[no-untyped-call]

    def by_clause(self, meta, items):  # type: ignore[no-untyped-def]
        return list(items)

    def by_item(self, meta, items):  # type: ignore[no-untyped-def]
        if len(items) == 2:
            return s.ByItem(items[0][0], items[1], _pos_of(meta))
        return s.ByItem(None, items[0], _pos_of(meta))

    def lookup(self, meta, items):  # type: ignore[no-untyped-def]
        table_tok = items[0]
        keys = tuple(i for i in items[1:] if isinstance(i, s.LookupKey))
        outs = tuple(i for i in items[1:] if isinstance(i, s.LookupOut))
        return s.LookupStage(str(table_tok), keys, outs, _pos_of(meta), _pos_of(table_tok))

    def lookup_key(self, meta, items):  # type: ignore[no-untyped-def]
        col = items[1][0] if len(items) > 1 else None
        return s.LookupKey(items[0], col, _pos_of(meta))

    def lookup_out(self, meta, items):  # type: ignore[no-untyped-def]
        alias = items[1][0] if len(items) > 1 else None
        return s.LookupOut(items[0][0], alias, _pos_of(meta))

    def rename(self, meta, items):  # type: ignore[no-untyped-def]
        return s.RenameStage(tuple(items), _pos_of(meta))

    def rename_item(self, meta, items):  # type: ignore[no-untyped-def]
        return (items[0][0], items[1], items[0][1])

    def project(self, meta, items):  # type: ignore[no-untyped-def]
        return s.ProjectStage(tuple(items), _pos_of(meta))

    def project_path(self, meta, items):  # type: ignore[no-untyped-def]
        return s.ProjectItem(None, items[0], _pos_of(meta))

    def project_assign(self, meta, items):  # type: ignore[no-untyped-def]
        return s.ProjectItem(items[0][0], items[1], _pos_of(meta))

    def sort(self, meta, items):  # type: ignore[no-untyped-def]
        return s.SortStage(tuple(items), _pos_of(meta))

    def sort_key(self, meta, items):  # type: ignore[no-untyped-def]
        desc = len(items) > 1 and str(items[1]) == "desc"
        return (items[0], desc)

    def take(self, meta, items):  # type: ignore[no-untyped-def]
        return s.TakeStage(_int_literal(items[0]), _pos_of(meta))

    def mv_expand(self, meta, items):  # type: ignore[no-untyped-def]
        name = None
        if isinstance(items[0], tuple):
            name = items[0][0]
            items = items[1:]
        limit = None
        if len(items) > 1 and isinstance(items[-1], Token) and items[-1].type == "INT":
            limit = int(items[-1])
            items = items[:-1]
        tok = items[1] if len(items) > 1 else None
        return s.ExpandStage(name, items[0], None if tok is None else str(tok), _pos_of(meta),
                             None if tok is None else _pos_of(tok), limit)

    def join(self, meta, items):  # type: ignore[no-untyped-def]
        kind = kind_pos = None
        if isinstance(items[0], Token):
            kind, kind_pos = str(items[0]), _pos_of(items[0])
            items = items[1:]
        empty = False
        if isinstance(items[0], bool):
            empty = items[0]
            items = items[1:]
        source, source_pos = items[0]
        outputs = None
        if items and isinstance(items[-1], list):
            outputs = tuple(items[-1])
            items = items[:-1]
        stages = tuple(x for x in items[1:] if not isinstance(x, tuple))
        keys = tuple(x for x in items[1:] if isinstance(x, tuple))
        return s.JoinStage(kind, source, stages, keys, _pos_of(meta), kind_pos, source_pos, empty, outputs)

    def join_output(self, meta, items):  # type: ignore[no-untyped-def]
        return list(items)

    def join_empty_true(self, meta, items):  # type: ignore[no-untyped-def]
        return True

    def join_empty_false(self, meta, items):  # type: ignore[no-untyped-def]
        return False

    def join_kind(self, meta, items):  # type: ignore[no-untyped-def]
        return items[0]

    def source_name(self, meta, items):  # type: ignore[no-untyped-def]
        return ".".join(str(t) for t in items), _pos_of(meta)

    def join_key_same(self, meta, items):  # type: ignore[no-untyped-def]
        name, pos = items[0]
        return s.Name(name, pos), name, _pos_of(meta)

    def join_key_pair(self, meta, items):  # type: ignore[no-untyped-def]
        if str(items[2]) != "==":
            raise _LiteralError(f"a join key pair is `$left.a == $right.b`, not `{items[2]}`", items[2])
        return items[1], items[4][0], _pos_of(meta)

    # ------------------------------------------------------------- paths
    def path(self, meta, items):  # type: ignore[no-untyped-def]
        name, pos = items[0]
        node: s.Node = s.Name(name, pos)
        for it in items[1:]:
            if isinstance(it, Token):
                node = s.Member(node, str(it), _pos_of(meta))
            else:
                node = s.Subscript(node, it, _pos_of(meta))
        return node

    # ------------------------------------------------------------- expressions
    def name(self, meta, items):  # type: ignore[no-untyped-def]
        text, pos = items[0]
        return s.Name(text, pos)

    def member(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Member(items[0], str(items[1]), _pos_of(meta))

    def index(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Subscript(items[0], items[1], _pos_of(meta))

    def every(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Every(items[0], _pos_of(meta))

    def index_int(self, meta, items):  # type: ignore[no-untyped-def]
        return int(items[0])

    def index_neg(self, meta, items):  # type: ignore[no-untyped-def]
        return -int(items[0])

    def index_str(self, meta, items):  # type: ignore[no-untyped-def]
        return unescape_string(items[0])

    def call(self, meta, items):  # type: ignore[no-untyped-def]
        args = items[1] if len(items) > 1 else []
        return s.CallExpr(str(items[0]), tuple(args), _pos_of(meta), _pos_of(items[0]))

    def expr_list(self, meta, items):  # type: ignore[no-untyped-def]
        return list(items)

    def _bin(self, op: str, meta, items, op_tok=None):  # type: ignore[no-untyped-def]
        op_pos = _pos_of(op_tok) if op_tok is not None else _pos_of(meta)
        return s.BinOp(op, items[0], items[-1], _pos_of(meta), op_pos)

    def or_(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("or", meta, items)

    def and_(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("and", meta, items)

    def not_(self, meta, items):  # type: ignore[no-untyped-def]
        return s.UnaryOp("not", items[0], _pos_of(meta))

    def neg(self, meta, items):  # type: ignore[no-untyped-def]
        return s.UnaryOp("-", items[0], _pos_of(meta))

    def compare(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin(str(items[1]), meta, items, items[1])

    def str_op(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin(str(items[1]), meta, items, items[1])

    def regex_op(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("matches regex", meta, items, items[1])

    def in_list(self, meta, items):  # type: ignore[no-untyped-def]
        return s.InOp(str(items[1]), items[0], tuple(items[2]), _pos_of(meta), _pos_of(items[1]))

    def add(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("+", meta, items)

    def sub(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("-", meta, items)

    def mul(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("*", meta, items)

    def div(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("/", meta, items)

    def mod(self, meta, items):  # type: ignore[no-untyped-def]
        return self._bin("%", meta, items)

    # ------------------------------------------------------------- literals
    def string(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("string", unescape_string(items[0]), _pos_of(items[0]))

    def verbatim(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("string", str(items[0])[2:-1], _pos_of(items[0]))

    def int(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("int", _int_literal(items[0]), _pos_of(items[0]))

    def float(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("real", float(items[0]), _pos_of(items[0]))

    def duration(self, meta, items):  # type: ignore[no-untyped-def]
        try:
            value = parse_duration(str(items[0]))
        except ValueError as exc:
            raise _LiteralError(str(exc), items[0]) from None
        return s.Lit("timespan", value, _pos_of(items[0]))

    def datetime(self, meta, items):  # type: ignore[no-untyped-def]
        tok = items[0]
        inner = str(tok)[len("datetime(") : -1]
        try:
            value = parse_datetime_text(inner)
        except ValueError:
            raise _LiteralError(
                f"invalid datetime literal {inner.strip()!r}: use ISO-8601, e.g. datetime(2024-01-31T08:00:00Z)", tok
            ) from None
        return s.Lit("datetime", value, _pos_of(tok))

    def true(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("bool", True, _pos_of(meta))

    def false(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("bool", False, _pos_of(meta))

    def null(self, meta, items):  # type: ignore[no-untyped-def]
        return s.Lit("null", None, _pos_of(meta))


_TRANSFORMER = _ToAst()


def parse_program(text: str, origin: TextOrigin) -> s.Program:
    """Parse a pipeline; syntax errors become a CompileError positioned in the rule file."""
    if len(text) > MAX_TEXT_CHARS:  # a YAML value is already bounded so; this is for text from elsewhere
        raise CompileError([Diagnostic(Severity.ERROR, f"a query has at most {MAX_TEXT_CHARS:,} characters; this one "
                                       f"has {len(text):,}", origin.span(1, 1), code="limit")])
    try:
        tree = _parser().parse(text)
        _check_depth(tree, text, origin)
        return _TRANSFORMER.transform(tree)  # type: ignore[no-any-return]
    except lark.exceptions.VisitError as exc:
        inner = exc.orig_exc
        if isinstance(inner, _LiteralError):
            tok = inner.tok
            span = origin.span(tok.line or 1, tok.column or 1, tok.end_column)
            raise CompileError([Diagnostic(Severity.ERROR, str(inner), span, code="syntax")]) from None
        raise
    except lark.UnexpectedInput as exc:
        raise CompileError([_syntax_diagnostic(exc, text, origin)]) from None


def _too_deep(line: int, column: int, origin: TextOrigin, brackets: bool = False) -> CompileError:
    if brackets:
        message, hint = f"brackets nested more than {MAX_QUERY_DEPTH} levels deep", None
    else:
        message = f"an expression nested more than {MAX_QUERY_DEPTH} levels deep"
        hint = "a long chain of `or`/`and`/`+` nests one level per operator: for a list of values use `in (…)`"
    return CompileError([Diagnostic(Severity.ERROR, message, origin.span(line, column), hint, code="limit")])


def _check_depth(tree: lark.Tree[lark.Token], text: str, origin: TextOrigin) -> None:
    """Refuse a tree deeper than MAX_QUERY_DEPTH, or brackets nested deeper, before anything recurses over it (the
    AST builder, the analyzer and every backend walk expressions recursively). Brackets are counted from the tokens
    (a string may hold any), and only when there are enough of them to matter."""
    stack: list[tuple[lark.Tree[lark.Token], int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_QUERY_DEPTH:
            meta = node.meta
            raise _too_deep(getattr(meta, "line", 1) or 1, getattr(meta, "column", 1) or 1, origin)
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, lark.Tree))
    if text.count("(") + text.count("[") <= MAX_QUERY_DEPTH:
        return
    depth = 0
    try:
        for tok in _parser().lex(text):
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
                if depth > MAX_QUERY_DEPTH:
                    raise _too_deep(tok.line or 1, tok.column or 1, origin, brackets=True)
            elif tok.type in ("RPAR", "RSQB"):
                depth -= 1
    except lark.LexError:  # text the contextual lexer took and the plain one does not: the parse stands
        return


def _syntax_diagnostic(exc: lark.UnexpectedInput, text: str, origin: TextOrigin) -> Diagnostic:
    line, column = exc.line, exc.column
    at_end = isinstance(exc, lark.UnexpectedEOF) or (isinstance(exc, lark.UnexpectedToken) and exc.token.type == "$END")
    if at_end or line in (None, -1):  # at end of input: point just after the last character
        lines = text.rstrip().splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    expected: set[str] = set()
    found = ""
    if isinstance(exc, lark.UnexpectedToken):
        expected = set(exc.expected)
        tok = exc.token
        found = "end of query" if tok.type == "$END" else f"{str(tok)!r}"
    elif isinstance(exc, lark.UnexpectedCharacters):
        expected = set(exc.allowed or ())
        pos = exc.pos_in_stream or 0
        found = repr(text[pos]) if pos < len(text) else "end of query"
    elif isinstance(exc, lark.UnexpectedEOF):
        expected = set(exc.expected)
        found = "end of query"
    names = sorted({_friendly(t) for t in expected if not t.startswith("__")})
    msg = f"unexpected {found}"
    hint = None
    if names:
        shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
        hint = f"expected {shown}"
    context = _context_message(text, line or 1, column or 1)
    if context:
        msg = f"{msg}: {context}"
    return Diagnostic(Severity.ERROR, msg, origin.span(line or 1, column or 1), hint, code="syntax")


def _friendly(terminal: str) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    if terminal.isupper():
        return f"`{terminal.lower()}`"
    return terminal


_STAGES = ("where", "extend", "summarize", "eventstats", "lookup", "rename", "project", "sort", "take", "mv-expand",
           "join", "limit")


def _context_message(text: str, line: int, column: int) -> str:
    """A sentence about what the user was writing, from the text before the error."""
    lines = text.splitlines()
    before = "\n".join(lines[: line - 1] + [lines[line - 1][: column - 1] if line - 1 < len(lines) else ""])
    stage_text = before.rsplit("|", 1)[-1].strip()
    words = stage_text.split()
    if not stage_text:
        return "expected a stage (" + ", ".join(_STAGES[:-1]) + ")"
    first = words[0]
    if first not in _STAGES:
        return f"{first!r} is not a stage; stages are " + ", ".join(_STAGES[:-1])
    if words[-1] == "by":
        return "expected a field name after `by`"
    if words[-1] in ("and", "or", "not", "==", "!=", "=~", "<", ">", "<=", ">=", "+", "-", "*", "/"):
        return f"expected an expression after `{words[-1]}`"
    if first in ("extend",) and words[-1] == "extend":
        return "expected `name = expression` after extend"
    return f"in the `{first}` stage"
