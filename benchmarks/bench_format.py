"""Validator and reward-regex throughput vs the seed notebook's ``match_format`` regex.

    python benchmarks/bench_format.py [--n 10000] [--repeat 5] [--out benchmarks/results]

Inputs: ``--n`` realistic completions of 1-8k characters built from GSM8K worked
solutions (a fixed seed), in the working_out format, mixed valid and invalid (EOS,
trailing text, missing/duplicated/truncated blocks, text between blocks, bad answers),
plus 4 MB adversarial inputs. Implementations, on the same inputs:

- ``seed_match_format_search``: the notebook's ``match_format.search`` (the baseline: it
  only answers "does the format appear somewhere", without error codes);
- ``reward_regex_fullmatch``: this project's regex (``fullmatch``);
- ``validator``: this project's full validator (verdict, fields, error codes and spans).

Prints a table and saves ``benchmarks/results/format_throughput.json``. Goal: the full
validator is no slower than the baseline regex search on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.baselines import seed_match_format  # noqa: E402
from benchmarks.common import save  # noqa: E402
from reasoning_kit.regex import compile_reward_regex  # noqa: E402
from reasoning_kit.spec import load_spec  # noqa: E402
from reasoning_kit.validator import validate  # noqa: E402

GSM8K = Path(__file__).resolve().parent.parent / "harness" / "datasets" / "gsm8k" / "train.jsonl"
GSM8K_SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
ANNOTATION = re.compile(r"<<[^>]*>>")


def solutions() -> list[str]:
    path = GSM8K if GSM8K.exists() else GSM8K_SHARED
    rows = [json.loads(line) for line in path.read_text().splitlines()[:3000]]
    return [ANNOTATION.sub("", r["answer"].split("####")[0]).strip() for r in rows]


def realistic(spec, n: int, rng: random.Random) -> list[str]:
    """``n`` completions of 1-8k characters, about half valid."""
    r0, r1, s0, s1 = spec.tag_list
    eos = spec.eos[0]
    pool = solutions()
    out = []
    for i in range(n):
        target = rng.randint(1000, 8000)
        parts: list[str] = []
        while sum(map(len, parts)) < target:
            parts.append(rng.choice(pool))
        reasoning = "\n\n".join(parts)[:target]
        answer = str(rng.randint(0, 99999))
        if rng.random() < 0.3:
            answer = f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}"
        kind = rng.choice(
            ["valid", "valid_eos", "valid_start", "trailing", "missing_end", "duplicate",
             "truncated", "between", "words", "no_solution", "after_eos"]
        )
        start = r0 if kind == "valid_start" else ""
        body = f"{start}{reasoning}{r1}\n{s0}{answer}{s1}"
        text = {
            "valid": body,
            "valid_start": body,
            "valid_eos": body + eos,
            "trailing": body + "\n\nI hope this helps!",
            "missing_end": f"{reasoning}{s0}{answer}{s1}",
            "duplicate": body + f"{s0}{answer}{s1}",
            "truncated": f"{reasoning}{r1}\n{s0}{answer}"[: rng.randint(target // 2, target)],
            "between": f"{reasoning}{r1}\nSo the answer is:\n{s0}{answer}{s1}",
            "words": f"{reasoning}{r1}{s0}{answer} dollars{s1}",
            "no_solution": f"{reasoning}{r1}\nThe answer is {answer}.",
            "after_eos": body + eos + "\nUser: thanks",
        }[kind]
        out.append(text)
    return out


def adversarial(spec) -> dict[str, str]:
    r0, r1, s0, s1 = spec.tag_list
    return {
        "open reasoning tags (4 MB)": (r0 + r1[:-1]) * (4_000_000 // (len(r0) + len(r1))),
        "solution starts, never closed (4 MB)": f"t{r1}" + s0 * (4_000_000 // len(s0)),
        "reasoning ends and solution starts, never closed (1 MB)": (r1 + s0 + "1 ") * (1_000_000 // (len(r1) + len(s0) + 2)),
        "whitespace, no tags (4 MB)": "x" + " " * 4_000_000,
        "long number with bad commas (4 MB)": f"t{r1}{s0}" + "1," * 2_000_000 + "0",
    }


def implementations(spec):
    seed = seed_match_format(spec.tags.reasoning_end, spec.tags.solution_start, spec.tags.solution_end, spec.eos[0])
    ours = compile_reward_regex(spec)
    return {
        "seed_match_format_search": seed.search,
        "reward_regex_fullmatch": ours.fullmatch,
        "validator": lambda text: validate(spec, text),
    }


def time_all(func, texts: list[str], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for text in texts:
            func(text)
        runs.append(time.perf_counter() - t0)
    return runs


def _one_adversarial(name: str, impl: str, queue) -> None:
    spec = load_spec("working_out")
    text = adversarial(spec)[name]
    func = implementations(spec)[impl]
    t0 = time.perf_counter()
    func(text)
    queue.put(time.perf_counter() - t0)


def time_adversarial(name: str, impl: str, limit: float) -> float | None:
    """Seconds for one call in a child process, or None if it ran past ``limit`` (killed)."""
    queue = mp.get_context("fork").Queue()
    proc = mp.get_context("fork").Process(target=_one_adversarial, args=(name, impl, queue))
    proc.start()
    proc.join(limit)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return None
    return queue.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--adversarial-limit", type=float, default=60.0, help="seconds before a run is killed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    spec = load_spec("working_out")
    texts = realistic(spec, args.n, random.Random(3407))
    chars = sum(map(len, texts))
    valid = sum(validate(spec, t).valid for t in texts)
    impls = implementations(spec)
    seed_hits = sum(impls["seed_match_format_search"](t) is not None for t in texts)
    print(f"{len(texts)} completions, {chars / 1e6:.1f} M characters, {valid} valid by the spec, "
          f"{seed_hits} matched by the seed regex")

    realistic_results = {}
    for name, func in impls.items():
        runs = time_all(func, texts, args.repeat)
        best, median = min(runs), statistics.median(runs)
        realistic_results[name] = {
            "best_s": best, "median_s": median, "runs_s": runs,
            "us_per_completion": best / len(texts) * 1e6, "mb_per_s": chars / best / 1e6,
        }
    base = realistic_results["seed_match_format_search"]["best_s"]
    print(f"\n{'implementation':28} {'best s':>8} {'µs/completion':>14} {'MB/s':>8} {'vs seed':>8}")
    for name, r in realistic_results.items():
        r["ratio_to_seed"] = r["best_s"] / base
        print(f"{name:28} {r['best_s']:8.3f} {r['us_per_completion']:14.1f} {r['mb_per_s']:8.1f} {r['ratio_to_seed']:7.2f}x")

    adv_results: dict[str, dict[str, float | None]] = {}
    print(f"\nadversarial (seconds, one call; killed after {args.adversarial_limit:.0f} s)")
    for name in adversarial(spec):
        adv_results[name] = {}
        for impl in impls:
            seconds = time_adversarial(name, impl, args.adversarial_limit)
            adv_results[name][impl] = seconds
            shown = f"{seconds:.3f}" if seconds is not None else f">{args.adversarial_limit:.0f} (killed)"
            print(f"  {name:55} {impl:26} {shown}")

    ratio = realistic_results["validator"]["best_s"] / base
    verdict = "met" if ratio <= 1.0 else "missed"
    print(f"\ngoal (validator no slower than the seed regex search): {verdict}, ratio {ratio:.2f}")
    save(
        "format_throughput",
        {
            "command": "python benchmarks/bench_format.py " + " ".join(sys.argv[1:]),
            "inputs": {"completions": len(texts), "characters": chars, "valid_by_spec": valid,
                       "seed_regex_matches": seed_hits, "length_range": [1000, 8000]},
            "realistic": realistic_results,
            "adversarial_seconds": adv_results,
            "adversarial_limit_s": args.adversarial_limit,
            "goal_validator_vs_seed_ratio": ratio,
            "goal_met": ratio <= 1.0,
        },
        out_dir=args.out,
    )


if __name__ == "__main__":
    main()
