"""Where a GRPO step goes on a GPU: generation, reward and update seconds, and completion tokens/s.

Runs ``reasoning-kit grpo`` as a user would (a subprocess per run: unsloth patches transformers
globally) on the randomly initialised Qwen3-4B-shaped model of ``gpu_train_throughput.py``
(built and saved once by its ``make_model_dir``), a new LoRA, GSM8K prompts (the vendored split;
the benchmark's word-level tokenizer makes them ~100-200 tokens), 8 prompts x 4 completions per
step and 512-token completions (random weights almost never sample EOS, so every completion runs
to the limit and rewards score invalid text). For each backend (``--backends``) it runs the
baseline and then each ``--variant`` (``KEY=VALUE`` [grpo] settings separated by spaces, e.g.
``"steps_per_generation=4"`` or ``"cache_implementation=static"``), and records the ``timing``
block of the run's ``metrics.json`` (every step) plus the same figures without the first step
(``steady``: compilation and allocator warm-up left out; only where each step is logged on its
own, so not with ``steps_per_generation`` > 1, whose ``timing`` then covers whole generation
rounds: such a variant runs at least 2 rounds). Not measured: vLLM (not installable here).

Writes ``<out>/gpu_grpo_breakdown[_<tag>].json`` (``--out``, else ``$OUT``, else
``benchmarks/results/``) and each run's console log next to it:

    python benchmarks/gpu_grpo_breakdown.py --tag h200 --variant "steps_per_generation=4" \\
        --variant "cache_implementation=static"     # needs CUDA (+ unsloth for the unsloth runs)
    python benchmarks/gpu_grpo_breakdown.py --tiny --backends hf   # CPU: tiny model, 2 steps (tests the plumbing)
"""

from __future__ import annotations

import argparse
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

from benchmarks.gpu_train_throughput import BACKENDS, QWEN3_4B, TINY, make_model_dir  # noqa: E402

PHASES = ("generation_s", "reward_s", "update_s")
# The [grpo] keys that decide generation speed, recorded from each run's metrics.json (defaults change over time).
CONFIG_KEYS = ("steps_per_generation", "merged_generation", "fast_decoding", "decode_graphs", "cache_implementation",
               "use_transformers_paged",
               "per_device_train_batch_size", "num_generations", "max_completion_length", "gradient_checkpointing")


def grpo_command(model_dir: Path, backend: str, out: Path, sets: list[str], args) -> list[str]:
    """The ``reasoning-kit grpo`` command line of one run."""
    base = [f"per_device_train_batch_size={args.prompts}", f"max_completion_length={args.completion_tokens}",
            "save_steps=0", "sample_every=0"]
    if args.tiny:
        base += ["optim=adamw_torch", "gradient_checkpointing=false", "lora_r=8", "lora_alpha=16"]
    k = _steps_per_generation(sets)
    steps = -(-max(args.steps, args.rounds * k) // k) * k  # whole generation rounds
    return [sys.executable, "-m", "harness.cli", "grpo", "--model", str(model_dir), "--dataset", "gsm8k",
            "--limit", str(args.limit), "--backend", backend, "--max-steps", str(steps), "--num-generations",
            str(args.generations), "--eval-limit", "0", "--out", str(out), "--overwrite", "--no-progress",
            *[x for s in base + args.sets + sets for x in ("--set", s)]]


def _steps_per_generation(sets: list[str]) -> int:
    values = [s.split("=", 1)[1] for s in sets if s.split("=", 1)[0].strip() == "steps_per_generation"]
    return max(1, int(values[-1])) if values else 1


def steady(curves: list[dict], steps_run: int, skip: int = 1) -> dict:
    """Per-step phase seconds and completion tokens/s over the logged steps after the first ``skip``.

    Only when every step has its own log entry: with ``steps_per_generation`` > 1 TRL logs the
    generating steps only and merges the others into them, so ``{}`` (use ``timing`` instead).
    """
    steps = [c for c in curves if "timing/generation_s" in c]
    if len(steps) != steps_run or len(steps) <= skip:
        return {}
    steps = steps[skip:]
    total = {k: sum(c[f"timing/{k}"] for c in steps) for k in PHASES + ("completion_tokens",)}
    step_time = sum(total[k] for k in PHASES)
    out = {"steps": len(steps)} | {f"{k}_per_step": round(total[k] / len(steps), 4) for k in PHASES}
    out["completion_tokens_per_s_of_step_time"] = round(total["completion_tokens"] / step_time, 1) if step_time else None
    out["completion_tokens_per_s_of_generation"] = (
        round(total["completion_tokens"] / total["generation_s"], 1) if total["generation_s"] else None)
    return out


def run_one(backend: str, sets: list[str], args, log_path: Path) -> dict:
    row = " ".join([backend, *sets])
    run_dir = Path(tempfile.mkdtemp(prefix="rk-grpo-bench-"))
    cmd = grpo_command(args.model_dir, backend, run_dir / "run", sets, args)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    print("$", " ".join(cmd[1:]), flush=True)
    started = time.perf_counter()
    res: dict = {"row": row, "backend": backend, "sets": sets, "command": " ".join(cmd[1:])}
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env,
                              timeout=args.run_timeout)
        log = proc.stdout
        metrics_path = run_dir / "run" / "metrics.json"
        if proc.returncode != 0 or not metrics_path.is_file():
            res["error"] = f"exit {proc.returncode}"
            res["log_tail"] = log.strip().splitlines()[-15:]
        else:
            m = json.loads(metrics_path.read_text())
            res |= {"timing": m.get("timing"), "steady": steady(m.get("curves") or [], m.get("global_step") or 0),
                    "seconds_per_step": m.get("seconds_per_step"), "steps": m.get("global_step"),
                    "peak_memory": m.get("peak_memory"), "device": m.get("device"), "backend_used": m.get("backend"),
                    "backend_reason": m.get("backend_reason"), "data": m.get("data"), "notes": m.get("notes"),
                    "decoding": {k: m.get(k) for k in ("merged_generation_syncs", "fast_decoding_calls",
                                                       "decode_graphed_steps", "decode_not_graphed")},
                    "config": {k: (m.get("config") or {}).get(k) for k in CONFIG_KEYS}}
    except subprocess.TimeoutExpired as e:
        log = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        res["error"] = f"timeout after {args.run_timeout} s"
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    res["run_wall_seconds"] = round(time.perf_counter() - started, 1)
    log_path.write_text(log)
    res["log"] = log_path.name
    return res


def _line(res: dict) -> str:
    if "error" in res:
        return f"{res['row']}: {res['error']}"
    t = res["timing"] or {}
    s = res["steady"] or t
    which = "after the first step" if res["steady"] else "all steps"
    return (f"{res['row']}: {res['seconds_per_step']} s/step; {which}: generation {s.get('generation_s_per_step')} s, "
            f"reward {s.get('reward_s_per_step')} s, update {s.get('update_s_per_step')} s per step; completion "
            f"tokens/s {s.get('completion_tokens_per_s_of_step_time')} of step time, "
            f"{s.get('completion_tokens_per_s_of_generation')} of generation (all steps: "
            f"{t.get('completion_tokens_per_s_of_step_time')} / {t.get('completion_tokens_per_s_of_generation')}); "
            f"peak {res['peak_memory']}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: unsloth, hf")
    ap.add_argument("--variant", dest="variants", action="append", default=[],
                    help='extra run per backend: space-separated KEY=VALUE [grpo] settings (repeatable)')
    ap.add_argument("--set", dest="sets", action="append", default=[], help="KEY=VALUE for every run (repeatable)")
    ap.add_argument("--no-baseline", action="store_true", help="run only the variants")
    ap.add_argument("--steps", type=int, help="GRPO steps per run (default 5; --tiny 2)")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per step")
    ap.add_argument("--generations", type=int, default=4, help="completions per prompt")
    ap.add_argument("--completion-tokens", type=int, help="max_completion_length (default 512; --tiny 16)")
    ap.add_argument("--limit", type=int, default=1000, help="GSM8K rows read")
    ap.add_argument("--tiny", action="store_true", help="tiny Qwen3, CPU allowed: checks the plumbing")
    ap.add_argument("--model-dir", type=Path, help="where the random model is saved (default: $TMPDIR/rk-qwen3-4b-random)")
    ap.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    ap.add_argument("--run-timeout", type=int, default=540, help="seconds per run")
    ap.add_argument("--rounds", type=int, default=2, help="least generation rounds of a steps_per_generation variant")
    ap.add_argument("--budget-s", type=float, default=0,
                    help="skip the runs that would end after this many seconds (0: no limit); the JSON says which")
    ap.add_argument("--tag", default="", help="suffix of the result file")
    args = ap.parse_args(argv)
    args.steps = args.steps or (2 if args.tiny else 5)
    args.completion_tokens = args.completion_tokens or (16 if args.tiny else 512)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if unknown := [b for b in backends if b not in BACKENDS]:
        ap.error(f"unknown backends: {', '.join(unknown)} (choose from {', '.join(BACKENDS)})")
    variants = ([] if args.no_baseline else [[]]) + [v.split() for v in args.variants]
    if bad := [s for v in variants for s in v + args.sets if "=" not in s]:
        ap.error(f"not KEY=VALUE: {', '.join(bad)}")
    args.model_dir = args.model_dir or Path(tempfile.gettempdir()) / ("rk-tiny-random" if args.tiny else "rk-qwen3-4b-random")

    import torch

    from benchmarks.common import RESULTS, Budget, save

    cuda = torch.cuda.is_available()
    name = ("gpu_grpo_breakdown_tiny" if args.tiny else "gpu_grpo_breakdown") + (f"_{args.tag}" if args.tag else "")
    out_dir = args.out or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    make_model_dir(args.model_dir, TINY if args.tiny else QWEN3_4B)
    results, budget = [], Budget(args.budget_s)
    payload = {
        "model": "tiny Qwen3" if args.tiny else "random Qwen3-4B-shaped",
        "shape": TINY if args.tiny else QWEN3_4B,
        "prompts_per_step": args.prompts,
        "completions_per_prompt": args.generations,
        "max_completion_length": args.completion_tokens,
        "sets_for_every_run": args.sets,
        "runs": results,
    }
    for backend in backends:
        for i, sets in enumerate(variants):
            row = " ".join([backend, *sets])
            if backend == "unsloth" and not cuda:
                res = {"row": row, "skipped": "unsloth needs CUDA"}
                print(f"{row}: skipped (no CUDA)", flush=True)
            elif over := budget.over():
                res = {"row": row, "skipped": over}
                print(f"{row}: skipped (over --budget-s)", flush=True)
            else:
                res = run_one(backend, sets, args, out_dir / f"{name}_{backend}_{i}.log")
                budget.ran(res["run_wall_seconds"])
                print(_line(res), flush=True)
            results.append(res)
            save(name, payload, out_dir=out_dir, extra_versions=("unsloth_zoo", "bitsandbytes"))  # after every run
    return payload


if __name__ == "__main__":
    main()
