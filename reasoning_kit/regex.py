"""The reward-ready regex: one ``re`` pattern that fullmatches exactly the valid completions.

Built from named fragments (in the manner of h11's ``_abnf.py``), each commented with the
format rule it encodes. Every literal goes through ``re.escape``. All repetitions are
possessive (``*+``) or bounded and every lookahead is a fixed set of literals, so matching
is linear in the input: no catastrophic backtracking on adversarial completions.

The strict format (R0/R1 reasoning tags, S0/S1 solution tags, EOS an end string):

    [R0] REASONING R1 WS S0 ANSWER S1 WS [EOS WS]

Named groups: ``reasoning`` (the raw text between R0 and R1) and ``answer`` (the answer
with surrounding whitespace stripped). Use ``fullmatch``; the pattern is not anchored
for ``search``. It checks a single completion, not a transcript (the validator does that).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .spec import FormatSpec


def number_pattern(guard: str = "", *, percent: bool = False) -> str:
    """A number as the answer kind "number" accepts: optional sign, digits with optional
    thousands commas, optional decimals: 17, -3, +2.5, 1,000, 12,345.67 (and a trailing
    ``%`` when ``percent``). ``guard`` (a negative lookahead) is put before every character
    when a marker could start inside the number."""

    def c(cls: str) -> str:
        return f"(?:{guard}{cls})" if guard else cls

    d = c("[0-9]")
    return (
        f"{c('[+-]')}?"  # optional sign
        f"(?:{d}{{1,3}}(?:{c(',')}{d}{{3}})++"  # digits grouped by thousands commas: 1,000
        f"|{d}++)"  # or plain digits: 1000
        f"(?:{c(r'[.]')}{d}++)?+"  # optional decimals: .5
        + (f"{c('%')}?+" if percent else "")  # optional percent sign: 50% (answer.allow_percent)
    )


NUMBER = number_pattern()
NUMBER_RE = re.compile(NUMBER)
_NUMBER_CHARS = set("0123456789,.+-%")


@lru_cache(maxsize=4)
def number_regex(percent: bool) -> re.Pattern[str]:
    """The compiled number grammar for a spec (``spec.answer.allow_percent``)."""
    return re.compile(number_pattern(percent=percent))

WS = r"\s*+"  # whitespace only, possibly empty (Unicode whitespace, as str.isspace)


def _any_literal(strings: tuple[str, ...]) -> str:
    # Longest first, so no alternative shadows a longer one that shares its start.
    return "(?:" + "|".join(re.escape(s) for s in sorted(strings, key=len, reverse=True)) + ")"


def fragments(spec: FormatSpec) -> dict[str, str]:
    """The named pieces of the pattern (exposed so tests and docs can show them)."""
    r0, r1, s0, s1 = (re.escape(t) for t in spec.tag_list)
    marker = _any_literal(spec.markers)  # any tag or EOS string: never inside a block
    starts = "".join(sorted({re.escape(m[0]) for m in spec.markers}))  # first characters of markers
    # A run of text that starts no marker: characters that begin no marker are consumed in
    # bulk; only where a marker could begin is the lookahead tried.
    free = rf"(?:[^{starts}]++|(?!{marker})[{starts}])"
    free_solid = rf"(?!{marker})\S"  # one non-whitespace character that does not start one
    if spec.answer.kind == "number":
        # ANSWER is one number; it holds no markers: guard each character only when some
        # marker starts with a character a number can contain (a tag like "1." could hide).
        guarded = any(m[0] in _NUMBER_CHARS for m in spec.markers)
        answer_body = number_pattern(rf"(?!{marker})" if guarded else "", percent=spec.answer.allow_percent)
    else:
        # ANSWER is non-empty text without markers; captured without its edge whitespace
        # (markers never start with whitespace, so checking non-space characters suffices).
        answer_body = rf"{free_solid}(?:{WS}{free_solid})*+"
    return {
        "reasoning_start": rf"(?:{r0})?+",  # [R0]: optional, the generation prompt holds it
        # REASONING: no markers and at least one non-space character (markers never start
        # with whitespace, so leading whitespace needs no check).
        "reasoning": rf"(?P<reasoning>{WS}{free_solid}{free}*+)",  # REASONING
        "reasoning_end": r1,  # R1
        "between": WS,  # WS between the blocks
        "solution_start": s0,  # S0
        "answer": rf"{WS}(?P<answer>{answer_body}){WS}",  # ANSWER, edges may be whitespace
        "solution_end": s1,  # S1
        "trailing": WS,  # WS after the solution block
        "eos": rf"(?:{_any_literal(spec.eos)}{WS})?+",  # [EOS WS]: at most one end-of-sequence string
    }


def reward_pattern(spec: FormatSpec) -> str:
    """The pattern source: the fragments in order, to be used with ``fullmatch``."""
    return "".join(fragments(spec).values())


@lru_cache(maxsize=64)
def _compile_cached(source: str) -> re.Pattern[str]:
    return re.compile(source)


_BY_SPEC: dict[int, tuple[FormatSpec, re.Pattern[str]]] = {}  # id(spec) -> (spec kept alive, pattern)


def compile_reward_regex(spec: FormatSpec) -> re.Pattern[str]:
    """The compiled pattern, cached per spec object (building the source costs ~50 µs)."""
    hit = _BY_SPEC.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    pattern = _compile_cached(reward_pattern(spec))
    if len(_BY_SPEC) >= 64:
        _BY_SPEC.clear()
    _BY_SPEC[id(spec)] = (spec, pattern)
    return pattern


def verbose_pattern(spec: FormatSpec) -> str:
    """The pattern laid out one fragment per line with its name, for humans (re.VERBOSE-safe)."""
    lines = ["(?x)"]
    for name, frag in fragments(spec).items():
        lines.append(f"{_verbose_escape(frag)}    # {name}")
    return "\n".join(lines)


def _verbose_escape(fragment: str) -> str:
    # In verbose mode, unescaped whitespace and '#' would be ignored / start comments.
    out, i = [], 0
    while i < len(fragment):
        ch = fragment[i]
        if ch == "\\" and i + 1 < len(fragment):
            out.append(fragment[i : i + 2])
            i += 2
            continue
        out.append("\\" + ch if ch.isspace() or ch == "#" else ch)
        i += 1
    return "".join(out)
