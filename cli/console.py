"""The CLI's two consoles (results on stdout, diagnostics on stderr) and the printing helpers every command shares.

Text from rules, lookups and logs is printed as text, never as Rich markup.

A rule title `Payload [bold red]NOT[/bold red] :x: [link=http://evil]click[/link]` must print as written, not as
"Payload NOT ❌ click" with a terminal hyperlink planted. Every string the CLI prints, whether given to `print`
or held in a table cell, goes through `Console.render_str`; here it is always plain: no markup, no emoji codes, no
highlighting, and control characters (a log's ESC sequences, bidi overrides) shown as escapes instead of being
sent to the terminal. A table cell holding a log's text is also kept on one line (`cell`: a newline is shown as
`\\n`), so that one value does not read as two rows. Styling the CLI's own words is done with `rich.text.Text`
(see `styled`).
Both consoles are made by `make_console`, the one place that says how siemforge's terminal output is set up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from siemforge.compiler.diagnostics import Diagnostic, Severity, render
from siemforge.compiler.limits import MAX_RULE_BYTES

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides/isolates ("Trojan Source")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\u202e`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


_CELL_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def cell(text: str) -> str:
    """`text` for one table cell: on one line, so a value's newline does not read as a second row (`\\n`, `\\r`,
    `\\t` written as escapes, as control characters are)."""
    return plain(text.translate(_CELL_BREAKS))


class TextConsole(Console):
    """A Console whose strings are text: markup, emoji codes and highlighting off, control characters escaped."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(plain(text), **kwargs)


def styled(text: str, style: str) -> Text:
    """The CLI's own word in a style (PASS, FAIL, ALERT), for a table cell or a print."""
    return Text(text, style=style)


def make_console(stderr: bool = False) -> Console:
    return TextConsole(stderr=stderr, soft_wrap=True)


out = make_console()
err = make_console(stderr=True)


def _source_lines(path: Path) -> list[str] | None:
    """The lines of a file a diagnostic points into: no more than a rule file may hold is read (a diagnostic about
    a 10 GB file, or /dev/zero, shows no source line rather than reading it)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_RULE_BYTES + 1)
        return data.decode("utf-8").splitlines() if len(data) <= MAX_RULE_BYTES else None
    except (OSError, UnicodeDecodeError):
        return None


def print_diagnostics(diags: list[Diagnostic], show_notes: bool = False) -> None:
    cache: dict[str, list[str] | None] = {}
    for d in diags:
        if d.severity is Severity.NOTE and not show_notes:
            continue
        lines = None
        if d.span is not None:
            if d.span.file not in cache:
                cache[d.span.file] = _source_lines(Path(d.span.file))
            lines = cache[d.span.file]
        style = {"error": "bold red", "warning": "yellow", "note": "cyan"}[d.severity.value]
        text = render(d, lines)
        first, _, rest = text.partition("\n")
        err.print(first, style=style, markup=False, highlight=False)
        if rest:
            err.print(rest, markup=False, highlight=False)
