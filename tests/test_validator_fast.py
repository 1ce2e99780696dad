"""The marker-cut validator (``reasoning_kit.markers`` + ``validator._Reader``) changes no result.

Two references, neither of which shares the new code path:

- the reward regex (``reasoning_kit.regex``), an independent statement of the format: the
  verdict, the reasoning, the answer and the EOS of every valid output must be what its
  ``fullmatch`` reads;
- ``tests/validator_before.py``, the frozen validator from before the regex-first rewrite:
  verdict, fields, error codes, messages and spans must be equal (``same``, which also checks
  the reasoning of invalid outputs against the regex).

Inputs: a fixed corpus of GSM8K-length completions (worked solutions with and without their
``<<...>>`` calculator annotations, so the markers' first character is both rare and dense),
in valid and broken shapes and mutated, plus Hypothesis soups: tags in odd places, duplicated
and nested tags, EOS strings inside blocks, case variants, partial tags, Unicode whitespace
and characters, empty strings, more markers than the cut reads, and random specs (markers
with different first characters, tags that overlap themselves). ``tag_counts`` must equal
``str.count`` on all of them.

``Validation.codes`` read before ``errors`` takes the codes-only path
(``diagnosis.quick_codes``: the usual broken shapes read off the cut, no messages or spans);
on every input above it must give the full diagnosis's codes, in order, and the frozen
validator's. ``TestQuickCodes`` checks that the shapes the reward benchmark logs do take it.
"""

from __future__ import annotations

import json
import pickle
import random
import re
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reasoning_kit.diagnosis import diagnose, quick_codes
from reasoning_kit.markers import Scan, occurrences, split
from reasoning_kit.regex import compile_reward_regex
from reasoning_kit.spec import load_spec, parse_spec
from reasoning_kit.validator import _MOST, Validation, _reader, tag_counts, validate
from tests import validator_before as before
from tests.test_properties import META, mutate, specs, valid_completions
from tests.test_validator_speedup import same

WORKING_OUT, THINK_ANSWER = load_spec("working_out"), load_spec("think_answer")
GSM8K = Path(__file__).resolve().parent.parent / "harness" / "datasets" / "gsm8k" / "train.jsonl"
ANNOTATION = re.compile(r"<<[^>]*>>")
SPACES = [" ", "\n", "\t", "\u00a0", "\u2003", "\u3000", "\x1c", "\x85"]  # str.isspace, like the regex's \s
KINDS = ["valid", "valid_eos", "valid_start", "valid_spaces", "trailing", "missing_end", "duplicate", "truncated",
         "between", "words", "no_solution", "after_eos", "eos_early", "tag_in_answer", "many_markers", "case"]


def check(spec, text: str) -> None:
    """The result equals the reward regex's reading (valid outputs) and the frozen validator's (all)."""
    same_codes(spec, text, transcript=False)
    result = validate(spec, text, transcript=False)
    match = compile_reward_regex(spec).fullmatch(text)
    assert result.valid == (match is not None), text
    if match is not None:
        assert (result.reasoning, result.answer) == (match.group("reasoning"), match.group("answer"))
        after = text[match.end("answer"):]
        assert result.eos == next((e for e in spec.eos if e in after), None)
    assert tag_counts(spec, text, result) == [text.count(t) for t in spec.tag_list]
    same(spec, text)


def same_codes(spec, text: str, transcript: bool | None) -> None:
    """``codes`` read first (the codes-only path) equals the full diagnosis's codes and the frozen validator's."""
    quick = validate(spec, text, transcript=transcript).codes
    full = tuple(e.code for e in validate(spec, text, transcript=transcript).errors)
    assert quick == full == before.validate(spec, text, transcript=transcript).codes, text
    valid, _, _, _, cut = _reader(spec).read(text)
    if not valid and cut is not None:  # quick_codes itself, where it answers, against diagnose on the same text
        answer = quick_codes(spec, text, cut)
        assert answer is None or answer == tuple(e.code for e in diagnose(Scan(spec, text))), text


@lru_cache(maxsize=1)
def solutions() -> tuple[tuple[str, str], ...]:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()[:300]]
    return tuple((r["answer"].split("####")[0].strip(), r["answer"].split("####")[1].strip()) for r in rows)


def completion(spec, kind: str, rng: random.Random) -> str:
    """One GSM8K-length completion of ``kind`` (about 1-4k characters)."""
    r0, r1, s0, s1 = spec.tag_list
    eos = rng.choice(spec.eos)
    parts, target = [], rng.randint(1000, 4000)
    while sum(map(len, parts)) < target:
        reasoning, gold = rng.choice(solutions())
        parts.append(reasoning if rng.random() < 0.5 else ANNOTATION.sub("", reasoning))  # dense or rare "<"
    reasoning = "\n\n".join(parts)[:target]
    answer = gold if rng.random() < 0.7 else f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}"
    body = f"{reasoning}{r1}\n{s0}{answer}{s1}"
    return {
        "valid": body,
        "valid_eos": body + eos,
        "valid_start": r0 + body + "\n" + eos + "\n",
        "valid_spaces": f"{reasoning}{r1}{rng.choice(SPACES)}{s0}{rng.choice(SPACES)}{answer} {s1}\u2003{eos}\x85",
        "trailing": body + "\n\nI hope this helps!",
        "missing_end": f"{reasoning}{s0}{answer}{s1}",
        "duplicate": body + f"{s0}{answer}{s1}",
        "truncated": body[: rng.randint(len(body) // 2, len(body))],
        "between": f"{reasoning}{r1}\nSo the answer is:\n{s0}{answer}{s1}",
        "words": f"{reasoning}{r1}{s0}{answer} dollars{s1}",
        "no_solution": f"{reasoning}{r1}\nThe answer is {answer}.",
        "after_eos": body + eos + "\nUser: thanks",
        "eos_early": f"{reasoning[:50]}{eos}{reasoning[50:]}{r1}{s0}{answer}{s1}",
        "tag_in_answer": f"{reasoning}{r1}{s0}{answer}{r0}{s1}",
        "many_markers": body + (s0 + s1 + eos) * rng.randint(2, 5),
        "case": f"{reasoning}{r1.upper()}{s0.lower()}{answer}{s1.swapcase()}",
    }[kind]


def corpus(spec, n: int, seed: int) -> list[str]:
    """``n`` completions of every kind, half of them mutated once or twice (a fixed seed)."""
    rng = random.Random(seed)
    atoms = list(spec.markers) + [m[:-1] for m in spec.markers] + [m[1:] for m in spec.markers] + SPACES + [
        spec.tag_list[0][0], "x", "7", ",", "é", "𝄞", ""]
    out = []
    for i in range(n):
        text = completion(spec, KINDS[i % len(KINDS)], rng)
        for _ in range(rng.choice([0, 0, 1, 2])):
            pos = rng.randint(0, len(text))
            if rng.random() < 0.6:
                text = text[:pos] + rng.choice(atoms) + text[pos:]
            else:
                text = text[:pos] + text[pos + rng.randint(1, 40):]
        out.append(text)
    return out


class TestCorpus:
    @pytest.mark.parametrize("spec", [WORKING_OUT, THINK_ANSWER], ids=["working_out", "think_answer"])
    def test_gsm8k_length_completions(self, spec):
        texts = corpus(spec, 640, seed=17)
        assert sum(validate(spec, t, transcript=False).valid for t in texts) > 100  # both verdicts are exercised
        for text in texts:
            check(spec, text)

    def test_every_kind_as_transcript_too(self):
        for text in corpus(WORKING_OUT, 2 * len(KINDS), seed=3):
            for transcript in (None, True):
                same(WORKING_OUT, WORKING_OUT.system_prompt + WORKING_OUT.eos[0] + text, transcript)
                same_codes(WORKING_OUT, WORKING_OUT.system_prompt + WORKING_OUT.eos[0] + text, transcript)


def odd_atoms(spec) -> list[str]:
    """Pieces that put markers in odd places: whole, partial, case-changed, doubled, among spaces and Unicode."""
    return list(spec.markers) + [m[:-1] for m in spec.markers] + [m[1:] for m in spec.markers] + [
        t.swapcase() for t in spec.tag_list] + [m + m for m in spec.markers] + SPACES + META + [
        "x", "12", "1,000", "-3.5", "50%", "é", "𝄞", "\u200b", ""]


class TestHypothesis:
    @given(st.sampled_from([WORKING_OUT, THINK_ANSWER]), st.data())
    @example(spec=WORKING_OUT, data=None)
    def test_tags_in_odd_places(self, spec, data):
        atoms = odd_atoms(spec)
        text = "".join(data.draw(st.lists(st.sampled_from(atoms), max_size=40))) if data else ""
        check(spec, text)

    @given(st.sampled_from([WORKING_OUT, THINK_ANSWER]), st.data())
    def test_more_markers_than_the_cut_reads(self, spec, data):
        """At least ``_MOST`` markers: the verdict counts instead of cutting (and must agree)."""
        r0, r1, s0, s1 = spec.tag_list
        filler = st.sampled_from(list(spec.markers) + ["x", " ", "4"])
        head = "".join(data.draw(st.lists(filler, max_size=6)))
        markers = data.draw(st.lists(st.sampled_from(spec.markers), min_size=_MOST, max_size=_MOST + 4))
        check(spec, head + "t" + r1 + s0 + "4" + s1 + "".join(markers))
        check(spec, "t" + r1 + "".join(markers[:3]) + s0 + "4" + s1)

    @given(valid_completions(), st.data())
    def test_random_specs_mutated(self, case, data):
        """Random specs: markers with different first characters, metacharacters, self-overlapping tags."""
        spec, text, _, _ = case
        check(spec, text)
        for _ in range(data.draw(st.integers(1, 4))):
            text = mutate(spec, text, data)
            check(spec, text)

    @given(specs(), st.data())
    def test_random_spec_soup(self, spec, data):
        text = "".join(data.draw(st.lists(st.sampled_from(odd_atoms(spec)), max_size=24)))
        check(spec, text)

    @given(st.text(max_size=120))
    def test_any_text(self, text):
        check(WORKING_OUT, text)

    @given(st.data())
    def test_self_overlapping_tags(self, data):
        """Tags whose end is their own start ("<a<a"): str.count and the cut count them alike."""
        spec = parse_spec(
            "spec_version = 1\nname = \"self\"\n[tags]\nreasoning_start = \"<r<r\"\nreasoning_end = \"<e<e\"\n"
            "solution_start = \"<s<s\"\nsolution_end = \"<t<t\"\n[prompt]\nsystem = \"x {reasoning_start}\"\n"
            "[output]\neos = [\"<z<z\"]\n[answer]\nkind = \"number\"\n", "self.toml"
        )
        atoms = list(spec.markers) + ["<r", "<e", "<s", "<t", "<z", "<", "x", "4", " "]
        check(spec, "".join(data.draw(st.lists(st.sampled_from(atoms), max_size=30))))


class TestSplit:
    @given(st.sampled_from([WORKING_OUT, THINK_ANSWER]), st.data())
    def test_parts_rebuild_the_text_and_match_the_scan(self, spec, data):
        text = "".join(data.draw(st.lists(st.sampled_from(odd_atoms(spec)), max_size=30)))
        start = data.draw(st.integers(0, len(text)))
        most = data.draw(st.sampled_from([0, 1, 3, _MOST]))
        offset, parts = split(spec.markers, text, start, most)
        assert start <= offset <= len(text) and "".join(parts) == text[offset:]
        expected = [(p, m) for p, m in occurrences(spec.markers, text[start:])]
        found = parts[1::2]
        assert found == [m for _, m in expected][: most or None]
        assert not any(m in text[start:offset] for m in spec.markers)

    def test_doc_example(self):
        assert split(("<a>", "<b>"), "x < y<a> 1 <b>") == (5, ["", "<a>", " 1 ", "<b>", ""])

    def test_no_marker(self):
        assert split(WORKING_OUT.markers, "a < b", 0, _MOST) == (5, [""])


class TestResultObject:
    TEXT = "I add.<end_working_out><SOLUTION>4</SOLUTION><|im_end|>"

    def test_results_are_validations_and_immutable(self):
        for text in (self.TEXT, self.TEXT + " x", "x"):
            result = validate(WORKING_OUT, text)
            assert type(result) is Validation
            with pytest.raises(AttributeError, match="immutable"):
                result.answer = "5"
            with pytest.raises(AttributeError, match="immutable"):
                del result.valid

    def test_reasoning_is_cut_when_read_and_kept(self):
        result = validate(WORKING_OUT, self.TEXT)
        assert result.reasoning == "I add." and result.reasoning is result.reasoning

    def test_pickled_before_reading_equals_the_original(self):
        result = validate(WORKING_OUT, self.TEXT + " trailing")
        copy = pickle.loads(pickle.dumps(result))
        assert copy == result and copy.codes == ("text_after_eos",) and copy.reasoning == "I add."

    def test_tag_counts_of_another_text_are_counted(self):
        result = validate(WORKING_OUT, self.TEXT, transcript=False)
        other = "<SOLUTION><SOLUTION>"
        assert tag_counts(WORKING_OUT, other, result) == [0, 0, 2, 0]
        assert tag_counts(WORKING_OUT, other) == [0, 0, 2, 0]


class TestQuickCodes:
    """The broken shapes GRPO logs most read their codes off the cut (and say what ``diagnose`` says)."""

    R0, R1, S0, S1 = WORKING_OUT.tag_list
    EOS = WORKING_OUT.eos[0]
    BODY = f"I add 2 and 2.{R1}\n{S0}4{S1}"
    SHAPES = {
        "empty": ("  \n", ("empty",)),
        "truncated": ("I add 2 and", ("truncated",)),
        "truncated_after_start": (f"{R0}I add 2 and", ("truncated",)),
        "truncated_case": ("I add.<solution>4", ("truncated", "tag_case_mismatch")),
        "truncated_in_solution": (f"I add.{R1}{S0}4", ("truncated",)),
        "trailing_text": (BODY + "\nHope this helps!", ("trailing_text",)),
        "trailing_then_eos": (BODY + " Done." + EOS + " more", ("trailing_text", "text_after_eos")),
        "text_after_eos": (BODY + EOS + "\nUser: thanks", ("text_after_eos",)),
        "multiple_eos": (BODY + EOS + EOS, ("multiple_eos",)),
        "duplicate_block": (BODY + f"{S0}4{S1}", ("duplicate_block",)),
        "answer_not_a_number": (f"I add.{R1}{S0}4 dollars{S1}{EOS}", ("answer_not_a_number",)),
        "empty_answer": (f"I add.{R1}{S0} {S1}", ("empty_answer",)),
        "text_between_blocks": (f"I add.{R1}So:{S0}4{S1}", ("text_between_blocks",)),
    }

    @pytest.mark.parametrize("name", list(SHAPES))
    def test_shape_takes_the_quick_path(self, name):
        text, codes = self.SHAPES[name]
        valid, _, _, _, cut = _reader(WORKING_OUT).read(text)
        assert not valid and cut is not None
        assert quick_codes(WORKING_OUT, text, cut) == codes
        assert tuple(e.code for e in diagnose(Scan(WORKING_OUT, text))) == codes
        assert validate(WORKING_OUT, text, transcript=False).codes == codes

    @pytest.mark.parametrize("text", [
        "I add.<end_working_out>4",  # no solution block: diagnosed in full
        "<end_working_out><SOLUTION>4</SOLUTION>",  # empty reasoning
        "I add.<SOLUTION>4</SOLUTION>",  # no reasoning end
    ])
    def test_other_shapes_are_left_to_the_diagnosis(self, text):
        valid, _, _, _, cut = _reader(WORKING_OUT).read(text)
        assert quick_codes(WORKING_OUT, text, cut) is None
        assert validate(WORKING_OUT, text, transcript=False).codes == tuple(e.code for e in diagnose(Scan(WORKING_OUT, text)))

    def test_codes_read_first_leave_errors_whole(self):
        text = self.BODY + "\nHope this helps!"
        result = validate(WORKING_OUT, text, transcript=False)
        assert result.codes == ("trailing_text",)
        assert result.to_dict()["errors"] == before.validate(WORKING_OUT, text, transcript=False).to_dict()["errors"]
        assert result == validate(WORKING_OUT, text, transcript=False)
