"""The [grpo] table of a spec: GRPO settings whose defaults are the seed notebook's GRPO stage (but for
``steps_per_generation``: 4 here, measured; the notebook samples for every step, ``0``).

The seed notebook (Unsloth's Qwen3-4B GRPO notebook, whose first half the seed article
reproduces) continues the SFT model with TRL's ``GRPOTrainer``: num_generations 4, lr 5e-6,
temperature 1.0, min_p 0.1, top_p 1.0, seed 3407, max_prompt_length = the 90th-percentile
prompt length + 1 (longer prompts are dropped), max_completion_length = max_seq_length -
max_prompt_length, 100 steps, adamw_8bit, weight decay 0.001, warm-up ratio 0.1, linear
schedule, batch 1, gradient accumulation 1, logging every step, a checkpoint every 100 steps,
on ``open-r1/DAPO-Math-17k-Processed`` (config ``en``). The rewards are the spec's
``[rewards]`` table (``reasoning_kit.rewards.build``). The loss keys (``loss_type``,
``scale_rewards``, ``epsilon`` ...) default to TRL 1.14.2's ``GRPOConfig`` defaults, which the
notebook leaves alone.

``per_device_train_batch_size`` counts *prompts*, as in the seed: Unsloth turns the seed's
batch 1 into one prompt x ``num_generations`` completions, and ``harness.grpo`` passes TRL
``per_device_train_batch_size x num_generations`` completions for every backend.

The model, LoRA, optimizer, output and evaluation keys are [train]'s (``run_config.RunConfig``),
declared once; only their defaults differ here. ``[grpo.offline]`` is the ``grpo --offline``
preset. GRPO itself lives in ``harness.grpo``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from .run_config import RunConfig, placeholder_problem, table
from .schema import Preset, option

__all__ = ["GRPOTrainConfig", "OFFLINE", "grpo_keys"]

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")

# The `grpo --offline` preset: (key, value, why). GRPO on the generated arithmetic task with the
# offline SFT adapter (docs/grpo.md#offline).
_OFFLINE = (
    ("model", "", "The adapter's base model (SmolLM2-135M-Instruct)."),
    ("adapter", "outputs/{name}-offline/adapter", "The `train --offline` adapter; trained first when missing."),
    ("dataset", "arithmetic", "A task within the offline model's reach (on GSM8K its groups are all wrong: no signal)."),
    ("dataset_limit", 0, ""),
    ("backend", "hf", "transformers + PEFT + TRL on CPU or GPU (the backend the measured run used)."),
    ("precision", "fp32", "bf16 sampling hit NaN probabilities (a CUDA assert) twice on the H200; fp32 ran clean."),
    ("optim", "adamw_torch", "adamw_8bit needs CUDA."),
    ("gradient_checkpointing", False, "A 135M model."),
    ("num_generations", 8, "More completions per prompt: fewer groups with zero reward variance."),
    ("per_device_train_batch_size", 8, "Prompts per step (64 completions)."),
    ("max_completion_length", 128, "Arithmetic working is short (30-50 tokens)."),
    ("max_prompt_length", 256, ""),
    ("max_seq_length", 512, ""),
    ("learning_rate", 5e-5, "A small model and few steps (1e-4 diverged in bf16; 5e-5 measured)."),
    ("max_steps", 120, ""),
    ("max_minutes", 5.5, "Keeps the whole command within 10 minutes on one H200 (76 steps at the seed's cadence; the "
     "defaults reach max_steps in 161 s)."),
    ("save_steps", 0, ""),
    ("sample_every", 20, ""),
    ("output_dir", "outputs/{name}-offline-grpo", ""),
    ("eval_limit", 300, "arithmetic-test items evaluated before/after."),
    ("eval_dataset", "arithmetic-test", "Held out from `arithmetic` by construction."),
    ("eval_max_new_tokens", 128, ""),
    ("eval_batch_size", 64, ""),
)
OFFLINE = Preset(tuple((k, v) for k, v, _ in _OFFLINE), tuple((k, n) for k, _, n in _OFFLINE if n))


@table(
    ranges={"max_steps": {"ge": 1}},
    model="",
    dataset="open-r1/DAPO-Math-17k-Processed",
    learning_rate=5e-6,
    weight_decay=0.001,
    max_steps=100,
    logging_steps=1,
    save_steps=0,  # the seed's 100 (= max_steps) only left a final checkpoint that duplicates the adapter; docs/grpo.md
    output_dir="outputs/{name}-grpo",
)
class GRPOTrainConfig(RunConfig):
    """GRPO settings (defaults: the seed notebook's GRPO stage)."""

    adapter: str = option(
        "", help="SFT LoRA adapter directory to continue from (reasoning-kit train's <output>/adapter; '': a new LoRA)."
    )
    num_generations: int = option(4, help="Completions sampled per prompt (the group of GRPO).", ge=2)
    temperature: float = option(1.0, help="Sampling temperature.", gt=0.0)
    min_p: float = option(0.1, help="Min-p sampling (0: off).", ge=0.0, lt=1.0)
    top_p: float = option(1.0, help="Top-p sampling.", gt=0.0, le=1.0)
    top_k: int = option(0, help="Top-k sampling (0: off; the seed's vLLM top_k = -1).", ge=0)
    max_prompt_length: int = option(
        0, help="Longest prompt in tokens; longer prompts are dropped (0: the 90th-percentile prompt length + 1, as the seed).",
        ge=0,
    )
    max_completion_length: int = option(
        0, help="Completion tokens (0: max_seq_length - max_prompt_length, as the seed).", ge=0
    )
    beta: float = option(0.0, help="KL coefficient (TRL's default 0: no reference model).", ge=0.0)
    loss_type: Literal[LOSS_TYPES] = option(  # type: ignore[valid-type]
        "dapo", help="Loss aggregation, as TRL names it: grpo (per-sequence mean, length-biased), dr_grpo (constant "
        "normaliser), dapo (tokens of the global batch; TRL's default), bnpo (tokens of the local batch), cispo, sapo, "
        "luspo (needs importance_sampling_level = 'sequence'), vespo."
    )
    scale_rewards: Literal["group", "batch", "none"] = option(
        "group", help="Divide advantages by the reward std of the group, of the batch, or not at all (Dr. GRPO: none)."
    )
    mask_truncated_completions: bool = option(
        False, help="Leave completions cut by max_completion_length out of the loss (DAPO)."
    )
    epsilon: float = option(0.2, help="Lower clipping range of the importance ratio.", gt=0.0)
    epsilon_high: float = option(0.0, help="Upper clipping range (0: same as epsilon; DAPO's clip-higher uses 0.28).", ge=0.0)
    num_iterations: int = option(1, help="Policy updates per generated batch (GRPO's mu).", ge=1)
    importance_sampling_level: Literal["token", "sequence"] = option(
        "token", help="Importance ratio per token, or one per sequence (GSPO)."
    )
    steps_per_generation: int = option(
        4, help="Training batches served by one generation round (TRL's unit: optimizer steps when "
        "gradient_accumulation_steps is 1; 0: gradient_accumulation_steps, the seed's on-policy cadence). Larger "
        "values generate for several steps at once in bigger, faster batches; TRL recomputes "
        "the sampling policy's log-probabilities, so the importance ratio accounts for the staleness. 4: the offline "
        "GRPO job learned as much as at the seed cadence in 3.3x less time per step "
        "(docs/grpo.md#the-offline-grpo-main-job).", ge=0,
    )
    cache_implementation: Literal["dynamic", "static"] = option(
        "dynamic", help="KV cache of generation ('static' allows compiled decoding on a GPU)."
    )
    merged_generation: bool = option(
        False, help="Sample with a copy of the model that has the LoRA folded into its weights (plain transformers, eval "
        "mode), synced before each generation round: measured +9 % generation tokens/s at 4B on an H200 "
        "(docs/grpo.md#speed) for one more copy of the targeted weights in memory. Not possible with Unsloth, quantized "
        "or sharded (FSDP, DeepSpeed) models: TRL then samples with the training model, as when false.",
    )
    fast_decoding: bool = option(
        True, help="Decode with reasoning-kit's exact fast path (harness/fastdecode.py): grouped-query SDPA that does not "
        "copy the key/value heads under a padding mask, and a preallocated KV cache instead of one concatenated each "
        "step. Applies to the model that samples (the merged copy with merged_generation); not with Unsloth, which has "
        "its own path.",
    )
    decode_graphs: bool = option(
        True, help="With fast_decoding on a GPU, replay each decoding step as a CUDA graph (harness/decodegraph.py): one "
        "launch instead of about a thousand small kernels per token. Llama, Qwen2 and Qwen3 models with sdpa attention "
        "and no active dropout; others decode un-graphed (metrics.json: decode_not_graphed says why).",
    )
    use_transformers_paged: bool = option(
        False, help="Generate with transformers' continuous batching (paged attention) instead of generate()."
    )
    warmup_ratio: float = option(0.1, help="Share of the steps with linear warm-up.", ge=0.0, lt=1.0)
    sample_every: int = option(10, help="Write the last step's completions to samples.jsonl every N steps (0: never).", ge=0)
    offline: Preset = option(OFFLINE, help="[grpo.offline] table: the `grpo --offline` preset.")

    def problems(self) -> list[tuple[str, str]]:
        out = super().problems()
        if self.max_prompt_length and self.max_prompt_length >= self.max_seq_length:
            out.append(("max_prompt_length",
                        f"({self.max_prompt_length}) must be below max_seq_length ({self.max_seq_length})"))
        if self.epsilon_high and self.epsilon_high < self.epsilon:
            out.append(("epsilon_high", f"({self.epsilon_high}) must be 0 or at least epsilon ({self.epsilon})"))
        if problem := placeholder_problem(self.adapter):
            out.append(("adapter", problem))
        if self.loss_type == "luspo" and self.importance_sampling_level != "sequence":
            out.append(("loss_type", "luspo needs importance_sampling_level = \"sequence\""))
        return out

    def with_offline(self) -> "GRPOTrainConfig":
        """This config with the [grpo.offline] values put over it."""
        return dataclasses.replace(self, **self.offline.as_dict())


def grpo_keys() -> list[str]:
    """Names of the plain (non-table) [grpo] keys, in declaration order."""
    return [f.name for f in dataclasses.fields(GRPOTrainConfig) if f.name != "offline"]
