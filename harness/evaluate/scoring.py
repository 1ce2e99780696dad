"""Score one completion: validate it with the spec, extract and check the answer.

The strict answer is the validator's (only from a single well-formed solution block). The
lenient answer is the strict one when there is one, else (``number`` specs) the last number
anywhere in the output, so a model prompted in its own chat format, which never writes the
spec's tags, still gets an honest accuracy figure. Both are compared with the gold answer by
``reasoning_kit.answers.is_correct`` (the same check the GRPO answer rewards use). Not
handled: lenient answers for ``text`` specs (only the strict answer counts there).
"""

from __future__ import annotations

import re

from reasoning_kit.answers import is_correct
from reasoning_kit.regex import NUMBER
from reasoning_kit.spec import FormatSpec
from reasoning_kit.validator import validate

_NUMBER_ANYWHERE = re.compile(rf"(?<![0-9.,]){NUMBER}")


def last_number(text: str) -> str | None:
    """The last number in ``text`` (the spec's number grammar), or None."""
    found = _NUMBER_ANYWHERE.findall(text)
    return found[-1].rstrip(".") if found else None


def score(spec: FormatSpec, completion: str, gold: str) -> dict:
    """Validation and answer fields of one output row."""
    v = validate(spec, completion, transcript=False)
    lenient = v.answer
    if lenient is None and spec.answer.kind == "number":
        lenient = last_number(completion)
    return {
        "valid": v.valid,
        "errors": [{"code": e.code, "message": e.message} for e in v.errors],
        "answer": v.answer,
        "lenient_answer": lenient,
        "gold": gold,
        "correct": is_correct(spec, v.answer, gold),
        "lenient_correct": is_correct(spec, lenient, gold),
    }
