"""`siemforge import sentinel`: Azure-Sentinel analytic rules, hunting queries and ARM templates → rule files.

Each input rule is imported exactly or refused with the construct and its line:column in the input file: the KQL is
translated by importers/kql.py, the metadata mapped here (docs/import.md), and the rule written only once it compiles
to every target. Nothing the user has is overwritten: files go through cli/outputs.py's OutputDir, which writes only
files siemforge wrote itself.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from siemforge.backends.kql.artifacts import ENTITIES, TACTICS
from siemforge.compiler.diagnostics import CompileError
from siemforge.compiler.yamlpos import PositionedYaml, TextOrigin, load_yaml

from .common import ImportOutcome, formatted
from .kql import Refusal, Translation, parse_duration, translate
from .ruletext import folded, literal_block, rule_slug, yaml_scalar

TACTIC_TAGS = {v.lower(): k for k, v in TACTICS.items()}
ENTITY_KINDS = {sentinel: (kind, {v: k for k, v in ids.items()}) for kind, (sentinel, ids) in ENTITIES.items()}
OPERATORS = {"gt": ">", "greaterthan": ">", "lt": "<", "lessthan": "<", "eq": "==", "equal": "==",
             "ne": "!=", "notequal": "!="}
# keys of a rule that say nothing about what it detects or how it alerts (connector lists, catalogue status)
IGNORED_KEYS = {"status", "requiredDataConnectors", "kind", "metadata", "tags", "enabled", "alertRuleTemplateName",
                "templateVersion", "displayName", "OriginalUri", "subTechniques", "techniques", "suppressionEnabled",
                "suppressionDuration", "triggerOperator", "triggerThreshold", "name", "id", "description", "severity",
                "queryFrequency", "queryPeriod", "tactics", "relevantTechniques", "entityMappings", "customDetails",
                "version", "query", "eventGroupingSettings", "incidentConfiguration", "alertDetailsOverride"}


@dataclass(slots=True)
class SentinelRule:
    """One input rule, whichever file shape it came in."""

    origin: Path
    props: dict[str, Any]  # the analytic-rule YAML's keys (an ARM rule's properties, renamed to the YAML's)
    query_origin: TextOrigin | None  # where the KQL text starts in the file
    query_map: list[tuple[int, int]] | None  # ARM: KQL (line, column) → file, per KQL line's start offset
    hunting: bool
    refusal: Refusal | None = None
    yaml_doc: PositionedYaml | None = None


def import_sentinel(paths: Sequence[Path], out_dir: Path) -> list[ImportOutcome]:
    """Import every Sentinel rule in `paths` (files or folders) into `out_dir`, one folder per rule."""
    from siemforge.cli.outputs import OutputDir, OutputError

    outcomes: list[ImportOutcome] = []
    out = OutputDir.open(out_dir)
    try:
        for rule in _read_all(paths):
            name = str(rule.props.get("name") or rule.origin.stem)
            if rule.refusal is not None:
                outcomes.append(_refused(rule, name, rule.refusal))
                continue
            try:
                slug, text = convert(rule)
                text = formatted(text, f"{slug}.yml")
                notes = check_compiles(text, slug)
            except Refusal as exc:
                outcomes.append(_refused(rule, name, exc))
                continue
            except RecursionError:  # an expression nested thousands deep: one rule refused, not the batch
                outcomes.append(_refused(rule, name, Refusal("an expression nested too deeply", key="query")))
                continue
            rel = f"{slug}/{slug}.yml"
            if any(rel in (str(p.relative_to(out_dir)) for p in o.written) for o in outcomes):
                rel = f"{slug}_{rule_slug(str(rule.props.get('id', '')))[:8]}/{slug}.yml"
            try:
                out.write(rel, text)
            except OutputError as exc:
                outcomes.append(ImportOutcome(rule.origin, name, "refused", f"not written: {exc}", None, None, ()))
                continue
            outcomes.append(ImportOutcome(rule.origin, name, "imported", None, None, None, (out_dir / rel,), notes))
    finally:
        out.finish()
    return outcomes


def _refused(rule: SentinelRule, name: str, exc: Refusal) -> ImportOutcome:
    line, column = exc.line, exc.column
    if exc.key is not None:
        line, column = _key_position(rule, exc.key)
    elif line is not None and column is not None and not exc.in_file:
        line, column = _file_position(rule, line, column)
    return ImportOutcome(rule.origin, name, "refused", exc.reason, line, column, ())


def _key_position(rule: SentinelRule, key: str) -> tuple[int | None, int | None]:
    """Where the rule's key is written: its YAML key, or the first `"key":` of the ARM template."""
    if rule.yaml_doc is not None:
        span = rule.yaml_doc.key_span((key,))
        return (span.line, span.column) if span else (None, None)
    try:
        text = rule.origin.read_text(encoding="utf-8")
    except OSError:
        return None, None
    arm_key = {v: k for k, v in ARM_KEYS.items()}.get(key, key)
    m = re.search(r'"' + re.escape(arm_key) + r'"\s*:', text)
    return _json_position(text, m.start()) if m else (None, None)


def _file_position(rule: SentinelRule, line: int, column: int) -> tuple[int | None, int | None]:
    """A (line, column) inside the KQL text as a position in the input file."""
    if rule.query_map is not None:
        if 1 <= line <= len(rule.query_map):
            fl, fc = rule.query_map[line - 1]
            return fl, fc + column - 1
        return None, None
    if rule.query_origin is not None:
        span = rule.query_origin.span(line, column)
        return span.line, span.column
    return None, None


# ---------------------------------------------------------------------------------------------- reading inputs
RULE_SUFFIXES = ("", ".yaml", ".yml", ".json")  # in folders; a file named on the command line is always read


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in RULE_SUFFIXES and not any(
                part.startswith(".") for part in f.relative_to(p).parts))
        else:
            yield p


def _read_all(paths: Sequence[Path]) -> Iterator[SentinelRule]:
    for f in _files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            yield SentinelRule(f, {"name": f.name}, None, None, False, Refusal(f"cannot read the file: {exc}"))
            continue
        if text.lstrip().startswith("{"):
            yield from _read_arm(f, text)
        else:
            yield _read_yaml(f, text)


def _read_yaml(f: Path, text: str) -> SentinelRule:
    try:
        doc = load_yaml(text, str(f))
    except CompileError as exc:
        d = exc.diagnostics[0]
        line, column = (d.span.line, d.span.column) if d.span else (None, None)
        return SentinelRule(f, {"name": f.name}, None, None, False,
                            Refusal(d.message, line, column, in_file=True))
    props = doc.value
    if not isinstance(props, dict) or not isinstance(props.get("query"), str) or "name" not in props:
        what = "a siemforge or Sigma rule" if isinstance(props, dict) and "title" in props else "a YAML file"
        return SentinelRule(f, {"name": f.name}, None, None, False,
                            Refusal(f"{what}, not a Sentinel analytic rule or hunting query (they have `name:` and "
                                    "`query:`)", 1, 1, in_file=True))
    hunting = "queryFrequency" not in props and "triggerOperator" not in props
    origin = doc.origin(("query",))
    return SentinelRule(f, props, origin, None, hunting, yaml_doc=doc)


ARM_KEYS = {"displayName": "name", "alertRuleTemplateName": "id"}


def _read_arm(f: Path, text: str) -> Iterator[SentinelRule]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        yield SentinelRule(f, {"name": f.name}, None, None, False,
                           Refusal(f"not JSON: {exc.msg}", exc.lineno, exc.colno, in_file=True))
        return
    resources = doc.get("resources") if isinstance(doc, dict) else None
    rules = [r for r in resources or [] if isinstance(r, dict) and str(r.get("type", "")).endswith("/alertRules")]
    if not rules:
        yield SentinelRule(f, {"name": f.name}, None, None, False,
                           Refusal("an ARM template without alertRules resources", 1, 1, in_file=True))
        return
    starts = [m.end() - 1 for m in re.finditer(r'"query"\s*:\s*"', text)]
    for res in rules:
        p = dict(res.get("properties") or {})
        props: dict[str, Any] = {ARM_KEYS.get(str(k), str(k)): v for k, v in p.items()}
        props.setdefault("id", str(res.get("name", "")).rsplit("/", 1)[-1])
        props["_arm"] = True
        qmap, at = None, 0
        for start in starts:  # the template's "query" string that is this rule's
            qmap = _json_string_map(text, start, str(props.get("query", "")))
            if qmap is not None:
                at = start
                starts.remove(start)
                break
        kind = res.get("kind")
        rule = SentinelRule(f, props, None, qmap, False)
        expression = [k for k in ("name", "query") if str(props.get(k, "")).startswith("[")
                      and not str(props.get(k, "")).startswith("[[")]
        if kind != "Scheduled":
            rule.refusal = Refusal(f"an alert rule of kind {kind}", *_json_position(text, at), in_file=True)
        elif expression:  # an ARM template expression, evaluated at deployment: not the rule's text
            rule.refusal = Refusal(f"an ARM template expression as the rule's {expression[0]}",
                                   *_json_position(text, at), in_file=True)
        for k in ("name", "query", "description"):
            if str(props.get(k, "")).startswith("[["):  # `[[` is ARM's escape of a leading `[`
                props[k] = str(props[k])[1:]
        yield rule


def _json_position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _json_string_map(text: str, quote: int, value: str) -> list[tuple[int, int]] | None:
    """Where each line of a JSON string's decoded value starts in the file, as (line, column), reading the string
    token at `quote` escape by escape; None if the token does not decode to `value`."""
    out: list[tuple[int, int]] = [_json_position(text, quote + 1)]
    decoded: list[str] = []
    i = quote + 1
    escapes = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    while i < len(text) and text[i] != '"':
        if text[i] == "\\":
            e = text[i + 1]
            if e == "u":
                ch = chr(int(text[i + 2:i + 6], 16))
                i += 6
            else:
                ch = escapes.get(e, e)
                i += 2
        else:
            ch = text[i]
            i += 1
        decoded.append(ch)
        if ch == "\n":
            out.append(_json_position(text, i))
    return out if "".join(decoded) == value else None


# ---------------------------------------------------------------------------------------------- conversion
def convert(rule: SentinelRule) -> tuple[str, str]:
    """(slug, rule file text) for one input rule; raises Refusal."""
    p = rule.props
    _check_shapes(p)
    name = str(p.get("name") or rule.origin.stem)
    query = str(p["query"])
    t = translate(query)  # Refusal carries the KQL position
    for key in p:
        if key not in IGNORED_KEYS and not key.startswith("_"):
            raise Refusal(f"rule key {key}", key=key)
    if p.get("kind", "Scheduled") != "Scheduled":
        raise Refusal(f"an alert rule of kind {p.get('kind')}", key="kind")
    _check_grouping(p)

    lines = [f"title: {yaml_scalar(name)}"]
    if p.get("id"):
        lines.append(f"id: {yaml_scalar(str(p['id']))}")
    version = p.get("templateVersion") if p.get("_arm") else p.get("version")
    if version:
        lines.append(f"version: {yaml_scalar(str(version))}")
    sev = str(p.get("severity") or "").lower()
    if sev:
        if sev not in ("informational", "low", "medium", "high"):
            raise Refusal(f"severity {p.get('severity')}", key="severity")
        lines.append(f"level: {sev}")
    desc = str(p.get("description") or "").strip()
    if desc.startswith("'") and desc.count("'") % 2 == 1:
        desc = desc[1:]  # Azure-Sentinel writes descriptions as `|` blocks opening with a stray quote
    if desc.endswith("'") and not desc.startswith("'"):
        desc = desc[:-1]
    if desc:
        lines.append("description: " + (literal_block(desc) if "\n" in desc.strip() else folded(desc.strip())))
    kind = "hunting query" if rule.hunting else "analytic rule"
    lines.append(f"author: imported by siemforge from the Microsoft Sentinel {kind}")
    refs = [str(p["OriginalUri"])] if p.get("OriginalUri") else []
    refs.append(str(rule.origin))
    lines.append("references:")
    lines += [f"  - {yaml_scalar(r)}" for r in refs]
    tags = _tags(p)
    if tags:
        lines.append(f"tags: [{', '.join(tags)}]")
    lines.append(f"source: {t.source}")
    entities, details, extra_cols = _outputs(p, t)
    extra = [f"extend {', '.join(f'{c} = {e}' for c, e in extra_cols)}"] if extra_cols else []
    if not t.stages and not extra:
        extra = ["where true"]  # every row of the table
    lines.append("query: " + literal_block(t.body(query, extra)))
    sched = _schedule(p, t)
    if sched:
        lines.append(sched)
    alert = _alert(p)
    if alert:
        lines.append(alert)
    if entities:
        lines.append("entities:")
        for kind_name, fields in entities.items():
            lines.append(f"  {kind_name}: {{{', '.join(f'{k}: {yaml_scalar(v)}' for k, v in fields.items())}}}")
    if details:
        lines.append("details:")
        lines += [f"  {yaml_scalar(k)}: {yaml_scalar(v)}" for k, v in details.items()]
    return rule_slug(name), "\n".join(lines) + "\n"


LIST_KEYS = ("tactics", "relevantTechniques", "techniques", "subTechniques", "entityMappings")
MAP_KEYS = ("customDetails", "eventGroupingSettings", "incidentConfiguration")
TEXT_KEYS = ("query", "name", "id", "description", "severity", "queryFrequency", "queryPeriod", "triggerOperator",
             "version", "templateVersion", "OriginalUri", "suppressionDuration")


def _check_shapes(p: dict[str, Any]) -> None:
    """Each key the import reads has the shape Sentinel gives it; any other is refused at that key."""
    if not isinstance(p.get("query"), str):
        raise Refusal("no KQL `query` text", key="query")
    for key in LIST_KEYS:
        if p.get(key) is not None and not isinstance(p[key], list):
            raise Refusal(f"{key} that is not a list", key=key)
    for key in MAP_KEYS:
        if p.get(key) is not None and not isinstance(p[key], dict):
            raise Refusal(f"{key} that is not a mapping", key=key)
    for key in TEXT_KEYS:
        if p.get(key) is not None and not isinstance(p[key], (str, int, float)):
            raise Refusal(f"{key} that is not text", key=key)
    for m in p.get("entityMappings") or []:
        if not isinstance(m, dict) or not isinstance(m.get("fieldMappings"), list) or not all(
                isinstance(fm, dict) for fm in m["fieldMappings"]):
            raise Refusal("an entity mapping that is not {entityType, fieldMappings: [...]}", key="entityMappings")


def _check_grouping(p: dict[str, Any]) -> None:
    grouping = p.get("eventGroupingSettings")
    if isinstance(grouping, dict) and grouping.get("aggregationKind") not in (None, "SingleAlert"):
        raise Refusal(f"eventGroupingSettings aggregationKind {grouping.get('aggregationKind')}",
                      key="eventGroupingSettings")
    if p.get("alertDetailsOverride"):
        raise Refusal("alertDetailsOverride", key="alertDetailsOverride")
    inc = p.get("incidentConfiguration")
    if isinstance(inc, dict) and (inc.get("groupingConfiguration") or {}).get("enabled"):
        raise Refusal("incidentConfiguration grouping", key="incidentConfiguration")


def _tags(p: dict[str, Any]) -> list[str]:
    tags: list[str] = []
    for tactic in p.get("tactics") or []:
        tag = TACTIC_TAGS.get(str(tactic).replace(" ", "").lower())
        if tag is None:
            raise Refusal(f"tactic {tactic}", key="tactics")
        tags.append(f"attack.{tag}")
    techniques = list(p.get("relevantTechniques") or []) + list(p.get("techniques") or [])
    techniques += list(p.get("subTechniques") or [])
    for tech in techniques:
        t = str(tech).strip().lower()
        if not re.fullmatch(r"t\d{4}(\.\d{3})?", t):
            raise Refusal(f"technique {tech}", key="relevantTechniques")
        if f"attack.{t}" not in tags:
            tags.append(f"attack.{t}")
    return tags


def _duration(v: object, what: str) -> timedelta:
    s = str(v)
    d = parse_duration(s)
    if d is None:
        m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", s)
        if m and any(m.groups()):
            d = timedelta(days=int(m.group(1) or 0), hours=int(m.group(2) or 0), minutes=int(m.group(3) or 0))
    if d is None:
        raise Refusal(f"{what} {s}", key=what)
    return d


def _short(d: timedelta) -> str:
    secs = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if secs % size == 0:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _schedule(p: dict[str, Any], t: Translation) -> str | None:
    every = _duration(p["queryFrequency"], "queryFrequency") if p.get("queryFrequency") else None
    period = _duration(p["queryPeriod"], "queryPeriod") if p.get("queryPeriod") else None
    lookback = period
    if t.lookback is not None:  # the query's own window inside the period (decision 52)
        lookback = t.lookback if lookback is None else min(lookback, t.lookback)
    if every is None and lookback is None:
        return None
    parts = []
    if every is not None:
        parts.append(f"every: {_short(every)}")
    if lookback is not None:
        parts.append(f"lookback: {_short(lookback)}")
    return "schedule: {" + ", ".join(parts) + "}"


def _alert(p: dict[str, Any]) -> str | None:
    if "triggerOperator" not in p:
        return None
    op = OPERATORS.get(str(p["triggerOperator"]).lower())
    if op is None:
        raise Refusal(f"triggerOperator {p['triggerOperator']}", key="triggerOperator")
    threshold = p.get("triggerThreshold", 0)
    if not isinstance(threshold, int):
        raise Refusal(f"triggerThreshold {threshold}", key="triggerThreshold")
    parts = [f'threshold: "{op} {threshold}"']
    if p.get("suppressionEnabled"):
        parts.append(f"suppress: {_short(_duration(p.get('suppressionDuration'), 'suppressionDuration'))}")
    return "alert: {" + ", ".join(parts) + "}"


def _outputs(p: dict[str, Any], t: Translation) -> tuple[dict[str, dict[str, str]], dict[str, str],
                                                          list[tuple[str, str]]]:
    """entities, details, and the table columns an open pipeline must add to its rows for them (`extend
    SourceIpAddress = sourceIPAddress`), so that every mapping names an output column."""
    entities: dict[str, dict[str, str]] = {}
    for m in p.get("entityMappings") or []:
        etype = str(m.get("entityType"))
        spec = ENTITY_KINDS.get(etype)
        if spec is None:
            raise Refusal(f"entity type {etype}", key="entityMappings")
        kind, ids = spec
        if kind in entities:
            raise Refusal(f"two {etype} entity mappings", key="entityMappings")
        fields: dict[str, str] = {}
        for fm in m.get("fieldMappings") or []:
            ident = ids.get(str(fm.get("identifier")))
            if ident is None:
                raise Refusal(f"{etype} identifier {fm.get('identifier')}", key="entityMappings")
            fields[ident] = str(fm.get("columnName"))
        entities[kind] = fields
    details = {str(k): str(v) for k, v in (p.get("customDetails") or {}).items()}
    wanted = [c for f in entities.values() for c in f.values()] + list(details.values())
    extra: list[tuple[str, str]] = []
    for col in dict.fromkeys(wanted):
        if t.columns is not None:
            if col not in t.columns:
                raise Refusal(f"entity or detail column {col}, not an output column of the query", key="entityMappings")
        elif col not in t.defined:
            canonical = t.table_columns.get(col)
            if canonical is None:
                raise Refusal(f"entity or detail column {col}, not a column of the rows", key="entityMappings")
            t.names[col] = col + "_"  # on the table's rows, under another name than the table column's
            extra.append((col + "_", canonical))

    def ours(c: str) -> str:
        return t.names.get(c, c)

    entities = {k: {i: ours(c) for i, c in f.items()} for k, f in entities.items()}
    details = {k: ours(c) for k, c in details.items()}
    return entities, details, extra


def check_compiles(text: str, slug: str) -> tuple[str, ...]:
    """The rule must compile, and lower to Sentinel, where it came from, before it is written (issue 13: exact or
    refused; decision 50). Another target that cannot say the rule does not stop the import, as it does not stop a
    hand-written rule: the notes say which and why, as `siemforge compile` would."""
    from siemforge.backends.registry import targets
    from siemforge.compiler.api import compile_file

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="siemforge-import-") as tmp:
        path = Path(tmp) / f"{slug}.yml"
        path.write_text(text, encoding="utf-8")
        res = compile_file(path)
        errors = [d for d in res.diagnostics if d.severity.name == "ERROR"]
        if res.rule is None or errors:
            d = errors[0] if errors else None
            raise Refusal("the translated rule does not compile: " + (d.message if d else "unknown error"), key="query")
        for tgt in targets().values():
            try:
                tgt.compile(res.rule, None)
            except CompileError as exc:
                if tgt.name == "sentinel":
                    raise Refusal(f"no {tgt.name} query for the translated rule: {exc.diagnostics[0].message}",
                                  key="query") from None
                notes.append(f"{tgt.name}: {exc.diagnostics[0].message}")
    return tuple(notes)
