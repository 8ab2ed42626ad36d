"""The rule catalogue: one YAML file per rule, built-in ones shipped in the package.

Rules are data so that their documentation, their examples (which run as tests) and their
tunable parameters live in one place, and so that users can add organisation policies with
`--rules DIR` using the same check primitives, without writing Python.

Imports inside functions (`auditor`, `binascii`, `hashlib`, `json`, `marshal`, `ruamel.yaml`,
`ruamel.yaml.error`) are deferred for start-up time: a run that never takes that path never pays
for them.
"""

from __future__ import annotations

import os
import sys

from auditor.core.model import CATEGORIES, SEVERITIES
from auditor.core.record import Record

REQUIRED = ("code", "name", "category", "severity", "check", "summary", "why")


class RuleError(Exception):
    """A rule file that cannot be used; the message names the file and the key."""


class Rule(Record):
    __slots__ = ("code", "name", "category", "severity", "check", "summary", "why", "params", "references",
                 "examples", "fix", "origin", "unsure_severity")

    def __init__(self, code: str, name: str, category: str, severity: str, check: str, summary: str, why: str,
                 params: dict | None = None, references: list | None = None, examples: dict | None = None,
                 fix: str = "", origin: str = "", unsure_severity: str = ""):
        self.code = code
        self.name = name
        self.category = category
        self.severity = severity
        self.check = check
        self.summary = summary
        self.why = why
        self.params = {} if params is None else params
        self.references = [] if references is None else references
        self.examples = {} if examples is None else examples
        self.fix = fix
        self.origin = origin
        # the severity a finding drops to when the facts behind it are weaker (DRP132's library
        # fields known only at the pinned versions, DRP602's model whose dropout is unknown)
        self.unsure_severity = unsure_severity

    @classmethod
    def from_dict(cls, data, origin: str) -> "Rule":
        if not isinstance(data, dict):
            raise RuleError(f"{origin}: a rule file must be a mapping")
        for key in REQUIRED:
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise RuleError(f"{origin}: '{key}' is required and must be a non-empty string")
        if data["category"] not in CATEGORIES:
            raise RuleError(f"{origin}: category '{data['category']}' is not one of {', '.join(CATEGORIES)}")
        if data["severity"] not in SEVERITIES:
            raise RuleError(f"{origin}: severity '{data['severity']}' is not one of {', '.join(SEVERITIES)}")
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise RuleError(f"{origin}: 'params' must be a mapping")
        examples = data.get("examples") or {}
        if not isinstance(examples, dict):
            raise RuleError(f"{origin}: 'examples' must be a mapping with 'bad' and 'good' lists")
        unsure = data.get("unsure_severity") or ""
        if unsure and unsure not in SEVERITIES:
            raise RuleError(f"{origin}: unsure_severity '{unsure}' is not one of {', '.join(SEVERITIES)}")
        known = set(REQUIRED) | {"params", "references", "examples", "fix", "unsure_severity"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RuleError(f"{origin}: unknown key '{unknown[0]}'")
        return cls(code=data["code"], name=data["name"], category=data["category"], severity=data["severity"],
                   check=data["check"], summary=data["summary"].strip(), why=data["why"].strip(), params=params,
                   references=list(data.get("references") or []), examples=examples,
                   fix=str(data.get("fix") or ""), origin=origin, unsure_severity=unsure)

    def shown_severity(self) -> str:
        """The severity as listed: `error or info` where findings drop to info when unsure."""
        return f"{self.severity} or {self.unsure_severity}" if self.unsure_severity else self.severity


def _package_dir() -> str:
    """The `auditor` package directory, where the wheel carries rules/ and _catalogue.json."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def builtin_dir() -> str:
    """Built-in rules: `auditor/rules` in a wheel, the top-level `rules/` in a checkout."""
    here = _package_dir()
    packaged = os.path.join(here, "rules")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "rules")


COMPILED_NAME = "_catalogue.json"
COMPILED_FORMAT = 1


def compiled_path() -> str:
    """The catalogue compiled by the build step (setup.py): inside the package in a wheel,
    and in the source tree's `auditor/` for an editable install (git-ignored)."""
    return os.path.join(_package_dir(), COMPILED_NAME)


def rule_names(directory: str) -> list:
    return [name for name in sorted(os.listdir(directory)) if name.endswith((".yaml", ".yml"))]


def _stamp(raw: bytes) -> list:
    """Size and CRC-32 of a rule file's bytes: enough to notice an edited file. binascii (the
    same CRC-32 as zlib's) costs a tenth of what hashlib (OpenSSL) costs to import, and a
    check that composes YAML imports it anyway (PyYAML's constructor, through base64)."""
    import binascii

    return [len(raw), binascii.crc32(raw)]


_STAMPS: dict = {}  # rule file path -> its stamp, as this run read it


def stamp_of(path: str) -> list | None:
    """The stamp of a rule file's bytes (None: unreadable). The findings cache keys on it
    (cache.salt_for); the built-in catalogue has read every file's stamp already to check its
    compiled copy, so a run reads each rule file once."""
    if path not in _STAMPS:
        try:
            with open(path, "rb") as fh:
                _STAMPS[path] = _stamp(fh.read())
        except OSError:
            _STAMPS[path] = None
    return _STAMPS[path]


def compile_dir(directory: str) -> dict:
    """The parsed catalogue as JSON-ready data; called by the build step, never at run time.

    Every rule is validated here so that a broken rule fails the build, and data that JSON
    would change (dates, non-string keys) is refused rather than shipped altered.
    """
    import json

    files = []
    for name in rule_names(directory):
        path = os.path.join(directory, name)
        with open(path, "rb") as fh:
            raw = fh.read()
        data = _read_data(path)
        Rule.from_dict(data, path)
        try:
            same = json.loads(json.dumps(data)) == data
        except (TypeError, ValueError):
            same = False
        if not same:
            raise RuleError(f"{path}: holds values that JSON cannot carry unchanged (dates, non-string keys)")
        files.append({"name": name, "stamp": _stamp(raw), "data": data})
    return {"format": COMPILED_FORMAT, "files": files}


def write_compiled(directory: str, target: str) -> None:
    import json

    data = compile_dir(directory)
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))
    os.replace(tmp, target)


def _load_compiled(directory: str, names: list) -> list | None:
    """The built-in rules from the build step's copy, or None when there is none or it does
    not match the rule files byte for byte (an edited checkout): then the files are parsed."""
    import json

    try:
        with open(compiled_path(), encoding="utf-8") as fh:
            compiled = json.load(fh)
        files = compiled["files"]
        if compiled.get("format") != COMPILED_FORMAT or [f["name"] for f in files] != names:
            return None
        for f in files:
            path = os.path.join(directory, f["name"])
            with open(path, "rb", buffering=0) as fh:  # unbuffered: one read, no tty probe (71 files a run)
                _STAMPS[path] = _stamp(fh.read())
            if _STAMPS[path] != f["stamp"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [Rule.from_dict(f["data"], os.path.join(directory, f["name"])) for f in files]


def _read_data(path: str):
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        with open(path, encoding="utf-8") as fh:
            return YAML(typ="safe", pure=True).load(fh)
    except (OSError, YAMLError, ValueError) as exc:
        raise RuleError(f"{path}: cannot read rule file: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def _load_file(path: str) -> Rule:
    return Rule.from_dict(_read_data(path), path)


def _cache_path(directory: str) -> str:
    import hashlib

    from auditor import __version__

    tag = hashlib.sha1(os.path.abspath(directory).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    here = _package_dir()
    return os.path.join(here, "__pycache__", f"rules-{tag}-{__version__}.marshal")


def _load_dir(directory: str, names: list) -> list:
    """The rules of one directory: built-in ones from the build step's compiled copy; any
    other directory (--rules, or a checkout without a build) through a runtime cache.

    Composing rule files with ruamel's pure-Python parser costs more than everything else a
    one-file run does. The runtime cache keeps the parsed data in the package's __pycache__,
    reused while every file's (mtime, size, inode) is unchanged; it cannot be written in a
    read-only install or under PYTHONDONTWRITEBYTECODE, which is why the built-in catalogue
    does not rely on it. Validation (Rule.from_dict) runs on every load.
    """
    import marshal

    if os.path.abspath(directory) == os.path.abspath(builtin_dir()):
        rules = _load_compiled(directory, names)
        if rules is not None:
            return rules
    paths = [os.path.join(directory, name) for name in names]
    for path in paths:  # stamp_of reads these files again in this load, as they are now
        _STAMPS.pop(path, None)
    try:
        sig = [(name, st.st_mtime_ns, st.st_size, st.st_ino) for name, st in zip(names, map(os.stat, paths))]
    except OSError:
        sig = None
    cached = _cache_path(directory)
    if sig is not None:
        try:
            with open(cached, "rb") as fh:
                stored_sig, datas = marshal.load(fh)
            if stored_sig == sig and len(datas) == len(paths):
                return [Rule.from_dict(d, p) for d, p in zip(datas, paths)]
        except Exception:  # noqa: BLE001 - absent, stale or damaged: parse the sources
            pass
    datas = [_read_data(p) for p in paths]
    rules = [Rule.from_dict(d, p) for d, p in zip(datas, paths)]
    if sig is not None and not sys.dont_write_bytecode:
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            tmp = f"{cached}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                marshal.dump((sig, datas), fh)
            os.replace(tmp, cached)
        except (OSError, ValueError):  # read-only install, or data marshal cannot write
            pass
    return rules


def load(extra_dirs=()) -> list:
    """Every rule, built-in first; a user rule with a built-in code replaces it."""
    by_code = {}
    for directory in (builtin_dir(), *extra_dirs):
        if not os.path.isdir(directory):
            raise RuleError(f"{directory}: rules directory does not exist")
        for rule in _load_dir(directory, rule_names(directory)):
            by_code[rule.code] = rule
    return sorted(by_code.values(), key=lambda r: r.code)
