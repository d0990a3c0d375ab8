"""Time and peak memory of `siemforge ir` on hostile rule files (issue 10): the alias bomb, a 10 MB rule, 1,000-level
nesting, a huge pattern, too many detection values, a 1,000-deep parenthesised query, and the largest accepted
inputs (a rule just under each limit). Each runs as its own process; its wall time and peak RSS (wait4) are printed.

    python benchmarks/hostile_rules.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from child import measure  # noqa: E402
from test_hostile_rules import HEAD, alias_bomb, nested_detection  # noqa: E402

from siemforge.compiler import limits  # noqa: E402


def cases() -> list[tuple[str, str]]:
    pattern = "(a+)+" * 20_000
    values = "".join(f"      - v{i}\n" for i in range(limits.MAX_DETECTION_VALUES + 1))
    accepted = "".join(f"      - v{i}\n" for i in range(limits.MAX_DETECTION_VALUES))
    return [
        ("alias bomb (15 lines, 9**10 values)", alias_bomb()),
        ("10 MB rule file", HEAD + "description: |\n" + ("  " + "x" * 98 + "\n") * 100_000),
        ("1,000-level nested detection", nested_detection(1000)),
        ("100-level nested detection", nested_detection(100)),
        ("100,000-character pattern", HEAD + f"detection:\n  sel:\n    userAgent|re: '{pattern}'\n  condition: sel\n"),
        (f"{limits.MAX_DETECTION_VALUES + 1:,} detection values",
         HEAD + "detection:\n  sel:\n    eventName:\n" + values + "  condition: sel\n"),
        ("1,000-deep parenthesised query", HEAD + "query: |\n  where " + "(" * 1000 + "x == 1" + ")" * 1000 + "\n"),
        ("2,000-term or-chain query",
         HEAD + "query: |\n  where " + " or ".join(f'eventName == "e{i}"' for i in range(2000)) + "\n"),
        (f"accepted: {limits.MAX_DETECTION_VALUES:,} detection values",
         HEAD + "detection:\n  sel:\n    eventName:\n" + accepted + "  condition: sel\n"),
        (f"accepted: a {limits.MAX_PATTERN_CHARS:,}-character contains",
         HEAD + f"detection:\n  sel:\n    userAgent|contains: '{'a' * limits.MAX_PATTERN_CHARS}'\n  condition: sel\n"),
        ("accepted: ~1 MB flow list (worst YAML memory per byte)",
         HEAD + "detection: {sel: {eventName: a}, condition: sel}\nfields: ["
         + ",".join(["1"] * (limits.MAX_YAML_NODES - 20)) + "]\n"),
    ]


def main() -> int:
    print(f"{'case':<52} {'exit':>4} {'wall s':>7} {'peak MB':>8}  first line of output")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases():
            rule = Path(tmp, "rule.yml")
            rule.write_text(text, encoding="utf-8")
            m = measure([sys.executable, "-m", "siemforge.cli.main", "ir", str(rule)])
            first = (m.stderr.decode(errors="replace").splitlines() or [""])[0].replace(str(rule), "rule.yml")[:90]
            print(f"{name:<52} {m.exit_code:>4} {m.seconds:>7.2f} {m.peak_mb:>8.1f}  {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
