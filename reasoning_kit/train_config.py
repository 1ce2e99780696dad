"""The [train] table of a spec: SFT settings whose defaults are the seed recipe.

Every key has a help text; unknown keys are rejected by the spec loader. Command-line
options of ``reasoning-kit train`` override any key. Training itself lives in
``harness.train``; this module only declares the settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import option

SEED_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Supervised fine-tuning settings (defaults: the seed's Unsloth recipe)."""

    model: str = option("unsloth/Qwen3-4B-Base", help="Hub id, local model directory, or .gguf file to fine-tune.")
    dataset: str = option(
        "unsloth/OpenMathReasoning-mini", help="Hub id, a .parquet/.jsonl/.csv path, or 'gsm8k' (vendored train split)."
    )
    dataset_split: str = option("cot", help="Split to load when `dataset` is a hub id.")
    backend: str = option("auto", help="'unsloth', 'hf' or 'auto' (unsloth when CUDA and unsloth are available).")
    max_seq_length: int = option(2048, help="Maximum tokens per example; examples longer than half are dropped (seed).")
    load_in_4bit: bool = option(False, help="Load the base model in 4 bit (QLoRA); the seed trains 16-bit LoRA.")
    lora_r: int = option(32, help="LoRA rank.")
    lora_alpha: int = option(64, help="LoRA alpha (the seed uses 2 x rank).")
    lora_dropout: float = option(0.0, help="LoRA dropout.")
    target_modules: tuple[str, ...] = option(SEED_TARGET_MODULES, help="Modules that get LoRA adapters.")
    gradient_checkpointing: str = option('unsloth', help="'unsloth' (offloaded), 'true' or 'false'.")
    seed: int = option(3407, help="Random seed (LoRA init and data order).")
    per_device_train_batch_size: int = option(1, help="Examples per device per step.")
    gradient_accumulation_steps: int = option(1, help="Steps to accumulate before an optimizer update.")
    warmup_steps: int = option(5, help="Linear warm-up steps.")
    num_train_epochs: float = option(2.0, help="Epochs over the data (ignored when max_steps > 0).")
    max_steps: int = option(-1, help="Stop after this many optimizer steps (-1: use num_train_epochs).")
    learning_rate: float = option(2e-4, help="Peak learning rate.")
    optim: str = option("adamw_8bit", help="Optimizer name as transformers knows it (adamw_8bit needs bitsandbytes).")
    weight_decay: float = option(0.01, help="Weight decay.")
    lr_scheduler_type: str = option("linear", help="Learning-rate schedule.")
    logging_steps: int = option(5, help="Log the loss every this many steps.")
    output_dir: str = option("outputs/{name}", help="Where adapters, tokenizer and metrics go ({name}: the spec name).")
