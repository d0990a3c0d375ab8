"""`siemforge export …`: deployable content built as data and dumped (stable key order, byte-identical runs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from siemforge.compiler.diagnostics import CompileError

from .console import err, out, print_diagnostics
from .outputs import OutputDir, OutputError

if TYPE_CHECKING:  # the compiler and the backends are imported by the commands, not by `siemforge --help`
    from siemforge.compiler import ir
    from siemforge.compiler.api import CompileResult

export_app = typer.Typer(
    help="Export deployable content: Sentinel analytic-rule YAML, ARM templates.", no_args_is_help=True
)


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(doc: dict[str, Any]) -> str:
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1_000_000, default_flow_style=False
    )


def dump_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=4, ensure_ascii=False) + "\n"


def _compiled(rules: list[Path], binding: str | None) -> tuple[list[tuple[Path, ir.RuleIR, str]], int]:
    from siemforge.backends.kql.lower import compile_kql
    from siemforge.compiler.api import compile_file, discover_rules, rule_root

    out = []
    failures = 0
    for p in rules:
        if not p.exists():
            err.print(f"{p}: error: no such file or folder", style="bold red", markup=False)
            raise typer.Exit(2)
    for f in discover_rules(rules):
        res = compile_file(f, root=rule_root(f, rules))
        print_diagnostics(res.diagnostics)
        if res.rule is None:
            failures += 1
            continue
        try:
            out.append((f, res.rule, compile_kql(res.rule, binding)))
        except CompileError as exc:
            print_diagnostics(exc.diagnostics)
            failures += 1
    return out, failures


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)


def _write(output: Path, files: Sequence[tuple[str, str | bytes]]) -> None:
    d: OutputDir | None = None
    try:
        d = OutputDir.open(output)
        for name, text in files:
            d.write(name, text)
    except OutputError as exc:
        err.print(f"error: {exc}", style="bold red", markup=False)
        raise typer.Exit(2) from None
    finally:
        if d is not None:
            d.finish()
    out.print(f"wrote {len(files)} file(s) to {output}")


@export_app.command("sentinel-yaml")
def sentinel_yaml(
    rules: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for <id>.yaml files")],
    binding: Annotated[str | None, typer.Option(help="table binding")] = None,
) -> None:
    """Analytic rules in the Azure-Sentinel repository's YAML format, one file per rule."""
    from siemforge.backends.kql.artifacts import analytic_rule_yaml
    from siemforge.backends.kql.lower import sentinel_binding

    items, failures = _compiled(rules, binding)
    files: list[tuple[str, str]] = []
    for _, rule, query in items:
        try:
            doc = analytic_rule_yaml(rule, query, sentinel_binding(rule, binding))
        except CompileError as exc:
            print_diagnostics(exc.diagnostics)
            failures += 1
            continue
        files.append((f"{_slug(rule.meta.id)}.yaml", dump_yaml(doc)))
    _write(output, files)
    if failures:
        raise typer.Exit(1)


@export_app.command("arm")
def arm(
    rules: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the templates")],
    binding: Annotated[str | None, typer.Option(help="table binding")] = None,
    bundle: Annotated[str, typer.Option(help="file name of the template holding the whole rule set")] = "ruleset.json",
) -> None:
    """ARM deployment templates: one per rule (<id>.json) and one for the whole rule set, lookups as watchlists."""
    from siemforge.backends.kql.artifacts import alert_rule_resource, arm_template

    items, failures = _compiled(rules, binding)
    good: list[tuple[ir.RuleIR, str]] = []
    files: list[tuple[str, str]] = []
    for _, rule, query in items:
        try:
            alert_rule_resource(rule, query, binding)  # validates durations, entities, operators
        except CompileError as exc:
            print_diagnostics(exc.diagnostics)
            failures += 1
            continue
        good.append((rule, query))
        files.append((f"{_slug(rule.meta.id)}.json", dump_json(arm_template([(rule, query)], binding))))
    if good:
        files.append((bundle, dump_json(arm_template(good, binding))))
    _write(output, files)
    if failures:
        raise typer.Exit(1)


def _compile_results(rules: list[Path]) -> tuple[list[CompileResult], int]:
    """The rules that compile (diagnostics printed), and how many did not."""
    from siemforge.compiler.api import compile_file, discover_rules, rule_root

    good: list[CompileResult] = []
    failures = 0
    for f in discover_rules(rules):
        res = compile_file(f, root=rule_root(f, rules))
        print_diagnostics(res.diagnostics)
        if res.rule is None:
            failures += 1
            continue
        good.append(res)
    return good, failures


def _compiled_rules(rules: list[Path]) -> tuple[list[ir.RuleIR], int]:
    good, failures = _compile_results(rules)
    return [r.rule for r in good if r.rule is not None], failures


def _splunk_ready(results: list[CompileResult], binding: str | None) -> tuple[list[CompileResult], int]:
    """The rules that lower to SPL on `binding`; the others are reported (the export goes on without them)."""
    from siemforge.backends.spl.lower import compile_spl

    ready: list[CompileResult] = []
    failures = 0
    for res in results:
        assert res.rule is not None
        try:
            compile_spl(res.rule, binding)
        except CompileError as exc:
            print_diagnostics([d.in_file(res.path) for d in exc.diagnostics])
            failures += 1
            continue
        ready.append(res)
    return ready, failures


@export_app.command("splunk-app")
def splunk_app(
    rules: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the app folder and its .tgz")],
    binding: Annotated[str | None, typer.Option(help="Splunk binding (default: each source's default)")] = None,
    app_id: Annotated[str, typer.Option(help="the app's folder name and id")] = "siemforge_content",
) -> None:
    """A Splunk app: savedsearches.conf (one stanza per rule), macros, lookups, metadata, and a .tgz of it."""
    from siemforge.backends.spl.app import AppSpec, build_app, package

    results, failures = _compile_results(rules)
    results, unlowered = _splunk_ready(results, binding)
    failures += unlowered
    good = [r.rule for r in results if r.rule is not None]
    try:
        files = build_app(good, binding, AppSpec(app_id=app_id))
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None
    out_files: list[tuple[str, str | bytes]] = [(f"{app_id}/{rel}", data) for rel, data in sorted(files.items())]
    out_files.append((f"{app_id}.tgz", package(app_id, files)))
    _write(output, out_files)
    if failures:
        raise typer.Exit(1)


@export_app.command("contentctl")
def contentctl_pack(
    rules: Annotated[list[Path], typer.Argument(help="rule files or folders")],
    output: Annotated[Path, typer.Option("-o", "--output", help="an empty (or siemforge-written) folder; copy it "
                                                                   "over a `contentctl init` pack")],
    binding: Annotated[str | None, typer.Option(help="Splunk binding (default: each source's default)")] = None,
) -> None:
    """A contentctl 5.x content pack (detections with their fixture tests, baselines, macros, lookups, stories,
    data_sources). Copy it over a `contentctl init` pack and run contentctl there (test data paths are relative to
    the pack folder)."""
    from siemforge.backends.spl.contentctl import build_pack

    results, failures = _compile_results(rules)
    results, unlowered = _splunk_ready(results, binding)
    failures += unlowered
    good = [r.rule for r in results if r.rule is not None]
    tests = {r.rule.meta.id: r.doc.tests for r in results if r.rule is not None and r.doc is not None}
    paths = {r.rule.meta.id: r.path for r in results if r.rule is not None}
    left_out: list[str] = []

    def refuse(rule: ir.RuleIR, why: str) -> None:
        err.print(f"error: {paths[rule.meta.id]}: {rule.meta.title}: {why}", style="bold red", markup=False)
        left_out.append(rule.meta.id)

    def note(rule: ir.RuleIR, text: str) -> None:
        err.print(f"note: {paths[rule.meta.id]}: {rule.meta.title}: {text}", style="cyan", markup=False)

    try:
        files = build_pack(good, binding, tests, on_error=refuse, on_note=note)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None
    failures += len(left_out)
    _write(output, sorted(files.items()))
    if failures:
        raise typer.Exit(1)
