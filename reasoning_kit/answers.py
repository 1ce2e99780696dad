"""Extract an answer through the validator and compare it with a gold answer.

:func:`extract` takes the answer out of a completion with ``reasoning_kit.validator`` only,
so text outside the solution block is never read (a completion with two solution blocks
has no answer). :func:`parse_gold` normalises a gold answer and :func:`is_correct` compares:

- kind ``number``: exact rational comparison after normalising thousands commas, signs and
  trailing zeros (``1,000`` = ``1000``, ``+2.50`` = ``2.5``, ``-0.0`` = ``0``); gold answers
  may also be simple fractions (``3/4`` = ``0.75``); a trailing ``%`` is dropped only when
  ``[answer] allow_percent`` is set (``50%`` = ``50``).
- kind ``text``: the spec's policy (``case_sensitive``, ``collapse_whitespace``); if both
  sides are numbers they are compared as numbers too.
- ``[answer] math_verify``: when the above says "different", the pair goes to the
  ``math-verify`` package in a worker process with a hard timeout (``reasoning_kit.math_check``);
  a timeout counts as wrong.

A gold answer that cannot be parsed gives ``None`` (no score), never an exception.
Not handled: units and currency (``$18``, ``18 km``), scientific notation, rounding
tolerance (use math-verify), and numbers written in words.
"""

from __future__ import annotations

import math
import numbers
import re
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from .regex import NUMBER
from .spec import FormatSpec
from .validator import Validation, validate

# ASCII digits only: Fraction() and float() would also take Arabic-Indic or full-width digits.
_NUMBER_RE = re.compile(NUMBER)
_FRACTION_RE = re.compile(r"([+-]?[0-9]++)\s*+/\s*+([0-9]++)")  # simple fractions, gold side: 3/4, -1/2
_MAX_DIGITS = 4000  # int() refuses more than 4300 digits; longer "numbers" are not answers


class Verdict(NamedTuple):
    """How an answer compares with a gold answer (what the answer rewards score from)."""

    gold_ok: bool  # the gold answer could be parsed (else: no score)
    correct: bool  # equal after normalisation (or by math-verify)
    exact: bool  # the raw answer equals the gold answer exactly as written
    answer_value: Fraction | None  # the answer as a number, if it is one
    gold_value: Fraction | None  # the gold answer as a number, if it is one

    @property
    def relative_error(self) -> Fraction | None:
        """|answer - gold| / |gold| for two numbers and a non-zero gold, else None."""
        if self.answer_value is None or self.gold_value is None or self.gold_value == 0:
            return None
        return abs(self.answer_value - self.gold_value) / abs(self.gold_value)

    def within(self, bound: Fraction) -> bool:
        """``relative_error <= bound`` (False where it is None), in integers: no Fraction is built."""
        a, g = self.answer_value, self.gold_value
        if a is None or g is None or g == 0:
            return False
        diff = abs(a.numerator * g.denominator - g.numerator * a.denominator)  # |a - g| * a.den * g.den
        return diff * bound.denominator <= bound.numerator * abs(g.numerator) * a.denominator


def parse_number(text: object, *, allow_percent: bool = False, allow_fraction: bool = False) -> Fraction | None:
    """A number as an exact Fraction (``"1,000"`` -> 1000, ``"2.50"`` -> 5/2), or None.

    Also takes ints and floats, numpy's included (``numpy.int64(4)``, ``numpy.float64(2.5)``);
    booleans, NaN and infinities are not numbers here.
    """
    if isinstance(text, str):
        return _parse_str(text, allow_percent, allow_fraction) if len(text) <= _MAX_DIGITS else None
    if _is_bool(text) or not isinstance(text, numbers.Real):
        return None
    if isinstance(text, numbers.Rational):  # ints of any kind, Fractions: exact
        return Fraction(int(text.numerator), int(text.denominator))
    try:
        value = float(text)  # repr() of numpy.float64 is "np.float64(2.5)": go through a plain float
    except (OverflowError, ValueError):
        return None
    return Fraction(repr(value)) if math.isfinite(value) else None


def _is_bool(value: object) -> bool:
    """A Python or numpy boolean (``numpy.bool_`` is no int subclass, but must not count as 1)."""
    return isinstance(value, bool) or (type(value).__name__ in ("bool_", "bool") and hasattr(value, "dtype"))


@lru_cache(maxsize=1 << 14)
def _parse_str(text: str, allow_percent: bool, allow_fraction: bool) -> Fraction | None:
    # Cached: a GRPO batch repeats each gold answer once per generation, and Fraction() is slow.
    s = text.strip()
    if allow_percent and s.endswith("%"):
        s = s[:-1].rstrip()
    if _NUMBER_RE.fullmatch(s):
        whole, _, decimals = s.replace(",", "").partition(".")
        if not decimals:  # an integer (the usual answer): Fraction's fast path, no gcd
            return Fraction(int(whole))
        return Fraction(int(whole + decimals), 10 ** len(decimals))  # int() keeps the sign; faster than Fraction(str)
    if allow_fraction and (m := _FRACTION_RE.fullmatch(s)):
        numerator, denominator = int(m.group(1)), int(m.group(2))
        return Fraction(numerator, denominator) if denominator else None
    return None


def normalise_text(spec: FormatSpec, text: str) -> str:
    """Apply the spec's text policy: strip, collapse whitespace, fold case."""
    s = text.strip()
    if spec.answer.collapse_whitespace:
        s = " ".join(s.split())
    if not spec.answer.case_sensitive:
        s = s.casefold()
    return s


def parse_gold(spec: FormatSpec, gold: object) -> Fraction | str | None:
    """The normalised gold answer: a Fraction (kind number), a string (kind text), or None."""
    if spec.answer.kind == "number":
        return parse_number(gold, allow_percent=spec.answer.allow_percent, allow_fraction=True)
    if isinstance(gold, numbers.Real) and not _is_bool(gold):
        gold = _gold_text(gold) if isinstance(gold, numbers.Integral) else _float_text(gold)
    if not isinstance(gold, str):
        return None
    return normalise_text(spec, gold) or None


def gold_number(spec: FormatSpec, gold: object) -> Fraction | None:
    """The gold answer as a number (simple fractions allowed), whatever the answer kind."""
    return parse_number(gold, allow_percent=spec.answer.allow_percent, allow_fraction=True)


def answer_number(spec: FormatSpec, answer: str | None) -> Fraction | None:
    """An extracted answer as a number (the validator's number grammar), or None."""
    return parse_number(answer, allow_percent=spec.answer.allow_percent) if answer is not None else None


def _float_text(gold: object) -> str | None:
    try:
        value = float(gold)  # type: ignore[arg-type]
    except (OverflowError, ValueError, TypeError):
        return None
    return repr(value) if math.isfinite(value) else None


def _gold_text(gold: object) -> str | None:
    if isinstance(gold, str):
        return gold
    if isinstance(gold, numbers.Integral) and not _is_bool(gold):
        try:
            return str(int(gold))
        except ValueError:  # more digits than int -> str allows: no answer is written that long
            return None
    return None


def compare(spec: FormatSpec, answer: str | None, gold: object, *, raw: str | None = None) -> Verdict:
    """Compare an extracted answer (``raw``: the solution block as written) with a gold answer."""
    gold_value = gold_number(spec, gold)
    normal = gold_value if spec.answer.kind == "number" else parse_gold(spec, gold)
    answer_value = answer_number(spec, answer)
    gold_ok = normal is not None
    exact = answer is not None and (raw if raw is not None else answer) == _gold_text(gold)
    if answer is None:
        correct = False
    elif spec.answer.kind == "number":
        correct = gold_ok and answer_value is not None and answer_value == normal
    else:
        same_text = gold_ok and normalise_text(spec, answer) == normal
        correct = same_text or (gold_value is not None and answer_value == gold_value)
    if spec.answer.math_verify and isinstance(gold, str) and answer is not None and not correct:
        from .math_check import verify

        symbolic = verify(gold, answer, timeout=spec.answer.math_verify_timeout)
        if symbolic is not None:  # math-verify could parse the gold answer: it decides
            gold_ok, correct = True, symbolic
    return Verdict(gold_ok, correct and gold_ok, exact and gold_ok, answer_value, gold_value)


def completion_text(completion: object) -> str | None:
    """The text of a completion: a string, or TRL's conversational ``[{"role", "content"}]`` form."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content_text(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        assistant = [m for m in messages if m.get("role") == "assistant"] or messages
        return _content_text(assistant[-1].get("content")) if assistant else None
    return None


def _content_text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):  # content parts: [{"type": "text", "text": "..."}]
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        if parts and all(isinstance(p, str) for p in parts):
            return "".join(parts)
    return None


def raw_answer(spec: FormatSpec, text: str, check: Validation) -> str | None:
    """The solution block's content as written (unstripped), when the validator extracted an answer."""
    if check.answer is None:
        return None
    s0, s1 = spec.tags.solution_start, spec.tags.solution_end
    k = text.rfind(s0, check.start)  # the only solution start; it sits near the end: scan from there
    if k == -1:
        return None
    k += len(s0)
    e = text.find(s1, k)
    return text[k:e] if e != -1 else None


def extract(spec: FormatSpec, completion: object) -> str | None:
    """The answer in a completion's single solution block (validator rules), else None."""
    text = completion_text(completion)
    return validate(spec, text, transcript=False).answer if text is not None else None


def is_correct(spec: FormatSpec, answer: str | None, gold: object) -> bool | None:
    """True/False for an extracted answer against a gold answer; None if the gold is unparsable.

    >>> from reasoning_kit.spec import load_spec
    >>> spec = load_spec("working_out")
    >>> is_correct(spec, "1,000", "1000"), is_correct(spec, "0.75", "3/4"), is_correct(spec, "7", "seven")
    (True, True, None)
    """
    verdict = compare(spec, answer, gold)
    return verdict.correct if verdict.gold_ok else None


__all__ = [
    "Verdict",
    "answer_number",
    "compare",
    "completion_text",
    "extract",
    "gold_number",
    "is_correct",
    "normalise_text",
    "parse_gold",
    "parse_number",
]
