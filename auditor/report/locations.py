"""Paths and identities that CI systems need from a finding.

Code scanning, GitLab and GitHub annotations all resolve paths against the repository
checkout, so reports carry paths relative to the root (the current directory unless
`--root` says otherwise), with forward slashes, whatever the user typed.
Fingerprints must survive line moves (a comment added above a value must not re-open an
alert), so they hash the rule, the path and the setting's key path, never the line.

Imports inside functions (`hashlib`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import os


def message_of(f) -> str:
    """The message for formats that point at the stored file (SARIF, GitHub, GitLab, JUnit):
    in a notebook that line is JSON, so the message names the cell and the line in it."""
    if not f.cell:
        return f.message
    return f"{f.message} (notebook cell {f.cell[0]}, line {f.cell[1]})"


def relative(path: str, root: str = ".") -> str:
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root or "."))
    except ValueError:  # another drive on Windows: nothing relative exists
        return path.replace(os.sep, "/")
    return rel.replace(os.sep, "/")


def fingerprints(findings, root: str = ".") -> list:
    """One stable hex digest per finding; repeats of the same identity get an occurrence number.
    hashlib is imported here: it loads OpenSSL, which the GitHub and JUnit formats never need."""
    import hashlib

    seen = {}
    out = []
    for f in findings:
        identity = "\x1f".join((f.code, relative(f.path, root), f.key or f.message))
        n = seen.get(identity, 0)
        seen[identity] = n + 1
        out.append(hashlib.sha256(f"{identity}\x1f{n}".encode("utf-8", "surrogatepass")).hexdigest()[:32])
    return out
