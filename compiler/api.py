"""The public API: rule file → RuleIR, with every diagnostic. The CLI and backends go through here."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache, lru_cache
from pathlib import Path

from . import ir
from .analyze import Analyzer, Schema
from .cache import CacheEntry, RuleCache, dependencies_of
from .correlation import (
    RESULT_COLUMN,
    TAG_COLUMN,
    TIME,
    Correlation,
    branch,
    correlation_stages,
    filter_applies,
    filter_rules,
    logsource_mismatch,
    read_correlation,
    rule_names,
    tag_of,
)
from .diagnostics import CompileError, Diagnostic, DiagnosticSink, Severity, Span, error
from .parser import parse_program
from .rule import BaselineSpec, RuleDoc, load_rule, load_rules, outside_root, read_rule_bytes
from .sources import GENERIC, SourceDef, builtin_sources, generation, source_for_logsource
from .types import Type
from .yamlpos import TextOrigin, is_multi_document


@dataclass(slots=True)
class CompileResult:
    path: Path
    rule: ir.RuleIR | None
    doc: RuleDoc | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.rule is not None


def open_schema(src: SourceDef) -> Schema:
    return Schema(dict(src.columns()), True, src, src.time_column)


def compile_view(name: str) -> tuple[ir.Pipeline, tuple[tuple[str, Type], ...], tuple[tuple[object, Span], ...]]:
    """Compile a view source's pipeline over its base source (once per process and set of user source folders): the
    pipeline, its columns, and where its IR nodes are written in the source file (a refusal of a view's stage points
    there)."""
    return _compile_view(name, generation())


@cache
def _compile_view(name: str, _generation: int
                  ) -> tuple[ir.Pipeline, tuple[tuple[str, Type], ...], tuple[tuple[object, Span], ...]]:
    src = builtin_sources()[name]
    assert src.view is not None
    base = builtin_sources()[src.view.over]
    sink = DiagnosticSink()
    analyzer = Analyzer(src.view.origin, sink)
    program = parse_program(src.view.query, src.view.origin)
    if base.view is not None:  # a view over a view: its rows are the inner view's (expanded recursively)
        inner, cols, inner_spans = compile_view(base.name)
        analyzer.spans.extend(inner_spans)
        start, base_ref = Schema(dict(cols), False, base, base.time_column), ir.SourceRef(base.name,
                                                                                      base.time_column, inner)
    else:
        start, base_ref = open_schema(base), ir.SourceRef(base.name, base.time_column)
    stages, schema = analyzer.lower_program(program, start)
    sink.raise_if_errors()
    pipeline = ir.Pipeline(base_ref, stages, tuple(schema.columns.items()))
    return pipeline, tuple(schema.columns.items()), tuple(analyzer.spans)


def resolve_source(doc: RuleDoc, sink: DiagnosticSink) -> SourceDef:
    data = doc.data
    if "source" in data:
        name = str(data["source"])
        src = builtin_sources().get(name)
        if src is None:
            sink.error(
                f"unknown source {name!r}",
                doc.yaml.span(("source",)),
                hint="sources: " + ", ".join(sorted(builtin_sources())),
                code="source",
            )
            sink.raise_if_errors()
        assert src is not None
        return src
    logsource = data.get("logsource") or {}
    src = source_for_logsource(logsource) if isinstance(logsource, dict) else None
    if src is None:
        text = ", ".join(f"{k}={v}" for k, v in sorted(logsource.items())) if isinstance(logsource, dict) else ""
        sink.note(
            f"no source definition for logsource {text or '(none)'}: fields are untyped",
            doc.yaml.span(("logsource",)),
            code="generic-source",
        )
        return GENERIC
    return src


def compile_doc(doc: RuleDoc, filters: Sequence[RuleDoc] = ()) -> ir.RuleIR:
    """A rule document's IR; `filters`: Sigma filter documents that name it (each ANDed into its detection)."""
    sink = doc.sink
    src = resolve_source(doc, sink)
    spans: list[tuple[object, Span]] = []  # IR node -> its place in the rule (or view), from every analyzer of it
    if src.view is not None:
        view_pipeline, cols, view_spans = compile_view(src.name)
        spans.extend(view_spans)
        schema = Schema(dict(cols), False, src, src.time_column)
        source_ref = ir.SourceRef(src.name, src.time_column, view_pipeline)
    else:
        schema = open_schema(src)
        source_ref = ir.SourceRef(src.name, src.time_column)
    start_schema = schema.copy()
    stages: list[ir.Stage] = []
    if "correlation" in doc.data or "filter" in doc.data:  # compiled with the rules they name: compile_rules
        key = "correlation" if "correlation" in doc.data else "filter"
        sink.error(f"a Sigma {key} is compiled with the rules it names (compile_rules)", doc.yaml.span((key,)),
                   code="sigma")
        sink.raise_if_errors()
    if "detection" in doc.data:
        origin = doc.query_origin or doc.yaml.origin(("title",))
        if origin is None:
            raise CompileError([Diagnostic(Severity.ERROR, "rule has no title", Span(str(doc.path), 1, 1))])
        analyzer = Analyzer(origin, sink, doc.lookups, spans)
        from .sigma import SigmaLowering  # pySigma loads only when a rule has a detection block

        predicate = SigmaLowering(analyzer, doc.yaml, schema).lower(doc.data)
        for flt in filters:  # pySigma: `(original condition) and (filter condition)`
            fanalyzer = Analyzer(flt.yaml.origin(("title",)) or origin, sink, doc.lookups, spans)
            extra = SigmaLowering(fanalyzer, flt.yaml, schema, section="filter").lower(flt.data)
            spans.append((extra, flt.yaml.span(("filter",)) or Span(str(flt.path), 1, 1)))
            predicate = ir.And((*(predicate.operands if isinstance(predicate, ir.And) else (predicate,)), extra))
        stages.append(ir.Filter(predicate))
        detection = doc.yaml.span(("detection",))
        if detection is not None:  # a refusal inside the Sigma detection points at it
            spans.append((stages[-1], detection))
    if doc.query is not None and doc.query_origin is not None:
        analyzer = Analyzer(doc.query_origin, sink, doc.lookups, spans)
        program = parse_program(doc.query, doc.query_origin)
        more, schema = analyzer.lower_program(program, schema)
        stages.extend(more)
    check_outputs(doc, schema, sink)
    sink.raise_if_errors()
    meta = rule_meta(doc)
    columns = None if schema.open else tuple(schema.columns.items())
    pipeline = ir.Pipeline(source_ref, tuple(stages), columns)
    return ir.RuleIR(
        meta,
        pipeline,
        doc.schedule,
        doc.alert,
        doc.entities,
        doc.details,
        tuple(ir.LookupTable(l.name, l.path, l.columns, l.types) for l in doc.lookups.values()),
        str(doc.path),
        tuple(compile_baseline(doc, spec, start_schema, source_ref, spans) for spec in doc.baselines.values()),
        spans=tuple(spans),
    )


def rule_meta(doc: RuleDoc) -> ir.RuleMeta:
    d = doc.data
    return ir.RuleMeta(
        id=doc.id,
        title=doc.title,
        description=str(d.get("description") or "").strip(),
        status=_opt(d.get("status"), lower=True),  # Sigma's words are case-insensitive (pySigma: Stable = stable)
        level=_opt(d.get("level"), lower=True),
        author=_opt(d.get("author")),
        date=_opt(d.get("date")),
        tags=_tuple(d.get("tags")),
        references=_tuple(d.get("references")),
        falsepositives=_tuple(d.get("falsepositives")),
        logsource=tuple(sorted((str(k), str(v)) for k, v in (d.get("logsource") or {}).items()))
        if isinstance(d.get("logsource"), dict)
        else (),
        version=_opt(d.get("version")),
    )


BASELINE_COLUMNS = ("firstTimeSeen", "lastTimeSeen", "enough_data")


def compile_baseline(doc: RuleDoc, spec: BaselineSpec, schema: Schema, source: ir.SourceRef,
                     spans: list[tuple[object, Span]] | None = None) -> ir.Baseline:
    """The pipeline that computes a seen-before table from logs of the rule's own source."""
    sink = doc.sink
    table = doc.lookups[spec.table]
    missing = [c for c in (spec.key, *BASELINE_COLUMNS) if c not in table.columns]
    if missing:
        sink.error(f"lookup {spec.table!r} is filled by a baseline, so it needs the columns "
                   f"{spec.key}, {', '.join(BASELINE_COLUMNS)}; missing: {', '.join(missing)}", spec.span, code="rule")
        sink.raise_if_errors()
    if schema.time_column is None:
        sink.error("a baseline needs a source with an event time", spec.span, code="rule")
        sink.raise_if_errors()
    stages: list[ir.Stage] = []
    origin = spec.where_origin or doc.yaml.origin(("title",))
    assert origin is not None
    analyzer = Analyzer(origin, sink, doc.lookups, spans if spans is not None else [])
    if spec.where is not None:
        program = parse_program("where " + spec.where, _shifted(origin, len("where ")))
        more, _ = analyzer.lower_program(program, schema.copy())
        stages.extend(more)
    key = analyzer.field_column(spec.key, schema, spec.span)
    assert schema.time_column is not None
    time = ir.Column(schema.time_column, (), Type.DATETIME)
    first = ir.Column("firstTimeSeen", (), Type.DATETIME)
    stages.append(ir.Aggregate(
        (ir.Aggregation("firstTimeSeen", ir.AggFn.MIN, time, Type.DATETIME),
         ir.Aggregation("lastTimeSeen", ir.AggFn.MAX, time, Type.DATETIME)),
        (ir.Assignment(spec.key, key),)))
    stages.append(ir.EventAggregate((ir.Aggregation("globalFirstTime", ir.AggFn.MIN, first, Type.DATETIME),), ()))
    cutoff = ir.Arith(ir.ArithOp.SUB, ir.Call("now", (), Type.DATETIME), ir.Literal(spec.warmup, Type.TIMESPAN),
                      Type.DATETIME)
    enough = ir.Case(((ir.Compare(ir.CmpOp.LE, ir.Column("globalFirstTime", (), Type.DATETIME), cutoff),
                       ir.Literal(1, Type.INT)),), ir.Literal(0, Type.INT), Type.INT)
    stages.append(ir.Extend((ir.Assignment("enough_data", enough),)))
    stages.append(ir.Project((spec.key, *BASELINE_COLUMNS)))
    columns = ((spec.key, key.type), ("firstTimeSeen", Type.DATETIME), ("lastTimeSeen", Type.DATETIME),
               ("enough_data", Type.INT))
    sink.raise_if_errors()
    return ir.Baseline(spec.table, spec.key, ir.Pipeline(source, tuple(stages), columns), spec.forget, spec.warmup)


def _shifted(origin: TextOrigin, width: int) -> TextOrigin:
    """Positions in `where <text>` mapped onto <text> as the rule file has it."""
    if origin.block:
        return TextOrigin(origin.file, origin.line, origin.column, True, origin.indent - width)
    return TextOrigin(origin.file, origin.line, origin.column - width, False, 0)


def check_outputs(doc: RuleDoc, schema: Schema, sink: DiagnosticSink) -> None:
    """Entities and details must name columns of the rule's output. Rows straight from a source carry its fields,
    but not its derived fields (aliases), which exist only where a rule names them."""
    if schema.open:
        src = schema.source
        named: list[tuple[tuple[str | int, ...], str]] = [
            (("entities", e.kind, f.identifier), f.column) for e in doc.entities for f in e.fields]
        named += [(("details", name), col) for name, col in doc.details]
        for at, col in named:
            if col in schema.gone and col not in schema.columns:
                sink.error(f"{col!r} is not a column of the output rows: it was {schema.gone[col]}", doc.yaml.span(at),
                           code="rule")
            elif src is not None and col in src.aliases and col not in schema.columns and src.field_type(col) is None:
                sink.error(f"{col!r} is a derived field of source {src.name!r}, not a column of the output rows",
                           doc.yaml.span(at), hint=f"add it to the rows: `| extend {col} = {col}`", code="rule")
        return
    for ent in doc.entities:
        for f in ent.fields:
            if f.column not in schema.columns:
                sink.error(
                    f"entity {ent.kind}.{f.identifier} names {f.column!r}, which is not an output column",
                    doc.yaml.span(("entities", ent.kind, f.identifier)),
                    hint="output columns: " + ", ".join(schema.columns),
                    code="rule",
                )
    for name, col in doc.details:
        if col not in schema.columns:
            sink.error(
                f"detail {name!r} names {col!r}, which is not an output column",
                doc.yaml.span(("details", name)),
                hint="output columns: " + ", ".join(schema.columns),
                code="rule",
            )


def _opt(v: object, lower: bool = False) -> str | None:
    return None if v is None else str(v).lower() if lower else str(v)


def _tuple(v: object) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, list):
        return tuple(str(x) for x in v)
    return (str(v),)


def source_folders(file: Path, given: Sequence[Path] = ()) -> list[Path]:
    """The `sources/` folders read for a rule file without being named (docs/dsl.md, "Your own sources"): the one in
    its folder of rules (`rule_root`), and the one at the top of the checkout or working directory that holds that
    folder — `sources/` beside `rules/`. Only those that exist."""
    root = rule_root(file, given)
    found = [root / "sources"]
    absolute = Path(os.path.abspath(file))
    top = _checkout(absolute.parent)
    if top is None and absolute.is_relative_to(cwd := Path.cwd()):
        top = cwd
    if top is not None and root != top:
        found.append(top / "sources")
    return [f for f in found if f.is_dir()]


def rule_root(file: Path, given: Sequence[Path] = ()) -> Path:
    """The folder of rules `file` belongs to: every file the rule names must be inside it (docs/limits.md).

    For a rule in a checkout (an ancestor folder holds `.git`) or else under the working directory, the top-level
    folder of that checkout (or working directory) that holds it: `rules/` for `rules/x/x.yml`, so rule folders
    share `rules/lookups/`, while `.git/` and the rest of the checkout stay out of reach; a rule file at the top
    level belongs to that folder itself. For a rule elsewhere, the folder given (on the command line) that holds
    it, else the rule's own folder."""
    absolute = Path(os.path.abspath(file))
    top = _checkout(absolute.parent)
    if top is None and absolute.is_relative_to(cwd := Path.cwd()):
        top = cwd
    if top is not None:
        parts = absolute.relative_to(top).parts
        return top / parts[0] if len(parts) > 1 else top
    for g in given:
        g = Path(os.path.abspath(g))
        if absolute.is_relative_to(g) and absolute != g:
            return g
    return absolute.parent


@lru_cache(maxsize=1024)
def _checkout(folder: Path) -> Path | None:
    """The nearest folder at or above `folder` that holds `.git` (a repository or a worktree), if any."""
    if (folder / ".git").exists():
        return folder
    return None if folder.parent == folder else _checkout(folder.parent)


def compile_file(path: Path, cache: RuleCache | None = None, root: Path | None = None) -> CompileResult:
    """Compile one rule file; never raises for a bad rule (the diagnostics say why). Files the rule names must be
    inside `root` (default: `rule_root(path)`).

    With a cache, a rule compiled before from the same bytes comes back without `doc` (the loaded YAML), which
    only `siemforge test` needs; only rules that compiled are cached.
    """
    doc = None
    data = None
    root = rule_root(path) if root is None else root
    try:
        if cache is not None:
            data = read_rule_bytes(path)
            hit = cache.get(path, data)
            real_root = root.resolve()
            if hit is not None and not any(outside_root(Path(t.path), real_root) for t in hit.rule.lookups):
                return CompileResult(path, hit.rule, None, list(hit.diagnostics))
        doc = load_rule(path, data.decode("utf-8") if data is not None else None, root)
        rule = compile_doc(doc)
        if cache is not None and data is not None:
            cache.put(path, data, CacheEntry(rule, tuple(doc.sink.items), dependencies_of(rule)))
        return CompileResult(path, rule, doc, list(doc.sink.items))
    except UnicodeDecodeError as exc:
        return CompileResult(
            path,
            None,
            None,
            [Diagnostic(Severity.ERROR, f"not UTF-8 text: {exc.reason}", Span(str(path), 1, 1), code="rule")],
        )
    except CompileError as exc:
        diags = list(exc.diagnostics)
        if doc is not None:
            for d in doc.sink.items:
                if d not in diags:
                    diags.insert(0, d)
        return CompileResult(path, None, doc, diags)


SKIPPED_FOLDERS = {"fixtures", "lookups", "sources"}  # rule folders' test data and a team's sources, not rules
RULE_SUFFIXES = (".yml", ".yaml")


def discover_rules(paths: list[Path]) -> list[Path]:
    """Rule files under the given files/folders, sorted; fixtures/, lookups/ and sources/ folders are skipped."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found: list[Path] = []
            for root, dirs, names in os.walk(p):  # one scandir per folder; no stat per file
                dirs[:] = [d for d in dirs if d not in SKIPPED_FOLDERS]
                found.extend(Path(root, n) for n in names if os.path.splitext(n)[1] in RULE_SUFFIXES)
            out.extend(f for f in sorted(found) if f.is_file())
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------- rule files of many
# documents: Sigma correlations and filters
_TOP_KEY = re.compile(r"^(correlation|filter)\s*:", re.MULTILINE)


def compile_rules(path: Path, cache: RuleCache | None = None, root: Path | None = None) -> list[CompileResult]:
    """Every rule a file defines, compiled: one for a plain rule file; for a multi-document file (or a correlation
    or filter document), each base rule that generates a query, then each correlation. Never raises for a bad
    rule. A correlation's base rules are found in the same file first, then among the files of the rule root; a
    Sigma filter anywhere under the rule root applies to the rules it names (as pySigma applies a collection's)."""
    root = rule_root(path) if root is None else root
    try:
        text = read_rule_bytes(path).decode("utf-8")
    except (CompileError, UnicodeDecodeError):
        return [compile_file(path, cache, root)]  # reports it
    multi = is_multi_document(text) or bool(_TOP_KEY.search(text))
    others = [f for f in root_filters(root) if not _same_file(f.path, path)]
    if not multi and not any(_may_name(f, text) for f in others):
        return [compile_file(path, cache, root)]
    try:
        docs = load_rules(path, text, root)
    except CompileError as exc:
        return [CompileResult(path, None, None, list(exc.diagnostics))]
    if not multi and not any(filter_applies(f, docs[0]) for f in others):
        return [compile_file(path, cache, root)]
    return _compile_group(path, docs, root, others)


def compile_text(path: Path, text: str, root: Path | None = None) -> list[CompileResult]:
    """Every rule `text` defines, compiled as the file at `path` holding it would be (an editor's unsaved buffer:
    `siemforge lsp`). As compile_rules: never raises for a bad rule."""
    root = rule_root(path) if root is None else root
    multi = is_multi_document(text) or bool(_TOP_KEY.search(text))
    others = [f for f in root_filters(root) if not _same_file(f.path, path)]
    try:
        docs = load_rules(path, text, root)
    except CompileError as exc:
        return [CompileResult(path, None, None, list(exc.diagnostics))]
    if multi or any(filter_applies(f, docs[0]) for f in others):
        return _compile_group(path, docs, root, others)
    return [_compile_base(path, docs[0], [])]


def _same_file(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _may_name(flt: RuleDoc, text: str) -> bool:
    """Whether a filter may name a rule of this text (cheap: it names `any`, or a reference the text spells)."""
    named = filter_rules(flt)
    return named is None or any(ref in text for ref, _ in named)


_FILTER_KEY = re.compile(rb"^filter\s*:", re.MULTILINE)


def _root_files(root: Path) -> list[Path]:
    shallow = (root == Path(os.path.abspath(Path.cwd())) or (root / ".git").exists() or root.parent == root
               or root == Path.home() or root == Path(os.path.abspath(tempfile.gettempdir())))
    if not shallow:
        return discover_rules([root])
    return sorted(f for f in root.iterdir() if f.suffix in RULE_SUFFIXES and f.is_file())


def _root_documents(root: Path, wanted: Callable[[bytes], bool],
                    skip: Path | None = None) -> Iterator[tuple[Path, list[RuleDoc]]]:
    """The documents of each rule file under the root whose bytes `wanted` accepts (a cheap test before loading);
    files that cannot be read or loaded are left out (they are reported when they are compiled themselves).
    A root that is a whole checkout, the working directory, the home or temporary folder, or `/` (a rule file lying
    at the top of one) is not a folder of rules: only the rule files directly in it are read, never its tree."""
    for f in _root_files(root):
        if skip is not None and f.resolve() == skip.resolve():
            continue
        try:
            raw = read_rule_bytes(f)
        except CompileError:
            continue
        if not wanted(raw):
            continue
        try:
            yield f, load_rules(f, raw.decode("utf-8"), root)
        except (CompileError, UnicodeDecodeError):
            continue


@lru_cache(maxsize=16)
def root_filters(root: Path) -> tuple[RuleDoc, ...]:
    """Every Sigma filter document under the rule root, read once per process (files that do not load are reported
    when they are compiled themselves)."""
    out: list[RuleDoc] = []
    for _, docs in _root_documents(root, lambda raw: bool(_FILTER_KEY.search(raw))):
        for d in docs:
            if "filter" in d.data and "correlation" not in d.data:
                try:
                    filter_rules(d)
                except CompileError:
                    continue
                out.append(d)
    return tuple(out)


def _compile_group(path: Path, docs: list[RuleDoc], root: Path, others: list[RuleDoc]) -> list[CompileResult]:
    """`others`: the filters of the rule root's other files."""
    filters = [d for d in docs if "filter" in d.data and "correlation" not in d.data]
    correlations = [d for d in docs if "correlation" in d.data]
    bases = [d for d in docs if d not in filters and d not in correlations]
    out: dict[int, CompileResult] = {}
    for dup in _named_twice([d for d in docs if d not in filters]):  # a reference to it would pick one silently
        out[id(dup)] = CompileResult(path, None, dup, list(dup.sink.items))
        bases = [b for b in bases if b is not dup]
        correlations = [c for c in correlations if c is not dup]
    hidden: set[int] = set()  # base rules a correlation uses without `generate: true`
    for flt in filters:  # a filter that names no rule of this file is reported (filters across files: not yet)
        try:
            named = filter_rules(flt)
        except CompileError as exc:
            out[id(flt)] = CompileResult(path, None, flt, list(exc.diagnostics))
            continue
        if "tests" in flt.data:  # `siemforge test` runs rules' tests; a filter's would never run
            flt.sink.error("a filter has no tests of its own: put them in the document of a rule it filters",
                           flt.yaml.span(("tests",)), code="sigma-filter")
        for ref, at in named or ():
            if not any(ref in rule_names(b) for b in bases) and _find_in_root(root, ref, path, compile=False) is None:
                flt.sink.error(f"filter {flt.title!r} names rule {ref!r}, which is not in this file nor under the "
                                 f"rule root {root}", at, code="sigma-filter")
        if any(d.severity is Severity.ERROR for d in flt.sink.items):
            out[id(flt)] = CompileResult(path, None, flt, list(flt.sink.items))
    base_results = {id(b): _compile_base(path, b, [*filters, *others]) for b in bases}
    for flt in filters:  # a filter's warnings alone fail nothing: they go with the rules of this file it names
        if id(flt) in out or not flt.sink.items:
            continue
        named = filter_rules(flt)  # read without error above
        named_here = bases if named is None else [b for b in bases if {r for r, _ in named} & set(rule_names(b))]
        named_here = named_here or bases[:1]
        for b in named_here:
            have = base_results[id(b)].diagnostics
            have.extend(d for d in flt.sink.items if d not in have)
    compiling: list[int] = []  # the correlations being compiled, outermost first (a cycle is an error)

    def correlation_result(corr: RuleDoc) -> CompileResult:
        if id(corr) in out:
            return out[id(corr)]
        compiling.append(id(corr))
        try:
            out[id(corr)] = _compile_one_correlation(corr)
        finally:
            compiling.pop()
        return out[id(corr)]

    def _compile_one_correlation(corr: RuleDoc) -> CompileResult:
        try:
            c = read_correlation(corr)
        except CompileError as exc:
            return CompileResult(path, None, corr, [*corr.sink.items, *exc.diagnostics])
        used: list[tuple[RuleDoc, CompileResult]] = []
        problems: list[Diagnostic] = []
        carried: list[Diagnostic] = []  # warnings of the rules of this file it hides (they print no result of theirs)
        for ref, at in c.rules:
            local = [b for b in bases if ref in rule_names(b)]
            if local:
                used.append((local[0], base_results[id(local[0])]))
                if not c.generate:
                    hidden.add(id(local[0]))
                    carried.extend(_warnings(base_results[id(local[0])], carried))
                continue
            chained = [x for x in correlations if ref in rule_names(x)]
            if chained:  # a correlation of a correlation: its rows are the other's output rows
                if id(chained[0]) in compiling:
                    problems.append(Diagnostic(Severity.ERROR, f"correlation {ref!r} refers back to itself (through "
                                               "the rules it names)", at, code="sigma-correlation"))
                    continue
                used.append((chained[0], correlation_result(chained[0])))
                if not c.generate:
                    hidden.add(id(chained[0]))
                    carried.extend(_warnings(out[id(chained[0])], carried))
                continue
            found = _find_in_root(root, ref, path)
            if found is None:
                problems.append(Diagnostic(Severity.ERROR, f"no rule with id or name {ref!r} in this file or under "
                                           f"the rule root {root}", at, code="sigma-correlation"))
                continue
            used.append(found)
        for _, base_result in used:
            if base_result.rule is None:
                problems.extend(d for d in base_result.diagnostics if d.severity is Severity.ERROR)
        if problems:
            return CompileResult(path, None, corr, [*carried, *corr.sink.items, *problems])
        try:
            rule = compile_correlation(corr, c, [(d, r.rule) for d, r in used if r.rule is not None])
        except CompileError as exc:
            return CompileResult(path, None, corr, [*carried, *corr.sink.items, *exc.diagnostics])
        return CompileResult(path, rule, corr, [*carried, *corr.sink.items])

    for corr in correlations:
        correlation_result(corr)
    results: list[CompileResult] = []
    for d in docs:
        if id(d) in base_results and id(d) not in hidden:
            results.append(base_results[id(d)])
        elif id(d) in out and (id(d) not in hidden or out[id(d)].rule is None):
            results.append(out[id(d)])
    return results


def _warnings(result: CompileResult, have: list[Diagnostic]) -> list[Diagnostic]:
    """A result's diagnostics short of errors (its errors fail the correlation on their own), not already in `have`."""
    return [d for d in result.diagnostics if d.severity is not Severity.ERROR and d not in have]


def _named_twice(docs: list[RuleDoc]) -> list[RuleDoc]:
    """The rules and correlations whose `id` or `name` an earlier document of the file already has (correlations and
    filters name rules by either), each given an error at that key."""
    seen: dict[str, tuple[str, RuleDoc]] = {}
    out: list[RuleDoc] = []
    for d in docs:
        for key in ("id", "name"):
            value = d.data.get(key)
            if not isinstance(value, str) or not value:
                continue
            if value in seen and seen[value][1] is not d:
                first_key, first = seen[value]
                at = first.yaml.span((first_key,))
                where = f" (line {at.line})" if at is not None else ""
                d.sink.error(f"{key} {value!r} is already the {first_key} of document {first.document}{where}: a "
                             "correlation or filter naming it could not tell the two apart", d.yaml.span((key,)),
                             code="rule", hint="give each rule of the file its own id and name")
                if d not in out:
                    out.append(d)
            else:
                seen.setdefault(value, (key, d))
    return out


def _compile_base(path: Path, doc: RuleDoc, filters: list[RuleDoc]) -> CompileResult:
    """A rule of a multi-document file (or one a filter names), with the filters that name it."""
    applied = []
    try:
        for flt in filters:
            if not filter_applies(flt, doc):
                continue
            mismatch = logsource_mismatch(flt, doc)
            if mismatch is None:
                applied.append(flt)
            elif mismatch.severity is Severity.ERROR:
                raise CompileError([mismatch])
            else:
                doc.sink.items.append(mismatch)
        rule = compile_doc(doc, applied)
    except CompileError as exc:
        diags = list(exc.diagnostics)
        for d in reversed(doc.sink.items):
            if d not in diags:
                diags.insert(0, d)
        return CompileResult(path, None, doc, diags)
    return CompileResult(path, rule, doc, list(doc.sink.items))



def _find_in_root(root: Path, ref: str, skip: Path, compile: bool = True) -> tuple[RuleDoc, CompileResult] | None:
    """The rule `ref` names (id or name) in another file of the rule root, compiled with the filters that name it
    (`compile=False`: found, not compiled)."""
    for f, docs in _root_documents(root, lambda raw: ref.encode() in raw, skip):  # only files spelling the ref
        for d in docs:
            if "correlation" not in d.data and "filter" not in d.data and ref in rule_names(d):
                if not compile:
                    return d, CompileResult(f, None, d)
                filters = [x for x in docs if "filter" in x.data and "correlation" not in x.data]
                filters += [x for x in root_filters(root) if not _same_file(x.path, f)]
                return d, _compile_base(f, d, filters)
    return None


def compile_correlation(doc: RuleDoc, c: Correlation, bases: list[tuple[RuleDoc, ir.RuleIR]]) -> ir.RuleIR:
    """A correlation over its compiled base rules: a SourceUnion of their pipelines, then the windowed
    aggregation and the condition (compiler/correlation.py)."""
    sink = DiagnosticSink()
    spans: list[tuple[object, Span]] = []
    tags: list[str] = []
    branches: list[ir.UnionBranch] = []
    types: dict[str, Type] = {}
    origin = doc.yaml.origin(("title",))
    if origin is None:
        raise CompileError([Diagnostic(Severity.ERROR, "rule has no title", doc.yaml.span(()))])
    for i, (bdoc, base) in enumerate(bases):
        at = c.rules[i][1]
        tag = tag_of(bdoc)
        if tag in tags:
            raise error(f"rule {tag!r} is named twice in the correlation", at, code="sigma-correlation")
        tags.append(tag)
        spans.extend(base.spans)
        analyzer = Analyzer(origin, sink, {}, spans)
        if base.pipeline.source.union is not None:  # a correlation's rows: its window start, group-by and aggregate
            if c.type == "temporal_ordered":
                raise error(f"rule {tag!r} is a correlation: its rows are at their window's start, not at the event "
                            "that completed it, so no order with other events is exact", at,
                            code="sigma-correlation")
            assert base.pipeline.columns is not None
            schema = Schema(dict(base.pipeline.columns), False, None, TIME)
            time_column = TIME
        elif any(isinstance(st, (ir.Aggregate, ir.Project)) for st in base.pipeline.stages):
            raise error(f"rule {bdoc.title!r} aggregates or projects its rows: a correlation reads the events a "
                        "rule matches", at, code="sigma-correlation")
        else:
            src = resolve_source(bdoc, DiagnosticSink())
            if src.time_column is None:
                raise error(f"rule {bdoc.title!r} reads source {src.name!r}, which has no event time to window by",
                            at, code="sigma-correlation")
            schema = (open_schema(src) if src.view is None
                      else Schema(dict(compile_view(src.name)[1]), False, src, src.time_column))
            time_column = src.time_column
        reads: dict[str, ir.Expr] = {TIME: ir.Column(time_column, (), Type.DATETIME)}
        wanted: list[tuple[tuple[str | int, ...], str]] = [(("group-by", j), g) for j, g in enumerate(c.group_by)]
        if c.field:
            wanted.append((("condition", "field"), c.field))
        for key, name in wanted:
            where = doc.yaml.span(("correlation", *key))
            field: str | None = name
            if name in c.aliases:
                per_rule = c.aliases[name]
                field = per_rule.get(tag) or per_rule.get(bdoc.id)
                if field is None:
                    raise error(f"alias {name!r} names no field of rule {tag!r}",
                                doc.yaml.span(("correlation", "aliases", name)), code="sigma-correlation")
            assert field is not None
            e = analyzer.field_column(field, schema, where)
            if where is not None:  # a target that has no column for it points at the correlation's key
                spans.insert(0, (e, where))
            reads[name] = e
            types[name] = e.type if types.get(name, e.type) == e.type else Type.ANY
        sink.raise_if_errors()
        branches.append(branch(base, tag, reads))
        if at is not None:  # a target refusing the branch points at the reference
            spans.append((branches[-1], at))
    for d in sink.items:  # an unknown group-by or value field (a warning, as in a rule): said, not dropped
        if d not in doc.sink.items:
            doc.sink.items.append(d)
    stages = correlation_stages(c, tags, types)
    for st in stages:
        if c.span is not None:
            spans.append((st, c.span))
    out = RESULT_COLUMN[c.type]
    columns = ((TIME, Type.DATETIME), *((g, types.get(g, Type.ANY)) for g in c.group_by),
               (out, Type.INT if c.type in ("event_count", "value_count", "temporal", "temporal_ordered")
                else Type.REAL))
    lookback = doc.schedule.lookback if doc.schedule else timedelta(days=1)  # the targets' default schedule
    if c.timespan > lookback:
        doc.sink.warning(f"the timespan ({c.timespan}) is longer than the schedule's lookback ({lookback}): a "
                         "scheduled run never sees a whole window", doc.yaml.span(("correlation", "timespan")),
                         hint="set `schedule: {every: …, lookback: …}` to at least the timespan",
                         code="sigma-correlation")
    taxonomy = doc.data.get("taxonomy")
    if isinstance(taxonomy, str) and taxonomy.lower() != "sigma":
        doc.sink.warning(f"taxonomy {taxonomy!r}: field names are read as the sources' own (Sigma's taxonomy)",
                         doc.yaml.span(("taxonomy",)), code="sigma-correlation")
    check_outputs(doc, Schema(dict(columns), False, None, TIME), doc.sink)
    doc.sink.raise_if_errors()
    source = ir.SourceRef("sigma.correlation", TIME, None, ir.SourceUnion(tuple(branches), TAG_COLUMN))
    lookups = {t.name: t for _, base in bases for t in base.lookups}  # the base rules' tables (watchlists, …)
    return ir.RuleIR(rule_meta(doc), ir.Pipeline(source, stages, columns), doc.schedule, doc.alert, doc.entities,
                     doc.details, tuple(lookups.values()), str(doc.path), spans=tuple(spans))
