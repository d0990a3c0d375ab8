"""YAML loading that keeps positions, so that every rule error can name file:line:column.

PyYAML's composer gives nodes with marks; we build plain Python values from them and keep the node tree, in which
the span of any mapping key or value is found by its path (a tuple of keys and list indexes) when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .diagnostics import CompileError, Diagnostic, Severity, Span
from .limits import MAX_TEXT_CHARS, MAX_YAML_DEPTH, MAX_YAML_NODES

try:  # the C loader is several times faster and gives the same marks
    _Base: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader

_IMPLICIT = yaml.SafeLoader.yaml_implicit_resolvers  # first character -> [(tag, regex)], SafeLoader's YAML 1.1 rules
_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader with PyYAML's tag resolution done in one step per node: the same implicit resolvers, no
    path resolvers (SafeLoader registers none, so descend/ascend have nothing to track). The C parser calls
    `resolve` for every node, so this is a fifth of composing a rule (tests/test_grammar.py checks every tag of the
    SigmaHQ corpus against PyYAML's own resolution)."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return tag  # type: ignore[no-any-return]
            return _STR
        return _SEQ if kind is yaml.SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class TextOrigin:
    """Where a scalar's text starts in the file, to map positions inside it (a `query:` block) back to the file."""

    file: str
    line: int  # 1-based line of the first character of the scalar's content
    column: int  # 1-based column of that character
    block: bool  # literal/folded block: content lines are indented by `indent` columns
    indent: int

    def span(self, line: int, column: int, end_column: int | None = None) -> Span:
        """Map a 1-based (line, column) inside the scalar's text to a file span."""
        if self.block:
            width = None if end_column is None else end_column - column
            col = self.indent + column
            return Span(self.file, self.line + line - 1, col, None if width is None else col + width)
        if line == 1:
            off = self.column - 1
            return Span(self.file, self.line, column + off, None if end_column is None else end_column + off)
        return Span(self.file, self.line + line - 1, column, end_column)


@dataclass(slots=True)
class PositionedYaml:
    """Plain values plus where each came from. The composed node tree is kept as it is: positions are looked up in
    it only when a diagnostic or a query asks for them (most rules never need one), and Span/TextOrigin objects are
    made then."""

    value: Any
    file: str
    root: Any = None  # the yaml.Node tree
    lines: list[str] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    _key_paths: list[Path] | None = None

    def _span(self, mark: Any) -> Span:
        return Span(self.file, mark.line + 1, mark.column + 1)

    def _walk(self, path: Path) -> tuple[Any, Any, bool]:
        """The node at `path` (or the nearest enclosing one), the key node naming it (None for the root, an item of
        a sequence, or an enclosing node), and whether `path` was found whole."""
        node, key_node = self.root, None
        for step in path:
            child = None
            if isinstance(node, yaml.MappingNode) and isinstance(step, str):
                for k, v in node.value:  # the later of duplicate keys wins, as in the value
                    if isinstance(k, yaml.ScalarNode) and _key_text(k) == step:
                        child, key_node = v, k
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
                child, key_node = node.value[step], None
            if child is None:
                return node, None, False
            node = child
        return node, key_node, True

    def node(self, path: Path) -> Any:
        """The yaml node at `path` exactly, or None."""
        node, _, exact = self._walk(path)
        return node if exact else None

    def span(self, path: Path) -> Span | None:
        """The span of the value at `path`, or of the nearest enclosing value that has one."""
        node, _, _ = self._walk(path)
        return None if node is None else self._span(node.start_mark)

    def key_span(self, path: Path) -> Span | None:
        """The span of the key naming the value at `path` (else of the value, or the nearest enclosing one)."""
        node, key_node, _ = self._walk(path)
        if key_node is not None:
            return self._span(key_node.start_mark)
        return None if node is None else self._span(node.start_mark)

    @property
    def key_paths(self) -> list[Path]:
        """The path of every mapping value, in document order (listed on first use)."""
        if self._key_paths is None:
            self._key_paths = []
            if self.root is not None:
                _list_keys(self.root, (), self._key_paths)
        return self._key_paths

    def origin(self, path: Path) -> TextOrigin | None:
        """Where the text of the scalar at `path` starts, to map positions inside it back to the file."""
        node = self.node(path)
        return _origin(node, self.file, self.lines) if isinstance(node, yaml.ScalarNode) else None


def _key_text(key_node: Any) -> str:
    """A mapping key as the loaded value names it (`_build`): its text for strings, else its constructed value."""
    if key_node.tag == _STR:
        return str(key_node.value)
    try:
        return str(yaml.SafeLoader("").construct_object(key_node, deep=True))
    except (ValueError, TypeError, OverflowError, yaml.constructor.ConstructorError):
        return str(key_node.value)


def _list_keys(node: Any, path: Path, out: list[Path]) -> None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                child = path + (_key_text(k),)
                out.append(child)
                _list_keys(v, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _list_keys(item, path + (i,), out)


def _mark_span(file: str, mark: Any) -> Span:
    return Span(file, mark.line + 1, mark.column + 1)


def load_yaml(text: str, file: str) -> PositionedYaml:
    """Parse one YAML document; raise CompileError with the position of a syntax error, of an anchor or alias (a
    rule has no use for them, and aliases nested a few levels deep expand to billions of values), or of the first
    value past a limit (compiler/limits.py)."""
    node = _composed(text, file, yaml.compose)
    return _built(node, file, text.splitlines())


def _composed(text: str, file: str, compose: Any) -> Any:
    """`compose(text)` (yaml.compose or yaml.compose_all, materialised) with its errors as positioned diagnostics; a
    text with an anchor is refused first."""
    if "&" in text:  # no anchor, so no alias (an alias of nothing is a syntax error): the common case skips this
        _refuse_anchors(text, file)
    try:
        node = compose(text, Loader=_Loader)
        return list(node) if compose is yaml.compose_all else node
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = _mark_span(file, mark) if mark is not None else Span(file, 1, 1)
        msg = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
        raise CompileError([Diagnostic(Severity.ERROR, msg, span, code="yaml")]) from None
    except yaml.YAMLError as exc:
        raise CompileError(
            [Diagnostic(Severity.ERROR, f"invalid YAML: {exc}", Span(file, 1, 1), code="yaml")]
        ) from None


def _built(node: Any, file: str, lines: list[str]) -> PositionedYaml:
    result = PositionedYaml(None, file, node, lines=lines)
    if node is None:
        return result
    constructor = yaml.SafeLoader("")  # only used for its scalar constructors (ints, bools, dates, …)
    result.value = _Builder(result, constructor).build(node, 1)
    return result


def load_yaml_all(text: str, file: str) -> list[PositionedYaml]:
    """Every document of a multi-document YAML file (`---` between documents; Sigma correlations and filters come so),
    each positioned in the whole file; empty documents are left out. Errors as in `load_yaml`."""
    nodes = _composed(text, file, yaml.compose_all)
    lines = text.splitlines()
    return [_built(n, file, lines) for n in nodes if n is not None] or [_built(None, file, lines)]


def is_multi_document(text: str) -> bool:
    """Whether the text may hold more than one YAML document (a `---` line after the first line)."""
    return "\n---" in text


def _refuse_anchors(text: str, file: str) -> None:
    """The first anchor (`&name`) or alias (`*name`) in `text`, as a positioned error. A syntax error is left for
    the composer to report."""
    try:
        for event in yaml.parse(text, Loader=_Loader):
            anchor = getattr(event, "anchor", None)
            if anchor is None:
                continue
            what = f"YAML alias *{anchor}" if isinstance(event, yaml.AliasEvent) else f"YAML anchor &{anchor}"
            raise CompileError([Diagnostic(
                Severity.ERROR, f"{what}: anchors and aliases are not allowed in rules",
                _mark_span(file, event.start_mark),
                hint="write the value out where it is used (Sigma rules do not use anchors)", code="yaml-alias")])
    except yaml.YAMLError:
        return


_STR = "tag:yaml.org,2002:str"


def _limit(file: str, mark: Any, message: str, code: str = "limit") -> CompileError:
    return CompileError([Diagnostic(Severity.ERROR, message, _mark_span(file, mark), code=code)])


@dataclass(slots=True)
class _Builder:
    """Plain values from the composed node tree, refusing merge keys and counting depth and nodes as it goes."""

    out: PositionedYaml
    ctor: yaml.SafeLoader
    nodes: int = 0

    def build(self, node: yaml.Node, depth: int) -> Any:
        self.nodes += 1
        file = self.out.file
        if self.nodes > MAX_YAML_NODES:
            raise _limit(file, node.start_mark, f"a rule file holds at most {MAX_YAML_NODES:,} YAML values "
                         "(mappings, lists and scalars); this one holds more")
        if depth > MAX_YAML_DEPTH and not isinstance(node, yaml.ScalarNode):
            raise _limit(file, node.start_mark, f"YAML nested deeper than {MAX_YAML_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _limit(file, key_node.start_mark, "YAML merge keys (<<) are not supported in rules", "yaml")
                if isinstance(key_node, yaml.ScalarNode):
                    key = _key_text(key_node) if key_node.tag != _STR else key_node.value
                else:
                    key = None
                if not isinstance(key, (str, int, float, bool)) and key is not None or not isinstance(
                        key_node, yaml.ScalarNode):
                    raise _limit(file, key_node.start_mark, "mapping keys must be scalars", "yaml")
                k = key if isinstance(key, str) else str(key)
                if len(k) > MAX_TEXT_CHARS:
                    raise _limit(file, key_node.start_mark, f"a key of {len(k):,} characters (at most "
                                 f"{MAX_TEXT_CHARS:,})")
                self.nodes += 1
                if k in mapping:
                    self.out.warnings.append(Diagnostic(
                        Severity.WARNING, f"duplicate key {k!r}: the later value wins",
                        _mark_span(file, key_node.start_mark), code="yaml-duplicate-key"))
                mapping[k] = self.build(value_node, depth + 1)
            return mapping
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, depth + 1) for item in node.value]
        assert isinstance(node, yaml.ScalarNode)
        if len(node.value) > MAX_TEXT_CHARS:
            raise _limit(file, node.start_mark, f"a text value of {len(node.value):,} characters (at most "
                         f"{MAX_TEXT_CHARS:,})")
        if node.tag == _STR:  # the common case: no constructor call
            return node.value
        try:
            return self.ctor.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError, yaml.constructor.ConstructorError):
            # a scalar that looks like a date or number but is not one (2024-13-45): keep its text, so that the
            # rule's own checks report it with its position
            return node.value


def _origin(node: yaml.ScalarNode, file: str, lines: list[str]) -> TextOrigin:
    mark = node.start_mark
    if node.style in ("|", ">"):
        # content starts on the line after the indicator; its indentation is that of the first non-blank line
        first = mark.line + 1
        indent = 0
        for i in range(first, len(lines)):
            if lines[i].strip():
                indent = len(lines[i]) - len(lines[i].lstrip(" "))
                break
        return TextOrigin(file, first + 1, indent + 1, True, indent)
    quoted = 1 if node.style in ("'", '"') else 0
    return TextOrigin(file, mark.line + 1, mark.column + 1 + quoted, False, 0)
