"""`siemforge export …`: deployable content built as data and dumped (stable key order, byte-identical runs)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import yaml

from siemforge.compiler.diagnostics import CompileError, Diagnostic, Severity

from .console import err, out, print_diagnostics
from .outputs import slug, writing_to
from .rules import RuleFiles, SentinelBinding, SourceDirs, SplunkBinding, compiled_rules, lowered

if TYPE_CHECKING:  # the compiler and the backends are imported by the commands, not by `siemforge --help`
    from siemforge.compiler import ir
    from siemforge.compiler.api import CompileResult

T = TypeVar("T")

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


Files = list[tuple[str, str | bytes]]  # (path inside the output folder, content)
Refused = Callable[["CompileResult", CompileError], None]  # told of each rule an export leaves out, and why


def _kql(results: list[CompileResult], binding: str | None, artifact: Callable[[ir.RuleIR, str], T],
         on_refusal: Refused | None = None) -> tuple[list[tuple[ir.RuleIR, str, T]], int]:
    """Each compiled rule with its KQL query on `binding` and the `artifact` made of them, and how many rules were
    refused at either step."""
    from siemforge.backends.kql.lower import compile_kql

    def lower(rule: ir.RuleIR) -> tuple[str, T]:
        query = compile_kql(rule, binding)
        return query, artifact(rule, query)

    done, refused = lowered(results, lower, on_refusal)
    return [(res.rule, query, made) for res, (query, made) in done if res.rule is not None], refused


def sentinel_yaml_files(results: list[CompileResult], binding: str | None,
                        on_refusal: Refused | None = None) -> tuple[Files, int]:
    """`export sentinel-yaml`'s files for compiled rules, and how many rules it refused."""
    from siemforge.backends.kql.artifacts import analytic_rule_yaml
    from siemforge.backends.kql.lower import sentinel_binding

    items, refused = _kql(results, binding, lambda rule, query: analytic_rule_yaml(
        rule, query, sentinel_binding(rule, binding)), on_refusal)
    return [(f"{slug(rule.meta.id)}.yaml", dump_yaml(doc)) for rule, _, doc in items], refused


def arm_files(results: list[CompileResult], binding: str | None, bundle: str = "ruleset.json",
              on_refusal: Refused | None = None) -> tuple[Files, int]:
    """`export arm`'s files for compiled rules, and how many rules it refused."""
    from siemforge.backends.kql.artifacts import alert_rule_resource, arm_template

    # the resource is built to validate durations, entities and operators; the templates are built from the rules
    items, refused = _kql(results, binding, lambda rule, query: alert_rule_resource(rule, query, binding), on_refusal)
    good = [(rule, query) for rule, query, _ in items]
    files: Files = [(f"{slug(rule.meta.id)}.json", dump_json(arm_template([(rule, query)], binding)))
                    for rule, query in good]
    if good:
        files.append((bundle, dump_json(arm_template(good, binding))))
    return files, refused


def _write(output: Path, files: Sequence[tuple[str, str | bytes]]) -> None:
    with writing_to(output) as d:
        for name, text in files:
            d.write(name, text)
    out.print(f"wrote {len(files)} file(s) to {output}")


@export_app.command("sentinel-yaml")
def sentinel_yaml(
    rules: RuleFiles,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for <id>.yaml files")],
    binding: SentinelBinding = None,
    sources: SourceDirs = None,
) -> None:
    """Analytic rules in the Azure-Sentinel repository's YAML format, one file per rule."""
    results, failures = compiled_rules(rules, sources)
    files, refused = sentinel_yaml_files(results, binding)
    _write(output, files)
    if failures or refused:
        raise typer.Exit(1)


@export_app.command("arm")
def arm(
    rules: RuleFiles,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the templates")],
    binding: SentinelBinding = None,
    bundle: Annotated[str, typer.Option(help="file name of the template holding the whole rule set")] = "ruleset.json",
    sources: SourceDirs = None,
) -> None:
    """ARM deployment templates: one per rule (<id>.json) and one for the whole rule set, lookups as watchlists."""
    results, failures = compiled_rules(rules, sources)
    files, refused = arm_files(results, binding, bundle)
    _write(output, files)
    if failures or refused:
        raise typer.Exit(1)


def _splunk_ready(results: list[CompileResult], binding: str | None, on_refusal: Refused | None = None
                  ) -> tuple[list[CompileResult], int]:
    """The rules that lower to SPL on `binding`, and how many did not (the export goes on without them)."""
    from siemforge.backends.spl.lower import compile_spl

    ready, refused = lowered(results, lambda rule: compile_spl(rule, binding), on_refusal)
    return [res for res, _ in ready], refused


def splunk_app_files(results: list[CompileResult], binding: str | None, app_id: str = "siemforge_content",
                     on_refusal: Refused | None = None) -> tuple[Files, int]:
    """`export splunk-app`'s files (the app folder and its .tgz) for compiled rules, and how many rules it refused.
    CompileError when the app as a whole cannot be built."""
    from siemforge.backends.spl.app import AppSpec, build_app, package

    ready, refused = _splunk_ready(results, binding, on_refusal)
    files = build_app([r.rule for r in ready if r.rule is not None], binding, AppSpec(app_id=app_id))
    out_files: Files = [(f"{app_id}/{rel}", data) for rel, data in sorted(files.items())]
    out_files.append((f"{app_id}.tgz", package(app_id, files)))
    return out_files, refused


def contentctl_files(results: list[CompileResult], binding: str | None,
                     on_refusal: Refused | None = None) -> tuple[Files, int]:
    """`export contentctl`'s pack for compiled rules, and how many rules it refused. CompileError when the pack as
    a whole cannot be built."""
    from siemforge.backends.spl.contentctl import PackError, build_pack

    ready, refused = _splunk_ready(results, binding, on_refusal)
    good = [r.rule for r in ready if r.rule is not None]
    tests = {r.rule.meta.id: r.doc.tests for r in ready if r.rule is not None and r.doc is not None}
    by_id = {r.rule.meta.id: r for r in ready if r.rule is not None}
    left_out: list[str] = []

    def refuse(rule: ir.RuleIR, why: PackError) -> None:
        res = by_id[rule.meta.id]
        span = None
        if res.doc is not None:  # the key to change, the first of those named that the rule has
            key = next((k for k in why.at if k in res.doc.data), "title")
            span = res.doc.yaml.key_span((key,))
        diagnostic = Diagnostic(Severity.ERROR, f"{rule.meta.title}: {why}", span, code="contentctl")
        if on_refusal is not None:
            on_refusal(res, CompileError([diagnostic]))
        elif span is None:
            err.print(f"error: {res.path}: {rule.meta.title}: {why}", style="bold red", markup=False)
        else:
            print_diagnostics([diagnostic])
        left_out.append(rule.meta.id)

    def note(rule: ir.RuleIR, text: str) -> None:
        err.print(f"note: {by_id[rule.meta.id].path}: {rule.meta.title}: {text}", style="cyan", markup=False)

    files = build_pack(good, binding, tests, on_error=refuse, on_note=note)
    return sorted(files.items()), refused + len(left_out)


@export_app.command("splunk-app")
def splunk_app(
    rules: RuleFiles,
    output: Annotated[Path, typer.Option("-o", "--output", help="folder for the app folder and its .tgz")],
    binding: SplunkBinding = None,
    app_id: Annotated[str, typer.Option(help="the app's folder name and id")] = "siemforge_content",
    sources: SourceDirs = None,
) -> None:
    """A Splunk app: savedsearches.conf (one stanza per rule), macros, lookups, metadata, and a .tgz of it."""
    results, failures = compiled_rules(rules, sources)
    try:
        files, refused = splunk_app_files(results, binding, app_id)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None
    _write(output, files)
    if failures or refused:
        raise typer.Exit(1)


@export_app.command("contentctl")
def contentctl_pack(
    rules: RuleFiles,
    output: Annotated[Path, typer.Option("-o", "--output", help="an empty (or siemforge-written) folder; copy it "
                                                                   "over a `contentctl init` pack")],
    binding: SplunkBinding = None,
    sources: SourceDirs = None,
) -> None:
    """A contentctl 5.x content pack (detections with their fixture tests, baselines, macros, lookups, stories,
    data_sources). Copy it over a `contentctl init` pack and run contentctl there (test data paths are relative to
    the pack folder)."""
    results, failures = compiled_rules(rules, sources)
    try:
        files, refused = contentctl_files(results, binding)
    except CompileError as exc:
        print_diagnostics(exc.diagnostics)
        raise typer.Exit(1) from None
    _write(output, files)
    if failures or refused:
        raise typer.Exit(1)
