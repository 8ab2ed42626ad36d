"""Latency of `dropout-audit server` from a change to its diagnostics, and its memory over
1,000 edits (issue 29: under 50 ms warm; memory flat).

A real LSP client (pygls's) starts the server as a subprocess and talks to it over stdio, as
an editor does. The workspace is written to a temporary folder: a 200-line training script
and a LoRA recipe with the adapter_config.json beside it (so the recipe's check is a
cross-file setup). Each measure sends a change and waits for the publishDiagnostics of that
document version; the time includes the JSON-RPC round trip both ways.

- start: process start to the answer of `initialize`;
- cold: didOpen of each file to its first diagnostics (the readers and rules load then);
- warm, back to back: `debounceMs` 0, each change sent when the previous one's diagnostics
  arrived (the check itself plus the transport);
- warm, isolated: a pause of 250 ms between changes, as single edits come from a person, with
  the default debounce (200 ms: the first change after a quiet spell is checked at once) and,
  as the control, with none; on a loaded machine a process that slept waits for a core, so
  these are slower than back to back whatever the debounce;
- memory: the server's resident set (VmRSS) after 0, 250, 500, 750 and 1,000 edits of the
  script, back to back.

    python bench/server_latency.py [--edits 1000] [--samples 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient
from pygls.uris import from_fs_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECIPE = """base_model: meta-llama/Llama-3.2-1B
model_type: LlamaForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: false
load_in_4bit: true
strict: false
datasets:
  - path: mhenrichsen/alpaca_2k_test
    type: alpaca
dataset_prepared_path: last_run_prepared
val_set_size: 0.05
output_dir: ./outputs/lora-out
sequence_len: 4096
sample_packing: true
pad_to_sequence_len: true
adapter: qlora
lora_model_dir:
lora_r: 32
lora_alpha: 16
lora_dropout: {value}
lora_target_linear: true
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 4
optimizer: paged_adamw_32bit
lr_scheduler: cosine
learning_rate: 0.0002
train_on_inputs: false
group_by_length: false
bf16: auto
tf32: false
gradient_checkpointing: true
logging_steps: 1
flash_attention: true
warmup_steps: 10
evals_per_epoch: 4
saves_per_epoch: 1
weight_decay: 0.0
special_tokens:
  pad_token: "<|end_of_text|>"
"""

ADAPTER = '{"peft_type": "LORA", "r": 32, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj"]}\n'

SCRIPT_HEAD = '''"""Fine-tune a tagger and a LoRA language model (benchmark input, 200 lines)."""
import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, TrainingArguments, Trainer


class Block(nn.Module):
    def __init__(self, dim, dropout=0.1):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.ff = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        h = self.ff(self.norm(x))
        h = F.dropout(h, p={value}, training=self.training)
        return x + self.drop(h)


'''

HELPER = '''def helper_{i}(model, batch, steps={i}):
    """Run a few steps of helper {i}."""
    total = 0.0
    for step in range(steps):
        out = model(batch)
        loss = out.float().pow(2).mean()
        total += loss.item()
    return total / max(steps, 1)


'''

SCRIPT_TAIL = '''def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lora_dropout", type=float, default=0.05)
    args = parser.parse_args()
    model = AutoModelForCausalLM.from_pretrained("gpt2")
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=args.lora_dropout, target_modules=["c_attn"])
    model = get_peft_model(model, config)
    training = TrainingArguments(output_dir="out", per_device_train_batch_size=2)
    Trainer(model=model, args=training).train()
    model.eval()
    with torch.no_grad():
        model.generate(torch.zeros(1, 4, dtype=torch.long))


if __name__ == "__main__":
    main()
'''


def script(value: str) -> str:
    text = SCRIPT_HEAD.replace("{value}", value)
    i = 0
    while (text + SCRIPT_TAIL).count("\n") < 200:
        text += HELPER.replace("{i}", str(i))
        i += 1
    return text + SCRIPT_TAIL


class Bench:
    def __init__(self, root: str, debounce_ms: int | None):
        self.root = root
        self.debounce_ms = debounce_ms
        self.client = LanguageClient("server-latency-bench", "1")
        self.published = {}  # uri -> (version, diagnostics)
        self.waiters = {}    # (uri, version) -> future

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: lsp.PublishDiagnosticsParams):
            self.published[params.uri] = (params.version, params.diagnostics)
            fut = self.waiters.pop((params.uri, params.version), None)
            if fut is not None and not fut.done():
                fut.set_result(params.diagnostics)

    async def start(self) -> float:
        t = time.perf_counter()
        env = dict(os.environ, PYTHONPATH=REPO)
        await self.client.start_io(sys.executable, "-m", "auditor", "server", env=env, cwd=self.root)
        opts = {} if self.debounce_ms is None else {"debounceMs": self.debounce_ms}
        await self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), process_id=os.getpid(),
            workspace_folders=[lsp.WorkspaceFolder(uri=from_fs_path(self.root), name="bench")],
            initialization_options=opts))
        self.client.initialized(lsp.InitializedParams())
        return time.perf_counter() - t

    def pid(self) -> int:
        return self.client._server.pid

    def cpu_s(self) -> float:
        """The server process's CPU time so far (user + system): on a shared machine the wall
        time of a check waits for a core, its CPU time does not."""
        with open(f"/proc/{self.pid()}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid()}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def _wait(self, uri: str, version: int):
        fut = asyncio.get_running_loop().create_future()
        self.waiters[(uri, version)] = fut
        return fut

    async def open(self, name: str, text: str, language: str) -> tuple:
        uri = from_fs_path(os.path.join(self.root, name))
        fut = self._wait(uri, 1)
        t = time.perf_counter()
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(uri, language, 1, text)))
        found = await asyncio.wait_for(fut, 120)
        return uri, time.perf_counter() - t, found

    async def change(self, uri: str, version: int, text: str) -> float:
        fut = self._wait(uri, version)
        t = time.perf_counter()
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [lsp.TextDocumentContentChangeWholeDocument(text=text)]))
        await asyncio.wait_for(fut, 60)
        return time.perf_counter() - t

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def _write(root: str) -> None:
    with open(os.path.join(root, "recipe.yaml"), "w", encoding="utf-8") as fh:
        fh.write(RECIPE.replace("{value}", "0.05"))
    with open(os.path.join(root, "adapter_config.json"), "w", encoding="utf-8") as fh:
        fh.write(ADAPTER)
    with open(os.path.join(root, "train.py"), "w", encoding="utf-8") as fh:
        fh.write(script("0.1"))


def _ms(values) -> str:
    values = sorted(v * 1000 for v in values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"median {statistics.median(values):6.1f} ms  p90 {p90:6.1f} ms  max {values[-1]:6.1f} ms  (n={len(values)})"


async def run(edits: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        _write(root)
        recipe_text = RECIPE.replace("{value}", "0.05")
        script_text = script("0.1")
        assert script_text.count("\n") >= 200

        bench = Bench(root, debounce_ms=0)
        started = await bench.start()
        print(f"start (process to initialize answered): {started * 1000:.0f} ms")
        recipe, cold_recipe, found = await bench.open("recipe.yaml", recipe_text, "yaml")
        print(f"cold, recipe (first didOpen -> diagnostics, readers and rules load): {cold_recipe * 1000:.1f} ms, "
              f"{len(found)} diagnostics")
        train, cold_script, found = await bench.open("train.py", script_text, "python")
        print(f"cold, 200-line script (first Python file): {cold_script * 1000:.1f} ms, {len(found)} diagnostics")

        times, version, cpu = [], 1, bench.cpu_s()
        for i in range(samples):  # 0.05 (agrees with the adapter) <-> 0.5 (DRP201 and DRP400)
            version += 1
            times.append(await bench.change(recipe, version, RECIPE.replace("{value}", "0.5" if i % 2 == 0 else "0.05")))
        cpu = (bench.cpu_s() - cpu) / samples
        print(f"warm, recipe + adapter_config.json, back to back:  {_ms(times)}; server CPU {cpu * 1000:.1f} ms/edit")
        times, sversion, cpu = [], 1, bench.cpu_s()
        for i in range(samples):
            sversion += 1
            times.append(await bench.change(train, sversion, script("0.2" if i % 2 == 0 else "0.1")))
        cpu = (bench.cpu_s() - cpu) / samples
        print(f"warm, 200-line script, back to back:               {_ms(times)}; server CPU {cpu * 1000:.1f} ms/edit")

        rss = [(0, bench.rss_mb())]
        for i in range(1, edits + 1):
            sversion += 1
            await bench.change(train, sversion, script(f"0.{i % 9 + 1}"))
            if i % (edits // 4 or 1) == 0:
                rss.append((i, bench.rss_mb()))
        print("memory (VmRSS) after N edits of the script: " + ", ".join(f"{n}: {mb:.1f} MB" for n, mb in rss))
        await bench.stop()

        for debounce in (None, 0):  # single edits: the default debounce, and none (the control)
            bench = Bench(root, debounce_ms=debounce)
            await bench.start()
            recipe, _, _ = await bench.open("recipe.yaml", recipe_text, "yaml")
            train, _, _ = await bench.open("train.py", script_text, "python")
            label = "default debounce" if debounce is None else "debounceMs 0"
            for uri, name, make in ((recipe, "recipe + adapter_config.json", lambda i: RECIPE.replace(
                    "{value}", "0.5" if i % 2 == 0 else "0.05")), (train, "200-line script", lambda i: script(
                    "0.2" if i % 2 == 0 else "0.1"))):
                times = []
                for i in range(samples // 2):
                    await asyncio.sleep(0.25)
                    times.append(await bench.change(uri, i + 2, make(i)))
                print(f"warm, {name}, isolated edits, {label}: {_ms(times)}")
            await bench.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=40)
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
    asyncio.run(run(args.edits, args.samples))


if __name__ == "__main__":
    main()
