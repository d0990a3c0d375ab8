"""How many rules of a corpus compile to SPL on an add-on binding (none "as written"), the refusals counted by
reason, and whether every search parses with grammars/spl.lark.

    python tools/splunk_coverage.py ../shared/data/sigma/rules/cloud/azure [--top 10]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import lark

from siemforge.backends.spl.lower import FEATURES, compile_spl
from siemforge.compiler.api import compile_file, discover_rules, rule_root
from siemforge.compiler.diagnostics import CompileError, Severity
from siemforge.compiler.lowering import bind

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    parser = lark.Lark((ROOT / "grammars" / "spl.lark").read_text(), parser="earley")
    files = discover_rules(args.paths)
    reasons: Counter[str] = Counter()
    by_binding: Counter[str] = Counter()
    as_written = unparsed = 0
    for f in files:
        res = compile_file(f, root=rule_root(f, args.paths))
        if res.rule is None:
            first = next((d for d in res.diagnostics if d.severity is Severity.ERROR), None)
            reasons["(rule does not load) " + (first.message if first else "?")[:90]] += 1
            continue
        try:
            spl = compile_spl(res.rule, None)
        except CompileError as exc:
            reasons[exc.diagnostics[0].message[len(res.rule.meta.title) + 2:][:100]] += 1
            continue
        bound = bind(res.rule, FEATURES, None).binding
        if bound is None:
            as_written += 1
        else:
            by_binding[f"{bound.source}@{bound.name}"] += 1
        try:
            parser.parse(spl)
        except lark.exceptions.LarkError:
            unparsed += 1
    print(f"rules: {len(files)}; on an add-on binding: {sum(by_binding.values())}; as written: {as_written}; "
          f"refused: {sum(reasons.values())}; searches spl.lark does not parse: {unparsed}")
    print("by binding: " + ", ".join(f"{b} {n}" for b, n in by_binding.most_common()))
    print(f"refusals by reason (top {args.top} of {len(reasons)}):")
    for r, n in reasons.most_common(args.top):
        print(f"  {n:5d}  {r}")


if __name__ == "__main__":
    main()
