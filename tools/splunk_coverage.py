"""How many rules of a corpus compile to Splunk SPL on a binding, counted by the binding each compiled on, the
refusals counted by reason, the searches grammars/spl.lark does not parse, and the searches whose base search has
no positive term (every positive condition after a `|`).

    python tools/splunk_coverage.py ../shared/data/sigma/rules/windows [--binding cim] [--top 10]

`--binding` names the binding every rule is compiled on (a source without it is refused); without it each rule
takes its source's default binding. A reason is the refusal's message with the rule's own words taken out
(tools/sentinel_coverage.py).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import lark

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentinel_coverage import reason  # noqa: E402

from siemforge.backends.spl.lower import compile_spl, row_terms, splunk_binding  # noqa: E402
from siemforge.compiler.api import compile_file, discover_rules, rule_root  # noqa: E402
from siemforge.compiler.diagnostics import CompileError, Severity  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def positive_base_terms(spl: str, prefix: str, rows: list[str]) -> bool:
    """Whether the search's first command holds a positive term besides the binding's own source prefix: its row
    terms (EventCode=1) or a term of the rule that is not a negation."""
    first = spl.split("\n")[0]
    if first.startswith("| tstats"):
        where = first.split(" where ", 1)[1] if " where " in first else ""
        where = where.split(" by ", 1)[0].strip()
        return bool(where) and not where.startswith("NOT ")
    rest = first.removeprefix("search ").removeprefix(prefix).strip()
    if rows:
        return True
    return bool(rest) and not rest.startswith("NOT ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--binding", default=None)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    parser = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley", lexer="dynamic")
    files = discover_rules(args.paths)
    reasons: Counter[str] = Counter()
    by_binding: Counter[str] = Counter()
    not_loaded = compiled = 0
    parse_failures: list[str] = []
    no_positive: list[str] = []
    for f in files:
        res = compile_file(f, root=rule_root(f, args.paths))
        if res.rule is None:
            not_loaded += 1
            first = next((d for d in res.diagnostics if d.severity is Severity.ERROR), None)
            reasons["(rule does not load) " + (first.message if first else "?")[:90]] += 1
            continue
        try:
            spl = compile_spl(res.rule, args.binding)
        except CompileError as exc:
            reasons[reason(exc.diagnostics[0].message, res.rule.meta.title)] += 1
            continue
        compiled += 1
        binding = splunk_binding(res.rule, args.binding)
        by_binding["asis" if binding is None else binding.name] += 1
        try:
            parser.parse(spl)
        except lark.LarkError:
            parse_failures.append(str(f))
        prefix = str(binding.extra.get("search", "")) if binding is not None else ""
        rows = row_terms(binding) if binding is not None and not binding.extra.get("datamodel") else []
        if "\n| where " in spl and not positive_base_terms(spl, prefix, rows):
            no_positive.append(str(f))
    print(f"binding: {args.binding or '(default)'}; rules: {len(files)}; compiled: {compiled}; "
          f"refused: {len(files) - compiled} (of which {not_loaded} do not load); "
          f"spl.lark parse failures: {len(parse_failures)}; no positive base-search term: {len(no_positive)}")
    print("compiled by binding: " + ", ".join(f"{b} {n}" for b, n in by_binding.most_common()))
    print(f"refusals by reason (top {args.top} of {len(reasons)}):")
    for r, n in reasons.most_common(args.top):
        print(f"  {n:5d}  {r}")
    for name in parse_failures[:10]:
        print(f"  does not parse: {name}")
    for name in no_positive[:10]:
        print(f"  no positive base-search term: {name}")


if __name__ == "__main__":
    main()
