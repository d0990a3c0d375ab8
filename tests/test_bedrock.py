"""aws.bedrock_invocation (decision 83): Amazon Bedrock model invocation log records, the executor over a record in
AWS's documented shape, the Splunk search on ESCU's macro, and no Sentinel table (refused with the reason)."""

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

HEAD = ("title: t\nid: 0b9e2d4c-1f3a-4c5e-9d7b-2a6f8e1c3b5d\n"
        "logsource: {product: aws, service: bedrock_model_invocation}\n")
# the record AWS's model invocation logging guide and re:Post show (ids and text changed), a Claude Messages body
RECORD: dict[str, Any] = {
    "schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2025-03-31T21:34:03Z",
    "accountId": "123456789012", "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/MyRole/alice"},
    "region": "us-east-1", "requestId": "5d7e1c2a-0000-4000-8000-000000000001", "operation": "InvokeModel",
    "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
    "input": {"inputContentType": "application/json", "inputTokenCount": 12,
              "inputBodyJson": {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]}},
    "output": {"outputContentType": "application/json", "outputTokenCount": 4096,
               "outputBodyJson": {"usage": {"input_tokens": 12, "output_tokens": 4096}}},
}
RULE = HEAD + ("query: |\n  extend out_tokens = toint(output.outputBodyJson.usage.output_tokens)\n"
               "  | summarize n = count(), max_out = max(out_tokens) by arn = identity.arn, modelId\n")


def compiled(tmp_path: Path, text: str) -> Any:
    return compile_rule(tmp_path, text)  # helpers.compile_rule: fails the test with the diagnostics


def test_executor_reads_the_record(tmp_path: Path) -> None:
    logs = tmp_path / "invocations.ndjson"
    logs.write_bytes(orjson.dumps(RECORD) + b"\n")
    rows = run_rule(compiled(tmp_path, RULE), [logs]).rows
    assert rows == [{"arn": "arn:aws:sts::123456789012:assumed-role/MyRole/alice",
                     "modelId": "anthropic.claude-3-haiku-20240307-v1:0", "n": 1, "max_out": 4096}]


def test_splunk_search_on_escus_macro_and_no_sentinel_table(tmp_path: Path) -> None:
    rule = compiled(tmp_path, RULE)
    spl = compile_spl(rule, None).splitlines()
    assert spl[:2] == ["`aws_bedrock_claude`",
                       "| spath output=siemforge_path1 path=output.outputBodyJson.usage.output_tokens"]
    with pytest.raises(CompileError, match="no Sentinel table for Bedrock model invocation logs was found"):
        compile_kql(rule, None)


def test_escu_bedrock_search_imports_to_the_source_or_is_refused_at_its_construct(tmp_path: Path) -> None:
    conf = tmp_path / "savedsearches.conf"
    conf.write_text("[Tokens]\nsearch = `aws_bedrock_claude` operation=InvokeModel"
                    " | stats max(output.outputTokenCount) as m by identity.arn\n\n"
                    "[Prompts]\nsearch = `aws_bedrock_claude` | rename input.inputBodyJson.messages{}.content{}.text"
                    " as p | table p\n")
    tokens, prompts = import_splunk([conf], tmp_path / "out", [])
    assert tokens.status == "imported", tokens
    text = tokens.written[0].read_text()
    assert "service: bedrock_model_invocation" in text and 'where operation =~ "InvokeModel"' in text
    assert (prompts.status, prompts.reason) == (
        "refused", "rename of the multivalue path `input.inputBodyJson.messages{}.content{}.text`: a field holding "
                   "every element's value, which the eval functions and `where` after it read value by value "
                   "(decision 48)")
