"""A content-addressed cache of findings, one entry per directory.

A directory is the engine's unit of work (cross-file rules compare the files of one folder),
so it is also the unit of caching: an entry holds the findings of a whole directory and its
key covers every byte of every audited file in it, the paths, the tool (version and a
fingerprint of its own modules, so a development checkout never serves findings of older
code), the active rules (codes, params, severities, the rule files' contents) and the options
that change findings. Nothing is trusted from modification times: a hit means the inputs are
byte-identical. A setup can span directories (auditor/setup/graph.py): an entry also records
the digest of every file the directory's links reached, or named without finding, and is a
miss when any of them changed, appeared or went away.

Entries are written atomically (temporary file + rename) and an unreadable or corrupt entry
is a miss, so an interrupted run or two concurrent runs can never produce wrong findings.

Imports inside functions (`core.catalogue`, `setup.hf_cache`, `sources.text`) are deferred for
start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import json
import marshal
import os
import sys

from auditor import __version__
from auditor.core.model import Edit, Finding, Fix, Span

try:  # the interpreter's own SHA-256: hashlib's loads OpenSSL first (~3 ms)
    from _sha256 import sha256  # Python 3.11
except ImportError:
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        from hashlib import sha256

DEFAULT_DIR = ".dropout_audit_cache"
FORMAT = 4  # bump when the entry layout changes (3: a finding's notebook cell; 4: linked files' digests)

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by dropout-audit.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)


# --- compact encoding (also used to ship findings back from worker processes) -------------

def encode(findings) -> list:
    """Findings as nested tuples of plain values: marshal writes and reads them fast."""
    out = []
    for f in findings:
        s = f.span
        fix = None
        if f.fix is not None:
            fix = (f.fix.description, f.fix.applicability,
                   tuple((e.start, e.end, e.replacement) for e in f.fix.edits))
        out.append((f.code, f.name, f.category, f.severity, f.path,
                    (s.line, s.column, s.end_line, s.end_column, s.start, s.end),
                    f.message, fix, f.key, f.suppressed, tuple(f.suppression), tuple(f.cell)))
    return out


def decode(rows) -> list:
    out = []
    for code, name, category, severity, path, span, message, fix, key, suppressed, suppression, cell in rows:
        if fix is not None:
            desc, applicability, edits = fix
            fix = Fix(desc, tuple(Edit(*e) for e in edits), applicability)
        out.append(Finding(code=code, name=name, category=category, severity=severity, path=path,
                           span=Span(*span), message=message, fix=fix, key=key, suppressed=suppressed,
                           suppression=tuple(suppression), cell=tuple(cell)))
    return out


# --- what the key is made of ------------------------------------------------------------

def _code_fingerprint(here: str | None = None) -> bytes:
    """Stat signature of the package's modules: editing the checker invalidates the cache
    even when the version string did not change (development checkouts, editable installs)."""
    here = here or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = []
    directories = [here]
    while directories:  # scandir rather than os.walk, one digest update: a third of the cost
        directory = directories.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name.endswith(".py"):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                parts.append(f"{entry.path[len(here) + 1:]}:{st.st_mtime_ns}:{st.st_size};")
            elif entry.name != "__pycache__" and entry.is_dir(follow_symlinks=False):
                directories.append(entry.path)
    return sha256("".join(parts).encode()).digest()


def salt_for(engine) -> bytes:
    """Everything except the files themselves that decides a directory's findings."""
    from auditor.core.catalogue import stamp_of

    h = sha256()
    h.update(f"dropout-audit {__version__} format {FORMAT} python {sys.version_info[:2]}\n".encode())
    h.update(_code_fingerprint())
    # Each rule as it runs, and its file's stamp (size, CRC-32): what the catalogue itself
    # trusts to tell an edited rule file from the one its compiled copy was made of.
    h.update(json.dumps([[rule.code, rule.name, rule.category, rule.severity, rule.check, rule.params,
                          stamp_of(rule.origin) if rule.origin else "-"] for rule in engine.rules],
                        sort_keys=True, default=repr).encode())
    opts = engine.options
    h.update(json.dumps([opts.max_file_size, sorted(engine.readers)], default=repr).encode())
    # What auditor.run.suppress applies per directory decides the cached findings too.
    h.update(json.dumps([sorted(opts.only_given) if opts.only_given is not None else None, opts.inline_suppressions,
                         opts.per_file_ignores, opts.config_root], default=repr).encode())
    # The model identity reads the user's models mapping and the local Hugging Face cache.
    from auditor.setup import hf_cache

    h.update(json.dumps([sorted(opts.models.items()), hf_cache.state()], default=repr).encode())
    return h.digest()


def digest_of(path: str):
    """sha256 of a linked file's bytes; None when it is absent or unreadable."""
    from auditor.sources.text import FileProblem, read_bytes

    try:
        return sha256(read_bytes(path)).digest() if os.path.isfile(path) else None
    except (FileProblem, OSError):
        return None


def linked_digests(paths) -> list:
    return [(p, digest_of(p)) for p in sorted(paths)]


# --- the store ---------------------------------------------------------------------------

class Cache:
    """Per-directory findings under `root` (default `.dropout_audit_cache/`)."""

    def __init__(self, root: str, salt: bytes):
        self.root = root
        self.salt = salt
        self.hits = 0
        self.misses = 0
        self._ready = False

    @classmethod
    def for_engine(cls, engine, root: str = DEFAULT_DIR) -> Cache:
        return cls(root, salt_for(engine))

    def read_blobs(self, paths: list, max_size: int):
        """The bytes of each file, or None where the engine must read it itself (too large,
        unreadable); returns (blobs, cacheable). A directory with an unreadable file is not
        cached: its findings depend on the error, not on content."""
        from auditor.sources.text import FileProblem, read_bytes

        blobs = []
        cacheable = True
        for path in paths:
            try:
                blobs.append(read_bytes(path, max_size))
            except FileProblem:
                blobs.append(None)
                cacheable = False
        return blobs, cacheable

    def key(self, directory: str, paths: list, blobs: list) -> str:
        h = sha256(self.salt)
        h.update(directory.encode("utf-8", "surrogateescape") + b"\0")
        for path, blob in zip(paths, blobs):
            h.update(path.encode("utf-8", "surrogateescape") + b"\0")
            h.update(sha256(blob).digest())
        return h.hexdigest()

    def _entry(self, key: str) -> str:
        return os.path.join(self.root, f"v{FORMAT}", key[:2], key)

    def get(self, key: str):
        """Decoded findings, or None on a miss (absent, truncated or corrupt entry, or a linked
        file that is no longer what it was)."""
        try:
            with open(self._entry(key), "rb") as fh:
                data = fh.read()
        except OSError:
            self.misses += 1
            return None
        try:
            stored_key, rows, deps = marshal.loads(data)
            if stored_key != key or not isinstance(rows, list):
                raise ValueError("entry for another key")
            if any(digest_of(path) != digest for path, digest in deps):
                raise ValueError("a linked file changed")
            decoded = decode(rows)
        except Exception:  # noqa: BLE001 - any damage to an entry only means "recompute"
            self.misses += 1
            return None
        self.hits += 1
        return decoded

    def put(self, key: str, rows: list, deps=()) -> None:
        """Store encoded findings and the digests of the linked files (`linked_digests`); a
        cache that cannot be written is silently skipped."""
        try:
            self._prepare()
            target = self._entry(key)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{target}.{os.getpid()}.tmp"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(marshal.dumps((key, rows, list(deps))))
                os.replace(tmp, target)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        except (OSError, ValueError):
            pass

    def _prepare(self) -> None:
        """CACHEDIR.TAG tells backup tools to skip us; the .gitignore keeps it out of commits."""
        if self._ready:
            return
        os.makedirs(self.root, exist_ok=True)
        for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "# created by dropout-audit\n*\n")):
            path = os.path.join(self.root, name)
            if not os.path.exists(path):
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text)
        self._ready = True
