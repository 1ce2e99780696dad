"""A portable regex for a spec: what constrained-decoding engines (llguidance, xgrammar,
outlines-core) accept, matching exactly the completions the validator accepts.

The reward regex (``reasoning_kit.regex``) uses lookaheads and possessive quantifiers, which
those engines reject. This one uses only literals, character classes, groups, alternation and
greedy ``*``, ``+``, ``?``: no lookarounds, possessive or lazy quantifiers, backreferences,
inline flags, anchors or ``.`` (xgrammar's ``.`` matches newlines, Python's does not). It is
always matched against the whole text (engines do; in Python use ``re.fullmatch``).

"Text with no marker inside" needs no lookahead when every marker (tag or EOS string) uses
its first character nowhere but at its start (true of ``<tag>``-style markers): split the
text before each such character; a marker can then only lie inside one piece, so a piece is
free of markers when its tail does not start with the rest of a marker. That is a trie walk,
written out as nested alternatives (:func:`_not_starting_with`). Whitespace is the explicit
class of the characters Python's ``str.isspace`` accepts (the validator's notion), since
engines disagree on ``\\s``; every other character is written as itself or a ``\\uXXXX``
escape. Specs this cannot express raise :class:`PortableRegexError`.

Not handled: named groups (engines differ; use the validator to extract fields), transcripts.
"""

from __future__ import annotations

import sys
from functools import lru_cache

from .spec import FormatSpec

META = set("\\.^$|?*+()[]{}")  # escaped outside classes
CLASS_META = set("\\]^[-&~|")  # escaped inside classes (& ~ - | are set operators in some engines)
NUMBER_CHARS = set("0123456789,.+-%")


class PortableRegexError(ValueError):
    """The spec's format cannot be written in the portable dialect (one line, says why)."""


@lru_cache(maxsize=1)
def _space_chars() -> tuple[str, ...]:
    return tuple(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())


def _char(c: str, in_class: bool = False) -> str:
    """One character, escaped portably."""
    if c.isspace() or not c.isprintable():
        return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
    if c in (CLASS_META if in_class else META):
        return "\\" + c
    return c


def literal(text: str) -> str:
    return "".join(_char(c) for c in text)


def char_class(chars, negate: bool = False) -> str:
    """``[...]`` or ``[^...]`` of single characters, contiguous runs written as ranges."""
    codes = sorted({ord(c) for c in chars})
    parts, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = chr(codes[i]), chr(codes[j])
        parts.append(_char(lo, True) if i == j else f"{_char(lo, True)}-{_char(hi, True)}")
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _alt(options: list[str]) -> str:
    return options[0] if len(options) == 1 else "(?:" + "|".join(options) + ")"


def _not_starting_with(tails: list[str], first: frozenset[str]) -> str:
    """Strings without characters from ``first`` that start with none of ``tails`` (non-empty)."""
    children: dict[str, list[str]] = {}
    for t in tails:
        children.setdefault(t[0], []).append(t[1:])
    rest = char_class(first)[1:-1]
    options = ["", f"[^{rest}{char_class(children)[1:-1]}]{char_class(first, negate=True)}*"]
    for c, subs in sorted(children.items()):
        if "" in subs:  # a marker ends here: the text must not take this path
            continue
        options.append(_char(c) + _not_starting_with(subs, first))
    return "(?:" + "|".join(options) + ")"


def fragments(spec: FormatSpec) -> dict[str, str]:
    """The named pieces of the portable pattern, in order."""
    markers = spec.markers
    first = frozenset(m[0] for m in markers)
    for m in markers:
        inner = sorted(set(m[1:]) & first)
        if inner:
            raise PortableRegexError(
                f"marker {m!r} holds {inner[0]!r}, which starts a marker: the portable dialect needs marker "
                f"first characters to appear only at the start of markers"
            )
    space = _space_chars()
    ws = char_class(space) + "*"  # whitespace, as str.isspace
    plain = char_class(first, negate=True)  # a character that cannot start a marker
    solid = char_class(first | set(space), negate=True)  # ... and is not whitespace
    by_first: dict[str, list[str]] = {}
    for m in markers:
        by_first.setdefault(m[0], []).append(m[1:])
    # A piece that starts with a marker's first character and does not complete a marker.
    piece = "(?:" + "|".join(_char(c) + _not_starting_with(tails, first) for c, tails in sorted(by_first.items())) + ")"
    # Marker-free text with a non-space character: leading whitespace, then a non-space plain
    # character and plain text, or a piece (its first character is not whitespace); then pieces
    # (each holds the plain text up to the next marker first character).
    solid_text = f"{ws}(?:{solid}{plain}*|{piece}){piece}*"
    if spec.answer.kind == "number":
        if first & NUMBER_CHARS:
            raise PortableRegexError("a marker starts with a character numbers use: the portable dialect cannot guard it")
        d = "[0-9]"
        answer = (
            f"[+\\-]?(?:{d}{{1,3}}(?:,{d}{{3}})+|{d}+)(?:\\.{d}+)?" + ("%?" if spec.answer.allow_percent else "")
        )
    else:
        answer = solid_text
    r0, r1, s0, s1 = (literal(t) for t in spec.tag_list)
    return {
        "reasoning_start": f"(?:{r0})?",  # [R0]: optional, the generation prompt holds it
        "reasoning": solid_text,  # REASONING: no markers, a non-space character
        "reasoning_end": r1,  # R1
        "between": ws,  # WS between the blocks
        "solution_start": s0,  # S0
        "answer": f"{ws}{answer}{ws}",  # ANSWER, edges may be whitespace
        "solution_end": s1,  # S1
        "trailing": ws,  # WS after the solution block
        "eos": "(?:" + _alt([literal(e) for e in sorted(spec.eos, key=len, reverse=True)]) + f"{ws})?",  # [EOS WS]
    }


def portable_pattern(spec: FormatSpec, *, eos: bool = True) -> str:
    """The portable pattern (whole-text match). ``eos=False`` leaves out the optional
    end-of-sequence string, for decoders that end with the EOS token themselves."""
    parts = fragments(spec)
    if not eos:
        parts.pop("eos")
    return "".join(parts.values())


__all__ = ["PortableRegexError", "char_class", "fragments", "literal", "portable_pattern"]
