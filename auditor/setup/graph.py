"""Group a directory's sources into Setups along the links of the setup graph.

Each driver of a directory gets one Setup (`resolve.setup_of`, as `resolve.group` does), made
in the driver's own pass by `setups_of` (so the engine can drop a script's tree after it). The graph adds
what the links say: a config.json or adapter_config.json a driver names elsewhere under the
root joins its Setup as an artifact, and a launch command (`axolotl train x.yml`) makes the
recipe it names the driver of a Setup whose plan applies the command's overrides. Only the
files the directory's sources link to are read (one level, through `Engine.load_linked`), so
a pre-commit run on one file never turns into a read of the whole repository.

Imports inside functions (`ast`, `core.model`, `setup.launchers`, `sources.python_code`,
`sources.python_facts`) are deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core import probability
from auditor.core.model import PlanEntry, Setup
from auditor.knowledge import dropout_keys
from auditor.setup import config_bases, identity, resolve
from auditor.setup import links as L

_FOLLOWED = (L.MODEL_PATH, L.SAVED_ADAPTER, L.LAUNCH_RECIPE, L.LAUNCH_SCRIPT, L.HFARGS_FILE)


def follow(engine, src) -> list:
    """The source's links, each with the Source its target holds (when there is one)."""
    found = L.of_source(src, engine.options.root)
    for link in found:
        if link.target:
            engine.deps.add(os.path.normpath(link.target))  # its appearing or changing changes the findings
        if link.exists and link.target_source is None and link.kind in _FOLLOWED:
            link.target_source = engine.load_linked(link.target)
    return found


def _artifact(link) -> object:
    target = link.target_source
    if target is not None and target.kind in resolve.ARTIFACT_KINDS:
        return target
    return None


def _add_artifact(setup: Setup, src) -> None:
    if src is not None and all(os.path.realpath(a.path) != os.path.realpath(src.path) for a in setup.artifacts):
        setup.artifacts.append(src)


def _beside(engine, recipe) -> list:
    """config.json / adapter_config.json in a launched recipe's own directory."""
    directory = os.path.dirname(recipe.path)
    out = []
    for name in ("config.json", "adapter_config.json"):
        path = os.path.join(directory, name)
        engine.deps.add(os.path.normpath(path))
        if os.path.isfile(path):
            src = engine.load_linked(path)
            if src is not None and src.kind in resolve.ARTIFACT_KINDS:
                out.append(src)
    return out


def setups(engine, directory: str, loaded: list) -> list:
    """The Setups of one directory: one per driver with its links followed, the recipes its
    launch commands run, and one for the artifacts alone when the directory has no driver."""
    artifacts = artifacts_of(loaded)
    found = []
    for src in loaded:
        found.extend(setups_of(engine, directory, src, artifacts))
    found.extend(lone_setup(engine, directory, loaded, artifacts))
    return found


def artifacts_of(loaded: list) -> list:
    return [s for s in loaded if s.kind in resolve.ARTIFACT_KINDS]


def setups_of(engine, directory: str, src, artifacts: list) -> list:
    """The Setups one source makes: its own as a driver (sharing the directory's artifacts,
    plus what its own links reach) and one per recipe it launches. They depend on no other
    driver, so the engine checks a script's setups in the script's own pass and then lets its
    tree go (issue #17): a directory of many scripts never holds all their trees at once."""
    if src.kind in resolve.ARTIFACT_KINDS or src.kind == "unreadable":
        return []
    if "config_bases" in src.fields:
        config_bases.inherit(engine, src)
    models = engine.options.models
    own = resolve.setup_of(directory, src, artifacts, models) if resolve.is_driver(src) else None
    launched = []
    for link in follow(engine, src):
        if link.kind in (L.MODEL_PATH, L.SAVED_ADAPTER):
            if own is not None:
                own.links.append(link)
                _add_artifact(own, _artifact(link))
                if link.kind == L.MODEL_PATH and _artifact(link) is not None:
                    _call_kwargs_apply(src, link)
        elif link.kind == L.LAUNCH_RECIPE and link.target_source is not None \
                and link.target_source.kind == "recipe":
            launched.append(_launched(engine, directory, src, link))
            if own is not None and src.dialect == "shell":
                own = None  # its flags are the overrides of the launched setup
        elif own is not None:
            own.links.append(link)
    for setup in launched:  # a launched recipe, or a config.json reached by a link, names the model too
        identity.attach(setup, models)
    if own is not None and own.model is None:
        identity.attach(own, models)
    if own is not None and "model_ref_defaults" in src.fields:
        from auditor.setup import launchers

        launchers.replace_default(engine, own)
    return ([own] if own is not None else []) + launched


def lone_setup(engine, directory: str, loaded: list, artifacts: list) -> list:
    """Artifacts with no driver in their directory still form one Setup (config.json beside
    adapter_config.json)."""
    if not artifacts or any(resolve.is_driver(s) for s in loaded):
        return []
    return [resolve.setup_of(directory, None, artifacts, engine.options.models)]


def _call_kwargs_apply(src, link) -> None:
    """`from_pretrained("./base", attn_implementation="flex_attention")`: the keyword applies to
    that config, so the setup's flex-attention rule sees it. A call that also passes an
    attention dropout keyword overrides the config's value, and is left alone."""
    import ast

    from auditor.core.model import Field
    from auditor.sources.python_code import get_module
    from auditor.sources.python_facts import constant

    kwargs = link.detail or {}
    node = kwargs.get("attn_implementation")
    if node is None or "attn_implementation" in src.fields:
        return
    if any(dropout_keys.is_rate_key(k) and dropout_keys.role_of(k) == "attention" for k in kwargs):
        return
    ok, value = constant(node)
    module = get_module(src)
    if ok and isinstance(value, str) and module is not None and isinstance(node, ast.AST):
        src.fields["attn_implementation"] = Field(value, module.span(node), ("from_pretrained", "attn_implementation"))


def _launched(engine, directory: str, launcher, link) -> Setup:
    recipe = link.target_source
    setup = Setup(root=directory, driver=recipe, artifacts=[], launch=link)
    setup.links.append(link)
    for artifact in _beside(engine, recipe):
        _add_artifact(setup, artifact)
    for inner in follow(engine, recipe):  # the recipe's own output_dir (one level, no loops)
        setup.links.append(inner)
        if inner.kind == L.SAVED_ADAPTER:
            _add_artifact(setup, _artifact(inner))
    return setup


def plan(setup: Setup):
    """resolve.resolve, then the launch command's overrides, which win over the recipe."""
    result = resolve.resolve(setup)
    link = setup.launch
    if link is None:
        return result
    for key, value, span in link.overrides:
        name = key.split(".")[-1]
        if not dropout_keys.is_rate_key(name):
            continue
        p = probability.number_from_text(value)
        canon = dropout_keys.canonical(name)
        note = f"overridden by {link.path}:{span.line} ({link.via} {key}={value})"
        hit = False
        for entry in result.entries:
            configured = entry.configured
            if (configured is not None and configured.canonical == canon) or entry.site == name:
                entry.effective = p
                entry.chain.append(note)
                entry.source = f"{link.path}:{span.line}"
                hit = True
        if not hit:
            result.entries.append(PlanEntry(site=name, role=dropout_keys.role_of(name), configured=None,
                                            effective=p, chain=[f"not set in {setup.driver.path}", note],
                                            source=f"{link.path}:{span.line}"))
    return result


def describe_links(setup: Setup) -> list:
    """The setup's edges for `plan` (text and JSON)."""
    return [{"kind": link.kind, "from": f"{link.path}:{link.span.line}", "written": link.written,
             "target": link.target, "exists": link.exists, "reason": link.reason,
             "overrides": [f"{k}={v}" for k, v, _ in link.overrides]} for link in setup.links]
