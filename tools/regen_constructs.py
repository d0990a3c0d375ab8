"""Regenerate the expected outputs of tests/test_constructs.py from what the backends emit now.

    python tools/regen_constructs.py          # rewrite the ROWS block in place; review `git diff` before committing
    python tools/regen_constructs.py --check  # exit 1 if any expectation would change (nothing written)

The constructs and their queries are edited by hand in the file (a new row can start with `{}` as its expectations);
only the expected outputs are generated, and the rows are kept in the order of docs/semantics.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "tests" / "test_constructs.py"
BEGIN, END = "# BEGIN ROWS", "# END ROWS"


def render_text(text: str, indent: int) -> str:
    """A string literal, one source line per line of the text (implicit concatenation inside parentheses)."""
    lines = text.splitlines(keepends=True) or [""]
    if len(lines) == 1:
        return repr(lines[0])
    pad = " " * (indent + 1)
    return "(" + ("\n" + pad).join(repr(line) for line in lines) + ")"


def render_row(row: object, expected: dict[str, object]) -> str:
    from test_constructs import Unsupported

    flags = (", sigma=True" if row.sigma else "") + (", lookups=True" if row.lookups else "")  # type: ignore[attr-defined]
    flags += ", correlation=True" if row.correlation else ""  # type: ignore[attr-defined]
    out = [f"    Row({row.construct!r}, {row.query!r}, {{"]  # type: ignore[attr-defined]
    for target, value in expected.items():
        key = f"        {target!r}: "
        if isinstance(value, Unsupported):
            out.append(f"{key}Unsupported({value.reason!r}),")
        else:
            out.append(key + render_text(str(value), len(key)) + ",")
    out.append(f"    }}{flags}),")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    import test_constructs

    text = TABLE.read_text(encoding="utf-8")
    start = text.index("\n", text.index(BEGIN)) + 1
    stop = text.index(END)
    changed = 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        order = test_constructs.doc_constructs()  # rows grouped in the docs' order, stable within a construct
        for i, row in enumerate(sorted(test_constructs.ROWS, key=lambda r: order.index(r.construct))):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            expected = test_constructs.compile_row(row, folder)
            changed += expected != row.expected
            rows.append(render_row(row, expected))
    print(f"{len(rows)} rows, {changed} with new expectations")
    if "--check" in argv:
        return 1 if changed else 0
    TABLE.write_text(text[:start] + "ROWS = [\n" + "\n".join(rows) + "\n]\n" + text[stop:], encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
