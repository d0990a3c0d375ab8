"""Writing imported rules as readable YAML: file names from rule names, scalars, literal and folded blocks."""

from __future__ import annotations


def rule_slug(name: str) -> str:
    """A folder and file name made of a rule's name: lower case, runs of anything but letters and digits as `_`."""
    out = "".join(c.lower() if c.isascii() and c.isalnum() else "_" for c in name)
    return "_".join(p for p in out.split("_") if p)[:80] or "rule"


def yaml_scalar(value: str) -> str:
    """A YAML scalar for `value` on one line: plain when YAML reads it back as the same string, else JSON-quoted
    (JSON strings are YAML double-quoted strings)."""
    import json

    import yaml

    if value and "\n" not in value and value == value.strip() and not value.startswith(("'", '"', "[", "{", "&", "*",
                                                                                          "!", "|", ">", "%", "@",
                                                                                          "`", "#", "-", "?", ":")):
        try:
            if yaml.safe_load(f"k: {value}") == {"k": value} and ": " not in value and " #" not in value:
                return value
        except yaml.YAMLError:
            pass
    return json.dumps(value, ensure_ascii=False)


def literal_block(text: str, indent: str = "  ") -> str:
    """`|-` block text for a multi-line value: each line indented (trailing spaces dropped)."""
    return "|-\n" + "\n".join((indent + line).rstrip() for line in text.strip("\n").split("\n"))


def folded(text: str, width: int = 110, indent: str = "  ") -> str:
    """`>-` block text for one paragraph of prose, wrapped at `width` (YAML folds the lines back into one)."""
    import textwrap

    if text != " ".join(text.split()):  # runs of spaces or leading/trailing ones would not survive folding
        return yaml_scalar(text)
    return ">-\n" + "\n".join(indent + line for line in textwrap.wrap(text, width - len(indent),
                                                                        break_long_words=False,
                                                                        break_on_hyphens=False))
