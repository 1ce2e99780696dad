"""Answer extraction (through the validator only), normalisation and comparison."""

import re
import threading
import time
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reasoning_kit import answers, math_check
from reasoning_kit.answers import extract, is_correct, parse_gold
from reasoning_kit.spec import load_spec, parse_spec

SPEC = load_spec("working_out")
TEXT_SPEC = load_spec("think_answer")
R0, R1, S0, S1 = SPEC.tag_list
EOS = SPEC.eos[0]


def toml(value) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def with_keys(spec, table: str, **keys):
    """The spec with keys set in one table (a real spec file, parsed and checked)."""
    lines = "".join(f"{k} = {toml(v)}\n" for k, v in keys.items())
    text = spec.text
    for k in keys:  # drop the file's own setting (these key names occur in one table only)
        text = re.sub(rf"(?m)^{k}\s*=.*\n", "", text)
    text = text.replace(f"[{table}]\n", f"[{table}]\n{lines}", 1) if f"[{table}]\n" in text else f"{text}\n[{table}]\n{lines}"
    return parse_spec(text, "<test>")


def with_answer(spec, **keys):
    return with_keys(spec, "answer", **keys)


PERCENT = with_answer(SPEC, allow_percent=True)
CASED = with_answer(TEXT_SPEC, case_sensitive=True, collapse_whitespace=False)
MATH = with_answer(SPEC, math_verify=True, math_verify_timeout=2.0)


class TestParseGold:
    @pytest.mark.parametrize("gold, expected", [
        ("72", Fraction(72)),
        (" 72\n", Fraction(72)),
        ("1,000", Fraction(1000)),
        ("12,345.67", Fraction(1234567, 100)),
        ("-3", Fraction(-3)),
        ("+3", Fraction(3)),
        ("2.50", Fraction(5, 2)),
        ("0.0", Fraction(0)),
        ("-0", Fraction(0)),
        ("3/4", Fraction(3, 4)),
        ("-1/2", Fraction(-1, 2)),
        (18, Fraction(18)),
        (2.5, Fraction(5, 2)),
        ("1/0", None),
        ("50%", None),
        ("$18", None),
        ("seven", None),
        ("1,0000", None),
        ("1e3", None),
        ("١٧", None),  # Arabic-Indic digits: float() would take them, the number grammar does not
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ("9" * 5000, None),  # longer than int() accepts
    ])
    def test_number(self, gold, expected):
        assert parse_gold(SPEC, gold) == expected

    @pytest.mark.parametrize("gold, expected", [("50%", Fraction(50)), (" 12.5 % ", Fraction(25, 2)), ("50", Fraction(50))])
    def test_percent_when_allowed(self, gold, expected):
        assert parse_gold(PERCENT, gold) == expected

    @pytest.mark.parametrize("spec, gold, expected", [
        (TEXT_SPEC, "  Paris ", "paris"),
        (TEXT_SPEC, "New   York\nCity", "new york city"),
        (TEXT_SPEC, "   ", None),
        (TEXT_SPEC, 17, "17"),
        (TEXT_SPEC, None, None),
        (CASED, "New  York", "New  York"),
    ])
    def test_text(self, spec, gold, expected):
        assert parse_gold(spec, gold) == expected


class TestIsCorrect:
    @pytest.mark.parametrize("answer, gold, expected", [
        ("72", "72", True),
        ("1,000", "1000", True),
        ("1000", "1,000", True),
        ("2.5", "2.50", True),
        ("0", "0.0", True),
        ("-0", "0", True),
        ("+3", "3", True),
        ("0.75", "3/4", True),
        ("-3", "3", False),
        ("71", "72", False),
        ("0.333", "1/3", False),
        (None, "72", False),
        ("50", "50%", None),  # percent not allowed by this spec: the gold is unparsable
        ("7", "seven", None),
        (None, "seven", None),
        ("7", None, None),
    ])
    def test_number(self, answer, gold, expected):
        assert is_correct(SPEC, answer, gold) is expected

    @pytest.mark.parametrize("answer, gold, expected", [("50", "50%", True), ("50%", "50", True), ("5", "50%", False)])
    def test_percent_when_allowed(self, answer, gold, expected):
        assert is_correct(PERCENT, answer, gold) is expected

    @pytest.mark.parametrize("spec, answer, gold, expected", [
        (TEXT_SPEC, "paris", "Paris", True),
        (TEXT_SPEC, "New York  City", "new york city", True),
        (TEXT_SPEC, "17.0", "17", True),  # both numbers: compared as numbers
        (TEXT_SPEC, "Lyon", "Paris", False),
        (CASED, "paris", "Paris", False),
        (CASED, "New York", "New  York", False),
        (CASED, "Paris", "Paris", True),
    ])
    def test_text(self, spec, answer, gold, expected):
        assert is_correct(spec, answer, gold) is expected


class TestExtract:
    @pytest.mark.parametrize("completion, expected", [
        (f"I add.{R1}{S0}4{S1}", "4"),
        (f"I add.{R1}{S0} 1,000 {S1}{EOS}", "1,000"),
        ([{"role": "assistant", "content": f"I add.{R1}{S0}4{S1}"}], "4"),
        ([{"role": "assistant", "content": [{"type": "text", "text": f"I add.{R1}"}, {"type": "text", "text": f"{S0}4{S1}"}]}], "4"),
        ({"role": "assistant", "content": f"t{R1}{S0}4{S1}"}, "4"),
        (f"The answer is 4.{R1} so 4", None),  # numbers outside the solution block are never read
        (f"t{R1}{S0}4{S1}{S0}5{S1}", None),  # two solution blocks: no answer, not "4</SOLUTION><SOLUTION>5"
        (f"t{R1}{S0}4{S1}\nand later 5", "4"),  # trailing text: the answer is still the block's
        (f"t{R1}{S0}four{S1}", None),
        (f"t{R1}{S0}4", None),
        (None, None),
        (42, None),
        ([], None),
        ([{"role": "assistant", "content": None}], None),
    ])
    def test_extract(self, completion, expected):
        assert extract(SPEC, completion) == expected

    def test_text_kind(self):
        t = TEXT_SPEC.tags
        assert extract(TEXT_SPEC, f"hmm{t.reasoning_end}{t.solution_start} Paris, France {t.solution_end}") == "Paris, France"


class TestMathVerify:
    """The real math-verify package, in its worker process."""

    @pytest.mark.parametrize("answer, gold, expected", [
        ("0.75", r"\frac{3}{4}", True),
        ("0.333333", "1/3", True),  # math-verify rounds; the exact comparison alone says no
        ("2", r"\sqrt{4}", True),
        ("3", r"\sqrt{4}", False),
    ])
    def test_symbolic(self, answer, gold, expected):
        assert is_correct(MATH, answer, gold) is expected

    def test_hang_is_cut_at_the_timeout(self):
        # A gold answer that makes math-verify's parse hang for good (Math-Verify issue #65).
        gold = r"\boxed{\dfrac{5^{\left(5^{\left(5^{\left(5^5\right)}\right)} - 4\right)} - 5}{16}}"
        math_check.verify("1", "1")  # worker started outside the timing
        t0 = time.monotonic()
        assert is_correct(with_answer(SPEC, math_verify=True, math_verify_timeout=1.0), "1", gold) is False
        assert time.monotonic() - t0 < 10
        assert is_correct(MATH, "0.75", r"\frac{3}{4}") is True  # a fresh worker takes over

    def test_works_off_the_main_thread(self):
        # math-verify's own timeout uses signal.alarm, which fails outside the main thread.
        out = []
        worker = threading.Thread(target=lambda: out.append(is_correct(MATH, "0.5", r"\frac{1}{2}")))
        worker.start()
        worker.join(60)
        assert out == [True]

    def test_not_used_when_off(self):
        assert is_correct(SPEC, "0.5", r"\frac{1}{2}") is None


class TestCompare:
    @pytest.mark.parametrize("answer, raw, gold, exact, correct", [
        ("4", "4", "4", True, True),
        ("4", " 4 ", "4", False, True),
        ("1,000", "1,000", "1000", False, True),
        ("5", "5", "4", False, False),
        (None, None, "4", False, False),
    ])
    def test_exact_means_as_written(self, answer, raw, gold, exact, correct):
        v = answers.compare(SPEC, answer, gold, raw=raw)
        assert (v.exact, v.correct, v.gold_ok) == (exact, correct, True)

    @pytest.mark.parametrize("answer, gold, expected", [
        ("95", "100", Fraction(1, 20)),
        ("-50", "-100", Fraction(1, 2)),
        ("1", "0", None),  # gold 0: no relative error, no division
        (None, "4", None),
    ])
    def test_relative_error(self, answer, gold, expected):
        assert answers.compare(SPEC, answer, gold).relative_error == expected

    @given(st.one_of(st.none(), st.fractions()), st.one_of(st.none(), st.fractions()),
           st.sampled_from([Fraction(0), Fraction(1, 10), Fraction(2, 10), Fraction(1), Fraction(-1, 10)]))
    @example(answer=Fraction(110), gold=Fraction(100), bound=Fraction(1, 10))  # exactly on the bound
    @example(answer=Fraction(-90), gold=Fraction(-100), bound=Fraction(1, 10))
    @example(answer=Fraction(1), gold=Fraction(0), bound=Fraction(1))  # gold 0: never within
    def test_within_is_the_relative_error_compared(self, answer, gold, bound):
        v = answers.Verdict(True, False, False, answer, gold)
        rel = v.relative_error
        assert v.within(bound) == (rel is not None and rel <= bound)
