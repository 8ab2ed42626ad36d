"""The language server itself: pygls over stdio, the only module that imports pygls.

Diagnostics are published on open, on save and on change. Changes are debounced per file:
the first change after a quiet spell is checked at once (an edit shows its verdict without
waiting), and while typing goes on at most one check runs per `debounceMs` (default 200), the
last state always checked. A check runs in the event loop's thread, so buffers and results
never change under it; a warm check of one file takes milliseconds (bench/server_latency.py).

Every open file is the audit's to read (`Audit.set_buffer`): a notebook document's cells
are written as its `.ipynb` text (`notebooks.NotebookText`), and its findings published per
cell. After a file is checked, the open documents in other directories whose last check read
it are checked again (a script in the parent directory that loads this config.json).

Client settings, as `initializationOptions`: `debounceMs` (int) and `ruleDocs` (a URL
template with `{code}` and `{name}` for each diagnostic's documentation link; by default the
rule's own file, which holds its rationale, references and examples).
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from auditor import __version__
from auditor.server import actions, hover, notebooks
from auditor.server.audit import CONFIG_NAMES, Audit
from auditor.server.positions import Lines

SOURCE = "dropout-audit"
DEFAULT_DEBOUNCE_MS = 200
FIX_ALL = "source.fixAll.dropout-audit"
SEVERITY = {"error": lsp.DiagnosticSeverity.Error, "warning": lsp.DiagnosticSeverity.Warning,
            "info": lsp.DiagnosticSeverity.Information}
WATCHED = ("**/pyproject.toml", "**/.dropout-audit.toml", "**/*.{json,yaml,yml,py,sh,ipynb}")

log = logging.getLogger(__name__)


class Target:
    """An open file the audit reads: a text document, or a notebook document and its cells."""

    __slots__ = ("path", "uri", "notebook", "nb")

    def __init__(self, path: str, uri: str, notebook: bool = False):
        self.path = path
        self.uri = uri
        self.notebook = notebook
        self.nb = None  # notebooks.NotebookText of the cells as last set


class Result:
    """One check of a target: the version and text it saw, and its findings."""

    __slots__ = ("version", "text", "nb", "findings")

    def __init__(self, version, text: str, nb, findings: list):
        self.version = version
        self.text = text
        self.nb = nb
        self.findings = findings


def _path_of(uri: str) -> str | None:
    if not uri.startswith("file:"):
        return None  # untitled buffers and other schemes have no place on disk to set up from
    path = to_fs_path(uri)
    return os.path.abspath(path) if path else None


def _bom(text: str) -> int:
    return 1 if text.startswith("\ufeff") else 0


class DropoutServer(LanguageServer):
    def __init__(self):
        super().__init__(
            SOURCE, __version__, text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
            notebook_document_sync=lsp.NotebookDocumentSyncOptions(
                notebook_selector=[lsp.NotebookDocumentFilterWithCells(
                    notebook="*", cells=[lsp.NotebookCellLanguage(language="python")])],
                save=True))
        self.audit = Audit(".")
        self.debounce = DEFAULT_DEBOUNCE_MS / 1000
        self.rule_docs = ""
        self.targets = {}    # path -> Target
        self.results = {}    # path -> Result
        self.timers = {}     # path -> asyncio.TimerHandle of a pending check
        self.last_run = {}   # path -> loop time of its last check

    # --- documents ----------------------------------------------------------------------

    def encoding(self) -> str:
        enc = self.workspace.position_encoding
        return str(getattr(enc, "value", enc) or "utf-16")

    def doc_version(self, target: Target):
        if target.notebook:
            nb = self.workspace.get_notebook_document(notebook_uri=target.uri)
            return None if nb is None else nb.version
        return self.workspace.get_text_document(target.uri).version

    def text_of(self, target: Target) -> str:
        if target.notebook:
            return target.nb.text
        return self.workspace.get_text_document(target.uri).source

    def notebook_text(self, uri: str):
        nb = self.workspace.get_notebook_document(notebook_uri=uri)
        cells = []
        for cell in nb.cells:
            doc = self.workspace.get_text_document(cell.document)
            kind = notebooks.CODE if cell.kind == lsp.NotebookCellKind.Code else notebooks.MARKUP
            cells.append(notebooks.Cell(cell.document, kind, doc.language_id or "python", doc.source))
        return notebooks.NotebookText(cells)

    def sync(self, target: Target) -> None:
        """Give the audit the target's current text."""
        if target.notebook:
            target.nb = self.notebook_text(target.uri)
        self.audit.set_buffer(target.path, self.text_of(target))

    def locate(self, uri: str) -> tuple:
        """(target, cell index or None) of a document or notebook cell URI."""
        nb = self.workspace.get_notebook_document(cell_uri=uri)
        if nb is not None:
            path = _path_of(nb.uri)
            target = self.targets.get(path)
            if target is None or target.nb is None:
                return None, None
            for i, cell in enumerate(target.nb.cells):
                if cell.uri == uri:
                    return target, i
            return target, None
        return self.targets.get(_path_of(uri)), None

    # --- checking -----------------------------------------------------------------------

    def schedule(self, path: str, at_once: bool = False) -> None:
        loop = asyncio.get_running_loop()
        pending = self.timers.pop(path, None)
        if pending is not None:
            pending.cancel()
        wait = 0.0 if at_once else self.last_run.get(path, float("-inf")) + self.debounce - loop.time()
        if wait <= 0:
            self.timers[path] = loop.call_soon(self.check, path)
        else:
            self.timers[path] = loop.call_later(wait, self.check, path)

    def check(self, path: str, follow: bool = True) -> None:
        pending = self.timers.pop(path, None)
        if pending is not None:
            pending.cancel()
        if path not in self.targets:
            return
        self.last_run[path] = asyncio.get_running_loop().time()
        self.drop_finished_notifications()
        try:
            found = self.audit.check(path)
            for p, findings in found.items():
                target = self.targets.get(p)
                if target is not None:
                    self.results[p] = Result(self.doc_version(target), self.text_of(target), target.nb, findings)
                    self.publish(target, findings)
        except Exception:  # noqa: BLE001 - an engine bug must not take the editor's server down
            self.window_log_message(lsp.LogMessageParams(
                type=lsp.MessageType.Error, message=f"dropout-audit: checking {path} failed:\n{traceback.format_exc()}"))
            return
        self.show_problems()
        if follow:
            done = {os.path.dirname(path)}
            for other in self.audit.dependents(path):
                if os.path.dirname(other) not in done:
                    done.add(os.path.dirname(other))
                    self.check(other, follow=False)

    def drop_finished_notifications(self) -> None:
        """pygls 2.1.1 files the future of every notification its built-in handlers run
        (didOpen, didChange, didSave, the notebook ones) in `protocol._request_futures` under a
        fresh id and never removes it: about 2 KB a keystroke, for the life of the session
        (bench/server_latency.py's memory line). A finished future there answers nothing (a
        request's own is removed when its answer is sent), so the finished ones are dropped."""
        pending = getattr(self.protocol, "_request_futures", None)
        if isinstance(pending, dict):
            for key in [k for k, future in pending.items() if future.done()]:
                pending.pop(key, None)

    def fresh(self, target: Target) -> Result | None:
        """The target's findings for its current version, checking now if they are stale."""
        result = self.results.get(target.path)
        if target.path in self.timers or result is None or result.version != self.doc_version(target):
            self.check(target.path)
            result = self.results.get(target.path)
        return result

    def show_problems(self) -> None:
        while self.audit.problems:
            self.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning,
                                                           message=f"dropout-audit: {self.audit.problems.pop(0)}"))

    def recheck_all(self) -> None:
        for path in sorted(self.targets):
            self.schedule(path, at_once=True)

    # --- diagnostics --------------------------------------------------------------------

    def docs_href(self, code: str) -> str | None:
        rule = self.audit.rule(code)
        if self.rule_docs:
            try:
                return self.rule_docs.format(code=code, name=rule.name if rule is not None else "")
            except (KeyError, IndexError, ValueError):  # a template with other fields: the rule's file
                pass
        if rule is not None and rule.origin and os.path.isfile(rule.origin):
            return from_fs_path(os.path.abspath(rule.origin))
        return None

    def diagnostic(self, finding, rng: lsp.Range) -> lsp.Diagnostic:
        href = self.docs_href(finding.code)
        tags = [lsp.DiagnosticTag.Unnecessary] if finding.code == "DRP002" else None
        fix = finding.fix
        return lsp.Diagnostic(
            range=rng, message=finding.message, severity=SEVERITY.get(finding.severity, lsp.DiagnosticSeverity.Warning),
            code=finding.code, source=SOURCE, tags=tags,
            code_description=lsp.CodeDescription(href=href) if href else None,
            data={"name": finding.name, "fix": None if fix is None else fix.applicability})

    def publish(self, target: Target, findings: list) -> None:
        version = self.doc_version(target)
        if not target.notebook:
            text = self.text_of(target)
            lines = Lines(text, self.encoding())
            diagnostics = [self.diagnostic(f, _range(lines, *finding_offsets(lines, f, _bom(text))))
                           for f in findings]
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(target.uri, diagnostics, version))
            return
        per_cell = {cell.uri: [] for cell in target.nb.cells}
        first_code = next((c for c in target.nb.cells if c.kind == notebooks.CODE), None)
        for f in findings:
            cell = target.nb.cell(f.cell[0]) if f.cell else first_code
            if cell is None:
                continue
            lines = Lines(cell.text, self.encoding())
            per_cell[cell.uri].append(self.diagnostic(f, _range(lines, *cell_offsets(lines, f))))
        for uri, diagnostics in per_cell.items():
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, diagnostics))

    def clear(self, target: Target) -> None:
        uris = [c.uri for c in target.nb.cells] if target.notebook and target.nb else [target.uri]
        for uri in uris:
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))

    def forget(self, target: Target) -> None:
        """A closed document: its diagnostics cleared, the disk read again in its place, and
        the open documents whose setups read it checked again."""
        pending = self.timers.pop(target.path, None)
        if pending is not None:
            pending.cancel()
        self.clear(target)
        self.results.pop(target.path, None)
        self.last_run.pop(target.path, None)
        readers = [p for p, read in self.audit.related.items() if target.path in read and p != target.path]
        self.audit.set_buffer(target.path, None)
        self.audit.disk_changed()
        for path in readers:
            if path in self.targets:
                self.schedule(path, at_once=True)

    # --- code actions -------------------------------------------------------------------

    def edit_of(self, edits: dict) -> lsp.WorkspaceEdit:
        """{uri: [TextEdit]} as the client prefers it (versioned when it can)."""
        caps = self.client_capabilities.workspace
        versioned = bool(caps and caps.workspace_edit and caps.workspace_edit.document_changes)
        if not versioned:
            return lsp.WorkspaceEdit(changes=edits)
        changes = []
        for uri, text_edits in edits.items():
            version = self.workspace.get_text_document(uri).version
            changes.append(lsp.TextDocumentEdit(lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                                                text_edits))
        return lsp.WorkspaceEdit(document_changes=changes)

    def code_actions(self, params: lsp.CodeActionParams) -> list:
        target, cell_index = self.locate(params.text_document.uri)
        if target is None or (target.notebook and cell_index is None):
            return []
        result = self.fresh(target)
        if result is None:
            return []
        uri = params.text_document.uri
        if target.notebook:
            cell = result.nb.cells[cell_index]
            text, lines_text, bom = cell.text, cell.text, 0
            findings = [f for f in result.findings if f.cell and f.cell[0] == cell_index + 1]
        else:
            text = lines_text = result.text
            bom = _bom(text)
            findings = result.findings
        lines = Lines(lines_text, self.encoding())
        lo = lines.offset(params.range.start.line, params.range.start.character)
        hi = lines.offset(params.range.end.line, params.range.end.character)
        only = params.context.only
        out = []
        for f in findings:
            start, end = cell_offsets(lines, f) if target.notebook else finding_offsets(lines, f, bom)
            if start > hi or end < lo:
                continue
            diag = self.diagnostic(f, _range(lines, start, end))
            if f.fix is not None and f.fix.edits and _wanted(only, lsp.CodeActionKind.QuickFix):
                edits = self.fix_edits(target, result, f, bom)
                if edits:
                    safe = f.fix.applicability == "safe"
                    title = f"{f.fix.description} ({f.code})" + ("" if safe else " [unsafe: may change intent]")
                    out.append(lsp.CodeAction(title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diag],
                                              is_preferred=safe, edit=self.edit_of(edits)))
            if actions.takes_comments(target.path) and _wanted(only, lsp.CodeActionKind.QuickFix):
                line = f.cell[1] if target.notebook else f.span.line
                a, b, rep = actions.ignore_edit(text, line, f.code)
                out.append(lsp.CodeAction(title=f"Ignore {f.code} on this line", kind=lsp.CodeActionKind.QuickFix,
                                          diagnostics=[diag],
                                          edit=self.edit_of({uri: [lsp.TextEdit(_range(lines, a, b), rep)]})))
        if not target.notebook and _wanted(only, FIX_ALL):
            new = actions.fix_all(text, findings, bom)
            if new is not None:
                a, b, rep = notebooks.smallest_edit(text, new)
                out.append(lsp.CodeAction(title="Fix all safe dropout-audit findings", kind=FIX_ALL,
                                          edit=self.edit_of({uri: [lsp.TextEdit(_range(lines, a, b), rep)]})))
        return out

    def fix_edits(self, target: Target, result: Result, finding, bom: int) -> dict:
        enc = self.encoding()
        if not target.notebook:
            lines = Lines(result.text, enc)
            return {target.uri: [lsp.TextEdit(_range(lines, a, b), rep)
                                 for a, b, rep in actions.fix_edits(finding, bom)]}
        per_cell = result.nb.cell_edits(finding.fix)
        if not per_cell:
            return {}
        out = {}
        for index, edits in per_cell.items():
            cell = result.nb.cells[index]
            lines = Lines(cell.text, enc)
            out[cell.uri] = [lsp.TextEdit(_range(lines, a, b), rep) for a, b, rep in edits]
        return out

    # --- hover --------------------------------------------------------------------------

    def hover(self, params: lsp.HoverParams) -> lsp.Hover | None:
        target, cell_index = self.locate(params.text_document.uri)
        if target is None or (target.notebook and cell_index is None):
            return None
        result = self.fresh(target)
        if result is None:
            return None
        source, plans = self.audit.plans(target.path)
        enc = self.encoding()
        pos = params.position
        flagged = []
        if target.notebook:
            cell = result.nb.cells[cell_index]
            lines = Lines(cell.text, enc)
            at = lines.offset(pos.line, pos.character)
            offset = notebooks.module_offset(source, cell_index + 1, at)
            if offset is None:
                return None
            for f in result.findings:
                if f.cell and f.cell[0] == cell_index + 1:
                    a, b = cell_offsets(lines, f)
                    if a <= at <= b:
                        flagged.append((notebooks.module_offset(source, cell_index + 1, a),
                                        notebooks.module_offset(source, cell_index + 1, b), f, self.audit.rule(f.code)))
        else:
            lines = Lines(result.text, enc)
            bom = _bom(result.text)
            at = lines.offset(pos.line, pos.character)
            offset = at - bom
            for f in result.findings:
                a, b = finding_offsets(lines, f, bom)
                if a <= at <= b:
                    flagged.append((a - bom, b - bom, f, self.audit.rule(f.code)))
        text = hover.describe(plans, lambda p: os.path.abspath(p) == target.path, offset, flagged)
        if text is None:
            return None
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text))


def finding_offsets(lines: Lines, f, bom: int) -> tuple:
    """The finding's span as offsets of the buffer (the tool's lines and columns; a BOM the
    engine skipped shifts the first line)."""
    s = f.span
    start = lines.offset_of(s.line, s.column) + (bom if s.line == 1 else 0)
    end = lines.offset_of(s.end_line, s.end_column) + (bom if s.end_line == 1 else 0)
    return start, max(start, end)


def cell_offsets(lines: Lines, f) -> tuple:
    if not f.cell:
        return 0, 0
    _, line, col, end_line, end_col = f.cell
    start = lines.offset_of(line, col)
    return start, max(start, lines.offset_of(end_line, end_col))


def _range(lines: Lines, start: int, end: int) -> lsp.Range:
    a, b = lines.position(start), lines.position(end)
    return lsp.Range(lsp.Position(*a), lsp.Position(*b))


def _wanted(only, kind: str) -> bool:
    """Whether a code action of `kind` answers a request limited to the kinds `only`."""
    return not only or any(kind == k or kind.startswith(f"{k}.") for k in only)


def build() -> DropoutServer:
    server = DropoutServer()

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: DropoutServer, params: lsp.InitializeParams):
        root = None
        if params.workspace_folders:
            root = _path_of(params.workspace_folders[0].uri)
        if root is None and params.root_uri:
            root = _path_of(params.root_uri)
        if root is None and params.root_path:
            root = os.path.abspath(params.root_path)
        if root and os.path.isdir(root):
            os.chdir(root)  # engine paths relative to the workspace, as on the command line
        ls.audit = Audit(root or ".")
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        debounce = opts.get("debounceMs")
        if isinstance(debounce, (int, float)) and not isinstance(debounce, bool) and debounce >= 0:
            ls.debounce = debounce / 1000
        if isinstance(opts.get("ruleDocs"), str):
            ls.rule_docs = opts["ruleDocs"]

    @server.feature(lsp.INITIALIZED)
    def initialized(ls: DropoutServer, params: lsp.InitializedParams):
        caps = ls.client_capabilities.workspace
        watched = caps.did_change_watched_files if caps else None
        if watched is not None and watched.dynamic_registration:
            ls.client_register_capability(lsp.RegistrationParams([lsp.Registration(
                id="dropout-audit-watch", method=lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=lsp.DidChangeWatchedFilesRegistrationOptions(
                    watchers=[lsp.FileSystemWatcher(glob_pattern=g) for g in WATCHED]))]))

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DropoutServer, params: lsp.DidOpenTextDocumentParams):
        path = _path_of(params.text_document.uri)
        if path is None or not ls.audit.readable(path):
            return  # a kind of file the audit never reads (README.md, notes.txt)
        target = ls.targets[path] = Target(path, params.text_document.uri)
        ls.sync(target)
        ls.audit.disk_changed()
        ls.schedule(path, at_once=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: DropoutServer, params: lsp.DidChangeTextDocumentParams):
        target = ls.targets.get(_path_of(params.text_document.uri))
        if target is not None:
            ls.sync(target)
            ls.schedule(target.path)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: DropoutServer, params: lsp.DidSaveTextDocumentParams):
        path = _path_of(params.text_document.uri)
        if path is not None and os.path.basename(path) in CONFIG_NAMES:
            ls.audit.config_changed()
            ls.recheck_all()
            return
        ls.audit.disk_changed()
        if path in ls.targets:
            ls.schedule(path, at_once=True)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: DropoutServer, params: lsp.DidCloseTextDocumentParams):
        path = _path_of(params.text_document.uri)
        target = ls.targets.pop(path, None) if path else None
        if target is None:
            return
        ls.forget(target)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_open(ls: DropoutServer, params: lsp.DidOpenNotebookDocumentParams):
        path = _path_of(params.notebook_document.uri)
        if path is None:
            return
        target = ls.targets[path] = Target(path, params.notebook_document.uri, notebook=True)
        ls.sync(target)
        ls.audit.disk_changed()
        ls.schedule(path, at_once=True)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_change(ls: DropoutServer, params: lsp.DidChangeNotebookDocumentParams):
        target = ls.targets.get(_path_of(params.notebook_document.uri))
        if target is None:
            return
        gone = {c.uri for c in target.nb.cells} if target.nb else set()
        ls.sync(target)
        for uri in gone - {c.uri for c in target.nb.cells}:  # deleted cells keep no diagnostics
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(uri, []))
        ls.schedule(target.path)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_save(ls: DropoutServer, params: lsp.DidSaveNotebookDocumentParams):
        path = _path_of(params.notebook_document.uri)
        ls.audit.disk_changed()
        if path in ls.targets:
            ls.schedule(path, at_once=True)

    @server.feature(lsp.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_close(ls: DropoutServer, params: lsp.DidCloseNotebookDocumentParams):
        path = _path_of(params.notebook_document.uri)
        target = ls.targets.pop(path, None) if path else None
        if target is not None:
            ls.forget(target)

    @server.feature(lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched(ls: DropoutServer, params: lsp.DidChangeWatchedFilesParams):
        paths = [p for p in (_path_of(c.uri) for c in params.changes) if p]
        if any(os.path.basename(p) in CONFIG_NAMES for p in paths):
            ls.audit.config_changed()
            ls.recheck_all()
            return
        ls.audit.disk_changed()
        touched = set(paths)
        for path, read in list(ls.audit.related.items()):
            if path in ls.targets and path not in touched and (read & touched or any(
                    os.path.dirname(p) == os.path.dirname(path) for p in touched)):
                ls.schedule(path, at_once=True)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION, lsp.CodeActionOptions(
        code_action_kinds=[lsp.CodeActionKind.QuickFix, FIX_ALL]))
    def code_action(ls: DropoutServer, params: lsp.CodeActionParams):
        return ls.code_actions(params) or None

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: DropoutServer, params: lsp.HoverParams):
        return ls.hover(params)

    @server.feature(lsp.SHUTDOWN)
    def shutdown(ls: DropoutServer, *args):
        for handle in ls.timers.values():
            handle.cancel()
        ls.timers.clear()

    return server


def serve() -> None:
    """Run the server on stdin/stdout until the client says exit."""
    build().start_io()
