"""HfArgumentParser knowledge (auditor/setup/hfargs.py) and its generated field table."""

from __future__ import annotations

import ast
import json

import pytest

from auditor.setup import hfargs
from auditor.sources.python_facts import PyModule


def _uses(text):
    return hfargs.parser_uses(PyModule(ast.parse(text), text))


def test_generated_fields_match_the_pinned_libraries():
    """Drift test: regenerate in memory from the installed transformers/trl."""
    pytest.importorskip("transformers")
    pytest.importorskip("trl")
    from auditor.generate import hfargs as build_hfargs

    with open(hfargs.DATA, encoding="utf-8") as fh:
        shipped = json.load(fh)
    assert build_hfargs.generate() == shipped, "run `python -m auditor.generate.hfargs`"


def test_the_table_holds_the_documented_classes():
    for name in ("TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "GRPOConfig",
                 "ModelConfig", "ScriptArguments"):
        assert hfargs.library_class(name) is not None, name
    sft = hfargs.library_class("SFTConfig")
    assert {"output_dir", "learning_rate", "max_length"} <= sft.fields
    assert "lora_dropout" not in hfargs.library_class("TrainingArguments").fields


def test_script_dataclasses_inherit_and_skip_init_false_and_classvars():
    text = (
        "from dataclasses import dataclass, field\nfrom typing import ClassVar\n"
        "from transformers import TrainingArguments, HfArgumentParser\n"
        "@dataclass\nclass Base:\n    a: int = 1\n    hidden: int = field(default=0, init=False)\n    K: ClassVar[int] = 3\n"
        "@dataclass\nclass Mine(Base, TrainingArguments):\n    flag: bool = True\n"
        "    b: str = field(default='x', metadata={'aliases': ['--bee']})\n"
        "p = HfArgumentParser(Mine)\n(m,) = p.parse_args_into_dataclasses()\n"
    )
    (use,) = _uses(text)
    acc = use.accepted
    assert {"a", "flag", "b", "output_dir"} <= acc.fields and "hidden" not in acc.fields and "K" not in acc.fields
    assert "flag" in acc.no_flags and "--bee" in acc.aliases and use.argv


def test_an_unknown_class_or_hand_added_flags_make_the_set_unknown():
    (use,) = _uses("from x import Args\nfrom transformers import HfArgumentParser\np = HfArgumentParser((Args,))\n")
    assert use.accepted is None
    (use,) = _uses("from transformers import HfArgumentParser, TrainingArguments\np = HfArgumentParser(TrainingArguments)\n"
                   "p.add_argument('--extra')\n(a,) = p.parse_args_into_dataclasses()\n")
    assert use.accepted is None


def test_remaining_strings_or_explicit_args_are_not_checked():
    (use,) = _uses("from transformers import HfArgumentParser, TrainingArguments\np = HfArgumentParser(TrainingArguments)\n"
                   "a, rest = p.parse_args_into_dataclasses(return_remaining_strings=True)\n"
                   "b = p.parse_args_into_dataclasses(args=['--x'])\n")
    assert use.argv == []


def test_yaml_file_calls_and_allow_extra_keys():
    (use,) = _uses("from transformers import HfArgumentParser, TrainingArguments\n"
                   "p = HfArgumentParser(TrainingArguments)\np.parse_yaml_file('a.yaml')\n"
                   "p.parse_json_file('b.json', allow_extra_keys=True)\n")
    assert [(fmt, allow) for _, fmt, _, allow in use.files] == [("yaml", False), ("json", True)]


@pytest.mark.parametrize("flag,unknown", [
    ("--output_dir", False), ("--output-dir", False), ("--output_d", False),  # argparse accepts prefixes
    ("--no_remove_unused_columns", False), ("--lora_dropuot", True), ("--outputdir", True),
])
def test_unknown_flag_honours_argparse_spellings_and_prefixes(flag, unknown):
    assert hfargs.unknown_flag(flag, hfargs.library_class("TrainingArguments")) is unknown


def test_a_local_class_extending_the_library_class_of_the_same_name():
    """Regression (peft's corda_finetuning.py): `class TrainingArguments(transformers.TrainingArguments)`
    was taken for a cycle, leaving the accepted set unknown."""
    (use,) = _uses("import transformers\nfrom dataclasses import dataclass, field\n@dataclass\n"
                   "class TrainingArguments(transformers.TrainingArguments):\n    data_path: str = field(default=None)\n"
                   "p = transformers.HfArgumentParser(TrainingArguments)\n(a,) = p.parse_args_into_dataclasses()\n")
    assert use.accepted is not None and {"data_path", "output_dir"} <= use.accepted.fields
