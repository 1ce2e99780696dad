"""``harness.train.backends.unsloth.enable_packed_varlen``: packed rows as one flash varlen call per layer.

The GPU test (``-m gpu``, needs unsloth) runs tests/gpu_unsloth_varlen.py in its own process and
checks that after the switch the varlen path replaces Unsloth's per-example path and computes the
same logits, loss and LoRA gradients, with the examples of a row kept apart: the error against each
example run alone must be a small fraction of the error that letting them see each other makes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.train.backends import unsloth as ub
from reasoning_kit.spec import load_spec
from tests.tiny import corpus, make_model, make_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec("working_out")


@pytest.mark.parametrize("value", ["0", "false", "off", " NO "])
def test_switched_off_by_the_environment(monkeypatch, value):
    monkeypatch.setenv(ub.VARLEN_ENV, value)
    assert ub.enable_packed_varlen() is None


def test_changes_nothing_without_unsloth_or_cuda(monkeypatch):
    import importlib.util

    import torch

    monkeypatch.delenv(ub.VARLEN_ENV, raising=False)
    if importlib.util.find_spec("unsloth") is not None and torch.cuda.is_available():
        pytest.skip("this machine has both: the GPU test below covers it")
    assert ub.enable_packed_varlen() is None


@pytest.mark.gpu
def test_varlen_replaces_the_per_example_path_and_keeps_examples_apart(tmp_path):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    pytest.importorskip("unsloth")
    tok = make_tokenizer(SPEC, corpus(SPEC, 40))
    model = make_model(tok, arch="qwen3", hidden=256, heads=4, layers=2)  # head_dim 64, 2 key/value heads
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(10.0)  # attention matters, so a leak shows
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    proc = subprocess.run([sys.executable, "-m", "tests.gpu_unsloth_varlen", str(tmp_path / "model")],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, proc.stderr[-3000:]
    r = json.loads(line[len("RESULT "):])
    print(json.dumps(r, indent=1))
    assert r["calls_after_enable"]["per_example"] == 0 and r["calls_after_enable"]["varlen"] > 0
    if r["note"] is None:  # torch >= 2.12: Unsloth took the varlen path by itself
        assert r["calls_unsloth_choice"]["varlen"] > 0
    else:
        assert r["calls_unsloth_choice"] == {"per_example": r["calls_unsloth_choice"]["per_example"], "varlen": 0}
        assert r["calls_unsloth_choice"]["per_example"] > 0
    assert r["rel_leak_vs_reference"] > 0.05, "the leak control must be visible for the check to mean anything"
    assert r["rel_varlen_vs_reference"] < 0.1 * r["rel_leak_vs_reference"]
    assert r["rel_per_example_vs_reference"] < 0.1 * r["rel_leak_vs_reference"]
    assert r["rel_varlen_vs_per_example"] < 0.1 * r["rel_leak_vs_reference"]
    assert abs(r["loss_varlen"] - r["loss_per_example"]) <= 0.01 * r["loss_per_example"]
    assert r["grad_norm"] > 0 and r["grad_cosine"] > 0.99
