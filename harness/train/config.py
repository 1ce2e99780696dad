"""The effective training config: the spec's [train] table, the --offline preset, then overrides.

:func:`resolve_config` starts from ``spec.train``, puts the ``[train.offline]`` values over it
when ``offline`` is set, then applies command-line overrides (named options such as
``--lr`` and generic ``--set key=value``). Overrides go through the same typed builder as
the spec file (``reasoning_kit.schema.build``), so a wrong type or an unknown key gives the
same message as in a spec; :func:`check` then rejects values out of range, listing every
problem at once. Not handled: loading the spec (``reasoning_kit.spec``) or choosing a
backend (``backends``).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from reasoning_kit.schema import LineFinder, build
from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from harness.tracking import problem as tracking_problem

from . import TrainError

# CLI option name -> [train] key (the rest is reachable with --set key=value).
OPTION_KEYS = {
    "model": "model",
    "dataset": "dataset",
    "limit": "dataset_limit",
    "backend": "backend",
    "max_steps": "max_steps",
    "epochs": "num_train_epochs",
    "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "output": "output_dir",
    "merge": "merge",
    "eval_limit": "eval_limit",
}

_POSITIVE = (
    "max_seq_length", "lora_r", "lora_alpha", "per_device_train_batch_size", "gradient_accumulation_steps",
    "logging_steps", "eval_max_new_tokens", "eval_batch_size",
)
_NON_NEGATIVE = (
    "warmup_steps", "dataset_limit", "save_steps", "eval_limit", "weight_decay", "lora_dropout", "max_minutes",
)


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML value (2e-4, true, ["q_proj"]) when it parses as one, else the text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``["lora_r=16", "offline.max_steps=10"]`` -> ``{"lora_r": 16, "offline.max_steps": 10}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TrainError(f"--set expects key=value, got {item!r}")
        out[key] = parse_value(value.strip())
    return out


def _as_table(cfg) -> dict:
    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return list(v) if isinstance(v, tuple) else v

    return plain(cfg)


def apply_overrides(cfg, overrides: dict[str, Any], table_name: str = "train", error=TrainError):
    """``cfg`` (a [train] or [grpo] dataclass) with ``overrides`` applied through the spec's typed builder."""
    table = _as_table(cfg)
    hints = typing.get_type_hints(type(cfg))
    for key, value in overrides.items():
        if hints.get(key) is str and isinstance(value, (int, float)):
            value = str(value).lower() if isinstance(value, bool) else str(value)  # --set model=123
        head, _, sub = key.partition(".")
        if sub and head == "offline" and isinstance(table.get("offline"), dict):
            table["offline"][sub] = value
        else:
            table[key] = list(value) if isinstance(value, tuple) else value
    problems: list = []
    built = build(type(cfg), table, table_name, problems, LineFinder(None))
    if problems or built is None:
        raise error(f"invalid {'training' if table_name == 'train' else table_name} option: " + "; ".join(str(p) for p in problems))
    return built



def resolve_config(base: TrainConfig, overrides: dict[str, Any] | None = None, *, offline: bool = False) -> TrainConfig:
    """``base``, its ``offline.*`` overrides, the offline preset, then the other overrides; checked.

    Raise TrainError (one line) for unknown keys, wrong types or values out of range.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = {k: v for k, v in overrides.items() if k.startswith("offline.")}
    plain = {k: v for k, v in overrides.items() if k not in preset}
    cfg = apply_overrides(base, preset) if preset else base
    if offline:
        cfg = cfg.with_offline()
    if plain:
        cfg = apply_overrides(cfg, plain)
    return check(cfg)


def check(cfg: TrainConfig) -> TrainConfig:
    """Reject values out of range, all at once; return ``cfg``."""
    problems = [f"train.{k} must be at least 1, got {getattr(cfg, k)}" for k in _POSITIVE if getattr(cfg, k) < 1]
    problems += [f"train.{k} must not be negative, got {getattr(cfg, k)}" for k in _NON_NEGATIVE if getattr(cfg, k) < 0]
    if cfg.learning_rate <= 0:
        problems.append(f"train.learning_rate must be positive, got {cfg.learning_rate}")
    if cfg.max_steps == 0 or cfg.max_steps < -1:
        problems.append(f"train.max_steps must be -1 (use num_train_epochs) or at least 1, got {cfg.max_steps}")
    if cfg.max_steps == -1 and cfg.num_train_epochs <= 0:
        problems.append(f"train.num_train_epochs must be positive, got {cfg.num_train_epochs}")
    if not cfg.target_modules:
        problems.append("train.target_modules must name at least one module")
    if not 0 < cfg.gpu_memory_utilization <= 1:
        problems.append(f"train.gpu_memory_utilization must be in (0, 1], got {cfg.gpu_memory_utilization}")
    problems += [p for p in [tracking_problem("train", cfg.report_to)] if p]
    if problems:
        raise TrainError("invalid training option: " + "; ".join(problems))
    return cfg


def output_path(cfg: TrainConfig, spec: FormatSpec) -> Path:
    """``cfg.output_dir`` with ``{name}`` replaced by the spec's name."""
    return Path(cfg.output_dir.replace("{name}", spec.name)).expanduser()


def config_dict(cfg: TrainConfig) -> dict:
    """The config as plain JSON-ready data (the offline preset left out: it is already applied or unused)."""
    table = _as_table(cfg)
    table.pop("offline", None)
    return table
