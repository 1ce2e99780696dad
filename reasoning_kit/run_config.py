"""Keys shared by the [train] and [grpo] tables, declared once.

Both commands load a model, add or continue a LoRA adapter, run an optimizer for some steps
with a time budget, write an output directory and optionally evaluate before/after. Those
keys live here, with their type, range, default (the seed's SFT recipe) and help; ``TrainConfig``
(``train_config``) and ``GRPOTrainConfig`` (``grpo_config``) inherit them, and a table whose
default differs from the SFT one says so through :func:`table` instead of declaring the key
again. Not handled here: table-specific keys, and what the values do (``harness.train``,
``harness.grpo``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Literal

from .schema import option

SEED_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# What transformers' TrainingArguments.report_to accepts and TRL logs to (the tracker package must be installed).
TRACKERS = ("none", "tensorboard", "wandb", "trackio", "mlflow")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Model loading, LoRA, optimizer, schedule, outputs and evaluation: keys of [train] and [grpo]."""

    model: str = option(
        "unsloth/Qwen3-4B-Base",
        help="Base model: hub id, local model directory, .gguf file, or the alias 'smollm2-135m-instruct' "
        "(grpo: '' takes the base model named in the adapter, else [train] model).",
    )
    dataset: str = option(
        "unsloth/OpenMathReasoning-mini",
        help="Hub id, a .parquet/.jsonl/.csv path, 'gsm8k' (vendored train split) or 'arithmetic' (generated); "
        "never an evaluation split.",
    )
    dataset_split: str = option(
        "", help="Split to load when `dataset` is a hub id ('': the known split, cot for the seed's dataset, else train)."
    )
    dataset_limit: int = option(0, help="Read only the first N source rows (0: all rows).", ge=0)
    backend: Literal["auto", "unsloth", "hf"] = option(
        "auto", help="'unsloth', 'hf' (transformers + PEFT + TRL) or 'auto' (unsloth when CUDA and unsloth are available)."
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = option(
        "auto", help="'auto': bf16 where the GPU supports it, else fp16 (the seed); fp32 on CPU."
    )
    max_seq_length: int = option(
        2048, help="Maximum tokens per example (SFT drops examples longer than half, as the seed; GRPO: prompt + completion).",
        ge=8,
    )
    load_in_4bit: bool = option(False, help="Load the base model in 4 bit (QLoRA, CUDA only); the seed trains 16-bit LoRA.")
    lora_r: int = option(32, help="LoRA rank of a new adapter (also Unsloth's max_lora_rank; an existing adapter keeps its own).", ge=1,
                         le=65536)
    lora_alpha: int = option(64, help="LoRA alpha (the seed uses 2 x rank).", ge=1)
    lora_dropout: float = option(0.0, help="LoRA dropout.", ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = option(SEED_TARGET_MODULES, help="Modules that get LoRA adapters.")
    gradient_checkpointing: Literal["unsloth"] | bool = option(
        "unsloth", help="\"unsloth\" (Unsloth's offloaded checkpointing; plain checkpointing on the hf backend), true or false."
    )
    gpu_memory_utilization: float = option(
        0.7, help="Unsloth fast_inference (vLLM) memory share; used only when vLLM is installed.", gt=0.0, le=1.0
    )
    seed: int = option(3407, help="Random seed (LoRA init and data order; Unsloth's random_state).", ge=0)
    per_device_train_batch_size: int = option(
        1, help="Per device and step: examples for SFT (packed rows when `packing`); prompts for GRPO (each with "
        "num_generations completions).", ge=1,
    )
    gradient_accumulation_steps: int = option(1, help="Steps to accumulate before an optimizer update.", ge=1)
    max_steps: int = option(
        -1, help="Stop after this many optimizer steps (train: -1 uses num_train_epochs).", ge=1, also=(-1,)
    )
    max_minutes: float = option(
        0.0, help="Stop at the first step boundary after this many minutes of training (0: no time limit).", ge=0.0
    )
    learning_rate: float = option(2e-4, help="Peak learning rate.", gt=0.0)
    optim: str = option(
        "adamw_8bit", help="Optimizer name as transformers knows it (adamw_8bit needs bitsandbytes and CUDA; adamw_torch elsewhere)."
    )
    weight_decay: float = option(0.01, help="Weight decay.", ge=0.0)
    lr_scheduler_type: str = option("linear", help="Learning-rate schedule, as transformers names it.")
    logging_steps: int = option(5, help="Log every this many steps (one console line; every record in metrics.json).", ge=1)
    save_steps: int = option(0, help="Also write a resumable checkpoint every N steps (0: only on Ctrl-C).", ge=0)
    report_to: Literal[TRACKERS] = option(  # type: ignore[valid-type]
        "none", help="Experiment tracker the trainer logs to: " + ", ".join(TRACKERS) + " (its package must be installed; "
        "tensorboard writes event files under <output>/runs)."
    )
    output_dir: str = option("outputs/{name}", help="Where adapters, tokenizer and metrics go ({name}: the spec name).",
                             nonempty=True)
    eval_limit: int = option(0, help="After training, evaluate the starting and the tuned model on this many prompts (0: skip).", ge=0)
    eval_dataset: str = option("gsm8k-test", help="Dataset for the before/after evaluation; not the run's own training dataset (refused).")
    eval_max_new_tokens: int = option(512, help="Generation budget per prompt in the before/after evaluation.", ge=1)
    eval_batch_size: int = option(8, help="Prompts per generation batch in the before/after evaluation.", ge=1)

    def problems(self) -> list[tuple[str, str]]:
        """Cross-key rules shared by both tables."""
        out = []
        if not self.target_modules:
            out.append(("target_modules", "must name at least one module"))
        if problem := placeholder_problem(self.output_dir):
            out.append(("output_dir", problem))
        return out


_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def placeholder_problem(path: str) -> str | None:
    """Why ``path`` cannot be filled in: a ``{...}`` other than ``{name}`` (a typo would become a folder name)."""
    unknown = [m for m in _PLACEHOLDER.findall(path) if m != "{name}"]
    return f"unknown placeholder {unknown[0]} in {path!r} (the only one is {{name}}, the spec's name)" if unknown else None


def fill_name(path: str, name: str) -> str:
    """``path`` with ``{name}`` replaced by the spec's name."""
    return path.replace("{name}", name)


def table(ranges: dict[str, dict] | None = None, **defaults: Any):
    """Class decorator: a frozen config dataclass whose inherited keys take these defaults.

    The key stays declared once (type, help and range come from the base class); only the
    default differs, e.g. ``@table(learning_rate=5e-6)`` for GRPO, and ``ranges`` narrows a
    key's range for this table (``{"max_steps": {"ge": 1}}``).
    """

    def wrap(cls: type) -> type:
        base_fields = {f.name: f for base in cls.__mro__[1:] if dataclasses.is_dataclass(base)
                       for f in dataclasses.fields(base)}
        annotations = dict(cls.__dict__.get("__annotations__", {}))
        for name in {**defaults, **(ranges or {})}:
            if name not in base_fields:
                raise TypeError(f"{cls.__name__}: {name} is not an inherited key")
            f = base_fields[name]
            annotations[name] = f.type
            meta = dict(f.metadata)
            if ranges and name in ranges:
                meta = {k: v for k, v in meta.items() if k not in ("ge", "gt", "le", "lt", "also")} | ranges[name]
            setattr(cls, name, dataclasses.field(default=defaults.get(name, f.default), metadata=meta))
        cls.__annotations__ = annotations
        return dataclass(frozen=True, kw_only=True)(cls)

    return wrap
