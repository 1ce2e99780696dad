"""Constrained (llguidance) vs unconstrained decoding on the same prompts: compliance, accuracy,
per-token time. Saves JSON under benchmarks/results/ (machine + versions).

    python -m benchmarks.bench_constrained --limit 12 --max-new-tokens 160            # CPU
    python -m benchmarks.bench_constrained --limit 200 --device cuda --batch-size 32  # one GPU
    python -m benchmarks.bench_constrained --adapter runs/sft/adapter ...              # a tuned model

``finish`` counts why outputs ended (eos / length); a constrained output always validates and
ends within ``--max-new-tokens``. ``ms_per_token`` is generate time over the tokens the rows kept
(rows that ended early still ride along in their batch, so it favours whichever run ends rows
at the same length); ``ms_per_step`` is generate time over decoding steps (each batch's longest
row), the fairer per-token cost of the logits processor.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from benchmarks.common import machine, versions


def summarize(metrics: dict, rows: list[dict], batch_size: int) -> dict:
    """Figures of one eval run from its report metrics and outputs.jsonl rows (in batch order)."""
    finish: dict[str, int] = {}
    for r in rows:
        finish[r["finish_reason"]] = finish.get(r["finish_reason"], 0) + 1
    tokens = sum(r["n_tokens"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    # a batch decodes as many steps as its longest row: time per step compares decoding cost fairly
    steps = sum(max(r["n_tokens"] for r in rows[i : i + batch_size]) for i in range(0, len(rows), batch_size))
    return {"format_compliance": metrics["format_compliance"], "accuracy": metrics["accuracy"], "tokens": tokens,
            "max_tokens": max(r["n_tokens"] for r in rows), "finish": dict(sorted(finish.items())),
            "generate_seconds": round(seconds, 3), "ms_per_token": round(1000 * seconds / max(tokens, 1), 3),
            "steps": steps, "ms_per_step": round(1000 * seconds / max(steps, 1), 3)}


def run(args) -> dict:
    from harness.evaluate.run import evaluate

    out = {}
    for constrained in (False, True):
        tag = "constrained" if constrained else "free"
        t0 = time.perf_counter()
        report = evaluate(args.spec, args.model, adapter=args.adapter, dataset=args.dataset, limit=args.limit,
                          batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                          out_dir=Path(args.work) / tag, progress=False, device=args.device, constrained=constrained)
        rows = [json.loads(line) for line in (Path(args.work) / tag / "outputs.jsonl").read_text().splitlines()]
        out[tag] = summarize(report["metrics"], rows, args.batch_size) | {
            "wall_seconds": round(time.perf_counter() - t0, 3)}
    out["overhead_ms_per_token"] = round(out["constrained"]["ms_per_token"] - out["free"]["ms_per_token"], 3)
    out["overhead_ms_per_step"] = round(out["constrained"]["ms_per_step"] - out["free"]["ms_per_step"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", default="working_out")
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--adapter", default=None, help="a LoRA adapter directory to evaluate on top of --model")
    p.add_argument("--dataset", default="gsm8k-test")
    p.add_argument("--limit", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=160)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--work", default="/tmp/bench_constrained")
    p.add_argument("--out", default=None, help="JSON path (default: benchmarks/results/constrained_<device>.json)")
    args = p.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = {"settings": vars(args), "results": run(args), "machine": machine(), "versions": versions(("llguidance",))}
    device = args.device or "auto"
    path = Path(args.out or Path(__file__).parent / "results" / f"constrained_{device}.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["results"], indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
