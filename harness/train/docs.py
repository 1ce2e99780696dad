"""The [train] key tables of docs/train.md, generated from the dataclass help texts.

``python -m harness.train.docs`` prints the tables; ``--write`` replaces the text between the
``<!-- train-keys:start -->`` and ``<!-- train-keys:end -->`` markers of docs/train.md
(tests/test_train_docs.py fails when the file is out of date). Not handled: the prose around it.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from reasoning_kit.schema import Preset, range_text
from reasoning_kit.train_config import OFFLINE, TrainConfig

START, END = "<!-- train-keys:start -->", "<!-- train-keys:end -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "train.md"


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "[" + ", ".join(f'"{x}"' for x in v) + "]"
    return repr(v)


def _table(cls) -> list[str]:
    rows = ["| key | default | range | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(f.default) or isinstance(f.default, Preset):
            continue
        text = f.metadata["help"].replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{_value(f.default)}` | {range_text(f.metadata)} | {text} |")
    return rows


def preset_table(preset: Preset) -> list[str]:
    rows = ["| key | value | why |", "|---|---|---|"]
    rows += [f"| `{k}` | `{_value(v)}` | {preset.note(k)} |" for k, v in preset.values]
    return rows


def keys_markdown() -> str:
    lines = ["### `[train]`", "", *_table(TrainConfig), "", "### `[train.offline]` (the `--offline` preset)", "",
             *preset_table(OFFLINE)]
    return "\n".join(lines) + "\n"


def render_doc(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{keys_markdown()}{END}{tail}"


if __name__ == "__main__":  # pragma: no cover
    if "--write" in sys.argv:
        DOC.write_text(render_doc(DOC.read_text()))
        print(f"updated {DOC}")
    else:
        sys.stdout.write(keys_markdown())
