"""YAML and JSON as a tree of positioned nodes, without constructing Python objects.

We compose (parse to nodes) and never construct: `!!python/object` tags stay inert labels,
and an alias is the same node object reached twice, so a billion-laughs document costs
nothing as long as walks remember which collections they have seen. JSON is read by the same
YAML 1.2 parser, which gives exact start and end marks for every scalar in both formats.

Imports inside functions (`json`, `ruamel.yaml`, `ruamel.yaml.error`, `yaml`, `yaml._yaml`) are
deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import re

from auditor.core.lazy_regex import LazyRegex
from auditor.core.model import Span
from auditor.core.record import Record

NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"

MAX_DEPTH = 200  # deeper documents are reported, not walked (recursion and time bounds)


class ParseError(Exception):
    def __init__(self, message: str, span: Span):
        super().__init__(message)
        self.message = message
        self.span = span


class Entry(Record):
    """One `key: value` pair of a mapping, with positions."""

    __slots__ = ("key", "key_node", "value_node", "key_path")

    def __init__(self, key: str, key_node, value_node, key_path: tuple):
        self.key = key
        self.key_node = key_node
        self.value_node = value_node
        self.key_path = key_path


def _tag(node) -> str:
    tag = node.tag
    return tag if isinstance(tag, str) else getattr(tag, "value", str(tag))


def span_of(node, text: str) -> Span:
    s, e = node.start_mark, node.end_mark
    return Span(s.line + 1, s.column + 1, e.line + 1, e.column + 1, s.index, e.index)


def value_span(entry: Entry, text: str) -> Span:
    """The span of a value; an empty value (`key:`) is placed right after the key's colon."""
    node = entry.value_node
    if is_scalar(node) and node.value == "" and not node.style:
        k = entry.key_node.end_mark
        colon = text.find(":", k.index)
        at = colon + 1 if colon != -1 and text.count("\n", k.index, colon) == 0 else k.index
        col = k.column + 1 + (at - k.index)
        return Span(k.line + 1, col, k.line + 1, col, at, at)
    return span_of(node, text)


def is_scalar(node) -> bool:
    return type(node).__name__ == "ScalarNode"


def is_mapping(node) -> bool:
    return type(node).__name__ == "MappingNode"


def is_sequence(node) -> bool:
    return type(node).__name__ == "SequenceNode"


def scalar_value(node, *, json_mode: bool = False):
    """The Python value a YAML 1.2 (or JSON) reader would build for a scalar node."""
    tag = _tag(node)
    text = node.value
    if tag == NULL_TAG:
        return None
    if tag == BOOL_TAG:
        return text.lower() == "true"
    if tag == INT_TAG:
        try:
            return int(text.replace("_", ""), 0)
        except ValueError:
            try:
                return int(text.replace("_", ""))
            except ValueError:
                return text
    if tag == FLOAT_TAG:
        low = text.lower()
        if low in (".inf", "+.inf"):
            return float("inf")
        if low == "-.inf":
            return float("-inf")
        if low == ".nan":
            return float("nan")
        try:
            return float(text.replace("_", ""))
        except ValueError:
            return text
    if json_mode and not node.style and text in ("NaN", "Infinity", "-Infinity"):
        return float(text.replace("Infinity", "inf"))
    return text


_CORE_TAG_PREFIX = "tag:yaml.org,2002:"


def rejected_tag(node) -> str | None:
    """The tag as written (`!!python/object/apply:os.system`, `!Ref`) when safe loaders reject
    it, else None: PyYAML's safe_load and ruamel's safe loader construct only the core tags."""
    tag = _tag(node)
    if tag.startswith(_CORE_TAG_PREFIX + "python/"):
        return "!!" + tag[len(_CORE_TAG_PREFIX):]
    if tag and not tag.startswith(_CORE_TAG_PREFIX) and tag not in ("?", "!"):
        return tag
    return None


def is_alias(entry: Entry) -> bool:
    """Whether the value was written as an alias (`*h`): the composer hands back the anchored
    node itself, which starts before the key that refers to it."""
    return entry.value_node.start_mark.index < entry.key_node.end_mark.index


def alias_span(entry: Entry, text: str) -> Span:
    """The span of the `*name` token after the key (the node's own marks are at its anchor)."""
    name = anchor_name(entry.value_node, text)
    at = text.find("*" + name, entry.key_node.end_mark.index) if name else -1
    if at == -1:
        return span_of(entry.key_node, text)
    line = text.count("\n", 0, at)
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    return Span(line + 1, column, line + 1, column + 1 + len(name), at, at + 1 + len(name))


def describe_entry(entry: Entry, text: str) -> str | None:
    """`describe` for a mapping value that is not a plain number-like scalar, naming the anchor
    of an alias; None for an ordinary scalar."""
    node = entry.value_node
    if is_scalar(node) and rejected_tag(node) is None:
        return None
    if is_alias(entry):
        kind = "a sequence" if is_sequence(node) and rejected_tag(node) is None else describe(node)
        return f"an alias to &{anchor_name(node, text)}, {kind}"
    return describe(node)


def anchor_name(node, text: str) -> str:
    """ruamel keeps the anchor on the node; libyaml's nodes do not, but their start mark is at
    the `&name` token, so the name is read from the text there (both composers agree)."""
    anchor = getattr(node, "anchor", None)
    name = str(getattr(anchor, "value", anchor) or "")
    if name:
        return name
    m = _ANCHOR.match(text, node.start_mark.index)
    return m.group(1) if m else ""


_ANCHOR = LazyRegex(r"&([^\s,\[\]{}]+)")


def describe(node) -> str:
    """What a value is, in words, for a message that says why it is not a number; looks only
    at this node (an alias to a billion-laughs list costs nothing)."""
    tag = rejected_tag(node)
    if tag is not None:
        short, _, target = tag.partition(":") if tag.startswith("!!python/") else (tag, "", "")
        named = f" ({target})" if target else ""
        return f"a {short} tag{named}, which safe loaders reject"
    if is_sequence(node):
        n = len(node.value)
        return f"a list of {n} item{'s' if n != 1 else ''}"
    if is_mapping(node):
        return "a mapping"
    return "a scalar"


def is_quoted(node) -> bool:
    return bool(getattr(node, "style", None)) and node.style in ("'", '"', "|", ">")


_DEEP_INDENT = re.compile(rf"^[ \t-]{{{MAX_DEPTH}}}", re.M)
_FLOW_TOKENS = LazyRegex(r'"(?:[^"\\]|\\.)*"|(?:^|(?<=[ \t]))#[^\n]*|[\[\]{}\n]', re.S | re.M)


def _too_deep(text: str) -> Span | None:
    """Where the nesting passes MAX_DEPTH, judged from the text before composing.

    ruamel's composer recurses once or twice per level, so a 100k-level document would
    only stop at Python's recursion limit, slowly (seconds) and at an unknown place. This
    estimate is linear, skipped outright for ordinary files (too few brackets, no line
    indented MAX_DEPTH columns), and errs on the deep side: it ignores single quotes, so
    brackets inside them count. Block depth needs at least one column per level.
    """
    if text.count("[") + text.count("{") > MAX_DEPTH:
        depth = line = 0
        for m in _FLOW_TOKENS.finditer(text):
            tok = m.group()
            if tok == "\n":
                line += 1
            elif tok in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    return span_at(text, m.start(), line)
            elif tok in "]}":
                depth = max(depth - 1, 0)
            else:
                line += tok.count("\n")
    if _DEEP_INDENT.search(text):
        levels: list = []
        start = 0
        for number, raw in enumerate(text.split("\n")):
            body = raw.lstrip(" \t-")
            if body and not body.startswith("#"):
                indent = len(raw) - len(raw.lstrip(" \t"))
                while levels and levels[-1] >= indent:
                    levels.pop()
                levels.append(indent)
                if len(levels) + raw[indent:len(raw) - len(body)].count("-") > MAX_DEPTH:
                    return span_at(text, start + indent, number)
            start += len(raw) + 1
    return None


def span_at(text: str, index: int, line: int | None = None) -> Span:
    """A one-character span at a text offset (for problems found outside the parser)."""
    if line is None:
        line = text.count("\n", 0, index)
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Span(line + 1, column, line + 1, column + 1, index, index + 1)


def compose(text: str, path: str) -> list:
    """All documents of a YAML/JSON text as root nodes; raises ParseError with a location.

    Three composers, fastest first, all giving the same nodes with the same marks:
    libyaml through PyYAML (about 20x faster than pure-Python ruamel; optional: without
    PyYAML or its C binding the next one is used, silently), then ruamel's safe scanner,
    then ruamel's round-trip scanner. libyaml tags scalars with the YAML 1.2 core schema
    below, as ruamel does, so `on`/`5e-2` mean what they meant before; a `%YAML` directive,
    which switches ruamel to 1.1, goes to ruamel. Error messages and positions differ
    between the scanners, so any text the faster ones reject is composed again by the
    round-trip scanner, whose report is the reference. The safe scanner differs from the
    round-trip one only in the marks of empty scalars (`key:` then a comment), which
    value_span places from the key instead. tests/test_perf_scanner.py compares the paths on
    the corpus, the fixtures and mutated rule examples.
    """
    deep = _too_deep(text)
    if deep is not None:
        raise ParseError(f"cannot parse: nesting deeper than {MAX_DEPTH} levels", deep)
    if USE_LIBYAML and _libyaml_agrees(text, path):
        docs = _compose_libyaml(text)
        if docs is not None:
            return docs
    try:
        return _compose(text, "safe")
    except ParseError:
        return _compose(text, "rt")


USE_LIBYAML = True  # tests switch it off to compare with the pure-Python path
_LIBYAML: list = []  # [loader class or None], decided on first use

# The YAML 1.2 core schema as ruamel resolves plain scalars (ruamel/yaml/resolver.py,
# version (1, 2)): tag, pattern, first characters; order matters within a first character.
_YAML12_RESOLVERS = (
    (BOOL_TAG, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (FLOAT_TAG, r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
    (INT_TAG, r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", "-+0123456789"),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", "<"),
    (NULL_TAG, r"""^(?: ~
        |null|Null|NULL
        | )$""", ("~", "n", "N", "")),
    ("tag:yaml.org,2002:timestamp", r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", "0123456789"),
    ("tag:yaml.org,2002:value", r"^(?:=)$", "="),
)


def _libyaml_agrees(text: str, path: str) -> bool:
    """Whether libyaml is known to read this text as ruamel does; otherwise ruamel reads it.

    Measured on mutated rule examples (tests/test_perf_scanner.py), libyaml accepts some texts
    ruamel refuses: tabs inside plain scalars, and in flow collections a key with an empty
    value before the closing bracket (`["a", "b":]`). Tabs are rare in configs, so any tab
    goes to ruamel; a `.json` file goes to libyaml only once the stdlib JSON parser (C, a
    small fraction of the compose time) accepts it, which also excludes the flow cases.
    A `%YAML` directive switches ruamel to YAML 1.1 tags, so such texts go to ruamel too.
    """
    if "\t" in text or "%YAML" in text:
        return False
    if path[-5:].lower() == ".json":
        import json

        try:
            json.loads(text)
        except (ValueError, RecursionError):
            return False
    return True


def _import_pyyaml():
    """PyYAML's modules compile about ten regular expressions when imported (the pure-Python
    reader's NON_PRINTABLE, a Unicode class, alone costs some 6 ms, a tenth of a one-recipe
    check), and the libyaml path uses none of them: CParser reads, and the YAML 1.2 resolvers
    below are the project's own. While PyYAML is imported, re.compile hands out LazyRegex
    objects, which compile on first use and otherwise behave as the patterns."""
    real = re.compile
    re.compile = LazyRegex
    try:
        import yaml
        from yaml._yaml import CParser  # absent when PyYAML was built without libyaml
    finally:
        re.compile = real
    return yaml, CParser


def _libyaml_loader():
    if not _LIBYAML:
        try:
            yaml, CParser = _import_pyyaml()
        except ImportError:
            _LIBYAML.append(None)
            return None
        table: dict = {}
        for tag, pattern, firsts in _YAML12_RESOLVERS:
            compiled = LazyRegex(pattern, re.X)  # a file needs few of them
            for first in firsts:
                table.setdefault(first, []).append((tag, compiled))

        class Loader(CParser, yaml.resolver.BaseResolver):
            yaml_implicit_resolvers = table

            def __init__(self, stream):
                CParser.__init__(self, stream)
                yaml.resolver.BaseResolver.__init__(self)

        _LIBYAML.append(Loader)
    return _LIBYAML[0]


def _compose_libyaml(text: str) -> list | None:
    """The documents composed by libyaml, or None to let ruamel compose (and word any error)."""
    loader_class = _libyaml_loader()
    if loader_class is None:
        return None
    loader = loader_class(text)
    try:
        docs = []
        while loader.check_node():
            doc = loader.get_node()
            if doc is not None:
                docs.append(doc)
        return docs
    except Exception:  # noqa: BLE001 - any refusal is worded by the reference scanner
        return None
    finally:
        loader.dispose()


def _compose(text: str, typ: str) -> list:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ=typ, pure=True)
    try:
        return [doc for doc in yaml.compose_all(text) if doc is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        idx = mark.index if mark else 0
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x).strip() or "cannot parse"
        raise ParseError(f"cannot parse: {msg}", Span(line, col, line, col + 1, idx, idx + 1)) from None
    except (YAMLError, ValueError, RecursionError, NotImplementedError) as exc:
        # NotImplementedError: ruamel's round-trip scanner gives up on some comment layouts
        # ("overlap in comment"); the file is then unparsable to it, never a traceback
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParseError(f"cannot parse: {first}", Span.file_start()) from None


def walk(root, *, max_depth: int = MAX_DEPTH):
    """Every mapping entry under root, depth first, each collection visited once.

    Yields Entry objects; sequence items extend the key path with their index.
    """
    seen = set()
    stack = [(root, (), 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > max_depth or id(node) in seen:
            continue
        if is_mapping(node):
            seen.add(id(node))
            children = []
            for key_node, value_node in node.value:
                if not is_scalar(key_node):
                    continue
                entry = Entry(str(key_node.value), key_node, value_node, path + (str(key_node.value),))
                yield entry
                if not is_scalar(value_node):
                    children.append((value_node, entry.key_path, depth + 1))
            stack.extend(reversed(children))
        elif is_sequence(node):
            seen.add(id(node))
            stack.extend(reversed([(item, path + (i,), depth + 1) for i, item in enumerate(node.value)
                                   if not is_scalar(item)]))


def depth_exceeded(root, max_depth: int = MAX_DEPTH) -> bool:
    seen = set()
    stack = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        if id(node) in seen or is_scalar(node):
            continue
        seen.add(id(node))
        if is_mapping(node):
            stack.extend((v, depth + 1) for _, v in node.value)
        elif is_sequence(node):
            stack.extend((v, depth + 1) for v in node.value)
    return False


def top_level(root) -> dict:
    """Top-level key -> (key_node, value_node); the last duplicate wins, as readers do."""
    if not is_mapping(root):
        return {}
    return {str(k.value): (k, v) for k, v in root.value if is_scalar(k)}


def to_python(node, *, json_mode: bool = False, budget: list | None = None):
    """A small plain-Python copy of a node (for fields such as target_modules); bounded."""
    if budget is None:
        budget = [10_000]
    budget[0] -= 1
    if budget[0] < 0:
        return None
    if is_scalar(node):
        return scalar_value(node, json_mode=json_mode)
    if is_sequence(node):
        return [to_python(v, json_mode=json_mode, budget=budget) for v in node.value]
    if is_mapping(node):
        return {str(k.value): to_python(v, json_mode=json_mode, budget=budget)
                for k, v in node.value if is_scalar(k)}
    return None
