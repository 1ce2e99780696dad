"""GPU check behind tests/test_unsloth_varlen.py: Unsloth's packed attention, per example vs one varlen call.

``python -m tests.gpu_unsloth_varlen MODEL_DIR`` loads MODEL_DIR through the unsloth backend (LoRA on,
packing on), feeds one padding-free row of five examples, and prints one JSON line:

- the row's logits, loss and LoRA gradients with Unsloth's own choice (one SDPA call per example on
  torch < 2.12), then after ``enable_packed_varlen`` (one flash varlen call per layer);
- a reference: each example run alone (plain causal attention, nothing to leak);
- a leak: the same row with positions that do not restart, so Unsloth sees one long sequence; how far
  that lands from the reference is the size of the error a broken packed path would make;
- how often each packed path ran (the varlen path must replace the per-example one, not add to it).

Unsloth must be imported before transformers, so this runs in its own process.
"""

from __future__ import annotations

import json
import os
import sys


def main(model_dir: str) -> dict:
    os.environ["UNSLOTH_RETURN_LOGITS"] = "1"  # logits, not only Unsloth's fused loss
    from harness.train.backends import unsloth as ub

    os.environ[ub.VARLEN_ENV] = "0"  # load with Unsloth's own choice; switched on below
    from harness.train import backends

    backend = backends.get("unsloth")
    import torch
    from unsloth.utils import attention_dispatch as ad

    from harness.train.config import resolve_config
    from reasoning_kit.spec import load_spec

    spec = load_spec("working_out")
    cfg = resolve_config(spec.train, dict(model=model_dir, backend="unsloth", packing=True, lora_r=8, lora_alpha=16,
                                          gradient_checkpointing=False, max_seq_length=512, dataset="unused"))
    notes: list[str] = []
    model, tok = backend.load_base(cfg, spec, notes)
    model = backend.add_lora(cfg, model)
    torch.manual_seed(0)
    with torch.no_grad():  # B != 0, so every LoRA weight gets a gradient that depends on attention
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.05)
    model.train()

    calls = {"per_example": 0, "varlen": 0}

    def counted(fn, key):
        def wrapper(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)
        return wrapper

    ad._sdpa_packed_segments = counted(ad._sdpa_packed_segments, "per_example")
    ad._torch_varlen_packed = counted(ad._torch_varlen_packed, "varlen")

    lengths = [37, 64, 23, 91, 50]
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(3, len(tok) - 1, (1, sum(lengths)), generator=gen).cuda()
    pos = torch.cat([torch.arange(n) for n in lengths]).unsqueeze(0).cuda()
    labels = ids.clone()
    labels[pos == 0] = -100

    def run(input_ids, position_ids, labels=None):
        model.zero_grad(set_to_none=True)
        out = model(input_ids=input_ids, position_ids=position_ids, labels=labels)
        if labels is None:
            return out.logits.float().detach(), None, None
        out.loss.backward()
        grads = torch.cat([p.grad.float().flatten() for n, p in model.named_parameters() if p.grad is not None])
        return out.logits.float().detach(), float(out.loss), grads

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    before = dict(calls)
    seg_logits, seg_loss, seg_grads = run(ids, pos, labels)
    seg_calls = {k: calls[k] - before[k] for k in calls}
    with torch.no_grad():
        ref = torch.cat([run(ids[:, s:s + n], torch.arange(n).unsqueeze(0).cuda())[0]
                         for s, n in zip([sum(lengths[:i]) for i in range(len(lengths))], lengths)], dim=1)
        leak = run(ids, torch.arange(ids.shape[1]).unsqueeze(0).cuda())[0]

    del os.environ[ub.VARLEN_ENV]
    note = ub.enable_packed_varlen()
    before = dict(calls)
    var_logits, var_loss, var_grads = run(ids, pos, labels)
    var_calls = {k: calls[k] - before[k] for k in calls}
    return {
        "torch": torch.__version__,
        "note": note,
        "calls_unsloth_choice": seg_calls,
        "calls_after_enable": var_calls,
        "rel_per_example_vs_reference": rel(seg_logits, ref),
        "rel_varlen_vs_reference": rel(var_logits, ref),
        "rel_varlen_vs_per_example": rel(var_logits, seg_logits),
        "rel_leak_vs_reference": rel(leak, ref),
        "loss_per_example": seg_loss,
        "loss_varlen": var_loss,
        "grad_cosine": float(torch.nn.functional.cosine_similarity(var_grads, seg_grads, dim=0)),
        "grad_norm": float(seg_grads.norm()),
    }


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1])), flush=True)
