"""JSON Lines: the one reader and the one line writer every command uses (and :func:`loads`, the one
reader of a whole JSON file a user gave).

Reading splits on ``"\\n"`` only, never ``str.splitlines()``: U+2028, U+0085, ``\\x1c`` and
the other characters ``splitlines`` breaks on are ordinary data inside JSON strings (and
``json.dumps(..., ensure_ascii=False)`` writes them raw). A ``"\\r"`` before the ``"\\n"``
(a CRLF file) and a UTF-8 byte-order mark at the start are dropped; blank lines are skipped.
A bad line is reported with its 1-based number and the reading goes on, so a caller can
list every bad line at once. File extensions match case-insensitively (``.JSONL``).

>>> rows, bad = parse('{"a": "x\\u2028y"}\\r\\n\\nnot json\\n[1]\\n')
>>> rows, bad
([(1, {'a': 'x\\u2028y'}), (4, [1])], [(3, 'not valid JSON (Expecting value)')])
>>> dumps({"q": "é\\u2028"}) == '{"q": "é\\u2028"}\\n'
True

Not handled: one JSON array per file (``harness.data.sources`` reads those), compressed
files, and streaming: a file is read whole. Writing files atomically is the caller's job.
"""

from __future__ import annotations

import json
from pathlib import Path

EXTENSIONS = (".jsonl",)
BOM = "\ufeff"


def is_jsonl(name: str | Path) -> bool:
    """True for a path ending in ``.jsonl`` in any letter case."""
    return Path(str(name)).suffix.lower() in EXTENSIONS


def lines(text: str):
    """(line number, line) for each non-blank line; split on ``"\\n"`` only, ``"\\r\\n"`` tolerated."""
    if text.startswith(BOM):
        text = text[1:]
    for number, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip():
            yield number, line


class NotJSON(ValueError):
    """The text is not JSON that can be read; the message is the reason (``not valid JSON (...)``)."""


def loads(text: str, *, where: bool = False) -> object:
    """``json.loads`` for text a user gave: every failure is :class:`NotJSON` with a one-line reason.

    ``where``: the reason names the line (for a whole file). Besides syntax errors this covers thousands
    of nested brackets (``RecursionError``) and an integer longer than Python converts (4300 digits)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotJSON(f"not valid JSON ({exc.msg}{f' at line {exc.lineno}' if where else ''})") from None
    except RecursionError:
        raise NotJSON("not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # "Exceeds the limit (4300 digits) for integer string conversion: ..."
        raise NotJSON(f"not valid JSON ({str(exc).split(':')[0]})") from None


def parse(text: str) -> tuple[list[tuple[int, object]], list[tuple[int, str]]]:
    """Every line parsed: ``(rows, bad)``, rows as (number, value), bad lines as (number, reason)."""
    rows: list[tuple[int, object]] = []
    bad: list[tuple[int, str]] = []
    for number, line in lines(text):
        try:
            rows.append((number, loads(line)))
        except NotJSON as exc:
            bad.append((number, str(exc)))
    return rows, bad


def dumps(row: object) -> str:
    """One JSON line (with its ``"\\n"``): UTF-8 kept as is, non-JSON values written with ``str``."""
    return json.dumps(row, ensure_ascii=False, default=str) + "\n"


def summarise(label: str, bad: list[tuple[int, str]], limit: int = 5) -> str:
    """Bad lines as one message: ``file:3: not valid JSON (...); file:9: ...`` (the first ``limit``)."""
    shown = "; ".join(f"{label}:{number}: {reason}" for number, reason in bad[:limit])
    more = len(bad) - limit
    return shown + (f"; and {more} more bad line{'s' if more > 1 else ''}" if more > 0 else "")


__all__ = ["EXTENSIONS", "NotJSON", "dumps", "is_jsonl", "lines", "loads", "parse", "summarise"]
