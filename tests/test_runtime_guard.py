"""The run-time guard inside real (tiny, randomly initialised) training runs: a transformers
Trainer, TRL's DPOTrainer, pytorch-lightning, and plain loops through the context manager."""

import warnings

import pytest

torch = pytest.importorskip("torch")

from torch.overrides import _get_current_function_mode_stack

from auditor.runtime import DropoutActiveInEval, DropoutGuardWarning, dropout_guard
from tests.probe_faults import fault_never_in_train
from tests.runtime_helpers import GatedMLP, Tokens, tiny_gpt2, word_tokenizer

HERE = __file__.removesuffix("c")


@pytest.fixture(autouse=True)
def nothing_left_installed():
    yield
    assert not _get_current_function_mode_stack(), "the guard left its function mode installed"


# -- transformers Trainer ---------------------------------------------------------------

def _trainer(tmp_path, callbacks, **overrides):
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    options = dict(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=4, per_device_eval_batch_size=4,
                   eval_strategy="steps", eval_steps=3, logging_steps=1, save_strategy="no", report_to=[],
                   use_cpu=True, disable_tqdm=True)
    options.update(overrides)
    args = transformers.TrainingArguments(**options)
    return transformers.Trainer(model=tiny_gpt2(), args=args, train_dataset=Tokens(16, 0), eval_dataset=Tokens(12, 1),
                                callbacks=callbacks)


def _train_during_eval():
    """Planted: a callback that switches the model back to train mode while evaluating (the
    Trainer's evaluation_loop calls model.eval() first, so this is how train mode reaches it)."""
    from transformers import TrainerCallback

    class TrainDuringEval(TrainerCallback):
        def on_prediction_step(self, args, state, control, model=None, **kwargs):
            model.train()

    return TrainDuringEval()


def test_trainer_eval_with_dropout_on_raises_naming_site_and_user_frame(tmp_path):
    from auditor.runtime import DropoutGuard

    trainer = _trainer(tmp_path, [DropoutGuard(), _train_during_eval()])
    with pytest.raises(DropoutActiveInEval) as caught:
        trainer.train()
    message = str(caught.value)
    assert "transformer.drop (Dropout, p=0.1)" in message
    assert "train mode during evaluation" in message
    assert f"{HERE}:" in message and "trainer.train()" in message   # the user's frame, with its line


def test_trainer_warn_mode_counts_every_active_application(tmp_path):
    from auditor.runtime import DropoutGuard

    guard = DropoutGuard(on_eval_dropout="warn")
    trainer = _trainer(tmp_path, [guard, _train_during_eval()])
    with pytest.warns(DropoutGuardWarning, match="dropout active during evaluation"):
        trainer.train()
    report = guard.guard.report()
    active = [f for f in report["findings"] if f["code"] == "DRP800"]
    assert active and all(f["path"].endswith("test_runtime_guard.py") for f in active)
    sites = {s["path"]: s for s in report["sites"] if s["kind"] == "Dropout"}
    # 2 evaluations x 3 batches: the first batch of each ran in eval mode, the other two in train mode
    assert sites["transformer.drop"]["eval_calls"] == 6 and sites["transformer.drop"]["eval_active"] == 4


def test_clean_trainer_run_reports_nothing_and_logs_the_plan(tmp_path):
    from auditor.runtime import DropoutGuard

    guard = DropoutGuard()
    trainer = _trainer(tmp_path, [guard])
    with warnings.catch_warnings():
        warnings.simplefilter("error", DropoutGuardWarning)
        trainer.train()
        trainer.evaluate()
    report = guard.guard.report()
    assert report["findings"] == []
    assert report["sampled_steps"] == 3 and report["steps"] == 6 and report["eval_runs"] == 3
    logged = {k: v for entry in trainer.state.log_history for k, v in entry.items() if k.startswith("dropout/")}
    assert logged["dropout/plan/transformer.h._.attn/sdpa"] == 0.1
    assert logged["dropout/plan/transformer.h._.mlp.dropout/Dropout"] == 0.1
    assert 0.05 < logged["dropout/measured/transformer.h._.mlp.dropout/Dropout"] < 0.15
    # GPT-2's attn_dropout module never runs under SDPA, which reads its p: not a dead site
    assert not any(f["code"] == "DRP804" for f in report["findings"])


def test_the_guard_finds_its_trainer_and_unwraps_on_detach(tmp_path):
    from auditor.runtime import DropoutGuard

    guard = DropoutGuard()
    trainer = _trainer(tmp_path, [guard])
    assert guard.trainer is trainer and "training_step" in trainer.__dict__
    guard.detach()
    assert "training_step" not in trainer.__dict__ and "evaluation_loop" not in trainer.__dict__


def test_dpo_trainer_zeroing_lora_dropout_is_reported(tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from trl import DPOConfig, DPOTrainer

    from auditor.runtime import DropoutGuard

    tokenizer = word_tokenizer("a b c d e f g h i j k l m n".split())
    model = get_peft_model(tiny_gpt2(vocab=len(tokenizer)),
                           LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["c_attn"],
                                      fan_in_fan_out=True))
    data = Dataset.from_dict({"prompt": ["a b c", "d e f"] * 4, "chosen": [" g h", " i j"] * 4,
                              "rejected": [" k l", " m n"] * 4})
    args = DPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to=[], use_cpu=True,
                     save_strategy="no", logging_steps=1, disable_tqdm=True)
    guard = DropoutGuard()
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=[guard])
    with pytest.warns(DropoutGuardWarning, match="lora_dropout = 0.1"):
        trainer.train()
    zeroed = [f for f in guard.guard.report()["findings"] if f["code"] == "DRP804"]
    assert len(zeroed) == 1, zeroed   # the active adapter only, not TRL's frozen "ref" copy
    assert "DPOTrainer was built with disable_dropout=True" in zeroed[0]["message"]
    assert "2 of its 2 LoRA dropout modules" in zeroed[0]["message"]


# -- pytorch-lightning --------------------------------------------------------------------

def _lightning_fit(callbacks, logger=False):
    pl = pytest.importorskip("pytorch_lightning")

    class Regressor(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                           torch.nn.Linear(16, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return ((self.net(x) - y) ** 2).mean()

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val", ((self.net(x) - y) ** 2).mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    def loader(seed):
        x = torch.randn(32, 8, generator=torch.Generator().manual_seed(seed))
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)

    torch.manual_seed(0)
    trainer = pl.Trainer(max_epochs=2, callbacks=callbacks, logger=logger, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                         num_sanity_val_steps=0)
    trainer.fit(Regressor(), loader(0), loader(1))
    return trainer


def test_lightning_validation_in_train_mode_is_caught():
    pl = pytest.importorskip("pytorch_lightning")
    from auditor.runtime import DropoutGuardCallback

    class TrainBeforeValidation(pl.Callback):   # planted: undoes Lightning's model.eval()
        def on_validation_start(self, trainer, pl_module):
            pl_module.train()

    with pytest.raises(DropoutActiveInEval, match=r"net\.2 \(Dropout, p=0\.2\).*in validation_step"):
        _lightning_fit([DropoutGuardCallback(), TrainBeforeValidation()])


def test_clean_lightning_run_reports_nothing_and_logs_the_plan():
    pl = pytest.importorskip("pytorch_lightning")
    from auditor.runtime import DropoutGuardCallback

    logged = {}

    class Recorder(pl.loggers.Logger):
        name, version = "recorder", "0"

        def log_metrics(self, metrics, step=None):
            logged.update(metrics)

        def log_hyperparams(self, *args, **kwargs):
            pass

        @property
        def experiment(self):
            return None

    guard = DropoutGuardCallback()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DropoutGuardWarning)
        trainer = _lightning_fit([guard], logger=Recorder())
    assert trainer.state.finished
    report = guard.guard.report()
    assert report["findings"] == [] and report["eval_runs"] == 2 and report["sampled_steps"] == 3
    assert report["plan"] == {"dropout/plan/net._/Dropout": 0.2}   # indices folded, as layers are
    assert logged["dropout/plan/net._/Dropout"] == 0.2 and "dropout/measured/net._/Dropout" in logged


# -- plain PyTorch / accelerate loops -------------------------------------------------------

def test_context_manager_catches_ungated_functional_dropout_in_an_eval_loop():
    model = GatedMLP(gated=False).eval()
    with pytest.raises(DropoutActiveInEval) as caught, dropout_guard(model, mode="eval"), torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 16))
    message = str(caught.value)
    assert "F.dropout@runtime_helpers.py" in message and "training=True while GatedMLP is in eval mode" in message
    assert "runtime_helpers.py" in message and "F.dropout(h, self.p)" in message   # the user's line


def test_context_manager_is_silent_on_a_gated_model_and_warns_when_asked():
    clean = GatedMLP(gated=True).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DropoutGuardWarning)
        with dropout_guard(clean, mode="eval") as guard, torch.no_grad():
            clean(torch.randn(8, 16))
    assert guard.finish() == []
    bad = GatedMLP(gated=False).eval()
    with pytest.warns(DropoutGuardWarning), dropout_guard(bad, mode="eval", on_eval_dropout="warn") as guard, \
            torch.no_grad():
        for _ in range(3):
            bad(torch.randn(8, 16))
    [finding] = guard.finish()
    assert finding.code == "DRP800" and finding.message.startswith("3 of 3 applications")
    assert finding.path.endswith("runtime_helpers.py")


def test_context_manager_train_mode_samples_steps_and_judges_rates(tmp_path):
    import json

    model = GatedMLP(unused=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    written = tmp_path / "guard.json"
    with dropout_guard(model, mode="train", warmup=2, sample_every=5, json_path=str(written)) as guard:
        for _ in range(12):
            opt.zero_grad()
            model(torch.randn(64, 16)).pow(2).mean().backward()
            opt.step()
    assert guard.steps == 12 and guard.sampled == 4   # steps 0, 1 (warm-up), 5 and 10
    codes = [(f.code, f.key) for f in guard.finish()]
    assert codes == [("DRP804", "forgotten")]          # configured, never ran; the live sites are fine
    sites = {s["path"] + " " + s["kind"].split("@")[0]: s for s in guard.report()["sites"]}
    assert sites["drop Dropout"]["train_calls"] == 4
    data = json.loads(written.read_text())   # written when the block ends
    assert [f["code"] for f in data["findings"]] == ["DRP804"] and data["sampled_steps"] == 4
    assert data["plan"]["dropout/plan/forgotten/Dropout"] == 0.3


def test_a_site_that_never_drops_in_training_is_a_rate_mismatch():
    model, x = fault_never_in_train()   # F.dropout(..., training=False) while training
    with dropout_guard(model, mode="train", warmup=3) as guard:
        for _ in range(3):
            model(x).sum().backward()
    codes = {f.code for f in guard.finish()}
    assert "DRP801" in codes


def test_guard_rejects_bad_options():
    with pytest.raises(ValueError, match="on_eval_dropout"), dropout_guard(GatedMLP(), on_eval_dropout="ignore"):
        pass
    with pytest.raises(ValueError, match="mode"), dropout_guard(GatedMLP(), mode="test"):
        pass


def test_importing_the_package_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, auditor.runtime\n"
            "print(sorted(m for m in ('transformers', 'pytorch_lightning', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__file__.rsplit("/tests/", 1)[0])
    assert out.stdout.strip() == "[]"
