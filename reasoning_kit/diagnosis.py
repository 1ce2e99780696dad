"""Error codes and spans for an invalid completion, from the markers found in it.

:func:`diagnose` reads a :class:`reasoning_kit.markers.Scan` of one completion (every tag and
end-of-sequence string, with positions) and says what is wrong, in text order where it can:
each :class:`Issue` carries a stable code (``reasoning_kit.validator.CODES``), a message and
the character span. ``reasoning_kit.validator`` calls it only when a result's ``errors`` are
first read, and only for outputs its verdict found invalid. :func:`quick_codes` gives the same
codes without messages or spans for the usual broken shapes, straight from the validator's cut
of the completion (what ``Validation.codes`` reads first).

Not handled: deciding validity (the validator's verdict does that; this module assumes the
completion is invalid) or transcripts (the validator shifts spans to the full text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .markers import Scan
from .regex import number_regex
from .spec import FormatSpec


@dataclass(frozen=True)
class Issue:
    """One problem: a stable ``code``, a human ``message``, and the character span [start, end)."""

    code: str
    message: str
    start: int
    end: int


_NON_SPACE = re.compile(r"\S")


def _answer_ok(spec: FormatSpec, answer: str) -> bool:
    """A non-empty stripped answer is well-formed: any text, or one number for kind number."""
    return spec.answer.kind != "number" or number_regex(spec.answer.allow_percent).fullmatch(answer) is not None


def _q(s: str) -> str:
    return repr(s)


def diagnose(sc: Scan) -> list[Issue]:
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
                add("text_between_blocks", f"text between {_q(r1)} and {_q(s0)} (only whitespace may stand there)",
                    *_stripped_span(between, after_r1))
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
                add("answer_not_a_number", f"answer {raw.strip()[:40]!r} is not one number (like 17, -3, 2.5 or 1,000)",
                    *_stripped_span(raw, k))
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


def _eos_occurrences(sc: Scan, end: int):
    """The first two EOS occurrences before ``end`` (enough to tell an early stop)."""
    pos, found = 0, 0
    while found < 2:
        i, x = sc.first_eos(pos, end)
        if i == -1:
            return
        yield i, x
        pos, found = i + len(x), found + 1


def _diagnose_tail(spec: FormatSpec, sc: Scan, c: str, t: int, add) -> None:
    """Everything after the first solution block: duplicates, trailing text, EOS rules."""
    n = len(c)
    dup, tag = sc.first(spec.tag_list, t, n)
    eos_pos, eos_str = sc.first_eos(t, n)
    stop = min(i for i in (dup, eos_pos, n) if i != -1)
    gap = c[t:stop]
    if gap.strip():
        add("trailing_text", "text after the solution block", *_stripped_span(gap, t))
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
            add("text_after_eos", f"text after {_q(eos_str)}", *_stripped_span(rest, after))


def _stripped_span(text: str, offset: int) -> tuple[int, int]:
    """Start and end, in the whole output, of ``text`` (found at ``offset``) without its surrounding whitespace."""
    return offset + len(text) - len(text.lstrip()), offset + len(text.rstrip())


@lru_cache(maxsize=256)
def _any_case(tag: str) -> re.Pattern[str]:
    return re.compile(re.escape(tag), re.IGNORECASE)


@lru_cache(maxsize=256)
def _any_case_of(tags: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(tag) for tag in tags), re.IGNORECASE)


_MISSING = frozenset({"truncated", "missing_reasoning_end", "missing_solution_start", "missing_solution_end"})


def _case_hints(sc: Scan, out: list[Issue], add) -> None:
    """If a tag is missing but appears with other letter case, say so."""
    if not any(e.code in _MISSING for e in out):
        return
    for tag, found in _case_variants(sc.spec, sc.text, lambda tag: bool(sc.at[tag])):
        i, j = found.span()
        add("tag_case_mismatch", f"found {found.group()!r}; tags are case-sensitive: write {_q(tag)}", i, j)


def _case_variants(spec: FormatSpec, text: str, present) -> list[tuple[str, re.Match]]:
    """Each tag (with letters) that ``present(tag)`` says is absent, paired with its first other-case match."""
    missing = tuple(tag for tag in spec.tag_list if tag.lower() != tag.upper() and not present(tag))
    if len(missing) > 1 and _any_case_of(missing).search(text) is None:
        return []  # one pass tells that none of them is there in any case (the usual answer)
    return [(tag, found) for tag in missing if (found := _any_case(tag).search(text)) is not None]


def quick_codes(spec: FormatSpec, c: str, cut: tuple[int, int, list[str]]) -> tuple[str, ...] | None:
    """The codes :func:`diagnose` gives an invalid completion, read off the validator's cut, or None.

    ``cut`` is ``(p, offset, parts)`` (``reasoning_kit.validator``): the completion after an
    optional reasoning start tag at offset 0 (``p`` its length) cut at every marker. For the
    usual broken shapes the markers alone decide the codes, without messages, spans or a
    :class:`Scan`: no marker at all (empty, or truncated in the reasoning); a non-empty
    reasoning block, then only the solution start tag (truncated inside the solution block, no
    end-of-sequence) or one closed solution block followed by anything (a bad answer, text
    between the blocks, trailing text, a second block, EOS rules). Every other shape gives
    None: call :func:`diagnose`. ``tests/test_validator_fast.py`` holds the result to
    :func:`diagnose`'s codes, in order, for every input it generates.
    """
    p, offset, parts = cut
    n = len(parts) >> 1
    r0, r1, s0, s1 = spec.tag_list
    if n == 0:  # no marker after [R0]
        if p == 0 and not _NON_SPACE.search(c):
            return ("empty",)
        return _with_case_hints(spec, c, ("truncated",), lambda tag: tag == r0 and p > 0)
    reasoning_end = offset + len(parts[0])
    if parts[1] != r1 or n < 2 or parts[3] != s0 or not _NON_SPACE.search(c, p, reasoning_end):
        return None  # not a non-empty reasoning block closed, then a solution block opened
    codes = [] if _blank(parts[2]) else ["text_between_blocks"]
    if n == 2:  # R1 S0, then the end: no tag and no EOS after the solution start
        codes.append("truncated")
        return _with_case_hints(spec, c, tuple(codes), lambda tag: tag != s1 and (tag != r0 or p > 0))
    if parts[5] != s1:
        return None
    raw = parts[4].strip()
    if not raw:
        codes.append("empty_answer")
    elif not _answer_ok(spec, raw):
        codes.append("answer_not_a_number")
    # After the solution block (the markers after it: found[3:], the gap right after it: parts[6]).
    if not _blank(parts[6]):
        codes.append("trailing_text")
    after = parts[7::2]
    if after:
        eos = spec.eos
        tags_after = [m for m in after if m not in eos]
        if tags_after:  # a second block
            codes.append("duplicate_block")
        n_eos = len(after) - len(tags_after)
        if n_eos > 1:
            codes.append("multiple_eos")
        if n_eos and not tags_after:  # only EOS strings after the block, the first at parts[7]
            rest = "".join(parts[8:])
            for x in eos:  # as diagnose reads it: every EOS blanked out
                rest = rest.replace(x, " " * len(x))
            if not _blank(rest):
                codes.append("text_after_eos")
    return tuple(codes) if codes else None


def _blank(s: str) -> bool:
    """Empty or whitespace (``str.isspace`` is the regex's ``\\s`` and what ``str.strip`` strips)."""
    return not s or s.isspace()


def _with_case_hints(spec: FormatSpec, c: str, codes: tuple[str, ...], present) -> tuple[str, ...]:
    hints = _case_variants(spec, c, present)
    return codes + ("tag_case_mismatch",) * len(hints) if hints else codes
