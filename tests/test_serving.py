"""response_template through the real transformers parser, completion shapes in the rewards,
the portable regex in the real llguidance engine, and constrained decoding on a tiny model."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from reasoning_kit import rewards
from reasoning_kit.completions import completion_text
from reasoning_kit.portable_regex import PortableRegexError, portable_pattern
from reasoning_kit.response_template import response_template
from reasoning_kit.spec import load_spec
from reasoning_kit.template import prompt_messages, render
from reasoning_kit.validator import validate
from tests.test_properties import mutate, specs, valid_completions

SHIPPED = [load_spec("working_out"), load_spec("think_answer")]


def parse(spec, completion: str) -> dict:
    from transformers.utils.chat_parsing import parse_response

    prompt = render(spec, prompt_messages(spec, "What is 2 + 2?"), add_generation_prompt=True)
    return parse_response(completion, response_template(spec), prefix=prompt)


def strip_start(spec, text: str) -> str:
    r0 = spec.tags.reasoning_start
    return text[len(r0):] if text.startswith(r0) else text


def lossless(spec, text: str) -> bool:
    """Not one of the two shapes the parser cannot tell apart (documented in docs/serving.md)."""
    r1 = spec.tags.reasoning_end
    return not text.startswith(r1) and not text.endswith(r1)


class TestResponseTemplate:
    @given(st.sampled_from(SHIPPED).flatmap(valid_completions))
    def test_valid_completions_parse_into_the_validators_fields(self, case):
        spec, text, reasoning, answer = case
        completion = strip_start(spec, text)  # what the model writes after the generation prompt
        parsed = parse(spec, completion)
        check = validate(spec, completion, transcript=False)
        assert check.valid
        assert parsed["thinking"] == check.reasoning == reasoning
        assert validate(spec, parsed["content"].strip(), transcript=False).valid is False  # content holds no reasoning
        assert completion_text(spec, [parsed]) == completion

    @given(st.sampled_from(SHIPPED).flatmap(valid_completions), st.data())
    @example(case=(SHIPPED[0], "x<end_working_out><SOLUTION>1</SOLUTION><start_working_out>y<end_working_out>z", "x", "1"),
             data=None).via("a second block cannot reopen thinking")
    def test_any_completion_round_trips_except_two_documented_shapes(self, case, data):
        spec, text, _, _ = case
        for _ in range(data.draw(st.integers(1, 3)) if data else 0):
            text = mutate(spec, text, data)
        completion = strip_start(spec, text)
        assume(lossless(spec, completion))
        assert completion_text(spec, [parse(spec, completion)]) == completion

    @pytest.mark.parametrize("completion", ["<end_working_out><SOLUTION>4</SOLUTION>", "I add.<end_working_out>"])
    def test_the_two_ambiguous_shapes(self, completion):
        spec = SHIPPED[0]
        assert completion_text(spec, [parse(spec, completion)]) != completion
        assert not validate(spec, completion, transcript=False).valid

    def test_saved_tokenizer_carries_it(self, tmp_path):
        from transformers import AutoTokenizer

        from harness.models import set_spec_templates
        from tests.tiny import corpus, make_tokenizer

        spec = SHIPPED[0]
        tok = make_tokenizer(spec, corpus(spec))
        set_spec_templates(tok, spec)
        tok.save_pretrained(tmp_path)
        again = AutoTokenizer.from_pretrained(tmp_path)
        assert again.response_template == response_template(spec)
        assert again.parse_response("a<end_working_out><SOLUTION>4</SOLUTION>", prefix="<start_working_out>") == {
            "role": "assistant", "thinking": "a", "content": "<SOLUTION>4</SOLUTION>"}


class TestCompletionShapes:
    @given(st.sampled_from(SHIPPED).flatmap(valid_completions), st.data())
    def test_three_shapes_score_alike(self, case, data):
        spec, text, _, answer = case
        for _ in range(data.draw(st.integers(0, 2))):
            text = mutate(spec, text, data)
        completion = strip_start(spec, text)
        assume(lossless(spec, completion))
        shapes = [completion, [{"role": "assistant", "content": completion}], [parse(spec, completion)]]
        prompt = prompt_messages(spec, "q")
        scores = [[f(prompts=[prompt], completions=[c], answer=[answer])[0] for f in rewards.build(spec)] for c in shapes]
        assert scores[0] == scores[1] == scores[2]


@pytest.fixture(scope="module")
def byte_tokenizer():
    llg = pytest.importorskip("llguidance")

    class Bytes:
        eos_token_id, bos_token_id, special_token_ids = 256, None, [256]
        tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]

        def __call__(self, s):
            return list(s if isinstance(s, bytes) else s.encode())

    return llg.LLTokenizer(llg.TokenizerWrapper(Bytes()))


def engine_accepts(tokenizer, pattern: str, text: str) -> bool:
    import llguidance as llg

    m = llg.LLMatcher(tokenizer, llg.LLMatcher.grammar_from_regex(pattern))
    assert not m.get_error(), m.get_error()
    ids = list(text.encode())
    return m.try_consume_tokens(ids) == len(ids) and m.is_accepting()


FORBIDDEN = {"ASSERT", "ASSERT_NOT", "MIN_REPEAT", "POSSESSIVE_REPEAT", "GROUPREF", "GROUPREF_EXISTS", "AT", "ANY",
             "ATOMIC_GROUP"}


def opcodes(tree):
    for op, arg in tree:
        yield str(op)
        if str(op) == "SUBPATTERN":
            assert arg[0] is None and arg[1] == 0 and arg[2] == 0, "capturing group or inline flags"
            yield from opcodes(arg[3])
        elif str(op) == "BRANCH":
            for sub in arg[1]:
                yield from opcodes(sub)
        elif str(op) in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            yield from opcodes(arg[2])


class TestPortableRegex:
    @pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.name)
    def test_uses_only_portable_constructs(self, spec):
        from re import _parser

        assert not FORBIDDEN & set(opcodes(_parser.parse(portable_pattern(spec))))

    @given(st.one_of(st.sampled_from(SHIPPED).flatmap(valid_completions), valid_completions()), st.data())
    @settings(max_examples=150)
    def test_engine_accepts_exactly_what_the_validator_accepts(self, byte_tokenizer, case, data):
        spec, text, _, _ = case
        try:
            pattern = portable_pattern(spec)
        except PortableRegexError:
            assume(False)
        for _ in range(data.draw(st.integers(0, 3))):
            text = mutate(spec, text, data)
        valid = validate(spec, text, transcript=False).valid
        assert engine_accepts(byte_tokenizer, pattern, text) == valid, text
        assert (re.fullmatch(pattern, text) is not None) == valid, text

    @given(st.data())
    @settings(max_examples=50)
    def test_strings_it_generates_are_valid(self, data):
        spec = data.draw(st.sampled_from(SHIPPED))
        text = data.draw(st.from_regex(portable_pattern(spec), fullmatch=True))
        assert validate(spec, text, transcript=False).valid, text

    def test_unsupported_spec_is_one_line(self):
        spec = next(s for s in [SHIPPED[0]])
        from dataclasses import replace

        odd = replace(spec, eos=("a<b",))
        with pytest.raises(PortableRegexError, match="starts a marker"):
            portable_pattern(odd)


class TestConstrainedDecoding:
    @pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.name)
    @pytest.mark.parametrize("budget,temperature", [(9, 0.0), (40, 1.0)])
    def test_every_output_validates(self, spec, budget, temperature):
        pytest.importorskip("llguidance")
        from harness.evaluate.generate import HFBackend, Sampling
        from harness.evaluate.prompts import encode_prompts, render_prompt
        from tests.tiny import corpus, make_model, make_tokenizer

        tok = make_tokenizer(spec, corpus(spec))
        model = make_model(tok, seed=3)
        ids = encode_prompts(tok, [render_prompt(spec, tok, f"What is {i} + 1?") for i in range(4)])
        for stop in (spec.tags.solution_end, None):
            backend = HFBackend(model, tok, max_new_tokens=budget, sampling=Sampling(temperature=temperature, seed=1),
                                stop=stop, constrained=spec)
            gens, _ = backend.generate(ids)
            for g in gens:
                assert validate(spec, g.text, transcript=False).valid, g.text


class TestGRPOTrainerParsedCompletions:
    """The real TRL GRPOTrainer with the spec's response_template on the tokenizer hands the
    rewards parsed messages; each scores as its raw decoded text does."""

    def test_parsed_messages_score_like_their_text(self, tmp_path):
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        from harness.models import set_spec_templates
        from tests.tiny import corpus, make_model, make_tokenizer

        spec = SHIPPED[0]
        tok = make_tokenizer(spec, corpus(spec))
        set_spec_templates(tok, spec)
        funcs = rewards.build(spec, tokenizer=tok)
        seen = []

        def capture(prompts=None, completions=None, completion_ids=None, **kw):
            seen.extend(zip(prompts, completions, completion_ids, kw["answer"]))
            return [0.0] * len(completions)

        rows = [{"prompt": [{"role": "user", "content": f"What is {a} + 1?"}], "answer": str(a + 1)} for a in range(4)]
        args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4,
                          max_completion_length=12, max_steps=2, logging_steps=1, beta=0.0, report_to="none",
                          use_cpu=True, bf16=False, save_strategy="no", generation_kwargs={"suppress_tokens": [tok.pad_token_id]})
        GRPOTrainer(model=make_model(tok), reward_funcs=[*funcs, capture], args=args,
                    train_dataset=Dataset.from_list(rows), processing_class=tok).train()
        assert len(seen) == 8
        for prompt, completion, ids, gold in seen:
            assert isinstance(completion, list) and completion[0]["role"] == "assistant"
            assert set(completion[0]) <= {"role", "thinking", "content"} and "content" in completion[0]
            raw = tok.decode(ids, skip_special_tokens=True)  # TRL's text form of the same completion
            if not lossless(spec, raw):
                continue
            for f in funcs:
                assert f(prompts=[prompt], completions=[completion], completion_ids=[ids], answer=[gold]) == \
                    f(prompts=[prompt], completions=[raw], completion_ids=[ids], answer=[gold]), (f.__name__, raw)
