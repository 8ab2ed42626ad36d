"""The train/eval flow analysis and what it knows about models, from small reproductions of the
false and missed findings on real code (issue #16, #18 items 4-5, #13 item 7)."""

from __future__ import annotations

import ast
import json
import re
import textwrap

from auditor.checks.code import flow as flowmod
from auditor.checks.code import models
from auditor.sources.python_facts import PyModule
from tests.conftest import audit, write_files


def _findings(tmp_path, text, select, name="train.py", extra=()):
    write_files(tmp_path, [(name, textwrap.dedent(text)), *extra])
    return sorted((f.code, f.span.line, f.severity) for f in audit([str(tmp_path)], select=tuple(select))
                  if f.code in select)


def _module(text):
    text = textwrap.dedent(text)
    return PyModule(ast.parse(text), text)


_NET = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        return self.drop(self.fc(x))

model = Net()
optimizer = torch.optim.AdamW(model.parameters())
'''


# --- the index ------------------------------------------------------------------------------

def test_index_is_one_traversal_with_calls_assignments_and_definitions():
    m = _module('''
        import torch
        class A(torch.nn.Module):
            def f(self): self.model = g(1)
        def helper(x): return x.eval()
        model = A()
        model.to("cpu").train()
    ''')
    idx = m.index
    assert set(idx.functions) == {"helper"} and set(idx.classes) == {"A"} and set(idx.methods["A"]) == {"f"}
    assert [c.lineno for c in idx.calls_by_name["train"]] == [7]
    assert set(idx.assigns) >= {"self.model", "model"}
    assert m.parent(idx.calls_by_name["g"][0]) is not None
    assert m.index is m.index  # built once


# --- the flow -------------------------------------------------------------------------------

def _modes_at(text, callee, key="model"):
    m = _module(text)
    fl = flowmod.Flow(m).run_all()
    call = m.index.calls_by_name[callee][-1]
    return sorted(mode for mode, _ in fl.at[call].get(key, {flowmod.ENTRY}))


def test_flow_follows_branches_returns_loops_and_chains():
    assert _modes_at('''
        def f(model, cond):
            if cond:
                model.train()
            else:
                model.eval()
            probe(model)
    ''', "probe") == ["eval", "train"]
    assert _modes_at('''
        def f(model, cond):
            model.eval()
            if cond:
                model.train()
                return
            probe(model)
    ''', "probe") == ["eval"]
    assert _modes_at('''
        def f(model):
            model.eval()
            model.to("cuda").train()
            probe(model)
    ''', "probe") == ["train"]
    assert _modes_at('''
        def f(model):
            try:
                model.eval()
                run(model)
            finally:
                model.train()
            probe(model)
    ''', "probe") == ["train"]
    # the second pass of a loop sees the end of the first
    assert _modes_at('''
        def f(model):
            for _ in range(3):
                probe(model)
                model.eval()
    ''', "probe") == ["entry", "eval"]


def test_helper_summaries_apply_to_arguments_and_self_attributes():
    assert _modes_at('''
        def evaluate(m):
            m.eval()
            if verbose:
                m.train()
        def f(model):
            evaluate(model)
            probe(model)
    ''', "probe") == ["eval", "train"]
    assert _modes_at('''
        class Loop:
            def validate(self):
                self.model.eval()
            def fit(self):
                self.validate()
                probe(self.model)
    ''', "probe", key="self.model") == ["eval"]


# --- model identity and dropout -------------------------------------------------------------

def test_identity_and_frozen_models():
    m = _module(_NET + '''
ref_model = Net()
ref_model.eval()
teacher = Net()
teacher.requires_grad_(False)
def model_ctx():
    pass
''')
    assert models.is_model(m, "model") and models.is_model(m, "ref_model")
    assert not models.is_model(m, "model_ctx") and not models.is_model(m, "optimizer")
    assert models.is_frozen(m, "ref_model") and models.is_frozen(m, "teacher") and not models.is_frozen(m, "model")


def test_known_dropout_from_local_classes_and_literal_zero():
    m = _module(_NET + '''
class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.0)
class Foreign(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = SomeBlock()
plain = Plain()
foreign = Foreign()
hub = AutoModel.from_pretrained("x")
''')
    assert models.known_dropout(m, "model") == models.NONZERO
    assert models.known_dropout(m, "plain") == models.ZERO
    assert models.known_dropout(m, "foreign") == models.UNKNOWN
    assert models.known_dropout(m, "hub") == models.UNKNOWN  # no setup: nothing resolved "x"


def test_literal_zero_rate_through_a_local():
    m = _module('''
        def f(q, p):
            rate = 0.0
            other = 0.0
            other = p
            return g(rate), g(other), g(p)
    ''')
    rate, other, p = [c.args[0] for c in m.index.calls_by_name["g"]]
    assert models.zero_rate(m, rate) and not models.zero_rate(m, other) and not models.zero_rate(m, p)


# --- false classes of issue #16 (now silent) -----------------------------------------------

def test_604_rl_rollout_with_disable_dropout_is_silent(tmp_path):
    assert _findings(tmp_path, '''
        import torch
        class GRPOLikeTrainer:
            def __init__(self, model, args):
                self.model = model
                if args.disable_dropout:
                    disable_dropout_in_model(self.model)
            def rollout(self, prompts):
                with torch.no_grad():
                    return self.model(prompts)
            def train_step(self, batch):
                self.model(batch).loss.backward()
                self.optimizer.step()
    ''', ["DRP604", "DRP602"]) == []


def test_604_helper_and_context_manager_are_not_models(tmp_path):
    assert _findings(tmp_path, '''
        import torch
        for x in loader:
            model(x).backward()
            optimizer.step()
        with torch.no_grad():
            unwrapped = accelerator.unwrap_model(model)
            state = get_model_state_dict(unwrapped)
        with torch.no_grad(), model_ctx():
            pass
    ''', ["DRP604"]) == []


def test_604_points_at_the_forward_pass_not_the_decorator(tmp_path):
    got = _findings(tmp_path, _NET + '''
for x in loader:
    model(x).sum().backward()
    optimizer.step()

@torch.no_grad()
def evaluate(data):
    return [model(x) for x in data]
''', ["DRP604"])
    assert got == [("DRP604", 23, "warning")]


def test_604_model_without_dropout_is_silent_and_unknown_is_info(tmp_path):
    no_dropout = _NET.replace("nn.Dropout(0.1)", "nn.Identity()")
    loop = '''
for x in loader:
    model(x).sum().backward()
    optimizer.step()
with torch.no_grad():
    score = model(val)
'''
    assert _findings(tmp_path / "a", no_dropout + loop, ["DRP604"]) == []
    unknown = "import torch\nmodel = make_model()\noptimizer = torch.optim.SGD(model.parameters())\n"
    assert _findings(tmp_path / "b", unknown + loop, ["DRP604"]) == [("DRP604", 9, "info")]


# Trains a pretrained model, then evaluates it under no_grad without eval() (line 10).
_PRETRAINED_LOOP = '''
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(MODEL)
    optimizer = torch.optim.AdamW(model.parameters())
    model.train()
    for batch in loader:
        model(**batch).loss.backward()
        optimizer.step()
    with torch.no_grad():
        out = model(**val)
'''


def test_604_weighs_the_model_identity_resolved_from_a_hub_id(tmp_path):
    """Qwen2 has attention_dropout 0.0 and nothing else: no.grad without eval() changes nothing.
    GPT-2 drops at 0.1 everywhere; an id the tool cannot resolve is said at info."""
    script = _PRETRAINED_LOOP
    def run(name, ref, **kw):
        return _findings(tmp_path / name, script.replace("MODEL", ref), ["DRP602", "DRP604"], **kw)

    # the train() before the loop reaches the no_grad pass on every path: DRP602 reports it, citing
    # that call, and DRP604 stays silent (one mistake, one finding)
    assert run("qwen", '"Qwen/Qwen2.5-0.5B"') == []
    assert run("gpt2", '"openai-community/gpt2"') == [("DRP602", 11, "warning")]
    assert run("unknown", '"acme/atlas-3b"') == [("DRP602", 11, "info")]
    assert run("kwarg", '"Qwen/Qwen2.5-0.5B", attention_dropout=0.1') == [("DRP602", 11, "warning")]



def test_604_pretrained_model_with_a_zero_dropout_config_is_silent(tmp_path):
    script = _PRETRAINED_LOOP.replace("MODEL", '"."')
    zero = json.dumps({"model_type": "llama", "attention_dropout": 0.0})
    assert _findings(tmp_path / "z", script, ["DRP604"], extra=[("config.json", zero)]) == []
    some = json.dumps({"model_type": "llama", "attention_dropout": 0.1})
    assert _findings(tmp_path / "s", script, ["DRP602", "DRP604"],
                     extra=[("config.json", some)]) == [("DRP602", 11, "warning")]


def test_604_pretrained_model_never_switched_to_train_is_in_eval_mode(tmp_path):
    """from_pretrained calls model.eval() (transformers modeling_utils.py, 5.24.0): a loop that
    never calls train() runs (and evaluates) in eval mode, so no_grad evaluates without dropout."""
    script = _PRETRAINED_LOOP.replace("MODEL", '"openai-community/gpt2"').replace("    model.train()\n", "")
    assert "train()" not in script
    assert _findings(tmp_path, script, ["DRP604"]) == []
    # a train() on some path (inside the epoch loop) is enough for dropout to be on after it
    looped = script.replace("    for batch in loader:\n", "    for batch in loader:\n        model.train()\n")
    assert _findings(tmp_path / "l", looped, ["DRP604"]) == [("DRP604", 11, "warning")]


def test_602_train_in_another_branch_is_not_cited(tmp_path):
    assert _findings(tmp_path, _NET + '''
def step(batch, mode):
    if mode == "train":
        model.train()
        loss = model(batch)
    else:
        with torch.no_grad():
            out = model.generate(batch)
''', ["DRP602"]) == []


_RECALIBRATE = _NET + '''
def recalibrate(net, loader):
    net.train()
    for x in loader:
        with torch.no_grad():
            net(x)
    net.eval()
'''


def test_602_train_set_for_the_no_grad_passes_and_undone_after_them(tmp_path):
    """Recomputing batch-norm statistics (swa_utils.update_bn, BigGAN's standing stats) switches
    to train() for the no_grad passes and back after them, in one function: on purpose. The
    same passes are reported when the mode is not restored, when a backward pass between
    shows the train() was for training, or when the train() is the caller's."""
    assert _findings(tmp_path / "ok", _RECALIBRATE, ["DRP602"]) == []
    for restore in ("net.train(False)", "net.train(was_training)"):
        assert _findings(tmp_path / restore[10:14], _RECALIBRATE.replace("net.eval()", restore), ["DRP602"]) == []
    kept = _RECALIBRATE.replace("    net.eval()\n", "")
    assert _findings(tmp_path / "kept", kept, ["DRP602"]) == [("DRP602", 21, "info")]
    stepped = _RECALIBRATE.replace("            net(x)\n", "            net(x)\n        net(x).sum().backward()\n")
    assert _findings(tmp_path / "step", stepped, ["DRP602"]) == [("DRP602", 21, "info")]
    caller = _RECALIBRATE.replace("    net.train()\n", "") + "\nmodel.train()\nrecalibrate(model, loader)\n"
    assert _findings(tmp_path / "caller", caller.replace("net(x)", "model(x)").replace("net.eval()", "model.eval()"),
                     ["DRP602"]) == [("DRP602", 20, "warning")]


def test_602_a_function_that_resets_batch_norm_statistics_trains_on_purpose(tmp_path):
    """imaginaire's recalculate_batch_norm_statistics: `net.train()`, `net.apply(reset_batch_norm)`,
    then no_grad passes, and no eval() after (its callers switch to eval themselves). Resetting
    or recalibrating the statistics says what the train() is for; without it the same function
    is reported."""
    kept = _RECALIBRATE.replace("    net.eval()\n", "")
    reset = kept.replace("    net.train()\n", "    net.train()\n    net.apply(reset_batch_norm)\n")
    assert reset != kept
    assert _findings(tmp_path / "reset", reset, ["DRP602"]) == []
    stats = kept.replace("    net.train()\n", "    net.train()\n    for m in net.modules():\n        m.reset_running_stats()\n")
    assert _findings(tmp_path / "stats", stats, ["DRP602"]) == []
    other = kept.replace("    net.train()\n", "    net.train()\n    net.apply(init_weights)\n")
    assert _findings(tmp_path / "other", other, ["DRP602"]) == [("DRP602", 22, "info")]


def test_602_cites_the_train_call_that_reaches(tmp_path):
    write_files(tmp_path, [("train.py", _NET + '''
model.train()
ckpt = "model.train() is not this line"
for batch in loader:
    model(batch).sum().backward()
    optimizer.step()
    samples = model.generate(batch)
''')])
    [f] = [f for f in audit([str(tmp_path)], select=("DRP602",))]
    cited = int(re.search(r"\(line (\d+)\)", f.message).group(1))
    assert cited == 17 and f.severity == "warning"


def test_603_frozen_reference_model_eval_is_silent(tmp_path):
    assert _findings(tmp_path, _NET + '''
ref_model = Net()
frozen = Net()
frozen.requires_grad_(False)
for batch in loader:
    ref_model.eval()
    frozen.eval()
    model(batch).sum().backward()
    optimizer.step()
''', ["DRP603"]) == []


def test_603_backward_with_nothing_that_applies_the_gradients_is_no_training(tmp_path):
    """LoRA's copy of Transformers' head-masking test: eval(), then backward() to read the
    gradient of a head mask, in a loop, with no optimizer step anywhere: a gradient test, not
    training. With an optimizer step, or weights updated by hand from their gradients, the same
    loop trains in eval mode."""
    probe = _NET.replace("optimizer = torch.optim.AdamW(model.parameters())\n", "") + '''
for batch in loader:
    model.eval()
    mask = torch.ones(8, requires_grad=True)
    model(batch * mask).sum().backward()
    print(mask.grad)
'''
    assert _findings(tmp_path / "grad", probe, ["DRP603"]) == []
    stepped = probe.replace("    print(mask.grad)\n", "    optimizer.step()\n")
    assert _findings(tmp_path / "step", stepped, ["DRP603"]) == [("DRP603", 17, "warning")]
    by_hand = probe.replace("    print(mask.grad)\n", "    for p in model.parameters():\n        p.data -= 0.1 * p.grad\n")
    assert _findings(tmp_path / "hand", by_hand, ["DRP603"]) == [("DRP603", 17, "warning")]


def test_603_chained_train_switches_back(tmp_path):
    assert _findings(tmp_path, _NET + '''
def evaluate(m):
    m.eval()
for epoch in range(3):
    for batch in loader:
        model(batch).sum().backward()
        optimizer.step()
        evaluate(model)
        model.to("cuda").train()
''', ["DRP603"]) == []


def test_603_helper_that_trains_only_in_one_branch_is_reported(tmp_path):
    got = _findings(tmp_path, _NET + '''
def evaluate(m, log):
    m.eval()
    if log:
        m.train()
for batch in loader:
    model(batch).sum().backward()
    optimizer.step()
    evaluate(model, False)
''', ["DRP603"])
    assert got == [("DRP603", 24, "warning")]


def test_523_wrapper_built_after_the_write_reads_the_value(tmp_path):
    assert _findings(tmp_path, '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        model.config.summary_dropout_prob = 0.1
        policy = ValueHeadModel(model)
    ''', ["DRP523"]) == []
    assert _findings(tmp_path / "bad", '''
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        model.config.attention_dropout = 0.1
        model.save_pretrained("out")
    ''', ["DRP523"]) == [("DRP523", 4, "warning")]


def test_702_a_test_that_only_builds_the_trainer_is_silent(tmp_path):
    assert _findings(tmp_path, '''
        from trl import DPOConfig, DPOTrainer
        def test_build(model):
            args = DPOConfig(output_dir="o", disable_dropout=False)
            assert DPOTrainer(model=model, args=args).args is args
    ''', ["DRP702"], name="test_dpo.py") == []
    assert _findings(tmp_path / "trains", '''
        from trl import DPOConfig, DPOTrainer
        args = DPOConfig(output_dir="o", disable_dropout=False)
        DPOTrainer(model=model, args=args).train()
    ''', ["DRP702"]) == [("DRP702", 3, "warning")]


# --- missed classes --------------------------------------------------------------------------

def test_604_set_grad_enabled_false_is_an_evaluation_pass(tmp_path):
    got = _findings(tmp_path, _NET + '''
for x in loader:
    model(x).sum().backward()
    optimizer.step()
with torch.set_grad_enabled(False):
    score = model(val)
''', ["DRP604"])
    assert got == [("DRP604", 21, "warning")]


def test_606_mc_dropout_silent_without_aggregation_or_with_dropout_on(tmp_path):
    assert _findings(tmp_path, _NET + '''
model.eval()
votes = [model(x).argmax(-1) for _ in range(5)]
''', ["DRP606"]) == []
    assert _findings(tmp_path / "b", _NET + '''
model.eval()
for m in model.modules():
    if isinstance(m, nn.Dropout):
        m.train()
draws = torch.stack([model(x) for _ in range(5)])
spread = draws.var(0)
''', ["DRP606"]) == []
    assert _findings(tmp_path / "c", _NET + '''
model.eval()
draws = torch.stack([model(x) for _ in range(5)])
spread = draws.var(0)
''', ["DRP606"]) == [("DRP606", 18, "warning")]


# --- a message that cites a line points at that call -----------------------------------------

_CITES = re.compile(r"(?:(?P<call>[\w.()]+)\(\) \(line (?P<line>\d+)\))|(?:(?P<kw>\w+)=\S+ is passed at line (?P<kwline>\d+))")


def test_every_cited_line_holds_the_cited_call(tmp_path):
    from auditor.core.catalogue import load

    checked = 0
    for rule in load():
        examples = getattr(rule, "examples", None) or {}
        for n, ex in enumerate(examples.get("bad", []) if isinstance(examples, dict) else []):
            if "text" not in ex:
                continue
            base = tmp_path / f"{rule.code}-{n}"
            write_files(base, [(ex["file"], ex["text"])])
            lines = ex["text"].splitlines()
            for f in audit([str(base)], select=(rule.code,)):
                for m in _CITES.finditer(f.message):
                    line = int(m.group("line") or m.group("kwline"))
                    wanted = (m.group("call") or "").rsplit(".", 1)[-1].rstrip("()") + "(" if m.group("call") else \
                        m.group("kw") + "="
                    assert wanted in lines[line - 1], (rule.code, f.message, lines[line - 1])
                    checked += 1
    assert checked >= 3  # DRP602, DRP603, DRP604, DRP606 and DRP522 cite lines


def test_700_an_activation_backward_in_a_custom_function_is_no_recompute(tmp_path):
    text = '''
        import torch
        import torch.nn as nn

        class FusedMLP(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, act_fn, act_fn_backward, drop):
                ctx.act_fn_backward = act_fn_backward
                x_drop = nn.functional.dropout(x, 0.1)
                ctx.save_for_backward(x_drop)
                return act_fn(x_drop)

            @staticmethod
            def backward(ctx, grad):
                (x_drop,) = ctx.saved_tensors
                return ctx.act_fn_backward(grad, x_drop), None, None, None
    '''
    assert _findings(tmp_path, text, ["DRP700"]) == []
    recompute = text.replace("ctx.act_fn_backward = act_fn_backward", "ctx.run_function = act_fn").replace(
        "return ctx.act_fn_backward(grad, x_drop), None, None, None", "return ctx.run_function(x_drop), None, None, None")
    assert [c for c, *_ in _findings(tmp_path / "r", recompute, ["DRP700"])] == ["DRP700"]


def test_606_an_eval_loop_over_batches_inside_an_epoch_range_is_no_sampling(tmp_path):
    assert _findings(tmp_path, _NET + '''
for epoch in range(3):
    model.eval()
    losses = []
    for step, batch in enumerate(val_loader):
        with torch.no_grad():
            losses.append(model(batch))
    print(torch.mean(torch.cat(losses)))
''', ["DRP606"]) == []


def test_603_eval_before_break_does_not_reach_the_next_step(tmp_path):
    assert _findings(tmp_path, _NET + '''
def sample(m):
    m.eval()
while True:
    batch = next(it)
    if done(batch):
        sample(model)
        break
    model(batch).sum().backward()
    optimizer.step()
''', ["DRP603"]) == []


def test_known_dropout_of_a_peft_model_from_its_literal_adapter_config():
    m = _module('''
        from peft import LoraConfig, get_peft_model
        config = LoraConfig(r=8, lora_dropout=0.05)
        base = AutoModelForCausalLM.from_pretrained("x")
        model = get_peft_model(base, config)
        zero = get_peft_model(base, LoraConfig(r=8, lora_dropout=0.0))
    ''')
    assert models.known_dropout(m, "model") == models.NONZERO
    assert models.known_dropout(m, "zero") == models.UNKNOWN  # the base model may still drop


_DISPATCH = _NET + '''
model = Net()
for epoch in range(10):
    if mode == "finetune":
        model.train()
    else:
        {other}
    for batch in loader:
        model(batch).sum().backward()
        optimizer.step()
    model.eval()
    evaluate(model)
'''


def test_603_a_constant_false_assert_ends_the_path_like_a_raise(tmp_path):
    """vicreg's evaluate.py: the mode dispatch at the top of each epoch ends in `else: assert
    False`, so the end-of-epoch eval() reaches the next optimizer step only through the
    branches that switch the mode again. An assert that may pass, or a branch that falls
    through, still lets it reach the step."""
    for other in ("assert False", "assert 0, 'unknown mode'", "raise ValueError(mode)"):
        assert _findings(tmp_path, _DISPATCH.format(other=other), ["DRP603"]) == [], other
    for other in ("assert mode", "print(mode)"):
        assert _findings(tmp_path, _DISPATCH.format(other=other), ["DRP603"]) == [("DRP603", 26, "warning")], other


_PROBE = '''
import torch
from torch import nn

backbone = torchvision.models.resnet50()
head = nn.Linear(2048, 1000)
model = nn.Sequential(backbone, head)
if args.weights == "freeze":
    {freeze}
model = nn.parallel.DistributedDataParallel(model)
param_groups = [dict(params=head.parameters(), lr=0.1)]
if args.weights == "finetune":
    param_groups.append(dict(params=backbone.parameters(), lr=0.01))
optimizer = torch.optim.SGD(param_groups, 0, momentum=0.9)
for epoch in range(10):
    if args.weights == "finetune":
        model.train()
    elif args.weights == "freeze":
        model.eval()
    for images, target in loader:
        loss = criterion(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
'''


def test_603_eval_in_the_branch_that_freezes_a_part_of_the_model_is_the_linear_probe(tmp_path):
    """vicreg's evaluate.py: `model = nn.Sequential(backbone, head)`, the backbone frozen under
    `if args.weights == "freeze"` and `model.eval()` in the loop under the same condition: the
    linear-probe protocol keeps the frozen backbone's batch norm fixed on purpose. With nothing
    frozen there, or the part frozen under another condition, the eval() is still one the
    training forgot to undo."""
    for freeze in ("backbone.requires_grad_(False)",
                   "for p in backbone.parameters():\n        p.requires_grad = False"):
        assert _findings(tmp_path, _PROBE.format(freeze=freeze), ["DRP603"]) == [], freeze
    unfrozen = _PROBE.format(freeze="head.requires_grad_(True)")
    assert [c for c, _, _ in _findings(tmp_path, unfrozen, ["DRP603"])] == ["DRP603"]
    other = _PROBE.format(freeze="backbone.requires_grad_(False)").replace(
        'if args.weights == "freeze":\n    backbone', 'if args.weights == "finetune":\n    backbone')
    assert [c for c, _, _ in _findings(tmp_path, other, ["DRP603"])] == ["DRP603"]
