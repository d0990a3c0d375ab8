"""aws.securityhub_finding (decision 84): an ASFF finding per record, the add-on's single-valued CIM fields as derived
fields, the Splunk search on ESCU's macro, no Sentinel table (refused with the reason)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from siemforge.backends.executor.engine import run_rule
from siemforge.backends.kql.lower import compile_kql
from siemforge.backends.spl.lower import compile_spl
from siemforge.compiler.diagnostics import CompileError
from siemforge.importers.splunk import import_splunk

from helpers import compile_rule

HEAD = "title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\nlogsource: {product: aws, service: securityhub}\n"
# a finding in the shape AWS's AwsSecurityFinding reference gives (a Foundational Security Best Practices control)
FINDING: dict[str, Any] = {
    "SchemaVersion": "2018-10-08", "Id": "arn:aws:securityhub:us-east-1:123456789012:finding/0001",
    "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub", "ProductName": "Security Hub",
    "CompanyName": "AWS", "Region": "us-east-1",
    "GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/EC2.8", "AwsAccountId": "123456789012",
    "Types": ["Software and Configuration Checks"], "CreatedAt": "2024-05-01T10:00:00.000Z",
    "UpdatedAt": "2024-05-01T10:05:00.000Z", "Severity": {"Label": "HIGH", "Normalized": 70},
    "Title": "EC2 instances should use IMDSv2", "Description": "This control checks IMDSv2.",
    "Resources": [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"}],
    "Compliance": {"Status": "FAILED"}, "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE",
}
RULE = HEAD + ('query: |\n  where severity == "high"\n'
               "  | project _time, vendor_account, signature, signature_id, severity_id, Compliance.Status\n")


def compiled(tmp_path: Path, text: str) -> Any:
    return compile_rule(tmp_path, text)  # helpers.compile_rule: fails the test with the diagnostics


def test_executor_reads_findings_with_the_add_ons_fields(tmp_path: Path) -> None:
    logs = tmp_path / "findings.ndjson"
    logs.write_bytes(orjson.dumps(FINDING) + b"\n" + orjson.dumps({**FINDING, "Severity": {"Label": "LOW"}}) + b"\n")
    rows = run_rule(compiled(tmp_path, RULE), [logs]).rows
    assert [{k: str(v) for k, v in r.items()} for r in rows] == [{
        "_time": "2024-05-01 10:05:00+00:00", "vendor_account": "123456789012",
        "signature": "EC2 instances should use IMDSv2",
        "signature_id": "aws-foundational-security-best-practices/v/1.0.0/EC2.8", "severity_id": "70",
        "Compliance.Status": "FAILED"}]


def test_splunk_search_and_no_sentinel_table(tmp_path: Path) -> None:
    rule = compiled(tmp_path, RULE)
    assert compile_spl(rule, None).splitlines()[:2] == [
        "`aws_securityhub_finding`", "| where lower('Severity.Label')==\"high\""]
    with pytest.raises(CompileError, match="no Sentinel table for Security Hub findings was found"):
        compile_kql(rule, None)


def test_escu_style_search_imports(tmp_path: Path) -> None:
    conf = tmp_path / "savedsearches.conf"
    conf.write_text("[Hub]\nsearch = `aws_securityhub_finding` severity=high | stats count by vendor_account\n")
    [out] = import_splunk([conf], tmp_path / "out", [])
    assert out.status == "imported", out
    assert 'where severity =~ "high"' in out.written[0].read_text()
