"""Bounds on what a rule file may hold, so that one hostile file (in a pull request, a shared Sigma repository)
cannot stall or exhaust a CI run. Each is far above the largest value in the SigmaHQ corpus and the bundled rules
(measured by benchmarks/rule_corpus_maxima.py; docs/limits.md gives the numbers and what happens past each)."""

from __future__ import annotations

MAX_RULE_BYTES = 1 << 20  # a rule file (corpus max 295,078 B); composing costs ~150 B of memory per byte at worst
MAX_YAML_DEPTH = 64  # nested mappings/lists (corpus max 7)
MAX_YAML_NODES = 100_000  # mappings, lists and scalars in one file (corpus max 4,475)
MAX_TEXT_CHARS = 65_536  # one YAML text value, a `query:` included (corpus max 1,348)
MAX_DETECTION_VALUES = 25_000  # values in a Sigma `detection:` (corpus max 4,432)
MAX_PATTERN_CHARS = 16_384  # one Sigma detection value: a string, wildcard pattern or regex (corpus max 1,029)
MAX_CONDITION_CHARS = 4_096  # a Sigma `condition` (corpus max 346)
MAX_CONDITION_DEPTH = 32  # nested parentheses in a Sigma `condition` (corpus max 2)
MAX_QUERY_DEPTH = 128  # pipeline-language nesting: brackets, and operators (a chain of `or` nests one level each)
MAX_LOOKUP_BYTES = 64 << 20  # a lookup CSV a rule names (bundled max 324 B); read whole by the exporters
