"""`dropout-audit server` end to end: a real LSP client (pytest-lsp, the pygls project's
harness) starts the server as a subprocess and talks to it over stdio, as an editor does.

Each test writes a small workspace, opens documents, and waits for what the server publishes;
edits made by code actions are applied to the text the test holds, and the result is checked
as text.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as lsp  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from tests.conftest import REPO, write_files  # noqa: E402

TIMEOUT = 30  # seconds: the first check imports the readers (about a second on a loaded machine)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "auditor", "server"],
                                              server_env=dict(os.environ, PYTHONPATH=REPO)))
async def client(lsp_client: LanguageClient, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    lsp_client.root = root
    lsp_client.registrations = []

    @lsp_client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
    def register(params: lsp.RegistrationParams):
        lsp_client.registrations.extend(params.registrations)

    capabilities = client_capabilities("visual-studio-code")  # the recorded 1.65, before LSP 3.17 notebooks:
    capabilities.notebook_document = lsp.NotebookDocumentClientCapabilities(  # as later releases send
        synchronization=lsp.NotebookDocumentSyncClientCapabilities())
    lsp_client.init_result = await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=capabilities,
        workspace_folders=[lsp.WorkspaceFolder(uri=from_fs_path(str(root)), name="ws")],
        initialization_options={"debounceMs": 50}))
    yield
    await lsp_client.shutdown_session()


# --- helpers ------------------------------------------------------------------------------

def uri_of(client, name: str) -> str:
    return from_fs_path(str(client.root / name))


def write(client, files) -> None:
    write_files(str(client.root), files)


def open_doc(client, name: str, text: str | None = None, language: str = "yaml") -> str:
    if text is None:
        text = (client.root / name).read_text(encoding="utf-8")
    uri = uri_of(client, name)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, language, 1, text)))
    return uri


def replace_all(client, uri: str, text: str, version: int) -> None:
    """A whole-text change, as an incremental change over the old text's full range."""
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        [lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def diagnostics(client, uri: str, until, timeout: float = TIMEOUT) -> list:
    """The diagnostics published for `uri` once `until(diagnostics)` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = client.diagnostics.get(uri)
        if found is not None and until(list(found)):
            return list(found)
        if loop.time() > deadline:
            raise AssertionError(f"no diagnostics for {uri} matching the condition; last: {found}")
        await asyncio.sleep(0.02)


def codes(found) -> list:
    return sorted(d.code for d in found)


def apply(text: str, edits) -> str:
    """Apply TextEdits (non-overlapping) to text, the way an editor does."""
    lines = text.splitlines(keepends=True) or [""]
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(pos):
        return starts[min(pos.line, len(lines))] + pos.character  # ASCII texts: UTF-16 = characters

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(e.range.start)] + e.new_text + text[offset(e.range.end):]
    return text


def edits_for(action, uri: str) -> list:
    edit = action.edit
    if edit.document_changes:
        return [e for change in edit.document_changes if change.text_document.uri == uri for e in change.edits]
    return list((edit.changes or {}).get(uri, []))


async def actions_at(client, uri: str, diag) -> list:
    return await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri), range=diag.range,
        context=lsp.CodeActionContext(diagnostics=[diag])))


BAD_RECIPE = "base_model: m\nadapter: lora\nlora_dropout: 5e-2\n"


# --- diagnostics --------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_initialize_announces_what_the_server_does(client: LanguageClient):
    caps = client.init_result.capabilities
    assert client.init_result.server_info.name == "dropout-audit"
    assert caps.hover_provider
    assert set(caps.code_action_provider.code_action_kinds) == {"quickfix", "source.fixAll.dropout-audit"}
    assert caps.text_document_sync.change == lsp.TextDocumentSyncKind.Incremental and caps.text_document_sync.save
    (selector,) = caps.notebook_document_sync.notebook_selector
    assert [c.language for c in selector.cells] == ["python"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not client.registrations and loop.time() < deadline:  # it asks to watch the configuration
        await asyncio.sleep(0.02)
    (watch,) = client.registrations
    patterns = [w["globPattern"] for w in watch.register_options["watchers"]]  # left unstructured by the client
    assert "**/pyproject.toml" in patterns and "**/.dropout-audit.toml" in patterns


@pytest.mark.asyncio
async def test_a_bad_recipe_gets_its_diagnostic_at_the_value(client: LanguageClient):
    write(client, [("recipe.yaml", BAD_RECIPE)])
    uri = open_doc(client, "recipe.yaml")
    found = await diagnostics(client, uri, lambda ds: ds)
    assert codes(found) == ["DRP103"]
    d = found[0]
    assert d.severity == lsp.DiagnosticSeverity.Error
    assert d.source == "dropout-audit"
    assert (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character) == (2, 14, 2, 18)
    assert "5e-2" in d.message and "PyYAML" in d.message
    href = d.code_description.href
    assert href.startswith("file://") and href.endswith("DRP103-dropout-yaml11-string.yaml")
    from pygls.uris import to_fs_path
    assert os.path.isfile(to_fs_path(href))


@pytest.mark.asyncio
async def test_editing_to_good_clears_the_diagnostic(client: LanguageClient):
    write(client, [("recipe.yaml", BAD_RECIPE)])
    uri = open_doc(client, "recipe.yaml")
    await diagnostics(client, uri, lambda ds: codes(ds) == ["DRP103"])
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(uri=uri, version=2),
        [lsp.TextDocumentContentChangePartial(range=lsp.Range(lsp.Position(2, 14), lsp.Position(2, 18)), text="0.05")]))
    assert await diagnostics(client, uri, lambda ds: ds == []) == []


@pytest.mark.asyncio
async def test_config_json_and_python_are_checked_too(client: LanguageClient):
    write(client, [
        ("model/config.json", '{"model_type": "llama", "hidden_dropout_prob": 0.1, "attention_dropout": 0.0}\n'),
        ("train.py", "import torch.nn as nn\n\n\nclass Net(nn.Module):\n    def __init__(self):\n"
                     "        super().__init__()\n        self.rnn = nn.LSTM(8, 8, num_layers=1, dropout=0.2)\n"),
    ])
    cfg = open_doc(client, "model/config.json", language="json")
    script = open_doc(client, "train.py", language="python")
    found = await diagnostics(client, cfg, lambda ds: ds)
    assert codes(found) == ["DRP510"]
    start, end = found[0].range.start, found[0].range.end
    assert (start.line, start.character, end.character) == (0, 47, 50)  # the value 0.1
    found = await diagnostics(client, script, lambda ds: ds)
    assert codes(found) == ["DRP520"]
    assert found[0].range.start.line == 6


@pytest.mark.asyncio
async def test_a_suppression_comment_is_respected(client: LanguageClient):
    write(client, [("recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 5e-2  # dropout-audit: ignore[DRP103]\n"
                                   "lora_alpha: 16  # dropout-audit: ignore[DRP201]\n")])
    uri = open_doc(client, "recipe.yaml")
    found = await diagnostics(client, uri, lambda ds: ds is not None)
    assert codes(found) == ["DRP002"]  # the DRP103 is hidden; the unused directive is reported
    assert found[0].range.start.line == 3
    assert list(found[0].tags) == [lsp.DiagnosticTag.Unnecessary]


@pytest.mark.asyncio
async def test_unknown_and_binary_documents_do_not_crash_the_server(client: LanguageClient):
    write(client, [("notes.txt", "lora_dropout: 5e-2\n"), ("recipe.yaml", BAD_RECIPE)])
    open_doc(client, "notes.txt", language="plaintext")
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem("untitled:Untitled-1", "yaml", 1, BAD_RECIPE)))
    binary = open_doc(client, "weights.json", '{"a": "\x00\x01\x02"}\n', language="json")
    found = await diagnostics(client, binary, lambda ds: ds)
    assert codes(found) == ["DRP001"] and "NUL" in found[0].message
    assert await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri_of(client, "notes.txt")), lsp.Position(0, 3))) is None
    # the server still works after all of that
    uri = open_doc(client, "recipe.yaml")
    assert codes(await diagnostics(client, uri, lambda ds: ds)) == ["DRP103"]
    assert uri_of(client, "notes.txt") not in client.diagnostics
    assert "untitled:Untitled-1" not in client.diagnostics
    assert client.error is None


# --- cross-file setups --------------------------------------------------------------------

@pytest.mark.asyncio
async def test_an_unsaved_adapter_config_changes_the_recipe_beside_it(client: LanguageClient):
    write(client, [("run/recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.05\n"),
                   ("run/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.05, "r": 8}\n')])
    recipe = open_doc(client, "run/recipe.yaml")
    assert await diagnostics(client, recipe, lambda ds: ds is not None) == []
    adapter = open_doc(client, "run/adapter_config.json", language="json")
    replace_all(client, adapter, '{"peft_type": "LORA", "lora_dropout": 0.2, "r": 8}\n', 2)  # not saved
    found = await diagnostics(client, recipe, lambda ds: ds)
    assert codes(found) == ["DRP400"] and "0.2" in found[0].message
    assert found[0].range.start.line == 2
    # closing the buffer without saving: the disk's adapter_config.json agrees again
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(lsp.TextDocumentIdentifier(adapter)))
    assert await diagnostics(client, recipe, lambda ds: ds == []) == []


@pytest.mark.asyncio
async def test_a_file_changed_on_disk_rechecks_the_open_recipe_beside_it(client: LanguageClient):
    write(client, [("run/recipe.yaml", "base_model: m\nadapter: lora\nlora_dropout: 0.05\n"),
                   ("run/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.05, "r": 8}\n')])
    recipe = open_doc(client, "run/recipe.yaml")
    assert await diagnostics(client, recipe, lambda ds: ds is not None) == []
    write(client, [("run/adapter_config.json", '{"peft_type": "LORA", "lora_dropout": 0.3, "r": 8}\n')])
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
        [lsp.FileEvent(uri_of(client, "run/adapter_config.json"), lsp.FileChangeType.Changed)]))
    found = await diagnostics(client, recipe, lambda ds: ds)
    assert codes(found) == ["DRP400"] and "0.3" in found[0].message


@pytest.mark.asyncio
async def test_a_script_in_another_directory_follows_the_config_buffer_it_loads(client: LanguageClient):
    write(client, [("train.py", "from transformers import AutoModelForCausalLM\n\n"
                                "model = AutoModelForCausalLM.from_pretrained(\"./base\", hidden_dropout_prob=0.1)\n"),
                   ("base/config.json", '{"model_type": "llama", "attention_dropout": 0.0}\n')])
    script = open_doc(client, "train.py", language="python")
    found = await diagnostics(client, script, lambda ds: ds)
    assert codes(found) == ["DRP124"]  # llama declares no hidden_dropout_prob: TypeError
    config = open_doc(client, "base/config.json", language="json")
    replace_all(client, config, '{"model_type": "bert", "hidden_dropout_prob": 0.1}\n', 2)
    assert await diagnostics(client, script, lambda ds: ds == []) == []  # bert declares it


# --- code actions -------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_a_safe_fix_applied_gives_the_fixed_text(client: LanguageClient):
    write(client, [("recipe.yaml", BAD_RECIPE)])
    uri = open_doc(client, "recipe.yaml")
    (diag,) = await diagnostics(client, uri, lambda ds: ds)
    found = await actions_at(client, uri, diag)
    fixes = [a for a in found if a.title.startswith("write 0.05")]
    assert len(fixes) == 1 and fixes[0].is_preferred and fixes[0].kind == lsp.CodeActionKind.QuickFix
    fixed = apply(BAD_RECIPE, edits_for(fixes[0], uri))
    assert fixed == "base_model: m\nadapter: lora\nlora_dropout: 0.05\n"
    replace_all(client, uri, fixed, 2)
    assert await diagnostics(client, uri, lambda ds: ds == []) == []


@pytest.mark.asyncio
async def test_an_unsafe_fix_is_marked_and_not_preferred(client: LanguageClient):
    text = "base_model: m\nadapter: lora\nlora_dropout: 10\n"
    write(client, [("recipe.yaml", text)])
    uri = open_doc(client, "recipe.yaml")
    found = await diagnostics(client, uri, lambda ds: "DRP101" in codes(ds))
    diag = next(d for d in found if d.code == "DRP101")
    (fix,) = [a for a in await actions_at(client, uri, diag) if a.title.startswith("write 0.1")]
    assert "unsafe" in fix.title and not fix.is_preferred
    assert apply(text, edits_for(fix, uri)) == "base_model: m\nadapter: lora\nlora_dropout: 0.1\n"


@pytest.mark.asyncio
async def test_ignore_on_this_line_writes_the_directive_and_hides_the_finding(client: LanguageClient):
    write(client, [("recipe.yaml", BAD_RECIPE)])
    uri = open_doc(client, "recipe.yaml")
    (diag,) = await diagnostics(client, uri, lambda ds: ds)
    (ignore,) = [a for a in await actions_at(client, uri, diag) if a.title == "Ignore DRP103 on this line"]
    ignored = apply(BAD_RECIPE, edits_for(ignore, uri))
    assert ignored == "base_model: m\nadapter: lora\nlora_dropout: 5e-2  # dropout-audit: ignore[DRP103]\n"
    replace_all(client, uri, ignored, 2)
    assert await diagnostics(client, uri, lambda ds: ds == []) == []


@pytest.mark.asyncio
async def test_fix_all_applies_every_safe_fix_of_the_file(client: LanguageClient):
    text = "base_model: m\nadapter: lora\nlora_dropout: 5e-2\nnested:\n  lora_dropout: 1e-1\n"
    write(client, [("recipe.yaml", text)])
    uri = open_doc(client, "recipe.yaml")
    await diagnostics(client, uri, lambda ds: codes(ds).count("DRP103") == 2)
    found = await client.text_document_code_action_async(lsp.CodeActionParams(
        text_document=lsp.TextDocumentIdentifier(uri), range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
        context=lsp.CodeActionContext(diagnostics=[], only=[lsp.CodeActionKind.SourceFixAll])))
    (fix_all,) = found
    fixed = apply(text, edits_for(fix_all, uri))
    assert "lora_dropout: 0.05\n" in fixed and "lora_dropout: 0.1\n" in fixed


# --- hover --------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_hover_shows_the_effective_value_where_it_came_from_and_why(client: LanguageClient):
    text = "base_model: m\nadapter: lora\nrl: dpo\nlora_dropout: 0.1\ndatasets: []\n"
    write(client, [("recipe.yaml", text)])
    uri = open_doc(client, "recipe.yaml")
    await diagnostics(client, uri, lambda ds: "DRP501" in codes(ds))
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(3, 3)))  # on the key
    value = result.contents.value
    assert "**lora_dropout** = `0.1` as written: trains with **0**" in value
    assert "from `recipe.yaml:4`" in value
    assert "disable_dropout" in value  # why: the DPO trainer zeroes it
    assert "DRP501" not in value  # the key is not what was flagged
    on_value = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(3, 15)))
    assert "trains with **0**" in on_value.contents.value
    assert "**DRP501** dropout-zeroed-by-trainer" in on_value.contents.value  # the rule that flagged it
    nothing = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(0, 2)))  # base_model: no dropout site
    assert nothing is None


# --- notebooks ----------------------------------------------------------------------------

def _notebook(client, name: str, cells: list) -> tuple:
    nb_uri = uri_of(client, name)
    items, docs = [], []
    for i, (kind, source) in enumerate(cells):
        cell_uri = f"vscode-notebook-cell:{nb_uri[len('file:'):]}#cell{i}"
        items.append(lsp.NotebookCell(kind=kind, document=cell_uri))
        docs.append(lsp.TextDocumentItem(cell_uri, "python" if kind == lsp.NotebookCellKind.Code else "markdown",
                                         1, source))
    client.notebook_document_did_open(lsp.DidOpenNotebookDocumentParams(
        lsp.NotebookDocument(uri=nb_uri, notebook_type="jupyter-notebook", version=1, cells=items), docs))
    return nb_uri, [d.uri for d in docs]


NB_CELLS = [
    (lsp.NotebookCellKind.Markup, "# Fine-tune with Unsloth"),
    (lsp.NotebookCellKind.Code, "from unsloth import FastLanguageModel\n"),
    (lsp.NotebookCellKind.Code, "model = FastLanguageModel.get_peft_model(\n    model,\n    r=16,\n"
                                "    lora_dropout=0.1,\n)\n"),
]


@pytest.mark.asyncio
async def test_a_notebook_document_gets_diagnostics_per_cell(client: LanguageClient):
    nb_uri, cells = _notebook(client, "finetune.ipynb", NB_CELLS)
    found = await diagnostics(client, cells[2], lambda ds: ds)
    assert codes(found) == ["DRP410"]
    assert found[0].range.start.line == 3 and found[0].range.start.character == 17  # cell-relative
    assert await diagnostics(client, cells[1], lambda ds: ds is not None) == []
    # edit the cell to lora_dropout=0: the diagnostic clears
    client.notebook_document_did_change(lsp.DidChangeNotebookDocumentParams(
        lsp.VersionedNotebookDocumentIdentifier(version=2, uri=nb_uri),
        lsp.NotebookDocumentChangeEvent(cells=lsp.NotebookDocumentCellChanges(text_content=[
            lsp.NotebookDocumentCellContentChanges(
                document=lsp.VersionedTextDocumentIdentifier(uri=cells[2], version=2),
                changes=[lsp.TextDocumentContentChangePartial(
                    range=lsp.Range(lsp.Position(3, 17), lsp.Position(3, 20)), text="0")])]))))
    assert await diagnostics(client, cells[2], lambda ds: ds == []) == []


@pytest.mark.asyncio
async def test_a_notebook_cell_takes_code_actions_and_hover(client: LanguageClient):
    nb_uri, cells = _notebook(client, "finetune.ipynb", NB_CELLS)
    (diag,) = await diagnostics(client, cells[2], lambda ds: ds)
    found = await actions_at(client, cells[2], diag)
    (ignore,) = [a for a in found if a.title == "Ignore DRP410 on this line"]
    assert apply(NB_CELLS[2][1], edits_for(ignore, cells[2])).splitlines()[3] == \
        "    lora_dropout=0.1,  # dropout-audit: ignore[DRP410]"
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(cells[2]), lsp.Position(3, 8)))
    assert "lora_dropout" in result.contents.value and "0.1" in result.contents.value


# --- configuration and the session ----------------------------------------------------------

@pytest.mark.asyncio
async def test_the_configuration_is_read_and_reloaded_when_saved(client: LanguageClient):
    write(client, [("pyproject.toml", '[tool.dropout-audit]\nignore = ["DRP103"]\n'), ("recipe.yaml", BAD_RECIPE)])
    uri = open_doc(client, "recipe.yaml")
    assert await diagnostics(client, uri, lambda ds: ds is not None) == []
    write(client, [("pyproject.toml", '[tool.dropout-audit]\nignore = []\n')])
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        lsp.TextDocumentIdentifier(uri_of(client, "pyproject.toml"))))
    assert codes(await diagnostics(client, uri, lambda ds: ds)) == ["DRP103"]
    # a broken configuration is said once and the defaults apply
    write(client, [("pyproject.toml", '[tool.dropout-audit]\nignore = 3\n')])
    client.workspace_did_change_watched_files(lsp.DidChangeWatchedFilesParams(
        [lsp.FileEvent(uri_of(client, "pyproject.toml"), lsp.FileChangeType.Changed)]))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not client.messages and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert "ignore" in client.messages[0].message and client.messages[0].type == lsp.MessageType.Warning


@pytest.mark.asyncio
async def test_shutdown_and_exit_end_the_process_cleanly(client: LanguageClient):
    write(client, [("recipe.yaml", BAD_RECIPE)])
    uri = open_doc(client, "recipe.yaml")
    await diagnostics(client, uri, lambda ds: ds)
    await client.shutdown_session()
    assert client._server.returncode == 0
    client.capabilities = None  # the fixture's own shutdown has nothing left to do



# --- a long session -----------------------------------------------------------------------

def test_a_long_session_keeps_no_finished_notification(tmp_path, monkeypatch):
    """Regression: pygls 2.1.1 keeps the future of every didChange in its request table; the
    server drops the finished ones, so 1,000 edits do not grow it (bench/server_latency.py
    measured 2 MB per 1,000 edits before)."""
    import io
    import json as json_module

    from pygls.io_ import StdoutWriter

    from auditor.server import lsp as server_lsp

    monkeypatch.chdir(tmp_path)  # initialize moves to the workspace root; the test's cwd comes back
    (tmp_path / "recipe.yaml").write_text(BAD_RECIPE, encoding="utf-8")
    uri = from_fs_path(str(tmp_path / "recipe.yaml"))

    async def session():
        server = server_lsp.build()
        out = io.BytesIO()
        server.protocol.set_writer(StdoutWriter(out))

        def send(message):
            server.protocol.handle_message(json_module.loads(json_module.dumps({"jsonrpc": "2.0", **message}),
                                                             object_hook=server.protocol.structure_message))

        send({"id": 1, "method": "initialize", "params": {"capabilities": {}, "rootUri": from_fs_path(str(tmp_path)),
                                                          "initializationOptions": {"debounceMs": 0}}})
        send({"method": "initialized", "params": {}})
        send({"method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "yaml", "version": 1, "text": BAD_RECIPE}}})
        for version in range(2, 202):
            send({"method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": BAD_RECIPE.replace("5e-2", f"0.{version % 9 + 1}")}]}})
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        return server, out.getvalue()

    server, written = asyncio.run(session())
    assert b'"version": 201' in written or b'"version":201' in written  # the last edit was checked
    assert len(server.protocol._request_futures) < 5


def test_the_documentation_link_follows_the_rule_docs_template():
    from auditor.server import lsp as server_lsp

    server = server_lsp.build()
    server.audit.configured(os.path.join(REPO, "fixtures", "invalid-values", "recipe.yaml"))  # the rules load
    assert server.docs_href("DRP103").endswith("/DRP103-dropout-yaml11-string.yaml")
    server.rule_docs = "https://example.org/rules/{code}.html#{name}"
    assert server.docs_href("DRP103") == "https://example.org/rules/DRP103.html#dropout-yaml11-string"
    server.rule_docs = "https://example.org/{unknown}"  # a template naming another field: the rule's file
    assert server.docs_href("DRP103").endswith("/DRP103-dropout-yaml11-string.yaml")
