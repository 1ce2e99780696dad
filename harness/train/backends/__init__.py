"""Training backends and the ``auto`` choice between them.

Each backend module has the same three steps, called in this order by ``harness.train.run``:

- ``load_base(cfg, spec, notes) -> (model, tokenizer)``: the base model and its tokenizer
  (tokenizer fixed, the spec's chat template set);
- ``add_lora(cfg, model) -> model``: LoRA adapters on ``cfg.target_modules``;
- ``training_args(cfg, *, output_dir, progress, notes)``: the TRL ``SFTConfig`` (built once without a
  model, as the check before a run);
- ``make_trainer(cfg, model, tokenizer, dataset, *, output_dir, callbacks, progress, notes)``:
  a TRL ``SFTTrainer``.

:func:`choose` resolves ``auto`` (unsloth when CUDA and the unsloth package are available,
else hf) and returns the reason in words; it imports torch but never transformers, and
:func:`get` imports unsloth first when the unsloth backend is chosen, so unsloth can patch
transformers, TRL and PEFT before anything else imports them. Several processes: ``harness.ranks`` and docs/multi_gpu.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from .. import TrainError

BACKENDS = ("unsloth", "hf")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def choose(requested: str, *, cuda: bool | None = None, unsloth: bool | None = None) -> tuple[str, str]:
    """(backend, why) for ``requested`` in auto/unsloth/hf; raise TrainError if it cannot run here."""
    cuda = cuda_available() if cuda is None else cuda
    unsloth = unsloth_installed() if unsloth is None else unsloth
    if requested == "hf":
        return "hf", "requested: transformers + PEFT + TRL"
    if requested == "unsloth":
        if not cuda:
            raise TrainError("backend 'unsloth' needs a CUDA GPU; use --backend hf (or auto) on this machine")
        if not unsloth:
            raise TrainError("backend 'unsloth' needs the unsloth package: pip install 'reasoning-kit[gpu]'")
        return "unsloth", "requested"
    if requested != "auto":
        raise TrainError(f"unknown backend {requested!r} (choose from: auto, {', '.join(BACKENDS)})")
    if cuda and unsloth:
        return "unsloth", "auto: a CUDA GPU and the unsloth package are available"
    if not cuda:
        return "hf", "auto: no CUDA GPU, so transformers + PEFT + TRL on CPU"
    return "hf", "auto: CUDA GPU but unsloth is not installed (pip install 'reasoning-kit[gpu]'), so transformers + PEFT + TRL"


def get(name: str):
    """The backend module; for unsloth, unsloth itself is imported here, before transformers."""
    if name not in BACKENDS:
        raise TrainError(f"unknown backend {name!r} (choose from: {', '.join(BACKENDS)})")
    if name == "unsloth":
        late = [m for m in ("transformers", "trl", "peft") if m in sys.modules]
        if late:
            print(f"warning: {', '.join(late)} imported before unsloth; its patches may be incomplete", file=sys.stderr)
        importlib.import_module("unsloth")
    return importlib.import_module(f"{__name__}.{name}")
