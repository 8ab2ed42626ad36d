"""Rules on the edges of the setup graph (auditor/setup/links.py): a link whose file is
missing, and the keys and flags HfArgumentParser rejects at start-up."""

from __future__ import annotations

from auditor.checks.base import Hit, check
from auditor.setup import links as L


def _links(ctx) -> list:
    for fact in ctx.source.facts:
        if isinstance(fact, L.Links):
            return fact.links
    return []


def reads_links(fn):
    """Runs on `linker` sources too (scripts the readers skip that only name other files)."""
    fn.reads_links = True
    return fn


@check("missing-link-target")
@reads_links
def missing_link_target(ctx, rule):
    """A file the run needs at start-up (a local model directory, the YAML a script parses,
    the recipe or script a launch command runs) is not there: the run fails before training,
    and every cross-file rule on that setup is blind."""
    missing: dict = {}
    for link in _links(ctx):
        if link.kind in L.MUST_EXIST and link.target and not link.exists:
            missing.setdefault(link.target, []).append(link)
    for target, found in missing.items():
        link = found[0]  # a sweep script naming one target 160 times is one finding (#25)
        again = f"; named {len(found) - 1} more time{'s' if len(found) > 2 else ''} in this file" if len(found) > 1 else ""
        yield Hit(link.path, link.span, f"{link.via} names {link.written!r}, but {target} does not exist "
                                        f"(looked relative to this file and each parent directory up to the root){again}",
                  key=link.written)


def _top_level_keys(path: str, max_size: int) -> list | None:
    """(key, Span) of the file's top-level mapping, through the one YAML/JSON composer."""
    from auditor.sources import nodes
    from auditor.sources.text import FileProblem, read_text

    try:
        text = read_text(path, max_size)
        docs = nodes.compose(text, path)
    except (FileProblem, nodes.ParseError):
        return None
    roots = [d for d in docs if nodes.is_mapping(d)]
    if len(docs) != 1 or not roots:
        return None
    return [(str(k.value), nodes.span_of(k, text)) for k, _ in roots[0].value if nodes.is_scalar(k)]


def on_linked_files(fn):
    """Its findings land on the file a link reaches, which may sit in another directory: that
    file's directives for it cannot be judged unused by a run of the file's own directory."""
    fn.on_linked_files = True
    return fn


@check("hfargs-unknown-key")
@reads_links
@on_linked_files
def hfargs_unknown_key(ctx, rule):
    """HfArgumentParser.parse_dict raises ValueError('Some keys are not used by the
    HfArgumentParser') for a key no dataclass field has, unless allow_extra_keys=True."""
    from auditor.sources.text import DEFAULT_MAX_FILE_SIZE as max_size

    for link in _links(ctx):
        if link.kind != L.HFARGS_FILE or not link.exists:
            continue
        use, allow = link.detail
        if allow or use.accepted is None:
            continue
        keys = _top_level_keys(link.target, max_size)
        for key, span in keys or ():
            if key not in use.accepted.fields:
                yield Hit(link.target, span,
                          f"{key} is not a field of {', '.join(use.classes)}{_versions(use.accepted)}: HfArgumentParser "
                          f"raises ValueError 'Some keys are not used' when {link.path}:{link.span.line} parses this file",
                          key=key, severity=_severity(use.accepted))


@check("hfargs-unknown-flag")
@reads_links
def hfargs_unknown_flag(ctx, rule):
    """parse_args_into_dataclasses() raises ValueError('Some specified arguments are not used
    by the HfArgumentParser') for a flag that names no field (argparse accepts unambiguous
    prefixes, so only a flag that starts no known option is reported)."""
    for link in _links(ctx):
        if link.kind != L.LAUNCH_SCRIPT or link.target_source is None or not link.flags:
            continue
        from auditor.setup import hfargs  # ast and the parser tables: only for a launched script's flags
        from auditor.sources.python_code import get_module

        module = get_module(link.target_source)
        if module is None:
            continue
        uses = [u for u in hfargs.parser_uses(module) if u.argv]
        if len(uses) != 1 or uses[0].accepted is None:
            continue  # no parser, several, or fields not known statically: say nothing
        use = uses[0]
        for flag, span in link.flags:
            if flag.startswith("--") and flag != "--" and hfargs.unknown_flag(flag, use.accepted):
                yield Hit(link.path, span, f"{flag.split('=', 1)[0]} is not a field of {', '.join(use.classes)}"
                                           f"{_versions(use.accepted)}: {link.target} raises ValueError 'Some specified "
                                           "arguments are not used by the HfArgumentParser' at start-up", key=flag,
                          severity=_severity(use.accepted))


def _versions(accepted) -> str:
    """Library fields are known at the pinned versions only (fields come and go: transformers 5
    dropped overwrite_output_dir and evaluation_strategy, which 4.x scripts still pass)."""
    return " in transformers 5.24 / trl 1.16 (an older release the project pins may still accept it)" \
        if accepted.versioned else ""


def _severity(accepted):
    """Error when every field is the script's own (known exactly); info when library fields,
    known only at the pinned versions, decide."""
    return "info" if accepted.versioned else ""
