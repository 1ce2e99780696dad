"""Training throughput on a GPU: trained tokens/s, step time and peak VRAM, per recipe and backend.

The model is a randomly initialised Qwen3-4B-shaped causal LM (Qwen3Config: hidden 2560,
intermediate 9728, 36 layers, 32 heads, 8 KV heads, head_dim 128, vocab 151936, tied
embeddings; random weights train at the speed of real ones), saved once to a local directory.
Training examples are random token ids whose lengths are drawn from the committed length
distribution of the real training data (``benchmarks/results/train_lengths_gsm8k.json``, written
by ``bench_train_lengths.py``: GSM8K formatted with the working_out spec). Each row runs the
same code as ``reasoning-kit train`` (``harness.train.backends``: load, LoRA, TRL SFTTrainer) in
its own process (unsloth patches transformers globally, so rows must not share a process),
trains ``--warmup`` steps, then times ``--steps`` steps (CUDA-synchronised), and records
non-padding tokens per second, the median step time and the peak VRAM (allocated and reserved,
model weights included). A row is ``<recipe>-<backend>`` (backend ``unsloth`` or ``hf``); each
recipe is named after what it runs, on top of the [train] defaults (max_seq_length 2048,
``gradient_checkpointing = "unsloth"``: Unsloth's offloaded variant, plain checkpointing on hf):

- ``seed-as-written``: the seed's recipe as written: ``packing = false``, batch 1;
- ``default-packing-b1``: the [train] defaults unchanged (``packing = true``, batch 1 = one packed row);
- ``packing-b8`` / ``packing-b16``: ``packing = true`` and 8 or 16 packed rows of 2048 tokens per
  step (padding-free; examples never attend to each other);
- ``packing-b8-gc-true`` / ``-b10-`` / ``-b12-`` / ``packing-b16-gc-true``: 8, 10, 12 or 16 packed rows with ``gradient_checkpointing = true``
  (plain checkpointing: activations stay on the GPU);
- ``packing-b32``: 32 packed rows of 2048 tokens (Unsloth's offloaded checkpointing keeps the memory flat).

On the unsloth backend, packing rows run ``enable_packed_varlen`` (one flash varlen attention call per
layer; the row's ``notes`` say so); ``REASONING_KIT_UNSLOTH_VARLEN=0`` measures Unsloth's own choice.
``--profile`` profiles one extra step after the timed ones (kernel time, launches, top ops).

Results written before the rows were renamed call them ``seed`` (then the [train] defaults,
which did not pack yet: ``seed-as-written``), ``packed1`` (``default-packing-b1``), ``packed8``,
``packed16`` and ``packed8gc`` (``packing-b8-gc-true``).

One invocation runs the given rows (default: the first four recipes on both backends, 1-2 minutes
each on an H100; ``--rows`` and ``--tag`` split them over invocations) and writes
``<out>/gpu_train_throughput.json`` (``--out``, else ``$OUT``, else ``benchmarks/results/``):

    python benchmarks/gpu_train_throughput.py                  # all rows, needs CUDA (+ unsloth for *-unsloth rows)
    python benchmarks/gpu_train_throughput.py --rows seed-as-written-hf,packing-b8-hf --tag hf   # -> gpu_train_throughput_hf.json
    python benchmarks/gpu_train_throughput.py --tiny           # CPU: tiny model, hf rows only (tests the logic)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LENGTHS = ROOT / "benchmarks" / "results" / "train_lengths_gsm8k.json"
QWEN3_4B = dict(
    hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
    head_dim=128, vocab_size=151936, tie_word_embeddings=True, max_position_embeddings=40960, rope_theta=1000000.0,
    rms_norm_eps=1e-6,
)
TINY = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=16, vocab_size=512, tie_word_embeddings=True, max_position_embeddings=4096,
)
RECIPES = {  # [train] keys put over the defaults; each name says what its row runs (tests/test_gpu_bench_rows.py)
    "seed-as-written": {"packing": False, "per_device_train_batch_size": 1},
    "default-packing-b1": {},
    "packing-b8": {"packing": True, "per_device_train_batch_size": 8},
    "packing-b16": {"packing": True, "per_device_train_batch_size": 16},
    "packing-b8-gc-true": {"packing": True, "per_device_train_batch_size": 8, "gradient_checkpointing": True},
    "packing-b10-gc-true": {"packing": True, "per_device_train_batch_size": 10, "gradient_checkpointing": True},
    "packing-b12-gc-true": {"packing": True, "per_device_train_batch_size": 12, "gradient_checkpointing": True},
    "packing-b16-gc-true": {"packing": True, "per_device_train_batch_size": 16, "gradient_checkpointing": True},
    "packing-b32": {"packing": True, "per_device_train_batch_size": 32},
}
BACKENDS = ("unsloth", "hf")
ALL_ROWS = [f"{recipe}-{backend}" for recipe in ("seed-as-written", "default-packing-b1", "packing-b8", "packing-b8-gc-true")
            for backend in BACKENDS]
SPECIALS = ["<|endoftext|>", "<|im_end|>", "<|pad|>"]  # eos, spare, pad
MARK = "rk-random-model.json"


def make_tokenizer(vocab_size: int):
    """A word-level tokenizer covering every id (the rows feed token ids, so only eos/pad matter)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS)} | {f"t{i}": i for i in range(len(SPECIALS), vocab_size)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="t3"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=SPECIALS[0], pad_token=SPECIALS[2], unk_token="t3")


def make_model_dir(path: Path, shape: dict) -> Path:
    """Save a randomly initialised Qwen3 model of ``shape`` (bf16 on CUDA) and its tokenizer, once."""
    if (path / MARK).is_file() and json.loads((path / MARK).read_text()) == shape:
        return path
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    cuda = torch.cuda.is_available()
    config = Qwen3Config(**shape, bos_token_id=None, eos_token_id=0, pad_token_id=2)
    t = time.perf_counter()
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if cuda else torch.float32)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    make_tokenizer(shape["vocab_size"]).save_pretrained(path)
    (path / MARK).write_text(json.dumps(shape))
    print(f"saved a random {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B-parameter model to {path} "
          f"in {time.perf_counter() - t:.0f} s", flush=True)
    del model
    return path


def sample_lengths(path: Path, n: int, *, scale: float, seed: int) -> list[int]:
    lengths = json.loads(path.read_text())["results"]["lengths"]
    rng = random.Random(seed)
    return [max(8, int(rng.choice(lengths) * scale)) for _ in range(n)]


def profile_start():
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    prof = profile(activities=acts)
    prof.__enter__()
    return prof


def profile_stop(prof, wall: float, top: int = 25) -> dict:
    """Where one profiled step went: kernel time against wall time, kernel launches, the top ops by GPU and CPU time."""
    prof.__exit__(None, None, None)
    events = prof.key_averages()

    def device_us(e):
        return getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0) or 0

    from torch.autograd import DeviceType

    kernels_us = sum(device_us(e) for e in events if e.device_type == DeviceType.CUDA)  # kernels, not the ops above them
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC",
                                                       "cuLaunchKernelEx"))
    row = lambda e: {"op": e.key[:90], "calls": e.count, "self_gpu_ms": round(device_us(e) / 1e3, 2),  # noqa: E731
                     "self_cpu_ms": round(e.self_cpu_time_total / 1e3, 2)}
    return {
        "note": "one extra step after the timed ones, under torch.profiler (its own overhead included)",
        "step_wall_s": round(wall, 3),
        "gpu_kernel_s": round(kernels_us / 1e6, 3),
        "gpu_busy_fraction": round(kernels_us / 1e6 / wall, 3) if wall > 0 else None,
        "kernel_launches": launches,
        "top_gpu": [row(e) for e in sorted(events, key=device_us, reverse=True)[:top]],
        "top_cpu": [row(e) for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]],
    }


def run_row(row: str, args) -> dict:
    """Train one row in this process and measure it (called in a child process)."""
    import torch
    from transformers import TrainerCallback

    from harness.models import align_model_tokens
    from harness.train import backends
    from harness.audit.tokens import check_tokenizer
    from harness.train.config import resolve_config
    from reasoning_kit.spec import load_spec

    recipe, backend_name = row.rsplit("-", 1)
    spec = load_spec("working_out")
    overrides = dict(RECIPES[recipe], model=str(args.model_dir), backend=backend_name, max_steps=args.warmup + args.steps + bool(args.profile),
                     logging_steps=10_000, output_dir=tempfile.mkdtemp(prefix="rk-bench-"), dataset="unused")
    if args.tiny:
        overrides |= {"max_seq_length": 256, "gradient_checkpointing": False, "lora_r": 8, "lora_alpha": 16}
    cfg = resolve_config(spec.train, overrides)
    name, why = backends.choose(cfg.backend)
    backend = backends.get(name)

    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    class Timer(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[int, float, int]] = []
            self.profiler = None
            self.profile: dict | None = None

        def on_step_begin(self, a, state, control, **kw):
            if args.profile and state.global_step == args.warmup + args.steps:  # one extra step, after the timed ones
                sync()
                self.profiler = profile_start()
                self.t0 = time.perf_counter()

        def on_step_end(self, a, state, control, **kw):
            sync()
            if self.profiler is not None:
                self.profile = profile_stop(self.profiler, time.perf_counter() - self.t0)
                self.profiler = None
                return
            self.marks.append((state.global_step, time.perf_counter(), state.num_input_tokens_seen))

    notes: list[str] = []
    model, tok = backend.load_base(cfg, spec, notes)
    check_tokenizer(spec, tok)
    align_model_tokens(model, tok)
    model = backend.add_lora(cfg, model)
    per_step = cfg.per_device_train_batch_size * (cfg.max_seq_length if cfg.packing else 1)
    pool = sample_lengths(args.lengths, 20_000, scale=0.125 if args.tiny else 1.0, seed=0)
    need = int(per_step * (cfg.max_steps + 2) * 1.15) if cfg.packing else cfg.max_steps + 2
    lengths, total = [], 0
    while (total if cfg.packing else len(lengths)) < need:  # enough examples for every step (packing fills rows)
        lengths.append(pool[len(lengths) % len(pool)])
        total += lengths[-1]
    rng = random.Random(1)
    vocab = model.get_input_embeddings().weight.shape[0]
    from datasets import Dataset

    data = Dataset.from_dict({"input_ids": [[rng.randrange(len(SPECIALS), vocab) for _ in range(k)] for k in lengths]})
    timer = Timer()
    trainer = backend.make_trainer(cfg, model, tok, data, output_dir=cfg.output_dir, callbacks=[timer], progress=False,
                                   notes=notes)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    marks = timer.marks
    start = next(m for m in marks if m[0] == args.warmup)
    end = marks[-1]
    seconds = end[1] - start[1]
    tokens = end[2] - start[2]
    steps = [b[1] - a[1] for a, b in zip(marks, marks[1:]) if a[0] >= args.warmup]
    out = {
        "row": row,
        "recipe": RECIPES[recipe],
        "backend": name,
        "backend_reason": why,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "packing": cfg.packing,
        "max_seq_length": cfg.max_seq_length,
        "gradient_checkpointing": cfg.gradient_checkpointing,
        "optim": cfg.optim,
        "warmup_steps_skipped": args.warmup,
        "timed_steps": end[0] - start[0],
        "tokens_per_step": round(tokens / max(1, end[0] - start[0]), 1),
        "trained_tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
        "median_step_seconds": round(sorted(steps)[len(steps) // 2], 4) if steps else None,
        "notes": notes,
    }
    if timer.profile is not None:
        out["profile"] = timer.profile
    if cuda:
        out["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default=",".join(ALL_ROWS), help=f"comma-separated rows (default: {','.join(ALL_ROWS)})")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    ap.add_argument("--tiny", action="store_true", help="tiny model and lengths/8, CPU allowed: checks the logic")
    ap.add_argument("--model-dir", type=Path, help="where the random model is saved (default: $TMPDIR/rk-qwen3-4b-random)")
    ap.add_argument("--lengths", type=Path, default=LENGTHS)
    ap.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    ap.add_argument("--row-timeout", type=int, default=240)
    ap.add_argument("--tag", default="", help="suffix of the result file (to split rows over several invocations)")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="skip the rows that would end after this many seconds (0: no limit); the JSON says which")
    ap.add_argument("--profile", action="store_true",
                    help="profile one extra step after the timed ones (torch.profiler): kernel time, launches, top ops")
    ap.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row, print its JSON
    args = ap.parse_args(argv)
    default_dir = "rk-tiny-random" if args.tiny else "rk-qwen3-4b-random"
    args.model_dir = args.model_dir or Path(tempfile.gettempdir()) / default_dir
    if args.row:
        print("ROW-RESULT " + json.dumps(run_row(args.row, args)), flush=True)
        return {}

    import torch

    from benchmarks.common import Budget, save

    cuda = torch.cuda.is_available()
    make_model_dir(args.model_dir, TINY if args.tiny else QWEN3_4B)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r.rsplit("-", 1)[0] not in RECIPES or r.rsplit("-", 1)[-1] not in BACKENDS]
    if unknown:
        ap.error(f"unknown rows: {', '.join(unknown)}")
    results, budget = [], Budget(args.budget_s)
    payload = {
        "model": "tiny Qwen3" if args.tiny else "random Qwen3-4B-shaped",
        "shape": TINY if args.tiny else QWEN3_4B,
        "lengths_source": str(args.lengths.relative_to(ROOT) if args.lengths.is_relative_to(ROOT) else args.lengths),
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": results,
    }
    name = ("gpu_train_throughput_tiny" if args.tiny else "gpu_train_throughput") + (f"_{args.tag}" if args.tag else "")
    for row in rows:
        if over := budget.over():
            results.append({"row": row, "skipped": over})
            print(f"{row}: skipped (over --budget-s)", flush=True)
            continue
        if row.endswith("-unsloth") and not cuda:
            results.append({"row": row, "skipped": "unsloth needs CUDA"})
            print(f"{row}: skipped (no CUDA)", flush=True)
            continue
        cmd = [sys.executable, __file__, "--row", row, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--model-dir", str(args.model_dir), "--lengths", str(args.lengths)] + (["--tiny"] if args.tiny else []) \
            + (["--profile"] if args.profile else [])
        t = time.perf_counter()
        try:
            env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.row_timeout, cwd=ROOT, env=env)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ROW-RESULT ")), None)
            if line is None:
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
                res = {"row": row, "error": f"exit {proc.returncode}", "log_tail": tail}
            else:
                res = json.loads(line[len("ROW-RESULT "):])
        except subprocess.TimeoutExpired:
            res = {"row": row, "error": f"timeout after {args.row_timeout} s"}
        res["row_wall_seconds"] = round(time.perf_counter() - t, 1)
        budget.ran(res["row_wall_seconds"])
        results.append(res)
        if "error" in res:
            print(f"{row}: {res['error']}", flush=True)
        else:
            peak = f", peak {res.get('peak_reserved_gib')} GiB reserved" if cuda else ""
            print(f"{row}: {res['trained_tokens_per_s']} tokens/s, {res['median_step_seconds']} s/step, "
                  f"{res['tokens_per_step']} tokens/step{peak}", flush=True)
            if prof := res.get("profile"):
                print(f"  profiled step: {prof['step_wall_s']} s wall, {prof['gpu_kernel_s']} s of kernels "
                      f"({prof['gpu_busy_fraction']}), {prof['kernel_launches']} launches", flush=True)
                for e in prof["top_gpu"][:12]:
                    print(f"    gpu {e['self_gpu_ms']:>9} ms  cpu {e['self_cpu_ms']:>8} ms  x{e['calls']:<6} {e['op']}", flush=True)
                for e in prof["top_cpu"][:8]:
                    print(f"    cpu {e['self_cpu_ms']:>8} ms  x{e['calls']:<6} {e['op']}", flush=True)
        save(name, payload, out_dir=args.out, extra_versions=("unsloth_zoo", "bitsandbytes"))  # after every row
    save(name, payload, out_dir=args.out, extra_versions=("unsloth_zoo", "bitsandbytes"))
    return payload


if __name__ == "__main__":
    main()
