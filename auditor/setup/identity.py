"""Which model each setup trains: a model reference, as written, to a model type and its source.

The architecture knowledge (which dropout keys each model type declares and reads) is useless
until the auditor knows the model, and real setups name it by hub id far more often than they
ship a config.json. A reference is tried in this order, the first answer wins:

1. a local path (relative to the file that names it, then to the working directory): a
   directory holding config.json, or a config.json, read with the bounded reader;
2. the local Hugging Face cache, as files (hf_cache.py), honouring a literal revision;
3. the user's `models = {"acme/atlas-3b" = "mistral"}` (a model type, or a config.json path);
4. the shipped name table (names.py), which never guesses, then the family lexicon
   (families.py: a fine-tune that names its base, a custom-code family, another library's model);
5. unknown: rules that need the type stay silent and one info finding says how to teach it.

Custom code (a checkpoint with no Transformers model type, run by trust_remote_code or its own
project) and other libraries' models (diffusers, timm, open_clip, NeMo, fairseq) are named as
such, with the reason: they are no unknown Transformers model, so nothing asks to teach them. A
key whose loader is another library says so by itself (NeMo's `restore_from_path`, fairseq's
`finetune_from_model`).

A concrete class (`LlamaForCausalLM.from_pretrained(...)`) or a torchtune builder
(`torchtune.models.llama3_2.lora_llama3_2_1b`) decides the type whatever the reference says,
because that class builds the config. The user's mapping comes before the table so that a
private name, or a correction, always wins over shipped data; the cache comes before both
because it holds the real file. Nothing here imports huggingface_hub or touches the network.

Imports inside functions (`setup.families`, `setup.hf_cache`, `setup.names`, `sources.structured`,
`sources.text`) are deferred for start-up time: a run that never takes that path never pays for them.
"""

from __future__ import annotations

import os

from auditor.core.lazy_regex import LazyRegex
from auditor.core.model import ModelIdentity, Source, Span

# The driver fields naming the model, most specific first (axolotl's base_model_config names
# the config to use when it differs from the weights in base_model).
REFERENCE_FIELDS = ("base_model_config", "base_model")

# torchtune's builder modules (torchtune.models.<module>.<builder>) and the Transformers type
# of the checkpoint they load (torchtune converts it; its modules are its own).
TORCHTUNE_MODULES = {
    "llama2": "llama", "llama3": "llama", "llama3_1": "llama", "llama3_2": "llama", "llama3_3": "llama",
    "code_llama2": "llama", "qwen2": "qwen2", "qwen2_5": "qwen2", "qwen3": "qwen3", "gemma": "gemma",
    "gemma2": "gemma2", "mistral": "mistral", "phi3": "phi3", "phi4": "phi3",
    "llama3_2_vision": "mllama", "llama4": "llama4",
}
_TORCHTUNE = LazyRegex(r"^torchtune\.models\.(\w+)\.\w+$")

# Keys whose value another library loads, whatever the name looks like: NeMo restores .nemo
# checkpoints (NeMo examples/asr/conf/asr_finetune/speech_to_text_finetune.yaml), fairseq its own
# checkpoint files (fairseq/dataclass/configs.py CheckpointConfig).
LIBRARY_KEYS = {"restore_from_path": "NeMo", "init_from_pretrained_model": "NeMo", "init_from_nemo_model": "NeMo",
                "restore_file": "fairseq", "restore-file": "fairseq", "finetune_from_model": "fairseq",
                "finetune-from-model": "fairseq"}
_TEMPLATE = LazyRegex(r"[{}$<>%]|^\?+$")


def attach(setup, models: dict | None = None) -> None:
    """Set setup.model (the model the setup trains) and setup.models (every reference)."""
    models = models or {}
    refs = references(setup)
    for ref, src, span, hint, revision in refs:
        key = reference_key(ref, revision)
        if key not in setup.models:
            setup.models[key] = resolve(ref, src.path, span, models, hint=hint, revision=revision,
                                        litgpt=src.dialect == "litgpt", remote_code=trusts_remote_code(src))
    if refs:
        setup.model = setup.models[reference_key(refs[0][0], refs[0][4])]
        return
    for cfg in setup.of_kind("hf-config"):
        model_type = cfg.get("model_type")
        if isinstance(model_type, str):
            setup.model = _from_config(cfg.path, cfg.path, cfg.fields["model_type"].span, cfg, "config.json",
                                       f"{cfg.path} beside the recipe")
            return


def reference_key(ref: str, revision: str | None) -> str:
    """setup.models is keyed by reference and revision: one script may load two revisions."""
    return f"{ref}@{revision}" if revision else ref


def references(setup) -> list:
    """(ref, source, span, class-or-builder hint, revision) of each model reference, the
    driver's first; templates (`${MODEL}`, `<YOUR_CHECKPOINT_DIR>`) are no reference at all."""
    found = []
    driver = setup.driver
    if driver is not None:
        hint = _torchtune_hint(driver)
        for ref, span, cls, revision in _driver_refs(driver):
            found.append((ref, driver, span, cls or hint, revision))
        if not found and hint:
            component = driver.fields["model_component"]
            found.append((str(component.value), driver, component.span, hint, None))
    for adapter in setup.of_kind("peft-adapter"):
        f = adapter.fields.get("base_model")
        if f is not None and _is_reference(f.value):
            found.append((f.value, adapter, f.span, None, None))
    return found


def trusts_remote_code(src) -> bool:
    """The file that names the model sets trust_remote_code (a recipe key, a launch flag, a
    from_pretrained keyword): with it, an org known for custom code makes the model custom code."""
    value = src.get("trust_remote_code")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _driver_refs(driver):
    refs = driver.fields.get("model_refs")
    if refs is not None:
        yield from (r for r in refs.value if _is_reference(r[0]))
        return
    revision = driver.get("revision_of_model")
    cls = driver.get("model_class_name")  # axolotl's model_type is the class it loads with
    cls = cls if isinstance(cls, str) and not cls.startswith("Auto") else None
    for name in REFERENCE_FIELDS:
        f = driver.fields.get(name)
        if f is not None and _is_reference(f.value):
            library = LIBRARY_KEYS.get(str(f.key_path[-1])) if f.key_path else None
            yield f.value, f.span, f"library:{library}" if library else cls, revision if isinstance(revision, str) else None
            return


def _is_reference(value) -> bool:
    return isinstance(value, str) and 0 < len(value) < 512 and not _TEMPLATE.search(value) \
        and value.strip() == value and value.lower() not in ("none", "null")


def _torchtune_hint(driver) -> str | None:
    f = driver.fields.get("model_component")
    m = _TORCHTUNE.match(str(f.value)) if f is not None else None
    model_type = TORCHTUNE_MODULES.get(m.group(1)) if m else None
    return f"torchtune:{model_type}" if model_type else None


def resolve(ref: str, path: str, span: Span, models: dict, hint: str | None = None,
            revision: str | None = None, litgpt: bool = False, remote_code: bool = False) -> ModelIdentity:
    if hint and hint.startswith("library:"):
        library = hint.split(":", 1)[1]
        return ModelIdentity(ref, path, span, None, "non-transformers",
                             f"a {library} checkpoint: the key that names it is loaded by {library}, not Transformers")
    notes = []
    forced = _forced_type(hint)
    local = _local_config(ref, path)
    if local is not None:
        cfg_path, problem = local
        if problem is None:
            ident = _read_config(ref, path, span, cfg_path, "local-path", forced)
            if ident is not None:
                return ident
            notes.append(f"{cfg_path} is not a readable Transformers config.json")
        else:
            notes.append(problem)
    hub_id = ref
    if litgpt and ref.startswith("checkpoints/"):
        hub_id = ref[len("checkpoints/"):]  # litgpt download's layout: checkpoints/<org>/<name>
    from auditor.setup import names

    if names.is_hub_id(hub_id):
        from auditor.setup import hf_cache

        cached, why = hf_cache.locate(hub_id, revision=revision)
        if cached:
            ident = _read_config(ref, path, span, cached, "hf-cache", forced)
            if ident is not None:
                return ident
            notes.append(f"the cached {cached} is not a readable config.json")
        elif "not in the Hugging Face cache" not in why:
            notes.append(why)
    if forced:
        source, model_type = forced
        return ModelIdentity(ref, path, span, model_type, source, f"{hint.split(':')[0]} builds a {model_type}")
    user = models.get(ref)
    if user is not None:
        if os.path.isabs(user) or user.endswith(".json") or os.sep in user:
            cfg = user if user.endswith(".json") else os.path.join(user, "config.json")
            ident = _read_config(ref, path, span, cfg, "user", None)
            if ident is not None:
                return ident
            notes.append(f"models maps it to {user}, which is not a readable config.json")
        else:
            return ModelIdentity(ref, path, span, user, "user", "models in the dropout-audit configuration")
    if names.is_hub_id(hub_id) or hub_id.startswith("hf-hub:"):
        from auditor.setup import families

        verdict = families.classify(hub_id, remote_code)
        if verdict.kind == "transformers":
            return ModelIdentity(ref, path, span, verdict.model_type, verdict.source, verdict.detail)
        if verdict.kind:
            return ModelIdentity(ref, path, span, None, verdict.kind, verdict.detail)
        notes.append(verdict.detail)
    elif local is None:
        notes.append("neither a local path nor a hub id")
    elif local[1] and local[1].endswith("does not exist here"):
        # Usually a folder the run itself writes (an output or merged checkpoint): nothing the
        # user could teach, so no note; the plan still shows it as unknown.
        return ModelIdentity(ref, path, span, None, "missing-path", "; ".join(notes))
    return ModelIdentity(ref, path, span, None, "unknown", "; ".join(notes))


def _forced_type(hint):
    if not hint or hint.startswith("library:"):
        return None
    if hint.startswith("torchtune:"):
        return "torchtune-builder", hint.split(":", 1)[1]
    model_type = class_model_type(hint)
    return ("class-name", model_type) if model_type else None


def _local_config(ref: str, path: str):
    """(config.json path, None) for a reference that is a local path, (path, problem) when it
    is one that cannot be used, None when it is no local path (then try it as a hub id)."""
    bases = [ref] if os.path.isabs(ref) else [os.path.join(os.path.dirname(path) or ".", ref), ref]
    for candidate in bases:
        if os.path.isdir(candidate):
            cfg = os.path.join(candidate, "config.json")
            return (cfg, None) if os.path.isfile(cfg) else (cfg, f"{candidate} has no config.json")
        if candidate.endswith(".json") and os.path.isfile(candidate):
            return candidate, None
    if os.path.isabs(ref) or ref.startswith((".", "~")) or ".." in ref.split("/"):
        return ref, f"local path {ref} does not exist here"
    return None


def _read_config(ref, path, span, cfg_path, source, forced):
    from auditor.sources import structured
    from auditor.sources.text import FileProblem, read_text

    try:
        text = read_text(cfg_path)
    except FileProblem:
        return None
    try:
        cfg = structured.read(cfg_path, text)
    except Exception:  # noqa: BLE001 - a broken cached file must never stop the audit
        return None
    if cfg is None or cfg.kind != "hf-config" or not isinstance(cfg.get("model_type"), str):
        return None
    ident = _from_config(ref, path, span, cfg, source, cfg_path)
    if forced:
        ident.model_type = forced[1]
        ident.detail += f"; {forced[0]} decides the type"
    return ident


def _from_config(ref, path, span, cfg: Source, source: str, detail: str) -> ModelIdentity:
    archs = cfg.get("architectures")
    archs = tuple(a for a in archs if isinstance(a, str)) if isinstance(archs, list) else ()
    return ModelIdentity(ref, path, span, cfg.get("model_type"), source, detail, cfg, archs)


def class_model_type(name: str) -> str | None:
    """LlamaForCausalLM -> llama, from the generated class table (never parsed from the name:
    Gemma3ForCausalLM builds a gemma3_text)."""
    from auditor.setup import names

    return names.class_table().get(name)
