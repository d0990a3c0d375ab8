"""The canonical layout of a rule file (`siemforge fmt`): key order, the pipeline one stage per line, stable quoting.

The YAML is rewritten with ruamel.yaml's round-trip mode, which keeps comments, blank lines, flow or block style and
block scalars as written; only what this module decides changes:

- top-level keys in Sigma's order, then siemforge's extensions (`KEY_ORDER`), then any other key as written;
  `logsource:` as category, product, service, definition; a detection's `condition` (then `timeframe`) last;
- indentation of two columns (a list's dash indented two under its key);
- a quoted string in single quotes, unless it needs double quotes' escapes (a control character, a line break);
  a plain scalar stays plain: quoting is never added or removed, so YAML 1.1's and 1.2's readings of a value agree
  before and after;
- a `query: |` block laid out one stage per line (`layout_pipeline`).

A comment line above a key moves with the key; every full-line comment is indented as the line below it.

Formatting never changes a file's meaning: the result is read back with the compiler's own YAML loader and must give
the same values (a query's code the same up to whitespace and comments) or nothing is written (`FormatError`).
Library code: nothing here prints or writes a file.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.tokens import CommentToken

from .diagnostics import CompileError, Diagnostic, Severity, Span
from .yamlpos import load_yaml_all

# Sigma's key order (the Sigma specification's rule, correlation and filter layouts), then siemforge's extensions
# (docs/dsl.md) in the order a reader wants them: what the rule computes, what it needs, when and how it alerts,
# and its tests last.
SIGMA_ORDER = (
    "title", "id", "related", "name", "taxonomy", "status", "description", "license", "references", "author", "date",
    "modified", "tags", "logsource", "detection", "correlation", "filter", "generate", "fields", "falsepositives",
    "level", "scope",
)
EXTENSION_ORDER = ("version", "source", "query", "lookups", "baselines", "schedule", "alert", "entities", "details",
                   "tests")
KEY_ORDER = SIGMA_ORDER + EXTENSION_ORDER
LOGSOURCE_ORDER = ("category", "product", "service", "definition")
DETECTION_LAST = ("condition", "timeframe")


class FormatError(Exception):
    """A file fmt refuses: its diagnostics say where and why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("; ".join(str(d) for d in diagnostics))


# ------------------------------------------------------------------------------------------------ the pipeline
@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "code", "string", "comment", "pipe", "space"
    text: str


_STRING_START = re.compile(r"""@?["']|`""")


def _tokens(line: str) -> Iterator[_Token]:
    """One line of the pipeline language cut where layout may change: strings (quoted, verbatim `@"…"`, backquoted
    names), a `//` comment, `|`, runs of blanks, and the code between (as the grammar's lexer reads them)."""
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if line.startswith("//", i):
            yield _Token("comment", line[i:])
            return
        if ch == "|":
            yield _Token("pipe", ch)
            i += 1
            continue
        if ch in " \t":
            j = i
            while j < n and line[j] in " \t":
                j += 1
            yield _Token("space", line[i:j])
            i = j
            continue
        m = _STRING_START.match(line, i)
        if m:
            quote = m.group()[-1]
            escapes = m.group() in ('"', "'")  # verbatim strings and `names` have no escapes
            j = m.end()
            while j < n and line[j] != quote:
                j += 2 if escapes and line[j] == "\\" else 1
            j = min(j + 1, n)
            yield _Token("string", line[i:j])
            i = j
            continue
        j = i
        while j < n and line[j] not in " \t|\"'`" and not line.startswith("//", j) and not line.startswith("@\"", j) \
                and not line.startswith("@'", j):
            j += 1
        j = max(j, i + 1)
        yield _Token("code", line[i:j])
        i = j


def layout_pipeline(text: str) -> str:
    """The pipeline one stage per line: every `|` between stages starts a line of its own as `| stage`, the first
    stage starts its line, a stage's continuation lines and comment lines keep their indentation; trailing blanks,
    leading and trailing empty lines and runs of empty lines go; the text ends with one line break."""
    out: list[str] = []
    pending_pipe = False  # a line ended in `|`: the next code line starts the stage
    depth = 0  # brackets open before the current token: a `|` inside a join's `( … )` is indented by it
    pipe_depth = 0
    for raw in text.splitlines():
        toks = list(_tokens(raw.rstrip()))
        code = [t for t in toks if t.kind not in ("space", "comment")]
        if not code:  # a blank line or a comment line
            stripped = raw.rstrip()
            if stripped or (out and out[-1]):
                out.append(stripped)
            continue
        # cut the line at each `|`: pieces[0] continues what came before, each later piece starts a stage
        pieces: list[list[_Token]] = [[]]
        depths = [pipe_depth]
        for t in toks:
            if t.kind == "pipe":
                pieces.append([])
                depths.append(depth)
            else:
                pieces[-1].append(t)
                if t.kind == "code":
                    depth = max(depth + t.text.count("(") + t.text.count("[") - t.text.count(")")
                                - t.text.count("]"), 0)
        for k, piece in enumerate(pieces):
            body = "".join(t.text for t in piece).strip()
            starts_stage = k > 0 or pending_pipe
            if k == 0 and not body:
                continue  # the line starts with `|`
            if k == len(pieces) - 1 and k > 0 and not any(t.kind != "space" and t.kind != "comment" for t in piece):
                # a trailing `|` (perhaps before a comment): the next code line starts the stage
                if body:
                    out[-1] = f"{out[-1]}  {body}" if out else body
                pending_pipe = True
                pipe_depth = depths[k]
                break
            if starts_stage:
                line = "    " * depths[k] + f"| {body}"
            elif not any(s.strip() for s in out if not s.lstrip().startswith("//")):
                line = body  # the first stage
            else:
                line = raw.rstrip() if len(pieces) == 1 else _lead(raw) + body  # a continuation line
            out.append(line)
            pending_pipe = False
    if pending_pipe:  # a `|` with nothing after it: kept (the compiler reports it)
        out.append("|")
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def code_signature(text: str) -> tuple[str, ...]:
    """The pipeline's tokens (code between blanks, strings whole, `|`) without comments: what layout may not
    change. Blanks and line breaks only separate tokens."""
    return tuple(t.text for line in text.splitlines() for t in _tokens(line) if t.kind not in ("space", "comment"))


# ------------------------------------------------------------------------------------------------ the YAML
def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap a long line
    y.indent(mapping=2, sequence=4, offset=2)
    y.brace_single_entry_mapping_in_flow_sequence = True  # `[{a: 1}]`, not `[a: 1]`
    return y


def _reordered(m: CommentedMap, order: tuple[str, ...], last: tuple[str, ...] = (), indent: int = 0) -> CommentedMap:
    """`m` with its keys in `order` first, then the others as written, then `last`; style kept, and comments with
    the keys they are about (`_CommentMover`)."""
    keys = list(m.keys())
    rank = {k: i for i, k in enumerate(order)}
    tail = {k: i for i, k in enumerate(last)}
    front = sorted((k for k in keys if k in rank), key=lambda k: rank[k])
    middle = [k for k in keys if k not in rank and k not in tail]
    back = sorted((k for k in keys if k in tail), key=lambda k: tail[k])
    new_keys = front + middle + back
    if new_keys == keys:
        return m
    above, end = _detach_comments(m, keys, indent)
    new = CommentedMap()
    for k in new_keys:
        new[k] = m[k]
        if k in m.ca.items:
            new.ca.items[k] = m.ca.items[k]
    new.ca.comment = m.ca.comment
    new.ca.end = m.ca.end
    if m.fa.flow_style():
        new.fa.set_flow_style()
    else:
        new.fa.set_block_style()
    for i, k in enumerate(new_keys):  # what stood above the next key follows this one's value now
        text = above.get(new_keys[i + 1], "") if i + 1 < len(new_keys) else end
        if text:
            _append_comment(new, k, text)
    if above.get(new_keys[0]):  # a key that moved to the top: its comment above it leads the mapping
        token = CommentToken(above[new_keys[0]], CommentMark(0))
        if new.ca.comment is None:
            new.ca.comment = [None, [token]]
        else:
            new.ca.comment[1] = [*(new.ca.comment[1] or []), token]
    return new


# ruamel.yaml keeps the comment lines that follow a value with the deepest last scalar of that value (the token after
# `x: 1` holds `# eol comment` and the lines below it). A comment line above a key is about that key: when keys
# move, the lines between two keys at the mapping's own indentation (or less, after its last key) are detached from
# the value above and follow the key below.
def _tail_slot(node: Any, key: Any) -> tuple[list[Any], int, bool]:
    """The comment slot (a ca.items entry and its index) holding the lines after node[key]'s value, and whether that
    value is a block scalar (`|`, `>`: its slot holds whole lines; a plain value's starts with its end-of-line
    comment, or an empty first line)."""
    value = node[key]
    if isinstance(value, CommentedMap) and len(value) and not value.fa.flow_style():
        return _tail_slot(value, list(value.keys())[-1])
    if isinstance(value, CommentedSeq) and len(value) and not value.fa.flow_style():
        return _tail_slot(value, len(value) - 1)
    entry = node.ca.items.setdefault(key, [None, None, None, None])
    block = isinstance(value, (LiteralScalarString, FoldedScalarString))
    return entry, 0 if isinstance(node, CommentedSeq) else 2, block


def _detach_comments(m: CommentedMap, keys: list[Any], new_indent: int) -> tuple[dict[Any, str], str]:
    """Take the comment lines about each key of `m` (the lines above it, at `m`'s indentation) out of the value
    before it, and those after `m`'s last value at `m`'s indentation or less (about what follows `m`). A comment at
    the keys' indentation is re-indented as they are (`new_indent`)."""
    try:
        indent = m.lc.key(keys[0])[1]
    except (AttributeError, KeyError, TypeError):
        return {}, ""
    above: dict[Any, str] = {}
    end = ""
    for i, k in enumerate(keys):
        entry, idx, block = _tail_slot(m, k)
        token = entry[idx]
        if token is None:
            continue
        first, _, rest = ("", "", token.value) if block else token.value.partition("\n")
        lines = rest.split("\n")[:-1] if rest.endswith("\n") else rest.split("\n")
        j = len(lines)
        while j > 0 and (not lines[j - 1].strip() or (lines[j - 1].lstrip().startswith("#")
                                                        and _indent(lines[j - 1]) <= indent)):
            j -= 1
        while j < len(lines) and not lines[j].strip() and i + 1 < len(keys):
            j += 1  # blank lines between two keys stay where they are
        moved = "".join((" " * new_indent + line.lstrip() if _indent(line) == indent and line.strip() else line) + "\n"
                        for line in lines[j:])
        if not moved:
            continue
        kept = ("" if block else first + "\n") + "".join(line + "\n" for line in lines[:j])
        if i + 1 < len(keys):
            above[keys[i + 1]] = moved
        else:
            end = moved
        entry[idx] = None if kept == ("" if block else "\n") else _with_value(token, kept)
    return above, end


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _with_value(token: CommentToken, value: str) -> CommentToken:
    token.value = value
    return token


def _append_comment(m: CommentedMap, key: Any, text: str) -> None:
    entry, idx, block = _tail_slot(m, key)
    token = entry[idx]
    if token is None:
        entry[idx] = CommentToken(("" if block else "\n") + text, CommentMark(0))
    else:
        value = token.value
        token.value = value + ("" if value.endswith("\n") else "\n") + text


def _requote(node: Any) -> Any:
    """Quoted strings in single quotes where they can be (in place; returns the node)."""
    if isinstance(node, CommentedMap):
        for k in list(node.keys()):
            node[k] = _requote(node[k])
    elif isinstance(node, CommentedSeq):
        for i, v in enumerate(node):
            node[i] = _requote(v)
    elif isinstance(node, DoubleQuotedScalarString) and str(node).isprintable():
        return SingleQuotedScalarString(str(node))
    return node


def _format_document(doc: Any) -> Any:
    if not isinstance(doc, CommentedMap):
        return _requote(doc)
    doc = _reordered(doc, KEY_ORDER)
    if isinstance(doc.get("logsource"), CommentedMap):
        doc["logsource"] = _reordered(doc["logsource"], LOGSOURCE_ORDER, indent=2)
    if isinstance(doc.get("detection"), CommentedMap):
        doc["detection"] = _reordered(doc["detection"], (), DETECTION_LAST, indent=2)
    query = doc.get("query")
    if isinstance(query, LiteralScalarString):
        laid_out = layout_pipeline(str(query))
        if laid_out and laid_out != str(query):
            doc["query"] = LiteralScalarString(laid_out)
    return _requote(doc)


def _plain(value: Any, path: tuple[Any, ...] = ()) -> Any:
    """A loaded value as fmt must keep it: a query's code compared by its signature."""
    if isinstance(value, dict):
        return {k: _plain(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, path + (i,)) for i, v in enumerate(value)]
    if path == ("query",) and isinstance(value, str):
        return ("query", code_signature(value))
    return value


def _loaded(text: str, file: str) -> list[Any]:
    return [_plain(d.value) for d in load_yaml_all(text, file)]


def format_text(text: str, file: str) -> str:
    """The canonical form of a rule file's text. Raises FormatError (positioned diagnostics) for a file the compiler
    cannot read, one ruamel.yaml reads differently (a duplicate key), or one whose meaning formatting would change."""
    from .rule import QUERY_NOT_LITERAL, query_lines_joined

    try:
        positioned = load_yaml_all(text, file)
    except CompileError as exc:
        raise FormatError(exc.diagnostics) from None
    before = [_plain(d.value) for d in positioned]
    for doc in positioned:  # the compiler refuses such a query; written on one line, it could compile to less
        if isinstance(doc.value, dict) and isinstance(doc.value.get("query"), str) and query_lines_joined(doc):
            raise FormatError([Diagnostic(Severity.ERROR, f"cannot format: {QUERY_NOT_LITERAL}",
                                          doc.span(("query",)), code="fmt")])
    y = _yaml()
    try:
        docs = list(y.load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = Span(file, mark.line + 1, mark.column + 1) if mark is not None else Span(file, 1, 1)
        problem = exc.problem or exc.context or "syntax error"
        raise FormatError([Diagnostic(Severity.ERROR, f"cannot format: {problem}", span, code="fmt")]) from None
    except YAMLError as exc:
        raise FormatError([Diagnostic(Severity.ERROR, f"cannot format: {exc}", Span(file, 1, 1), code="fmt")]) from None
    docs = [d for d in docs if d is not None] or docs  # an empty document between `---` lines carries nothing
    for d in docs:  # a list or a scalar is no rule: the compiler refuses it, and laying it out would only indent it
        if d is not None and not isinstance(d, Mapping):
            lc = getattr(d, "lc", None)
            span = Span(file, lc.line + 1, lc.col + 1) if lc is not None else Span(file, 1, 1)
            raise FormatError([Diagnostic(Severity.ERROR, "cannot format: a rule must be a YAML mapping (title:, "
                                          "logsource:, detection: or query:, …)", span, code="fmt")])
    buf = io.StringIO()
    y.dump_all([_format_document(d) for d in docs], buf)
    result = buf.getvalue()
    if not text.strip():
        return text
    aligned = align_comments(result)
    if aligned != result and _same_meaning(aligned, file, before):
        return aligned
    try:
        same = _same_meaning(result, file, before)
    except CompileError as exc:
        raise FormatError([Diagnostic(Severity.ERROR, "formatting would make the file unreadable; left as it is "
                                      f"(a siemforge bug): {exc}", Span(file, 1, 1), code="fmt")]) from None
    if not same:
        raise FormatError([Diagnostic(Severity.ERROR, "formatting would change the file's meaning; left as it is "
                                      "(a siemforge bug)", Span(file, 1, 1), code="fmt")])
    return result


def _same_meaning(text: str, file: str, before: list[Any]) -> bool:
    return _loaded(text, file) == before


_BLOCK_SCALAR = re.compile(r"(?:^\s*-\s+|:\s+)[|>][-+0-9]*\s*(?:#.*)?$")


def align_comments(text: str) -> str:
    """Every full-line comment indented as the line below it (the one it is about; none below: column 1), since
    the emitter keeps a comment's column from the original layout. Lines of a block scalar (`|`, `>`) are content,
    not comments, and are left alone; the caller checks the meaning is unchanged all the same."""
    lines = text.split("\n")
    out = list(lines)
    block_indent: int | None = None  # inside a block scalar: its lines are indented more than its key
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if block_indent is not None:
            if not stripped or indent > block_indent:
                continue
            block_indent = None
        if stripped.startswith("#"):
            below = next((x for x in lines[i + 1:] if x.strip() and not x.lstrip().startswith("#")), "")
            out[i] = " " * (len(below) - len(below.lstrip())) + stripped
        elif _BLOCK_SCALAR.search(line):
            block_indent = indent
    return "\n".join(out)
