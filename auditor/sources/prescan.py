"""Which YAML/JSON files can matter, judged from their bytes before anything is composed.

A structured file yields a Source only when it holds a dropout-rate key (dropout_keys) or a
key that makes dialects.detect() call it a model config, a PEFT adapter or a recipe of a
known framework. A file whose text contains none of those names, in any case and with `_`
or `-`, cannot produce a finding, so it is skipped before composing: in a repository most
YAML/JSON is CI, tooling, docs or data. The test is deliberately loose (a substring
anywhere, comments included) so that it errs towards composing. Names that other features
read without dropout, a model named by hub id (`base_model`, `model_name_or_path`,
`pretrained`), an `output_dir` that links a recipe to a model, adapters and LoRA, count as
markers too. An escape sequence (`\\u0064ropout`) could spell a key the scan cannot see,
so any backslash-u or backslash-x in the text also counts as a marker.

A stricter form decides whether a parse error is worth reporting (issue #16.5): a file that
fails to parse and has none of these names as a key, or is JSON Lines, is not a training config, and
failing a run over it (a dataset, a `.devcontainer` JSON with comments, a CI config) would
be a false error. config.json and adapter_config.json are reported whatever they hold.

tests/test_perf_prescan.py checks the markers against the names dialects.detect() reads,
and the fast-versus-pure comparison (tests/test_perf_scanner.py) runs without the pre-scan.

Imports inside functions (`json`) are deferred for start-up time: a run that never takes that
path never pays for them.
"""

from __future__ import annotations

import os
import re

from auditor.core.lazy_regex import LazyRegex

ENABLED = True  # the pure-path comparison switches it off

# Always configuration, whatever the content (Transformers and PEFT artifacts).
ARTIFACT_NAMES = frozenset({"config.json", "adapter_config.json"})

# Substrings of every dropout-rate key shape (dropout_keys._RATE) ...
_RATE_HINTS = ("drop", "keep_prob", "keep_rate", "stochastic_depth")
# ... and of every key dialects.detect() and the setup features read (see the module docstring).
_MARKER_KEYS = (
    "peft_type", "base_model", "model_name_or_path", "stage", "finetuning_type", "model_class",
    "_component_", "pipe_parallel_size", "model_parallel_size", "num_layers", "hidden_size",
    "num_hidden_layers", "num_attention_heads", "seq_length", "train_micro_batch_size_per_gpu",
    "exp_manager", "trainer", "checkpoint_dir", "out_dir", "output_dir", "model_type", "architectures",
    "auto_map", "pretrained", "model_id", "adapter", "lora", "peft",
    # keys that keep a recipe no framework claims (structured._says_something, #26)
    "ddp_find_unused_parameters", "use_unsloth",
)


def _alternatives(name: str) -> str:
    return re.escape(name).replace("_", "[_-]") if name != "_component_" else re.escape(name)


_MARKERS = LazyRegex("|".join(_alternatives(n) for n in _RATE_HINTS + _MARKER_KEYS) + r"|\\[ux]", re.I)
# The same test as substrings of the lowercased text with `-` read as `_`, which is _MARKERS
# exactly on ASCII text and costs no compile (about 2 ms at the start of every run).
_FLAT_MARKERS = tuple(n for n in _RATE_HINTS + _MARKER_KEYS if n != "_component_")
# The same names written as keys (`name:` / `"name":`), for files that failed to parse: a
# word such as `stages` or `trainer` in a broken CI config does not make it a recipe.
# Compiled on first use: only a file that fails to parse needs it.
_KEYED = LazyRegex(r"(?:[\w.-]*(?:" + "|".join(_alternatives(n) for n in _RATE_HINTS) + r")[\w.-]*"
                   r"|(?<![\w-])(?:" + "|".join(_alternatives(n) for n in _MARKER_KEYS) + r"))['\"]?[ \t]*:", re.I)


def may_matter(path: str, text: str) -> bool:
    """False only for a file that cannot yield a Source: no marker anywhere in its text."""
    if os.path.basename(path).lower() in ARTIFACT_NAMES:
        return True
    low = text.lower()
    if "_component_" in low or "\\u" in low or "\\x" in low:
        return True
    flat = low.replace("-", "_")
    if any(name in flat for name in _FLAT_MARKERS):
        return True
    # Case-insensitive matching also pairs a few non-ASCII letters with ASCII ones that lower()
    # keeps apart (ſ with s, İ with i): a non-ASCII text the substrings miss gets the pattern.
    return not text.isascii() and _MARKERS.search(text) is not None


def skip_unread(path: str, text: str) -> bool:
    """Whether to skip a file before composing it (the pre-scan proper)."""
    return ENABLED and not may_matter(path, text)


def parse_error_matters(path: str, text: str) -> bool:
    """Whether a file that failed to parse is reported (DRP000) or skipped quietly."""
    if os.path.basename(path).lower() in ARTIFACT_NAMES:
        return True
    if path[-5:].lower() == ".json" and is_json_lines(text):
        return False
    return _KEYED.search(text) is not None


def is_json_lines(text: str, limit: int = 1000) -> bool:
    """At least two lines, and every non-blank one (up to `limit`) a JSON value of its own."""
    import json

    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return False
    try:
        for line in lines[:limit]:
            json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True
