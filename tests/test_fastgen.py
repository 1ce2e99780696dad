"""harness.grpo.fastgen: the merged copy GRPO samples from is the training policy, kept in sync.

True by construction, on any CPU: the copy's logits are compared with the PEFT model's within a
tolerance far below the change a LoRA update makes (the update is scaled so its effect is large),
never through an argmax of an untrained model.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from harness.grpo import fastgen  # noqa: E402
from reasoning_kit.spec import load_spec  # noqa: E402

from .tiny import corpus, make_model, make_tokenizer  # noqa: E402

SPEC = load_spec("working_out")


@pytest.fixture()
def peft_model():
    torch.manual_seed(0)
    tok = make_tokenizer(SPEC, corpus(SPEC, 20))
    model = make_model(tok)
    cfg = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"])
    model = peft.get_peft_model(model, cfg)
    _perturb(model, 0.05)  # a trained adapter: B != 0
    return model


def _perturb(model, scale: float) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(torch.randn(p.shape, generator=g) * scale)


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.arange(3, 19).reshape(2, 8)


def test_copy_matches_the_policy_and_follows_its_updates(peft_model):
    base_before = {n: p.clone() for n, p in peft_model.named_parameters() if "lora_" not in n}
    gen = fastgen.MergedGenerator(peft_model)
    gen.sync()
    peft_model.eval()
    assert torch.allclose(_logits(gen.model, IDS), _logits(peft_model, IDS), atol=1e-4)

    before = _logits(peft_model, IDS)
    _perturb(peft_model, 0.5)  # an optimizer step
    after = _logits(peft_model, IDS)
    assert (after - before).abs().max() > 1e-2  # the update changes the policy far beyond the tolerance
    assert torch.allclose(_logits(gen.model, IDS), before, atol=1e-4)  # stale until synced
    gen.sync()
    assert torch.allclose(_logits(gen.model, IDS), after, atol=1e-4)
    assert gen.syncs == 2
    # The training model is never merged into: its base weights are bit-identical.
    assert all(torch.equal(p, base_before[n]) for n, p in peft_model.named_parameters() if "lora_" not in n)


def test_copy_is_plain_eval_and_frozen(peft_model):
    gen = fastgen.MergedGenerator(peft_model)
    assert not isinstance(gen.model, peft.PeftModel)
    assert not any(isinstance(m, peft.tuners.lora.LoraLayer) for m in gen.model.modules())
    assert not gen.model.training
    assert not any(p.requires_grad for p in gen.model.parameters())


def test_install_routes_generate_and_uninstall_restores(peft_model):
    gen = fastgen.install(peft_model)
    out = peft_model.generate(input_ids=IDS, max_new_tokens=3, do_sample=False)
    assert out.shape == (2, 11) and gen.syncs == 1
    fastgen.uninstall(peft_model, gen)
    assert "generate" not in peft_model.__dict__
    assert peft_model.generate(input_ids=IDS, max_new_tokens=2, do_sample=False).shape == (2, 10)


def test_refused_where_it_cannot_run(peft_model):
    assert fastgen.reason("hf", peft_model, "single") is None
    assert "Unsloth" in fastgen.reason("unsloth", peft_model, "single")
    assert "fsdp" in fastgen.reason("hf", peft_model, "fsdp")
    assert "deepspeed" in fastgen.reason("hf", peft_model, "deepspeed")
    assert "no LoRA" in fastgen.reason("hf", peft_model.get_base_model(), "single")


@pytest.mark.filterwarnings("ignore:.*tie:UserWarning", "ignore:.*tied:UserWarning")
def test_modules_to_save_follow_too():
    """A fully trained module (PEFT's modules_to_save, e.g. a resized lm_head) is copied at each sync."""
    torch.manual_seed(0)
    tok = make_tokenizer(SPEC, corpus(SPEC, 20))
    model = peft.get_peft_model(make_model(tok), peft.LoraConfig(r=4, target_modules=["q_proj"],
                                                                 modules_to_save=["lm_head"]))
    gen = fastgen.MergedGenerator(model)
    model.eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "modules_to_save" in name:
                p.mul_(3.0)  # an update far beyond the tolerance
    after = _logits(model, IDS)
    assert not torch.allclose(_logits(gen.model, IDS), after, atol=1e-2)
    gen.sync()
    assert torch.allclose(_logits(gen.model, IDS), after, atol=1e-4)
