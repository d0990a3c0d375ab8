"""`siemforge lsp`: a Language Server (pygls, over stdio) for rule files.

- diagnostics: the CLI's own, positioned (compiler.api.compile_text on the editor's text, on open, change and save);
- hover on a field: its type and the source that declares it (compiler/sources.py); on a function: its signature;
  on the rule (`title:`, `id:`, `query:` keys): its IR (compiler/irprint.py) and the query every target compiles;
- completion: the fields of the rule's source, and in `query:` the pipeline's functions (compiler/functions.py).

Positions: the compiler counts columns in characters; LSP in the client's code units (UTF-16 by default), converted
with the document's position codec. docs/editor.md says how to hook it into an editor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import ServerTextPosition, ServerTextRange, TextDocument

from siemforge import __version__
from siemforge.compiler.api import CompileResult, compile_text, resolve_source, source_folders
from siemforge.compiler.diagnostics import CompileError, Diagnostic, DiagnosticSink, Severity
from siemforge.compiler.functions import FUNCTIONS, Signature
from siemforge.compiler.sources import GENERIC, SourceDef, builtin_sources, source_for_logsource, use_source_dirs

_WORD = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@-]*")
_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")
_RULE_KEYS = ("title", "id", "query", "detection")  # hovering one shows the rule: its IR and compiled queries
_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.NOTE: types.DiagnosticSeverity.Information,
}


@dataclass(slots=True)
class _State:
    """What the server knows of one open document: its last compilation and the source its rule reads (kept from
    the last text that named one, so completion works while the YAML is broken mid-edit)."""

    results: list[CompileResult] = field(default_factory=list)
    source: SourceDef = GENERIC


class RuleServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("siemforge", __version__)
        self.documents: dict[str, _State] = {}
        self.source_dirs: tuple[Path, ...] | None = None  # the user source folders in use (compiler.sources)

    def state(self, uri: str) -> _State:
        return self.documents.setdefault(uri, _State())


server = RuleServer()


def document_path(uri: str) -> Path:
    path = to_fs_path(uri)
    return Path(path) if path else Path(uri.rpartition("/")[2] or "untitled.yml")


# ------------------------------------------------------------------ diagnostics
def check(ls: RuleServer, uri: str) -> None:
    """Compile the document's text and publish its diagnostics."""
    document = ls.workspace.get_text_document(uri)
    path = document_path(uri)
    state = ls.state(uri)
    try:
        dirs = tuple(source_folders(path))  # `sources/` beside the rules, as the CLI reads them
        if dirs != ls.source_dirs:
            ls.source_dirs = None
            use_source_dirs(dirs)
            ls.source_dirs = dirs
        state.results = compile_text(path, document.source)
    except CompileError as exc:  # a user source folder that does not load
        state.results = [CompileResult(path, None, None, list(exc.diagnostics))]
    for res in state.results:
        if res.doc is not None:
            state.source = _source_of(res)
            break
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=lsp_diagnostics(document, path, state.results),
                                       version=document.version))


def lsp_diagnostics(document: TextDocument, path: Path, results: list[CompileResult]) -> list[types.Diagnostic]:
    """The CLI's diagnostics (notes left out, as the CLI leaves them out) as LSP diagnostics. One that points into
    another file (a view source's definition) is shown at the top of this one, naming where it points."""
    out: list[types.Diagnostic] = []
    seen: set[Diagnostic] = set()
    lines = document.lines
    for res in results:
        for d in res.diagnostics:
            if d in seen or d.severity is Severity.NOTE:
                continue
            seen.add(d)
            message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
            span = d.span
            if span is None or not _same_path(span.file, path):
                where = f"{span}: " if span is not None else ""
                rng = types.Range(types.Position(0, 0), types.Position(0, 0))
                message = where + message
            elif span.line > len(lines):  # at the end of the text (YAML that ends too soon): its last character
                last = max(len(lines) - 1, 0)
                end = len(lines[last].rstrip("\r\n")) if lines else 0
                rng = _client_range(document, last, max(end - 1, 0), end)
            else:
                text = lines[span.line - 1].rstrip("\r\n")
                start = min(span.column - 1, len(text))
                end = span.end_column - 1 if span.end_column and span.end_column > span.column else _token_end(text,
                                                                                                              start)
                rng = _client_range(document, span.line - 1, start, end)
            out.append(types.Diagnostic(range=rng, message=message, severity=_SEVERITY[d.severity],
                                        code=d.code or None, source="siemforge"))
    return out


def _client_range(document: TextDocument, line: int, start: int, end: int) -> types.Range:
    """Characters `start`..`end` of a line (counted in characters, as the compiler counts) in the client's units."""
    return document.range_to_client_units(
        ServerTextRange(ServerTextPosition(line, start), ServerTextPosition(line, end)))


def _same_path(file: str, path: Path) -> bool:
    return file == str(path) or Path(file).resolve() == path.resolve()


def _token_end(text: str, start: int) -> int:
    """Where the word (or the run of non-blanks) starting at `start` ends: the span of a diagnostic without an end."""
    m = _WORD.match(text, start) or re.compile(r"\S+").match(text, start)
    return m.end() if m else start


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: RuleServer, params: types.DidOpenTextDocumentParams) -> None:
    check(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: RuleServer, params: types.DidChangeTextDocumentParams) -> None:
    check(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: RuleServer, params: types.DidSaveTextDocumentParams) -> None:
    check(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: RuleServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.documents.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


# ------------------------------------------------------------------ what a name means
def _source_of(res: CompileResult) -> SourceDef:
    if res.rule is not None:
        name = res.rule.pipeline.source.name
        found = builtin_sources().get(name)
        if found is not None:
            return found
    if res.doc is not None:
        try:
            return resolve_source(res.doc, DiagnosticSink())
        except CompileError:
            return GENERIC
    return GENERIC


def field_hover(src: SourceDef, name: str) -> str | None:
    """Markdown for a field of `src` named `name` (a dotted path, a Sigma field name, a derived field), or None."""
    where = f"source `{src.name}`" + (f" ({src.file})" if src.file and src.file != "<builtin>" else "")
    logsource = ", ".join(f"{k}: {v}" for k, v in src.logsource)
    about = f"{where}" + (f" — logsource {{{logsource}}}" if logsource else "")
    declared = src.field_type(name)
    if declared is not None:
        return f"**field** `{name}`: `{declared}`\n\n{about}"
    if src.sigma_fields and name in src.sigma_fields:
        target = src.sigma_fields[name]
        if isinstance(target, dict):
            return f"**Sigma field** `{name}`: refused by {where}: {target.get('refuse', '')}"
        t = src.field_type(str(target))
        return f"**Sigma field** `{name}` → `{target}`" + (f": `{t}`" if t is not None else "") + f"\n\n{about}"
    if name in src.aliases:
        return f"**derived field** `{name}` (defined in {where} from its fields)"
    return None


def function_hover(sig: Signature) -> str:
    return f"**function** `{sig.name}` ({sig.arity_text()} argument(s))\n\n{sig.doc}"


def rule_hover(results: list[CompileResult]) -> str | None:
    """Markdown for the rule(s) of a document: the IR every backend reads, and the query each target compiles (or
    why it refuses)."""
    from siemforge.backends.registry import targets
    from siemforge.compiler.irprint import format_rule

    parts: list[str] = []
    for res in results:
        if res.rule is None:
            continue
        rule = res.rule
        parts.append(f"**{rule.meta.title}** (`{rule.meta.id}`)\n\nIR:\n```\n{format_rule(rule)}\n```")
        for t in targets().values():
            if t.extension == "ir":  # the executor's compiled form is the IR shown above
                continue
            try:
                query = t.compile(rule, None)
            except CompileError as exc:
                reason = "; ".join(d.message for d in exc.diagnostics)
                parts.append(f"{t.name}: refused: {reason}")
                continue
            parts.append(f"{t.name} ({t.binding_name(rule, None)}):\n```{t.extension}\n{query}\n```")
    return "\n\n".join(parts) or None


def _word_at(line: str, column: int) -> tuple[str, int, int] | None:
    for m in _WORD.finditer(line):
        if m.start() <= column <= m.end():
            return m.group(), m.start(), m.end()
    return None


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: RuleServer, params: types.HoverParams) -> types.Hover | None:
    document = ls.workspace.get_text_document(params.text_document.uri)
    state = ls.state(params.text_document.uri)
    if not state.results:
        check(ls, params.text_document.uri)
    pos = document.position_from_client_units(params.position)
    lines = document.lines
    if pos.line >= len(lines):
        return None
    line = lines[pos.line].rstrip("\r\n")
    found = _word_at(line, pos.character)
    if found is None:
        return None
    word, start, end = found
    key = _TOP_KEY.match(line)
    text: str | None = None
    if key is not None and start == 0 and key.group(1) in _RULE_KEYS:
        text = rule_hover(state.results)
    elif word in FUNCTIONS and line[end:].lstrip().startswith("("):
        text = function_hover(FUNCTIONS[word])
    else:
        text = field_hover(state.source, word.rstrip("."))
        if text is None:
            text = _column_hover(state.results, word)
    if text is None:
        return None
    rng = _client_range(document, pos.line, start, end)
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text), range=rng)


def _column_hover(results: list[CompileResult], name: str) -> str | None:
    """A column the rule's pipeline computes (an `extend`, a `summarize`'s output), typed by the compiler."""
    for res in results:
        if res.rule is None:
            continue
        for col, t in res.rule.pipeline.columns or ():
            if col == name:
                return f"**column** `{name}`: `{t}` (computed by the rule's pipeline)"
    return None


# ------------------------------------------------------------------ completion
def _section_of(lines: list[str], line_no: int) -> str | None:
    """The top-level key whose block holds line `line_no` (None above the first key)."""
    for i in range(min(line_no, len(lines) - 1), -1, -1):
        m = _TOP_KEY.match(lines[i])
        if m is not None:
            return m.group(1)
    return None


def field_items(src: SourceDef) -> list[types.CompletionItem]:
    names: dict[str, str] = {}
    if src.time_column:
        names[src.time_column] = "datetime"
    for dotted, t in src.fields.items():
        names.setdefault(dotted, str(t))
    for alias in src.aliases:
        names.setdefault(alias, "derived")
    for sigma_name, target in (src.sigma_fields or {}).items():
        if not isinstance(target, dict):
            names.setdefault(sigma_name, f"Sigma name of {target}")
    return [types.CompletionItem(label=n, kind=types.CompletionItemKind.Field, detail=f"{t} — {src.name}")
            for n, t in sorted(names.items())]


def function_items() -> list[types.CompletionItem]:
    return [types.CompletionItem(label=s.name, kind=types.CompletionItemKind.Function,
                                 detail=f"{s.name}(…): {s.arity_text()} argument(s)", documentation=s.doc,
                                 insert_text=s.name)
            for s in sorted(FUNCTIONS.values(), key=lambda s: s.name)]


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["."]))
def completion(ls: RuleServer, params: types.CompletionParams) -> types.CompletionList:
    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    state = ls.state(uri)
    if not state.results:
        check(ls, uri)
    src = state.source
    if src is GENERIC:
        src = _source_from_text(document.source)
    pos = document.position_from_client_units(params.position)
    items = field_items(src)
    if _section_of(list(document.lines), pos.line) == "query":
        items += function_items()
    return types.CompletionList(is_incomplete=False, items=items)


_LOGSOURCE_LINE = re.compile(r"^\s+(category|product|service)\s*:\s*([\w.-]+)\s*$")
_LOGSOURCE_FLOW = re.compile(r"(category|product|service)\s*:\s*([\w.-]+)")


def _source_from_text(text: str) -> SourceDef:
    """The source a rule's `logsource:` names, read from the text by lines: for a document whose YAML does not
    load yet (being typed)."""
    logsource: dict[str, Any] = {}
    in_block = False
    for line in text.splitlines():
        if line.startswith("logsource:"):
            logsource.update(dict(_LOGSOURCE_FLOW.findall(line)))
            in_block = True
            continue
        if in_block:
            m = _LOGSOURCE_LINE.match(line)
            if m is None and line[:1] not in (" ", "\t", ""):
                in_block = False
            elif m is not None:
                logsource[m.group(1)] = m.group(2)
    return (source_for_logsource(logsource) if logsource else None) or GENERIC


def serve() -> None:
    """Run the server over stdin/stdout until the client says exit."""
    server.start_io()
