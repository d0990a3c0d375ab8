"""Check emitted KQL with Microsoft's Kusto.Language (npm @kusto/language-service-next) run by Node.

The checker is tools/kusto/check.js; `npm ci --prefix tools/kusto` installs the pinned library. Queries are
checked against the bound tables' schemas and a `_GetWatchlist()` declared with the rule set's lookup columns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from siemforge.compiler import ir
from siemforge.compiler.bindings import builtin_bindings
from siemforge.compiler.diagnostics import error


@dataclass(frozen=True, slots=True)
class KqlDiagnostic:
    severity: str
    code: str
    message: str
    line: int
    column: int
    length: int


def checker_dir() -> Path:
    env = os.environ.get("SIEMFORGE_KUSTO_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "tools" / "kusto"


def checker_available() -> str | None:
    """None when the checker can run, else the reason it cannot."""
    d = checker_dir()
    if shutil.which("node") is None:
        return "node is not installed"
    if not (d / "node_modules" / "@kusto" / "language-service-next").exists():
        return f"Kusto.Language is not installed: run `npm ci --prefix {d}`"
    return None


def watchlist_function(lookups: list[ir.LookupTable]) -> dict[str, str]:
    columns: dict[str, None] = {"SearchKey": None}
    for t in lookups:
        for c in t.columns:
            columns.setdefault(c, None)
    schema = ", ".join(f"['{c}']:string" for c in columns)
    return {"name": "_GetWatchlist", "parameters": "(watchlistAlias:string)", "body": "{ datatable(" + schema + ")[] }"}


def check_queries(queries: list[tuple[str, str]], lookups: list[ir.LookupTable]) -> list[list[KqlDiagnostic]]:
    reason = checker_available()
    if reason is not None:
        raise error(f"cannot check KQL: {reason}")
    tables = {b.table: b.schema for b in builtin_bindings().values() if b.target == "sentinel" and b.table}
    payload = {
        "tables": tables,
        "functions": [watchlist_function(lookups)],
        "queries": [{"name": n, "query": q} for n, q in queries],
    }
    proc = subprocess.run(
        ["node", str(checker_dir() / "check.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise error(f"the Kusto.Language checker failed: {proc.stderr.strip()[:500]}")
    results = json.loads(proc.stdout)
    out: list[list[KqlDiagnostic]] = []
    for (_, query), res in zip(queries, results):
        diags = []
        for d in res["diagnostics"]:
            line, col = _line_col(query, int(d["start"]))
            diags.append(
                KqlDiagnostic(str(d["severity"]), str(d["code"]), str(d["message"]), line, col, int(d["length"]))
            )
        out.append(diags)
    return out


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1
