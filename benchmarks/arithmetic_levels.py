"""Which arithmetic level suits GRPO: accuracy of the offline SFT adapter on each ``arithmetic-test`` level.

GRPO needs groups with some right and some wrong completions, so the default level should
give the SFT adapter roughly 15-40 % accuracy. This trains the spec's ``--offline`` preset
(SmolLM2-135M-Instruct, LoRA on GSM8K train; ``--set dataset=arithmetic`` trains on the
arithmetic task instead) unless ``--adapter`` is given, then runs
``harness.evaluate.run.evaluate`` (greedy, the spec's prompt) for the base model and the
adapter on the first N problems of ``arithmetic-test:1``, ``:2`` and ``:3``.

Writes the run directories under ``benchmarks/results/arithmetic_levels_<tag>/`` and the
figures with machine, versions and the command in ``benchmarks/results/arithmetic_levels_<tag>.json``.

    python benchmarks/arithmetic_levels.py --tag h200 --device cuda --batch-size 64
    python benchmarks/arithmetic_levels.py --tag h200-adapter --device cuda --batch-size 64 --adapter outputs/x/adapter
    python benchmarks/arithmetic_levels.py --tag smoke --n 4 --max-new-tokens 16 --set max_steps=2 --set dataset_limit=16
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, save  # noqa: E402
from benchmarks.quality import train_adapter  # noqa: E402

HEADLINE = ("format_compliance", "accuracy", "accuracy_compliant", "extractable_rate")


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", required=True, help="names the results: arithmetic_levels_<tag>.json and _<tag>/")
    ap.add_argument("--spec", default="working_out")
    ap.add_argument("--n", type=int, default=300, help="problems per level (the first N of arithmetic-test:LEVEL)")
    ap.add_argument("--levels", default="1,2,3", help="comma-separated levels to evaluate")
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--model", default=None, help="base model (default: the spec's offline model)")
    ap.add_argument("--backend", default=None, help="training backend: auto, hf or unsloth (default: the preset's)")
    ap.add_argument("--no-offline", action="store_true", help="train with the spec's [train] table, not its offline preset")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [train] key (repeatable), e.g. --set dataset=arithmetic")
    ap.add_argument("--adapter", default=None, help="skip training and evaluate this adapter directory")
    ap.add_argument("--train-out", default=None, help="training output directory (default outputs/quality-<tag>)")
    ap.add_argument("--skip-base", action="store_true", help="evaluate only the adapter")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    from harness.evaluate.run import evaluate
    from reasoning_kit.spec import load_spec

    spec = load_spec(args.spec)
    model, adapter, train_metrics = train_adapter(spec, args)
    root = RESULTS / f"arithmetic_levels_{args.tag}"
    common = dict(limit=args.n, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, device=args.device)
    runs: dict[str, dict] = {}
    for level in [int(x) for x in args.levels.split(",")]:
        dataset = f"arithmetic-test:{level}"
        models = {} if args.skip_base else {"base": None}
        models["sft"] = adapter
        for name, adapter_dir in models.items():
            report = evaluate(spec, model, adapter=adapter_dir, dataset=dataset, out_dir=root / f"{name}_level{level}",
                              **common)
            m = report["metrics"]
            runs[f"{name}_level{level}"] = {k: m[k] for k in HEADLINE} | {
                "level": level, "model": name, "n": m["n"], "tokens_mean": m["length"]["tokens_mean"],
                "error_codes": m["error_codes"], "device": report["run"]["device"],
            }
            print(f"{name:5} level {level}: accuracy {m['accuracy']}, compliance {m['format_compliance']} (n {m['n']})")
    results = {
        "command": "python benchmarks/arithmetic_levels.py " + shlex.join(argv),
        "spec": spec.name,
        "base_model": model,
        "adapter": adapter,
        "problems_per_level": args.n,
        "decoding": f"greedy, max_new_tokens {args.max_new_tokens}",
        "goal": "the default level (2) gives the SFT adapter 15-40 % accuracy, so GRPO groups mix right and wrong",
        "runs": runs,
        "training": train_metrics,
    }
    save(f"arithmetic_levels_{args.tag}", results)
    return results


if __name__ == "__main__":
    main()
