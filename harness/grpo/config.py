"""The effective GRPO config: the spec's [grpo] table, then command-line overrides, checked.

:func:`resolve_config` applies overrides (named options and ``--set key=value``) through the
spec's typed builder, so wrong types, unknown keys and values out of range read as in a spec
file, every problem at once. :func:`loading_config` gives the model
settings as a ``TrainConfig``, the type the training backends load models from, and
:func:`base_model` says which base model a run uses. Not handled: loading models or data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from reasoning_kit.grpo_config import GRPOTrainConfig
from reasoning_kit.run_config import fill_name
from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from harness.train import config as train_config
from harness.train.config import _as_table

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

# [grpo] keys that load the model, as the [train] keys of the same name.
_LOADING = ("backend", "precision", "max_seq_length", "load_in_4bit", "lora_r", "lora_alpha", "lora_dropout",
            "target_modules", "gradient_checkpointing", "gpu_memory_utilization", "seed", "optim")


def resolve_config(base: GRPOTrainConfig, overrides: dict[str, Any] | None = None, *,
                   offline: bool = False, spec_name: str | None = None) -> GRPOTrainConfig:
    """``base`` (with the [grpo.offline] preset when ``offline``) and ``overrides`` applied, checked; GRPOError on problems.

    ``{name}`` in ``adapter`` (the preset's ``outputs/{name}-offline/adapter``) becomes ``spec_name``.
    """
    cfg = train_config.resolve_config(base, overrides, offline=offline, table_name="grpo", error=GRPOError)
    if spec_name and "{name}" in cfg.adapter:
        cfg = dataclasses.replace(cfg, adapter=fill_name(cfg.adapter, spec_name))
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
    from harness.models import source_name

    return source_name(name) if name else None  # an alias for an alias's cache directory


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
    return Path(fill_name(cfg.output_dir, spec.name)).expanduser()


def config_dict(cfg: GRPOTrainConfig) -> dict:
    """The config as plain JSON-ready data (the offline preset left out: it is already applied or unused)."""
    table = _as_table(cfg)
    table.pop("offline", None)
    return table
