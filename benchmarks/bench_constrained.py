"""Constrained (llguidance) vs unconstrained decoding on the same prompts: compliance, accuracy,
per-token time. Saves JSON under benchmarks/results/ (machine + versions).

    python -m benchmarks.bench_constrained --limit 12 --max-new-tokens 160            # CPU
    python -m benchmarks.bench_constrained --limit 200 --device cuda --batch-size 32  # one GPU
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import machine, versions


def run(args) -> dict:
    from harness.evaluate.run import evaluate

    out = {}
    for constrained in (False, True):
        tag = "constrained" if constrained else "free"
        t0 = time.perf_counter()
        report = evaluate(args.spec, args.model, dataset=args.dataset, limit=args.limit, batch_size=args.batch_size,
                          max_new_tokens=args.max_new_tokens, out_dir=Path(args.work) / tag, progress=False,
                          device=args.device, constrained=constrained)
        rows = [json.loads(line) for line in (Path(args.work) / tag / "outputs.jsonl").read_text().splitlines()]
        tokens = sum(r["n_tokens"] for r in rows)
        seconds = sum(r["seconds"] for r in rows)
        m = report["metrics"]
        out[tag] = {"format_compliance": m["format_compliance"], "accuracy": m["accuracy"], "tokens": tokens,
                    "generate_seconds": round(seconds, 3), "ms_per_token": round(1000 * seconds / max(tokens, 1), 3),
                    "wall_seconds": round(time.perf_counter() - t0, 3)}
    out["overhead_ms_per_token"] = round(out["constrained"]["ms_per_token"] - out["free"]["ms_per_token"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="working_out")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--dataset", default="gsm8k-test")
    p.add_argument("--limit", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--work", default="/tmp/bench_constrained")
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/constrained_<device>.json)")
    args = p.parse_args()
    result = {"settings": vars(args), "results": run(args), "machine": machine(), "versions": versions(("llguidance",))}
    device = args.device or "auto"
    path = Path(args.out or Path(__file__).parent / "results" / f"constrained_{device}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["results"], indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
