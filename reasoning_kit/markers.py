"""Every tag and end-of-sequence string ("marker") in a text, found in one left-to-right pass.

:func:`split` cuts a text at its markers (the gaps between them are what the validator's
verdict reads); :func:`occurrences` lists ``(position, marker)`` in text order, and
:class:`Scan` answers the diagnosis's questions ("first reasoning end tag after p", "how many
solution start tags") from that list with bisect, so all the work stays linear in the text
whatever the input.

Why one pass is enough: the spec loader rejects markers that contain or overlap one another,
so at most one marker starts at any position and occurrences of two different markers never
overlap. The leftmost-first scan therefore finds, for each marker, exactly the occurrences
``str.count`` counts, and no marker starts between the end of one found marker and the start
of the next: the regions the reward regex's lookaheads check are marker-free exactly when
the scan finds nothing inside them.

Speed: when every marker begins with the same character (``<`` in the shipped specs) the
scan hops between that character's occurrences with ``str.find`` (memchr in CPython) and
tries the markers there, so plain text costs one memchr pass; after ``HOPS`` candidates, or
when the first characters differ, one regex scan does the rest. :func:`split` goes to the
first marker the same way (memchr, and one regex search if the first candidate is not a
marker) and lets ``re.split`` (one C call) cut the rest, which in a model output is the short
tail after the reasoning.

Not handled: markers that contain or overlap each other (the spec loader rejects them).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache

from .spec import FormatSpec

HOPS = 8  # candidate positions tried in Python before handing the rest to the regex engine


@lru_cache(maxsize=64)
def marker_regex(markers: tuple[str, ...]) -> re.Pattern[str]:
    """Any one marker (longest first; no marker is a prefix of another, so order only documents)."""
    return re.compile("|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)))


@lru_cache(maxsize=64)
def splitter(markers: tuple[str, ...]):
    """:func:`split` for one set of markers, with everything it needs resolved once (the hot path)."""
    pattern = marker_regex(markers)
    match, search, cut = pattern.match, pattern.search, re.compile(f"({pattern.pattern})").split
    first = markers[0][0]
    if any(m[0] != first for m in markers):
        first = None

    def split_at_markers(text: str, start: int = 0, most: int = 0) -> tuple[int, list[str]]:
        # To the first marker: a memchr pass to the first candidate, one regex search if it is none.
        offset = start if first is None else text.find(first, start)
        if offset != -1 and match(text, offset) is None:
            hit = search(text, offset)
            offset = -1 if hit is None else hit.start()
        if offset == -1:
            return len(text), [""]
        return offset, cut(text[offset:], most)

    return split_at_markers


def split(markers: tuple[str, ...], text: str, start: int = 0, most: int = 0) -> tuple[int, list[str]]:
    """``(offset, parts)``: ``text[offset:]`` cut at its markers, as ``re.split`` with a group cuts it.

    ``parts`` is ``[gap, marker, gap, ..., marker, gap]`` (odd indexes: the markers found, in
    order); with ``most`` > 0 at most that many markers are cut out and the rest stays in the
    last gap. ``offset`` >= ``start``, and ``text[start:offset]`` holds no marker.

    >>> split(("<a>", "<b>"), "x < y<a> 1 <b>")
    (5, ['', '<a>', ' 1 ', '<b>', ''])
    """
    return splitter(markers)(text, start, most)


def positions(offset: int, parts: list[str]) -> list[tuple[int, str]]:
    """The (position, marker) list of :func:`occurrences` from :func:`split`'s result."""
    seq, pos = [], offset
    for k in range(1, len(parts), 2):
        pos += len(parts[k - 1])
        seq.append((pos, parts[k]))
        pos += len(parts[k])
    return seq


def occurrences(markers: tuple[str, ...], text: str) -> list[tuple[int, str]]:
    """Every (position, marker) in text order.

    Markers never overlap one another, so after a match the scan continues past it.
    """
    found: list[tuple[int, str]] = []
    first = markers[0][0]
    pos = 0
    if all(m[0] == first for m in markers):
        match = marker_regex(markers).match
        find = text.find
        pos = find(first)
        for _ in range(HOPS):
            if pos == -1:
                return found
            hit = match(text, pos)
            if hit is not None:
                found.append((pos, hit.group()))
                pos = hit.end() - 1
            pos = find(first, pos + 1)
        if pos == -1:
            return found
    found.extend((hit.start(), hit.group()) for hit in marker_regex(markers).finditer(text, pos))
    return found


class Scan:
    """The markers of one text (``seq``: every occurrence, as :func:`occurrences` returns it)."""

    def __init__(self, spec: FormatSpec, text: str, seq: list[tuple[int, str]] | None = None):
        self.spec, self.text = spec, text
        self.r0, self.r1, self.s0, self.s1 = spec.tag_list
        self.seq = occurrences(spec.markers, text) if seq is None else seq
        self.starts = [start for start, _ in self.seq]
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
        """The first of ``markers`` at or after ``start`` (and before ``end``): (position, marker) or (-1, None)."""
        seq, i = self.seq, bisect_left(self.starts, start)
        for pos, m in seq[i : i + _NEAR]:  # usually one of the next few markers
            if end is not None and pos >= end:
                return -1, None
            if m in markers:
                return pos, m
        if i + _NEAR >= len(seq):
            return -1, None
        best, which = -1, None  # far away: one bisect per marker
        for m in markers:
            j = self.find(m, start, end)
            if j != -1 and (best == -1 or j < best):
                best, which = j, m
        return best, which

    def first_eos(self, start: int = 0, end: int | None = None) -> tuple[int, str | None]:
        return self.first(self.spec.eos, start, end)

    def count(self, marker: str, start: int = 0) -> int:
        positions = self.at[marker]
        return len(positions) - bisect_left(positions, start)

    def last_end(self, markers: tuple[str, ...]) -> int:
        return max((self.at[m][-1] + len(m) for m in markers if self.at[m]), default=-1)


_NEAR = 4  # markers Scan.first walks before it bisects per marker


__all__ = ["HOPS", "Scan", "marker_regex", "occurrences", "positions", "split", "splitter"]
