"""harness.audit.tokens.check_tokenizer (run by train and grpo): pad != eos, the spec's EOS, how tags tokenize."""

from __future__ import annotations

import pytest

from harness.train import TrainError
from harness.audit.tokens import check_tokenizer, tag_tokens
from reasoning_kit.spec import load_spec, parse_spec
from tests.tiny import corpus, make_tokenizer

SPEC = load_spec("working_out")


@pytest.fixture
def tok():
    return make_tokenizer(SPEC, corpus(SPEC, 10))


def _spec_with_eos(*eos: str):
    listed = ", ".join(f'"{e}"' for e in eos)
    return parse_spec(SPEC.text.replace('eos = ["<|endoftext|>", "<|im_end|>"]', f"eos = [{listed}]"))


class TestPadAndEos:
    def test_good_tokenizer_passes_unchanged(self, tok):
        report = check_tokenizer(SPEC, tok)
        assert (report.eos, report.pad, report.fixes, report.warnings) == ("<|endoftext|>", "<|pad|>", [], [])

    def test_pad_equal_to_eos_is_fixed(self, tok):
        tok.pad_token = tok.eos_token
        report = check_tokenizer(SPEC, tok)
        assert tok.pad_token == "<|pad|>" and tok.pad_token_id != tok.eos_token_id
        assert report.fixes == ["pad token '<|endoftext|>' -> '<|pad|>' (pad must differ from eos '<|endoftext|>')"]

    def test_pad_equal_to_eos_without_fix_is_an_error(self, tok):
        tok.pad_token = tok.eos_token
        with pytest.raises(TrainError) as err:
            check_tokenizer(SPEC, tok, fix=False)
        assert str(err.value) == (
            "the tokenizer's pad token '<|endoftext|>' is missing or equal to its eos token '<|endoftext|>': "
            "padding would be masked as end-of-sequence and the model would not learn to stop"
        )

    def test_eos_not_in_spec_switches_to_a_spec_eos_token(self, tok):
        tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
        spec = _spec_with_eos("<|im_end|>")
        report = check_tokenizer(spec, tok)
        assert tok.eos_token == "<|im_end|>"
        assert report.fixes == ["eos token '<|endoftext|>' -> '<|im_end|>' (the first of the spec's [output] eos that is a token)"]

    def test_eos_not_in_spec_and_no_spec_eos_token_is_an_error(self, tok):
        spec = _spec_with_eos("<|im_end|>")
        with pytest.raises(TrainError) as err:
            check_tokenizer(spec, tok)
        assert str(err.value) == (
            "the tokenizer's eos token '<|endoftext|>' is not one of the spec's end-of-sequence strings ['<|im_end|>'] "
            "(none of which is a single token of this tokenizer): add '<|endoftext|>' to [output] eos in <string>"
        )


class TestTagReport:
    def test_single_token_tags(self, tok):
        t = tag_tokens(tok, "<SOLUTION>")
        assert (len(t.ids), t.pieces, t.special, t.roundtrip) == (1, ("<SOLUTION>",), False, True)

    def test_multi_token_tags_are_reported_token_by_token(self):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast

        raw = Tokenizer(models.BPE())
        raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        raw.decoder = decoders.ByteLevel()
        raw.train_from_iterator(corpus(SPEC, 10), trainers.BpeTrainer(
            vocab_size=300, special_tokens=["<|endoftext|>", "<|pad|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False))
        fast = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|endoftext|>", pad_token="<|pad|>")
        report = check_tokenizer(SPEC, fast)
        start = report.tags[0]
        assert start.tag == "<start_working_out>" and len(start.ids) > 1 and start.roundtrip and not start.special
        assert "".join(start.pieces) == "<start_working_out>"
        assert report.lines()[1].startswith(f"  tag '<start_working_out>': {len(start.ids)} token(s): '")

    def test_special_token_tag_is_flagged(self, tok):
        tok.add_special_tokens({"additional_special_tokens": ["<SOLUTION>"]})
        report = check_tokenizer(SPEC, tok)
        sol = report.tags[2]
        assert sol.special and tok.decode(list(sol.ids), skip_special_tokens=True) == ""
        assert report.warnings == [
            "tag '<SOLUTION>' is a special token: decode with skip_special_tokens=False or the validator never sees it"
        ]
        assert "  tag '<SOLUTION>': special token, stripped by skip_special_tokens: '<SOLUTION>'" in report.lines()
