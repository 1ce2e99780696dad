"""Generated parts of docs/spec.md: the key reference and the validator's error codes.

``python -m reasoning_kit.spec_docs --write docs/spec.md`` rewrites the parts of the file
between ``<!-- keys:start -->``/``<!-- keys:end -->`` and ``<!-- codes:start -->``/
``<!-- codes:end -->``; a test fails when the committed file differs, so no key or error
code goes undocumented.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .schema import MISSING
from .spec import spec_keys
from .validator import CODES


def _default(value) -> str:
    if value is MISSING:
        return "*required*"
    if isinstance(value, tuple):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def key_reference() -> str:
    """A markdown table per top-level table: key, default, meaning."""
    groups: dict[str, list[str]] = {}
    for key, default, help_text in spec_keys():
        table = key.split(".")[0] if "." in key else "(top level)"
        groups.setdefault(table, []).append(f"| `{key}` | {_default(default)} | {help_text} |")
    parts = []
    for table, rows in groups.items():
        title = table if table == "(top level)" else f"[{table}]"
        parts += [f"### {title}", "", "| key | default | meaning |", "| --- | --- | --- |", *rows, ""]
    return "\n".join(parts).rstrip() + "\n"


def code_reference() -> str:
    """A markdown table of the validator's stable error codes."""
    rows = [f"| `{code}` | {meaning} |" for code, meaning in CODES.items()]
    return "\n".join(["| code | raised when |", "| --- | --- |", *rows]) + "\n"


SECTIONS = {"keys": key_reference, "codes": code_reference}


def splice(document: str) -> str:
    """``document`` with every generated section replaced between its markers."""
    for name, make in SECTIONS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, found, rest = document.partition(start)
        if not found:
            continue
        _, _, tail = rest.partition(end)
        document = f"{head}{start}\n{make()}{end}{tail}"
    return document


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        path = Path(sys.argv[2])
        path.write_text(splice(path.read_text()))
    else:
        sys.stdout.write(key_reference())
