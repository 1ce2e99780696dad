"""What both backends hand to TRL: the SFTConfig arguments and the training columns.

:func:`sft_args` maps a [train] config to ``trl.SFTConfig`` keyword arguments: the seed's
arguments (dataset_text_field "text", batch size, bf16/fp16, accumulation, warm-up, epochs,
lr, logging, optimizer, weight decay, schedule, seed; report_to from [train], "none" by default) plus what the seed
leaves implicit (``max_length`` = max_seq_length, since TRL's default of 1024 would cut the
seed's own examples; ``max_steps``; packing; checkpoints only when asked; token counting).

:func:`training_columns` reduces prepared data to the columns TRL reads: ``text`` (loss on
the whole conversation, as the seed), or ``prompt``/``completion`` for completion-only loss,
where ``prompt`` is the rendered system + user turns plus the generation prompt, i.e. exactly
what the model sees at inference. :class:`RowPackedCollator` batches packed rows for the hf
backend. Not handled: tokenization (TRL does it).
"""

from __future__ import annotations

from pathlib import Path

from reasoning_kit.spec import FormatSpec
from reasoning_kit.template import render
from reasoning_kit.train_config import TrainConfig

from . import TrainError


def sft_args(
    cfg: TrainConfig,
    *,
    output_dir: Path,
    bf16: bool,
    fp16: bool,
    optim: str,
    progress: bool = True,
    gradient_checkpointing: bool | None = None,
    cpu: bool = False,
) -> dict:
    """``trl.SFTConfig`` keyword arguments for ``cfg`` (``gradient_checkpointing`` None: left to the backend)."""
    args = dict(
        # The seed's SFTConfig, argument for argument:
        dataset_text_field="text",
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        bf16=bf16,
        fp16=fp16,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_steps,
        num_train_epochs=cfg.num_train_epochs,
        learning_rate=cfg.learning_rate,
        logging_steps=cfg.logging_steps,
        optim=optim,
        weight_decay=cfg.weight_decay,
        lr_scheduler_type=cfg.lr_scheduler_type,
        seed=cfg.seed,
        report_to=cfg.report_to,
        # What the seed leaves to defaults or to its notebook:
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        max_length=cfg.max_seq_length,
        packing=cfg.packing,
        completion_only_loss=cfg.completion_only_loss,
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        include_num_input_tokens_seen="non_padding",
        logging_first_step=True,
        disable_tqdm=not progress,
        dataloader_pin_memory=not cpu,
        ddp_find_unused_parameters=False,  # several processes: every LoRA weight takes part in each forward
    )
    return args | checkpointing_args(gradient_checkpointing)


def checkpointing_args(gradient_checkpointing: bool | None) -> dict:
    """TrainingArguments for gradient checkpointing (non-reentrant, so frozen embeddings work); None: none."""
    if gradient_checkpointing is None:
        return {}
    if not gradient_checkpointing:
        return {"gradient_checkpointing": False}
    return {"gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}}


def training_columns(dataset, spec: FormatSpec, eos_token: str, *, completion_only: bool):
    """``dataset`` (from ``prepare_dataset``) reduced to ``text`` or ``prompt``/``completion``."""
    from datasets import Dataset

    texts = dataset["text"]
    if not completion_only:
        return Dataset.from_dict({"text": list(texts)})
    prompts, completions = [], []
    for messages, text in zip(dataset["messages"], texts):
        prompt = render(spec, messages[:-1], add_generation_prompt=True, eos_token=eos_token)
        if not text.startswith(prompt):
            raise TrainError("a training text does not start with its rendered prompt: the data and the spec disagree")
        prompts.append(prompt)
        completions.append(text[len(prompt):])
    return Dataset.from_dict({"prompt": prompts, "completion": completions})


class RowPackedCollator:
    """Batches of packed rows for the hf backend: rows stay separate, positions restart per example.

    TRL's own collator flattens a batch of packed rows into one long row; without FlashAttention
    that makes attention cost (rows x length)^2. Here each row keeps its own batch index and no
    attention mask is returned: transformers builds a block-diagonal causal mask from position
    ids that restart at 0 (``masking_utils.find_packed_sequence_indices``), so examples never see
    each other and attention costs rows x length^2 (the batch carries ``use_cache=False``, since
    transformers only looks for packed sequences when no KV cache is passed). Row-end padding forms its own block with
    labels -100, and the first token of every example gets label -100, as in TRL, so no example
    is trained to follow the previous one.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        position_ids = torch.zeros((len(examples), width), dtype=torch.long)
        for i, e in enumerate(examples):
            ids = e["input_ids"]
            n = len(ids)
            input_ids[i, :n] = torch.as_tensor(ids)
            labels[i, :n] = torch.as_tensor(e.get("labels", ids))
            lengths = e.get("seq_lengths") or [n]
            position_ids[i, :n] = torch.cat([torch.arange(length) for length in lengths])
            position_ids[i, n:] = torch.arange(width - n)
        labels[position_ids == 0] = -100
        # use_cache=False: with a KV cache object, transformers skips the packed-sequence mask.
        return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "use_cache": False}
