"""`siemforge build`: the whole main job in one command, through the same functions as the single commands.

Every rule is compiled once; then its tests run (`siemforge test`), it is lowered for every registered target and
each configured binding (`compile --target all -o DIR/compiled`: a target registered later is built by itself), the
exports are written (`export arm`, `sentinel-yaml`, `splunk-app`, `contentctl`, into DIR/arm, DIR/sentinel,
DIR/splunk, DIR/contentctl), and the Sentinel queries are checked with Kusto.Language (`validate`). A rule that
fails one step is reported and left out of that step; the others go on. One summary at the end, a table or JSON
(`--format json`); the exit code is 1 when anything failed, 2 for bad usage or a bad `siemforge.toml`.

`siemforge.toml` (optional; `--config FILE`, else found in the working directory, else in the folder of the rules
named or its parent), all keys optional, paths relative to the file:

    [build]
    rules = ["rules"]                       # default: rules/
    output = "out"                          # default: out/ (-o overrides)
    targets = ["executor", "sentinel", "splunk"]   # default: every registered target
    exports = ["arm", "sentinel-yaml", "splunk-app", "contentctl"]   # default: all; [] for none
    tests = true                            # run the rules' tests
    validate = true                         # check the Sentinel queries with Kusto.Language

    [build.bindings]                        # per target: the bindings to compile (default: each source's default);
    sentinel = ["xdr", "SecurityEvent"]     # the first is the one the exports and the check use
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from siemforge.compiler.diagnostics import CompileError, Diagnostic, Severity

from .console import cell, err, out, print_diagnostics, styled
from .outputs import MANIFEST, OutputDir, OutputError, slug
from .progress import Steps, steps, wanted
from .rules import SourceDirs, require_paths, use_sources

if TYPE_CHECKING:
    from siemforge.backends.executor.testing import RuleTestReport
    from siemforge.backends.registry import Target
    from siemforge.compiler.api import CompileResult

    from .export import Files, Refused

CONFIG_NAME = "siemforge.toml"


class BuildFormat(str, Enum):
    table = "table"
    json = "json"


# ------------------------------------------------------------------------------------------------- configuration


@dataclass(slots=True)
class BuildConfig:
    rules: list[Path]
    output: Path
    targets: list[str] | None = None  # None: every registered target
    bindings: dict[str, list[str]] = field(default_factory=dict)
    exports: list[str] | None = None  # None: every export
    tests: bool = True
    validate: bool = True
    file: Path | None = None
    text: str = ""  # the config file's text, for the position of a bad value


class ConfigError(Exception):
    def __init__(self, file: Path, line: int, column: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{column}: error: {message}")


_TOML_AT = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_KEYS = {"rules", "output", "targets", "exports", "tests", "validate", "bindings"}


def find_config(given: list[Path]) -> Path | None:
    """`siemforge.toml` in the working directory, else beside the first rule folder named (or in its parent)."""
    candidates = [Path(CONFIG_NAME)]
    if given:
        first = given[0] if given[0].is_dir() else given[0].parent
        candidates += [first / CONFIG_NAME, first.parent / CONFIG_NAME]
    return next((c for c in candidates if c.is_file()), None)


def _where(text: str, key: str, section: str = "build") -> tuple[int, int]:
    """Line and column of `key = …` in `text` (in `[section]` when it can be told), for a message about its value."""
    lines = text.splitlines()
    pattern = re.compile(rf"^\s*(?:{re.escape(section)}\.)?\"?{re.escape(key)}\"?\s*=")
    current = ""
    for i, line in enumerate(lines, 1):
        head = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
        if head:
            current = head[1]
            continue
        if current == section and pattern.match(line):
            return i, len(line) - len(line.lstrip()) + 1
    for i, line in enumerate(lines, 1):  # a dotted key outside its table: build.tests = …
        m = re.match(rf"^\s*{re.escape(section)}\.{re.escape(key)}\s*=", line)
        if m:
            return i, len(line) - len(line.lstrip()) + 1
    return 1, 1


def _table_at(text: str, name: str) -> tuple[int, int]:
    """Line and column of the table header `[name…]` (or of a key `name.x = …`, `name = …`) in `text`."""
    pattern = re.compile(rf"^\s*(?:\[+\s*\"?{re.escape(name)}\"?\s*[\].]|\"?{re.escape(name)}\"?\s*[.=])")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return i, len(line) - len(line.lstrip()) + 1
    return 1, 1


def load_config(path: Path) -> dict[str, Any]:
    """The `[build]` table of a siemforge.toml; ConfigError naming file, line and column."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(path, 1, 1, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, 1, 1, f"not UTF-8 text: {exc.reason}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_AT.match(str(exc))
        if m:
            raise ConfigError(path, int(m["line"]), int(m["col"]), f"not valid TOML: {m['msg']}") from None
        if str(exc).endswith(" (at end of document)"):
            lines = text.split("\n")
            raise ConfigError(path, len(lines), len(lines[-1]) + 1,
                              f"not valid TOML: {str(exc).removesuffix(' (at end of document)')}") from None
        raise ConfigError(path, 1, 1, f"not valid TOML: {exc}") from None
    for table in doc:
        if table != "build":  # a misspelt [build] would otherwise build with every default, silently
            value = doc[table]
            is_table = isinstance(value, dict) or isinstance(value, list) and value and isinstance(value[0], dict)
            what = f"table [{table}]" if is_table else f"key {table!r}"
            raise ConfigError(path, *_table_at(text, table), f"unknown {what}; siemforge.toml has one table, [build]")
    build = doc.get("build", {})
    if not isinstance(build, dict):
        raise ConfigError(path, *_where(text, "build", ""), "`build` must be a table ([build])")
    for key in build:
        if key not in _KEYS:
            raise ConfigError(path, *_where(text, key), f"unknown key {key!r} in [build]; known: "
                              + ", ".join(sorted(_KEYS)))

    def strings(key: str, value: object, section: str = "build") -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(path, *_where(text, key, section), f"{key} must be a string or a list of strings")
        return list(value)

    found: dict[str, Any] = {}
    for key in ("rules", "targets", "exports"):
        if key in build:
            found[key] = strings(key, build[key])
    if "output" in build:
        if not isinstance(build["output"], str):
            raise ConfigError(path, *_where(text, "output"), "output must be a string (a folder)")
        found["output"] = build["output"]
    for key in ("tests", "validate"):
        if key in build:
            if not isinstance(build[key], bool):
                raise ConfigError(path, *_where(text, key), f"{key} must be true or false")
            found[key] = build[key]
    if "bindings" in build:
        if not isinstance(build["bindings"], dict):
            raise ConfigError(path, *_where(text, "bindings"), "bindings must be a table ([build.bindings])")
        found["bindings"] = {t: strings(t, v, "build.bindings") for t, v in build["bindings"].items()}
    found["_text"] = text
    return found


def resolve_config(rules: list[Path] | None, output: Path | None, config: Path | None) -> BuildConfig:
    """The command line over the config file over the defaults (names are checked by check_names)."""
    file = config if config is not None else find_config(rules or [])
    raw: dict[str, Any] = {}
    if file is not None:
        if not file.is_file():
            raise ConfigError(file, 1, 1, "no such file")
        raw = load_config(file)
    base = file.parent if file is not None else Path(".")

    def rel(p: str) -> Path:
        path = Path(p)
        return path if path.is_absolute() or base == Path(".") else base / path

    cfg = BuildConfig(
        rules=rules or [rel(p) for p in raw.get("rules", ["rules"])],
        output=output or rel(raw.get("output", "out")),
        targets=raw.get("targets"),
        bindings=raw.get("bindings", {}),
        exports=raw.get("exports"),
        tests=raw.get("tests", True),
        validate=raw.get("validate", True),
        file=file,
    )
    cfg.text = raw.get("_text", "")
    return cfg


def check_names(cfg: BuildConfig) -> None:
    """The config's target, binding and export names exist (bindings: the user's own too, so after use_sources).
    Names come only from a config file, so a ConfigError names it."""
    from siemforge.backends.registry import targets

    registry = targets()
    file = cfg.file or Path(CONFIG_NAME)

    def fail(key: str, section: str, message: str) -> ConfigError:
        return ConfigError(file, *_where(cfg.text, key, section), message)

    for name in cfg.targets or []:
        if name not in registry:
            raise fail("targets", "build", f"unknown target {name!r}; targets: {', '.join(registry)}")
    for name, names in cfg.bindings.items():
        if name not in registry:
            raise fail(name, "build.bindings", f"unknown target {name!r}; targets: {', '.join(registry)}")
        known = _binding_names(registry[name])
        for b in names:
            if b not in known:
                raise fail(name, "build.bindings", f"target {name!r} has no binding {b!r}; bindings: "
                           + ", ".join(known))
    for name in cfg.exports or []:
        if name not in EXPORTS:
            raise fail("exports", "build", f"unknown export {name!r}; exports: {', '.join(EXPORTS)}")


def _binding_names(tgt: Target) -> list[str]:
    """A target's bindings and the user's own for it, as `compile --binding` accepts them."""
    from siemforge.compiler.bindings import builtin_bindings

    return [*tgt.bindings, *sorted({b.name for b in builtin_bindings().values()
                                    if b.user and b.target == tgt.name and b.name not in tgt.bindings})]


# ------------------------------------------------------------------------------------------------- exports


@dataclass(frozen=True, slots=True)
class Export:
    target: str  # the target whose queries it packs: built from the rules that lowered there
    folder: str  # under the output folder
    files: Callable[[list[CompileResult], str | None, Refused], tuple[Files, int]]


def _sentinel_yaml(results: list[CompileResult], binding: str | None, on_refusal: Refused) -> tuple[Files, int]:
    from .export import sentinel_yaml_files

    return sentinel_yaml_files(results, binding, on_refusal)


def _arm(results: list[CompileResult], binding: str | None, on_refusal: Refused) -> tuple[Files, int]:
    from .export import arm_files

    return arm_files(results, binding, on_refusal=on_refusal)


def _splunk_app(results: list[CompileResult], binding: str | None, on_refusal: Refused) -> tuple[Files, int]:
    from .export import splunk_app_files

    return splunk_app_files(results, binding, on_refusal=on_refusal)


def _contentctl(results: list[CompileResult], binding: str | None, on_refusal: Refused) -> tuple[Files, int]:
    from .export import contentctl_files

    return contentctl_files(results, binding, on_refusal)


# the `siemforge export` commands, each with the folder the README's chain of commands wrote it to
EXPORTS: dict[str, Export] = {
    "arm": Export("sentinel", "arm", _arm),
    "sentinel-yaml": Export("sentinel", "sentinel", _sentinel_yaml),
    "splunk-app": Export("splunk", "splunk", _splunk_app),
    "contentctl": Export("splunk", "contentctl", _contentctl),
}


# ------------------------------------------------------------------------------------------------- the build


@dataclass(slots=True)
class Problem:
    """One thing that failed, for the summary: where (a rule file, a step), and why."""

    step: str
    where: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"step": self.step, "where": self.where, "reason": self.reason}


@dataclass(slots=True)
class Summary:
    rules: int = 0  # rules compiled (a file of several rules counts each)
    files: int = 0
    rule_errors: list[Problem] = field(default_factory=list)
    tests_passed: int = 0
    tests_failed: list[Problem] = field(default_factory=list)
    untested: int = 0
    # (target, binding or "default") -> queries written, refusals
    queries: dict[tuple[str, str], int] = field(default_factory=dict)
    refusals: list[Problem] = field(default_factory=list)
    validated: int | None = None
    validate_errors: list[Problem] = field(default_factory=list)
    artifacts: dict[str, tuple[str, int]] = field(default_factory=dict)  # export -> (folder, files written)
    errors: list[Problem] = field(default_factory=list)  # outputs that could not be written, a check that could not run
    reports: list[RuleTestReport] = field(default_factory=list)  # the tests run, for --junit
    prune: bool = False  # remove the stale files instead of listing them
    stale: list[str] = field(default_factory=list)  # files an earlier build wrote that this one did not
    pruned: list[str] = field(default_factory=list)  # those removed (--prune)
    held: list[str] = field(default_factory=list)  # why --prune left stale files where they are

    @property
    def failed(self) -> bool:
        return bool(self.rule_errors or self.tests_failed or self.refusals or self.validate_errors or self.errors
                    or not self.files)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": not self.failed,
            "rule_files": self.files,
            "rules": self.rules,
            "rule_errors": [p.as_json() for p in self.rule_errors],
            "tests": {"passed": self.tests_passed, "failed": len(self.tests_failed),
                      "rules_without_tests": self.untested, "failures": [p.as_json() for p in self.tests_failed]},
            "queries": [{"target": t, "binding": b, "queries": n} for (t, b), n in self.queries.items()],
            "refusals": [p.as_json() for p in self.refusals],
            "validate": None if self.validated is None else {
                "checked": self.validated, "with_errors": len(self.validate_errors),
                "errors": [p.as_json() for p in self.validate_errors]},
            "artifacts": [{"export": name, "folder": folder, "files": n}
                          for name, (folder, n) in self.artifacts.items()],
            "errors": [p.as_json() for p in self.errors],
            "stale": self.stale,
            "pruned": self.pruned,
            "held": self.held,
        }


def _problem(step: str, path: Path | str, diags: list[Diagnostic]) -> Problem:
    """The summary's line for a rule that failed a step: its first error, where it points (else the rule's file)."""
    d = next((d for d in diags if d.severity is Severity.ERROR), diags[0] if diags else None)
    if d is None:
        return Problem(step, str(path), "failed")
    return Problem(step, str(d.span) if d.span else str(path), d.message)


class _Writer:
    """One output folder of the build (DIR/compiled, DIR/arm, …), opened on first write; a file that cannot be written
    is a problem of the summary, and the build goes on."""

    def __init__(self, root: Path, summary: Summary, step: str) -> None:
        self.root = root
        self.summary = summary
        self.step = step
        self.dir: OutputDir | None = None
        self.count = 0
        self.broken = False

    def write(self, relative: str, data: str | bytes) -> None:
        if self.broken:
            return
        try:
            if self.dir is None:
                self.dir = OutputDir.open(self.root)
            self.dir.write(relative, data)
            self.count += 1
        except OutputError as exc:
            err.print(f"error: {exc}", style="bold red", markup=False)
            self.summary.errors.append(Problem(self.step, str(self.root), str(exc)))
            if self.dir is None:
                self.broken = True

    def finish(self) -> None:
        """Record what was written; list (or with --prune remove) what an earlier build wrote here and this one did
        not: the outputs of rules deleted or renamed since, which a deployment of the folder would still ship."""
        if self.dir is None and not self.broken and (self.root / MANIFEST).is_file():
            try:
                self.dir = OutputDir.open(self.root)
            except OutputError:
                return
        if self.dir is None:
            return
        # a build that could not compile a rule (or write a file) did not write its files: they may be those of a rule
        # broken only for now, not deleted, so --prune removes nothing then (they are listed). A refusal does not hold
        # it: the rule as it is now has no output on that target, and a corpus may always hold refused rules
        failed = bool(self.summary.rule_errors or self.summary.errors)
        for relative in self.dir.stale():
            where = str(self.root / relative)
            link = os.path.islink(where)
            edited = not link and self.dir.changed(relative)
            if not self.summary.prune or failed or link or edited:
                self.summary.stale.append(where)
                why = ("not removed: a symlink (siemforge removes only files it wrote)" if link else
                       "not removed: changed since siemforge wrote it (yours now)" if edited else
                       "not pruned: this build has errors, and a rule that does not compile now may be one that did")
                if self.summary.prune and why not in self.summary.held:
                    self.summary.held.append(why)
                continue
            try:
                self.dir.remove(relative)
                self.summary.pruned.append(where)
            except OutputError as exc:
                err.print(f"error: {exc}", style="bold red", markup=False)
                self.summary.errors.append(Problem(self.step, where, str(exc)))
        self.dir.finish()


def run_build(cfg: BuildConfig, sources: list[Path] | None, progress: Steps, prune: bool = False) -> Summary:
    from siemforge.backends.registry import targets
    from siemforge.compiler.api import compile_rules, discover_rules, rule_root

    summary = Summary(prune=prune)
    require_paths(cfg.rules)
    use_sources(sources, cfg.rules)
    check_names(cfg)
    files = [f for f in discover_rules(cfg.rules) if not _inside(f, cfg.output)]  # not what an earlier build wrote
    summary.files = len(files)
    if not files:
        err.print("error: no rule files found", style="bold red")
        summary.errors.append(Problem("rules", ", ".join(map(str, cfg.rules)), "no rule files found"))
        return summary

    # compile every rule once
    progress.step("compiling rules", len(files))
    good: list[CompileResult] = []
    printed: list[Diagnostic] = []
    with_tests: list[Path] = []
    for f in files:
        results = compile_rules(f, root=rule_root(f, cfg.rules))
        for res in results:
            print_diagnostics(res.diagnostics)
            printed.extend(res.diagnostics)
            if res.rule is None:
                summary.rule_errors.append(_problem("compile", f, res.diagnostics))
                continue
            summary.rules += 1
            good.append(res)
            if res.doc is not None and not res.doc.tests:
                summary.untested += 1
        if any(res.rule is not None and res.doc is not None and res.doc.tests for res in results):
            with_tests.append(f)
        progress.advance()

    if cfg.tests:
        _run_tests(with_tests, cfg, summary, printed, progress)

    registry = targets()
    chosen = [registry[n] for n in (cfg.targets or registry)]
    compiled = _Writer(cfg.output / "compiled", summary, "compile")
    ready: dict[str, list[CompileResult]] = {}  # target -> the rules that lowered on its first binding
    sentinel: list[tuple[CompileResult, str]] = []
    for tgt in chosen:
        bindings: list[str | None] = list(cfg.bindings.get(tgt.name, [])) or [None]
        for i, binding in enumerate(bindings):
            progress.step(f"compiling for {tgt.name}" + (f" ({binding})" if binding else ""), len(good))
            key = (tgt.name, binding or "default")
            summary.queries[key] = 0
            folder = f"{tgt.name}/{slug(binding)}/" if binding is not None else f"{tgt.name}/"
            for res in good:
                assert res.rule is not None
                try:
                    query = tgt.compile(res.rule, binding)
                except CompileError as exc:
                    print_diagnostics([d.in_file(res.path) for d in exc.diagnostics])
                    summary.refusals.append(_problem(tgt.name + (f" ({binding})" if binding else ""), res.path,
                                                     exc.diagnostics))
                    progress.advance()
                    continue
                compiled.write(f"{folder}{slug(res.rule.meta.id)}.{tgt.extension}", query + "\n")
                summary.queries[key] += 1
                if i == 0:
                    ready.setdefault(tgt.name, []).append(res)
                    if tgt.name == "sentinel":
                        sentinel.append((res, query))
                progress.advance()
    compiled.finish()
    if compiled.count:
        summary.artifacts["compiled"] = (str(cfg.output / "compiled"), compiled.count)

    chosen_names = {t.name for t in chosen}
    for name in cfg.exports if cfg.exports is not None else list(EXPORTS):
        export = EXPORTS[name]
        if export.target not in chosen_names:
            continue
        progress.step(f"export {name}", None)
        _export(name, export, ready.get(export.target, []), cfg, summary)

    if cfg.validate and "sentinel" in chosen_names and sentinel:
        progress.step("checking KQL with Kusto.Language", None)
        _validate(sentinel, summary)
    return summary


def _inside(file: Path, folder: Path) -> bool:
    return Path(os.path.abspath(file)).is_relative_to(os.path.abspath(folder))


def _rule_name(res: CompileResult) -> str:
    title = res.rule.meta.title if res.rule is not None else ""
    return f"{res.path}: {title}" if title else str(res.path)


def _run_tests(files: list[Path], cfg: BuildConfig, summary: Summary, printed: list[Diagnostic],
               progress: Steps) -> None:
    """`siemforge test` on the files with tests; diagnostics already shown by the compile are not shown again."""
    from siemforge.backends.executor.testing import run_rule_tests
    from siemforge.compiler.api import rule_root

    progress.step("running tests", len(files))
    for f in files:
        rep = run_rule_tests(f, rule_root(f, cfg.rules))
        summary.reports.append(rep)
        print_diagnostics([d for d in rep.diagnostics if d not in printed])
        for o in rep.outcomes:
            for m in o.malformed[:5]:
                err.print(str(m), style="yellow", markup=False)
            if o.passed:
                summary.tests_passed += 1
            else:
                summary.tests_failed.append(Problem("test", f"{f}: {o.rule_title}: {o.name}", o.detail))
        progress.advance()


def _export(name: str, export: Export, results: list[CompileResult], cfg: BuildConfig, summary: Summary) -> None:
    bindings: list[str | None] = [*cfg.bindings.get(export.target, [])] or [None]

    def refused(res: CompileResult, exc: CompileError) -> None:
        print_diagnostics([d.in_file(res.path) for d in exc.diagnostics])
        summary.refusals.append(_problem(f"export {name}", _rule_name(res), exc.diagnostics))

    try:
        files, _ = export.files(results, bindings[0], refused)
    except CompileError as exc:  # the package as a whole cannot be built
        print_diagnostics(exc.diagnostics)
        summary.errors.append(_problem(f"export {name}", cfg.output / export.folder, exc.diagnostics))
        return
    writer = _Writer(cfg.output / export.folder, summary, f"export {name}")
    for rel, data in files:
        writer.write(rel, data)
    writer.finish()
    summary.artifacts[name] = (str(cfg.output / export.folder), writer.count)


def _validate(queries: list[tuple[CompileResult, str]], summary: Summary) -> None:
    """`siemforge validate --target sentinel` on the queries compiled for the first Sentinel binding."""
    from siemforge.backends.kql.validate import check_queries

    named = [(r.rule.meta.title if r.rule is not None else str(r.path), q) for r, q in queries]
    lookups = [t for r, _ in queries if r.rule is not None for t in r.rule.lookups]
    try:
        checked = check_queries(named, lookups)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        summary.errors.append(_problem("validate", "Kusto.Language", exc.diagnostics))
        return
    summary.validated = len(queries)
    for (res, query), diags in zip(queries, checked):
        errors = [d for d in diags if d.severity == "Error"]
        lines = query.splitlines()
        for d in errors:  # as `siemforge validate` shows them
            err.print(f"{res.path}: query {d.line}:{d.column}: error {d.code}: {d.message}", style="bold red",
                      markup=False, highlight=False)
            line = lines[d.line - 1] if d.line - 1 < len(lines) else ""
            err.print(f"    {line}\n    {' ' * (d.column - 1)}{'^' * max(d.length, 1)}", markup=False, highlight=False)
        if errors:
            d = errors[0]
            summary.validate_errors.append(Problem("validate", _rule_name(res),
                                                   f"query {d.line}:{d.column}: {d.code}: {d.message}"))


# ------------------------------------------------------------------------------------------------- the summary


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def print_summary(s: Summary, cfg: BuildConfig) -> None:
    t = Table(title="siemforge build")
    t.add_column("step")
    t.add_column("result")
    t.add_column("detail", overflow="fold")

    def problems(step: str, ps: list[Problem], ok_text: str, bad_text: str) -> None:
        t.add_row(step, styled(bad_text, "bold red") if ps else styled(ok_text, "green"),
                  cell(f"{ps[0].where}: {ps[0].reason}") if ps else "")
        for p in ps[1:]:
            t.add_row("", "", cell(f"{p.where}: {p.reason}"))

    problems("rules", s.rule_errors, f"{s.rules} compiled ({s.files} files)",
             f"{s.rules} compiled, {len(s.rule_errors)} with errors")
    if cfg.tests:
        untested = f", {s.untested} rule(s) without tests" if s.untested else ""
        problems("tests", s.tests_failed, f"{s.tests_passed} passed{untested}",
                 f"{s.tests_passed} passed, {len(s.tests_failed)} failed{untested}")
    for (target, binding), n in s.queries.items():
        step = target + ("" if binding == "default" else f" ({binding})")
        ps = [p for p in s.refusals if p.step == step]
        queries = _count(n, "query", "queries")
        problems(f"compile {step}", ps, queries, f"{queries}, {len(ps)} refused")
    for name, (folder, n) in s.artifacts.items():
        ps = [p for p in s.refusals if p.step == f"export {name}"]
        step = "write compiled" if name == "compiled" else f"export {name}"
        files = _count(n, "file", "files")
        problems(step, ps, f"{files} → {folder}", f"{files} → {folder}, {len(ps)} rule(s) left out")
    if s.validated is not None:
        problems("validate sentinel", s.validate_errors, f"{s.validated} queries clean (Kusto.Language)",
                 f"{len(s.validate_errors)} of {s.validated} queries with errors")
    if s.errors:
        problems("errors", s.errors, "", f"{len(s.errors)}")
    if s.stale:
        t.add_row("stale outputs", styled(f"{_count(len(s.stale), 'file', 'files')} from an earlier build", "yellow"),
                  cell(", ".join(s.stale[:5]) + (f", … ({len(s.stale) - 5} more)" if len(s.stale) > 5 else "")
                       + (f" — {'; '.join(s.held)}" if s.held
                          else " — rules deleted or renamed since? `--prune` removes them")))
    if s.pruned:
        t.add_row("pruned", _count(len(s.pruned), "file", "files") + " an earlier build wrote",
                  cell(", ".join(s.pruned[:5]) + (f", … ({len(s.pruned) - 5} more)" if len(s.pruned) > 5 else "")))
    out.print(t)
    if s.failed:
        parts = [f"{len(s.rule_errors)} rule(s) with errors" if s.rule_errors else "",
                 f"{len(s.tests_failed)} test(s) failed" if s.tests_failed else "",
                 f"{len(s.refusals)} refusal(s)" if s.refusals else "",
                 f"{len(s.validate_errors)} query(ies) with KQL errors" if s.validate_errors else "",
                 f"{len(s.errors)} error(s)" if s.errors else ""]
        out.print(styled("build failed: " + ", ".join(p for p in parts if p), "bold red"))
    else:
        out.print(styled("build ok", "green"))


def build(
    rules: Annotated[list[Path] | None, typer.Argument(
        help="rule files or folders (default: the config's rules, else rules/)", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="output folder (default: the config's output, else out/); files siemforge did not "
        "write are never overwritten", show_default=False)] = None,
    format: Annotated[BuildFormat, typer.Option("--format", help="table, or json (for CI)")] = BuildFormat.table,
    config: Annotated[Path | None, typer.Option(
        "--config", help=f"the build's settings (default: {CONFIG_NAME} here or beside the rules)",
        show_default=False)] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="write the tests' JUnit XML report here")] = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="remove the files an earlier build wrote in the output folders and this build did not (the "
        "outputs of deleted or renamed rules); only files siemforge recorded as its own")] = False,
    sources: SourceDirs = None,
) -> None:
    """Build everything: test every rule, compile it for every target, write every export, check the KQL."""
    try:
        cfg = resolve_config(rules, output, config)
    except ConfigError as exc:
        err.print(str(exc), style="bold red", markup=False)
        raise typer.Exit(2) from None
    if not rules and cfg.file is None and not cfg.rules[0].exists():
        err.print(f"error: no {cfg.rules[0]}/ folder here: name the rules (siemforge build RULES…) or set `rules` in "
                  f"[build] of a {CONFIG_NAME}", style="bold red", markup=False)
        raise typer.Exit(2)
    if cfg.output.exists() and not cfg.output.is_dir():
        err.print(f"{cfg.output}: error: the output folder is a file", style="bold red", markup=False)
        raise typer.Exit(2)
    try:
        with steps(wanted(format is BuildFormat.json)) as progress:
            summary = run_build(cfg, sources, progress, prune)
    except ConfigError as exc:
        err.print(str(exc), style="bold red", markup=False)
        raise typer.Exit(2) from None
    if junit is not None:
        from .junit import write_junit

        try:
            write_junit(junit, summary.reports)
        except OSError as exc:
            err.print(f"{junit}: error: cannot write the JUnit report: {exc.strerror or exc}", style="bold red",
                      markup=False)
            raise typer.Exit(2) from None
        err.print(f"JUnit report: {junit}", markup=False)
    if format is BuildFormat.json:
        sys.stdout.write(orjson.dumps(summary.as_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print_summary(summary, cfg)
    if summary.failed:
        raise typer.Exit(1)
