"""The reader for Jupyter notebooks (nbformat 4): their code cells become one Python module.

A notebook runs top to bottom as one namespace, so its code cells are joined, in order, into
one module text and handed to the Python reader: a model built in cell 2 and evaluated in cell
4 is one flow, and the notebook produces exactly the Source a `.py` driver would (same kind,
settings, fields and parsed module), so setups and every code rule apply unchanged. Markdown
and raw cells and all outputs are never read as code.

IPython syntax is handled as ruff handles it: a cell magic that takes over the cell
(`%%bash`, `%%writefile`, ...) removes the cell from the analysis, while the transparent ones
(`%%time`, `%%capture`, ...) keep their Python; line magics, `!shell`, `?help` and automagics
are blanked in place, so every other character keeps its position. Each cell's piece of the
module text has exactly the cell's length, which makes every location a simple offset shift.

Findings are computed on the joined text and moved back afterwards (`NotebookMap.relocate`):
`Finding.cell` carries the cell number (1-based among all cells, as Jupyter and VS Code count)
with the cell-relative position, `Finding.span` the position in the `.ipynb` file as stored,
and fixes become edits of the cell's `source` string in the JSON only, so outputs, metadata,
key order and indentation are kept byte for byte.

Imports inside functions (`sources.python_code`, `sources.text`) are deferred for start-up time:
a run that never takes that path never pays for them.
"""

from __future__ import annotations

import ast
import bisect
import json
import re
from dataclasses import dataclass, field

from auditor.core.model import Edit, Fix, Source, Span
from auditor.sources.common import located_problem
from auditor.sources.text import UNREADABLE, line_starts

PARSE_ERROR = "DRP000"

# Cell magics whose body is Python that runs in the notebook's namespace (ruff #8911).
TRANSPARENT_CELL_MAGICS = frozenset({"capture", "debug", "prun", "pypy", "python", "python3", "time", "timeit"})
# Commands IPython runs without `%` (automagic); a line starting with one is not Python.
_AUTOMAGICS = frozenset({
    "cd", "ls", "pwd", "pip", "conda", "mamba", "env", "set_env", "pushd", "popd", "dirs", "dhist", "clear",
    "cat", "less", "man", "mkdir", "rmdir", "mv", "rm", "cp", "alias", "unalias", "history", "load_ext",
    "reload_ext", "matplotlib", "config", "who", "whos", "reset", "time", "timeit", "run", "load", "autoreload",
})
_ESCAPE_START = re.compile(r"[ \t]*(?:%|!|\?)")
_ASSIGNED_ESCAPE = re.compile(r"^[ \t]*[A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*[ \t]*=[ \t]*(?=[%!])")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")


@dataclass
class Cell:
    """One cell as stored: its number, type, decoded source and the JSON string tokens
    (raw start, raw end, decoded text) that hold the source."""

    number: int
    kind: str
    tokens: list = field(default_factory=list)
    listed: bool = True          # source stored as a list of strings (nbformat's usual form)
    source: str = ""
    starts: list = field(default_factory=list)   # offset of each token's text in `source`
    raw: list = field(default_factory=list)      # each token as stored (quotes and escapes)
    where: list = field(default_factory=list)    # (line, column) of each token in the file
    separator: str = ""          # between two strings of the list, as stored


class NotebookError(Exception):
    """The file is not a notebook this reader can use; the message says why."""

    def __init__(self, code: str, message: str, offset: int = 0):
        super().__init__(message)
        self.code = code
        self.offset = offset


# --- the JSON structure, with positions --------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


def _ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()


def _cells(text: str) -> tuple:
    """(cells, nbformat) read from a valid JSON text by the standard library's own scanner
    (json.decoder), keeping the raw span of every `source` string; outputs and metadata are
    skipped over unread."""
    decoder = json.JSONDecoder()
    scan = decoder.scan_once
    i = _ws(text, 0)
    if text[i:i + 1] != "{":
        raise NotebookError(UNREADABLE, "not a Jupyter notebook: the top level is not a JSON object", i)
    cells, nbformat, cells_at = None, None, i
    for key, start in _members(text, i):
        if key == "cells":
            cells_at = start
            if text[start] != "[":
                raise NotebookError(UNREADABLE, "not a Jupyter notebook: 'cells' is not a list", start)
            cells = [_cell(text, scan, at, n) for n, at in enumerate(_items(text, start), start=1)]
        elif key == "nbformat":
            nbformat, _ = scan(text, start)
    if cells is None:
        if isinstance(nbformat, int) and not isinstance(nbformat, bool) and nbformat < 4:
            raise NotebookError(UNREADABLE, f"nbformat {nbformat} notebook (cells inside 'worksheets'); "
                                            "only nbformat 4 is read: convert it with `jupyter nbconvert "
                                            "--to notebook`", i)
        raise NotebookError(UNREADABLE, "not a Jupyter notebook: no 'cells' list", i)
    if not cells:
        raise NotebookError(UNREADABLE, "the notebook has no cells", cells_at)
    return cells, nbformat


def _members(text: str, i: int):
    """(key, offset of the value) of the object starting at text[i] == '{'."""
    scan = json.JSONDecoder().scan_once
    i = _ws(text, i + 1)
    if text[i] == "}":
        return
    while True:
        key, i = json.decoder.scanstring(text, i + 1)
        i = _ws(text, i)
        i = _ws(text, i + 1)  # ':'
        yield key, i
        _, i = scan(text, i)
        i = _ws(text, i)
        if text[i] == "}":
            return
        i = _ws(text, i + 1)  # ','


def _items(text: str, i: int):
    """Offsets of the values of the array starting at text[i] == '['."""
    scan = json.JSONDecoder().scan_once
    i = _ws(text, i + 1)
    if text[i] == "]":
        return
    while True:
        yield i
        _, i = scan(text, i)
        i = _ws(text, i)
        if text[i] == "]":
            return
        i = _ws(text, i + 1)


def _cell(text: str, scan, at: int, number: int) -> Cell:
    if text[at] != "{":
        raise NotebookError(UNREADABLE, f"cell {number} is not a JSON object", at)
    cell = Cell(number, "")
    for key, start in _members(text, at):
        if key == "cell_type":
            cell.kind, _ = scan(text, start)
        elif key == "source":
            if text[start] == '"':
                cell.listed = False
                cell.tokens.append(_string(text, start))
            elif text[start] == "[":
                for item in _items(text, start):
                    if text[item] != '"':
                        raise NotebookError(UNREADABLE, f"cell {number}: 'source' holds a non-string", item)
                    cell.tokens.append(_string(text, item))
            else:
                raise NotebookError(UNREADABLE, f"cell {number}: 'source' is neither a string nor a list", start)
    pos = 0
    for _, _, s in cell.tokens:
        cell.starts.append(pos)
        pos += len(s)
    cell.source = "".join(s for _, _, s in cell.tokens)
    return cell


def _string(text: str, i: int) -> tuple:
    value, end = json.decoder.scanstring(text, i + 1)
    return (i, end, value)


# --- cells as Python ---------------------------------------------------------------------

def _blank(text: str) -> str:
    """Same length, line breaks kept, everything else a space."""
    return re.sub(r"[^\r\n]", " ", text)


def _neutralise(source: str) -> str:
    """Line magics, shell escapes, help and automagic lines replaced in place by `_` (a name:
    an expression statement, and the value of `x = !cmd`), padded to the same length; their
    continuation lines (ending in a backslash) are blanked."""
    out, continued = [], False
    for line in _LINE.findall(source):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        if continued:
            out.append(" " * len(body) + ending)
            continued = body.endswith("\\")
            continue
        stripped = body.strip()
        word = stripped.split(" ", 1)[0]
        assigned = _ASSIGNED_ESCAPE.match(body)
        if assigned:
            cut = assigned.end()
        elif _ESCAPE_START.match(body) or (stripped.endswith("?") and not stripped.startswith("#")) or (
                word in _AUTOMAGICS and " " in stripped and not re.match(r"\s*[=(.\[,:]", stripped[len(word):])):
            cut = len(body) - len(body.lstrip(" \t"))
        else:
            out.append(line)
            continue
        rest = len(body) - cut
        out.append(body[:cut] + ("_" + " " * (rest - 1) if rest > 0 else "") + ending)
        continued = body.endswith("\\")
    return "".join(out)


def _cell_magic(source: str) -> str | None:
    """The name of the cell magic that opens the cell (`%%bash` -> 'bash'), else None."""
    for line in _LINE.findall(source):
        s = line.strip()
        if not s:
            continue
        if s.startswith("%%"):
            return s[2:].split(None, 1)[0] if len(s) > 2 else ""
        return None
    return None


def _syntax_error(source: str):
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return exc
    except (ValueError, RecursionError, MemoryError) as exc:
        return SyntaxError(str(exc))
    return None


@dataclass
class Segment:
    """Where a code cell sits in the joined module text."""

    cell: Cell
    start: int       # offset in the module text
    first_line: int  # 1-based line of the module text where the cell begins


# A line IPython may read differently from Python; cells without one are not parsed alone.
_MAYBE_IPYTHON = re.compile(r"^[ \t]*[%!?]|\?[ \t]*$|=[ \t]*[%!]|^[ \t]*(?:" + "|".join(sorted(_AUTOMAGICS)) + r")[ \t]",
                            re.M)


def _as_python(cell: Cell, careful: bool) -> tuple:
    """(text for the module of the same length as the cell, SyntaxError or None). Unless
    careful, a cell with no IPython-looking line is taken as is: the joined module is parsed
    anyway, and only when that fails is every cell parsed on its own."""
    src = cell.source
    magic = _cell_magic(src)
    if magic is not None:
        if magic not in TRANSPARENT_CELL_MAGICS:
            return _blank(src), None
        src = _neutralise(src)  # the %%time line itself
    elif not careful and not _MAYBE_IPYTHON.search(src):
        return src, None
    err = _syntax_error(src)
    if err is not None:
        fixed = _neutralise(src)
        if fixed != src and _syntax_error(fixed) is None:
            return fixed, None
        return _blank(src), err
    return src, None


# --- the reader -------------------------------------------------------------------------

def read(path: str, text: str) -> Source | None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        line, col = exc.lineno, exc.colno
        return located_problem(path, PARSE_ERROR, f"cannot parse notebook JSON: {exc.msg} (line {line}, column {col})",
                               Span(line, col, line, col, exc.pos, exc.pos))
    except RecursionError:
        return located_problem(path, PARSE_ERROR, "cannot parse notebook JSON: nested too deeply")
    try:
        cells, _ = _cells(text)
    except NotebookError as exc:
        starts = line_starts(text)
        line = bisect.bisect_right(starts, exc.offset)
        col = exc.offset - starts[line - 1] + 1
        return located_problem(path, exc.code, str(exc), Span(line, col, line, col, exc.offset, exc.offset))
    from auditor.sources import python_code

    code_cells = [c for c in cells if c.kind == "code"]
    if not any(m in c.source for c in code_cells for m in python_code.MARKERS):
        return None
    module_text, segments, problems = _join(code_cells, careful=False)
    src = python_code.read(path, module_text)
    if src is not None and src.kind != "python":  # a cell that does not parse: find which
        module_text, segments, problems = _join(code_cells, careful=True)
        src = python_code.read(path, module_text)
    nb_map = NotebookMap(path, text, segments)
    if src is None or src.kind != "python":
        # every cell with the markers failed to parse, or the joined module did not
        bare = Source(path=path, kind="python", dialect="python", text=module_text)
        if src is not None:
            bare.problems.extend(src.problems)
        src = bare
    for seg, err in problems:
        lineno = max(err.lineno or 1, 1)
        col = max(err.offset or 1, 1)
        vline = seg.first_line + lineno - 1
        starts = line_starts(module_text)
        start = min(starts[vline - 1] + col - 1, len(module_text)) if vline <= len(starts) else len(module_text)
        end = starts[vline] if vline < len(starts) else len(module_text)
        newer = python_code.newer_grammar(err, module_text[starts[vline - 1]:end] if vline <= len(starts) else "", path)
        if newer is None and lineno == 1 and (err.msg or "") == "unexpected indent":
            # IPython's leading_indent transformer removes a cell's common leading indentation
            # (IPython/core/inputtransformer2.py), so the cell runs; the joined module cannot hold it
            newer = ("skipped: the cell starts indented, which IPython accepts (it removes a cell's leading "
                     "indentation) and the auditor's Python parser does not")
        code, message = (python_code.SKIPPED, newer) if newer else (PARSE_ERROR, python_code.syntax_message(err, lineno, col))
        src.problems.append((code, Span(vline, col, vline, col, start, start), message + "; the other cells are checked"))
    src.facts.append(nb_map)
    return src


def _join(code_cells: list, careful: bool) -> tuple:
    """(module text, segments, [(segment, SyntaxError)]) of the code cells in order."""
    pieces, segments, problems = [], [], []
    pos, line = 0, 1
    for cell in code_cells:
        piece, err = _as_python(cell, careful)
        # a blank line after each cell: a directive alone on a cell's last line (which covers
        # the next line) then never reaches into the next cell
        piece += "\n" if piece.endswith(("\n", "\r")) else "\n\n"
        segments.append(Segment(cell, pos, line))
        if err is not None:
            problems.append((segments[-1], err))
        pieces.append(piece)
        pos += len(piece)
        line += piece.count("\n") + piece.count("\r") - piece.count("\r\n")
    return "".join(pieces), segments, problems


def cell_lines(path: str, number: int) -> list:
    """The lines of one cell's source (for reporters that print the offending line)."""
    from auditor.sources.text import FileProblem, read_text

    try:
        cells, _ = _cells(read_text(path))
    except (FileProblem, NotebookError, ValueError, IndexError, StopIteration):
        return []
    return cells[number - 1].source.splitlines() if 0 < number <= len(cells) else []


# --- moving findings back into the notebook -----------------------------------------------

class NotebookMap:
    """The joined module's positions -> cells and the `.ipynb` file as stored.

    It keeps only what relocating needs (the raw text of each source string, its line and
    column, the list separator, a digest of the whole file), not the file: notebooks carry
    megabytes of outputs, and a directory's sources stay in memory until it is checked.
    """

    def __init__(self, path: str, raw_text: str, segments: list):
        from auditor.sources.text import text_digest

        self.path = path
        self.segments = segments
        self._seg_starts = [s.start for s in segments]
        self.stored_digest = text_digest(raw_text)
        pos, line = 0, 1
        for seg in segments:  # in file order: count line breaks once, from token to token
            cell = seg.cell
            cell.raw = [raw_text[start:end] for start, end, _ in cell.tokens]
            cell.where = []
            for start, _, _ in cell.tokens:
                line += raw_text.count("\n", pos, start)
                pos = start
                cell.where.append((line, start - raw_text.rfind("\n", 0, start)))
            cell.separator = _separator(raw_text, cell)

    def relocate(self, findings) -> None:
        for f in findings:
            if f.path != self.path or f.cell:
                continue
            seg = self._segment(f.span.start)
            cell = seg.cell
            a = min(max(f.span.start - seg.start, 0), len(cell.source))
            b = min(max(f.span.end - seg.start, a), len(cell.source))
            line, col = _cell_position(cell, a)
            end_line, end_col = _cell_position(cell, b)
            f.cell = (cell.number, line, col, end_line, end_col)
            f.span = self._raw_span(cell, a, b)
            if f.fix is not None:
                f.fix = self._fix(f.fix)

    def place(self, offset: int) -> str:
        """`cell N:line:col` of an offset into the joined code, as `check` names positions."""
        seg = self._segment(offset)
        line, col = _cell_position(seg.cell, min(max(offset - seg.start, 0), len(seg.cell.source)))
        return f"cell {seg.cell.number}:{line}:{col}"

    def _segment(self, offset: int) -> Segment:
        i = bisect.bisect_right(self._seg_starts, offset) - 1
        return self.segments[max(i, 0)]

    def _raw_span(self, cell: Cell, a: int, b: int) -> Span:
        if not cell.tokens:
            return Span.file_start()
        ra, la, ca = _raw_position(cell, a, False)
        if b > a:
            rb, lb, cb = _raw_position(cell, b, True)
        else:
            rb, lb, cb = ra, la, ca
        return Span(la, ca, lb, cb, ra, max(rb, ra))

    def _fix(self, fix: Fix) -> Fix | None:
        """The fix as edits of the cells' JSON strings; None when an edit leaves its cell."""
        groups = {}
        for e in fix.edits:
            seg = self._segment(e.start)
            a, b = e.start - seg.start, e.end - seg.start
            if not (0 <= a <= b <= len(seg.cell.source)) or not seg.cell.tokens:
                return None
            groups.setdefault(seg.cell.number, (seg.cell, []))[1].append((a, b, e.replacement))
        raw_edits = []
        for cell, edits in groups.values():
            for lo, hi, group in _token_ranges(cell, edits):
                raw_edits.append(_token_edit(cell, lo, hi, group))
        return Fix(fix.description, tuple(raw_edits), fix.applicability)


def _cell_position(cell: Cell, offset: int) -> tuple:
    """1-based (line, column) of a character offset in the cell's source."""
    before = cell.source[:offset]
    breaks = list(re.finditer(r"\r\n|\r|\n", before))
    return len(breaks) + 1, offset - (breaks[-1].end() if breaks else 0) + 1


def _raw_position(cell: Cell, k: int, end: bool) -> tuple:
    """(offset, line, column) in the stored file of the cell's character k (as an end
    position: just after character k-1). A JSON string never spans lines, so the line is
    the string's own and the column counts its escapes (`\\n`, `\\u00e9`, surrogate pairs)."""
    i = bisect.bisect_right(cell.starts, k - 1 if end and k > 0 else k) - 1
    i = min(max(i, 0), len(cell.tokens) - 1)
    start, stop, value = cell.tokens[i]
    raw = cell.raw[i]
    within = min(k - cell.starts[i], len(value))
    j, n = 1, 0
    while n < within:
        if raw[j] == "\\":
            if raw[j + 1] == "u":
                j += 12 if (0xD800 <= int(raw[j + 2:j + 6], 16) < 0xDC00 and raw[j + 6:j + 8] == "\\u") else 6
            else:
                j += 2
        else:
            j += 1
        n += 1
    line, col = cell.where[i]
    return start + j, line, col + j


def _separator(raw: str, cell: Cell) -> str:
    """What stands between two strings of this cell's source list in the file (`,\\n    `)."""
    tokens = cell.tokens
    if not cell.listed or not tokens:
        return ""
    if len(tokens) > 1:
        return raw[tokens[0][1]:tokens[1][0]]
    line_start = raw.rfind("\n", 0, tokens[0][0]) + 1
    indent = raw[line_start:tokens[0][0]]
    newline = "\r\n" if raw[line_start - 2:line_start] == "\r\n" else "\n"
    return "," + newline + indent if not indent.strip() else ", "


def _token_edit(cell: Cell, lo: int, hi: int, edits: list) -> Edit:
    """One edit replacing source strings lo..hi with the edited text, split into lines as
    nbformat stores them and encoded as the file encodes its strings."""
    base = cell.starts[lo]
    new = "".join(cell.tokens[k][2] for k in range(lo, hi + 1))
    for a, b, rep in sorted(edits, key=lambda e: e[0], reverse=True):
        new = new[:a - base] + rep + new[b - base:]
    start, end = cell.tokens[lo][0], cell.tokens[hi][1]
    ascii_only = any("\\u" in cell.raw[k] for k in range(lo, hi + 1))
    if not cell.listed:
        return Edit(start, end, json.dumps(new, ensure_ascii=ascii_only))
    parts = [json.dumps(p, ensure_ascii=ascii_only) for p in (new.splitlines(keepends=True) or [""])]
    return Edit(start, end, cell.separator.join(parts))


def _token_ranges(cell: Cell, edits: list):
    """Edits grouped by the run of source strings they touch: (first, last, edits)."""
    spans = []
    for a, b, rep in sorted(edits):
        lo = min(max(bisect.bisect_right(cell.starts, a) - 1, 0), len(cell.tokens) - 1)
        hi = min(max(bisect.bisect_right(cell.starts, b - 1 if b > a else b) - 1, lo), len(cell.tokens) - 1)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(hi, spans[-1][1]), spans[-1][2] + [(a, b, rep)])
        else:
            spans.append((lo, hi, [(a, b, rep)]))
    return spans
