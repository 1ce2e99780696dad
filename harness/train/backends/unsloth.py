"""The ``unsloth`` backend: the seed's three calls, on a CUDA GPU.

``FastLanguageModel.from_pretrained(model_name, max_seq_length, load_in_4bit=False,
fast_inference, max_lora_rank, gpu_memory_utilization)``, then
``FastLanguageModel.get_peft_model(model, r, target_modules, lora_alpha,
use_gradient_checkpointing="unsloth", random_state=3407)``, then TRL ``SFTTrainer`` with the
seed's ``SFTConfig`` (``bf16=is_bfloat16_supported()``, ``fp16=not is_bfloat16_supported()``).
``fast_inference`` (vLLM) is on only when vLLM is importable. A .gguf file or alias is first
converted to a local model directory (``harness.models.resolve``), which Unsloth loads like a
hub id. The tokenizer passed to the trainer is ``processing_class`` (TRL >= 1 no longer takes
``tokenizer=``).

unsloth is imported inside the functions below; ``harness.train.backends.get`` imports it
before anything imports transformers, trl or peft. :func:`from_pretrained_kwargs` and
:func:`peft_kwargs` are pure (tested without a GPU). Several GPUs: DDP only (docs/multi_gpu.md). Not handled: CPU (use ``hf``).
"""

from __future__ import annotations

import importlib.util

from reasoning_kit.spec import FormatSpec
from reasoning_kit.train_config import TrainConfig

from .. import TrainError



def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def from_pretrained_kwargs(cfg: TrainConfig, model_name: str, *, vllm: bool, local_rank: int | None = None) -> dict:
    """Arguments of the seed's ``FastLanguageModel.from_pretrained`` call.

    ``local_rank`` (several processes under DDP; default: ``harness.ranks``): each process loads
    the model onto its own GPU (``device_map={"": local_rank}``, as Unsloth's DDP guide does).
    """
    kw = dict(
        model_name=model_name,
        max_seq_length=cfg.max_seq_length,
        load_in_4bit=cfg.load_in_4bit,
        fast_inference=vllm,
        max_lora_rank=cfg.lora_r,
    )
    if vllm:
        kw["gpu_memory_utilization"] = cfg.gpu_memory_utilization
    if local_rank is None:
        from harness import ranks

        here = ranks.current()
        local_rank = here.local_rank if here.distributed else None
    if local_rank is not None:
        kw["device_map"] = {"": local_rank}
    return kw


def peft_kwargs(cfg: TrainConfig) -> dict:
    """Arguments of the seed's ``FastLanguageModel.get_peft_model`` call."""
    return dict(
        r=cfg.lora_r,
        target_modules=list(cfg.target_modules),
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        use_gradient_checkpointing=cfg.gradient_checkpointing,
        random_state=cfg.seed,
    )


def precision(cfg: TrainConfig, bf16_supported: bool) -> tuple[bool, bool]:
    """(bf16, fp16): the seed's ``is_bfloat16_supported()`` rule unless ``cfg.precision`` says otherwise."""
    if cfg.precision == "auto":
        return bf16_supported, not bf16_supported
    if cfg.precision == "bf16" and not bf16_supported:
        raise TrainError("this GPU does not support bf16; use precision fp16 or auto")
    if cfg.precision == "fp32":
        return False, False
    return cfg.precision == "bf16", cfg.precision == "fp16"


def load_base(cfg: TrainConfig, spec: FormatSpec, notes: list[str]):
    """(model, tokenizer) from ``FastLanguageModel.from_pretrained``; the spec's chat template set."""
    from unsloth import FastLanguageModel

    from harness import models

    vllm = vllm_available()
    notes.append(f"unsloth fast_inference={vllm} ({'vLLM installed' if vllm else 'vLLM not installed'})")
    name = models.resolve(cfg.model)
    try:
        model, tokenizer = FastLanguageModel.from_pretrained(**from_pretrained_kwargs(cfg, name, vllm=vllm))
    except (OSError, ValueError) as exc:
        raise models.ModelLoadError(f"cannot load {cfg.model!r} with unsloth: {str(exc).strip().splitlines()[0]}") from None
    notes.extend(models.fix_tokenizer(tokenizer, model.config))
    models.set_spec_templates(tokenizer, spec)
    return model, tokenizer


def add_lora(cfg: TrainConfig, model):
    from unsloth import FastLanguageModel

    return FastLanguageModel.get_peft_model(model, **peft_kwargs(cfg))


def training_args(cfg: TrainConfig, *, output_dir, progress: bool, notes: list[str]):
    """The seed's ``SFTConfig`` for ``cfg`` (no model needed: also the dry check before a run)."""
    from trl import SFTConfig
    from unsloth import is_bfloat16_supported

    from ..sft import sft_args

    bf16, fp16 = precision(cfg, is_bfloat16_supported())
    return SFTConfig(**sft_args(cfg, output_dir=output_dir, bf16=bf16, fp16=fp16, optim=cfg.optim, progress=progress))


def make_trainer(cfg: TrainConfig, model, tokenizer, dataset, *, output_dir, callbacks, progress: bool, notes: list[str]):
    from trl import SFTTrainer

    args = training_args(cfg, output_dir=output_dir, progress=progress, notes=notes)
    return SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset, args=args, callbacks=callbacks)
