"""The ``unsloth`` backend: the seed's three calls, on a CUDA GPU.

``FastLanguageModel.from_pretrained(model_name, max_seq_length, load_in_4bit=False,
fast_inference, max_lora_rank, gpu_memory_utilization)``, then
``FastLanguageModel.get_peft_model(model, r, target_modules, lora_alpha,
use_gradient_checkpointing="unsloth", random_state=3407)``, then TRL ``SFTTrainer`` with the
seed's ``SFTConfig`` (``bf16=is_bfloat16_supported()``, ``fp16=not is_bfloat16_supported()``).
``fast_inference`` (vLLM) is on only when vLLM is importable. A .gguf file or alias is first
converted to a local model directory (``harness.models.resolve``), which Unsloth loads like a
hub id. The tokenizer passed to the trainer is ``processing_class`` (TRL >= 1 no longer takes
``tokenizer=``). With ``packing``, :func:`enable_packed_varlen` first lets Unsloth attend within
packed rows with one flash varlen call per layer on torch < 2.12 too (docs/train.md#gpu-throughput-h200).

unsloth is imported inside the functions below; ``harness.train.backends.get`` imports it
before anything imports transformers, trl or peft. :func:`from_pretrained_kwargs` and
:func:`peft_kwargs` are pure (tested without a GPU). Several GPUs: DDP only (docs/multi_gpu.md). Not handled: CPU (use ``hf``).
"""

from __future__ import annotations

import importlib.util
import os

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


VARLEN_ENV = "REASONING_KIT_UNSLOTH_VARLEN"  # "0": leave Unsloth's packed attention as it chose


def enable_packed_varlen() -> str | None:
    """Let Unsloth run packed (padding-free) attention as one flash varlen call per layer on torch < 2.12.

    Unsloth 2026.10.9 sends a packed row to torch's flash kernel with the row's ``cu_seqlens``
    (``attention_dispatch._LeanFlashVarlen``: ``aten._flash_attention_forward``, which takes grouped
    key/value heads) only when ``torch.nn.attention.varlen.varlen_attn`` has ``enable_gqa``, i.e.
    torch >= 2.12. On older torch it runs one SDPA call per example instead: ~70 calls per layer for
    8 packed rows of GSM8K, slicing and zero-filled gradients included, so a step waits on the CPU.
    Here the same autograd function is switched on where the aten kernel has what it needs (CUDA,
    flash available, window arguments), which is what Unsloth itself does on torch >= 2.12.
    Returns a note, or None when nothing changed (torch >= 2.12, no CUDA, another Unsloth, or
    ``REASONING_KIT_UNSLOTH_VARLEN=0``).
    """
    if os.environ.get(VARLEN_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None  # nothing to switch on, so unsloth (which patches transformers on import) is not imported
    try:
        from unsloth.utils import attention_dispatch as ad
    except ImportError:
        return None
    if ad._TORCH_VARLEN_ATTN is not None:
        return None  # Unsloth uses the varlen kernel already
    needed = ("_LeanFlashVarlen", "_LEAN_VARLEN", "_varlen_attn_call", "_torch_varlen_takes")
    if not all(hasattr(ad, name) for name in needed) or not torch.backends.cuda.is_flash_attention_available():
        return None
    schema = str(torch.ops.aten._flash_attention_forward.default._schema)
    if "window_size_left" not in schema:
        return None

    def varlen(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False):
        # Only reached under torch.compile (eager calls take _LeanFlashVarlen directly below).
        return ad._LeanFlashVarlen.apply(q, k, v, cu_q, max_q, tuple(window_size) == (-1, 0), scale, *window_size)

    ad._TORCH_VARLEN_ATTN = varlen
    ad._LEAN_VARLEN = True
    ad._varlen_can_use_cudnn = lambda *args, **kwargs: False
    return (f"unsloth packed attention: one flash varlen call per layer (torch {torch.__version__.split('+')[0]} "
            f"lacks varlen_attn(enable_gqa); {VARLEN_ENV}=0 turns this off)")


def load_base(cfg: TrainConfig, spec: FormatSpec, notes: list[str]):
    """(model, tokenizer) from ``FastLanguageModel.from_pretrained``; the spec's chat template set."""
    from unsloth import FastLanguageModel

    from harness import models

    if cfg.packing and (note := enable_packed_varlen()):
        notes.append(note)

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
