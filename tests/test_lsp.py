"""`siemforge lsp`: the language server answers diagnostics, hover and completion, driven by pygls' own client
over the stdio of a `siemforge lsp` subprocess, as an editor drives it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from helpers import ROOT

RULE = """\
title: Many failed logons
id: 6f1c8e35-6a8e-4b57-9a4c-0a3f1d0b2c11
status: test
logsource: {product: windows, service: security}
query: |
  where EventID == 4625
  | summarize failures = count() by TargetUserName
  | where failures > 3
"""

BROKEN = """\
title: Many failed logons
logsource: {product: windows, service: security}
query: |
  where EventID == 4625
  | summarize failures = count() by TargetUserNme
"""


class Client(LanguageClient):
    def __init__(self) -> None:
        super().__init__("siemforge-test", "0")
        self.published: dict[str, asyncio.Queue[list[types.Diagnostic]]] = {}

    def diagnostics_of(self, uri: str) -> asyncio.Queue[list[types.Diagnostic]]:
        return self.published.setdefault(uri, asyncio.Queue())


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[asyncio.Runner, Client]]:
    """One `siemforge lsp` subprocess for the module's tests, driven from one event loop (each test opens its own
    documents, so they do not see each other's)."""
    client = Client()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def _published(params: types.PublishDiagnosticsParams) -> None:
        client.diagnostics_of(params.uri).put_nowait(list(params.diagnostics))

    async def start() -> None:
        await client.start_io(sys.executable, "-m", "siemforge.cli.main", "lsp", cwd=str(ROOT))
        await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities(),
                                                             root_uri=ROOT.as_uri()))
        client.initialized(types.InitializedParams())

    async def stop() -> None:
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()

    with asyncio.Runner() as runner:
        runner.run(start())
        try:
            yield runner, client
        finally:
            runner.run(stop())


async def _open(client: Client, path: Path, text: str) -> list[types.Diagnostic]:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="yaml", version=1, text=text)))
    return await asyncio.wait_for(client.diagnostics_of(uri).get(), 60)


def _run(session: tuple[asyncio.Runner, Client], scenario) -> None:  # type: ignore[no-untyped-def]
    runner, client = session
    runner.run(asyncio.wait_for(scenario(client), 120))


def test_diagnostics_on_open_and_change(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"

    async def scenario(client: Client) -> None:
        diags = await _open(client, path, BROKEN)
        assert len(diags) == 1, diags
        d = diags[0]
        assert d.severity == types.DiagnosticSeverity.Warning
        assert d.message.startswith("unknown field 'TargetUserNme'") and d.source == "siemforge"
        assert d.code == "unknown-field"
        # the CLI says rule.yml:5:37 (1-based); LSP ranges are 0-based and cover the name
        assert (d.range.start.line, d.range.start.character) == (4, 36)
        assert (d.range.end.line, d.range.end.character) == (4, 36 + len("TargetUserNme"))
        uri = path.as_uri()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=RULE)]))
        assert await asyncio.wait_for(client.diagnostics_of(uri).get(), 60) == []
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text="title: [unclosed\n")]))
        diags = await asyncio.wait_for(client.diagnostics_of(uri).get(), 60)
        assert len(diags) == 1 and diags[0].message.startswith("invalid YAML"), diags
        assert diags[0].severity == types.DiagnosticSeverity.Error
        # the CLI says rule.yml:2:1, past the text's only line: the server marks the text's last character
        assert (diags[0].range.start.line, diags[0].range.start.character) == (0, 15)
        assert (diags[0].range.end.line, diags[0].range.end.character) == (0, 16)

    _run(session, scenario)


def test_positions_are_in_utf16_code_units(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    # the compiler counts characters; LSP clients count UTF-16 code units by default: 🙂 is one and two
    path = tmp_path / "rule.yml"
    text = BROKEN.replace("where EventID == 4625", 'where Computer != "🙂" and TargetUserNme == "x"')

    async def scenario(client: Client) -> None:
        diags = await _open(client, path, text)
        assert len(diags) == 2, diags
        d = diags[0]
        line = text.splitlines()[3]
        start = len(line[: line.index("TargetUserNme")].encode("utf-16-le")) // 2
        assert start == line.index("TargetUserNme") + 1
        assert (d.range.start.line, d.range.start.character) == (3, start)
        assert d.range.end.character == start + len("TargetUserNme")

    _run(session, scenario)


def test_cli_and_server_give_the_same_diagnostics(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "rule.yml"
    path.write_text(BROKEN)
    cli = subprocess.run([sys.executable, "-m", "siemforge.cli.main", "ir", str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    first = cli.stderr.splitlines()[0]

    async def scenario(client: Client) -> None:
        diags = await _open(client, path, BROKEN)
        d = diags[0]
        message = d.message.partition("\nhint: ")[0]
        where = f"{path}:{d.range.start.line + 1}:{d.range.start.character + 1}: warning: {message}  [{d.code}]"
        assert first == where

    _run(session, scenario)


def test_hover_on_a_field_a_function_and_the_rule(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"

    async def scenario(client: Client) -> None:
        assert await _open(client, path, RULE) == []
        doc = types.TextDocumentIdentifier(uri=path.as_uri())

        async def hover(line: int, character: int) -> str | None:
            h = await client.text_document_hover_async(types.HoverParams(doc, types.Position(line, character)))
            if h is None:
                return None
            assert isinstance(h.contents, types.MarkupContent)
            return h.contents.value

        field = await hover(6, 38)  # TargetUserName in the summarize
        assert field is not None
        assert "**field** `TargetUserName`: `string`" in field and "source `windows.security`" in field
        function = await hover(6, 26)  # count(
        assert function is None  # an aggregation, not a scalar function
        computed = await hover(7, 10)  # failures
        assert computed == "**column** `failures`: `int` (computed by the rule's pipeline)"
        rule = await hover(0, 2)  # title:
        assert rule is not None
        assert "**Many failed logons** (`6f1c8e35-6a8e-4b57-9a4c-0a3f1d0b2c11`)" in rule
        assert "IR:\n```\nrule 6f1c8e35-6a8e-4b57-9a4c-0a3f1d0b2c11" in rule
        assert "splunk (" in rule and "| stats" in rule
        assert "sentinel (" in rule and "| summarize failures = count() by TargetUserName" in rule
        assert await hover(2, 9) is None  # `test`: nothing to say

    _run(session, scenario)


def test_hover_on_a_scalar_function(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    text = RULE.replace("where failures > 3", "where isnotempty(TargetUserName)")

    async def scenario(client: Client) -> None:
        assert await _open(client, path, text) == []
        h = await client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri=path.as_uri()), types.Position(7, 10)))
        assert h is not None and isinstance(h.contents, types.MarkupContent)
        assert h.contents.value.startswith("**function** `isnotempty` (1 argument(s))\n\nnot isempty")

    _run(session, scenario)


def test_completion_of_fields_and_functions(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"

    async def scenario(client: Client) -> None:
        await _open(client, path, RULE)
        doc = types.TextDocumentIdentifier(uri=path.as_uri())
        result = await client.text_document_completion_async(types.CompletionParams(doc, types.Position(7, 8)))
        assert isinstance(result, types.CompletionList)
        labels = {i.label: i for i in result.items}
        assert labels["TargetUserName"].kind == types.CompletionItemKind.Field
        assert "EventID" in labels and "_time" in labels
        assert labels["isnotempty"].kind == types.CompletionItemKind.Function
        assert labels["datetime_diff"].kind == types.CompletionItemKind.Function
        # outside `query:`: field names only
        result = await client.text_document_completion_async(types.CompletionParams(doc, types.Position(3, 5)))
        assert isinstance(result, types.CompletionList)
        names = {i.label for i in result.items}
        assert "TargetUserName" in names and "isnotempty" not in names

    _run(session, scenario)


def test_completion_while_the_yaml_is_broken(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    path = tmp_path / "rule.yml"
    text = "title: x\nlogsource:\n  product: aws\n  service: cloudtrail\ndetection:\n  sel:\n    event: [\n"

    async def scenario(client: Client) -> None:
        diags = await _open(client, path, text)
        assert diags and diags[0].message.startswith("invalid YAML")
        result = await client.text_document_completion_async(types.CompletionParams(
            types.TextDocumentIdentifier(uri=path.as_uri()), types.Position(6, 4)))
        assert isinstance(result, types.CompletionList)
        names = {i.label for i in result.items}
        assert {"eventName", "userIdentity.arn"} <= names

    _run(session, scenario)


@pytest.mark.parametrize("command", [["lsp", "--help"]])
def test_lsp_command_is_listed(command: list[str]) -> None:
    import subprocess

    r = subprocess.run([sys.executable, "-m", "siemforge.cli.main", *command], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 0 and "language server" in r.stdout


TEAM_SOURCE = """\
name: acme.edr_process
description: Process starts from the Acme EDR
logsource: {product: acme, category: process_creation}
time:
  column: ts
fields:
  ts: datetime
  proc_path: string
  cmdline: string
"""


def test_a_team_source_beside_the_rules(session: tuple[asyncio.Runner, Client], tmp_path: Path) -> None:
    # a team's checkout: rules/ and sources/ beside it, read as the CLI reads them
    (tmp_path / ".git").mkdir()
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "my_edr.yml").write_text(TEAM_SOURCE)
    (tmp_path / "rules").mkdir()
    path = tmp_path / "rules" / "rule.yml"
    text = ("title: t\nlogsource: {product: acme, category: process_creation}\n"
            "detection: {sel: {cmdlin|contains: ' -enc '}, condition: sel}\n")

    async def scenario(client: Client) -> None:
        diags = await _open(client, path, text)
        assert [d.message.partition("\n")[0] for d in diags] == [
            "unknown field 'cmdlin': source 'acme.edr_process' does not declare it"], diags
        h = await client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri=path.as_uri()), types.Position(2, 19)))
        assert h is None  # cmdlin: no such field
        result = await client.text_document_completion_async(types.CompletionParams(
            types.TextDocumentIdentifier(uri=path.as_uri()), types.Position(2, 19)))
        assert isinstance(result, types.CompletionList)
        assert {i.label for i in result.items} == {"ts", "proc_path", "cmdline"}

    _run(session, scenario)
