"""One GPU, with and without a launcher: does ``accelerate launch`` cost trained tokens/s?

Runs the same ``reasoning-kit train`` (the ``--offline`` preset on ``--model DIR``, no
before/after evaluation, ``max_steps`` = ``--steps``) plainly (``python -m harness.cli train``)
and under ``accelerate launch --num_processes 1 --config_file configs/accelerate/ddp.yaml``,
for the hf backend and, when it is importable with CUDA, unsloth. Each run is its own process;
the figure is ``trained_tokens_per_s_after_warmup`` from its ``metrics.json`` (non-padding tokens
over the Trainer's wall time after its first 5 steps; ``trained_tokens_per_s``, all steps, is kept
too), plus seconds per step and how the process ran (world size, accelerate's
distributed type). Plain and launched runs alternate (``--repeats`` pairs per backend) so a
drifting GPU clock hits both, after ``--warmup-runs`` untimed runs (the first run of a fresh machine
was up to 50 % slower: cold caches). The issue's bar: launched within 5 % of plain.

    python3 benchmarks/launch_overhead.py --model DIR --out benchmarks/results/h200

writes ``<out>/launch_overhead.json`` (machine and versions from ``benchmarks/common.py``).
About 30-60 s per run on an H200 (start-up and model load dominate); ``--budget-s`` (default
220) skips the runs that would not fit, saying so in the JSON. Not handled: several GPUs
(the scaling run is another issue), GRPO.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import save  # noqa: E402

DDP = ROOT / "configs" / "accelerate" / "ddp.yaml"
KEEP = ("status", "global_step", "trained_tokens_per_s", "trained_tokens_per_s_after_warmup", "warmup_steps",
        "seconds_per_step", "train_seconds", "wall_seconds",
        "tokens_this_session", "world_size", "launch", "distributed_type", "per_device_train_batch_size",
        "global_batch_size", "backend", "device", "peak_memory")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backends() -> list[str]:
    """hf always; unsloth when it is installed and CUDA is there (it refuses CPU)."""
    import torch

    found = ["hf"]
    if torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None:
        found.append("unsloth")
    return found


def command(mode: str, backend: str, model: str, steps: int, out: Path, extra: list[str]) -> list[str]:
    train = ["-m", "harness.cli", "train", "--spec", "working_out", "--offline", "--model", model, "--backend", backend,
             "--eval-limit", "0", "--output", str(out), "--no-progress", "--set", f"max_steps={steps}", *extra]
    if mode == "plain":
        return [sys.executable, *train]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(DDP), "--num_processes", "1",
            "--num_machines", "1", "--main_process_port", str(free_port()), *train]


def run(mode: str, backend: str, args, work: Path, index: int) -> dict:
    out = work / f"{backend}-{mode}-{index}"
    cmd = command(mode, backend, args.model, args.steps, out, args.set)
    env = os.environ | {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    print("$ " + " ".join(cmd), flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    row = {"backend": backend, "mode": mode, "command": " ".join(cmd[1:]), "exit": proc.returncode,
           "process_seconds": round(time.perf_counter() - started, 1)}
    if proc.returncode != 0:
        row["error"] = proc.stderr.strip().splitlines()[-5:]
        print(f"  failed (exit {proc.returncode}): {row['error'][-1] if row['error'] else ''}", flush=True)
        return row
    metrics = json.loads((out / "metrics.json").read_text())
    row |= {k: metrics.get(k) for k in KEEP}
    print(f"  {backend:8s} {mode:8s} {row['trained_tokens_per_s']} tokens/s "
          f"({row.get('trained_tokens_per_s_after_warmup')} after warm-up), {row['seconds_per_step']} s/step, "
          f"world {row['world_size']}, {row['distributed_type']}", flush=True)
    return row


def rate(row: dict) -> float | None:
    """Tokens/s after warm-up when the run recorded it (older runs: over all steps)."""
    return row.get("trained_tokens_per_s_after_warmup") or row.get("trained_tokens_per_s")


def summary(rows: list[dict]) -> dict:
    """Per backend: median tokens/s of each mode and launched / plain."""
    from statistics import median

    out = {}
    for backend in sorted({r["backend"] for r in rows}):
        tps = {mode: [rate(r) for r in rows if r["backend"] == backend and r["mode"] == mode and rate(r)
                      and not r.get("warmup_run")] for mode in ("plain", "launched")}
        if tps["plain"] and tps["launched"]:
            plain, launched = median(tps["plain"]), median(tps["launched"])
            ratio = launched / plain
            out[backend] = {"plain_tokens_per_s": plain, "launched_tokens_per_s": launched,
                            "launched_over_plain": round(ratio, 4), "within_5_percent": abs(ratio - 1) <= 0.05,
                            "runs": {m: len(v) for m, v in tps.items()}}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="local model directory (or alias) to train, as train --model")
    ap.add_argument("--out", type=Path, default=None, help="folder for launch_overhead.json (default benchmarks/results)")
    ap.add_argument("--steps", type=int, default=40, help="max_steps of each run")
    ap.add_argument("--repeats", type=int, default=1, help="plain/launched pairs per backend")
    ap.add_argument("--backends", default=None, help="comma-separated (default: hf, and unsloth when importable with CUDA)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more train --set overrides")
    ap.add_argument("--warmup-runs", type=int, default=1, help="untimed plain runs first (kept in the JSON, marked)")
    ap.add_argument("--budget-s", type=float, default=220, help="skip runs that would end after this many seconds")
    args = ap.parse_args(argv)
    args.set = [x for kv in args.set for x in ("--set", kv)]

    names = args.backends.split(",") if args.backends else backends()
    plan = [(backend, "plain", -1 - i) for backend in names for i in range(args.warmup_runs)]
    plan += [(backend, mode, i) for backend in names for i in range(args.repeats) for mode in ("plain", "launched")]
    rows, skipped, started, longest = [], [], time.perf_counter(), 0.0
    with tempfile.TemporaryDirectory(prefix="rk-launch-") as tmp:
        for backend, mode, i in plan:
            elapsed = time.perf_counter() - started
            if rows and elapsed + longest > args.budget_s:
                skipped.append(f"{backend} {mode} #{i}: over --budget-s {args.budget_s:g} ({elapsed:.0f} s used)")
                continue
            row = run(mode, backend, args, Path(tmp), i) | ({"warmup_run": True} if i < 0 else {})
            longest = max(longest, row["process_seconds"])
            rows.append(row)
    results = {"model": args.model, "steps": args.steps, "repeats": args.repeats, "warmup_runs": args.warmup_runs,
               "figure": "trained_tokens_per_s_after_warmup (else trained_tokens_per_s)", "config": str(DDP.relative_to(ROOT)),
               "summary": summary(rows), "rows": rows, "skipped": skipped,
               "total_seconds": round(time.perf_counter() - started, 1)}
    for backend, s in results["summary"].items():
        print(f"{backend}: plain {s['plain_tokens_per_s']} tokens/s, launched {s['launched_tokens_per_s']} tokens/s, "
              f"launched/plain {s['launched_over_plain']} ({'within' if s['within_5_percent'] else 'NOT within'} 5 %)")
    save("launch_overhead", results, out_dir=args.out)
    return results


if __name__ == "__main__":
    main()
