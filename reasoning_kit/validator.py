"""Validate a model output against a spec: a structured result with stable error codes.

:func:`validate` never raises on a ``str`` and runs in linear time. It accepts exactly what
the reward regex (``reasoning_kit.regex``) fullmatches:

    [R0] REASONING R1 WS S0 ANSWER S1 WS [EOS WS]

REASONING and ANSWER hold none of the tags or EOS strings; REASONING has a non-space
character; ANSWER, stripped, is non-empty (for kind ``number``: one number). A whole
transcript rendered with the spec's chat template is accepted too: then the last
assistant turn is validated and spans still index the full text.

The answer is extracted when the text holds exactly one solution block and its content
is a well-formed answer, even if other rules fail, so answer rewards can be scored
separately from format rewards; text outside the solution block is never used.

Cost: one cut of the completion at its markers (``reasoning_kit.markers.split``: a memchr
pass to the first marker, then ``re.split`` on the short tail, at most a few more markers
than a valid output holds) decides the verdict, the reasoning, the answer and the EOS, with
a few checks on the short gaps between markers; the reasoning is only cut out of the text
when read. The diagnosis (error codes and spans) runs only when ``errors`` is first read,
from the same cut, so a reward that only needs the verdict and the answer never pays for it;
``codes`` read first comes straight off the cut for the usual broken shapes (no marker,
truncated in the solution block, one closed solution block then anything:
``diagnosis.quick_codes``), without messages or spans: what the per-code counts the rewards
log in training read. Property tests (``tests/test_validator_fast.py``) hold the verdict and
fields to the reward regex, every field, code and span to the validator before these
speed-ups, and ``codes`` read first to the full diagnosis's codes.
Not handled: comparing answers (``reasoning_kit.answers``) or tokenizer effects.
"""

from __future__ import annotations

import re
from dataclasses import asdict

from .diagnosis import Issue, _blank, diagnose, quick_codes
from .markers import HOPS as _HOPS  # noqa: F401  (tests/test_properties.py reaches the scan through here)
from .markers import Scan as _Scan
from .markers import marker_regex, positions, splitter
from .markers import occurrences as _occurrences  # noqa: F401
from .regex import number_regex
from .spec import FormatSpec

# Stable error codes, with one line each on when they are raised.
CODES = {
    "not_text": "the input is not a string",
    "empty": "the output is empty or whitespace only",
    "truncated": "the output stops inside the format (no end-of-sequence, block left open)",
    "text_before_reasoning_start": "text before the reasoning start tag",
    "missing_reasoning_end": "no reasoning end tag",
    "empty_reasoning": "the reasoning block holds only whitespace",
    "tag_in_reasoning": "a tag inside the reasoning block",
    "missing_solution_start": "no solution start tag after the reasoning",
    "text_between_blocks": "something other than whitespace between the reasoning and solution blocks",
    "missing_solution_end": "the solution block is never closed",
    "tag_in_answer": "a tag inside the solution block",
    "empty_answer": "the solution block is empty",
    "answer_not_a_number": "the answer is not one number",
    "duplicate_block": "a second reasoning or solution block after the solution",
    "trailing_text": "text after the solution block",
    "eos_before_end": "an end-of-sequence string before the solution block is closed",
    "multiple_eos": "more than one end-of-sequence string",
    "text_after_eos": "text after the end-of-sequence string",
    "tag_case_mismatch": "a tag written with different letter case (tags are case-sensitive)",
    "no_assistant_turn": "a transcript whose last turn has no reasoning start tag",
}


_set, _new = object.__setattr__, object.__new__


class Validation:
    """The result of validating one output (immutable).

    ``valid``, ``reasoning`` (also for an invalid output whose reasoning block is well-formed),
    ``answer``, ``start`` (where the validated completion begins:
    after the prompt, for transcripts) and ``eos`` (the end-of-sequence string that closed
    the output, if any) are set at once; ``errors`` is diagnosed the first time it is read,
    and ``reasoning`` is cut out of the text the first time it is read.
    """

    __slots__ = ("valid", "_reasoning", "answer", "start", "eos", "_errors", "_pending", "_codes")

    def __init__(self, valid: bool, reasoning: str | None, answer: str | None, errors: tuple[Issue, ...] = (),
                 start: int = 0, eos: str | None = None):
        _set(self, "valid", valid)
        _set(self, "_reasoning", reasoning)  # or, from validate, (text, start, end): cut out when read
        _set(self, "answer", answer)
        _set(self, "start", start)
        _set(self, "eos", eos)
        _set(self, "_errors", tuple(errors))  # None: not diagnosed yet
        _set(self, "_pending", None)  # (spec, completion, cut) that validate read it from
        _set(self, "_codes", None)  # the codes, once read

    @property
    def reasoning(self) -> str | None:
        reasoning = self._reasoning
        if type(reasoning) is tuple:
            text, start, end = reasoning
            reasoning = text[start:end]
            _set(self, "_reasoning", reasoning)
        return reasoning

    @property
    def errors(self) -> tuple[Issue, ...]:
        errors = self._errors
        if errors is None:
            spec, text, cut = self._pending
            seq = None
            if cut is not None:  # every marker was cut out already: no second scan
                p, offset, parts = cut
                seq = ([(0, spec.tags.reasoning_start)] if p else []) + positions(offset, parts)
            errors = diagnose(_Scan(spec, text, seq))
            errors = tuple(_shift(e, self.start) for e in errors) if self.start else tuple(errors)
            _set(self, "_errors", errors)
        return errors

    @property
    def codes(self) -> tuple[str, ...]:
        """The error codes, in order: read off the validator's cut for the usual broken shapes
        (``diagnosis.quick_codes``, no messages or spans built), else from :attr:`errors`."""
        codes = self._codes
        if codes is None:
            if self._errors is None and self._pending[2] is not None:
                spec, text, cut = self._pending
                codes = quick_codes(spec, text, cut)
            if codes is None:
                codes = tuple(e.code for e in self.errors)
            _set(self, "_codes", codes)
        return codes

    def _fields(self) -> tuple:
        return (self.valid, self.reasoning, self.answer, self.errors, self.start, self.eos)

    def to_dict(self) -> dict:
        valid, reasoning, answer, errors, start, eos = self._fields()
        return {"valid": valid, "reasoning": reasoning, "answer": answer,
                "errors": tuple(asdict(e) for e in errors), "start": start, "eos": eos}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Validation is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Validation is immutable (cannot delete {name!r})")

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if isinstance(other, Validation) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        names = ("valid", "reasoning", "answer", "errors", "start", "eos")
        return "Validation(" + ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields())) + ")"

    def __reduce__(self):
        return (Validation, self._fields())


class _Unsealed(Validation):
    """A :class:`Validation` while :func:`validate` fills it in: plain slot writes (about a third of
    the cost of ``object.__setattr__`` per field), then its class is set to ``Validation``.
    ``_pending`` is (spec, completion, cut): ``cut`` is :meth:`_Reader.read`'s cut of the
    completion at all its markers, when it made one."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__  # both, or Python still dispatches every write through a lookup


_NON_SPACE = re.compile(r"\S")
_MOST = 8  # markers the verdict cuts out; a valid output holds at most 5 (R0 R1 S0 S1 EOS)


class _Reader:
    """The verdict and fields of completions for one spec (tags, markers, answer check resolved once).

    :meth:`read` gives (valid, reasoning, answer, eos, cut) of a completion ``c``. Valid exactly
    when the reward regex fullmatches: after an optional reasoning start tag at offset 0 the
    markers are R1 S0 S1 [EOS], the reasoning before R1 has a non-space character, the answer
    is well-formed and the gaps after R1, S1 and EOS are whitespace. The reasoning is reported
    when the output opens with a well-formed reasoning block, the answer when there is exactly
    one solution block and its content is a well-formed answer (also when invalid). The
    reasoning comes as ``(c, start, end)``, for :class:`Validation` to cut out when read;
    ``cut`` is ``(p, offset, parts)``, the cut at every marker, for the diagnosis of an
    invalid output (None when valid, or when there were too many markers to cut them all).
    """

    __slots__ = ("spec", "r0", "r1", "s0", "s1", "eos", "split", "number")

    def __init__(self, spec: FormatSpec):
        self.spec = spec
        self.r0, self.r1, self.s0, self.s1 = spec.tag_list
        self.eos = frozenset(spec.eos)
        self.split = splitter(spec.markers)
        self.number = number_regex(spec.answer.allow_percent).fullmatch if spec.answer.kind == "number" else None

    def answer(self, raw: str) -> str | None:
        """``raw`` stripped, if that is a well-formed answer (non-empty; one number for kind number)."""
        answer = raw.strip()
        return answer if answer and (self.number is None or self.number(answer) is not None) else None

    def answer_by_count(self, c: str) -> str | None:
        """The answer when there are too many markers to cut: ``str.count``/``find`` and one bounded search.

        Markers never contain or overlap one another (the spec loader checks), so each one's
        occurrences are the same as the cut's.
        """
        j = _only(c, self.s0)
        e = _only(c, self.s1) if j != -1 else -1
        k = j + len(self.s0)
        if e < k or marker_regex(self.spec.markers).search(c, k, e) is not None:
            return None  # no single block, closed after it opens, with no other marker inside
        return self.answer(c[k:e])

    def read(self, c: str) -> tuple[bool, tuple | None, str | None, str | None, tuple | None]:
        r0, r1, s0, s1 = self.r0, self.r1, self.s0, self.s1
        p = len(r0) if c.startswith(r0) else 0
        offset, parts = self.split(c, p, _MOST)  # [gap, marker, gap, ..., gap] after [R0]
        n = len(parts) >> 1  # markers found
        if (
            (n == 3 or (n == 4 and parts[7] in self.eos))  # R1 S0 S1 [EOS]
            and parts[1] == r1 and parts[3] == s0 and parts[5] == s1
            and _blank(parts[2]) and _blank(parts[6]) and (n == 3 or _blank(parts[8]))  # whitespace gaps
        ):
            end = offset + len(parts[0])
            answer = self.answer(parts[4])
            if answer is not None and _NON_SPACE.search(c, p, end) is not None:
                return True, (c, p, end), answer, (parts[7] if n == 4 else None), None
        # Invalid: the reasoning and the answer, where well-formed.
        found = parts[1::2]
        reasoning = answer = None
        if n and found[0] == r1:
            end = offset + len(parts[0])
            if _NON_SPACE.search(c, p, end) is not None:
                reasoning = (c, p, end)
        if n == _MOST:  # too many markers to cut them all: count them instead
            return False, reasoning, self.answer_by_count(c), None, None
        if found.count(s0) == 1 and found.count(s1) == 1:
            k = found.index(s0)
            if k + 1 < n and found[k + 1] == s1:
                answer = self.answer(parts[2 * k + 2])
        return False, reasoning, answer, None, (p, offset, parts)


_READERS: dict[int, _Reader] = {}  # id(spec) -> reader (the reader keeps its spec alive)


def _reader(spec: FormatSpec) -> _Reader:
    reader = _READERS.get(id(spec))
    if reader is None or reader.spec is not spec:
        if len(_READERS) >= 64:
            _READERS.clear()
        reader = _READERS[id(spec)] = _Reader(spec)
    return reader


def _only(c: str, marker: str) -> int:
    """Where ``marker`` occurs in ``c`` if it occurs exactly once (as ``str.count`` counts), else -1."""
    i = c.find(marker)
    if i == -1 or (i != c.rfind(marker) and c.count(marker) != 1):  # count: a tag may overlap itself
        return -1
    return i


def _last_turn_start(spec: FormatSpec, text: str, force: bool) -> int | None:
    """Offset of the last assistant turn if ``text`` is a rendered transcript, else None."""
    sysp = spec.system_prompt
    if not force:
        if not text.startswith(sysp) or not any(text.startswith(e, len(sysp)) for e in spec.eos):
            return None
    body = text.rstrip()
    for e in spec.eos:
        if body.endswith(e):
            body = body[: -len(e)]
            break
    boundary = max((body.rfind(e) + len(e) for e in spec.eos if body.rfind(e) != -1), default=0)
    start = text.find(spec.tags.reasoning_start, boundary)
    return -1 if start == -1 else start


def _shift(issue: Issue, base: int) -> Issue:
    return Issue(issue.code, issue.message, issue.start + base, issue.end + base)


def validate(spec: FormatSpec, text: object, *, transcript: bool | None = None) -> Validation:
    """Validate one output.

    ``transcript=False`` checks ``text`` as a completion, strictly: what the rewards and
    evaluation must use. ``True`` validates the last assistant turn of a rendered
    transcript; ``None`` (the default, for the ``validate`` command) detects a transcript
    by its leading system prompt and EOS.
    """
    if not isinstance(text, str):
        return Validation(False, None, None, (Issue("not_text", f"expected a string, got {type(text).__name__}", 0, 0),))
    base = 0
    if transcript is not False and (transcript or text.startswith(spec.system_prompt)):  # else no transcript
        start = _last_turn_start(spec, text, bool(transcript))
        if start == -1:
            msg = f"transcript: no {spec.tags.reasoning_start!r} starts the last assistant turn"
            return Validation(False, None, None, (Issue("no_assistant_turn", msg, len(text), len(text)),))
        base = start or 0
    c = text[base:] if base else text
    valid, reasoning, answer, eos, cut = _reader(spec).read(c)
    # Built as an _Unsealed (plain slot writes), then made a Validation: the hot path.
    result = _new(_Unsealed)
    result.valid, result._reasoning, result.answer, result.start, result.eos = valid, reasoning, answer, base, eos
    result._errors = result._codes = () if valid else None  # None: diagnosed when first read
    result._pending = (spec, c, cut)  # what the diagnosis and tag_counts read
    result.__class__ = Validation
    return result


def tag_counts(spec: FormatSpec, text: str, check: Validation | None = None) -> list[int]:
    """How often each tag (in ``spec.tag_list`` order) occurs in ``text``, as ``str.count`` counts.

    With ``check``, the result of validating this very ``text`` object, the counts come from the
    markers the validation already found (no pass over the text) whenever it found them all.

    >>> from reasoning_kit.spec import load_spec
    >>> spec, text = load_spec("working_out"), "a<end_working_out><SOLUTION>1</SOLUTION><SOLUTION>"
    >>> tag_counts(spec, text, validate(spec, text, transcript=False))
    [0, 1, 2, 1]
    """
    pending = check._pending if check is not None else None
    if pending is not None and pending[1] is text:
        if check.valid:  # each tag once, the optional reasoning start tag only at the start
            return [int(text.startswith(spec.tags.reasoning_start)), 1, 1, 1]
        if pending[2] is not None:
            p, _, parts = pending[2]
            found = parts[1::2]
            counts = [found.count(tag) for tag in spec.tag_list]
            counts[0] += p > 0  # the reasoning start tag at offset 0 is not in the cut
            return counts
    return [text.count(tag) for tag in spec.tag_list]


def explain(code: str) -> str:
    """One line on when an error code is raised."""
    return CODES[code]
