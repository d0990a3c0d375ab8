"""The compiled-rule cache: a hit gives the same IR; a changed rule or lookup table is a miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from siemforge.compiler.api import compile_file
from siemforge.compiler.cache import RuleCache

RULE = """title: t
logsource: {product: aws, service: cloudtrail}
lookups: {seen: seen.csv}
query: |
  where eventName == "RunInstances"
  | lookup seen on eventName output note
"""


def test_hit_miss_and_dependency_invalidation(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(RULE)
    (tmp_path / "seen.csv").write_text("eventName,note\nRunInstances,x\n")
    cache = RuleCache(tmp_path / "cache")
    first = compile_file(rule, cache)
    assert first.rule is not None and first.doc is not None
    hit = compile_file(rule, cache)
    assert hit.doc is None and hit.rule == first.rule  # served from the cache, equal IR
    (tmp_path / "seen.csv").write_text("eventName,note,extra\nRunInstances,x,y\n")
    miss = compile_file(rule, cache)
    assert miss.doc is not None  # lookup table changed: recompiled
    rule.write_text(RULE.replace("RunInstances", "StopInstances"))
    assert compile_file(rule, cache).doc is not None


def test_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n  where true\n")
    cache = RuleCache(tmp_path / "cache")
    compile_file(rule, cache)
    for f in (tmp_path / "cache" / "rules").iterdir():
        f.write_bytes(b"garbage")
    again = compile_file(rule, cache)
    assert again.rule is not None and again.doc is not None


def test_the_key_covers_the_compilers_own_code(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A development checkout keeps its version number while its code changes: an entry made by other compiler code
    must not be served (it would skip checks the new code makes)."""
    from siemforge.compiler import cache as cache_mod

    rule = tmp_path / "r.yml"
    rule.write_text("title: t\nlogsource: {product: aws, service: cloudtrail}\nquery: |\n  where true\n")
    cache = RuleCache(tmp_path / "cache")
    compile_file(rule, cache)
    assert compile_file(rule, cache).doc is None  # a hit
    real = cache_mod._files

    def edited(folder, prefix):  # type: ignore[no-untyped-def]
        return [(n, d + b"# edited\n" if n == "analyze.py" else d) for n, d in real(folder, prefix)]

    monkeypatch.setattr(cache_mod, "_files", edited)
    cache_mod._environment_key.cache_clear()
    try:
        assert compile_file(rule, cache).doc is not None  # compiler code changed: recompiled
    finally:
        monkeypatch.undo()
        cache_mod._environment_key.cache_clear()


def test_a_rule_named_another_way_is_not_served_with_the_other_spelling_of_its_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The IR spells a lookup's path from the rule's path as given: `r.yml` and `/abs/r.yml` are two entries, so
    `compile rules/` writes the same files whether or not an earlier run named the rule by its absolute path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yml").write_text(RULE)
    (tmp_path / "seen.csv").write_text("eventName,note\nRunInstances,x\n")
    cache = RuleCache(tmp_path / "cache")
    absolute = compile_file(tmp_path / "r.yml", cache)
    relative = compile_file(Path("r.yml"), cache)
    assert absolute.rule is not None and relative.rule is not None
    assert relative.doc is not None  # compiled, not the absolute spelling's entry
    assert [t.path for t in relative.rule.lookups] == [t.path for t in compile_file(Path("r.yml")).rule.lookups]
