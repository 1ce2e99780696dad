"""`reasoning-kit audit`: each finding shown on a tiny tokenizer or model built to have it, and its absence."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from harness.audit.tags import audit
from harness.audit.training import untrained_rows
from harness.cli import main
from reasoning_kit.spec import load_spec, parse_spec
from tests.tiny import EOS, corpus, make_model, make_tokenizer

SPEC = load_spec("working_out")
THINK = load_spec("think_answer")


def structured(model):
    """Embedding rows of norm 1 (row i: unit vector i mod hidden): no row looks untrained."""
    import torch

    w = model.get_input_embeddings().weight
    with torch.no_grad():
        w.zero_()
        w[torch.arange(w.shape[0]), torch.arange(w.shape[0]) % w.shape[1]] = 1.0
    return model


@pytest.fixture
def tok():
    return make_tokenizer(SPEC, corpus(SPEC, 10))


def codes(report) -> list[tuple[str, str]]:
    return [(f.code, f.subject) for f in report.findings]


def raw_bpe(texts, *, unk: bool = False, vocab_size: int = 300):
    """A tokenizer that does not know the tags (byte-level BPE, or with ``unk`` a BPE with an unknown token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if unk:
        raw = Tokenizer(models.BPE(unk_token="[UNK]"))
        raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        raw.decoder = decoders.BPEDecoder()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, "<|pad|>", "[UNK]"], show_progress=False)
    else:
        raw = Tokenizer(models.BPE())
        raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        raw.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, "<|pad|>"], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token=EOS, pad_token="<|pad|>",
                                   unk_token="[UNK]" if unk else None)


class TestClean:
    def test_tags_as_tokens_and_a_trained_model_give_no_finding(self, tok):
        report = audit(SPEC, tok, structured(make_model(tok)))
        assert report.findings == []
        assert report.loss["eos_trained"] and report.loss["trained_tail"][-1] == EOS
        assert [s["n_tokens"] for s in report.strings[:4]] == [1, 1, 1, 1]
        assert report.lines()[-1] == "no findings"

    @pytest.mark.parametrize("completion_only", [True, False])
    def test_stop_token_gets_loss_with_either_mask(self, tok, completion_only):
        report = audit(SPEC, tok, completion_only=completion_only)
        assert report.loss["eos_trained"] and report.loss["prompt_tokens_prefix"]


class TestTokenizerFindings:
    def test_special_tag(self, tok):
        tok.add_special_tokens({"additional_special_tokens": ["<SOLUTION>"]})
        report = audit(SPEC, tok)
        assert codes(report) == [("tag_special", "<SOLUTION>")]
        assert "skip_special_tokens" in report.findings[0].problem and "tokenizer.add_tokens" in report.findings[0].fix

    def test_missing_tag_is_missing_not_special(self):
        tok = raw_bpe(["What is two plus two ? We add two and two and get four ."] * 5, unk=True, vocab_size=60)
        report = audit(SPEC, tok)
        assert codes(report) == [("tag_missing", t) for t in SPEC.tag_list]
        assert all(not s["special"] and s["missing"] for s in report.strings[:4])
        assert "missing from the vocabulary" in report.findings[0].problem

    def test_bpe_merging_a_tag_with_whitespace(self):
        tok = raw_bpe([" <think> a </think> <answer> b </answer>"] * 50)
        report = audit(THINK, tok)
        merged = [s for c, s in codes(report) if c == "whitespace_merge"]
        assert "<think>" in merged
        think = next(s for s in report.strings if s["text"] == "<think>")
        assert tok.encode(" <think>") != tok.encode(" ") + tok.encode("<think>") and "' '+tag" in think["whitespace_merges"]

    def test_eos_the_spec_does_not_list_and_no_spec_eos_token(self, tok):
        spec = parse_spec(SPEC.text.replace('eos = ["<|endoftext|>", "<|im_end|>"]', 'eos = ["<|im_end|>"]'))
        report = audit(spec, tok)
        assert codes(report)[0] == ("eos_unusable", EOS)

    def test_pad_equal_to_eos_is_a_note_train_fixes(self, tok):
        tok.pad_token = tok.eos_token
        report = audit(SPEC, tok)
        assert report.findings == [] and report.notes == [
            "train fixes: pad token '<|endoftext|>' -> '<|pad|>' (pad must differ from eos '<|endoftext|>')"]


class TestStopToken:
    def test_a_stop_token_of_several_tokens_never_gets_loss(self, tok):
        spec = parse_spec(SPEC.text.replace('eos = ["<|endoftext|>", "<|im_end|>"]', 'eos = ["<|im_end|>", "<|endoftext|>"]'))
        tok.eos_token = "<|im_end|>"  # not one token of this tokenizer: the text ends with its byte pieces
        report = audit(spec, tok)
        assert ("stop_token_not_trained", "<|im_end|>") in codes(report)
        assert report.loss["eos_trained"] is False and "".join(report.loss["trained_tail"]).endswith("|>")


class TestUntrainedEmbeddings:
    @pytest.mark.parametrize("how", ["zero", "mean"])
    def test_untrained_row_of_the_stop_token(self, tok, how):
        import torch

        model = structured(make_model(tok))
        w = model.get_input_embeddings().weight
        with torch.no_grad():
            w[tok.eos_token_id] = 0.0 if how == "zero" else w.mean(dim=0)
        report = audit(SPEC, tok, model)
        assert codes(report) == [("untrained_embedding", EOS)]
        assert ("row norm 0 <" if how == "zero" else "distance to the mean row") in report.findings[0].problem
        assert "first in [output] eos" in report.findings[0].fix

    def test_untrained_row_of_a_tag(self, tok):
        import torch

        model = structured(make_model(tok))
        with torch.no_grad():
            model.get_input_embeddings().weight[tok.convert_tokens_to_ids("<SOLUTION>")] = 0.0
        assert codes(audit(SPEC, tok, model)) == [("untrained_embedding", "<SOLUTION>")]

    def test_criterion_is_relative_to_the_median(self):
        import torch

        w = torch.ones(11, 4) * torch.arange(1, 12).unsqueeze(1)  # row i has norm 2 (i + 1)
        w[0] = 0.4  # norm 0.8 < 0.1 x the median norm 12: untrained; row 1 (norm 4) is not
        assert list(untrained_rows(w, [0, 1, 99])) == [0]


class TestTemplate:
    def test_generation_prompt_that_the_answer_does_not_start_with(self, tok):
        spec = parse_spec(SPEC.text.replace('generation = "{reasoning_start}"', 'generation = "{reasoning_start}\\n"'))
        report = audit(spec, tok, completion_only=True)
        assert ("template_not_prefix_preserving", "template") in codes(report)
        assert report.loss is None  # the SFT columns refuse such data


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model with no findings, shared by TestCli (a module fixture: pytest 10 drops class fixtures on self)."""
    tok = make_tokenizer(SPEC, corpus(SPEC, 10))
    path = tmp_path_factory.mktemp("audit") / "model"
    structured(make_model(tok)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


class TestCli:
    def test_no_findings_exit_0(self, model_dir):
        result = CliRunner().invoke(main, ["audit", "--spec", "working_out", "--model", str(model_dir), "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["findings"] == []

    def test_findings_exit_1(self, model_dir, tmp_path):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tok = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
        with torch.no_grad():
            model.get_input_embeddings().weight[tok.eos_token_id] = 0.0
        model.save_pretrained(tmp_path / "m")
        tok.save_pretrained(tmp_path / "m")
        result = CliRunner().invoke(main, ["audit", "--spec", "working_out", "--model", str(tmp_path / "m")])
        assert result.exit_code == 1
        assert f"finding untrained_embedding: {EOS!r}" in result.stdout and "  fix: " in result.stdout

    def test_tokenizer_only_skips_the_weights(self, model_dir):
        result = CliRunner().invoke(main, ["audit", "--model", str(model_dir), "--tokenizer-only", "--json"])
        assert result.exit_code == 0 and "--tokenizer-only: embedding rows not checked" in json.loads(result.stdout)["notes"]

    def test_bad_model_is_a_usage_error(self, tmp_path):
        result = CliRunner().invoke(main, ["audit", "--model", str(tmp_path / "nothing")])
        assert result.exit_code == 2 and result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1
