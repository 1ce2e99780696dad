"""Validate a model output against a spec: a structured result with stable error codes.

:func:`validate` never raises on a ``str`` and runs in linear time. It accepts exactly what
the reward regex (``reasoning_kit.regex``) fullmatches, and decides with that regex first:

    [R0] REASONING R1 WS S0 ANSWER S1 WS [EOS WS]

REASONING and ANSWER hold none of the tags or EOS strings; REASONING has a non-space
character; ANSWER, stripped, is non-empty (for kind ``number``: one number). A whole
transcript rendered with the spec's chat template is accepted too: then the last
assistant turn is validated and spans still index the full text.

The answer is extracted when the text holds exactly one solution block and its content
is a well-formed answer, even if other rules fail, so answer rewards can be scored
separately from format rewards; text outside the solution block is never used.

Cost: a valid output costs one regex ``fullmatch``; an invalid one that match plus a few
``str.count``/``str.find`` calls for its answer. The diagnosis (error codes and spans: one
marker scan, then bisect look-ups) runs only when ``errors`` or ``codes`` is first read, so
a reward that only needs the verdict and the answer never pays for it.
Not handled: comparing answers (``reasoning_kit.answers``) or tokenizer effects.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import asdict, dataclass
from functools import lru_cache

from .regex import compile_reward_regex, number_regex
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


@dataclass(frozen=True)
class Issue:
    """One problem: a stable ``code``, a human ``message``, and the character span [start, end)."""

    code: str
    message: str
    start: int
    end: int


class Validation:
    """The result of validating one output (immutable).

    ``valid``, ``reasoning`` (also for an invalid output whose reasoning block is well-formed),
    ``answer``, ``start`` (where the validated completion begins:
    after the prompt, for transcripts) and ``eos`` (the end-of-sequence string that closed
    the output, if any) are set at once; ``errors`` is diagnosed the first time it is read.
    """

    __slots__ = ("valid", "reasoning", "answer", "start", "eos", "_errors", "_pending")

    def __init__(self, valid: bool, reasoning: str | None, answer: str | None, errors: tuple[Issue, ...] = (),
                 start: int = 0, eos: str | None = None):
        for name, value in (("valid", valid), ("reasoning", reasoning), ("answer", answer), ("start", start),
                            ("eos", eos), ("_errors", tuple(errors)), ("_pending", None)):
            object.__setattr__(self, name, value)

    @classmethod
    def _deferred(cls, spec: FormatSpec, text: str, base: int, answer: str | None,
                  reasoning: str | None = None) -> Validation:
        """An invalid result whose errors are diagnosed from ``text`` (the completion) on first use."""
        result = cls(False, reasoning, answer, (), base, None)
        object.__setattr__(result, "_pending", (spec, text))
        return result

    @property
    def errors(self) -> tuple[Issue, ...]:
        pending = self._pending
        if pending is not None:
            found = tuple(_shift(e, self.start) for e in _diagnose(_Scan(*pending)))
            object.__setattr__(self, "_errors", found)
            object.__setattr__(self, "_pending", None)
        return self._errors

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.errors)

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


@lru_cache(maxsize=64)
def _marker_regex(markers: tuple[str, ...]) -> re.Pattern[str]:
    # Longest first; the spec guarantees no marker contains or overlaps another, so one
    # left-to-right scan finds every occurrence of every marker.
    return re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))


_HOPS = 8  # candidate positions checked in Python before handing the rest to the regex engine


def _occurrences(markers: tuple[str, ...], text: str) -> list[tuple[int, str]]:
    """Every (position, marker) in text order, in one linear pass.

    When all markers begin with the same character (``<`` in practice), hop between its
    occurrences with ``str.find`` (a SIMD memchr in CPython) and test the markers there;
    after ``_HOPS`` candidates, or when first characters differ, one regex scan does it.
    Markers never overlap, so after a match the scan continues past it.
    """
    found: list[tuple[int, str]] = []
    first = markers[0][0]
    pos = 0
    if all(m[0] == first for m in markers):
        pos = text.find(first)
        for _ in range(_HOPS):
            if pos == -1:
                return found
            for m in markers:
                if text.startswith(m, pos):
                    found.append((pos, m))
                    pos += len(m) - 1
                    break
            pos = text.find(first, pos + 1)
        if pos == -1:
            return found
    found.extend((match.start(), match.group()) for match in _marker_regex(markers).finditer(text, pos))
    return found


class _Scan:
    """Every marker occurrence in one completion, found in a single regex pass.

    Later questions ("first R1 after p", "how many S0") are answered from sorted position
    lists with bisect, so the total work stays linear in the text whatever the input.
    """

    def __init__(self, spec: FormatSpec, text: str):
        self.spec, self.text = spec, text
        self.r0, self.r1, self.s0, self.s1 = spec.tag_list
        self.seq = _occurrences(spec.markers, text)  # every (position, marker), in text order
        self.at: dict[str, list[int]] = {m: [] for m in spec.markers}
        for start, marker in self.seq:
            self.at[marker].append(start)

    def find(self, marker: str, start: int = 0, end: int | None = None) -> int:
        """Start of the first ``marker`` at or after ``start`` and before ``end``, else -1."""
        positions = self.at[marker]
        i = bisect_left(positions, start)
        if i < len(positions) and (end is None or positions[i] < end):
            return positions[i]
        return -1

    def first(self, markers: tuple[str, ...], start: int = 0, end: int | None = None) -> tuple[int, str | None]:
        best, which = -1, None
        for m in markers:
            i = self.find(m, start, end)
            if i != -1 and (best == -1 or i < best):
                best, which = i, m
        return best, which

    def first_eos(self, start: int = 0, end: int | None = None) -> tuple[int, str | None]:
        return self.first(self.spec.eos, start, end)

    def count(self, marker: str, start: int = 0) -> int:
        positions = self.at[marker]
        return len(positions) - bisect_left(positions, start)

    def last_end(self, markers: tuple[str, ...]) -> int:
        return max((self.at[m][-1] + len(m) for m in markers if self.at[m]), default=-1)


_NON_SPACE = re.compile(r"\S")


def _answer_ok(spec: FormatSpec, answer: str) -> bool:
    """A non-empty stripped answer is well-formed: any text, or one number for kind number."""
    return spec.answer.kind != "number" or number_regex(spec.answer.allow_percent).fullmatch(answer) is not None


def _q(s: str) -> str:
    return repr(s)


def _only(c: str, marker: str) -> int:
    """Where ``marker`` occurs in ``c`` if it occurs exactly once (as ``str.count`` counts), else -1."""
    i = c.find(marker)
    if i == -1 or (i != c.rfind(marker) and c.count(marker) != 1):  # count: a tag may overlap itself
        return -1
    return i


def _extract_answer(spec: FormatSpec, c: str) -> str | None:
    """The answer if there is exactly one solution block and it holds a well-formed answer.

    Uses ``str.find`` instead of a marker scan: markers never contain or overlap one
    another (the spec loader checks), so each one's occurrences are the same either way.
    """
    s0, s1 = spec.tags.solution_start, spec.tags.solution_end
    j = _only(c, s0)
    e = _only(c, s1) if j != -1 else -1
    k = j + len(s0)
    if e < k or _marker_regex(spec.markers).search(c, k, e) is not None:
        return None  # no single block, closed after it opens, with no other marker inside
    answer = c[k:e].strip()
    if not answer or not _answer_ok(spec, answer):
        return None
    return answer


def _extract_reasoning(spec: FormatSpec, c: str) -> str | None:
    """The reasoning if the completion opens with a well-formed reasoning block (as the regex reads it).

    The block is the optional reasoning start tag at offset 0, then text holding no marker and
    some non-space character, then the reasoning end tag: what the regex's ``reasoning`` group
    captures in a valid output, also found when the rest of the output is broken.
    """
    r0 = spec.tags.reasoning_start
    k = len(r0) if c.startswith(r0) else 0
    e = c.find(spec.tags.reasoning_end, k)
    if e == -1 or not c[k:e].strip() or _marker_regex(spec.markers).search(c, k, e) is not None:
        return None
    return c[k:e]


def _diagnose(sc: _Scan) -> list[Issue]:
    """Error codes for an invalid completion (offsets relative to the completion)."""
    spec, c = sc.spec, sc.text
    r0, r1, s0, s1 = sc.r0, sc.r1, sc.s0, sc.s1
    tags = spec.tag_list
    out: list[Issue] = []
    n = len(c)

    def add(code: str, message: str, start: int, end: int) -> None:
        out.append(Issue(code, message, start, end))

    if not _NON_SPACE.search(c):
        add("empty", "the output is empty" if not c else "the output is only whitespace", 0, n)
        return out

    eos_pos, eos_str = sc.first_eos()
    has_eos = eos_pos != -1
    p = len(r0) if c.startswith(r0) else 0
    r1_pos = sc.find(r1, p)
    end_of_structure = n  # where the solution block closes (for eos_before_end)
    closed = False

    # Reasoning block.
    if r1_pos == -1:
        if sc.find(s0) == -1 and sc.find(s1) == -1 and not has_eos:
            add("truncated", f"output ends inside the reasoning block: no {_q(r1)}", n, n)
        else:
            at = min(i for i in (sc.find(s0), sc.find(s1), eos_pos, n) if i != -1)
            add("missing_reasoning_end", f"no {_q(r1)} closes the reasoning block", at, at)
        reasoning_end = n if sc.find(s0) == -1 else sc.find(s0)
    else:
        reasoning_end = r1_pos
        if not _NON_SPACE.search(c, p, r1_pos):
            add("empty_reasoning", "the reasoning block holds only whitespace", p, r1_pos)
    # Markers inside the reasoning region.
    for tag in tags:
        i = sc.find(tag, p, reasoning_end)
        if i == -1:
            continue
        if tag == r0 and p == 0:
            add("text_before_reasoning_start", f"text before {_q(r0)}", 0, i)
        else:
            add("tag_in_reasoning", f"{_q(tag)} inside the reasoning block", i, i + len(tag))

    # Solution block (first solution start after the reasoning end, else anywhere).
    after_r1 = r1_pos + len(r1) if r1_pos != -1 else reasoning_end
    s0_pos = sc.find(s0, after_r1)
    if s0_pos == -1 and r1_pos != -1:
        tail = c[after_r1:]
        if not has_eos and (not tail.strip() or s0.startswith(tail.lstrip())):
            add("truncated", f"output ends before {_q(s0)}", n, n)
        else:
            add("missing_solution_start", f"no {_q(s0)} after {_q(r1)}", after_r1, after_r1)
    elif s0_pos != -1:
        if r1_pos != -1:
            between = c[after_r1:s0_pos]
            if between.strip():
                lead = len(between) - len(between.lstrip())
                add(
                    "text_between_blocks",
                    f"text between {_q(r1)} and {_q(s0)} (only whitespace may stand there)",
                    after_r1 + lead,
                    after_r1 + len(between.rstrip()),
                )
        k = s0_pos + len(s0)
        s1_pos = sc.find(s1, k)
        if s1_pos == -1:
            other, _ = sc.first(tags, k, n)
            if not has_eos and other == -1:
                add("truncated", f"output ends inside the solution block: no {_q(s1)}", n, n)
            else:
                add("missing_solution_end", f"no {_q(s1)} closes the solution block", s0_pos, k)
        else:
            end_of_structure, closed = s1_pos + len(s1), True
            inner_tag, tag = sc.first(tags, k, s1_pos)
            raw = c[k:s1_pos]
            if inner_tag != -1:
                add("tag_in_answer", f"{_q(tag)} inside the solution block", inner_tag, inner_tag + len(tag))
            elif not raw.strip():
                add("empty_answer", "the solution block is empty", k, s1_pos)
            elif not _answer_ok(spec, raw.strip()):
                lead = len(raw) - len(raw.lstrip())
                add(
                    "answer_not_a_number",
                    f"answer {raw.strip()[:40]!r} is not one number (like 17, -3, 2.5 or 1,000)",
                    k + lead,
                    k + len(raw.rstrip()),
                )
            _diagnose_tail(spec, sc, c, end_of_structure, add)
    elif r1_pos == -1 and sc.find(s1) != -1:
        i = sc.find(s1)
        add("missing_solution_start", f"{_q(s1)} without {_q(s0)}", i, i + len(s1))

    # End-of-sequence strings before the solution block is closed. When the block never
    # closes, an EOS that only ends the output is the normal stop, reported as missing_*.
    for early, early_str in _eos_occurrences(sc, end_of_structure):
        tail_after = c[early + len(early_str) :]
        if closed or tail_after.strip():
            add("eos_before_end", f"{_q(early_str)} before the solution block is closed", early, early + len(early_str))
            break

    _case_hints(sc, out, add)
    if not out:  # defensive: the structural rule failed in a way not described above
        add("truncated" if not has_eos else "trailing_text", "output does not match the format", n, n)
    return out


def _eos_occurrences(sc: _Scan, end: int):
    """The first two EOS occurrences before ``end`` (enough to tell an early stop)."""
    pos, found = 0, 0
    while found < 2:
        i, x = sc.first_eos(pos, end)
        if i == -1:
            return
        yield i, x
        pos, found = i + len(x), found + 1


def _diagnose_tail(spec: FormatSpec, sc: _Scan, c: str, t: int, add) -> None:
    """Everything after the first solution block: duplicates, trailing text, EOS rules."""
    n = len(c)
    dup, tag = sc.first(spec.tag_list, t, n)
    eos_pos, eos_str = sc.first_eos(t, n)
    stop = min(i for i in (dup, eos_pos, n) if i != -1)
    gap = c[t:stop]
    if gap.strip():
        lead = len(gap) - len(gap.lstrip())
        add("trailing_text", "text after the solution block", t + lead, t + len(gap.rstrip()))
    if dup != -1:
        last = sc.last_end(spec.tag_list)
        add("duplicate_block", f"{_q(tag)} after the solution block (a second block)", dup, max(last, dup + len(tag)))
    if eos_pos != -1:
        count = sum(sc.count(x, t) for x in spec.eos)
        after = eos_pos + len(eos_str)
        if count > 1:
            nxt, nxt_str = sc.first_eos(after, n)
            add("multiple_eos", f"{count} end-of-sequence strings (at most one)", nxt, nxt + len(nxt_str))
        rest = c[after:]
        for x in spec.eos:
            rest = rest.replace(x, " " * len(x))
        if dup == -1 and rest.strip():
            lead = len(rest) - len(rest.lstrip())
            add("text_after_eos", f"text after {_q(eos_str)}", after + lead, after + len(rest.rstrip()))


@lru_cache(maxsize=256)
def _any_case(tag: str) -> re.Pattern[str]:
    return re.compile(re.escape(tag), re.IGNORECASE)


def _case_hints(sc: _Scan, out: list[Issue], add) -> None:
    """If a tag is missing but appears with other letter case, say so."""
    if not any(e.code in {"truncated", "missing_reasoning_end", "missing_solution_start", "missing_solution_end"} for e in out):
        return
    for tag in sc.spec.tag_list:
        if tag.lower() == tag.upper() or sc.at[tag]:
            continue
        found = _any_case(tag).search(sc.text)
        if found:
            i, j = found.span()
            add("tag_case_mismatch", f"found {found.group()!r}; tags are case-sensitive: write {_q(tag)}", i, j)


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


def _eos_of(spec: FormatSpec, c: str, after: int) -> str | None:
    """The end-of-sequence string after ``after`` in a valid completion (at most one is there)."""
    for e in spec.eos:
        if c.find(e, after) != -1:
            return e
    return None


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
    if transcript is not False:
        start = _last_turn_start(spec, text, bool(transcript))
        if start == -1:
            msg = f"transcript: no {_q(spec.tags.reasoning_start)} starts the last assistant turn"
            return Validation(False, None, None, (Issue("no_assistant_turn", msg, len(text), len(text)),))
        base = start or 0
    c = text[base:] if base else text
    match = compile_reward_regex(spec).fullmatch(c)
    if match is not None:
        return Validation(True, match.group("reasoning"), match.group("answer"), (), base,
                          _eos_of(spec, c, match.end("answer")))
    return Validation._deferred(spec, c, base, _extract_answer(spec, c), _extract_reasoning(spec, c))


def explain(code: str) -> str:
    """One line on when an error code is raised."""
    return CODES[code]
