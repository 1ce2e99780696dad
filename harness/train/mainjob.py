"""The main job: train, then evaluate the base and the tuned model and print the before/after table.

:func:`run_job` calls :func:`harness.train.run.train`; when training completed and
``cfg.eval_limit > 0`` (:func:`evaluates`, also the reason ``eval_dataset`` is read in the run's
checks, before the model loads and anything is written) it evaluates the base model and base + adapter with
``harness.evaluate.run.evaluate`` on ``cfg.eval_dataset`` (GSM8K-test prompts by default),
writing ``<output>/eval/base`` and ``<output>/eval/tuned``, and prints
``harness.evaluate.compare.compare_table`` of the two. The offline preset sets
``eval_limit``; the seed recipe (GPU) leaves it at 0. Not handled: a separate native-prompt
baseline (``reasoning-kit eval --prompt-style native`` does it).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from .run import TrainResult, train


def _echo(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluates(cfg, evaluate: bool = True) -> bool:
    """Whether a job evaluates on ``cfg.eval_dataset`` after a completed run: asked for, and ``eval_limit`` > 0.

    Decided once, before the run, so the lifecycle's checks read that dataset (``harness.lifecycle.check_eval_dataset``)
    exactly when the evaluation will. Shared by ``train`` and ``grpo``."""
    return evaluate and cfg.eval_limit > 0


def evaluate_runs(spec: FormatSpec, model: str, runs, out_root: Path, *, dataset: str, limit: int, batch_size: int,
                  max_new_tokens: int, progress: bool = True) -> str:
    """Evaluate ``model`` + each ``(label, adapter or None)`` of ``runs`` into ``out_root/label``.

    Returns the side-by-side Markdown table, also written to ``out_root/before_after.md``.
    Shared by ``train`` (base vs tuned) and ``grpo`` (start vs grpo).
    """
    from harness.evaluate.compare import compare_table
    from harness.evaluate.run import evaluate

    dirs = []
    for label, adapter in runs:
        out = Path(out_root) / label
        _echo(f"evaluating the {label} model on {limit} {dataset} prompts -> {out}")
        evaluate(spec, model, adapter=str(adapter) if adapter else None, dataset=dataset, limit=limit,
                 batch_size=batch_size, max_new_tokens=max_new_tokens, out_dir=out, progress=progress)
        dirs.append(out)
        gc.collect()
    table = compare_table(dirs)
    from harness.outputs import atomic_write

    atomic_write(Path(out_root) / "before_after.md", table)
    return table


def evaluate_before_after(spec: FormatSpec, cfg: TrainConfig, result: TrainResult, *, progress: bool = True) -> str:
    """Evaluate base and tuned on ``cfg.eval_dataset`` (``cfg.eval_limit`` prompts); return the Markdown table."""
    return evaluate_runs(
        spec, cfg.model, (("base", None), ("tuned", result.adapter_dir)), Path(result.output_dir) / "eval",
        dataset=cfg.eval_dataset, limit=cfg.eval_limit, batch_size=cfg.eval_batch_size,
        max_new_tokens=cfg.eval_max_new_tokens, progress=progress,
    )


def run_job(spec: FormatSpec, cfg: TrainConfig, *, overwrite: bool = False, resume: bool = False,
            progress: bool = True, evaluate: bool = True) -> tuple[TrainResult, str | None]:
    """Train; then, if it completed and ``cfg.eval_limit`` > 0, the before/after evaluation table."""
    after = evaluates(cfg, evaluate)
    result = train(spec, cfg, overwrite=overwrite, resume=resume, progress=progress, evaluates=after)
    if result.status != "completed" or not after or not result.metrics:  # metrics: main process only
        return result, None
    gc.collect()
    return result, evaluate_before_after(spec, cfg, result, progress=progress)
