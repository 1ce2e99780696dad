"""Reward throughput on a GRPO-sized batch: reasoning-kit's rewards vs the seed notebook's.

    .venv/bin/python benchmarks/bench_rewards.py            # ~1 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_rewards.py --repeats 5 --mv-repeats 1   # quick look

One batch: 64 conversational completions (8 prompts x 8 generations, as GRPO samples them)
of 2,000-8,000 characters built from GSM8K-train solutions (reasoning) and gold answers, in
a realistic mix of valid and broken outputs (see KINDS). Timed per batch (median and p90 over repeats, each repeat on fresh string
objects and fresh reward objects, so no hash or validation cache carries over):

- ``ours_default``: ``rewards.build(spec)``, the four rewards the spec enables by default;
- ``ours_default_trl_logging``: the same, called as TRL's ``GRPOTrainer`` calls them, with
  ``log_metric`` and ``log_extra`` (so the per-error-code counts are logged: every invalid
  completion is diagnosed, as in training);
- ``ours_full``: every reward (format_exact, format_approx, answer, numbers, closeness, length);
- ``ours_full_math_verify``: the same with ``[answer] math_verify = true`` (worker process);
- ``seed_notebook``: the notebook's four functions (``benchmarks.baselines.SeedRewards``);
- ``open_r1_format``: open-r1's ``format_reward`` (``benchmarks.baselines``);
- ``validator_alone``: ``validator.validate`` on each completion (the floor under every reward);
- ``marker_scan_floor``: one regex pass finding every tag / EOS string in each completion
  (the least work a validator must do; for reference);
- ``math_verify_alone``: math-verify in-process on each whole completion, as open-r1's
  accuracy reward calls it (``parse`` the completion and the gold, then ``verify``).

Also saved: the per-kind mean total reward of ours and the notebook's, which shows the
notebook bugs (trailing lines and duplicate blocks still get format credit there).
No GRPO step time was measured on this machine (no GPU), so the figures are absolute
milliseconds per batch and ratios to the notebook. The implementations are timed
round-robin (one repeat of each in turn) so that load from other processes on a shared
machine hits them alike; the minimum is the least disturbed figure, the load average is saved.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.baselines import SeedRewards, open_r1_format_reward  # noqa: E402
from benchmarks.common import save  # noqa: E402
from reasoning_kit import answers, math_check, rewards  # noqa: E402
from reasoning_kit.reward_config import REWARD_NAMES  # noqa: E402
from reasoning_kit.spec import load_spec, parse_spec  # noqa: E402
from reasoning_kit.validator import validate  # noqa: E402

GSM8K = Path("/work/shared/data/gsm8k/train.jsonl")
PROMPTS, GENERATIONS = 8, 8  # 64 completions: 8 prompts x 8 generations (TRL's default num_generations)
# (kind, how many of the 64 completions)
KINDS = [
    ("valid_right", 26),
    ("valid_wrong", 10),
    ("valid_right_commas_or_spaces", 6),
    ("trailing_text", 6),
    ("truncated", 6),
    ("duplicate_block", 4),
    ("answer_not_a_number", 3),
    ("text_after_eos", 3),
]


def load_rows(path: Path) -> list[dict]:
    rows = []
    with path.open() as fh:
        for line in fh:
            r = json.loads(line)
            reasoning, _, gold = r["answer"].rpartition("####")
            rows.append({"question": r["question"], "reasoning": reasoning.strip(), "gold": gold.strip().replace(",", "")})
    return rows


def make_batch(spec, rows: list[dict], seed: int = 0) -> list[dict]:
    """PROMPTS groups of GENERATIONS completions (as GRPO samples them), kinds spread at random."""
    rng = random.Random(seed)
    R0, R1, S0, S1 = spec.tag_list
    eos = spec.eos[0]
    kinds = [kind for kind, count in KINDS for _ in range(count)]
    rng.shuffle(kinds)
    groups = rng.sample(rows, PROMPTS)
    batch = []
    for i, kind in enumerate(kinds):
        row = groups[i // GENERATIONS]
        target = rng.randint(2000, 8000)
        parts = [row["reasoning"]]
        while sum(map(len, parts)) < target:
            parts.append(rng.choice(rows)["reasoning"])
        reasoning = "\n\n".join(parts)[:target]
        gold = row["gold"]
        answer = gold
        if kind == "valid_wrong":
            answer = str(int(float(gold)) + rng.randint(1, 50))
        elif kind == "valid_right_commas_or_spaces":
            answer = f"{int(float(gold)):,}" if float(gold) >= 1000 else f" {gold} "
        elif kind == "answer_not_a_number":
            answer = f"{gold} dollars"
        body = f"{reasoning}{R1}{S0}{answer}{S1}"
        text = {
            "trailing_text": body + "\n\nI hope this helps! Let me know if you have questions.",
            "truncated": reasoning,
            "duplicate_block": body + f"{S0}{gold}{S1}",
            "text_after_eos": body + eos + "\nUser: and what about the next one?",
        }.get(kind, body + eos)
        batch.append({"kind": kind, "prompt": [{"role": "user", "content": row["question"]}], "text": text, "gold": gold})
    return batch


def fresh(batch: list[dict]) -> tuple[list, list, list]:
    """New string objects (no cached hashes) in TRL's conversational form."""
    completions = [[{"role": "assistant", "content": "".join(list(b["text"]))}] for b in batch]
    return [b["prompt"] for b in batch], completions, [b["gold"] for b in batch]


class Impl:
    """One implementation under test: ``run(funcs, prompts, completions, golds)`` -> per-function ms or None."""

    def __init__(self, run, setup=None):
        self.run, self.setup = run, setup
        self.times: list[float] = []
        self.per_func: dict[str, list[float]] = {}

    def once(self, batch: list[dict]) -> None:
        funcs = self.setup() if self.setup else None
        prompts, completions, golds = fresh(batch)
        gc.collect()  # every implementation starts from an empty nursery
        t0 = time.perf_counter()
        split = self.run(funcs, prompts, completions, golds)
        self.times.append((time.perf_counter() - t0) * 1000)
        for name, ms in (split or {}).items():
            self.per_func.setdefault(name, []).append(ms)

    def summary(self) -> dict:
        times = sorted(self.times)
        out = {
            "repeats": len(times),
            "median_ms": round(statistics.median(times), 3),
            "min_ms": round(times[0], 3),
            "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 3),
        }
        if self.per_func:
            out["per_function_median_ms"] = {k: round(statistics.median(v), 3) for k, v in self.per_func.items()}
        return out


def interleaved(impls: dict[str, Impl], batch: list[dict], repeats: int) -> dict[str, dict]:
    """Round-robin over the implementations, so load from other processes hits all alike."""
    for _ in range(repeats):
        for impl in impls.values():
            impl.once(batch)
    return {name: impl.summary() for name, impl in impls.items()}


def run_funcs(funcs, prompts, completions, golds, **trl_kwargs) -> dict:
    split = {}
    for f in funcs:
        t0 = time.perf_counter()
        f(prompts=prompts, completions=completions, answer=golds, **trl_kwargs)
        split[f.__name__] = (time.perf_counter() - t0) * 1000
    return split


def run_funcs_trl_logging(funcs, prompts, completions, golds) -> dict:
    """As TRL's GRPOTrainer calls reward functions: with its log_metric and log_extra callbacks."""
    return run_funcs(funcs, prompts, completions, golds, log_metric=lambda name, value: None,
                     log_extra=lambda column, values: None)


def totals(funcs, batch) -> dict[str, float]:
    prompts, completions, golds = fresh(batch)
    scores = [f(prompts=prompts, completions=completions, answer=golds) for f in funcs]
    by_kind: dict[str, list[float]] = {}
    for i, b in enumerate(batch):
        by_kind.setdefault(b["kind"], []).append(sum(s[i] for s in scores if s[i] is not None))
    return {k: round(statistics.mean(v), 3) for k, v in by_kind.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--mv-repeats", type=int, default=3, help="repeats for the math-verify rows (slow)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    spec = load_spec("working_out")
    text_mv = spec.text.replace('column = "answer"', 'column = "answer"\nmath_verify = true')
    spec_mv = parse_spec(text_mv, "working_out+math_verify")
    assert spec_mv.answer.math_verify
    batch = make_batch(spec, load_rows(GSM8K))
    # One regex pass finding every tag and EOS string: the least work any validator must do.
    markers = re.compile("|".join(re.escape(m) for m in sorted(spec.markers, key=len, reverse=True)))
    lengths = [len(b["text"]) for b in batch]
    R0, R1, S0, S1 = spec.tag_list
    seed = SeedRewards(R1, S0, S1, spec.eos[0])
    open_r1 = open_r1_format_reward(R0, R1, S0, S1)

    def seed_funcs():
        return SeedRewards(R1, S0, S1, spec.eos[0]).all()

    def mv_alone(_, prompts, completions, golds):
        from math_verify import parse, verify

        for c, g in zip(completions, golds):
            verify(parse(g), parse(c[0]["content"]))

    def ours(spec, names=None):
        def setup():
            answers._parse_str.cache_clear()  # no parsed number remembered from the previous repeat
            math_check._cache.clear()  # nor any math-verify comparison
            return rewards.build(spec, names)

        return setup

    math_check.verify("1", "1")  # start the worker outside the timings
    load_before = os.getloadavg()
    results = {
        "batch": {
            "completions": len(batch),
            "prompts_x_generations": [PROMPTS, GENERATIONS],
            "chars_min": min(lengths),
            "chars_median": int(statistics.median(lengths)),
            "chars_max": max(lengths),
            "chars_total": sum(lengths),
            "kinds": dict(KINDS),
            "form": "conversational",
            "source": "GSM8K train solutions (vendored), seed 0",
        },
        "timings": {
            **interleaved({
                "ours_default": Impl(run_funcs, ours(spec)),
                "ours_default_trl_logging": Impl(run_funcs_trl_logging, ours(spec)),
                "ours_full": Impl(run_funcs, ours(spec, REWARD_NAMES)),
                "validator_alone": Impl(lambda _, p, c, g: [validate(spec, x[0]["content"]) for x in c] and None),
                "marker_scan_floor": Impl(lambda _, p, c, g: [list(markers.finditer(x[0]["content"])) for x in c] and None),
                "seed_notebook": Impl(run_funcs, seed_funcs),
                "open_r1_format": Impl(lambda _, p, c, g: open_r1(c) and None),
            }, batch, args.repeats),
            **interleaved({
                "ours_full_math_verify": Impl(run_funcs, ours(spec_mv, REWARD_NAMES)),
                "math_verify_alone": Impl(mv_alone),
            }, batch, args.mv_repeats),
        },
        "mean_total_by_kind": {
            "ours_default": totals(rewards.build(spec), batch),
            "seed_notebook": totals(seed.all(), batch),
        },
        "math_verify_worker": dict(math_check.stats),
        "load_average_1_5_15min": {"before": [round(x, 2) for x in load_before],
                                   "after": [round(x, 2) for x in os.getloadavg()]},
        "step_time_note": (
            "No GRPO step time was measured here (CPU only); compare ms/batch with a measured GPU step "
            "time once one exists. Ratios below are to the seed notebook's four functions."
        ),
    }
    base = results["timings"]["seed_notebook"]
    results["ratio_to_seed_notebook"] = {
        k: {"median": round(v["median_ms"] / base["median_ms"], 3), "min": round(v["min_ms"] / base["min_ms"], 3)}
        for k, v in results["timings"].items()
    }

    print(f"batch: {len(batch)} completions, {min(lengths)}-{max(lengths)} chars (median {int(statistics.median(lengths))})")
    for name, t in results["timings"].items():
        ratio = results["ratio_to_seed_notebook"][name]
        print(f"{name:22s} median {t['median_ms']:8.2f} ms/batch (min {t['min_ms']:8.2f}, p90 {t['p90_ms']:8.2f})"
              f"  x{ratio['median']:.2f} of notebook (min: x{ratio['min']:.2f})")
        for f, ms in t.get("per_function_median_ms", {}).items():
            print(f"    {f:20s} {ms:8.2f} ms")
    print("mean total reward by kind (ours_default vs seed_notebook):")
    for kind, _ in KINDS:
        print(f"    {kind:30s} {results['mean_total_by_kind']['ours_default'][kind]:7.2f} "
              f"{results['mean_total_by_kind']['seed_notebook'][kind]:7.2f}")
    if not args.no_save:
        save("bench_rewards", results)


if __name__ == "__main__":
    main()
