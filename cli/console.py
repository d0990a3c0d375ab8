"""The CLI's consoles: text from rules, lookups and logs is printed as text, never as Rich markup.

A rule title `Payload [bold red]NOT[/bold red] :x: [link=http://evil]click[/link]` must print as written, not as
"Payload NOT ❌ click" with a terminal hyperlink planted. Every string the CLI prints, whether given to `print`
or held in a table cell, goes through `Console.render_str`; here it is always plain: no markup, no emoji codes, no
highlighting, and control characters (a log's ESC sequences, bidi overrides) shown as escapes instead of being
sent to the terminal. Styling the CLI's own words is done with `rich.text.Text` (see `styled`).
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides/isolates ("Trojan Source")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\u202e`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


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


out = TextConsole(soft_wrap=True)
err = TextConsole(stderr=True, soft_wrap=True)
