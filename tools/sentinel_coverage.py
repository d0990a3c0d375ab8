"""How many rules of a corpus compile to Sentinel KQL on a binding, the refusals counted by reason, and the
Kusto.Language errors on what compiles (against the bound tables' schemas).

    python tools/sentinel_coverage.py ../shared/data/sigma/rules/windows [--binding SecurityEvent] [--top 10]

A reason is the refusal's message with the rule's own words taken out (its title, the field and file names are
kept where they say why: "field 'Hashes' has no column in the DeviceProcessEvents table").
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.kql.validate import check_queries
from siemforge.compiler import ir
from siemforge.compiler.api import compile_file, discover_rules, rule_root
from siemforge.compiler.diagnostics import CompileError, Severity


def reason(message: str, title: str) -> str:
    text = message[len(title) + 2:] if message.startswith(title + ": ") else message
    text = re.sub(r" \(binding '[^']*', [^)]*\)", "", text)
    text = re.sub(r"\"[^\"]*\"", '"…"', text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--binding", default=None)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    files = discover_rules(args.paths)
    queries: list[tuple[str, str]] = []
    lookups: list[ir.LookupTable] = []
    reasons: Counter[str] = Counter()
    not_loaded = 0
    for f in files:
        res = compile_file(f, root=rule_root(f, args.paths))
        if res.rule is None:
            not_loaded += 1
            first = next((d for d in res.diagnostics if d.severity is Severity.ERROR), None)
            reasons["(rule does not load) " + (first.message if first else "?")[:90]] += 1
            continue
        try:
            queries.append((str(f), compile_kql(res.rule, args.binding)))
            lookups.extend(res.rule.lookups)
        except CompileError as exc:
            d = exc.diagnostics[0]
            reasons[reason(d.message, res.rule.meta.title)] += 1
    results = check_queries(queries, lookups)
    bad = [(name, d) for (name, _), diags in zip(queries, results) for d in diags if d.severity == "Error"]
    refused = len(files) - len(queries)
    print(f"binding: {args.binding or '(default)'}; rules: {len(files)}; compiled: {len(queries)}; "
          f"refused: {refused} (of which {not_loaded} do not load); Kusto.Language errors: {len(bad)} "
          f"in {len({n for n, _ in bad})} queries")
    tables = Counter(q.split("\n", 1)[0] for _, q in queries)
    print("compiled by table: " + ", ".join(f"{t} {n}" for t, n in tables.most_common()))
    print(f"refusals by reason (top {args.top} of {len(reasons)}):")
    for r, n in reasons.most_common(args.top):
        print(f"  {n:5d}  {r}")
    for name, d in bad[:20]:
        print(f"  KQL error {d.code} in {name}: {d.message}")


if __name__ == "__main__":
    main()
