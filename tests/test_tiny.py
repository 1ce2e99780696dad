"""tests/tiny.py's ``train_to_outputs``: the construction other tests rely on for known greedy outputs."""

from __future__ import annotations

import pytest

from reasoning_kit.spec import load_spec
from tests.tiny import EOS, corpus, make_model, make_tokenizer, train_to_outputs

SPEC = load_spec("working_out")
PROMPTS = ["What is 2 + 1?", "What is 3 + 4? Show your work.", "What is 5 + 7?"]
TARGETS = [f"3.{EOS}", f"We add.<end_working_out><SOLUTION>7</SOLUTION>{EOS}", "twelve twelve twelve twelve"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer(SPEC, corpus(SPEC, 10))


def greedy(model, tok, prompt: str, max_new_tokens: int) -> str:
    import torch

    ids = tok(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=False)


class TestTrainToOutputs:
    def test_greedy_decoding_reproduces_the_targets(self, tok):
        model = make_model(tok, seed=1)
        steps = train_to_outputs(model, tok, PROMPTS, TARGETS, max_new_tokens=5)
        assert 0 < steps <= 600 and not model.training
        cut = [tok.decode(tok(t, add_special_tokens=False).input_ids[:5]) for t in TARGETS]
        assert cut[1] != TARGETS[1] and cut[0] == TARGETS[0]  # the cut matters for the second target only
        assert [greedy(model, tok, p, 5) for p in PROMPTS] == cut

    def test_too_few_steps_is_an_error(self, tok):
        model = make_model(tok)
        with pytest.raises(RuntimeError, match=r"^train_to_outputs: smallest margin -?[0-9.]+ < 2.0 after 0 steps$"):
            train_to_outputs(model, tok, PROMPTS, TARGETS, max_steps=0)
