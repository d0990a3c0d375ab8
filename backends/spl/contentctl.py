"""A contentctl 5.x content pack from compiled rules — the format Splunk's own content (ESCU) is built from:
detections/, macros/, lookups/, stories/, data_sources/. It overlays a `contentctl init` skeleton, which carries
contentctl's own app template and deployment defaults (CI does exactly that and runs `contentctl validate` and
`contentctl build`). Built as data and dumped as YAML."""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from siemforge.compiler import ir
from siemforge.compiler.lowering import base_binding, base_source, branch_rules
from siemforge.compiler.sources import builtin_sources

from .app import binding_macros, slug
from .baseline import baseline_searches
from .lower import FEATURES, compile_spl, splunk_binding

if TYPE_CHECKING:
    from siemforge.compiler.rule import TestCase

STORY = "siemforge Cloud Detections"
DEFAULT_DATE = "2026-11-24"
NAMESPACE = uuid.UUID("6f1f3a59-9d0e-4d7c-9a4f-1a7d2f3c5b10")  # stable ids for generated objects
PRODUCTS = ["Splunk Enterprise", "Splunk Enterprise Security", "Splunk Cloud"]
PRODUCTION = ("production", "stable")  # rule statuses that contentctl ships as `production` when a test proves them
RISK_TYPES = {"account": "user", "host": "system"}
THREAT_TYPES = {
    "ip": "ip_address",
    "url": "url",
    "file": "file_name",
    "process": "process_name",
    "dns": "domain",
    "file_hash": "file_hash",
}


def _date(rule: ir.RuleIR) -> str:
    d = (rule.meta.date or DEFAULT_DATE).replace("/", "-")
    return d if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) else DEFAULT_DATE


def _techniques(rule: ir.RuleIR) -> list[str]:
    """ATT&CK ids; a technique is dropped when one of its sub-techniques is listed (contentctl rejects both)."""
    ids = sorted(
        {t.split(".", 1)[1].upper() for t in rule.meta.tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t.lower())}
    )
    return [i for i in ids if not any(j.startswith(i + ".") for j in ids)]


AWS_TA = {"name": "Splunk Add-on for Amazon Web Services (AWS)", "url": "https://splunkbase.splunk.com/app/1876/",
          "version": "7.9.0"}
STORIES: dict[str, dict[str, Any]] = {
    STORY: {
        "description": "Cloud detections compiled by siemforge, each proven on real cloud audit events.",
        "narrative": "Detections for cloud compute abuse, credential access, unusual deployments and identity "
        "misuse (AWS CloudTrail, Entra ID, Azure Activity), written once in siemforge's rule language and compiled "
        "to Splunk.",
        "category": ["Cloud Security"],
    },
    "siemforge Windows Detections": {
        "description": "Windows detections compiled by siemforge, each proven on real Windows event logs.",
        "narrative": "Detections for credential theft, password guessing and script execution on Windows hosts, "
        "written once in Sigma or siemforge's rule language and compiled to Splunk.",
        "category": ["Adversary Tactics"],
    },
    "siemforge Linux Detections": {
        "description": "Linux detections compiled by siemforge, each proven on real auditd records.",
        "narrative": "Detections for privilege escalation and suspicious execution on Linux hosts, written once in "
        "Sigma or siemforge's rule language and compiled to Splunk.",
        "category": ["Adversary Tactics"],
    },
}


def data_sources(rule: ir.RuleIR, binding: str | None) -> list[dict[str, Any]]:
    """The contentctl data sources the rule's search reads, as its binding declares them (`data_source:`), with the
    top-level fields of their records. A name with `{EventID}` is one data source per EventID the search selects
    (the binding's `rows:` EventCodes, narrowed by the rule's own EventID condition), as ESCU names Windows data
    sources ("Sysmon EventID 1", "Windows Event Log Security 4625"). A correlation's: its first rule's."""
    rule = branch_rules(rule)[0]
    b = splunk_binding(rule, binding)
    ds = b.extra.get("data_source") if b is not None else None
    if b is None or not isinstance(ds, dict):
        raise PackError(f"binding {b.name if b else 'asis'!r} declares no contentctl `data_source`",
                        "source", "logsource")
    base = base_source(rule.pipeline.source)
    if b.source == base:  # the records as this binding names them
        names = [*b.columns.values(), *b.json_columns.values()]
    else:  # a data model filled from the base source's records
        names = list(builtin_sources()[base].fields)
    name = str(ds["name"])
    common: dict[str, Any] = {
        "name": name,
        "sourcetype": str(ds["sourcetype"]),
        "source": str(ds["source"]),
        "separator": str(ds["separator"]),
        "supported_TA": _add_on(ds.get("supported_TA")),
        "asset_type": str(ds.get("asset_type", "AWS Account")),
        "domain": str(ds.get("domain", "cloud")),
        "story": str(ds.get("story", STORY)),
        "replay": str(ds["replay"]) if ds.get("replay") else None,
        "fields": sorted({n.split(".")[0] for n in names} | {"_time"}),
    }
    if "{EventID}" not in name:
        return [common]
    rows = (b.extra.get("rows") or {}).get("EventCode")
    chosen = selected_event_ids(rule.pipeline)
    ids = sorted(set(rows or chosen or ()) & set(chosen or rows or ()))
    if not ids:
        raise PackError(f"binding {b.name!r} names its contentctl data sources by EventID "
                        f"({name!r}), and the rule's first condition selects no EventID "
                        "(`EventID == n` or `EventID in (…)`)", "detection", "query")
    return [{**common, "name": name.replace("{EventID}", str(i))} for i in ids]


def selected_event_ids(pipeline: ir.Pipeline) -> list[int] | None:
    """The EventIDs the pipeline's first filter keeps (a conjunct `EventID == n` or `EventID in (n, …)`), or None
    when it does not restrict them."""
    if not pipeline.stages or not isinstance(pipeline.stages[0], ir.Filter):
        return None
    pred = pipeline.stages[0].predicate
    for term in pred.operands if isinstance(pred, ir.And) else (pred,):
        values: tuple[ir.Expr, ...] = ()
        if isinstance(term, ir.Compare) and term.op is ir.CmpOp.EQ:
            values = (term.right,) if _is_event_id(term.left) else (term.left,) if _is_event_id(term.right) else ()
        elif isinstance(term, ir.InList) and _is_event_id(term.subject):
            values = term.values
        ids = [v.value for v in values if isinstance(v, ir.Literal) and isinstance(v.value, int)
               and not isinstance(v.value, bool)]
        if values and len(ids) == len(values):
            return [int(i) for i in ids]
    return None


def _is_event_id(e: ir.Expr) -> bool:
    return isinstance(e, ir.Column) and e.name == "EventID" and not e.path


def _add_on(ta: Any) -> dict[str, Any]:
    """The binding's add-on (`supported_TA:` a mapping, or a list of one), else the AWS add-on."""
    ta = ta[0] if isinstance(ta, list) and ta else ta
    return dict(ta) if isinstance(ta, dict) else dict(AWS_TA)


def content_stem(name: str) -> str:
    """contentctl's file stem for a content name (its `contentNameToFileName`): the detection's file, and the
    `<stem>_filter` macro its search must end with. Only space, `-`, `.` and `/` become `_`."""
    return name.replace(" ", "_").replace("-", "_").replace(".", "_").replace("/", "_").lower()


class PackError(Exception):
    """A rule that cannot go into the pack as it is (the message says why); the pack goes on without it. `at`: the
    rule-file keys to point at, the first one the rule has (the CLI shows that key's line and column)."""

    def __init__(self, message: str, *at: str) -> None:
        super().__init__(message)
        self.at: tuple[str, ...] = (*at, "title")


def _fixtures_fit(rule: ir.RuleIR, binding: str | None) -> bool:
    """Whether the rule's fixtures (records as its base source writes them, which the base source's default binding
    reads as they are) are test data for the search: its binding's data source is that default binding's."""
    base, chosen = base_binding(rule, FEATURES), splunk_binding(rule, binding)
    if chosen is not None and chosen.extra.get("replays_fixtures") is False:  # the add-on indexes another shape
        return False  # (sysmon:linux is Sysmon for Linux's XML; the rule's fixtures are auditd's audit.log)
    return base is not None and chosen is not None and base.extra.get("data_source") == chosen.extra.get("data_source")


def positive_tests(rule: ir.RuleIR, binding: str | None, tests: Sequence[TestCase]) -> list[TestCase]:
    """The rule's tests that fire on its fixture records (the data a True Positive test replays)."""
    if not _fixtures_fit(rule, binding):
        return []
    return [t for t in tests if t.binding is None and (
        t.expect.kind == "fires" or (t.expect.kind == "rows" and t.expect.rows) or (t.expect.count or 0) > 0)]


def replayable(rule: ir.RuleIR, test: TestCase) -> bool:
    """Whether contentctl can replay the test as it is: it indexes the data and runs the search, with the lookups
    the pack ships, at its own time. A test that swaps in its own tables, or pins `now` for a rule that reads the
    clock, means something contentctl cannot reproduce."""
    return not test.lookups and not test.baselines and (test.now is None or not ir.reads_clock(rule.pipeline))


def _records_ndjson(log: Path, test: TestCase) -> str:
    """A fixture as Splunk's attack data is: one raw record per line (the executor's reader takes NDJSON, JSON
    arrays, CloudTrail {"Records": […]} and gzip; malformed lines are dropped, as the rule's tests skip them)."""
    import orjson

    from siemforge.backends.executor.reader import iter_events

    problems: list[str] = []
    records = list(iter_events(log, lambda m: problems.append(str(m))))
    if not records:
        why = problems[0] if problems else f"{log}: no records"
        raise PackError(f"test {test.name!r}: cannot use its logs as test data: {why}", "tests")
    return "".join(orjson.dumps(r).decode() + "\n" for r in records)


MAX_NAME = 67  # contentctl's CONTENTCTL_MAX_SEARCH_NAME_LENGTH: ES clones a search as `<domain> - ESCU - <name> - Rule`


def _author(rule: ir.RuleIR) -> str:
    """ESCU's `author` is "Name, Organization". The rule's own author is kept (a Sigma rule's authors are the
    attribution its licence asks for); the pack's publisher is the organization."""
    author = " ".join((rule.meta.author or "").split())
    return f"{author}, siemforge" if author and author != "siemforge" else "siemforge, siemforge"


def _version(rule: ir.RuleIR) -> int:
    """contentctl wants a non-negative integer version; a rule's `version:` may be `3` or `3.1` (major counts)."""
    text = str(rule.meta.version or "1").strip()
    m = re.fullmatch(r"(\d+)(?:\.\d+)*", text)
    if m is None:
        raise PackError(f"contentctl needs a whole-number version, not {text!r}", "version")
    return int(m.group(1))


def check_title(rule: ir.RuleIR) -> str:
    """The contentctl stem of the rule's title, if contentctl can use it as a file name and a macro name."""
    if len(rule.meta.title) > MAX_NAME:
        raise PackError(f"contentctl allows titles of at most {MAX_NAME} characters (ES adds its own prefix and "
                        f"suffix to a search's name); this one has {len(rule.meta.title)}")
    stem = content_stem(rule.meta.title)
    bad = sorted(set(re.sub(r"[a-z0-9_]", "", stem)))
    if bad or not stem:
        raise PackError(f"contentctl names the detection file and its `<name>_filter` macro after the title, and "
                        f"{rule.meta.title!r} has characters a macro name cannot hold: {' '.join(bad) or 'none left'};"
                        " use letters, digits, spaces, '-', '.' and '/'")
    return stem


def detection(
    rule: ir.RuleIR, binding: str | None, tests: Sequence[TestCase] = (), notes: list[str] | None = None
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The detection yml, its path, and the test data files it references (pack-relative path -> text). Why a
    production rule ships as experimental goes to `notes`."""
    stem = check_title(rule)
    spl = compile_spl(rule, binding).replace("\n", " ") + f" | `{stem}_filter`"
    risk, threat = [], []
    for ent in rule.entities:
        for f in ent.fields:
            if ent.kind in RISK_TYPES and f.identifier in ("name", "host_name"):
                risk.append({"field": f.column, "type": RISK_TYPES[ent.kind], "score": 50})
            elif ent.kind in THREAT_TYPES and f.identifier in ("address", "url", "name", "value", "domain_name"):
                threat.append({"field": f.column, "type": THREAT_TYPES[ent.kind]})
    if not risk:
        raise PackError("contentctl needs a risk object: map an account or host entity (`entities: {account: "
                        "{name: <column>}}` or `{host: {host_name: <column>}}`)", "entities")
    subject = risk[0]["field"]
    sources = data_sources(rule, binding)
    ds = sources[0]
    sourcetype, source = ds["sourcetype"], ds["source"]
    # contentctl requires a test for a production detection: the rule's own positive fixtures, shipped in the pack
    # (attack_data `data` may be a file path, resolved from the pack folder where contentctl runs)
    positives = positive_tests(rule, binding, tests) if ds["replay"] is None else []
    manual = bool(rule.baselines)  # contentctl test cannot run the baseline searches first
    data_files: dict[str, str] = {}
    unit_tests: list[dict[str, Any]] = []
    for t in positives:
        if not manual and not replayable(rule, t):
            continue
        attack_data = []
        for log in t.logs:
            text = _records_ndjson(log, t)
            rel = f"data/{stem}/{log.name.removesuffix('.gz')}"
            n = 1
            while data_files.get(rel, text) != text:  # another fixture of the same name: a name of its own
                n += 1
                base, dot, ext = log.name.removesuffix(".gz").rpartition(".")
                rel = f"data/{stem}/{base}-{n}.{ext}" if dot else f"data/{stem}/{ext}-{n}"
            data_files[rel] = text
            entry = {"data": rel, "source": source, "sourcetype": sourcetype}
            if entry not in attack_data:
                attack_data.append(entry)
        if attack_data not in [u["attack_data"] for u in unit_tests]:
            unit_tests.append({"name": "True Positive Test", "attack_data": attack_data})
    production = (rule.meta.status or "").lower() in PRODUCTION and bool(unit_tests)
    if (rule.meta.status or "").lower() in PRODUCTION and not production and notes is not None:
        why = (ds["replay"] if ds["replay"] is not None
               else "its fixtures are not records of this binding's data source" if not _fixtures_fit(rule, binding)
               else "none of its tests fires on logs that contentctl could replay (no tables of its own, no pinned "
               "`now` for a rule that reads the clock)")
        notes.append(f"status {rule.meta.status} but shipped as experimental: contentctl requires a True Positive "
                     f"test for production, and {why}")
    tags: dict[str, Any] = {
        "analytic_story": [ds["story"]],
        "asset_type": ds["asset_type"],
        "mitre_attack_id": _techniques(rule),
        "product": PRODUCTS,
        "security_domain": "threat",
    }
    if production and manual:
        # contentctl cannot run baseline searches before a test ("mark this as manual_test"); the executor's tests
        # build the table from history logs and prove the rule
        tables = ", ".join(b.table for b in rule.baselines)
        tags["manual_test"] = (f"Needs the {tables} baseline searches to have run first, which contentctl test does "
                               "not do; siemforge's rule tests build the table from history logs and prove it.")
    doc: dict[str, Any] = {
        "name": rule.meta.title,
        "id": rule.meta.id,
        "version": _version(rule),
        "date": _date(rule),
        "author": _author(rule),
        "status": "production" if production else "experimental",
        "type": "Anomaly",
        "description": " ".join(rule.meta.description.split()) or rule.meta.title,
        "data_source": [d["name"] for d in sources],
        "search": spl,
        "how_to_implement": "Compiled by siemforge from rules/; ingest "
        + f"{' and '.join(d['name'] for d in sources)} with the {ds['supported_TA']['name']}"
        + (" (XML rendering)." if "XmlWinEventLog" in f"{ds['sourcetype']} {ds['source']}" else ".")
        + (" Schedule the baseline searches of " + ", ".join(b.table for b in rule.baselines) + " first."
           if rule.baselines else ""),
        "known_false_positives": " ".join(rule.meta.falsepositives) or "None known.",
        "references": list(rule.meta.references),
        "drilldown_searches": [
            {
                "name": f'View the detection results for - "${subject}$"',
                "search": f'%original_detection_search% | search {subject} = "${subject}$"',
                "earliest_offset": "$info_min_time$",
                "latest_offset": "$info_max_time$",
            },
            {
                "name": f'View risk events for the last 7 days for - "${subject}$"',
                "search": f'| from datamodel Risk.All_Risk | search normalized_risk_object IN ("${subject}$") '
                "starthoursago=168 | stats count by normalized_risk_object",
                "earliest_offset": "$info_min_time$",
                "latest_offset": "$info_max_time$",
            },
        ],
        "rba": {"message": f"{rule.meta.title} by ${subject}$", "risk_objects": risk, "threat_objects": threat},
        "tags": tags,
        "tests": unit_tests,
    }
    return f"detections/{ds['domain']}/{stem}.yml", doc, data_files


def baselines(rule: ir.RuleIR, binding: str | None) -> dict[str, str]:
    """A seen-before table as ESCU ships it: a KV store lookup and two Baseline searches (Initial fills it from a
    long window, Update merges each new window in), linked to the detection by name."""
    files: dict[str, str] = {}
    for b in rule.baselines:
        columns = [c for c, _ in b.initial.columns or ()]
        files[f"lookups/{b.table}.yml"] = dump({
            "name": b.table,
            "id": str(uuid.uuid5(NAMESPACE, "lookup:" + b.table)),
            "version": 1,
            "date": _date(rule),
            "author": "siemforge, siemforge",
            "description": f"Seen-before table of {b.key}: first and last sighting, and whether the baseline holds "
            f"enough data ({_days(b.warmup)} days). Filled by its baseline searches.",
            "lookup_type": "kvstore",
            "fields": ["_key", *columns],
        })
        initial, update = baseline_searches(rule, b, binding)
        label = b.table.replace("_", " ").title()
        for kind, spl in (("Initial", initial), ("Update", update)):
            name = f"{label} - {kind}"
            files[f"baselines/{content_stem(name)}.yml"] = dump({
                "name": name,
                "id": str(uuid.uuid5(NAMESPACE, f"baseline:{b.table}:{kind}")),
                "version": 1,
                "date": _date(rule),
                "author": "siemforge, siemforge",
                "type": "Baseline",
                "status": "production",
                "description": f"{kind} fill of the {b.table} table: the first and last sighting of each {b.key}"
                + (f", forgetting keys unseen for {_days(b.forget)} days." if kind == "Update" else "."),
                "search": spl.replace("\n", " "),
                "how_to_implement": "Run the Initial search once over history, then schedule the Update search.",
                "known_false_positives": "None: this search builds a table, it does not alert.",
                "references": [],
                "tags": {
                    "analytic_story": [STORY],
                    "detections": [rule.meta.title],
                    "product": PRODUCTS,
                    "security_domain": "threat",
                },
            })
    return files


def _days(d: timedelta) -> str:
    return f"{d.total_seconds() / 86400:g}"


def build_pack(
    rules: list[ir.RuleIR],
    binding: str | None,
    tests: Mapping[str, Sequence[TestCase]] | None = None,
    on_error: Callable[[ir.RuleIR, PackError], None] | None = None,
    on_note: Callable[[ir.RuleIR, str], None] | None = None,
) -> dict[str, str]:
    """Relative path -> text of the pack's files. `tests` (rule id -> the rule's tests) supplies the fixtures that
    make a production rule's contentctl tests; without them every detection ships as experimental. A rule that
    cannot go in is passed to `on_error` with the PackError saying why and left out (without `on_error`: raised)."""
    files: dict[str, str] = {}
    macros: dict[str, dict[str, Any]] = {}
    stems: dict[str, str] = {}
    used_sources: dict[str, dict[str, Any]] = {}
    for rule in rules:
        try:
            notes: list[str] = []
            path, doc, data = detection(rule, binding, (tests or {}).get(rule.meta.id, ()), notes)
            if path in stems:
                raise PackError(f"its contentctl file name {path} is also that of {stems[path]!r}: "
                                "contentctl names files after titles, so titles must differ in more than "
                                "punctuation")
        except PackError as exc:
            if on_error is None:
                raise
            on_error(rule, exc)
            continue
        stems[path] = rule.meta.title
        for ds in data_sources(rule, binding):
            used_sources.setdefault(ds["name"], ds)
        for note in notes:
            if on_note is not None:
                on_note(rule, note)
        files[path] = dump(doc)
        files.update(data)
        extra = baselines(rule, binding)
        files.update(extra)
        searches = [doc["search"], *(v for k, v in extra.items() if k.startswith("baselines/"))]
        for name, m in binding_macros(*searches).items():
            macros[name] = {
                "name": name,
                "definition": str(m["definition"]),
                "description": " ".join(str(m.get("description", name)).split()),
            }
        for t in rule.lookups:
            if any(b.table == t.name for b in rule.baselines):  # a KV store collection: baselines fill it
                continue
            with open(t.path, newline="", encoding="utf-8") as fh:
                rows = list(csv.reader(fh))
            files[f"lookups/{t.name}.csv"] = "".join(",".join(r) + "\n" for r in rows)
            files[f"lookups/{t.name}.yml"] = dump(
                {
                    "name": t.name,
                    "id": str(uuid.uuid5(NAMESPACE, "lookup:" + t.name)),
                    "version": 1,
                    "date": DEFAULT_DATE,
                    "author": "siemforge, siemforge",
                    "lookup_type": "csv",
                    "description": f"siemforge lookup table {t.name}",
                    "case_sensitive_match": True,
                }
            )
    for name, m in macros.items():
        files[f"macros/{name}.yml"] = dump(m)
    # the pack's app: a short label, because ES clones a search as `<domain> - <label> - <name> - Rule` (≤ 99 chars)
    files["contentctl.yml"] = dump(
        {
            "path": ".",
            "app": {
                "uid": 99999,  # contentctl wants a Splunkbase-style number below 100000; not a published app
                "title": "siemforge detections",
                "appid": "siemforge_content",
                "version": "1.0.0",
                "description": "Detections compiled by siemforge",
                "prefix": "SF",
                "label": "SF",
                "author_name": "siemforge",
                "author_email": "siemforge@example.invalid",
                "author_company": "siemforge",
            },
            "verbose": False,
            "enforce_deprecation_mapping_requirement": False,
            "enrichments": False,
            "build_app": True,
            "build_api": False,
            "data_source_TA_validation": False,
            "test_data_caches": [],
            "build_path": "dist",
            "mode": {"mode_name": "All"},
            "post_test_behavior": "pause_on_failure",
            "enable_integration_testing": False,
            "apps": [],
        }
    )
    for story in sorted({str(ds["story"]) for ds in used_sources.values()} or {STORY}):
        text = STORIES[story]
        files[f"stories/{content_stem(story)}.yml"] = dump(
            {
                "name": story,
                "id": str(uuid.uuid5(NAMESPACE, "story" if story == STORY else "story:" + story)),
                "version": 1,
                "date": DEFAULT_DATE,
                "author": "siemforge, siemforge",
                "status": "production",
                "description": text["description"],
                "narrative": text["narrative"],
                "references": [],
                "tags": {
                    "category": text["category"],
                    "product": PRODUCTS,
                    "usecase": "Advanced Threat Detection",
                },
            }
        )
    for ds in used_sources.values():
        name = ds["name"]
        files[f"data_sources/{slug(name)}.yml"] = dump(
            {
                "name": name,
                "id": str(uuid.uuid5(NAMESPACE, "data_source:" + name)),
                "version": 1,
                "date": DEFAULT_DATE,
                "author": "siemforge, siemforge",
                "description": f"{name} records",
                "source": ds["source"],
                "sourcetype": ds["sourcetype"],
                "separator": ds["separator"],
                "supported_TA": [ds["supported_TA"]],
                "fields": ds["fields"],
            }
        )
    return files


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000)

