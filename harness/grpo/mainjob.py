"""GRPO, then (``eval_limit`` > 0) evaluate the starting and the trained model and return the table.

The starting model is the base model with the SFT adapter GRPO began from (or the base model
alone); both are evaluated with ``harness.evaluate.run.evaluate`` on ``cfg.eval_dataset``
into ``<output>/eval/start`` and ``<output>/eval/grpo``, and ``eval/before_after.md`` holds
``harness.evaluate.compare.compare_table`` of the two. ``eval_dataset`` is read in the run's checks
(before an offline SFT run too), so a bad one is an error before anything loads or is written. Not handled: the native-prompt baseline.
"""

from __future__ import annotations

import gc
from pathlib import Path

from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.spec import FormatSpec

from harness.train.mainjob import _echo, evaluate_runs, evaluates

from .run import GRPOResult, grpo


def evaluate_before_after(spec: FormatSpec, cfg: GRPOTrainConfig, result: GRPOResult, *, progress: bool = True) -> str:
    return evaluate_runs(
        spec, result.model, (("start", result.start_adapter), ("grpo", result.adapter_dir)),
        Path(result.output_dir) / "eval", dataset=cfg.eval_dataset, limit=cfg.eval_limit,
        batch_size=cfg.eval_batch_size, max_new_tokens=cfg.eval_max_new_tokens, progress=progress,
    )


def run_grpo_job(spec: FormatSpec, cfg: GRPOTrainConfig, *, overwrite: bool = False, resume: bool = False,
                 progress: bool = True, sft=None) -> tuple[GRPOResult, str | None]:
    """GRPO, then the before/after table; ``sft`` (a [train] config) first trains the adapter GRPO starts from."""
    after = evaluates(cfg)
    if sft is not None:
        from dataclasses import replace

        from harness.lifecycle import check_run
        from harness.train.run import train

        from .run import GRPORecipe

        # GRPO's own checks first (without the adapter the SFT run is about to write): an error in a GRPO setting,
        # its output directory or the dataset of the evaluation after it comes before the SFT run writes anything
        check_run(GRPORecipe(spec, replace(cfg, adapter="")), overwrite=overwrite, resume=resume, evaluates=after)
        _echo(f"no SFT adapter at {cfg.adapter}: training it first (train --offline -> {sft.output_dir})")
        done = train(spec, sft, progress=progress)
        if done.status != "completed":
            return done, None
        gc.collect()
    result = grpo(spec, cfg, overwrite=overwrite, resume=resume, progress=progress, evaluates=after)
    if result.status != "completed" or not after or not result.metrics:  # metrics: main process only
        return result, None
    gc.collect()
    return result, evaluate_before_after(spec, cfg, result, progress=progress)
