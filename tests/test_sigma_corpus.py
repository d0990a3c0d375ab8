"""Every SigmaHQ rule loads and lowers to IR without a crash (errors are diagnostics, never exceptions)."""

from __future__ import annotations

from collections import Counter

import pytest

from siemforge.compiler.api import compile_file, discover_rules
from siemforge.compiler.diagnostics import Severity

from helpers import shared_path


@pytest.mark.slow  # the SigmaHQ corpus: `pytest -m 'not slow'` skips it locally; CI runs it
def test_sigma_corpus_lowers_without_crash() -> None:
    root = shared_path("data", "sigma", "rules")
    files = discover_rules([root])
    assert len(files) > 3000
    reasons: Counter[str] = Counter()
    ok = 0
    for f in files:
        r = compile_file(f)  # must not raise
        if r.rule is not None:
            ok += 1
        else:
            errs = [d for d in r.diagnostics if d.severity is Severity.ERROR]
            assert errs, f"{f}: failed without an error diagnostic"
            assert all(d.span is not None for d in errs), f"{f}: error without a position"
            reasons[errs[0].message.split(":")[0]] += 1
    # the bar: nearly all of SigmaHQ lowers; the rest fail with a reason (see benchmarks/sigma_corpus.py)
    assert ok / len(files) > 0.97, reasons.most_common(10)


def test_sigma_aws_rules_typecheck_against_cloudtrail() -> None:
    root = shared_path("data", "sigma", "rules", "cloud", "aws")
    for f in discover_rules([root]):
        r = compile_file(f)
        assert r.rule is not None, [str(d) for d in r.diagnostics]
        assert r.rule.pipeline.source.name == "aws.cloudtrail"


@pytest.mark.slow  # the SigmaHQ corpus: `pytest -m 'not slow'` skips it locally; CI runs it
def test_positioned_yaml_resolves_every_tag_as_pyyaml_does() -> None:
    """compiler/yamlpos.py resolves tags in one step per node; on every SigmaHQ file (and a few edge scalars) the
    tags are PyYAML's own."""
    import yaml

    from siemforge.compiler.yamlpos import _Loader

    def tags(node: yaml.Node) -> list[tuple[str, str]]:
        if isinstance(node, yaml.ScalarNode):
            return [(node.tag, node.value)]
        if isinstance(node, yaml.SequenceNode):
            return [(node.tag, "")] + [t for n in node.value for t in tags(n)]
        return [(node.tag, "")] + [t for k, v in node.value for t in tags(k) + tags(v)]

    edge = "a: ''\nb: ~\nc: 0x1F\nd: .inf\ne: 2024-01-02\nf: yes\ng: '123'\nh: -1.5e3\ni: <<\nj: =\nk: !!str 1\n"
    texts = [edge] + [f.read_text(encoding="utf-8") for f in discover_rules([shared_path("data", "sigma", "rules")])]
    for text in texts:
        assert tags(yaml.compose(text, Loader=_Loader)) == tags(yaml.compose(text, Loader=yaml.SafeLoader))
