"""response_template through the real transformers parser, completion shapes in the rewards,
the portable regex in the real llguidance engine, and constrained decoding on a tiny model."""

from __future__ import annotations

import re
from functools import lru_cache

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


def constrained_tokenizer(spec, kind: str):
    """'tags': each tag one added token (the easy case); 'bpe': tags spelt in several BPE tokens
    and a ChatML '<|im_end|>' EOS, as the real SmolLM2 tokenizer has them."""
    from tests.tiny import corpus, make_tokenizer

    if kind == "tags":
        return make_tokenizer(spec, corpus(spec))
    tok = make_tokenizer(spec, corpus(spec), eos="<|im_end|>", tag_tokens=False)
    assert all(len(tok.encode(t, add_special_tokens=False)) > 1 for t in spec.tag_list)
    assert tok.encode("<|im_end|>", add_special_tokens=False) == [tok.eos_token_id]
    return tok


def shortest_output(spec, tok) -> int:
    """Tokens of the spec's shortest valid output with this tokenizer (what the budget must hold)."""
    from llguidance import LLMatcher

    from harness.constrained import _ll_tokenizer, closing_plans, grammar, shortest_plan

    m = LLMatcher(_ll_tokenizer(tok, len(tok), (tok.eos_token_id,)), grammar(spec))
    return len(shortest_plan(m, closing_plans(spec, tok), tok.eos_token_id))


def constrained_generate(spec, model, tok, questions, *, budget, temperature=0.0, stop=None):
    from harness.evaluate.generate import HFBackend, Sampling
    from harness.evaluate.prompts import encode_prompts, render_prompt

    ids = encode_prompts(tok, [render_prompt(spec, tok, q) for q in questions])
    backend = HFBackend(model, tok, max_new_tokens=budget, sampling=Sampling(temperature=temperature, seed=1),
                        stop=stop, constrained=spec)
    return backend.generate(ids)[0]


class TestConstrainedDecoding:
    """Valid by construction whatever the weights: random tiny models, multi-token tags."""

    @pytest.mark.parametrize("kind", ["tags", "bpe"])
    @pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.name)
    @pytest.mark.parametrize("extra,temperature", [(0, 0.0), (3, 1.0), (40, 1.0)])
    @pytest.mark.parametrize("stop", [True, False], ids=["stop", "no_stop"])
    def test_every_output_validates_within_the_budget(self, spec, kind, extra, temperature, stop):
        pytest.importorskip("llguidance")
        from tests.tiny import make_model

        tok = constrained_tokenizer(spec, kind)
        budget = shortest_output(spec, tok) + extra  # extra 0: the guard closes from the first token
        gens = constrained_generate(spec, make_model(tok, seed=3), tok, [f"What is {i} + 1?" for i in range(4)],
                                    budget=budget, temperature=temperature, stop=spec.tags.solution_end if stop else None)
        for g in gens:
            assert validate(spec, g.text, transcript=False).valid, g.text
            assert g.n_tokens <= budget

    @pytest.mark.parametrize("kind", ["tags", "bpe"])
    def test_a_budget_below_the_shortest_output_is_one_line(self, kind):
        pytest.importorskip("llguidance")
        from harness.constrained import ConstrainedError
        from tests.tiny import make_model

        spec = SHIPPED[0]
        tok = constrained_tokenizer(spec, kind)
        need = shortest_output(spec, tok)
        with pytest.raises(ConstrainedError, match=rf"^max_new_tokens={need - 1} is too small .* {need} tokens"):
            constrained_generate(spec, make_model(tok), tok, ["What is 1 + 1?"], budget=need - 1)

    @given(st.sampled_from(SHIPPED).flatmap(valid_completions), st.integers(0, 2**32 - 1))
    @settings(max_examples=40)
    def test_every_prefix_the_grammar_allows_has_a_closing_plan(self, case, seed):
        """Wherever free decoding can be when the guard starts (any token prefix of a valid text,
        including a half-written tag or character), some plan closes it: the guard never gives up."""
        llg = pytest.importorskip("llguidance")
        import random

        from harness.constrained import _ll_tokenizer, closing_plans, continuation_tokens, grammar, shortest_plan

        spec, text, _, _ = case
        tok = _bpe_tokenizers()[spec.name]
        eos = tok.eos_token_id
        text = next((text[:i] for i in range(len(text)) if text[i:].startswith(spec.eos)), text)  # EOS is a token
        ids = tok.encode(strip_start(spec, text), add_special_tokens=False)
        rng = random.Random(seed)
        if ids and rng.random() < 0.5:  # split a token into its bytes: half-written characters, odd spellings
            i = rng.randrange(len(ids))
            ids[i:i + 1] = [tok.convert_tokens_to_ids(c) for c in tok.convert_ids_to_tokens(ids[i])]
        plans, bytes_ = closing_plans(spec, tok), continuation_tokens(tok)
        m = llg.LLMatcher(_ll_tokenizer(tok, len(tok), (eos,)), grammar(spec))
        for k, token in enumerate(ids):
            plan = shortest_plan(m, plans, eos, continuations=bytes_)
            assert plan is not None, tok.decode(ids[:k])
            assert m.consume_token(token), tok.decode(ids[:k + 1])
        assert shortest_plan(m, plans, eos) == []


@lru_cache(maxsize=1)
def _bpe_tokenizers() -> dict:
    return {spec.name: constrained_tokenizer(spec, "bpe") for spec in SHIPPED}


@pytest.mark.slow
def test_constrained_outputs_of_the_offline_model_validate():
    """The real SmolLM2-135M-Instruct (multi-token tags, '<|im_end|>' EOS) when it is in the cache:
    greedy constrained outputs on GSM8K questions validate and end within the budget."""
    pytest.importorskip("llguidance")
    from harness import models

    where = models.cache_dir() / "models" / "smollm2-135m-instruct"
    if not (where / "config.json").is_file():
        pytest.skip(f"offline model not cached at {where}")
    from harness.evaluate.loading import load_for_eval

    spec = SHIPPED[0]
    model, tok, _ = load_for_eval(str(where), device="cpu")
    questions = ["Janet has 16 eggs and eats 3. How many are left?", "A robe takes 2 bolts of blue fiber and half "
                 "that much white fiber. How many bolts in total does it take?"]
    for budget in (shortest_output(spec, tok), 40):
        for g in constrained_generate(spec, model, tok, questions, budget=budget):
            assert validate(spec, g.text, transcript=False).valid, g.text
            assert g.n_tokens <= budget


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
