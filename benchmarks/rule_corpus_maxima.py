"""The largest rule-file measures in a rule corpus (default: the SigmaHQ corpus in ../shared, and rules/), to set and
check the rule-file limits in compiler/limits.py: bytes, YAML nesting depth, YAML nodes, detection values, the
longest text value, the longest `query:` and its bracket nesting, and whether any file uses anchors, aliases or
merge keys.

    python benchmarks/rule_corpus_maxima.py [DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from siemforge.compiler import limits
from siemforge.compiler.api import discover_rules

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = [ROOT.parent / "shared" / "data" / "sigma" / "rules", ROOT / "rules"]


def depth_and_nodes(node: Any, depth: int = 1) -> tuple[int, int]:
    if isinstance(node, yaml.MappingNode):
        children = [c for kv in node.value for c in kv]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        return depth, 1
    best, total = depth, 1
    for c in children:
        d, n = depth_and_nodes(c, depth + 1)
        best, total = max(best, d), total + n
    return best, total


def leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(leaves(v) for v in value) or 1
    return 1


def longest_text(value: Any) -> int:
    if isinstance(value, dict):
        return max([longest_text(v) for v in value.values()] + [len(str(k)) for k in value] + [0])
    if isinstance(value, list):
        return max([longest_text(v) for v in value] + [0])
    return len(str(value)) if isinstance(value, str) else 0


def bracket_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "([":
            depth += 1
            best = max(best, depth)
        elif ch in ")]":
            depth = max(depth - 1, 0)
    return best


def main() -> int:
    roots = [Path(a) for a in sys.argv[1:]] or [d for d in DEFAULT if d.exists()]
    files = discover_rules(roots)
    maxima: dict[str, tuple[int, str]] = {}
    features: dict[str, list[str]] = {"anchors": [], "aliases": [], "merge keys": []}

    def note(key: str, value: int, f: Path) -> None:
        if value > maxima.get(key, (-1, ""))[0]:
            maxima[key] = (value, str(f))

    for f in files:
        data = f.read_bytes()
        note("bytes", len(data), f)
        text = data.decode("utf-8")
        for ev in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(ev, yaml.AliasEvent):
                features["aliases"].append(str(f))
            elif getattr(ev, "anchor", None):
                features["anchors"].append(str(f))
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
        if node is None:
            continue
        d, n = depth_and_nodes(node)
        note("YAML depth", d, f)
        note("YAML nodes", n, f)
        if any(k.tag == "tag:yaml.org,2002:merge" for k in _keys(node)):
            features["merge keys"].append(str(f))
        value = yaml.load(text, Loader=yaml.CSafeLoader)
        if not isinstance(value, dict):
            continue
        det = value.get("detection")
        if isinstance(det, dict):
            note("detection values", leaves({k: v for k, v in det.items() if k != "condition"}), f)
            cond = det.get("condition")
            for c in cond if isinstance(cond, list) else [cond]:
                if isinstance(c, str):
                    note("condition chars", len(c), f)
                    note("condition bracket depth", bracket_depth(c), f)
        note("longest text value", longest_text(value), f)
        q = value.get("query")
        if isinstance(q, str):
            note("query chars", len(q), f)
            note("query bracket depth", bracket_depth(q), f)
    print(f"{len(files)} rule files under {', '.join(map(str, roots))}")
    for key, (v, f) in maxima.items():
        print(f"  max {key:<26} {v:>9,}  ({f})")
    for key, found in features.items():
        print(f"  files using YAML {key}: {len(found)}" + (f" (e.g. {found[0]})" if found else ""))
    print("limits (compiler/limits.py):")
    for name in sorted(n for n in dir(limits) if n.isupper()):
        print(f"  {name} = {getattr(limits, name):,}")
    return 0


def _keys(node: Any) -> list[Any]:
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, yaml.MappingNode):
            out.extend(k for k, _ in n.value)
            stack.extend(c for kv in n.value for c in kv)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return out


if __name__ == "__main__":
    sys.exit(main())
