"""The Python and shell readers: settings from code, located parse errors, exact spans, and
the guarantee that user code is never imported or run."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import textwrap

from auditor.sources import python_code, shell
from tests.conftest import REPO, audit, write_files


def _read(text, path="train.py"):
    return python_code.read(path, textwrap.dedent(text))


def test_syntax_error_is_a_located_finding(tmp_path):
    write_files(tmp_path, [("train.py", "import torch\nlora_dropout = (0.1\nx = 1\n")])
    findings = audit([str(tmp_path)])
    assert [f.code for f in findings] == ["DRP000"]
    f = findings[0]
    assert f.message.startswith("cannot parse Python: ")
    assert (f.span.line, f.span.column) == (2, 16)
    assert "line 2" in f.message


def test_syntax_error_column_counts_characters():
    src = python_code.read("t.py", 'x = "éé"; lora = )\n')
    code, span, message = src.problems[0]
    assert code == "DRP000" and (span.line, span.column) == (1, 18)
    assert 'x = "éé"; lora = )'[span.start] == ")"


def test_null_bytes_do_not_raise():
    src = python_code.read("t.py", "dropout = 0.1\x00\n")
    assert src.problems and src.problems[0][0] == "DRP000"


def test_files_without_dropout_words_are_skipped():
    assert python_code.read("util.py", "import os\n\ndef f(x):\n    return x + 1\n") is None


def test_settings_from_calls_argparse_and_dataclasses():
    src = _read('''
        import argparse
        from dataclasses import dataclass, field
        from peft import LoraConfig
        from transformers import AutoModelForSequenceClassification
        p = argparse.ArgumentParser()
        p.add_argument("--lora_dropout", type=float, default="0.05")
        p.add_argument("--use_dropout", action="store_true")
        @dataclass
        class Args:
            hidden_dropout: float = field(default=0.1, metadata={"help": "x"})
            attention_dropout: float = 0.0
        cfg = LoraConfig(r=8, lora_dropout=args.lora_dropout)
        model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased", hidden_dropout_prob=0.2)
    ''')
    got = {s.dotted: (s.p, s.reason, s.role, s.raw) for s in src.settings}
    assert got == {
        "argparse.--lora_dropout": (0.05, None, "lora", '"0.05"'),
        "Args.hidden_dropout": (0.1, None, "hidden", "0.1"),
        "Args.attention_dropout": (0.0, None, "attention", "0.0"),
        "LoraConfig.lora_dropout": (None, "expression", "lora", "args.lora_dropout"),
        "AutoModelForSequenceClassification.from_pretrained.hidden_dropout_prob": (0.2, None, "hidden", "0.2"),
    }
    assert all(s.origin == "code" for s in src.settings)
    assert src.get("finetune") == "lora"
    assert src.get("base_model") == "bert-base-uncased"


def test_fields_trainer_unsloth_disable_dropout():
    src = _read('''
        from unsloth import FastLanguageModel
        from trl import SFTConfig, DPOConfig, DPOTrainer
        model, tok = FastLanguageModel.from_pretrained("unsloth/llama-3-8b")
        model = FastLanguageModel.get_peft_model(model, r=16, lora_dropout=0)
        trainer = DPOTrainer(model=model, args=DPOConfig(output_dir="o", disable_dropout=False))
    ''')
    assert src.get("unsloth") is True
    assert src.get("trainer") == "dpo"
    assert src.get("disable_dropout") is False
    assert src.get("finetune") == "lora"
    assert src.get("base_model") == "unsloth/llama-3-8b"
    [s] = src.settings
    assert s.dotted == "FastLanguageModel.get_peft_model.lora_dropout" and s.p == 0.0


def test_spans_on_non_ascii_lines_are_characters():
    text = 'note = "données é"; cfg = LoraConfig(lora_dropout=0.1)  # ü\n'
    src = python_code.read("t.py", text)
    [s] = src.settings
    assert text[s.value_span.start:s.value_span.end] == "0.1"
    assert text[s.key_span.start:s.key_span.end] == "lora_dropout"
    assert s.value_span.column == text.index("0.1") + 1
    assert s.value_span.end_column == text.index("0.1") + 4


def test_spans_with_crlf_line_endings():
    text = "from peft import LoraConfig\r\n\r\ncfg = LoraConfig(\r\n    lora_dropout=1.5)\r\n"
    src = python_code.read("t.py", text)
    [s] = src.settings
    assert (s.value_span.line, s.value_span.column) == (4, 18)
    assert text[s.value_span.start:s.value_span.end] == "1.5"


def test_value_rules_apply_to_code_settings_but_not_to_expressions(tmp_path):
    write_files(tmp_path, [("train.py", "from peft import LoraConfig\n"
                                        "a = LoraConfig(lora_dropout=1.5)\n"
                                        "b = LoraConfig(lora_dropout='0.1')\n"
                                        "c = LoraConfig(lora_dropout=args.p)\n")])
    codes = sorted((f.code, f.span.line) for f in audit([str(tmp_path)]))
    assert codes == [("DRP100", 2), ("DRP102", 3)]


def test_user_code_is_never_imported(tmp_path):
    marker = tmp_path / "imported.marker"
    write_files(tmp_path, [("train.py", textwrap.dedent(f'''
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("ran")
        import torch.nn.functional as F
        class M(torch.nn.Module):
            def forward(self, x):
                return F.dropout(x, 0.1)
    '''))])
    findings = audit([str(tmp_path)])
    assert [f.code for f in findings] == ["DRP600"]
    assert not marker.exists()


def test_static_path_imports_no_ml_framework(tmp_path):
    write_files(tmp_path, [("train.py", "import torch\nfrom peft import LoraConfig\nc = LoraConfig(lora_dropout=0.1)\n"),
                           ("run.sh", "python train.py --lora_dropout 0.1\n")])
    code = ("import sys\nfrom tests.conftest import audit\n"
            f"audit([{str(tmp_path)!r}])\n"
            "bad = [m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": REPO})


def test_shell_flags_both_spellings_comments_and_templates():
    text = ("#!/bin/bash\n"
            "# --lora_dropout 0.9 in a comment\n"
            "python train.py --lora_dropout 0.1 \\\n"
            "  --attention-dropout=\"0.05\" --hidden_dropout $DROP --drop_last true \\\n"
            "  --model.lora_dropout=${LD}  # trailing --dropout 0.7\n")
    src = shell.read("run.sh", text)
    got = [(s.key, s.p, s.reason, s.value_span.line, s.value_span.column, text[s.value_span.start:s.value_span.end])
           for s in src.settings]
    assert got == [
        ("lora_dropout", 0.1, None, 3, 32, "0.1"),
        ("attention-dropout", 0.05, None, 4, 23, '"0.05"'),
        ("hidden_dropout", None, "template", 4, 47, "$DROP"),
        ("lora_dropout", None, "template", 5, 24, "${LD}"),
    ]
    assert src.kind == "shell" and src.get("finetune") == "lora"
    assert shell.read("run.sh", "python train.py --lr 1e-4\n") is None


def test_corpus_code_files_read_without_traceback(corpus_dir):
    paths = sorted(glob.glob(os.path.join(corpus_dir, "**", "*.py"), recursive=True)
                   + glob.glob(os.path.join(corpus_dir, "**", "*.sh"), recursive=True))
    assert paths
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        reader = shell.read if path.endswith(".sh") else python_code.read
        src = reader(path, text)
        if src is not None:
            assert not src.problems, (path, src.problems)
            for s in src.settings:
                assert text[s.value_span.start:s.value_span.end] == s.raw


def test_corpus_code_findings_are_the_reviewed_ones(corpus_dir):
    """Every finding on the corpus scripts was reviewed by hand; a new one needs a new review."""
    findings = [f for f in audit([corpus_dir]) if f.path.endswith((".py", ".sh"))]
    got = sorted((os.path.relpath(f.path, corpus_dir), f.span.line, f.code) for f in findings)
    assert got == [
        ("peft/examples/causal_language_modeling/peft_lora_clm_accelerate_ds_zero3_offload.py", 123, "DRP701"),
        ("peft/examples/int8_training/fine_tune_blip2_int8.py", 103, "DRP602"),
    ]
