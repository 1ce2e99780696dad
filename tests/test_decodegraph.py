"""harness/decodegraph.py and fastdecode.install's generate: the bucketed (graphed) decoding steps score what a
plain forward scores, and the KV cache survives gradient checkpointing.

As in test_fastdecode.py every comparison is between two computations of the same function on the same tiny model
(left-padded rows, 4 query heads per key/value head): each decoding step's logits against one teacher-forced sdpa
forward of the generated sequence. Only summation order differs; a key/value written at the wrong position, a mask
column off by one or a stale bucket changes the logits by orders of magnitude more than the tolerance.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from harness import decodegraph, fastdecode  # noqa: E402
from tests.tiny import gqa_model, left_padded_batch, teacher_forced  # noqa: E402

TOL = 1e-4
NEW = 12


def _generate(model, ids, mask, **kw):
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=NEW, min_new_tokens=NEW,
                             do_sample=False, pad_token_id=0, output_logits=True, return_dict_in_generate=True, **kw)
    return out.sequences, torch.stack(out.logits, dim=1)


@pytest.mark.parametrize("model_type", ["qwen3", "llama"])
@pytest.mark.parametrize("bucket", [4, 128])  # 4: the steps move through several buckets (several graphs on a GPU)
def test_bucketed_steps_score_what_sdpa_scores(monkeypatch, model_type, bucket):
    monkeypatch.setattr(decodegraph, "BUCKET", bucket)
    model, (ids, mask) = gqa_model(model_type), left_padded_batch()
    installed = fastdecode.install(model, graphs="eager")
    sequences, steps = _generate(model, ids, mask)
    installed.undo()
    assert installed.bucketed_steps == NEW - 1 and not installed.graph_skips  # every step after the prefill
    assert installed.graphed_steps == 0  # eager: no graphs
    assert "forward" not in model.__dict__  # the model's own forward is back
    want = teacher_forced(model, sequences, mask)
    assert steps.shape == want.shape
    assert (steps - want).abs().max() < TOL
    assert want.abs().max() > 100 * TOL  # not a vacuous comparison of ~0 logits


def test_a_wrong_write_position_is_caught(monkeypatch):
    """The comparison above can fail: writing each step's key/value one position late changes the logits."""
    model, (ids, mask) = gqa_model(), left_padded_batch()
    update = decodegraph._BucketKV.update

    def late(self, key_states, value_states, layer_idx, *args, **kwargs):
        self.position = self.position + 1
        return update(self, key_states, value_states, layer_idx)

    monkeypatch.setattr(decodegraph._BucketKV, "update", late)
    fastdecode.install(model, graphs="eager")
    sequences, steps = _generate(model, ids, mask)
    assert (steps - teacher_forced(model, sequences, mask)).abs().max() > 100 * TOL


def test_steps_it_cannot_graph_run_plainly():
    """No max_new_tokens known, or a user's own cache: transformers' forward runs every step, and the reason is kept."""
    model, (ids, mask) = gqa_model(), left_padded_batch()
    installed = fastdecode.install(model, graphs="eager")
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=mask, max_length=ids.shape[1] + 3, do_sample=False, pad_token_id=0)
    assert installed.bucketed_steps == 0 and installed.graph_skips == {"max_new_tokens or input_ids not given"}
    installed.graph_skips.clear()
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False, pad_token_id=0,
                       past_key_values=fastdecode.growing_cache())
    assert installed.bucketed_steps == 0 and not installed.graph_skips


def test_reason():
    model = gqa_model()
    assert decodegraph.reason(model) is None
    model.config.layer_types = ["full_attention", "sliding_attention"]
    assert "sliding" in decodegraph.reason(model)
    eager = gqa_model()
    eager.set_attn_implementation("eager")
    assert "eager" in decodegraph.reason(eager)
    from transformers import AutoModelForCausalLM, GPT2Config

    gpt2 = AutoModelForCausalLM.from_config(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50))
    assert "gpt2" in decodegraph.reason(gpt2)
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(gqa_model(), LoraConfig(r=4, target_modules=["q_proj"], lora_dropout=0.1)).get_base_model()
    assert "dropout" in decodegraph.reason(lora.train())  # random draws inside a step
    assert decodegraph.reason(lora.eval()) is None
    assert decodegraph.capacity(96, 512) == 640 and decodegraph.capacity(100, 29) == 256
    assert decodegraph.capacity(96, None) is None


def test_graphs_mode():
    assert fastdecode.graphs_mode(True, "single") == ("auto", None)
    assert fastdecode.graphs_mode(True, "ddp") == ("auto", None)  # each rank holds the whole model
    assert fastdecode.graphs_mode(False, "single") == ("off", None)
    for engine in ("fsdp", "deepspeed"):
        mode, why = fastdecode.graphs_mode(True, engine)
        assert mode == "off" and why.startswith(engine)


def _lora_model_with_checkpointing():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(gqa_model(), LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    model.gradient_checkpointing_enable()
    return model.train()  # as TRL samples: the training model, in training mode


def test_generate_keeps_the_cache_under_gradient_checkpointing():
    """transformers 5.17 drops the KV cache in checkpointed layers of a model in training mode while generate feeds
    one token a step; the installed generate turns checkpointing off for the call, so each step sees the whole
    sequence, and turns it back on."""
    model, (ids, mask) = _lora_model_with_checkpointing(), left_padded_batch()
    fastdecode.install(model, fast=False)
    sequences, steps = _generate(model, ids, mask)
    assert all(m.gradient_checkpointing for m in model.modules() if hasattr(m, "gradient_checkpointing")
               and isinstance(m, transformers.modeling_layers.GradientCheckpointingLayer))
    model.eval()
    assert (steps - teacher_forced(model, sequences, mask)).abs().max() < TOL


def test_without_the_wrapper_checkpointing_loses_the_cache():
    """What the test above guards against is real in this transformers: the same generate, not installed, predicts
    each token from a one-token context."""
    model, (ids, mask) = _lora_model_with_checkpointing(), left_padded_batch()
    sequences, steps = _generate(model, ids, mask)
    model.eval()
    assert (steps - teacher_forced(model, sequences, mask)).abs().max() > 100 * TOL


@pytest.mark.gpu
@pytest.mark.parametrize("bucket", [8, 128])
def test_cuda_graph_replays_score_what_sdpa_scores(monkeypatch, bucket):
    """On a GPU the steps are captured and replayed as CUDA graphs (fp32 here, so the tolerance is the CPU one)."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    monkeypatch.setattr(decodegraph, "BUCKET", bucket)
    model, (ids, mask) = gqa_model().cuda(), left_padded_batch()
    ids, mask = ids.cuda(), mask.cuda()
    installed = fastdecode.install(model)
    sequences, steps = _generate(model, ids, mask)
    _, again = _generate(model, ids, mask)  # a second call captures its own graphs
    installed.undo()
    assert installed.graphed_steps == installed.bucketed_steps == 2 * (NEW - 1) and not installed.graph_skips
    want = teacher_forced(model, sequences, mask)
    assert (steps - want).abs().max() < TOL and (again - steps).abs().max() < TOL
