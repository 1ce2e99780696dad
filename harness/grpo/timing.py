"""Where a GRPO step's seconds go: generation, reward computation, policy update.

:func:`instrument` wraps a live ``GRPOTrainer``'s ``_generate`` and ``_calculate_rewards``
(TRL 1.14.2 names; Unsloth's patched trainer keeps them) to time each call, synchronising
CUDA so asynchronous kernels are counted where they run; :class:`StepTiming` turns the wall
time of each optimizer step into ``timing/generation_s``, ``timing/reward_s``,
``timing/update_s`` and ``timing/completion_tokens`` (tokens generated in the step) in TRL's
per-step metrics, so they reach the log history, ``metrics.json`` and the console line.
With ``steps_per_generation`` > 1 one generation round serves several steps: its seconds
fall in the step that generated. Not handled: vLLM server mode (generation happens elsewhere).
"""

from __future__ import annotations

import functools
import time

from transformers import TrainerCallback


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTiming(TrainerCallback):
    """Accumulates the timed calls of one step and writes the breakdown into the trainer's metrics."""

    def __init__(self):
        self.trainer = None
        self.generation = self.reward = 0.0
        self.tokens = 0
        self.step_start: float | None = None
        self.totals = {"generation_s": 0.0, "reward_s": 0.0, "update_s": 0.0, "completion_tokens": 0, "steps": 0}

    def on_step_begin(self, args, state, control, **kwargs):
        self.step_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.step_start is None or self.trainer is None:
            return
        _sync()
        total = time.perf_counter() - self.step_start
        update = max(0.0, total - self.generation - self.reward)
        metrics = self.trainer._metrics["train"]
        for key, value in (("generation_s", self.generation), ("reward_s", self.reward), ("update_s", update),
                           ("completion_tokens", self.tokens)):
            metrics[f"timing/{key}"].append(value)
            self.totals[key] += value
        self.totals["steps"] += 1
        self.generation = self.reward = 0.0
        self.tokens = 0

    def summary(self) -> dict:
        """Seconds per step in each phase and completion tokens per second of step and of generation time."""
        t = self.totals
        steps = t["steps"]
        if not steps:
            return {}
        step_time = t["generation_s"] + t["reward_s"] + t["update_s"]
        return {
            "steps_timed": steps,
            "generation_s_per_step": round(t["generation_s"] / steps, 4),
            "reward_s_per_step": round(t["reward_s"] / steps, 4),
            "update_s_per_step": round(t["update_s"] / steps, 4),
            "completion_tokens": t["completion_tokens"],
            "completion_tokens_per_s_of_step_time": round(t["completion_tokens"] / step_time, 1) if step_time else None,
            "completion_tokens_per_s_of_generation": (
                round(t["completion_tokens"] / t["generation_s"], 1) if t["generation_s"] else None),
        }


def instrument(trainer) -> StepTiming:
    """Time ``trainer``'s generation and reward calls; returns the callback (already added to the trainer)."""
    timing = StepTiming()
    timing.trainer = trainer

    if hasattr(trainer, "_generate"):
        generate = trainer._generate

        @functools.wraps(generate)
        def timed_generate(*args, **kwargs):
            _sync()
            start = time.perf_counter()
            out = generate(*args, **kwargs)
            _sync()
            timing.generation += time.perf_counter() - start
            completion_ids = out[1] if isinstance(out, tuple) and len(out) > 1 else None
            if completion_ids is not None:
                timing.tokens += sum(len(ids) for ids in completion_ids)
            return out

        trainer._generate = timed_generate

    if hasattr(trainer, "_calculate_rewards"):
        rewards = trainer._calculate_rewards

        @functools.wraps(rewards)
        def timed_rewards(*args, **kwargs):
            start = time.perf_counter()
            out = rewards(*args, **kwargs)
            timing.reward += time.perf_counter() - start
            return out

        trainer._calculate_rewards = timed_rewards

    trainer.add_callback(timing)
    return timing
