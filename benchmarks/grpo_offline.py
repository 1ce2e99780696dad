"""The offline GRPO main job on a GPU: `reasoning-kit grpo --offline`, timed, then GSM8K before/after.

Runs the documented command as a user would (a subprocess, so its wall time is the whole
command's: training the offline SFT adapter first when it is missing, GRPO on the generated
``arithmetic`` task, and the before/after table on ``arithmetic-test``), then evaluates the SFT
adapter and the GRPO adapter on the first N GSM8K-test prompts with the same code
(``harness.evaluate.run.evaluate``; strict format compliance is the SFT goal, >= 98 %).

Writes to ``--out``: the command's log, ``curves.png``, ``metrics.json`` (GRPO), the before/after
tables, and ``grpo_offline_<tag>.json`` with the headline figures, machine and versions.

    python benchmarks/grpo_offline.py --tag h200 --model /path/to/smollm2 --out benchmarks/results/h200
    python benchmarks/grpo_offline.py --tag smoke --model tests-tiny-model --set max_steps=2 --gsm8k 4   # plumbing
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, versions  # noqa: E402

HEADLINE = ("format_compliance", "accuracy", "n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--model", required=True, help="the offline base model (a local directory; the hub is unreachable)")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--gsm8k", type=int, default=200, help="GSM8K-test prompts for the SFT and GRPO adapters (0: skip)")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra --set for grpo (KEY=VALUE)")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = Path("outputs") / f"grpo-offline-{args.tag}"
    cmd = [sys.executable, "-m", "harness.cli", "grpo", "--offline", "--model", args.model, "--out", str(run_dir),
           "--overwrite", "--no-progress", *[x for s in args.sets for x in ("--set", s)]]
    print("$", " ".join(cmd), flush=True)
    started = time.perf_counter()
    with open(out / f"grpo_offline_{args.tag}.cmd.log", "w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log.write(proc.stdout)
    command_seconds = time.perf_counter() - started
    print(proc.stdout[-6000:], flush=True)
    if proc.returncode != 0:
        print(f"grpo --offline exited {proc.returncode}", file=sys.stderr)
        return proc.returncode

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for name in ("curves.png", "metrics.json"):
        shutil.copy(run_dir / name, out / f"grpo_offline_{args.tag}_{name}")
    table = (run_dir / "eval" / "before_after.md").read_text() if (run_dir / "eval" / "before_after.md").is_file() else ""
    arith = {label: _headline(run_dir / "eval" / label) for label in ("start", "grpo")}

    gsm8k = {}
    if args.gsm8k:
        from reasoning_kit.spec import load_spec

        from harness.evaluate.compare import compare_table
        from harness.evaluate.run import evaluate

        spec = load_spec("working_out")
        dirs = []
        for label, adapter in (("sft", metrics.get("adapter")), ("grpo", str(run_dir / "adapter"))):
            d = run_dir / "eval_gsm8k" / label
            evaluate(spec, args.model, adapter=adapter, dataset="gsm8k-test", limit=args.gsm8k, batch_size=64,
                     max_new_tokens=320, out_dir=d, progress=False)
            gsm8k[label] = _headline(d)
            dirs.append(d)
        gsm8k_table = compare_table(dirs)
        (out / f"grpo_offline_{args.tag}_gsm8k.md").write_text(gsm8k_table)
        print(gsm8k_table)
    (out / f"grpo_offline_{args.tag}_arithmetic.md").write_text(table)

    result = {
        "command": " ".join(cmd[1:]),
        "command_seconds": round(command_seconds, 1),
        "steps": metrics.get("global_step"),
        "seconds_per_step": metrics.get("seconds_per_step"),
        "timing": metrics.get("timing"),
        "reward_summary": metrics.get("reward_summary"),
        "arithmetic_test": arith,
        "arithmetic_accuracy_points": _delta(arith, "accuracy"),
        "gsm8k_test": gsm8k,
        "config": metrics.get("config"),
        "device": metrics.get("device"),
        "machine": machine(),
        "versions": versions(),
    }
    (out / f"grpo_offline_{args.tag}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("command_seconds", "steps", "seconds_per_step", "arithmetic_test",
                                             "arithmetic_accuracy_points", "gsm8k_test")}, indent=2))
    return 0


def _headline(run: Path) -> dict:
    report = json.loads((run / "report.json").read_text())["metrics"]
    return {k: report.get(k) for k in HEADLINE}


def _delta(pair: dict, key: str) -> float | None:
    a, b = (pair.get("start") or {}).get(key), (pair.get("grpo") or {}).get(key)
    return None if a is None or b is None else round(100 * (b - a), 1)


if __name__ == "__main__":
    raise SystemExit(main())
