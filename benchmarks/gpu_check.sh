#!/usr/bin/env bash
# GPU check of clas_lens, sized to finish within 10 minutes on one H100 or H200.
#
#   bash benchmarks/gpu_check.sh            # from the repository root or anywhere
#
# 1. uses the project's .venv (runs `make setup` first if it is missing; set PY=... to use
#    another interpreter that has clas_lens and a CUDA torch installed);
# 2. builds a ~1.1B-parameter Llama-architecture model from a config (random weights, no hub:
#    hidden 2048, 16 layers, intermediate 8192, vocab 32000, the clas_lens test tokenizer),
#    saves it, loads it with clas_lens.load_model(folder, device="cuda", dtype=torch.bfloat16)
#    and runs the statistics and steering benchmarks on CUDA (benchmarks/gpu_bench.py);
# 3. reruns benchmarks/bench_stats.py and bench_steering.py on that model when they accept
#    --model/--device;
# 4. sweep speed on that model (benchmarks/bench_sweep.py, bf16): prefix reuse of the blocks
#    before the last 4 of 16 layers, per task (nli, cloze, lm), the option-scoring speed against
#    the code before issue 16, and a short real run_sweep with and without reuse (wall ratio,
#    largest per-item difference, predictions equal).
# Prints `name: value` lines (ratios measured in one run, absolute figures for context).
# The CPU part of gpu_bench.py is checked with: python benchmarks/gpu_bench.py --size tiny --device cpu
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

PY=${PY:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    echo "# no $PY: running make setup" >&2
    make setup
fi
START=$(date +%s)
"$PY" - <<'PYEOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU (a CPU-only wheel, or no driver). "
             "Install a CUDA build of torch into the venv, or run the CPU check instead: "
             "python benchmarks/gpu_bench.py --size tiny --device cpu")
p = torch.cuda.get_device_properties(0)
print(f"gpu_name: {p.name}")
print(f"gpu_memory_gib: {p.total_memory / 2**30:.0f}")
print(f"torch_version: {torch.__version__}")
PYEOF

WORK=$(mktemp -d "${TMPDIR:-/tmp}/clas_lens_gpu_check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
MODEL="$WORK/llama-1b"

# Build + load + statistics + steering: ~1-3 min on an H100; hard limit 4.5 min.
timeout 270 "$PY" benchmarks/gpu_bench.py --size 1b --device cuda --dtype bfloat16 \
    --out "$MODEL" --items 128 --batch-size 32 --max-length 256 --new-tokens 64 --threads 4

# The project's own statistics / steering benchmarks on the same model, when they take
# --model and --device (each limited to 75 s).
for name in bench_stats bench_steering; do
    script="benchmarks/$name.py"
    if [ -f "$script" ] && "$PY" "$script" --help 2>/dev/null | grep -q -- "--device"; then
        timeout 75 "$PY" "$script" --model "$MODEL" --device cuda --dtype bfloat16 \
            || echo "# $name failed or timed out (rc $?)"
    else
        echo "# $name: skipped (missing, or no --model/--device options)"
    fi
done
# Sweep speed with prefix reuse (~1-2 min; hard limit 2.5 min).
timeout 150 "$PY" benchmarks/bench_sweep.py --model "$MODEL" --device cuda --dtype bfloat16 \
    --tasks nli,cloze,lm --limit 64 --repeats 3 --sweep --threads 4 --prefix llama_1b_cuda_ \
    || echo "# bench_sweep failed or timed out (rc $?)"
echo "gpu_check_total_s: $(( $(date +%s) - START ))"
