"""JUnit XML for CI systems, built as an element tree (data, never templated). Text from rules and logs goes in
with its control characters escaped (`plain`): XML 1.0 cannot hold them, and a CI report must still parse."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from siemforge.backends.executor.testing import RuleTestReport

from .console import plain


def write_junit(path: Path, reports: list[RuleTestReport]) -> None:
    suites = ET.Element("testsuites", name="siemforge")
    total = failures = errors = 0
    for rep in reports:
        title = plain(rep.compiled.rule.meta.title if rep.compiled.rule else str(rep.path))
        suite = ET.SubElement(suites, "testsuite", name=title, file=plain(str(rep.path)))
        n_fail = n_err = 0
        if rep.compiled.rule is None:
            case = ET.SubElement(suite, "testcase", name="compile", classname=plain(str(rep.path)))
            msg = plain("; ".join(str(d) for d in rep.diagnostics if d.severity.value == "error"))
            ET.SubElement(case, "error", message=msg[:500]).text = msg
            n_err += 1
        for o in rep.outcomes:
            case = ET.SubElement(suite, "testcase", name=plain(o.name), classname=plain(str(rep.path)),
                                 time=f"{o.seconds:.4f}")
            if not o.passed:
                detail = plain(o.detail)
                ET.SubElement(case, "failure", message=detail[:500]).text = detail
                n_fail += 1
        count = len(rep.outcomes) + (1 if rep.compiled.rule is None else 0)
        suite.set("tests", str(count))
        suite.set("failures", str(n_fail))
        suite.set("errors", str(n_err))
        total += count
        failures += n_fail
        errors += n_err
    suites.set("tests", str(total))
    suites.set("failures", str(failures))
    suites.set("errors", str(errors))
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
