"""Quality: SmolLM2-135M-Instruct before vs after SFT on the working_out spec, GSM8K test, greedy.

Trains with ``harness.train.run.train`` (the ``--offline`` preset of the spec unless
``--no-offline``: SmolLM2-135M-Instruct, LoRA, vendored GSM8K *train* split), then runs
``harness.evaluate.run.evaluate`` three times on the same first N GSM8K *test* problems
(never seen in training):

- ``base_native``: the base model with its own chat template and the spec's system prompt
  (the fair baseline; its accuracy is read leniently, the last number when no answer block);
- ``base_spec``: the base model with the spec's template and generation prompt;
- ``tuned``: the base model + the trained LoRA adapter, spec template (the goal: strict
  format compliance >= 98 %).

Writes the three run directories (outputs.jsonl = raw outputs, report.json/.md, chart.png),
``compare.md`` and ``compare.png`` under ``benchmarks/results/quality_<tag>/`` and the headline
figures with machine, versions, training metrics and the command in
``benchmarks/results/quality_<tag>.json``. Evaluation resumes where it stopped when re-run.

    python benchmarks/quality.py --tag cpu                                   # CPU, offline preset
    python benchmarks/quality.py --tag h100 --device cuda --batch-size 64    # H100, same preset
    python benchmarks/quality.py --tag h100-unsloth --device cuda --backend unsloth --batch-size 64
    python benchmarks/quality.py --tag smoke --n 4 --max-new-tokens 16 --set max_steps=2 --set dataset_limit=16
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, save  # noqa: E402

HEADLINE = ("format_compliance", "accuracy", "accuracy_compliant", "extractable_rate", "lenient_accuracy")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", required=True, help="names the results: quality_<tag>.json and quality_<tag>/")
    ap.add_argument("--spec", default="working_out")
    ap.add_argument("--n", type=int, default=200, help="GSM8K-test problems (the first N)")
    ap.add_argument("--max-new-tokens", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--model", default=None, help="base model (default: the spec's offline model, smollm2-135m-instruct)")
    ap.add_argument("--backend", default=None, help="training backend: auto, hf or unsloth (default: the preset's)")
    ap.add_argument("--no-offline", action="store_true", help="train with the spec's [train] table, not its offline preset")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [train] key (repeatable), e.g. --set max_steps=120")
    ap.add_argument("--adapter", default=None, help="skip training and evaluate this adapter directory")
    ap.add_argument("--train-out", default=None, help="training output directory (default outputs/quality-<tag>)")
    ap.add_argument("--skip-base", action="store_true", help="evaluate only the tuned model")
    return ap.parse_args(argv)


def train_adapter(spec, args) -> tuple[str, str, dict]:
    """(base model, adapter dir, training metrics), training unless --adapter is given."""
    from harness.train.config import parse_set, resolve_config

    overrides = parse_set(args.overrides)
    if args.model:
        overrides["model"] = args.model
    if args.backend:
        overrides["backend"] = args.backend
    overrides["output_dir"] = args.train_out or f"outputs/quality-{args.tag}"
    overrides.setdefault("eval_limit", 0)  # this script evaluates on its own
    cfg = resolve_config(spec.train, overrides, offline=not args.no_offline)
    if args.adapter:
        return cfg.model, args.adapter, {"adapter_given": args.adapter}
    from harness.train.run import train

    t0 = time.perf_counter()
    result = train(spec, cfg, overwrite=True)
    if result.status != "completed":
        raise SystemExit(f"training stopped early ({result.status}); rerun to finish")
    metrics = dict(result.metrics)
    metrics.pop("loss_curve", None)
    metrics["wall_seconds_script"] = round(time.perf_counter() - t0, 1)
    return cfg.model, str(result.adapter_dir), metrics


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from harness.evaluate.compare import compare_chart, compare_table
    from harness.evaluate.run import evaluate
    from reasoning_kit.spec import load_spec

    spec = load_spec(args.spec)
    model, adapter, train_metrics = train_adapter(spec, args)
    root = RESULTS / f"quality_{args.tag}"
    common = dict(dataset="gsm8k-test", limit=args.n, batch_size=args.batch_size,
                  max_new_tokens=args.max_new_tokens, device=args.device)
    runs = {}
    if not args.skip_base:
        runs["base_native"] = evaluate(spec, model, out_dir=root / "base_native", prompt_style="native", **common)
        runs["base_spec"] = evaluate(spec, model, out_dir=root / "base_spec", **common)
    runs["tuned"] = evaluate(spec, model, adapter=adapter, out_dir=root / "tuned", **common)
    dirs = [root / name for name in runs]
    table = compare_table(dirs)
    (root / "compare.md").write_text(table)
    compare_chart(dirs, root / "compare.png")
    print(table)
    tuned = runs["tuned"]["metrics"]
    results = {
        "command": "python benchmarks/quality.py " + shlex.join(argv),
        "spec": spec.name,
        "base_model": model,
        "adapter": adapter,
        "problems": args.n,
        "dataset": "gsm8k-test (first N; never used in training)",
        "decoding": f"greedy, max_new_tokens {args.max_new_tokens}, stop at EOS or after the solution end tag",
        "device": runs["tuned"]["run"]["device"],
        "runs": {name: {k: r["metrics"][k] for k in HEADLINE} | {
            "n": r["metrics"]["n"], "error_codes": r["metrics"]["error_codes"],
            "tokens_mean": r["metrics"]["length"]["tokens_mean"], "tokens_per_s": r["metrics"]["generation"]["tokens_per_s"],
            "dir": str((root / name).relative_to(RESULTS.parent.parent)),
        } for name, r in runs.items()},
        "goal": "tuned strict format compliance >= 0.98",
        "goal_met": (tuned["format_compliance"] or 0) >= 0.98,
        "training": train_metrics,
        "compare_table": table,
    }
    save(f"quality_{args.tag}", results)
    return results


if __name__ == "__main__":
    main()
