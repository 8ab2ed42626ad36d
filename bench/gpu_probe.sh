#!/usr/bin/env bash
# On an NVIDIA GPU, in four parts (each must pass; the whole within about 8 minutes):
#  1. the full-size probe: the Llama-3.2-1B-shaped fixture (1.24B parameters, random bf16 weights,
#     never downloaded) with its LoRA adapter, including the step-time overhead of the configured
#     dropout against dropout 0 (CUDA events), the parts of the model that ran and the module
#     survey (every module's train vs eval output on one input: hand-written dropout);
#  1b. the planted hand-written dropout faults and the correct one on the GPU (issue #32: the
#     survey's kept-ratio tolerance is per dtype, and the GPU's kernels differ from the CPU's);
#  2. the run-time guard on a tiny transformers Trainer run on CUDA (bench/runtime_guard_trainer.py:
#     a clean run is silent and logs the plan, a planted eval-in-train-mode run is caught);
#  3. the distributed probe with one rank, `probe --nproc 1` (torchrun, NCCL) on the same fixture,
#     scaled down.
#
#   bash bench/gpu_probe.sh            (from the repository root; PYTHON=... to pick an interpreter)
#
# Needs torch with CUDA, transformers and peft (pip install 'dropout-auditor[probe]').
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}          # DEVICE=cpu SIZE= bash bench/gpu_probe.sh: a dry run of this script on a CPU
SIZE=${SIZE---full-size}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
OUTDIR=${OUT:-$(mktemp -d)}
mkdir -p "$OUTDIR"
M="$OUTDIR/gpu_probe_measurements.json"
start=$(date +%s)
set +e
PYTHONPATH=. PYTHONUNBUFFERED=1 timeout 300 "$PY" -m auditor probe fixtures/probe-llama-lora/config.json \
  --adapter fixtures/probe-llama-lora/adapter_config.json $SIZE --device "$DEVICE" --steps 20 \
  --format concise --measurements "$M" --html "$OUTDIR/gpu_probe.html"
rc=$?
set -e
echo "probe exit code: $rc  wall: $(( $(date +%s) - start )) s"
[ -f "$M" ] || { echo "no measurements written"; exit 1; }
"$PY" - "$M" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
m, sites = d["meta"], d["sites"]
print(f"model      {m['model']}  {m['device']} {m['dtype']} attn={m['attn_implementation']}  probe {m['seconds']} s")
print(f"{'kind':10s} {'key':18s} {'sites':>5s} {'p':>6s} {'rate min..max':>17s} {'train':>6s} {'eval':>6s}")
groups = {}
for s in sites:
    groups.setdefault((s["kind"].split("@")[0], s["key"], s["p"]), []).append(s)
for (kind, key, p), rows in sorted(groups.items()):
    rates = [r["rate"] for r in rows if r["rate"] is not None]
    rng = f"{min(rates):.4f}..{max(rates):.4f}" if rates else "-"
    ok_t = sum(r["train_verdict"] in ("ok", "-") for r in rows)
    ok_e = sum(r["eval_verdict"] in ("off", "not run") for r in rows)
    print(f"{kind:10s} {key or '-':18s} {len(rows):5d} {p:6g} {rng:>17s} {ok_t:>3d}/{len(rows):<2d} {ok_e:>3d}/{len(rows):<2d}")
e, mag, o = d["eval"], d["magnitude"], d["overhead"]
print(f"eval       deterministic={e['two_forwards_equal']} equals-identity={e['equals_identity']}")
print(f"magnitude  train-identity==eval: {mag['identity_equal']}; mean-of-train scale {mag['slope']:.4f} ± {mag['se']:.4f}")
print(f"loss       {d['loss'][0]:.4f} -> {d['loss'][-1]:.4f} over {len(d['loss'])} steps")
if o:
    print(f"overhead   {o['ratio']:.3f}x (95% CI {o['ci95'][0]:.3f}..{o['ci95'][1]:.3f}), {o['timer']}")
for p in d.get("parts", []):
    print(f"part       {p['line']}")
s = d.get("survey", {})
print(f"survey     {s.get('modules')} modules, {s.get('module_calls')} calls compared, {s.get('differing')} differing, "
      f"{len(s.get('judged', []))} judged, {s.get('rerun_failures')} re-run failures" if s.get("ran") else f"survey     {s}")
for f in d["findings"]:
    print(f"finding    {f['code']} {f['path']}:{f['line']} {f['message'][:160]}")
print(f"findings   {[f['code'] for f in d['findings']] or 'none'}")
PYEOF
# the hand-written dropout faults on the device: each must give its code, the clean one nothing
faults_rc=0
for spec in clean_hand_written:- fault_hand_unscaled:DRP802 fault_hand_double_scaled:DRP803 fault_hand_wrong_rate:DRP801 \
            fault_eval_rescale:DRP803 clean_hand_drop_path:-; do
  name=${spec%%:*}; want=${spec##*:}
  FM="$OUTDIR/$name.json"
  PYTHONPATH=. timeout 60 "$PY" -m auditor probe --factory "tests/probe_faults.py:$name" --device "$DEVICE" --steps 8 \
    --format concise --exit-zero --measurements "$FM" >/dev/null 2>&1
  got=$("$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(sorted({f['code']+'@'+str(f['line']) for f in d['findings']})) or '-')" "$FM" 2>/dev/null || echo "no-measurements")
  case "$want:$got" in
    -:-|DRP80?:*"$want"@*) verdict=ok ;;
    *) verdict=WRONG; faults_rc=1 ;;
  esac
  echo "fault      $name want $want got $got $verdict"
done
[ $rc -le 1 ] && rc=$faults_rc

echo "--- 2. run-time guard on a tiny Trainer run ($DEVICE)"
start=$(date +%s)
set +e
PYTHONPATH=. PYTHONUNBUFFERED=1 timeout 120 "$PY" bench/runtime_guard_trainer.py --device "$DEVICE"
guard_rc=$?
echo "guard exit code: $guard_rc  wall: $(( $(date +%s) - start )) s"

echo "--- 3. probe --nproc 1 ($DEVICE: NCCL on cuda, gloo on cpu)"
start=$(date +%s)
PYTHONPATH=. PYTHONUNBUFFERED=1 timeout 180 "$PY" -m auditor probe fixtures/probe-llama-lora/config.json \
  --adapter fixtures/probe-llama-lora/adapter_config.json --device "$DEVICE" --steps 5 --nproc 1 \
  --format concise --measurements "$OUTDIR/nproc_measurements.json"
nproc_rc=$?
set -e
echo "nproc exit code: $nproc_rc  wall: $(( $(date +%s) - start )) s"
"$PY" - "$OUTDIR/nproc_measurements.json" <<'PYEOF' || nproc_rc=1
import json, sys
d = json.load(open(sys.argv[1]))
r = d["ranks"]
print(f"ranks      {r['world_size']} ({r['backend']}, {r['device']}); seeding: {r['rule']}; digests {r['digests']}")
print(f"sites      {len(d['sites'])}, train verdicts {sorted({s['train_verdict'] for s in d['sites']})}")
PYEOF
# the probe's own exit code reports findings (1) on the fixture as in part 1; 2 is a failure to run
[ "$rc" -le 1 ] && [ "$guard_rc" -eq 0 ] && [ "$nproc_rc" -le 1 ] || exit 1
exit $rc
