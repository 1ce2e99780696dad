"""The generated chat template: golden files, byte-identity with the seed's, escaping.

Regenerate the golden files after an intended change with:
    reasoning-kit template --spec working_out > tests/golden/working_out.jinja
    reasoning-kit template --spec think_answer > tests/golden/think_answer.jinja
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jinja2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reasoning_kit.spec import load_spec, shipped_specs
from reasoning_kit.template import _compiled, chat_template, jinja_string, render
from tests import seed_reference as seed
from tests.tiny import corpus, make_tokenizer

GOLDEN = Path(__file__).parent / "golden"
SPEC = load_spec("working_out")
NASTY = "It's \"quoted\" \\ back\\slash \\n not-a-newline\nreal newline {{ x }} {% if %} {# c #} \t tab é ☃ 𝄞 \r\n end'"


def seed_render(messages, add_generation_prompt=False, eos_token="<|endoftext|>"):
    return _compiled(seed.seed_chat_template()).render(
        messages=messages, add_generation_prompt=add_generation_prompt, eos_token=eos_token
    )


class TestGolden:
    @pytest.mark.parametrize("name", shipped_specs())
    def test_template_matches_golden_file(self, name):
        assert (GOLDEN / f"{name}.jinja").read_text() == chat_template(load_spec(name)) + "\n"

    def test_seed_example_renders_as_the_article_prints_it(self):
        out = render(SPEC, seed.SEED_EXAMPLE_MESSAGES, add_generation_prompt=True)
        assert out == seed.SEED_EXAMPLE_RENDERED


CONVERSATIONS = {
    "user only": [{"role": "user", "content": "What is 2+2?"}],
    "with system": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "seed system": [{"role": "system", "content": seed.system_prompt}, {"role": "user", "content": "Q"}],
    "multi-turn": seed.SEED_EXAMPLE_MESSAGES,
    "training row": [
        {"role": "system", "content": seed.system_prompt},
        {"role": "user", "content": "Q?"},
        {"role": "assistant", "content": SPEC.completion("think", "4")},
    ],
    "assistant first": [{"role": "assistant", "content": "hello"}],
    "other role ignored": [{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}],
    "empty contents": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}],
}


class TestSeedIdentity:
    @pytest.mark.parametrize("name", sorted(CONVERSATIONS))
    @pytest.mark.parametrize("gen", [False, True])
    @pytest.mark.parametrize("eos", ["<|endoftext|>", "<|im_end|>"])
    def test_fixed_conversations(self, name, gen, eos):
        msgs = CONVERSATIONS[name]
        assert render(SPEC, msgs, add_generation_prompt=gen, eos_token=eos) == seed_render(msgs, gen, eos)

    @given(
        system=st.one_of(st.none(), st.text(max_size=40)),
        turns=st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text(max_size=60)), min_size=1, max_size=6),
        gen=st.booleans(),
        eos=st.sampled_from(["<|endoftext|>", "</s>", ""]),
    )
    @example(system=None, turns=[("user", "{{ 'x' }} {% raw %}")], gen=True, eos="<|endoftext|>")
    def test_any_conversation(self, system, turns, gen, eos):
        msgs = ([{"role": "system", "content": system}] if system is not None else []) + [
            {"role": r, "content": c} for r, c in turns
        ]
        assert render(SPEC, msgs, add_generation_prompt=gen, eos_token=eos) == seed_render(msgs, gen, eos)


class TestEscaping:
    def test_seed_str_replace_breaks_on_an_apostrophe(self):
        with pytest.raises(jinja2.TemplateSyntaxError):
            _compiled(seed.seed_chat_template(system_prompt="Don't guess."))

    @given(st.text(max_size=80))
    @example(NASTY)
    @example("\x00\x1f\x7f\u2028\ud800")
    def test_jinja_string_round_trips(self, text):
        assert _compiled("{{ " + jinja_string(text) + " }}").render() == text

    @given(system=st.text(max_size=80), gen=st.text(max_size=20))
    @example(system=NASTY, gen="<it's {{here}}>")
    def test_system_and_generation_prompts_render_as_written(self, system, gen):
        spec = dataclasses.replace(SPEC, system_prompt=system, generation_prompt=gen)
        out = render(spec, [{"role": "user", "content": "Q"}], add_generation_prompt=True, eos_token="<E>")
        assert out == system + "<E>" + "Q" + gen


class TestThroughTransformers:
    """tokenizer.apply_chat_template (transformers' sandboxed Jinja) gives the same bytes."""

    @pytest.fixture(scope="class")
    @classmethod
    def tokenizer(cls):
        return make_tokenizer(SPEC, corpus(SPEC, 8))

    @pytest.mark.parametrize("name", sorted(CONVERSATIONS))
    @pytest.mark.parametrize("gen", [False, True])
    def test_same_as_render(self, tokenizer, name, gen):
        msgs = CONVERSATIONS[name]
        via_hf = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        assert via_hf == render(SPEC, msgs, add_generation_prompt=gen, eos_token=tokenizer.eos_token)

    def test_metacharacters_through_apply_chat_template(self, tokenizer):
        spec = dataclasses.replace(SPEC, system_prompt=NASTY, generation_prompt="<it's {% x %}>")
        tokenizer.chat_template = chat_template(spec)
        try:
            out = tokenizer.apply_chat_template(
                [{"role": "user", "content": "Q"}], tokenize=False, add_generation_prompt=True
            )
        finally:
            tokenizer.chat_template = chat_template(SPEC)
        assert out == NASTY + tokenizer.eos_token + "Q<it's {% x %}>"


class TestRenderErrors:
    @pytest.mark.parametrize(
        "messages, message",
        [
            ([], "a conversation needs at least one message"),
            ([{"role": "user"}], "message 0 must be an object with string 'role' and 'content'"),
            ([{"role": "user", "content": "a"}, "b"], "message 1 must be an object with string 'role' and 'content'"),
        ],
    )
    def test_bad_messages(self, messages, message):
        with pytest.raises(ValueError) as info:
            render(SPEC, messages)
        assert str(info.value) == message
