"""Family tokens: what a hub id names when the exact table and the reviewed patterns do not know it.

Most hub ids in real recipes are fine-tunes, and a fine-tune usually names its base in its id
(`allenai/Llama-3.1-Tulu-3-8B-SFT`, `teknium/OpenHermes-2.5-Mistral-7B`), or names a family whose
checkpoints all ship their own modeling code (`THUDM/chatglm3-6b`) or belong to another library
(`runwayml/stable-diffusion-v1-5`, `timm/resnet18.a1_in1k`). The lexicon (`data/model_families.json`)
holds those tokens, each with one verdict (a Transformers model type, `custom-code`, or
`non-transformers:<library>`) and where it was verified. A wrong type is worse than none, so:

- a token counts only between separators, and a longer token inside which a shorter one sits wins
  (`qwen1.5-moe` over `qwen1.5`);
- an *outer* family (a composite built around a base, custom code, another library) wins over the
  base families its name also carries (`cogvlm2-llama3-chat-19B` is custom code, not llama);
- a base family is cancelled by a veto word outside its token (`vision`, `vl`, `a3b`, `gguf`...);
- two different verdicts leave the id unknown.

An org known to ship custom code makes an id it still cannot place `custom-code` when the recipe
sets trust_remote_code (or always, for orgs that ship nothing else). Every verdict says which
token decided, so the plan can show it and a user can override it with `models`.

The lexicon is read once, lazily, only for a hub id the name table leaves unknown; each token is
compiled the first time its needle (a literal every match contains) appears in a name.

Imports inside functions (`setup.names`) are deferred for start-up time: a run that never takes
that path never pays for them.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache, lru_cache

from auditor.core.record import Record

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "model_families.json")
HF_HUB_PREFIX = "hf-hub:"

# Between separators; a version continues a token (`qwen3` is not in `qwen3.6`), so the token must
# not be followed by a letter, a digit or `.digit`.
_BOUNDED = r"(?<![a-z0-9])(?:{})(?![a-z0-9]|\.\d)"


class Verdict(Record):
    """What the name says. kind: transformers | custom-code | non-transformers | None (unknown);
    `token` is the part of the id that decided, as written; `detail` says how, or why not."""

    __slots__ = ("kind", "model_type", "library", "token", "family", "source", "detail")

    def __init__(self, kind=None, model_type=None, library=None, token=None, family=None, source="", detail=""):
        self.kind = kind
        self.model_type = model_type
        self.library = library
        self.token = token
        self.family = family
        self.source = source
        self.detail = detail


class _Family(Record):
    __slots__ = ("family", "needles", "token", "verdict", "outer", "orgs", "unless")

    def __init__(self, family, needles, token, verdict, outer, orgs, unless):
        self.family = family
        self.needles = needles
        self.token = token
        self.verdict = verdict
        self.outer = outer
        self.orgs = orgs
        self.unless = unless


@lru_cache(maxsize=1)
def document() -> dict:
    with open(DATA_FILE, encoding="utf-8") as handle:
        return json.load(handle)


@lru_cache(maxsize=1)
def _lexicon() -> dict:
    doc = document()
    families = [_Family(f["family"], tuple(f["needles"]), f["token"], f["verdict"], bool(f.get("outer")),
                        frozenset(o.lower() for o in f["orgs"]) if f.get("orgs") else None, f.get("unless"))
                for f in doc["families"]]
    words = [v["token"] for v in doc["vetoes"]]
    return {
        "families": families,
        "veto_words": frozenset(w for w in words if w.isalnum()),
        "veto_patterns": tuple(w for w in words if not w.isalnum()),
        "not_orgs": frozenset(o.lower() for o in doc["not_orgs"]),
        "base_excluded": frozenset(o.lower() for o in doc["base_excluded_orgs"]),
        "custom_orgs": {o.lower(): v["only"] for o, v in doc["custom_code_orgs"].items()},
        "other_orgs": {o.lower(): v["library"] for o, v in doc["non_transformers_orgs"].items()},
    }


@cache
def _token(pattern: str):
    return re.compile(_BOUNDED.format(pattern))


@cache
def _plain(pattern: str):
    return re.compile(pattern)


def classify(ref: str, remote_code: bool = False) -> Verdict:
    """The name path of model identity for one reference: a `hf-hub:` reference (open_clip,
    timm), the shipped name table (names.py, exact ids and reviewed patterns), then the lexicon."""
    from auditor.setup import names

    if ref.startswith(HF_HUB_PREFIX):
        org = ref[len(HF_HUB_PREFIX):].partition("/")[0].lower()
        library = "timm" if org == "timm" else "open_clip"
        return Verdict("non-transformers", library=library, token=HF_HUB_PREFIX, source="hf-hub",
                       detail=f"a {library} model: '{HF_HUB_PREFIX}' references are loaded by {library}, not Transformers")
    if not names.is_hub_id(ref):
        return Verdict(detail="not a hub id")
    model_type, how = names.match(ref)
    if model_type:
        return Verdict("transformers", model_type, source="name-table", detail=how)
    verdict = identify(ref, remote_code)
    if verdict.kind is None:
        verdict.detail = f"{how}; {verdict.detail}" if verdict.detail else how
    return verdict


def identify(hub_id: str, remote_code: bool = False) -> Verdict:
    """The lexicon's verdict on a hub id (see the module docstring); kind None when it cannot tell."""
    lex = _lexicon()
    owner, _, raw_name = hub_id.rpartition("/")
    org, name = owner.lower(), raw_name.lower()
    if org in lex["not_orgs"]:
        return Verdict(detail=f"'{owner}/' reads as a local folder, whose name the lexicon does not judge")
    library = lex["other_orgs"].get(org)
    if library:
        return Verdict("non-transformers", library=library, token=owner, source="lexicon-org",
                       detail=f"a {library} model: the org {owner} publishes {library} checkpoints")
    only = lex["custom_orgs"].get(org)
    if only:
        return _custom_org(owner, True)
    matches = _matches(lex, org, name) + _class_names(raw_name)
    matches = [m for m in matches
               if not any(o is not m and o[0] <= m[0] and m[1] <= o[1] and o[1] - o[0] > m[1] - m[0] for o in matches)]
    outer = [m for m in matches if m[2].outer]
    if outer:
        return _decide(outer, raw_name, "outer family")
    if matches:
        veto = _veto(lex, name, matches)
        if veto is not None:
            token = raw_name[matches[0][0]:matches[0][1]]
            return Verdict(detail=f"family token '{token}' names a base, but '{raw_name[veto.start():veto.end()]}' "
                                  "says the checkpoint is another model")
        return _decide(matches, raw_name, "family")
    if only is not None and remote_code:
        return _custom_org(owner, False)
    return Verdict(detail="no family token of the lexicon")


def _matches(lex, org: str, name: str) -> list:
    """(start, end, family) of every family token in the name that the entry allows here."""
    found = []
    for fam in lex["families"]:
        if not any(n in name for n in fam.needles):
            continue
        if fam.orgs is not None and org not in fam.orgs:
            continue
        if not fam.outer and org in lex["base_excluded"]:
            continue
        hits = list(_token(fam.token).finditer(name))
        if hits and not (fam.unless and _plain(fam.unless).search(name)):
            found.extend((m.start(), m.end(), fam) for m in hits)
    return found


def _custom_org(owner: str, only: bool) -> Verdict:
    why = "ships only custom code" if only else "ships custom code and the recipe sets trust_remote_code"
    return Verdict("custom-code", token=owner, source="lexicon-org",
                   detail=f"custom code: the org {owner} {why} (no Transformers model type to check it against)")


_CLASS_IN_NAME = re.compile(r"[A-Z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*?(?:For[A-Z][A-Za-z]+|LMHeadModel)")


def _class_names(raw_name: str) -> list:
    """A Transformers class named in the id (`trl-internal-testing/tiny-Qwen3MoeForCausalLM`) is a
    base token too: the generated class table (model_classes.json) says its type."""
    if "For" not in raw_name and "LMHeadModel" not in raw_name:
        return []
    from auditor.setup import names

    table = names.class_table()
    found = []
    for m in _CLASS_IN_NAME.finditer(raw_name):
        model_type = table.get(m.group(0))
        if model_type:
            found.append((m.start(), m.end(), _Family("class name", "", m.group(0), model_type, False, None, None)))
    return found


_WORD = re.compile(r"[^-_/]+")


def _veto(lex, name: str, matches):
    """A veto word outside every matched token (`vision` in `llama-3.2-11b-vision`): the name's
    words between `-` and `_` are compared, so no pattern is compiled for the common case."""
    for m in _WORD.finditer(name):
        word = m.group(0)
        if word in lex["veto_words"] or any(_plain(p).fullmatch(word) for p in lex["veto_patterns"]):
            if not any(s <= m.start() and m.end() <= e for s, e, _ in matches):
                return m
    return None


def _decide(matches, raw_name: str, what: str) -> Verdict:
    verdicts = {m[2].verdict for m in matches}
    if len(verdicts) > 1:
        tokens = ", ".join(f"'{raw_name[s:e]}' ({f.verdict})" for s, e, f in matches)
        return Verdict(detail=f"family tokens disagree: {tokens}")
    start, end, fam = min(matches, key=lambda m: m[0])
    token = raw_name[start:end]
    verdict = fam.verdict
    source = "family-token"
    if verdict == "custom-code":
        return Verdict("custom-code", token=token, family=fam.family, source=source,
                       detail=f"custom code: {what} token '{token}' ({fam.family}) ships its own modeling code")
    if verdict.startswith("non-transformers:"):
        library = verdict.split(":", 1)[1]
        return Verdict("non-transformers", library=library, token=token, family=fam.family, source=source,
                       detail=f"a {library} model: {what} token '{token}' ({fam.family})")
    return Verdict("transformers", verdict, token=token, family=fam.family, source=source,
                   detail=f"{what} token '{token}' ({fam.family}) names a {verdict} checkpoint")
