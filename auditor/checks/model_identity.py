"""Checks that need to know which model a setup trains (auditor/setup/identity.py): what a
script does to a model it loads by name, and the one note when the model cannot be known.

Each rule here was measured against the pinned Transformers with tiny local models
(tests/test_identity_rules.py): an undeclared key passed to AutoConfig.from_pretrained is
dropped, passed to an Auto model's from_pretrained it reaches the model's __init__ and raises
TypeError, and `config.key = v` on a loaded config is kept but read by nothing when the type
does not read the key (facts.md, "Loading by name").

Imports inside functions (`ast`, `knowledge.architectures`, `setup.identity`,
`sources.python_code`, `sources.python_facts`) are deferred for start-up time: a run that never
takes that path never pays for them.
"""

from __future__ import annotations

from auditor.checks.architecture import at_default, head_reads
from auditor.checks.base import Hit, check
from auditor.knowledge import dropout_keys


def _info(identity):
    if identity is None or not identity.model_type:
        return None
    from auditor.knowledge import architectures

    return architectures.lookup(identity.model_type)


def _known(identity) -> str:
    return f"{identity.model_type} ({identity.ref}, from {identity.source.replace('-', ' ')})"


def _declared(info, key: str) -> bool:
    return key in info.keys or key in info.aliases


def _unread(info, key: str, architectures) -> bool:
    """The key is a no-op for this type: undeclared and read by no head in use, or declared
    but read by no module."""
    if key in info.aliases:
        return False
    declared = info.keys.get(key)
    if declared is not None:
        return declared.read == "unread"
    return not head_reads(info, key, architectures)


@check("model-unknown", scope="setup")
def model_unknown(ctx, rule):
    model = ctx.setup.model
    if model is None or model.model_type or model.source != "unknown" or "/" not in model.ref:
        return  # a bare name the table does not know is more often a placeholder or folder than a model
    why = f" ({model.detail})" if model.detail else ""
    yield Hit(model.path, model.span,
              f"model '{model.ref}' is unknown{why}, so the architecture rules are skipped for this setup; "
              f"to teach the tool, have its config.json in the local Hugging Face cache (HF_HUB_CACHE), or add "
              f"it to [tool.dropout-audit] models = {{\"{model.ref}\" = \"<model_type or path to config.json>\"}}",
              key="model")


def _module(setup):
    driver = setup.driver
    if driver is None or driver.kind != "python":
        return None
    from auditor.sources.python_code import get_module

    return get_module(driver)


def _loads(setup, module):
    """(call, owner class, identity) for each X.from_pretrained(ref, ...) whose ref is resolved."""
    import ast  # here, not at the top: a check of recipes and configs never parses Python

    from auditor.sources.python_code import string_of
    from auditor.sources.python_facts import kwarg, last_name

    for call in module.index.calls_by_name.get("from_pretrained", ()):
        if not isinstance(call.func, ast.Attribute):
            continue
        kw = kwarg(call, "pretrained_model_name_or_path") or kwarg(call, "model_name")
        node = kw.value if kw is not None else (call.args[0] if call.args else None)
        ref = string_of(module, node) if node is not None else None
        rev = kwarg(call, "revision")
        rev = string_of(module, rev.value) if rev is not None else None
        from auditor.setup.identity import reference_key

        identity = setup.models.get(reference_key(ref, rev)) if ref else None
        remote = kwarg(call, "trust_remote_code")
        if remote is not None and not (isinstance(remote.value, ast.Constant) and remote.value.value is False):
            continue  # the repository's own classes may declare anything
        if _info(identity) is not None:
            yield call, last_name(call.func.value), identity


def _is_config_class(owner: str) -> bool:
    return owner == "AutoConfig" or (owner.endswith("Config") and not owner.startswith(("Lora", "Peft")))


def _is_model_class(owner: str) -> bool:
    return (owner.startswith("AutoModel") or "For" in owner or owner.endswith(("Model", "LMHeadModel"))) \
        and not owner.startswith(("Peft", "Fast"))


def _dropout_kwargs(call):
    for kw in call.keywords:
        if kw.arg and dropout_keys.is_rate_key(kw.arg):
            yield kw


@check("model-kwarg-rejected", scope="setup")
def model_kwarg_rejected(ctx, rule):
    """AutoModel*.from_pretrained(ref, key=v): a key the config class does not declare is not
    a config attribute, so it is passed on to the model's __init__, which raises TypeError."""
    module = _module(ctx.setup)
    if module is None:
        return
    for call, owner, identity in _loads(ctx.setup, module):
        if not _is_model_class(owner) or any(kw.arg == "config" for kw in call.keywords):
            continue
        info = _info(identity)
        for kw in _dropout_kwargs(call):
            if not _declared(info, kw.arg):
                yield Hit(ctx.setup.driver.path, kw_span(module, kw),
                          f"{owner}.from_pretrained(..., {kw.arg}=...) raises TypeError: {_known(identity)} does "
                          f"not declare {kw.arg}, so it reaches the model's __init__ as an unexpected keyword "
                          "argument", key=f"{owner}.from_pretrained.{kw.arg}")


@check("config-kwarg-dropped", scope="setup")
def config_kwarg_dropped(ctx, rule):
    """AutoConfig.from_pretrained(ref, key=v) returns an undeclared key as unused and drops it."""
    module = _module(ctx.setup)
    if module is None:
        return
    from auditor.sources.python_facts import constant

    for call, owner, identity in _loads(ctx.setup, module):
        if not _is_config_class(owner):
            continue
        info = _info(identity)
        for kw in _dropout_kwargs(call):
            ok, value = constant(kw.value)
            if _declared(info, kw.arg) or (ok and (value == 0 or value is None)):
                continue
            yield Hit(ctx.setup.driver.path, kw_span(module, kw),
                      f"{owner}.from_pretrained(..., {kw.arg}=...) has no effect: {_known(identity)} does not "
                      f"declare {kw.arg}, so from_pretrained drops it silently", key=f"{owner}.from_pretrained.{kw.arg}")


def kw_span(module, kw):
    from auditor.sources.python_code import kw_span as span

    return span(module, kw)


@check("config-attribute-unread", scope="setup")
def config_attribute_unread(ctx, rule):
    """`config.key = v` on a config loaded by name, before the model is built from it: the
    value is stored, and nothing in the model reads it when the type does not read the key."""
    module = _module(ctx.setup)
    if module is None:
        return
    import ast

    from auditor.sources.python_facts import constant

    loaded = {}
    for call, owner, identity in _loads(ctx.setup, module):
        parent = module.parent(call)
        if _is_config_class(owner) and isinstance(parent, ast.Assign) and len(parent.targets) == 1 \
                and isinstance(parent.targets[0], ast.Name):
            loaded.setdefault((parent.targets[0].id, module.enclosing_function(parent)), []).append(
                (parent.lineno, identity))
    if not loaded:
        return
    builds = _builds(module)
    for node in module.index.of(ast.Assign):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Attribute)
                and isinstance(node.targets[0].value, ast.Name)):
            continue
        target = node.targets[0]
        key, var = target.attr, target.value.id
        if not dropout_keys.is_rate_key(key):
            continue
        candidates = [(line, ident) for line, ident in loaded.get((var, module.enclosing_function(node)), [])
                      if line < node.lineno]
        if not candidates:
            continue
        line, identity = max(candidates, key=lambda c: c[0])
        if any(line < b < node.lineno for b in builds.get(var, ())):
            continue  # after the model is built: DRP523's case
        ok, value = constant(node.value)
        info = _info(identity)
        if not ok or not isinstance(value, (int, float)) or isinstance(value, bool) or not value:
            continue
        if not _unread(info, key, identity.architectures):
            continue
        declared = info.keys.get(key)
        if declared is not None and at_default(_Value(value), declared.default):
            continue
        why = "declares it but no module reads it" if declared is not None else f"does not read {key}"
        raw = module.text[module.span(node.value).start:module.span(node.value).end]
        yield Hit(ctx.setup.driver.path, module.span(target), f"{var}.{key} = {raw} has no effect: "
                  f"{_known(identity)} {why}; the model built from this config trains without it", key=f"{var}.{key}")


class _Value:
    __slots__ = ("p", "reason")

    def __init__(self, p):
        self.p, self.reason = float(p), None


def _builds(module) -> dict:
    """config variable -> lines where a model is built from it (config=var, from_config(var))."""
    import ast

    from auditor.sources.python_facts import kwarg, last_name

    out: dict = {}
    for call in module.calls():
        kw = kwarg(call, "config")
        names = [kw.value] if kw is not None else []
        if last_name(call.func) == "from_config" and call.args:
            names.append(call.args[0])
        for n in names:
            if isinstance(n, ast.Name):
                out.setdefault(n.id, []).append(call.lineno)
    return out
