"""Where GRPO's decoding time goes: milliseconds per decoding step of ``model.generate`` at GRPO's batch sizes.

GRPO on the Qwen3-4B-shaped model decoded at 156 ms a step at batch 256 and 222 ms at batch 512
inside ``reasoning-kit grpo`` (docs/grpo.md#speed), against about 40 ms for a plain
``model.generate`` probe. This script measures the suspects one at a time, in one process, on the
randomly initialised Qwen3-4B-shaped model of ``gpu_train_throughput.py``:

- ``padding``: ``left`` (prompts of different lengths, left-padded, as GRPO batches them: attention
  gets a padding mask, and transformers' SDPA path then repeats the key/value heads, since
  ``use_gqa_in_sdpa`` needs no mask) or ``none`` (every prompt the same length, no mask);
- ``attn``: the attention implementation of the model (``sdpa``, ``eager``, ``flex_attention``, or
  ``grouped_sdpa``: the project's ``harness/fastdecode.py``, SDPA without the key/value copy);
- ``cache``: ``dynamic`` (transformers' default, grown by concatenation each step), ``growing``
  (``harness/fastdecode.py``: a preallocated buffer, attention sees the filled part) or ``static``
  (preallocated to the full length, attention sees all of it) or ``graphs`` (what ``[grpo] fast_decoding``
  installs on a GPU: grouped SDPA, a cache preallocated for the whole call (prompt + new tokens),
  and each decoding step replayed as a CUDA graph, ``harness/decodegraph.py``; on CPU the same
  bucketed steps without graphs);
- ``lora``: ``peft`` (a LoRA on the [train] target modules, unmerged, as TRL samples with the
  training model) or ``none`` (a plain model, as ``merged_generation`` samples);
- ``sampling``: ``trl`` (do_sample, temperature 1, min_p 0.1, top_k 0: the [grpo] defaults) or
  ``greedy``;
- ``engine``: ``generate`` (``model.generate`` on a padded batch, TRL's default path) or ``paged``
  (``model.generate_batch``: transformers' continuous batching with a paged cache and no padding,
  TRL's ``use_transformers_paged``; it warns that min-p "might not be supported").

Each row generates ``--new-tokens`` tokens for ``--batch`` prompts after one short warm-up call,
with ``min_new_tokens`` = ``max_new_tokens`` so every row decodes the same number of steps, and
records milliseconds per decoding step, generated tokens/s and peak memory. Rows that fail (an
attention implementation the machine lacks) record the error and the run goes on.

    python benchmarks/gpu_decode_probe.py --tag h200 --out benchmarks/results/h200     # CUDA, ~3-5 min
    python benchmarks/gpu_decode_probe.py --tiny --batches 4 --new-tokens 8             # CPU plumbing check

Writes ``<out>/gpu_decode_probe[_<tag>].json`` with the machine and versions. Not measured here:
GRPO itself (``gpu_grpo_breakdown.py``), vLLM (not installable on the machines here).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_train_throughput import QWEN3_4B, TINY, make_model_dir  # noqa: E402

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # the [train] default


def prompts(batch: int, padding: str, vocab: int, pad_id: int, seed: int = 0):
    """``input_ids`` and ``attention_mask`` of ``batch`` prompts of 60-96 tokens (``none``: all 96)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    lengths = [96] * batch if padding == "none" else torch.randint(60, 97, (batch,), generator=g).tolist()
    width = max(lengths)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, width), dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, width - n:] = torch.randint(3, vocab, (n,), generator=g)
        mask[i, width - n:] = 1
    return ids, mask


def sampling_kwargs(sampling: str) -> dict:
    if sampling == "greedy":
        return {"do_sample": False}
    return {"do_sample": True, "temperature": 1.0, "min_p": 0.1, "top_k": 0, "top_p": 1.0}


def load(model_dir: Path, attn: str, lora: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    impl = "sdpa" if attn == "grouped_sdpa" else attn
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation=impl).to(device)
    if attn == "grouped_sdpa":
        from harness import fastdecode

        fastdecode.use(model)
    if lora == "peft":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=32, lora_alpha=32, target_modules=TARGETS))
    return model.eval()


def _generate(model, ids, mask, new_tokens: int, kw: dict) -> int:
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens, **kw)
    return (out.shape[1] - ids.shape[1]) * ids.shape[0]


def _paged(model, ids, mask, new_tokens: int, kw: dict) -> int:
    from transformers import GenerationConfig

    prompts = [row[m.bool()].tolist() for row, m in zip(ids, mask)]  # no padding: the paged cache holds each as is
    config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, eos_token_id=None, **kw)
    out = model.generate_batch(prompts, generation_config=config, progress_bar=False)
    return sum(len(o.generated_tokens) for o in out.values())


def measure(model, ids, mask, new_tokens: int, sampling: str, device: str, pad_id: int, engine: str = "generate",
            cache: str = "dynamic") -> dict:
    import torch

    ids, mask = ids.to(device), mask.to(device)
    kw = dict(sampling_kwargs(sampling), pad_token_id=pad_id)
    if cache == "static":
        kw["cache_implementation"] = cache
    run = _paged if engine == "paged" else _generate
    if cache == "growing":
        from harness.fastdecode import growing_cache

        run = lambda *a: _generate(*a[:4], dict(a[4], past_key_values=growing_cache()))  # noqa: E731  a new one per call
    installed = None
    if cache == "graphs":  # the [grpo] fast_decoding path: preallocated cache, grouped SDPA, steps replayed as CUDA graphs
        from harness import fastdecode

        installed = fastdecode.install(model, graphs="auto" if device == "cuda" else "eager")
    try:
        row = _timed(run, model, ids, mask, new_tokens, kw, device)
    finally:
        if installed:
            installed.undo()
    if installed:
        row["graphed_steps"] = installed.graphed_steps
        row["bucketed_steps"] = installed.bucketed_steps
        row["not_graphed"] = sorted(installed.graph_skips)
    return row


def _timed(run, model, ids, mask, new_tokens: int, kw: dict, device: str) -> dict:
    import torch

    with torch.no_grad():
        run(model, ids, mask, 4, kw)  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        generated = run(model, ids, mask, new_tokens, kw)
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    row = {"seconds": round(seconds, 3), "ms_per_step": round(1000 * seconds / new_tokens, 2),
           "tokens_per_s": round(generated / seconds, 1), "generated_tokens": generated}
    if device == "cuda":
        row["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="32,256,512", help="comma-separated batch sizes")
    ap.add_argument("--new-tokens", type=int, default=128, help="decoding steps per row")
    ap.add_argument("--padding", default="left,none")
    ap.add_argument("--attn", default="sdpa,grouped_sdpa,flex_attention",
                    help="attention implementations (sdpa, grouped_sdpa, eager, flex_attention)")
    ap.add_argument("--cache", default="dynamic", help="dynamic, growing, graphs and/or static (generate rows only)")
    ap.add_argument("--lora", default="none,peft")
    ap.add_argument("--sampling", default="trl", help="trl and/or greedy")
    ap.add_argument("--engines", default="generate,paged", help="generate and/or paged (continuous batching)")
    ap.add_argument("--tiny", action="store_true", help="tiny Qwen3 on CPU: checks the plumbing")
    ap.add_argument("--model-dir", type=Path)
    ap.add_argument("--budget-s", type=float, default=0, help="skip the rows that would end after this (0: no limit)")
    ap.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)

    import torch

    from benchmarks.common import Budget, save

    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    shape = TINY if args.tiny else QWEN3_4B
    model_dir = args.model_dir or Path(tempfile.gettempdir()) / ("rk-tiny-random" if args.tiny else "rk-qwen3-4b-random")
    make_model_dir(model_dir, shape)
    name = "gpu_decode_probe" + ("_tiny" if args.tiny else "") + (f"_{args.tag}" if args.tag else "")
    split = lambda s: [x.strip() for x in s.split(",") if x.strip()]  # noqa: E731
    rows, budget = [], Budget(args.budget_s)
    payload = {"model": "tiny Qwen3" if args.tiny else "random Qwen3-4B-shaped", "device": device,
               "new_tokens": args.new_tokens, "rows": rows}
    for attn, lora in itertools.product(split(args.attn), split(args.lora)):
        try:
            model = load(model_dir, attn, lora, device)
        except Exception as exc:  # an implementation this machine lacks: say so, go on
            rows.append({"attn": attn, "lora": lora, "error": f"load: {type(exc).__name__}: {str(exc).splitlines()[0]}"})
            print(rows[-1], flush=True)
            continue
        combos = [(e, b, p, s, c) for e, b, p, s, c in itertools.product(
                      split(args.engines), map(int, split(args.batches)), split(args.padding), split(args.sampling),
                      split(args.cache))
                  if e == "generate" or (p == "left" and c == "dynamic")]  # paged: unpadded, its own cache
        for engine, batch, padding, sampling, cache in combos:
            row = {"engine": engine, "attn": attn, "lora": lora, "batch": batch,
                   "padding": padding if engine == "generate" else "none (paged)", "sampling": sampling,
                   "cache": cache if engine == "generate" else "paged"}
            if over := budget.over():
                rows.append(row | {"skipped": over})
                continue
            t = time.perf_counter()
            ids, mask = prompts(batch, padding, shape["vocab_size"], 2)
            try:
                row |= measure(model, ids, mask, args.new_tokens, sampling, device, 2, engine, cache)
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            budget.ran(time.perf_counter() - t)
            rows.append(row)
            print(row, flush=True)
            save(name, payload, out_dir=args.out)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    save(name, payload, out_dir=args.out)
    return payload


if __name__ == "__main__":
    main()
