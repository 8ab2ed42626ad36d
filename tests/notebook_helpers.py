"""Writing small nbformat-4 notebooks for the notebook tests."""

from __future__ import annotations

import json


def code(source, outputs=None):
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": outputs or [],
            "source": source}


def markdown(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def lines(text: str) -> list:
    """A cell's source as nbformat stores it: one string per line, line ends kept."""
    return text.splitlines(keepends=True)


def notebook(*cells, indent=1, ensure_ascii=False, final_newline=True) -> str:
    doc = {"cells": list(cells), "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
           "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=indent, ensure_ascii=ensure_ascii) + ("\n" if final_newline else "")
