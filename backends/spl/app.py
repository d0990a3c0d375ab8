"""A Splunk app from compiled rules: default/{app,savedsearches,macros,transforms}.conf, lookups/*.csv,
metadata/default.meta, and a deterministic .tgz of it. Conf text comes from Jinja2 templates; JSON values inside
it are built as data and dumped."""

from __future__ import annotations

import io
import json
import re
import tarfile
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2

from siemforge import __version__
from siemforge.compiler import ir
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import error

from .baseline import baseline_searches
from .lower import compile_spl

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("siemforge.backends.spl", "templates"), autoescape=False,
                          keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined)

RELATIONS = {ir.CmpOp.GT: "greater than", ir.CmpOp.LT: "less than", ir.CmpOp.EQ: "equal to",
             ir.CmpOp.NE: "not equal to"}
SEVERITY = {"informational": "informational", "low": "low", "medium": "medium", "high": "high",
            "critical": "critical"}


def binding_macros(*searches: str) -> dict[str, dict[str, Any]]:
    """The macros the searches call (`name`), as the Splunk binding that defines each writes it (`macros:`)."""
    out: dict[str, dict[str, Any]] = {}
    for name in re.findall(r"`([A-Za-z0-9_]+)`", "\n".join(searches)):
        for b in builtin_bindings().values():
            m = (b.extra.get("macros") or {}).get(name)
            if m:
                out[name] = m
    return out


def slug(title: str) -> str:
    """ESCU's file-stem convention: lower case, spaces and punctuation to `_`."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def conf_value(text: str) -> str:
    """One conf value on one line, from text a rule file chose: every line break, control character and run of
    white space becomes one space, so a title cannot start a new `[stanza]` or `key = value` line; a trailing
    backslash is dropped, since Splunk reads it as "the value goes on at the next line" and would take the next
    key into this value."""
    flat = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return re.sub(r"[\s\\]+$", "", " ".join(flat.split()))


def conf_search(spl: str) -> str:
    """The search as a conf value: stages joined on one line; a line break inside a quoted string or field name is
    kept with the conf continuation (backslash at the end of the line). Quotes are followed as SPL reads them
    (a backslash escapes the next character inside quotes), so a literal whose text holds a line break and `| `
    stays that literal."""
    out: list[str] = []
    quote = ""
    escaped = False
    for c in spl:
        if c == "\n":
            out.append("\\\n" if quote else " ")
            escaped = False
            continue
        out.append(c)
        if escaped:
            escaped = False
        elif quote and c == "\\":
            escaped = True
        elif c == quote:
            quote = ""
        elif not quote and c in "\"'":
            quote = c
    return "".join(out)


def cron(every: timedelta) -> str:
    minutes = int(every.total_seconds() // 60)
    if minutes <= 0:
        raise error(f"schedule every {every}: Splunk schedules in whole minutes")
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "0 0 * * *" if days == 1 else f"0 0 */{days} * *"
    if minutes % 60 == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    return f"*/{minutes} * * * *"


def relative(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"-{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"-{minutes // 60}h"
    return f"-{minutes}m"


@dataclass(frozen=True, slots=True)
class AppSpec:
    app_id: str = "siemforge_content"
    label: str = "siemforge detections"
    author: str = "siemforge"
    version: str = "1.0.0"
    stanza_prefix: str = "siemforge"


def build_app(rules: list[ir.RuleIR], binding: str | None, spec: AppSpec) -> dict[str, bytes]:
    """Relative path -> file content of the app folder `spec.app_id/`."""
    searches, macros, lookups, lookup_files = [], {}, {}, {}
    baselines: list[dict[str, Any]] = []
    for rule in rules:
        for b in rule.baselines:  # a seen-before table lives in the KV store, filled by two scheduled searches
            initial, update = baseline_searches(rule, b, binding)
            every = rule.schedule.every if rule.schedule else timedelta(hours=1)
            for kind, spl, when, window in (("Initial", initial, "0 2 * * 0", "-90d"),
                                            ("Update", update, cron(every), relative(every))):
                baselines.append({"stanza": f"{spec.stanza_prefix} - {b.table} - Baseline {kind}",
                                  "description": conf_value(f"{kind} fill of the {b.table} table: first and last "
                                                            f"sighting of each {b.key} ({rule.meta.title})"),
                                  "search": conf_search(spl), "cron": when, "earliest": window})
            columns = [c for c, _ in b.initial.columns or ()]
            lookups[b.table] = {"name": b.table, "kvstore": True, "fields": ", ".join(["_key", *columns])}
        spl = compile_spl(rule, binding)
        stem = slug(rule.meta.title)
        macros[f"{stem}_filter"] = {"name": f"{stem}_filter", "definition": "search *",
                                    "description": "Update this macro to limit the output results to filter out "
                                                   "false positives."}
        for name, m in binding_macros(spl).items():
            macros[name] = {"name": name, "definition": conf_value(str(m["definition"])),
                            "description": conf_value(str(m.get("description", "")))}
        for t in rule.lookups:
            if t.name in lookups:  # a KV store collection filled by baselines
                continue
            lookups[t.name] = {"name": t.name, "filename": f"{t.name}.csv", "kvstore": False}
            lookup_files[f"lookups/{t.name}.csv"] = Path(t.path).read_bytes()
        every = rule.schedule.every if rule.schedule else timedelta(hours=1)
        lookback = rule.schedule.lookback if rule.schedule else every
        thr = rule.alert.threshold
        op, value = thr.op, thr.value
        if op is ir.CmpOp.GE:
            op, value = ir.CmpOp.GT, value - 1
        elif op is ir.CmpOp.LE:
            op, value = ir.CmpOp.LT, value + 1
        attack = sorted({t.split(".", 1)[1].upper() for t in rule.meta.tags
                         if t.lower().startswith("attack.t")})
        tactics = sorted({t.split(".", 1)[1] for t in rule.meta.tags
                          if t.lower().startswith("attack.") and not t.lower().startswith("attack.t")})
        stanza = f"{spec.stanza_prefix} - {conf_value(rule.meta.title)} - Rule"
        searches.append({
            "stanza": stanza,
            "title": conf_value(rule.meta.title),
            "description": conf_value(rule.meta.description or rule.meta.title),
            "search": conf_search(spl + f"\n| `{stem}_filter`"),
            "cron": cron(every),
            "earliest": relative(lookback),
            "relation": RELATIONS[op],
            "quantity": value,
            "suppress": None if rule.alert.suppress is None else relative(rule.alert.suppress)[1:],
            "annotations": json.dumps({"mitre_attack": attack, "tactics": tactics}, sort_keys=True),
            "metadata": json.dumps({"detection_id": rule.meta.id, "detection_version": rule.meta.version or "1"},
                                   sort_keys=True),
            "severity": SEVERITY.get((rule.meta.level or "medium").lower(), "medium"),
        })
    common = {"version": __version__}
    files: dict[str, bytes] = {
        "default/app.conf": _ENV.get_template("app.conf.j2").render(
            **common, label=spec.label, author=spec.author, app_id=spec.app_id, app_version=spec.version,
            description="Detections compiled by siemforge").encode(),
        "default/savedsearches.conf": _ENV.get_template("savedsearches.conf.j2").render(
            **common, searches=sorted(searches, key=lambda s: s["stanza"]),
            baselines=sorted(baselines, key=lambda s: s["stanza"])).encode(),
        "default/macros.conf": _ENV.get_template("macros.conf.j2").render(
            **common, macros=[macros[k] for k in sorted(macros)]).encode(),
        "metadata/default.meta": _ENV.get_template("default.meta.j2").render(**common).encode(),
    }
    if lookups:
        files["default/transforms.conf"] = _ENV.get_template("transforms.conf.j2").render(
            **common, lookups=[lookups[k] for k in sorted(lookups)]).encode()
    collections = [v for v in lookups.values() if v.get("kvstore")]
    if collections:
        files["default/collections.conf"] = _ENV.get_template("collections.conf.j2").render(
            **common, collections=sorted(collections, key=lambda c: c["name"])).encode()
    files.update(lookup_files)
    return files


def package(app_id: str, files: dict[str, bytes]) -> bytes:
    """A deterministic .tgz: sorted entries, fixed times and owners, so the same rules give the same bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(app_id, p).parent) for p in files} | {app_id})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for rel in sorted(files):
            info = tarfile.TarInfo(f"{app_id}/{rel}")
            info.size, info.mode, info.mtime = len(files[rel]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[rel]))
    raw = buf.getvalue()
    # gzip stores a timestamp in its header: zero it so that the archive is byte-identical across runs
    return raw[:4] + b"\x00\x00\x00\x00" + raw[8:]
