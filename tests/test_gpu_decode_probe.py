"""benchmarks/gpu_decode_probe.py: its prompts have the padding each row claims, and a CPU run records every row."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from benchmarks import gpu_decode_probe as probe  # noqa: E402


def test_left_padding_rows_have_a_mask_and_none_rows_do_not_need_one():
    ids, mask = probe.prompts(16, "left", vocab=100, pad_id=2)
    lengths = mask.sum(1).tolist()
    assert len(set(lengths)) > 1 and max(lengths) == ids.shape[1]
    for row, n in zip(mask.tolist(), lengths):
        assert row == [0] * (ids.shape[1] - n) + [1] * n  # pads on the left only
    assert (ids[mask == 0] == 2).all() and (ids[mask == 1] >= 3).all()
    ids, mask = probe.prompts(16, "none", vocab=100, pad_id=2)
    assert bool(mask.all()) and ids.shape == (16, 96)


def test_tiny_cpu_run_measures_each_row(tmp_path):
    payload = probe.main(["--tiny", "--batches", "2", "--new-tokens", "3", "--attn", "sdpa", "--lora", "none,peft",
                          "--engines", "generate", "--model-dir", str(tmp_path / "model"), "--out", str(tmp_path)])
    rows = payload["rows"]
    assert {(r["lora"], r["padding"]) for r in rows} == {(lo, p) for lo in ("none", "peft") for p in ("left", "none")}
    assert all(r["generated_tokens"] == 2 * 3 and r["ms_per_step"] > 0 for r in rows)
    saved = json.loads((tmp_path / "gpu_decode_probe_tiny.json").read_text())
    assert saved["results"]["rows"] == rows


@pytest.mark.slow  # transformers' continuous batching takes ~30 s to start on CPU
def test_tiny_cpu_paged_row(tmp_path):
    payload = probe.main(["--tiny", "--batches", "3", "--new-tokens", "4", "--attn", "sdpa", "--lora", "none",
                          "--engines", "paged", "--model-dir", str(tmp_path / "model"), "--out", str(tmp_path)])
    (row,) = payload["rows"]
    assert row["engine"] == "paged" and row["generated_tokens"] == 3 * 4 and row["ms_per_step"] > 0
