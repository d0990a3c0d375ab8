"""`siemforge coverage RULES… -o layer.json [--html report.html]`: the ATT&CK techniques a rule set covers, as an ATT&CK
Navigator layer and as a self-contained HTML page (a heatmap of tactics × techniques and a table of the rules).

Rules are read, not compiled: coverage is what the rules claim in their tags, and a Sigma rule whose log source
siemforge does not know still counts. A file that does not load is reported at its line and column and counted; the
others are still written (exit 1, as `compile` does when a rule fails)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .console import err, out, print_diagnostics
from .outputs import writing_to
from .rules import RuleFiles, require_paths

if TYPE_CHECKING:
    from siemforge.compiler.attack import AttackData, Coverage, RuleAttack
    from siemforge.compiler.diagnostics import Diagnostic

# the heat scale of the page: ColorBrewer's 5-class Reds, lightest for one rule, darkest for the most covered
HEAT = ("#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15")


@dataclass(frozen=True, slots=True)
class LoadFailure:
    where: str  # file:line:column
    message: str


def read_rules(paths: list[Path], known_tactics: tuple[str, ...]) -> tuple[list[RuleAttack], list[LoadFailure]]:
    """The rules under `paths` with their ATT&CK tags; each file that does not load is reported (its diagnostics
    printed) and listed. Sigma filter documents are not rules and are skipped."""
    from siemforge.compiler.api import discover_rules, rule_root
    from siemforge.compiler.attack import RuleAttack, read_tags
    from siemforge.compiler.diagnostics import CompileError, Severity
    from siemforge.compiler.rule import load_rules

    rules: list[RuleAttack] = []
    failures: list[LoadFailure] = []
    for f in discover_rules(paths):
        try:
            docs = load_rules(f, root=rule_root(f, paths))
        except CompileError as exc:
            print_diagnostics(exc.diagnostics)
            first: Diagnostic = next((d for d in exc.diagnostics if d.severity is Severity.ERROR), exc.diagnostics[0])
            failures.append(LoadFailure(str(first.span) if first.span else str(f), first.message))
            continue
        for doc in docs:
            if "filter" in doc.data and "detection" not in doc.data and "query" not in doc.data:
                continue
            tags = doc.data.get("tags")
            techniques, tactics, other = read_tags(tags if isinstance(tags, list) else [], known_tactics)
            span = doc.yaml.span(("title",))
            rules.append(RuleAttack(
                path=str(f), line=span.line if span else 1, title=doc.title, rule_id=doc.id,
                level=str(doc.data.get("level") or ""), techniques=techniques, tactics=tactics, other=other,
            ))
    return rules, failures


def heat_colour(score: int, top: int) -> str:
    """The page's colour of a cell scored `score` when the highest score is `top`: five steps on a log scale, since
    a few techniques are covered by far more rules than the rest (the darkest is `top` alone only when it is 5)."""
    if top <= len(HEAT):
        return HEAT[len(HEAT) - 1 - (top - score)]
    return HEAT[min(len(HEAT) - 1, int(len(HEAT) * math.log(score) / math.log(top + 1)))]


def heat_legend(top: int) -> list[tuple[str, str]]:
    """Each colour the page uses with the scores it stands for (`3` or `3–9`)."""
    legend: list[tuple[str, str]] = []
    start = 1
    for score in range(1, top + 1):
        if score == top or heat_colour(score + 1, top) != heat_colour(score, top):
            legend.append((heat_colour(score, top), str(score) if score == start else f"{start}–{score}"))
            start = score + 1
    return legend


def render_html(cov: Coverage, failures: list[LoadFailure], title: str) -> str:
    """The report page: everything inline (no script, style sheet, font or image is fetched)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("siemforge.cli", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    columns: list[tuple[str | None, str, list[dict[str, object]]]] = []
    for tactic in (*cov.tactic_order, None):
        cells = [c for c in cov.cells if c.tactic == tactic]
        if not cells:
            continue
        heading = cov.tactic_name(tactic) if tactic is not None else "Tactic not named"
        columns.append((tactic, heading, [{
            "technique": c.technique, "name": cov.technique_name(c.technique), "score": c.score,
            "colour": heat_colour(c.score, cov.max_score), "guessed": c.guessed,
            "titles": "\n".join(r.title for r in c.rules),
        } for c in cells]))
    legend = heat_legend(cov.max_score)
    return env.get_template("coverage.html.j2").render(
        title=title, cov=cov, columns=columns, failures=failures, legend=legend,
        covered=sorted(cov.techniques), tagged=sum(1 for r in cov.rules if r.techniques),
        data_version=cov.data.version if cov.data else None, have_data=cov.data is not None,
        any_guessed=any(c.guessed for c in cov.cells),
    )


def coverage(
    rules: RuleFiles,
    output: Annotated[Path, typer.Option("-o", "--output", help="the ATT&CK Navigator layer (JSON) to write")],
    html: Annotated[Path | None, typer.Option("--html", help="also write a self-contained HTML report")] = None,
    attack_data: Annotated[Path | None, typer.Option(
        "--attack-data", metavar="STIX.json",
        help="an ATT&CK STIX bundle (enterprise-attack.json) for technique names and their tactics")] = None,
    name: Annotated[str, typer.Option(help="the layer's and the report's title")] = "siemforge coverage",
) -> None:
    """Write the ATT&CK coverage of RULES as a Navigator layer (and an HTML heatmap): techniques scored by rules."""
    from siemforge.compiler.attack import TACTICS, AttackDataError, build_coverage, load_attack_data, navigator_layer

    require_paths(rules)
    for given in (output, html):
        if given is not None and given.is_dir():
            err.print(f"{given}: error: a folder; name the file to write", style="bold red", markup=False)
            raise typer.Exit(2)
    if html is not None and html.resolve() == output.resolve():
        err.print(f"{html}: error: --html and -o name the same file", style="bold red", markup=False)
        raise typer.Exit(2)
    data: AttackData | None = None
    if attack_data is not None:
        try:
            data = load_attack_data(attack_data)
        except AttackDataError as exc:
            err.print(f"{exc.where}: error: --attack-data: {exc.message}", style="bold red", markup=False)
            raise typer.Exit(2) from None
    known = TACTICS + tuple(t for t in (data.tactic_order if data else ()) if t not in TACTICS)
    found, failures = read_rules(rules, known)
    cov = build_coverage(found, data)
    layer = navigator_layer(cov, name, f"ATT&CK coverage of {len(found)} rule(s), written by siemforge")
    targets = [(output, json.dumps(layer, indent=2, ensure_ascii=False) + "\n")]
    if html is not None:
        targets.append((html, render_html(cov, failures, name)))
    for path, text in targets:
        with writing_to(path.parent if str(path.parent) else Path(".")) as d:
            d.write(path.name, text)
    tagged = sum(1 for r in found if r.techniques)
    tactics = len(cov.tactic_order)
    out.print(f"{len(found)} rule(s), {tagged} with an ATT&CK technique: {len(cov.techniques)} technique(s) under "
              f"{tactics} tactic(s)" + (f"; {len(failures)} file(s) did not load" if failures else ""), markup=False)
    out.print("wrote " + " and ".join(str(p) for p, _ in targets), markup=False)
    if data is None and html is not None:
        out.print("note: no --attack-data: techniques are shown by ID, under the tactics their rules name",
                  markup=False, style="dim")
    if failures:
        raise typer.Exit(1)
