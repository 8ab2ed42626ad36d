"""What every reader shares with the registry (sources/__init__.py), which imports the readers:
a reader importing these from the package itself would close a circle."""

from __future__ import annotations

from auditor.core.model import Source, Span

# Substrings without which a Python file yields no Source (python_code.read): what the code
# checks and the settings reader look for. Tested here, before the reader and `ast` are imported.
PYTHON_MARKERS = ("dropout", "Dropout", "drop", "lora", "load_from", "eval(", "checkpoint", "manual_seed", "Trainer",
                  "Config(", ".train(", "no_grad", "inference_mode", "generate(", "bernoulli", "load_state_dict",
                  "set_grad_enabled")


def located_problem(path: str, code: str, message: str, span: Span | None = None) -> Source:
    """A Source that only carries a problem (unreadable or unparsable file)."""
    src = Source(path=path, kind="unreadable", dialect="unreadable")
    src.problems.append((code, span or Span.file_start(), message))
    return src
