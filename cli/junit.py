"""JUnit XML for CI systems, built as an element tree (data, never templated)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from siemforge.backends.executor.testing import RuleTestReport


def write_junit(path: Path, reports: list[RuleTestReport]) -> None:
    suites = ET.Element("testsuites", name="siemforge")
    total = failures = errors = 0
    for rep in reports:
        title = rep.compiled.rule.meta.title if rep.compiled.rule else str(rep.path)
        suite = ET.SubElement(suites, "testsuite", name=title, file=str(rep.path))
        n_fail = n_err = 0
        if rep.compiled.rule is None:
            case = ET.SubElement(suite, "testcase", name="compile", classname=str(rep.path))
            msg = "; ".join(str(d) for d in rep.diagnostics if d.severity.value == "error")
            ET.SubElement(case, "error", message=msg[:500]).text = msg
            n_err += 1
        for o in rep.outcomes:
            case = ET.SubElement(suite, "testcase", name=o.name, classname=str(rep.path), time=f"{o.seconds:.4f}")
            if not o.passed:
                ET.SubElement(case, "failure", message=o.detail[:500]).text = o.detail
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
