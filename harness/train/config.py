"""The effective training config: the spec's [train] table, the --offline preset, then overrides.

:func:`resolve_config` starts from ``spec.train``, puts the ``[train.offline]`` values over it
when ``offline`` is set, then applies command-line overrides (named options such as
``--lr`` and generic ``--set key=value``). Overrides go through the same typed builder as
the spec file (``reasoning_kit.schema.build``), so a wrong type, an unknown key or a value out
of range gives the same message as in a spec, every problem at once: the ranges are declared
once, with the keys. Not handled: loading the spec (``reasoning_kit.spec``), choosing a
backend (``backends``), or what only transformers can judge (optimizer names: the dry run of
the trainer arguments).
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from reasoning_kit.run_config import fill_name
from reasoning_kit.schema import LineFinder, Preset, build
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
        if isinstance(v, Preset):
            return {k: plain(x) for k, x in v.values}
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return list(v) if isinstance(v, tuple) else v

    return plain(cfg)


def apply_overrides(cfg, overrides: dict[str, Any], table_name: str = "train", error=TrainError):
    """``cfg`` (a [train] or [grpo] dataclass) with ``overrides`` applied through the spec's typed builder.

    Types, ranges and cross-key rules are checked exactly as in a spec file; ``error`` is raised
    once, naming every problem.
    """
    table = _as_table(cfg)
    hints = typing.get_type_hints(type(cfg))
    for key, value in overrides.items():
        head, _, sub = key.partition(".")
        if hints.get(sub if head == "offline" else key) is str and isinstance(value, (int, float)):
            value = str(value).lower() if isinstance(value, bool) else str(value)  # --set model=123
        if sub and head == "offline" and isinstance(table.get("offline"), dict):
            table["offline"][sub] = value
        else:
            table[key] = list(value) if isinstance(value, tuple) else value
    problems: list = []
    built = build(type(cfg), table, table_name, problems, LineFinder(None))
    if problems or built is None:
        raise error(invalid_options(table_name, problems))
    return built


def invalid_options(table_name: str, problems) -> str:
    """``invalid training option: train.lora_r: must be ...; ...``: how a bad [train] or [grpo] value is reported."""
    return f"invalid {'training' if table_name == 'train' else table_name} option: " + "; ".join(str(p) for p in problems)



def resolve_config(base, overrides: dict[str, Any] | None = None, *, offline: bool = False, table_name: str = "train",
                   error=TrainError):
    """``base``, its ``offline.*`` overrides, the offline preset, then the other overrides; checked.

    ``base`` is a [train] or [grpo] config. Raise ``error`` (one line) for unknown keys, wrong
    types, values out of range or broken cross-key rules.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = {k: v for k, v in overrides.items() if k.startswith("offline.")}
    plain = {k: v for k, v in overrides.items() if k not in preset}
    cfg = apply_overrides(base, preset, table_name, error) if preset else base
    if offline:
        cfg = cfg.with_offline()
    cfg = apply_overrides(cfg, plain, table_name, error)
    if wrong := tracking_problem(table_name, cfg.report_to):
        raise error(wrong)
    return cfg


def output_path(cfg: TrainConfig, spec: FormatSpec) -> Path:
    """``cfg.output_dir`` with ``{name}`` replaced by the spec's name."""
    return Path(fill_name(cfg.output_dir, spec.name)).expanduser()


def config_dict(cfg: TrainConfig) -> dict:
    """The config as plain JSON-ready data (the offline preset left out: it is already applied or unused)."""
    table = _as_table(cfg)
    table.pop("offline", None)
    return table
