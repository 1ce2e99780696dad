"""The ``hf`` backend: transformers + PEFT LoRA + TRL ``SFTTrainer``, on CPU or GPU.

It follows the seed's settings and maps what only Unsloth or CUDA can do, saying so in
``notes``: ``adamw_8bit`` (bitsandbytes, CUDA) -> ``adamw_torch`` elsewhere; gradient
checkpointing ``"unsloth"`` (Unsloth's offloaded variant) -> plain checkpointing; precision
``auto`` -> bf16 where the GPU supports it, else fp16, and fp32 on CPU; 4-bit loading only on
CUDA with bitsandbytes. With ``packing``, batches keep packed rows apart
(``sft.RowPackedCollator``) instead of TRL's single flattened row. :func:`plan` is the pure part of that mapping (tested without a GPU).
Several GPUs (DDP, FSDP2, DeepSpeed) come from the launcher: docs/multi_gpu.md. Not handled: vLLM.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from .. import TrainError

BNB_OPTIMS = ("8bit", "paged_")


@dataclass(frozen=True)
class Plan:
    """The hf backend's settings for one run."""

    device: str  # "cuda" or "cpu"
    weights: str  # "float32", "bfloat16" or "float16"
    bf16: bool
    fp16: bool
    optim: str
    gradient_checkpointing: bool
    notes: tuple[str, ...]


def plan(cfg: TrainConfig, *, cuda: bool, bf16_ok: bool, bnb: bool) -> Plan:
    """How ``cfg`` runs on this machine, with a note for every setting that had to change."""
    notes: list[str] = []
    if cfg.load_in_4bit and not (cuda and bnb):
        raise TrainError("load_in_4bit needs a CUDA GPU and bitsandbytes; set train.load_in_4bit = false")
    optim = cfg.optim
    if any(k in optim for k in BNB_OPTIMS) and not (cuda and bnb):
        why = "CUDA" if not cuda else "bitsandbytes"
        notes.append(f"optim {optim!r} needs bitsandbytes and CUDA (no {why} here): using 'adamw_torch'")
        optim = "adamw_torch"
    gc = cfg.gradient_checkpointing is not False
    if cfg.gradient_checkpointing == "unsloth":
        notes.append("gradient_checkpointing 'unsloth' is Unsloth's offloaded variant: the hf backend uses plain checkpointing")
    precision = cfg.precision
    if precision == "auto":
        precision = ("bf16" if bf16_ok else "fp16") if cuda else "fp32"
        notes.append(f"precision auto -> {precision} ({'GPU' if cuda else 'CPU'})")
    if precision == "fp16" and not cuda:
        raise TrainError("precision fp16 needs a CUDA GPU; use precision fp32 (or bf16) on CPU")
    if precision == "bf16" and cuda and not bf16_ok:
        raise TrainError("this GPU does not support bf16; use precision fp16 or auto")
    if precision == "bf16" and not cuda:
        notes.append("precision bf16 on CPU: slow unless the CPU has AVX512-BF16/AMX")
    weights = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[precision]  # LoRA weights stay fp32 (PEFT)
    return Plan("cuda" if cuda else "cpu", weights, precision == "bf16", precision == "fp16", optim, gc, tuple(notes))


def machine_plan(cfg: TrainConfig) -> Plan:
    import torch

    cuda = torch.cuda.is_available()
    return plan(
        cfg,
        cuda=cuda,
        bf16_ok=cuda and torch.cuda.is_bf16_supported(),
        bnb=importlib.util.find_spec("bitsandbytes") is not None,
    )


def load_base(cfg: TrainConfig, spec: FormatSpec, notes: list[str]):
    """(model, tokenizer): the base model in the plan's dtype; the tokenizer fixed, with the spec's template."""
    import torch

    from harness import models

    p = machine_plan(cfg)
    notes.extend(p.notes)
    kwargs = {}
    if cfg.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)
    tokenizer = models.load_tokenizer(cfg.model, spec, notes=notes)
    if kwargs:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(models.resolve(cfg.model), dtype=torch.bfloat16, **kwargs)
    else:
        model = models.load_model(cfg.model, dtype=getattr(torch, p.weights))
    return model, tokenizer


def add_lora(cfg: TrainConfig, model):
    """The model wrapped in PEFT LoRA (seeded with ``cfg.seed``, as Unsloth's random_state)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(cfg.seed)
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise TrainError(f"cannot add LoRA adapters: {str(exc).splitlines()[0]}") from None


def training_args(cfg: TrainConfig, *, output_dir, progress: bool, notes: list[str]):
    """The ``trl.SFTConfig`` for ``cfg`` on this machine (no model needed: also the dry check before a run)."""
    from trl import SFTConfig

    from ..sft import sft_args

    p = machine_plan(cfg)
    return SFTConfig(
        **sft_args(
            cfg,
            output_dir=output_dir,
            bf16=p.bf16,
            fp16=p.fp16,
            optim=p.optim,
            progress=progress,
            gradient_checkpointing=p.gradient_checkpointing,
            cpu=p.device == "cpu",
        )
    )


def make_trainer(cfg: TrainConfig, model, tokenizer, dataset, *, output_dir, callbacks, progress: bool, notes: list[str]):
    """A TRL SFTTrainer for ``model`` (already LoRA-wrapped) on ``dataset`` (text or prompt/completion)."""
    from trl import SFTTrainer

    from ..sft import RowPackedCollator

    args = training_args(cfg, output_dir=output_dir, progress=progress, notes=notes)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks)
    if cfg.packing:
        # TRL would flatten the packed rows into one; keep them apart (see RowPackedCollator).
        trainer.data_collator = RowPackedCollator(tokenizer.pad_token_id)
        notes.append("packing: rows kept separate with restarting position ids (block-diagonal attention per row)")
    return trainer
