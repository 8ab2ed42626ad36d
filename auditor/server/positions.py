"""Between the tool's positions and the editor's.

The tool counts 1-based lines and columns in characters (code points) and edits by character
offsets into the decoded text; LSP counts 0-based lines and columns in the negotiated
encoding, UTF-16 code units unless the client offers another. A column past the end of its
line or a line past the end of the text is clamped, so a stale finding never produces a
range the client rejects.
"""

from __future__ import annotations

import bisect
import re

_BREAK = re.compile(r"\r\n|\r|\n")  # LSP's line breaks


def _units(segment: str, encoding: str) -> int:
    if encoding == "utf-32":
        return len(segment)
    if encoding == "utf-8":
        return len(segment.encode("utf-8", "surrogatepass"))
    return len(segment) + sum(1 for ch in segment if ord(ch) > 0xFFFF)


class Lines:
    """A text's line starts, for converting offsets and positions both ways."""

    __slots__ = ("text", "starts", "ends", "encoding")

    def __init__(self, text: str, encoding: str = "utf-16"):
        self.text = text
        self.encoding = encoding
        self.starts = [0]
        self.ends = []
        for m in _BREAK.finditer(text):
            self.ends.append(m.start())
            self.starts.append(m.end())
        self.ends.append(len(text))

    def line_text(self, line: int) -> str:
        """The 0-based line's characters, without its line break."""
        line = min(max(line, 0), len(self.starts) - 1)
        return self.text[self.starts[line]:self.ends[line]]

    def offset_of(self, line: int, column: int) -> int:
        """The character offset of the tool's 1-based line and column (clamped to the line)."""
        i = min(max(line - 1, 0), len(self.starts) - 1)
        return min(self.starts[i] + max(column - 1, 0), self.ends[i])

    def position(self, offset: int) -> tuple:
        """(line, character) of a character offset, both 0-based, character in the encoding."""
        offset = min(max(offset, 0), len(self.text))
        line = bisect.bisect_right(self.starts, offset) - 1
        offset = min(offset, self.ends[line])
        return line, _units(self.text[self.starts[line]:offset], self.encoding)

    def offset(self, line: int, character: int) -> int:
        """The character offset of an LSP position (a character inside a surrogate pair or a
        UTF-8 sequence rounds down to the start of its code point)."""
        if line >= len(self.starts):
            return len(self.text)
        line = max(line, 0)
        start, end = self.starts[line], self.ends[line]
        if self.encoding == "utf-32":
            return min(start + max(character, 0), end)
        units, i = 0, start
        while i < end:
            width = _units(self.text[i], self.encoding)
            if units + width > character:
                break
            units += width
            i += 1
        return i
