"""harness/fastdecode.py: grouped SDPA and the growing cache compute what transformers' sdpa and DynamicCache do.

Every comparison is between two computations of the same function on the same tiny model (left-padded batches,
grouped-query attention with 4 query heads per key/value head), so it holds on any CPU: only summation order
differs, and the tolerance is far below what a wrong head order, a wrong mask row or a stale cache entry changes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harness import fastdecode  # noqa: E402
from tests.tiny import gqa_model, left_padded_batch, logits, teacher_forced  # noqa: E402

TOL = 1e-4


@pytest.mark.parametrize("kv_heads", [2, 1, 8])  # 4 and 8 query heads per key/value head; 8: no grouping (sdpa itself)
def test_grouped_sdpa_is_sdpa_under_a_padding_mask(kv_heads):
    model, (ids, mask) = gqa_model(kv_heads=kv_heads), left_padded_batch()
    want = logits(model, ids, mask)
    fastdecode.use(model)
    assert model.config._attn_implementation == fastdecode.NAME
    got = logits(model, ids, mask)
    real = mask.bool()
    assert (got - want)[real].abs().max() < TOL
    assert (want[real].abs().max()) > 100 * TOL  # the logits are not all ~0 (the comparison could not be vacuous)


def test_grouped_sdpa_head_order_matters():
    """The test above can fail: pairing query heads with the wrong key/value head changes the logits."""
    model, (ids, mask) = gqa_model(), left_padded_batch()
    want = logits(model, ids, mask)
    fastdecode.register()
    from transformers import AttentionInterface

    def swapped(module, query, key, value, attention_mask, **kw):
        return fastdecode.grouped_sdpa_forward(module, query, key.flip(1), value.flip(1), attention_mask, **kw)

    AttentionInterface.register("rk_test_swapped", swapped)
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionMaskInterface.register("rk_test_swapped", sdpa_mask)
    model.set_attn_implementation("rk_test_swapped")
    assert (logits(model, ids, mask) - want)[mask.bool()].abs().max() > 100 * TOL


@pytest.mark.parametrize("chunk", [3, 256])  # 3: the buffer grows (and copies) several times during decoding
def test_generate_with_growing_cache_scores_what_sdpa_scores(monkeypatch, chunk):
    """Each decoding step's scores, with grouped SDPA and the growing cache, equal a plain sdpa forward of the
    generated sequence: the cache holds every earlier key/value, in place, and the mask rows line up."""
    monkeypatch.setattr(fastdecode, "CHUNK", chunk)
    model, (ids, mask) = gqa_model(), left_padded_batch()
    fastdecode.use(model)
    cache = fastdecode.growing_cache()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                             pad_token_id=0, past_key_values=cache, output_logits=True, return_dict_in_generate=True)
    steps = torch.stack(out.logits, dim=1)
    model.set_attn_implementation("sdpa")
    want = teacher_forced(model, out.sequences, mask)
    assert steps.shape == want.shape
    assert (steps - want).abs().max() < TOL
    layer = cache.layers[0]
    assert type(layer).__name__ == "GrowingLayer" and cache.get_seq_length() == ids.shape[1] + 12 - 1
    assert layer._k.shape[-2] >= cache.get_seq_length() and layer.keys.data_ptr() == layer._k.data_ptr()


def test_growing_layer_readopts_what_transformers_replaces():
    """crop and batch selection replace ``keys`` with new tensors: the next update starts from those, not the buffer."""
    cache = fastdecode.growing_cache()
    k = torch.arange(2 * 1 * 5 * 2, dtype=torch.float32).reshape(2, 1, 5, 2)
    cache.update(k, -k, 0)
    layer = cache.layers[0]
    layer.crop(-2)  # drop the last two positions
    layer.batch_select_indices(torch.tensor([1]))
    new = torch.full((1, 1, 1, 2), 99.0)
    keys, values = cache.update(new, -new, 0)
    assert torch.equal(keys, torch.cat([k[1:, :, :3], new], dim=2))
    assert torch.equal(values, -keys)
    assert layer.get_seq_length() == 4


def test_install_switches_only_during_generate_and_undoes():
    model, (ids, mask) = gqa_model(), left_padded_batch()
    before = logits(model, ids, mask)
    installed = fastdecode.install(model)
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert installed.calls == 1
    assert model.config._attn_implementation == "sdpa"  # training forwards keep transformers' attention
    assert torch.equal(logits(model, ids, mask), before)
    from transformers import GenerationConfig

    static = GenerationConfig(max_new_tokens=3, do_sample=False, pad_token_id=0, cache_implementation="static")
    with torch.no_grad():  # a cache the user asked for is left alone (transformers refuses both at once)
        model.generate(input_ids=ids, attention_mask=mask, generation_config=static)
    installed.undo()
    assert "generate" not in model.__dict__ and installed.model is None


def test_reason():
    assert "Unsloth" in fastdecode.reason("unsloth")
    assert "paged" in fastdecode.reason("hf", paged=True)
    assert fastdecode.reason("hf") is None
