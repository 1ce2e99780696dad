"""GPU verification: ``reasoning-kit train --backend unsloth`` for real, recorded under benchmarks/results/.

Runs the CLI (in a subprocess, so unsloth is imported before transformers, as in real use):

- ``smollm2``: SmolLM2-135M-Instruct from its GGUF (converted once by harness.models) on a
  GSM8K-train subset with the [train] defaults (the seed recipe: batch 1, lr 2e-4, adamw_8bit,
  "unsloth" checkpointing, bf16) for ``--smol-steps`` steps, then base vs tuned on
  ``--eval-limit`` GSM8K-test prompts (format compliance, accuracy);
- ``smollm2-packed8``: the same with ``packing = true`` and 8 packed rows per step for 2 epochs
  of the subset (does the throughput setting still learn the format?);
- ``qwen3``: a randomly initialised Qwen3-4B-shaped model (Qwen3Config: hidden 2560,
  intermediate 9728, 36 layers, 32/8 heads, head_dim 128, vocab 151936, tied) with the
  SmolLM2 tokenizer saved next to it, so the real text pipeline runs; ``--qwen-steps`` steps.

Each run's metrics.json (loss curve, tokens/s, peak memory, device, versions), data summary
and before/after table go into ``<out>/gpu_verify_train.json`` (``--out``, else ``$OUT``, else
benchmarks/results/). The GGUF (98 MB) can be carried in parts and joined with ``--join-parts``:

    split -b 45m ~/.cache/reasoning-kit/gguf/SmolLM2-135M-Instruct.Q4_1.gguf .carry/smolA/part_   # here, then
    mkdir .carry/smolB && mv .carry/smolA/part_ab .carry/smolB/                                    # two carries
    python benchmarks/gpu_verify_train.py --join-parts '/tmp/rk/part_*' --gguf /tmp/rk/smollm2.gguf
    python benchmarks/gpu_verify_train.py --gguf /tmp/rk/smollm2.gguf --runs qwen3 --backend hf   # other variants
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.gpu_train_throughput import QWEN3_4B, TINY  # noqa: E402

RUNS = ("smollm2", "smollm2-packed8", "qwen3")


def join_parts(pattern: str, target: Path) -> Path:
    parts = sorted(glob.glob(pattern))
    if not parts:
        raise SystemExit(f"no files match {pattern}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, out)
    print(f"joined {len(parts)} parts into {target} ({target.stat().st_size} bytes)", flush=True)
    return target


def random_qwen_dir(path: Path, tokenizer_dir: Path, shape: dict) -> Path:
    """A random Qwen3 model of ``shape`` with the tokenizer of ``tokenizer_dir`` (vocab must fit)."""
    if (path / "config.json").is_file():
        return path
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    shape = dict(shape, vocab_size=max(shape["vocab_size"], len(tok)))
    config = Qwen3Config(**shape, bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    cuda = torch.cuda.is_available()
    with torch.device("cuda" if cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if cuda else torch.float32)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    del model
    return path


def run_cli(name: str, args: list[str], out: Path, env: dict, timeout: int) -> dict:
    cmd = [sys.executable, "-m", "harness.cli", "train", *args, "--output", str(out), "--overwrite", "--no-progress"]
    print(f"[{name}] {' '.join(cmd[2:])}", flush=True)
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"run": name, "command": cmd[3:], "error": f"timeout after {timeout} s"}
    res = {"run": name, "command": cmd[3:], "exit_code": proc.returncode, "wall_seconds": round(time.perf_counter() - t, 1)}
    res["stdout"] = proc.stdout.strip().splitlines()
    if proc.returncode != 0:
        res["log_tail"] = proc.stderr.strip().splitlines()[-30:]
        print(f"[{name}] failed: {res['log_tail'][-1] if res['log_tail'] else proc.returncode}", flush=True)
        return res
    for fname in ("metrics.json", "data_summary.json"):
        if (out / fname).is_file():
            res[fname.removesuffix(".json")] = json.loads((out / fname).read_text())
    if (out / "eval" / "before_after.md").is_file():
        res["before_after"] = (out / "eval" / "before_after.md").read_text()
        res["eval"] = {d: json.loads((out / "eval" / d / "report.json").read_text())["metrics"] for d in ("base", "tuned")}
    m = res.get("metrics", {})
    print(f"[{name}] {m.get('global_step')} steps, {m.get('trained_tokens_per_s')} tokens/s, "
          f"peak {m.get('peak_memory')}, {m.get('device')}", flush=True)
    if "before_after" in res:
        print(res["before_after"], flush=True)
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, help="SmolLM2-135M-Instruct.Q4_1.gguf (or where --join-parts writes it)")
    ap.add_argument("--join-parts", help="glob of split parts to join into --gguf first")
    ap.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated subset of {', '.join(RUNS)}")
    ap.add_argument("--backend", default="unsloth", choices=["unsloth", "hf", "auto"])
    ap.add_argument("--limit", type=int, default=2000, help="GSM8K-train rows for the smollm2 runs")
    ap.add_argument("--smol-steps", type=int, default=300)
    ap.add_argument("--eval-limit", type=int, default=100)
    ap.add_argument("--eval-batch-size", type=int, default=32)
    ap.add_argument("--eval-max-new-tokens", type=int, default=320)
    ap.add_argument("--qwen-steps", type=int, default=30)
    ap.add_argument("--tiny", action="store_true", help="tiny Qwen3 shape and few steps (CPU logic check)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "rk-verify")
    ap.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    ap.add_argument("--timeout", type=int, default=900, help="per run")
    args = ap.parse_args(argv)
    if args.join_parts:
        if not args.gguf:
            ap.error("--join-parts needs --gguf (the joined file)")
        join_parts(args.join_parts, args.gguf)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if any(r not in RUNS for r in runs):
        ap.error(f"unknown run in {args.runs} (known: {', '.join(RUNS)})")
    if not args.gguf or not args.gguf.is_file():
        ap.error("--gguf must name the SmolLM2 GGUF file (every run needs its tokenizer)")

    from benchmarks.common import save
    from harness import models

    env = dict(os.environ, REASONING_KIT_CACHE=str(args.workdir / "cache"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    os.environ["REASONING_KIT_CACHE"] = env["REASONING_KIT_CACHE"]
    smol_dir = models.convert_gguf(args.gguf)
    common = ["--spec", "working_out", "--backend", args.backend, "--dataset", "gsm8k",
              "--set", f"eval_batch_size={args.eval_batch_size}", "--set", f"eval_max_new_tokens={args.eval_max_new_tokens}"]
    results = []
    for run in runs:
        out = args.workdir / run
        if run == "smollm2":
            cli = common + ["--model", str(smol_dir), "--limit", str(args.limit), "--max-steps", str(args.smol_steps),
                            "--eval-limit", str(args.eval_limit)]
        elif run == "smollm2-packed8":
            cli = common + ["--model", str(smol_dir), "--limit", str(args.limit), "--set", "packing=true",
                            "--batch-size", "8", "--eval-limit", str(args.eval_limit)]
            if args.tiny:
                cli += ["--max-steps", str(args.smol_steps)]
        else:
            model_dir = random_qwen_dir(args.workdir / ("qwen3-tiny" if args.tiny else "qwen3-4b"), smol_dir,
                                        TINY if args.tiny else QWEN3_4B)
            cli = common + ["--model", str(model_dir), "--limit", "600", "--max-steps", str(args.qwen_steps), "--eval-limit", "0"]
        if args.tiny:  # CPU logic check: short sequences, no checkpointing
            cli += ["--set", "gradient_checkpointing=false", "--set", "max_seq_length=512"]
        results.append(run_cli(run, cli, out, env, args.timeout))
    payload = {"backend": args.backend, "gguf": args.gguf.name, "runs": results}
    name = "gpu_verify_train_tiny" if args.tiny else f"gpu_verify_train_{args.backend}_{'_'.join(runs)}"
    save(name.replace("-", "_"), payload, out_dir=args.out,
         extra_versions=("unsloth_zoo", "bitsandbytes"))
    return payload


if __name__ == "__main__":
    main()
