"""The effective GRPO config: the spec's [grpo] table, then command-line overrides, checked.

:func:`resolve_config` applies overrides (named options and ``--set key=value``) through the
spec's typed builder, so wrong types and unknown keys read as in a spec file, then
:func:`check` lists every out-of-range value at once. :func:`loading_config` gives the model
settings as a ``TrainConfig``, the type the training backends load models from, and
:func:`base_model` says which base model a run uses. Not handled: loading models or data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from harness.tracking import problem as tracking_problem
from harness.train.config import _as_table, apply_overrides

from . import GRPOError

# CLI option name -> [grpo] key (the rest is reachable with --set key=value).
OPTION_KEYS = {
    "model": "model",
    "adapter": "adapter",
    "dataset": "dataset",
    "limit": "dataset_limit",
    "backend": "backend",
    "max_steps": "max_steps",
    "lr": "learning_rate",
    "num_generations": "num_generations",
    "output": "output_dir",
    "eval_limit": "eval_limit",
}

_POSITIVE = (
    "max_seq_length", "lora_r", "lora_alpha", "num_generations", "per_device_train_batch_size",
    "gradient_accumulation_steps", "logging_steps", "max_steps", "eval_max_new_tokens", "eval_batch_size",
)
_NON_NEGATIVE = (
    "dataset_limit", "max_prompt_length", "max_completion_length", "save_steps", "sample_every", "eval_limit",
    "weight_decay", "lora_dropout", "max_minutes", "beta", "top_k", "min_p", "temperature",
)
# [grpo] keys that load the model, as the [train] keys of the same name.
_LOADING = ("backend", "precision", "max_seq_length", "load_in_4bit", "lora_r", "lora_alpha", "lora_dropout",
            "target_modules", "gradient_checkpointing", "gpu_memory_utilization", "seed", "optim")


def resolve_config(base: GRPOTrainConfig, overrides: dict[str, Any] | None = None) -> GRPOTrainConfig:
    """``base`` with ``overrides`` (None values skipped) applied, then checked; GRPOError on problems."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    cfg = apply_overrides(base, overrides, "grpo", GRPOError) if overrides else base
    return check(cfg)


def check(cfg: GRPOTrainConfig) -> GRPOTrainConfig:
    """Reject values out of range, all at once; return ``cfg``."""
    problems = [f"grpo.{k} must be at least 1, got {getattr(cfg, k)}" for k in _POSITIVE if getattr(cfg, k) < 1]
    problems += [f"grpo.{k} must not be negative, got {getattr(cfg, k)}" for k in _NON_NEGATIVE if getattr(cfg, k) < 0]
    if cfg.num_generations == 1:
        problems.append("grpo.num_generations must be at least 2 (GRPO compares completions of the same prompt)")
    if cfg.learning_rate <= 0:
        problems.append(f"grpo.learning_rate must be positive, got {cfg.learning_rate}")
    if not 0 <= cfg.warmup_ratio < 1:
        problems.append(f"grpo.warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if not 0 < cfg.top_p <= 1:
        problems.append(f"grpo.top_p must be in (0, 1], got {cfg.top_p}")
    if cfg.min_p >= 1:
        problems.append(f"grpo.min_p must be below 1, got {cfg.min_p}")
    if cfg.max_prompt_length and cfg.max_prompt_length >= cfg.max_seq_length:
        problems.append(f"grpo.max_prompt_length ({cfg.max_prompt_length}) must be below max_seq_length ({cfg.max_seq_length})")
    if not cfg.target_modules:
        problems.append("grpo.target_modules must name at least one module")
    if not 0 < cfg.gpu_memory_utilization <= 1:
        problems.append(f"grpo.gpu_memory_utilization must be in (0, 1], got {cfg.gpu_memory_utilization}")
    problems += [p for p in [tracking_problem("grpo", cfg.report_to)] if p]
    if problems:
        raise GRPOError("invalid grpo option: " + "; ".join(problems))
    return cfg


def adapter_base(adapter: str | Path) -> str | None:
    """The base model named in ``adapter``'s adapter_config.json (None if it names none)."""
    path = Path(adapter).expanduser()
    config = path / "adapter_config.json"
    if not path.is_dir():
        raise GRPOError(f"adapter {adapter} is not a directory (give reasoning-kit train's <output>/adapter)")
    if not config.is_file():
        raise GRPOError(f"adapter {adapter} has no adapter_config.json: not a LoRA adapter directory")
    try:
        name = json.loads(config.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError) as exc:
        raise GRPOError(f"cannot read {config}: {exc}") from None
    return name or None


def base_model(cfg: GRPOTrainConfig, train: TrainConfig) -> str:
    """``cfg.model``, else the adapter's base model, else the [train] model."""
    if cfg.model:
        return cfg.model
    if cfg.adapter:
        name = adapter_base(cfg.adapter)
        if name:
            return name
    return train.model


def loading_config(cfg: GRPOTrainConfig, train: TrainConfig) -> TrainConfig:
    """The model-loading settings of ``cfg`` as a ``TrainConfig`` (what the backends read)."""
    values = {k: getattr(cfg, k) for k in _LOADING}
    return dataclasses.replace(train, model=base_model(cfg, train), packing=False, **values)


def output_path(cfg: GRPOTrainConfig, spec: FormatSpec) -> Path:
    return Path(cfg.output_dir.replace("{name}", spec.name)).expanduser()


def config_dict(cfg: GRPOTrainConfig) -> dict:
    return _as_table(cfg)
