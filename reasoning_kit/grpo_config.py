"""The [grpo] table of a spec: GRPO settings whose defaults are the seed notebook's GRPO stage.

The seed notebook (Unsloth's Qwen3-4B GRPO notebook, whose first half the seed article
reproduces) continues the SFT model with TRL's ``GRPOTrainer``: num_generations 4, lr 5e-6,
temperature 1.0, min_p 0.1, top_p 1.0, seed 3407, max_prompt_length = the 90th-percentile
prompt length + 1 (longer prompts are dropped), max_completion_length = max_seq_length -
max_prompt_length, 100 steps, adamw_8bit, weight decay 0.001, warm-up ratio 0.1, linear
schedule, batch 1, gradient accumulation 1, logging every step, a checkpoint every 100 steps,
on ``open-r1/DAPO-Math-17k-Processed`` (config ``en``). The rewards are the spec's
``[rewards]`` table (``reasoning_kit.rewards.build``).

``per_device_train_batch_size`` counts *prompts*, as in the seed: Unsloth turns the seed's
batch 1 into one prompt x ``num_generations`` completions, and ``harness.grpo`` passes TRL
``per_device_train_batch_size x num_generations`` completions for every backend.

GRPO itself lives in ``harness.grpo``; this module only declares the settings (ranges are
checked at run time by ``harness.grpo.config.check``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from .schema import option
from .train_config import REPORT_TO, SEED_TARGET_MODULES


@dataclass(frozen=True, kw_only=True)
class GRPOTrainConfig:
    """GRPO settings (defaults: the seed notebook's GRPO stage)."""

    model: str = option(
        "",
        help="Base model: hub id, local directory, .gguf file or alias ('': the base model named in the adapter's "
        "adapter_config.json, else [train] model).",
    )
    adapter: str = option(
        "", help="SFT LoRA adapter directory to continue from (reasoning-kit train's <output>/adapter; '': a new LoRA)."
    )
    dataset: str = option(
        "open-r1/DAPO-Math-17k-Processed",
        help="Prompts with gold answers: hub id, .parquet/.jsonl/.csv path, or 'gsm8k' (never an evaluation split).",
    )
    dataset_split: str = option("", help="Split when `dataset` is a hub id ('': the known split, else train).")
    dataset_limit: int = option(0, help="Read only the first N source rows (0: all rows).")
    backend: Literal["auto", "unsloth", "hf"] = option(
        "auto", help="'unsloth' (its GRPO patches; HF generation without vLLM), 'hf' (TRL on CPU or GPU) or 'auto'."
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = option(
        "auto", help="'auto': bf16 where the GPU supports it, else fp16; fp32 on CPU."
    )
    max_seq_length: int = option(2048, help="Prompt + completion tokens (the seed's max_seq_length).")
    load_in_4bit: bool = option(False, help="Load the base model in 4 bit (CUDA only).")
    lora_r: int = option(32, help="LoRA rank of a new adapter (an --adapter keeps its own).")
    lora_alpha: int = option(64, help="LoRA alpha of a new adapter.")
    lora_dropout: float = option(0.0, help="LoRA dropout of a new adapter.")
    target_modules: tuple[str, ...] = option(SEED_TARGET_MODULES, help="Modules that get LoRA adapters (new adapter).")
    gradient_checkpointing: Literal["unsloth"] | bool = option(
        "unsloth", help="\"unsloth\" (offloaded; plain checkpointing on the hf backend), true or false."
    )
    gpu_memory_utilization: float = option(0.7, help="Unsloth fast_inference (vLLM) memory share; used only with vLLM.")
    num_generations: int = option(4, help="Completions sampled per prompt (the group of GRPO).")
    temperature: float = option(1.0, help="Sampling temperature.")
    min_p: float = option(0.1, help="Min-p sampling (0: off).")
    top_p: float = option(1.0, help="Top-p sampling.")
    top_k: int = option(0, help="Top-k sampling (0: off; the seed's vLLM top_k = -1).")
    max_prompt_length: int = option(
        0, help="Longest prompt in tokens; longer prompts are dropped (0: the 90th-percentile prompt length + 1, as the seed)."
    )
    max_completion_length: int = option(0, help="Completion tokens (0: max_seq_length - max_prompt_length, as the seed).")
    beta: float = option(0.0, help="KL coefficient (TRL's default 0: no reference model).")
    learning_rate: float = option(5e-6, help="Peak learning rate.")
    weight_decay: float = option(0.001, help="Weight decay.")
    warmup_ratio: float = option(0.1, help="Share of the steps with linear warm-up.")
    lr_scheduler_type: str = option("linear", help="Learning-rate schedule.")
    optim: str = option("adamw_8bit", help="Optimizer (adamw_8bit needs bitsandbytes and CUDA; adamw_torch elsewhere).")
    per_device_train_batch_size: int = option(1, help="Prompts per device per step (each gets num_generations completions).")
    gradient_accumulation_steps: int = option(1, help="Steps to accumulate before an optimizer update.")
    max_steps: int = option(100, help="Optimizer steps.")
    max_minutes: float = option(0.0, help="Stop at the first step boundary after this many minutes of training (0: no limit).")
    logging_steps: int = option(1, help="Log rewards every this many steps.")
    save_steps: int = option(100, help="Write a resumable checkpoint every N steps (0: only on Ctrl-C).")
    report_to: Literal[REPORT_TO] = option(
        "none", help="Experiment tracker for the reward and loss curves (tensorboard writes into the output directory)."
    )
    sample_every: int = option(10, help="Write the last step's completions to samples.jsonl every N steps (0: never).")
    seed: int = option(3407, help="Random seed.")
    output_dir: str = option("outputs/{name}-grpo", help="Where the adapter, curves and samples go ({name}: spec name).")
    eval_limit: int = option(0, help="After GRPO, evaluate the starting and the trained model on N prompts (0: skip).")
    eval_dataset: str = option("gsm8k-test", help="Dataset for the after-GRPO evaluation.")
    eval_max_new_tokens: int = option(512, help="Generation budget per prompt in the after-GRPO evaluation.")
    eval_batch_size: int = option(8, help="Prompts per generation batch in the after-GRPO evaluation.")


def grpo_keys() -> list[str]:
    """Names of the [grpo] keys, in declaration order."""
    return [f.name for f in dataclasses.fields(GRPOTrainConfig)]
