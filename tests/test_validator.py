"""The validator: the shared case table, spans, transcripts, text answers, adversarial inputs."""

from __future__ import annotations

import dataclasses
import signal
from contextlib import contextmanager

import pytest

from reasoning_kit.regex import compile_reward_regex
from reasoning_kit.spec import load_spec
from reasoning_kit.template import render
from reasoning_kit.validator import CODES, validate
from tests.format_cases import CASES, EOS, R0, R1, S0, S1

SPEC = load_spec("working_out")
TEXT_SPEC = load_spec("think_answer")
IDS = [c[0] for c in CASES]


class TestCaseTable:
    @pytest.mark.parametrize("name, completion, valid, codes, answer", CASES, ids=IDS)
    def test_validator(self, name, completion, valid, codes, answer):
        result = validate(SPEC, completion)
        assert (result.valid, result.codes, result.answer) == (valid, codes, answer)

    @pytest.mark.parametrize("name, completion, valid, codes, answer", CASES, ids=IDS)
    def test_regex_agrees(self, name, completion, valid, codes, answer):
        match = compile_reward_regex(SPEC).fullmatch(completion)
        assert (match is not None) == valid
        if match:
            assert match.group("answer") == answer
            assert match.group("reasoning") == validate(SPEC, completion).reasoning

    @pytest.mark.parametrize("name, completion, valid, codes, answer", CASES, ids=IDS)
    def test_spans_lie_inside_the_text(self, name, completion, valid, codes, answer):
        for err in validate(SPEC, completion).errors:
            assert 0 <= err.start <= err.end <= len(completion)
            assert err.code in CODES and err.message

    def test_every_code_but_transcript_and_type_is_in_the_table(self):
        seen = {code for case in CASES for code in case[3]}
        assert set(CODES) - seen == {"no_assistant_turn", "not_text"}


class TestSpansAndFields:
    def test_trailing_text_span(self):
        text = f"t{R1}{S0}4{S1}  done  "
        (err,) = validate(SPEC, text).errors
        assert text[err.start : err.end] == "done"

    def test_text_between_blocks_span(self):
        text = f"t{R1} so there {S0}4{S1}"
        (err,) = validate(SPEC, text).errors
        assert text[err.start : err.end] == "so there"

    def test_answer_not_a_number_span(self):
        text = f"t{R1}{S0} about 4 {S1}"
        (err,) = validate(SPEC, text).errors
        assert text[err.start : err.end] == "about 4"

    def test_tag_in_reasoning_span(self):
        text = f"a {S1} b{R1}{S0}4{S1}"
        assert [text[e.start : e.end] for e in validate(SPEC, text).errors] == [S1]

    def test_reasoning_is_raw_and_answer_stripped(self):
        result = validate(SPEC, f"{R0}\n step \n{R1}{S0} 7 {S1}{EOS}")
        assert (result.reasoning, result.answer, result.eos) == ("\n step \n", "7", EOS)

    def test_tags_are_case_sensitive(self):
        assert not validate(SPEC, f"t{R1.upper()}{S0}4{S1}").valid


class TestTranscripts:
    def transcript(self, completion: str, history: bool = False) -> str:
        msgs = [{"role": "user", "content": "What is 1+1?"}]
        if history:
            msgs = [
                {"role": "user", "content": "What is 0+1?"},
                {"role": "assistant", "content": SPEC.completion("easy", "1")},
            ] + msgs
        return render(SPEC, msgs, add_generation_prompt=True) + completion

    @pytest.mark.parametrize("history", [False, True])
    def test_last_turn_is_validated(self, history):
        text = self.transcript(f"one plus one{R1}{S0}2{S1}{EOS}", history)
        result = validate(SPEC, text)
        assert (result.valid, result.answer, result.reasoning) == (True, "2", "one plus one")
        assert text[result.start :].startswith(R0 + "one plus one")

    def test_errors_index_the_full_transcript(self):
        text = self.transcript(f"x{R1}{S0}2{S1} extra")
        (err,) = validate(SPEC, text).errors
        assert err.code == "trailing_text" and text[err.start : err.end] == "extra"

    def test_transcript_can_be_turned_off(self):
        text = self.transcript(f"x{R1}{S0}2{S1}")
        assert validate(SPEC, text, transcript=False).codes[0] == "text_before_reasoning_start"

    def test_forced_transcript_without_assistant_turn(self):
        result = validate(SPEC, "a system prompt" + EOS + "question only", transcript=True)
        assert result.codes == ("no_assistant_turn",)


class TestTextAnswers:
    @pytest.mark.parametrize(
        "completion, valid, codes, answer",
        [
            ("<think>hm</think><answer>Paris</answer>", True, (), "Paris"),
            ("<think>hm</think>\n<answer>\n New  York \n</answer></s>", True, (), "New  York"),
            ("<think>hm</think><answer> </answer>", False, ("empty_answer",), None),
            ("<think>hm</think><answer>a <think> b</answer>", False, ("tag_in_answer",), None),
            ("<think>hm</think><answer>42</answer> ok", False, ("trailing_text",), "42"),
        ],
    )
    def test_think_answer_spec(self, completion, valid, codes, answer):
        result = validate(TEXT_SPEC, completion)
        assert (result.valid, result.codes, result.answer) == (valid, codes, answer)
        assert (compile_reward_regex(TEXT_SPEC).fullmatch(completion) is not None) == valid


class TestPercentAnswers:
    SPEC = dataclasses.replace(SPEC, answer=dataclasses.replace(SPEC.answer, allow_percent=True))

    @pytest.mark.parametrize(
        "answer, valid", [("50%", True), ("1,000.5%", True), ("50", True), ("50 %", False), ("%50", False), ("50%%", False)]
    )
    def test_percent_only_when_allowed(self, answer, valid):
        text = f"t{R1}{S0}{answer}{S1}"
        assert validate(self.SPEC, text).valid is valid
        assert (compile_reward_regex(self.SPEC).fullmatch(text) is not None) is valid
        assert validate(SPEC, text).valid is (valid and "%" not in answer)


class TestNeverRaises:
    @pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"], {"completion": "x"}])
    def test_non_strings(self, value):
        result = validate(SPEC, value)
        assert result.codes == ("not_text",) and not result.valid

    @pytest.mark.parametrize("text", ["\x00", "\ud800", R1 * 3, S1 + S0, EOS * 2, "<" * 50])
    def test_odd_strings(self, text):
        assert validate(SPEC, text).valid is False


@contextmanager
def hang_guard(seconds: int):
    """Fail instead of hanging if matching ever goes super-linear (not a speed test: see benchmarks/)."""

    def stop(signum, frame):
        raise AssertionError(f"took over {seconds}s: super-linear matching?")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


ADVERSARIAL = {
    "open tags": (R0 + "<end_working_ou") * 120_000,
    "many solution starts": f"t{R1}" + S0 * 400_000,
    "whitespace before a missing tag": "x" + " " * 4_000_000,
    "digits with bad commas": f"t{R1}{S0}" + "1," * 2_000_000 + "0",
    "nested-looking tags": ("<" * 1000 + "SOLUTION") * 400,
}


class TestAdversarial:
    @pytest.mark.parametrize("name", sorted(ADVERSARIAL))
    def test_four_megabytes_do_not_hang(self, name):
        text = ADVERSARIAL[name]
        with hang_guard(20):
            result = validate(SPEC, text)
            match = compile_reward_regex(SPEC).fullmatch(text)
        assert result.valid is False and match is None
