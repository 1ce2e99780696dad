"""The regex-first validator returns exactly what the validator before it returned.

``tests/validator_before.py`` is a frozen copy of the validator as it was before the
regex-first rewrite (marker scan for every output, eager diagnosis). On valid AND invalid
inputs, for random specs, completions and transcripts, both give the same verdict, fields,
error codes, messages and spans (``Validation.to_dict``), and the case table still holds. One
deliberate change: an invalid output whose reasoning block is well-formed now reports its
``reasoning`` (#16); it is checked against the reward regex on the repaired output.
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reasoning_kit.spec import load_spec
from reasoning_kit.validator import Validation, validate
from tests import validator_before as before
from tests.format_cases import CASES
from tests.test_properties import META, mutate, specs, valid_completions

SPEC = load_spec("working_out")
APPENDIX = (
    "You are given a problem.\nThink about the problem and provide your working out.\nPlace it between "
    "<start_working_out> and <end_working_out>.\nThen, provide your solution between <SOLUTION></SOLUTION>"
    "<|endoftext|>blah <SOLUTION>999</SOLUTION> junk <end_working_out><end_working_out><|endoftext|><|endoftext|>"
    "<start_working_out>I add.<end_working_out><SOLUTION>4</SOLUTION>"
)


def reasoning_block(spec, completion: str):
    """Oracle: the reasoning the reward regex reads when the output's first block is closed by a valid solution."""
    end = completion.find(spec.tags.reasoning_end)
    if end == -1:
        return None
    repaired = completion[: end + len(spec.tags.reasoning_end)] + spec.tags.solution_start + "1" + spec.tags.solution_end
    return validate(spec, repaired, transcript=False).reasoning


def same(spec, text, transcript=False) -> None:
    new = validate(spec, text, transcript=transcript)
    old = before.validate(spec, text, transcript=transcript)
    new_fields, old_fields = new.to_dict(), old.to_dict()
    if not new.valid:  # since #16, an invalid output with a well-formed reasoning block reports that reasoning
        expected = reasoning_block(spec, text[new.start:]) if new.codes != ("no_assistant_turn",) else None
        assert new_fields.pop("reasoning") == expected, text
        assert old_fields.pop("reasoning") is None
    assert new_fields == old_fields, text
    assert new.codes == old.codes


class TestSameAsBefore:
    @pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
    @pytest.mark.parametrize("transcript", [False, None, True])
    def test_case_table(self, case, transcript):
        same(SPEC, case[1], transcript)

    @pytest.mark.parametrize("transcript", [False, None, True])
    def test_appendix_transcript(self, transcript):
        same(SPEC, APPENDIX, transcript)

    @given(valid_completions(), st.data(), st.sampled_from([False, None, True]))
    @example(case=(SPEC, "a<end_working_out><SOLUTION>1</SOLUTION>", "a", "1"), data=None, transcript=False)
    def test_valid_and_mutated(self, case, data, transcript):
        spec, text, _, _ = case
        same(spec, text, transcript)
        for _ in range(data.draw(st.integers(1, 4)) if data else 0):
            text = mutate(spec, text, data)
            same(spec, text, transcript)

    @given(specs(), st.data())
    def test_tag_soup(self, spec, data):
        atoms = list(spec.markers) + [m[:-1] for m in spec.markers] + ["x", " ", "\n", "12", "1,000", "-3.5", "<"]
        text = "".join(data.draw(st.lists(st.sampled_from(atoms), max_size=16)))
        same(spec, text, data.draw(st.sampled_from([False, None])))

    @given(st.lists(st.sampled_from(list(SPEC.markers) + [SPEC.system_prompt] + META + ["x", "4"]), max_size=30),
           st.sampled_from([False, None, True]))
    def test_working_out_soup(self, atoms, transcript):
        same(SPEC, "".join(atoms), transcript)

    @given(st.text(max_size=200))
    def test_any_text(self, text):
        same(SPEC, text)


class TestResult:
    def test_errors_are_diagnosed_once_and_kept(self):
        result = validate(SPEC, "t<end_working_out><SOLUTION>4</SOLUTION> more")
        first = result.errors
        assert first is result.errors and [e.code for e in first] == ["trailing_text"]

    def test_immutable(self):
        result = validate(SPEC, "x")
        with pytest.raises(AttributeError, match="immutable"):
            result.valid = True

    @pytest.mark.parametrize("text", ["t<end_working_out><SOLUTION>4</SOLUTION><|im_end|>", "t<SOLUTION>4</SOLUTION>", 3])
    def test_pickles_equal(self, text):
        result = validate(SPEC, text)
        copy = pickle.loads(pickle.dumps(result))
        assert copy == result and isinstance(copy, Validation) and copy.to_dict() == result.to_dict()

    def test_eos_is_the_one_written(self):
        assert validate(SPEC, "t<end_working_out><SOLUTION>4</SOLUTION>\n<|im_end|> ").eos == "<|im_end|>"
        assert validate(SPEC, "t<end_working_out><SOLUTION>4</SOLUTION>\n").eos is None
