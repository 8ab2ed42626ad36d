"""A notebook document (LSP 3.17) as the `.ipynb` text the notebook reader reads, and back.

An editor sends a notebook as cells, each its own text document; the reader wants the stored
form. The cells are written as an nbformat-4 notebook, every cell's source one JSON string,
so that what comes back from the engine is easy to place again: a finding carries its cell
number (1-based among all cells, as here) and cell-relative position, and a fix's edit
replaces one cell's whole source string, which decodes to the cell's new text; the edit sent
to the editor is the smallest change between the old and the new cell text.

Code cells in another language than Python are written as raw cells, so they are never read
as Python.
"""

from __future__ import annotations

import json

CODE, MARKUP = "code", "markdown"


class Cell:
    __slots__ = ("uri", "kind", "language", "text")

    def __init__(self, uri: str, kind: str, language: str, text: str):
        self.uri = uri
        self.kind = kind          # "code" or "markdown"
        self.language = language  # the cell document's languageId
        self.text = text


class NotebookText:
    """The stored form of a notebook's cells and where each cell's source string is."""

    def __init__(self, cells: list):
        self.cells = cells
        parts, tokens, pos = [], [], 0

        def put(piece: str) -> None:
            nonlocal pos
            parts.append(piece)
            pos += len(piece)

        put('{\n "cells": [')
        for i, cell in enumerate(cells):
            kind = cell.kind if cell.kind == MARKUP or cell.language == "python" else "raw"
            put(("," if i else "") + '\n  {\n   "cell_type": ' + json.dumps(kind) + ',\n   "metadata": {},\n')
            if kind == CODE:
                put('   "execution_count": null,\n   "outputs": [],\n')
            put('   "source": ')
            token = json.dumps(cell.text, ensure_ascii=False)
            tokens.append((pos, pos + len(token)))
            put(token + "\n  }")
        put('\n ],\n "metadata": {\n  "language_info": {"name": "python"}\n },\n "nbformat": 4,\n "nbformat_minor": 5\n}\n')
        self.text = "".join(parts)
        self.tokens = tokens

    def cell(self, number: int) -> Cell | None:
        """A finding's cell (1-based number)."""
        return self.cells[number - 1] if 0 < number <= len(self.cells) else None

    def cell_edits(self, fix) -> dict | None:
        """A relocated fix as {cell index: [(start, end, replacement)]} in cell-text
        offsets; None when an edit is not a whole cell source (nothing is guessed)."""
        out = {}
        for edit in fix.edits:
            try:
                index = self.tokens.index((edit.start, edit.end))
                new = json.loads(edit.replacement)
            except (ValueError, TypeError):
                return None
            if not isinstance(new, str):
                return None
            out.setdefault(index, []).append(smallest_edit(self.cells[index].text, new))
        return out


def smallest_edit(old: str, new: str) -> tuple:
    """(start, end, replacement) turning old into new, the common ends left alone."""
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    return start, end_old, new[start:end_new]


def module_offset(source, number: int, offset: int) -> int | None:
    """The offset in the notebook Source's joined module of a cell-text offset (for hover:
    the readers' settings are placed in the joined module). None when the cell has no code."""
    for fact in getattr(source, "facts", ()):
        for seg in getattr(fact, "segments", ()):
            if seg.cell.number == number:
                return seg.start + min(offset, len(seg.cell.source))
    return None
