"""Token lengths of the prepared training data: the committed input of gpu_train_throughput.py.

Prepares the vendored GSM8K train split with the working_out spec exactly as
``reasoning-kit train`` does (``harness.data.prepare.prepare_dataset``) and tokenizes it with
the offline model's tokenizer (SmolLM2-135M-Instruct: the Qwen3 tokenizer cannot be fetched
offline; both are byte-level BPEs of similar granularity on English + digits). Writes every
example's total length and its completion (assistant turn) length, with percentiles, to
``benchmarks/results/train_lengths_gsm8k.json``.

    .venv/bin/python benchmarks/bench_train_lengths.py [--model smollm2-135m-instruct] [--dataset gsm8k]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save  # noqa: E402


def percentiles(values: list[int]) -> dict:
    import numpy as np

    return {f"p{q}": int(np.percentile(values, q)) for q in (10, 50, 90, 99)} | {
        "min": int(min(values)), "max": int(max(values)), "mean": round(float(np.mean(values)), 1)
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--dataset", default="gsm8k")
    ap.add_argument("--spec", default="working_out")
    ap.add_argument("--max-seq-length", type=int, default=2048)
    ap.add_argument("--name", default="train_lengths_gsm8k")
    args = ap.parse_args(argv)

    from harness import models
    from harness.data.prepare import prepare_dataset
    from reasoning_kit.spec import load_spec
    from reasoning_kit.template import render

    spec = load_spec(args.spec)
    tok = models.load_tokenizer(args.model, spec)
    data = prepare_dataset(spec, args.dataset, tokenizer=tok, max_seq_length=args.max_seq_length)
    ds = data.dataset
    totals = list(ds["n_tokens"])
    prompts = [render(spec, m[:-1], add_generation_prompt=True, eos_token=tok.eos_token) for m in ds["messages"]]
    prompt_lens = [len(x) for x in tok(prompts, add_special_tokens=False)["input_ids"]]
    completions = [t - p for t, p in zip(totals, prompt_lens)]
    results = {
        "dataset": args.dataset,
        "spec": spec.name,
        "tokenizer": args.model,
        "examples": len(totals),
        "total_tokens": sum(totals),
        "total_length": percentiles(totals),
        "completion_length": percentiles(completions),
        "lengths": totals,
        "completion_lengths": completions,
        "data_summary": data.summary,
    }
    print(f"{len(totals)} examples, {sum(totals)} tokens; total length {results['total_length']}; "
          f"completion length {results['completion_length']}")
    save(args.name, results)
    return results


if __name__ == "__main__":
    main()
