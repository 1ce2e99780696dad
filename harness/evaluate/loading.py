"""Load the model, tokenizer and optional LoRA adapter to evaluate, through ``harness.models``.

:func:`resolve_sources` runs first (before anything slow): it turns ``--model`` into a hub
id or local model directory (``harness.models.resolve``: local dirs, .gguf files converted
once, the ``smollm2-135m-instruct`` alias) and ``--adapter`` into the directory holding
``adapter_config.json``, and turns every ``ModelLoadError`` into a one-line
:class:`~harness.evaluate.EvalError` with the same text.

After :func:`load_for_eval` the tokenizer pads on the left (its pad token differs from EOS,
see ``harness.models.fix_tokenizer``) and the model is in eval mode on the chosen device.
The tokenizer is the one saved with the adapter when there is one (training may have
changed its EOS or added a pad token; the embeddings are resized to match), else the base
model's own (its own chat template kept, for ``native`` prompts).
Not handled: quantised loading, multi-GPU sharding.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from . import EvalError


@contextmanager
def _as_eval_error():
    from harness.models import ModelLoadError

    try:
        yield
    except ModelLoadError as exc:
        raise EvalError(str(exc)) from None


def resolve_sources(source: str, adapter: str | None = None) -> tuple[str, str | None]:
    """(hub id or model dir, adapter dir or None); EvalError for a bad model or adapter path."""
    from harness import models

    with _as_eval_error():
        where = models.resolve(source)
        adapter_dir = str(models.adapter_path(adapter)) if adapter is not None else None
    return where, adapter_dir


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_name(device: str) -> str:
    """'cpu (N threads)' or 'cuda (<GPU name>)'."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return f"{device} ({torch.get_num_threads()} threads)"


def _prepare_tokenizer(tokenizer):
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:  # fix_tokenizer sets one; kept for tokenizers it could not fix
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_tokenizer(where: str, adapter_dir: str | None = None):
    """The tokenizer saved next to the adapter (training may have changed its EOS or pad), else the model's."""
    from harness import models

    if adapter_dir is not None and (Path(adapter_dir) / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
        except (OSError, ValueError) as exc:
            raise models.ModelLoadError(f"cannot load the tokenizer saved in {adapter_dir}: {exc}") from None
        models.fix_tokenizer(tokenizer, None)
        return tokenizer
    return models.load_tokenizer(where)


def load_for_eval(source: str, adapter: str | None = None, *, device: str | None = None, dtype=None):
    """(model, tokenizer, info) ready for generation; EvalError for anything a user can fix."""
    from harness import models

    where, adapter_dir = resolve_sources(source, adapter)
    device = device or default_device()
    with _as_eval_error():
        model = models.load_model(where, dtype=dtype, device=device)
        tokenizer = _prepare_tokenizer(load_tokenizer(where, adapter_dir))
        if adapter_dir is not None:
            if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
                model.resize_token_embeddings(len(tokenizer))  # training added a pad token
            models.align_model_tokens(model, tokenizer)
            # Merged into the base weights, the adapter costs nothing per generated token: unmerged,
            # every LoRA layer adds three small kernels per step, which made an H100 decode step
            # about 10x slower for a 135M model (launch-bound).
            model = models.load_adapter(model, adapter_dir).merge_and_unload()
    model.eval()
    info = {
        "model": source,
        "resolved": where,
        "adapter": adapter_dir,
        "adapter_merged": adapter_dir is not None,
        "model_class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "device": device_name(device),
        "eos_token": tokenizer.eos_token,
        "pad_token": tokenizer.pad_token,
    }
    return model, tokenizer, info


def load_tokenizer_only(source: str, adapter: str | None = None) -> tuple:
    """(tokenizer, info) for a backend that loads the model itself (vLLM)."""
    from harness import models

    where, adapter_dir = resolve_sources(source, adapter)
    with _as_eval_error():
        tokenizer = _prepare_tokenizer(load_tokenizer(where, adapter_dir))
    info = {"model": source, "resolved": where, "adapter": adapter_dir, "device": "cuda (vLLM)",
            "eos_token": tokenizer.eos_token, "pad_token": tokenizer.pad_token}
    return tokenizer, info


def generation_eos_ids(source: str, tokenizer) -> list[int]:
    """EOS ids for a model not loaded in this process (vLLM): generation_config.json + tokenizer."""
    from transformers import GenerationConfig

    from harness.models import eos_token_ids

    try:
        eos = GenerationConfig.from_pretrained(source).eos_token_id
    except OSError:
        eos = None
    return eos_token_ids(eos, tokenizer)
