"""`siemforge import splunk`: Splunk ESCU detection YAML and savedsearches.conf stanzas become siemforge rules.

This module reads the inputs (with each search character's place in its file, for refusals at line:column) and
writes the rules; importers/spl_translate.py translates the SPL. An imported rule is compiled before it is written, so
a rule that is written always compiles; a rule that does not is refused like any other construct."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .common import ImportOutcome, InputFileError, formatted
from .spl_translate import Macro, Refusal, Search, Translator, split_commands

if TYPE_CHECKING:
    from siemforge.cli.outputs import OutputDir
    from siemforge.compiler.ir import RuleIR

__all__ = ["MacroFileError", "import_splunk", "read_macros", "split_commands"]


# ---------------------------------------------------------------------------------------------- reading the inputs


def _align(value: str, text: str, start: int) -> list[int]:
    """Where each character of a YAML/conf scalar's value sits in the file: the value's characters are found in
    order from `start`, so folding, quoting and line continuations are stepped over."""
    out: list[int] = []
    p = start
    for ch in value:
        q = p
        while q < len(text) and text[q] != ch and not (ch == " " and text[q] == "\n"):
            q += 1
            if q - p > 200:  # not found nearby: keep the last position
                q = p
                break
        out.append(min(q, len(text) - 1))
        p = q + 1 if q < len(text) and (text[q] == ch or ch == " ") else p
    return out


def _read_text(path: Path) -> str | ImportOutcome:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return ImportOutcome(path, path.stem, "refused", f"cannot read the file: {e}", None, None, ())


def _read_yaml(path: Path) -> list[Search | ImportOutcome]:
    text = _read_text(path)
    if isinstance(text, ImportOutcome):
        return [text]
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        return [ImportOutcome(path, path.stem, "refused", f"not valid YAML: {getattr(e, 'problem', e)}",
                              mark.line + 1 if mark else None, mark.column + 1 if mark else None, ())]
    if not isinstance(data, dict) or not isinstance(data.get("search"), str):
        return [ImportOutcome(path, path.stem, "refused", "not an ESCU detection (no `search:` text)", 1, 1, ())]
    start = 0
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == "search":
                start = v.start_mark.index
    spl = data["search"]
    return [Search(path, str(data.get("name") or path.stem), spl, _align(spl, text, start), text, data)]


def _read_conf(path: Path) -> list[Search | ImportOutcome]:
    """savedsearches.conf: `[stanza]` then `key = value` lines; a value continues on the next line after `\\`."""
    text = _read_text(path)
    if isinstance(text, ImportOutcome):
        return [text]
    out: list[Search | ImportOutcome] = []
    stanza: str | None = None
    keys: dict[str, tuple[str, int]] = {}
    lines = text.split("\n")
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)

    def flush() -> None:
        if stanza is None or stanza == "default":
            return
        if "search" not in keys:
            return
        spl, off = keys["search"]
        meta = {k: v for k, (v, _) in keys.items()}
        meta["name"] = stanza
        out.append(Search(path, stanza, spl, _align(spl, text, off), text, meta))

    i = 0
    while i < len(lines):
        ln = lines[i]
        s = ln.strip()
        if s.startswith("[") and s.endswith("]"):
            flush()
            stanza, keys = s[1:-1], {}
        elif "=" in s and not s.startswith("#") and stanza is not None:
            key, _, val = ln.partition("=")
            start = offsets[i] + len(key) + 1 + (len(val) - len(val.lstrip()))
            val = val.strip()
            while val.endswith("\\") and i + 1 < len(lines):
                i += 1
                val = val[:-1] + "\n" + lines[i].strip()
            keys[key.strip()] = (val, start)
        i += 1
    flush()
    return out


class MacroFileError(InputFileError):
    """A macros file (`--macros`) that cannot be read or parsed."""


def _macro_text(f: Path) -> str:
    try:
        return f.read_text(encoding="utf-8")
    except OSError as exc:
        raise MacroFileError(f, None, None, f"cannot read the macros file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise MacroFileError(f, None, None, f"the macros file is not UTF-8 text: {exc.reason}") from None


def _macro_yaml(f: Path) -> object:
    try:
        return yaml.safe_load(_macro_text(f))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if problem.startswith("but ") and getattr(exc, "context", None):  # "expected a single document … but found"
            problem = f"{exc.context} {problem}"  # type: ignore[attr-defined]
        raise MacroFileError(f, mark.line + 1 if mark else None, mark.column + 1 if mark else None,
                             f"not a macro YAML file: {problem}") from None


def read_macros(paths: Sequence[Path]) -> dict[str, Macro]:
    """ESCU macro YAML (`name`, `definition`, `arguments`) or macros.conf (`[name(n)]`, `definition`, `args`);
    MacroFileError for a file that cannot be read or parsed."""
    found: dict[str, Macro] = {}
    files: list[Path] = []
    for p in paths:
        files.extend(sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p])
    for f in files:
        if f.suffix in (".yml", ".yaml"):
            d = _macro_yaml(f)
            if isinstance(d, dict) and isinstance(d.get("name"), str) and "definition" in d:
                found[d["name"]] = Macro(str(d["definition"]), tuple(str(a) for a in d.get("arguments") or ()))
        elif f.suffix == ".conf":
            stanza = None
            for ln in _macro_text(f).splitlines():
                s = ln.strip()
                if s.startswith("[") and s.endswith("]"):
                    stanza = re.sub(r"\(\d+\)$", "", s[1:-1])
                    found[stanza] = Macro("")
                elif stanza and "=" in s:
                    k, _, v = s.partition("=")
                    if k.strip() == "definition":
                        found[stanza].definition = v.strip()
                    elif k.strip() == "args":
                        found[stanza].args = tuple(a.strip() for a in v.split(","))
    return found


# ---------------------------------------------------------------------------------------------- writing a rule


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "rule"


class _Literal(str):
    pass


class _RuleDumper(yaml.SafeDumper):
    """Writes a rule: the query as a literal block, one stage per line (registered on this class only)."""


def _literal(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


_RuleDumper.add_representer(_Literal, _literal)


def _wrap(stage: str, width: int = 100) -> str:
    """Break a long stage at its top-level `and`s and commas, one clause per line, like a hand-written rule."""
    lines = stage.split("\n")
    out = []
    for line in lines:
        while len(line) > width:
            depth, cut, quote = 0, -1, False
            for i, ch in enumerate(line):
                if ch == '"' and (i == 0 or line[i - 1] != "\\"):
                    quote = not quote
                elif not quote and ch == "(":
                    depth += 1
                elif not quote and ch == ")":
                    depth -= 1
                elif not quote and depth == 0 and i <= width and i > 20:
                    if line.startswith(" and ", i):
                        cut = i + 1
                    elif ch == "," and line[i + 1:i + 2] == " ":
                        cut = i + 2
            if cut <= 0:
                break
            out.append(line[:cut].rstrip())
            line = "      " + line[cut:].lstrip()
        out.append(line)
    return "\n".join(out)


def _schedule(meta: dict[str, Any], notes: list[str]) -> dict[str, str] | None:
    """savedsearches.conf `cron_schedule` and `dispatch.earliest_time` as the rule's `schedule:` where the cron is a
    fixed period (every N minutes, hours or days) and the window a plain offset; otherwise a note says so."""
    cron, earliest = meta.get("cron_schedule"), meta.get("dispatch.earliest_time")
    if not isinstance(cron, str):
        return None
    period = None
    for pattern, unit in ((r"\*/(\d+) \* \* \* \*", "m"), (r"\d+ \* \* \* \*", "1h"), (r"\d+ \*/(\d+) \* \* \*", "h"),
                          (r"\d+ \d+ \* \* \*", "1d"), (r"\d+ \d+ \*/(\d+) \* \*", "d")):
        m = re.fullmatch(pattern, cron.strip())
        if m:
            period = unit if unit[0] == "1" else m.group(1) + unit
            break
    if period is None:
        notes.append(f"cron_schedule {cron!r} is not a fixed period; the rule has no schedule")
        return None
    out = {"every": period}
    if isinstance(earliest, str):
        w = re.fullmatch(r"-(\d+)([mhd])(@[mhd])?", earliest.strip())
        if w is None:
            notes.append(f"dispatch.earliest_time {earliest!r} is not an offset; the lookback is the period")
        else:
            out["lookback"] = w.group(1) + w.group(2)
            if w.group(3):
                notes.append(f"dispatch.earliest_time {earliest!r}: the window is {out['lookback']}, not snapped")
    return out


def rule_document(search: Search, t: Translator) -> dict[str, Any]:
    meta = search.meta
    doc: dict[str, Any] = {"title": search.name}
    if meta.get("id"):
        doc["id"] = str(meta["id"])
    if meta.get("status"):
        doc["status"] = str(meta["status"])
    if meta.get("description"):
        doc["description"] = " ".join(str(meta["description"]).split())
    if meta.get("author"):
        doc["author"] = str(meta["author"])
    refs = [f"imported from {search.origin.name}"]
    refs += [str(r) for r in meta.get("references") or () if isinstance(r, str)]
    doc["references"] = refs
    tags = [f"attack.{str(x).lower()}" for x in (meta.get("tags") or {}).get("mitre_attack_id") or ()]
    if tags:
        doc["tags"] = tags
    fps = meta.get("known_false_positives")
    if isinstance(fps, str) and fps.strip():
        doc["falsepositives"] = [" ".join(fps.split())]
    from siemforge.compiler.sources import package_sources

    logsource = dict(package_sources()[t.s.source].logsource)  # the source's own (a view's names its category)
    doc["logsource"] = logsource
    if t.lookups:
        doc["lookups"] = t.lookups
    if t.baselines:
        doc["baselines"] = t.baselines
    schedule = _schedule(meta, t.notes)
    if schedule:
        doc["schedule"] = schedule
    if t.detection:
        conds = t.detection_condition
        cond = " and ".join(c[1:-1] if len(conds) == 1 and c.endswith(")") and c.startswith("(")
                            and Translator.balanced(c[1:-1]) else c for c in conds)
        doc["detection"] = {**t.detection, "condition": cond}
    if t.stages:
        doc["query"] = _Literal("\n| ".join(_wrap(stage) for stage in t.stages) + "\n")
    return doc


def _render(search: Search, t: Translator, binding: str | None) -> str:
    head = [f"# Imported by `siemforge import splunk` from {search.origin.name}."]
    if binding and binding != "raw":
        head.append(f"# The search read the `{binding}` Splunk binding's field names; here they are the source's.")
    body_doc = rule_document(search, t)  # first: it may add notes
    head += [f"# Note: {n}" for n in t.notes]
    body = yaml.dump(body_doc, Dumper=_RuleDumper, sort_keys=False, width=110, allow_unicode=True)
    return "\n".join(head) + "\n" + body


def import_one(search: Search, out: OutputSink, macros: dict[str, Macro]) -> ImportOutcome:
    """Translate one search, compile the rule (with its lookups) in a temporary folder, and only then write it into
    the output folder through `out` (cli/outputs.py's OutputDir: a file of the user's, or one siemforge wrote that
    the user changed since, is never overwritten, and the rule counts as refused)."""
    from siemforge.cli.outputs import OutputError
    from siemforge.compiler.api import compile_file

    t = Translator(search, macros)
    try:
        t.run()
    except Refusal as r:
        line, col = search.position(r.at)
        return ImportOutcome(search.origin, search.name, "refused", r.reason, line, col, ())
    slug = _free_slug(_slug(search.name), search, out.written())
    rule_rel = f"{slug}/{slug}.yml"
    files: dict[str, str] = {rule_rel: formatted(_render(search, t, t.s.binding.name if t.s.binding else None),
                                                 str(out.root / rule_rel))}
    for table, header in t.tables.items():
        files[f"{slug}/lookups/{table}.csv"] = ",".join(header) + "\n"
    with tempfile.TemporaryDirectory(prefix="siemforge-import-") as tmp:
        for rel, text in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_text(text, encoding="utf-8")
        result = compile_file(Path(tmp) / rule_rel)
        errors = [d for d in result.diagnostics if d.severity.value == "error"]
        if result.rule is None or errors:
            why = errors[0].message if errors else "the imported rule does not compile"
            return ImportOutcome(search.origin, search.name, "refused", f"translation does not compile: {why}",
                                 None, None, ())
        notes = _other_targets(result.rule)
    written: list[Path] = []
    d = out.dir()  # a folder that cannot be used ends the import (exit 2), as for `import sentinel`
    try:
        for rel, text in files.items():
            if rel != rule_rel and _has_rows(out.root / rel, text):
                continue  # a lookup table already there with the header the rule reads: its rows (`siemforge
            d.write(rel, text)  # baseline`'s, or yours) are kept, never replaced by an empty table
            written.append(out.root / rel)
    except OutputError as exc:
        return ImportOutcome(search.origin, search.name, "refused", f"not written: {exc}", None, None, ())
    return ImportOutcome(search.origin, search.name, "imported", None, None, None, tuple(written), notes)


def _has_rows(path: Path, header: str) -> bool:
    """The file is a regular file (not a symlink) whose first line is `header`'s."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with path.open("rb") as fh:
            return fh.readline(len(header.encode()) + 2).rstrip(b"\r\n") == header.rstrip("\n").encode()
    except OSError:
        return False


def _free_slug(slug: str, search: Search, written: Collection[str]) -> str:
    """The rule's folder and file name: its name's slug, or for a second detection of the same name in one import
    (two stanzas, two ESCU files) the slug suffixed with the first 8 characters of its id, else a number, as
    `import sentinel` suffixes a second rule of one name: both are imported, each under its own name and id."""
    if f"{slug}/{slug}.yml" not in written:
        return slug
    ident = _slug(str(search.meta["id"]))[:8] if search.meta.get("id") else ""
    for candidate in ([f"{slug}_{ident}"] if ident else []) + [f"{slug}_{n}" for n in range(2, 10_000)]:
        if f"{candidate}/{candidate}.yml" not in written:
            return candidate
    return slug  # ten thousand of one name: the write says it cannot


def _other_targets(rule: RuleIR) -> tuple[str, ...]:
    """The targets that cannot say the imported rule (`target: why`), as `import sentinel` reports them: they do not
    stop the import, as they do not stop a hand-written rule, but the report says which and why (a seen-before table
    whose warmup does not fit in Sentinel's 14 days of history, say)."""
    from siemforge.backends.registry import targets
    from siemforge.compiler.diagnostics import CompileError

    notes: list[str] = []
    for tgt in targets().values():
        try:
            tgt.compile(rule, None)
        except CompileError as exc:
            notes.append(f"{tgt.name}: {exc.diagnostics[0].message}")
    return tuple(notes)


class OutputSink:
    """The output folder, opened (made) at the first rule written: a run that imports nothing leaves no folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dir: OutputDir | None = None

    def dir(self) -> OutputDir:
        from siemforge.cli.outputs import OutputDir

        if self._dir is None:
            self._dir = OutputDir.open(self.root)
        return self._dir

    def written(self) -> Collection[str]:
        """The files (relative to the folder) this import wrote so far."""
        return self._dir.written.keys() if self._dir is not None else ()

    def finish(self) -> None:
        if self._dir is not None:
            self._dir.finish()


def read_searches(paths: Sequence[Path]) -> list[Search | ImportOutcome]:
    found: list[Search | ImportOutcome] = []
    for p in paths:
        files = sorted(q for q in p.rglob("*") if q.suffix in (".yml", ".yaml", ".conf")) if p.is_dir() else [p]
        for f in files:
            if not f.exists():
                found.append(ImportOutcome(f, f.stem, "refused", "file not found", None, None, ()))
            elif f.suffix == ".conf":
                found.extend(_read_conf(f))
            else:
                found.extend(_read_yaml(f))
    return found


def import_splunk(paths: Sequence[Path], out_dir: Path, macros: Sequence[Path] = ()) -> list[ImportOutcome]:
    """Import every ESCU detection YAML and savedsearches.conf stanza under `paths` into `out_dir`, one folder per
    rule. Never raises for a bad rule: each input rule gets an outcome."""
    known = read_macros(macros)
    out: list[ImportOutcome] = []
    sink = OutputSink(out_dir)
    try:
        for item in read_searches(paths):
            out.append(item if isinstance(item, ImportOutcome) else import_one(item, sink, known))
    finally:
        sink.finish()
    return out
