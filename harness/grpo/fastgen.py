"""Merged generation: GRPO samples from a plain copy of the policy with its LoRA folded into the weights.

TRL 1.14.2 without vLLM samples with ``unwrapped_model.generate`` on the training model: a
PEFT model in training mode, whose every targeted linear layer runs the base matmul plus the
adapter's two small matmuls, a scale and an add, through PEFT's Python forward. Decoding a
4B model at GRPO's batch sizes is bound by that per-token overhead, not by the GPU
(docs/grpo.md#speed has the measured figures). :func:`install` gives the PEFT model a
``generate`` that first writes ``W + scale * B @ A`` of every LoRA layer into a copy of the
model made once (plain transformers modules, eval mode, no gradient checkpointing, no
autocast wrapper) and then generates with the copy; the training model is never modified
(no merge/unmerge rounding drift). The copy costs one more set of the targeted weights in
memory.

Sampling from the merged copy is sampling from the same policy up to rounding (bf16 weights
hold ``W + scale * B @ A`` rounded once). With ``steps_per_generation`` > 1 TRL recomputes the
old log-probabilities with the training model, so the importance ratio corrects what is left.

Not handled (``reason`` says why and nothing is installed): Unsloth (its own patched
inference path), quantized base weights (4/8-bit: nothing to add the delta to), and sharded
engines (FSDP, DeepSpeed: a process may not hold the whole model).
"""

from __future__ import annotations

import copy


class MergedGenerator:
    """A merged copy of ``peft_model`` and the ``generate`` that syncs it before each call."""

    def __init__(self, peft_model):
        import torch
        from peft.tuners.lora import LoraLayer

        self.adapter = peft_model.active_adapter
        inner = peft_model.get_base_model()  # the transformers model with the LoRA layers injected
        with torch.no_grad():
            merged = copy.deepcopy(peft_model).merge_and_unload()
        merged.requires_grad_(False)
        if getattr(merged, "is_gradient_checkpointing", False):
            merged.gradient_checkpointing_disable()
        self.model = merged.eval()
        # (training LoRA layer, the copy's weight it folds into), and (the copy's parameter, the trained one) for
        # the other trainable parameters (modules_to_save, resized embeddings), paired once by name.
        self.lora = [(m, merged.get_submodule(name).weight) for name, m in inner.named_modules()
                     if isinstance(m, LoraLayer)]
        params = dict(merged.named_parameters())
        self.extra = [(params[self._merged_name(n)], p) for n, p in inner.named_parameters()
                      if p.requires_grad and "lora_" not in n and self._merged_name(n) in params]
        self.syncs = 0

    @staticmethod
    def _merged_name(name: str) -> str:
        """``model.embed_tokens.modules_to_save.default.weight`` -> ``model.embed_tokens.weight``."""
        parts = name.split(".")
        if "modules_to_save" in parts:
            i = parts.index("modules_to_save")
            parts = parts[:i] + parts[i + 2:]
        return ".".join(p for p in parts if p not in ("base_layer", "original_module"))

    def sync(self) -> None:
        """Write the training model's current weights (LoRA folded in) into the copy."""
        import torch

        with torch.no_grad():
            for layer, target in self.lora:
                base, delta = layer.get_base_layer().weight, layer.get_delta_weight(self.adapter)
                target.copy_(base.float() + delta.float())  # never in place: base may be fp32
            for target, trained in self.extra:
                target.copy_(trained)
        self.syncs += 1

    def generate(self, *args, **kwargs):
        self.sync()
        return self.model.generate(*args, **kwargs)


def reason(backend: str, model, engine: str) -> str | None:
    """Why merged generation cannot run here, or ``None`` when it can."""
    from peft import PeftModel

    if backend == "unsloth":
        return "Unsloth has its own inference path"
    if engine in ("fsdp", "deepspeed"):
        return f"{engine} may shard the model over the processes"
    if not isinstance(model, PeftModel):
        return "the model has no LoRA adapter"
    if (getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False)
            or getattr(getattr(model, "config", None), "quantization_config", None)):
        return "the base weights are quantized"
    return None


def install(model) -> MergedGenerator:
    """Route ``model.generate`` (the PEFT model TRL samples with) through a merged copy; returns the generator."""
    gen = MergedGenerator(model)
    model.generate = gen.generate  # an instance attribute: TRL's unwrapped_model.generate finds it first
    return gen


def uninstall(model, gen: MergedGenerator | None) -> None:
    """Give ``model`` its own ``generate`` back and free the copy."""
    if gen is None:
        return
    if model.__dict__.get("generate") == gen.generate:
        del model.generate
    gen.model, gen.lora, gen.extra = None, [], []
